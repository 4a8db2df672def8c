// train_data.cpp — token-file reader and the training sample order (train_data.h).
#include "train_data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "error.h"

namespace strata {
namespace {

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint64_t le64(const uint8_t* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

}  // namespace

TokenFile::TokenFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open token file: " + std::strerror(errno), STRATA_ERR_IO);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat token file: " + std::strerror(e), STRATA_ERR_IO);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      const int e = errno;
      ::close(fd);
      throw Error(path + ": cannot map token file: " + std::strerror(e), STRATA_ERR_IO);
    }
  }
  ::close(fd);
  try {
    auto fail = [&](const std::string& what) { throw Error(path + ": " + what, STRATA_ERR_FORMAT); };
    const uint8_t* b = static_cast<const uint8_t*>(map_);
    if (size_ < 64)
      fail("is " + std::to_string(size_) + " bytes, shorter than the 64-byte token-file header (write token files with `strata data`)");
    if (std::memcmp(b, "STRATATK", 8) != 0)
      fail("is not a Strata token file (magic at offset 0 is not \"STRATATK\"; write token files with `strata data tokenize|corpus|probe`)");
    const uint32_t version = le32(b + 8);
    if (version != 1) fail("token-file version " + std::to_string(version) + " is not supported (field 'version' at offset 8; this runtime reads version 1)");
    id_bytes_ = le32(b + 12);
    if (id_bytes_ != 2 && id_bytes_ != 4)
      fail("id width " + std::to_string(id_bytes_) + " bytes is invalid (field 'idBytes' at offset 12; valid: 2 for uint16, 4 for uint32)");
    count_ = le64(b + 16);
    vocab_ = le32(b + 24);
    if (vocab_ == 0) fail("vocab size 0 is invalid (field 'vocab' at offset 24; must be ≥ 1)");
    if (id_bytes_ == 2 && vocab_ > 0x10000u)
      fail("vocab " + std::to_string(vocab_) + " does not fit uint16 ids (fields 'vocab' / 'idBytes'; uint16 files hold vocabularies up to 65536)");
    row_length_ = le32(b + 28);
    if (row_length_ > 0 && count_ % row_length_ != 0)
      fail(std::to_string(count_) + " ids are not a whole number of rows of " + std::to_string(row_length_) +
           " (fields 'count' at offset 16 / 'rowLength' at offset 28; rowLength 0 = one token stream)");
    eos_ = le32(b + 32);
    if (eos_ != kTokNoEos && eos_ >= vocab_)
      fail("eos id " + std::to_string(eos_) + " is outside the vocabulary [0, " + std::to_string(vocab_) +
           ") (field 'eos' at offset 32; 0xFFFFFFFF = none)");
    const uint32_t flags = le32(b + 36);
    if (flags & ~1u) fail("unknown flags " + std::to_string(flags) + " (field 'flags' at offset 36; version 1 defines only bit 0, the loss mask)");
    for (int i = 40; i < 64; ++i)
      if (b[i] != 0) fail("reserved header byte " + std::to_string(i) + " is " + std::to_string(b[i]) + ", must be 0");
    const bool has_mask = flags & 1u;
    if (count_ > (UINT64_MAX - 64) / 8) fail("id count " + std::to_string(count_) + " is too large (field 'count' at offset 16)");
    const uint64_t want = 64 + count_ * id_bytes_ + (has_mask ? count_ : 0);
    if (size_ != want)
      fail("is " + std::to_string(size_) + " bytes but its header (count " + std::to_string(count_) + ", " + std::to_string(id_bytes_) +
           "-byte ids" + (has_mask ? ", mask" : "") + ") says " + std::to_string(want) +
           (size_ < want ? " (the file is truncated)" : " (the file has trailing bytes)"));
    ids_ = b + 64;
    if (has_mask) mask_ = ids_ + count_ * id_bytes_;
    for (uint64_t i = 0; i < count_; ++i)
      if (id(i) >= vocab_)
        fail("id " + std::to_string(id(i)) + " at position " + std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab_) + ")");
    if (mask_)
      for (uint64_t i = 0; i < count_; ++i)
        if (mask_[i] > 1) fail("mask value " + std::to_string(mask_[i]) + " at position " + std::to_string(i) + " must be 0 or 1");
  } catch (...) {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

TokenFile::~TokenFile() {
  if (map_) ::munmap(map_, size_);
}

uint32_t TokenFile::id(uint64_t i) const {
  const uint8_t* p = ids_ + i * id_bytes_;
  return id_bytes_ == 2 ? static_cast<uint32_t>(p[0] | (p[1] << 8)) : le32(p);
}

uint64_t TokenFile::content_hash() const {
  if (!hashed_) {
    // 8 bytes at a time through a multiply–xorshift mix (splitmix64's finaliser), the tail bytewise
    const uint8_t* b = static_cast<const uint8_t*>(map_);
    uint64_t h = 0x243f6a8885a308d3ull ^ size_;
    auto mix = [&](uint64_t w) {
      h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
      h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
      h ^= h >> 31;
    };
    size_t i = 0;
    for (; i + 8 <= size_; i += 8) {
      uint64_t w;
      std::memcpy(&w, b + i, 8);
      mix(w);
    }
    for (; i < size_; ++i) mix(b[i]);
    hash_ = h;
    hashed_ = true;
  }
  return hash_;
}

void check_seq_for(const TokenFile& f, int T, const std::string& flag) {
  if (T < 1) throw Error("--seq " + std::to_string(T) + " must be at least 1");
  if (f.row_length() > 0) {
    if (static_cast<uint64_t>(T) + 1 > f.row_length())
      throw Error(flag + " " + f.path() + " holds examples of " + std::to_string(f.row_length()) + " tokens, so --seq can be at most " +
                  std::to_string(f.row_length() - 1) + " (rowLength − 1), got " + std::to_string(T));
    if (f.count() == 0) throw Error(flag + " " + f.path() + " holds no examples");
  } else if (f.count() < static_cast<uint64_t>(T) + 1) {
    throw Error(flag + " " + f.path() + " holds " + std::to_string(f.count()) + " tokens, fewer than one window of --seq + 1 = " +
                std::to_string(T + 1) + " (use a smaller --seq or more data)");
  }
}

uint64_t batch_units(const TokenFile& f, int T) {
  return f.row_length() > 0 ? f.count() / f.row_length() : (f.count() - 1) / static_cast<uint64_t>(T);
}

void fill_units(const TokenFile& f, int T, const uint64_t* units, int rows, int32_t* tokens, int32_t* targets, float* weights) {
  for (int r = 0; r < rows; ++r) {
    const uint64_t start = f.row_length() > 0 ? units[r] * f.row_length() : units[r] * static_cast<uint64_t>(T);
    for (int t = 0; t < T; ++t) {
      const size_t o = static_cast<size_t>(r) * T + t;
      tokens[o] = static_cast<int32_t>(f.id(start + t));
      targets[o] = static_cast<int32_t>(f.id(start + t + 1));
      weights[o] = f.mask(start + t + 1);
    }
  }
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t SampleOrder::unit(uint64_t sample) {
  const uint64_t e = sample / units_;
  if (e != epoch_) {
    // Fisher–Yates with a splitmix64 stream keyed by (seed, epoch); the bound by 128-bit multiply.
    uint64_t st = seed_ ^ (0x5851f42d4c957f2dull * (e + 1));
    splitmix64(st);
    perm_.resize(units_);
    for (uint64_t i = 0; i < units_; ++i) perm_[i] = i;
    for (uint64_t i = units_; i > 1; --i) {
      const uint64_t r = static_cast<uint64_t>((static_cast<unsigned __int128>(splitmix64(st)) * i) >> 64);
      std::swap(perm_[i - 1], perm_[r]);
    }
    epoch_ = e;
  }
  return perm_[sample % units_];
}

}  // namespace strata

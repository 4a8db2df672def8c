#include "npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "dtype.h"
#include "error.h"

namespace strata {

namespace {

// Parser for the header dict, a Python literal such as
// {'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(const std::string& s, const std::string& path) : s_(s), path_(path) {}

  void parse(NpyArray& out) {
    bool have_descr = false, have_order = false, have_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') break;
      std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        out.descr = str();
        have_descr = true;
      } else if (key == "fortran_order") {
        out.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        out.shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      ws();
      if (peek() == ',') { ++pos_; continue; }
      ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) fail("header must contain 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(path_ + ": malformed .npy header (" + why + "): " + s_, STRATA_ERR_FORMAT);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void ws() { while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string str() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    size_t end = s_.find(q, ++pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return v;
  }
  bool boolean() {
    if (s_.compare(pos_, 4, "True") == 0) { pos_ += 4; return true; }
    if (s_.compare(pos_, 5, "False") == 0) { pos_ += 5; return false; }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') { ++pos_; return dims; }
      if (peek() < '0' || peek() > '9') fail("shape must be a tuple of non-negative integers");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (INT64_MAX - 9) / 10) fail("dimension too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      dims.push_back(v);
      ws();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
  }

  const std::string& s_;
  const std::string& path_;
  size_t pos_ = 0;
};

size_t descr_itemsize(const std::string& descr, const std::string& path) {
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '|') && std::strchr("fiub", descr[1])) {
    int n = std::atoi(descr.c_str() + 2);
    if (n == 1 || n == 2 || n == 4 || n == 8) return static_cast<size_t>(n);
  }
  throw Error(path + ": unsupported .npy dtype '" + descr + "' (expected little-endian like '<f4' or '<i4')",
              STRATA_ERR_FORMAT);
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open .npy file: " + std::strerror(errno), STRATA_ERR_IO);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read error", STRATA_ERR_IO);
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0)
    throw Error(path + ": not a .npy file (missing \\x93NUMPY magic); save arrays with numpy.save()", STRATA_ERR_FORMAT);
  uint8_t major = bytes[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = bytes[8] | (static_cast<size_t>(bytes[9]) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(path + ": truncated .npy header", STRATA_ERR_FORMAT);
    hlen = bytes[8] | (static_cast<size_t>(bytes[9]) << 8) | (static_cast<size_t>(bytes[10]) << 16) |
           (static_cast<size_t>(bytes[11]) << 24);
    hstart = 12;
  } else {
    throw Error(path + ": unsupported .npy format version " + std::to_string(major) + " (supported: 1, 2, 3)",
                STRATA_ERR_FORMAT);
  }
  if (hstart + hlen > bytes.size()) throw Error(path + ": truncated .npy header", STRATA_ERR_FORMAT);
  std::string header(reinterpret_cast<const char*>(bytes.data() + hstart), hlen);
  NpyArray a;
  HeaderParser(header, path).parse(a);
  size_t item = descr_itemsize(a.descr, path);
  uint64_t want = shape_numel(a.shape, path) * item;
  uint64_t have = bytes.size() - hstart - hlen;
  if (have != want)
    throw Error(path + ": .npy data is " + std::to_string(have) + " bytes but shape " + shape_str(a.shape) + " of '" +
                    a.descr + "' needs " + std::to_string(want) + (have < want ? " (file truncated)" : ""),
                STRATA_ERR_FORMAT);
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(hstart + hlen), bytes.end());
  return a;
}

std::vector<int32_t> read_npy_tokens(const std::string& path, int64_t* batch, int64_t* seqlen) {
  NpyArray a = read_npy(path);
  const char* fix = "; save tokens with numpy.save(path, np.asarray(tokens, dtype=np.int32).reshape(batch, seqlen))";
  if (a.descr != "<i4")
    throw Error(path + ": tokens must be int32 ('<i4'), got dtype '" + a.descr + "'" + fix, STRATA_ERR_FORMAT);
  if (a.shape.size() != 2)
    throw Error(path + ": tokens must be 2-D [batch, seqlen], got " + std::to_string(a.shape.size()) + "-D shape " +
                    shape_str(a.shape) + fix,
                STRATA_ERR_FORMAT);
  if (a.fortran_order && a.shape[0] > 1 && a.shape[1] > 1)
    throw Error(path + ": tokens are in Fortran order; save a C-contiguous array (np.ascontiguousarray)",
                STRATA_ERR_FORMAT);
  if (a.shape[0] == 0 || a.shape[1] == 0)
    throw Error(path + ": tokens array is empty (shape " + shape_str(a.shape) + ")", STRATA_ERR_FORMAT);
  *batch = a.shape[0];
  *seqlen = a.shape[1];
  std::vector<int32_t> out(a.data.size() / 4);
  std::memcpy(out.data(), a.data.data(), a.data.size());  // host is little-endian (x86-64 / aarch64)
  return out;
}

void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data) {
  size_t item = descr_itemsize(descr, path);
  uint64_t nbytes = shape_numel(shape, path) * item;
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dict += ',';  // Python's 1-tuple: (n,)
  dict += "), }";
  // numpy pads with spaces and a final '\n' so the data starts 64-byte aligned.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw Error(path + ": .npy header too large for format 1.0", STRATA_ERR_INVALID_ARGUMENT);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(path + ": cannot open for writing: " + std::strerror(errno), STRATA_ERR_IO);
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(dict.size() & 0xff),
                     static_cast<uint8_t>(dict.size() >> 8)};
  bool ok = std::fwrite(pre, 1, 10, f) == 10 && std::fwrite(dict.data(), 1, dict.size(), f) == dict.size() &&
            (nbytes == 0 || std::fwrite(data, 1, nbytes, f) == nbytes);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw Error(path + ": write failed (disk full?)", STRATA_ERR_IO);
}

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write_npy(path, "<f4", shape, data);
}
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data) {
  write_npy(path, "<i4", shape, data);
}

}  // namespace strata

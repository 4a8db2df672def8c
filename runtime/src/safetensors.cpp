#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.h"
#include "json.h"

namespace strata {

namespace {

std::string u64s(uint64_t v) { return std::to_string(v); }

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parse one tensor entry of the header, checking types and per-tensor sizes.
TensorInfo parse_entry(const std::string& path, const std::string& name, const json::Value& v,
                       uint64_t data_size) {
  std::string ctx = path + ": tensor '" + name + "'";
  auto bad = [&](const std::string& why) { return Error(ctx + ": " + why, STRATA_ERR_FORMAT); };
  if (!v.is_object()) throw bad(std::string("header entry must be an object, got ") + json::type_name(v.type()));
  const json::Value* dt = v.find("dtype");
  const json::Value* sh = v.find("shape");
  const json::Value* off = v.find("data_offsets");
  if (!dt || !dt->is_string()) throw bad("missing or non-string \"dtype\"");
  if (!sh || !sh->is_array()) throw bad("missing or non-array \"shape\"");
  if (!off || !off->is_array() || off->as_array().size() != 2)
    throw bad("\"data_offsets\" must be an array [begin, end]");
  TensorInfo t;
  t.name = name;
  t.dtype = parse_dtype(dt->as_string(), ctx);
  for (const auto& d : sh->as_array()) {
    if (!d.is_integer() || d.as_int() < 0) throw bad("shape entries must be non-negative integers, got " + json::dump(*sh));
    t.shape.push_back(d.as_int());
  }
  for (const auto& o : off->as_array())
    if (!o.is_integer() || o.as_int() < 0) throw bad("data_offsets must be non-negative integers, got " + json::dump(*off));
  t.begin = static_cast<uint64_t>(off->as_array()[0].as_int());
  t.end = static_cast<uint64_t>(off->as_array()[1].as_int());
  std::string offs = "[" + u64s(t.begin) + ", " + u64s(t.end) + "]";
  if (t.begin > t.end) throw bad("data_offsets " + offs + " are out of order (begin > end)");
  if (t.end > data_size)
    throw bad("data_offsets " + offs + " extend beyond the data section (" + u64s(data_size) +
              " bytes); the file is truncated or the header is wrong");
  uint64_t numel = shape_numel(t.shape, ctx);
  uint64_t want = numel * dtype_size(t.dtype);
  if (numel != 0 && want / numel != dtype_size(t.dtype)) throw bad("shape too large");
  if (t.nbytes() != want)
    throw bad("data_offsets " + offs + " span " + u64s(t.nbytes()) + " bytes but dtype " + dtype_name(t.dtype) +
              " x shape " + shape_str(t.shape) + " needs " + u64s(want) + " bytes");
  return t;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    throw Error(path + ": cannot open safetensors file: " + std::strerror(errno), STRATA_ERR_IO);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file", STRATA_ERR_IO);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(path + ": truncated safetensors file: " + u64s(size) +
                    " bytes, shorter than the 8-byte header length prefix",
                STRATA_ERR_FORMAT);
  }
  map_ = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(path + ": cannot mmap file: " + std::strerror(errno), STRATA_ERR_IO);
  }
  map_size_ = size;
  try {
    const uint8_t* base = static_cast<const uint8_t*>(map_);
    uint64_t hlen = read_u64_le(base);
    if (hlen > kSafetensorsMaxHeader)
      throw Error(path + ": header length " + u64s(hlen) + " bytes exceeds the 100 MB limit; not a safetensors file?",
                  STRATA_ERR_FORMAT);
    if (hlen > size - 8)
      throw Error(path + ": truncated safetensors file: header length " + u64s(hlen) + " bytes but only " +
                      u64s(size - 8) + " bytes follow the length prefix",
                  STRATA_ERR_FORMAT);
    std::string header(reinterpret_cast<const char*>(base + 8), hlen);
    json::Value root = json::parse(header, path + ": safetensors header");
    if (!root.is_object())
      throw Error(path + std::string(": safetensors header must be a JSON object, got ") + json::type_name(root.type()),
                  STRATA_ERR_FORMAT);
    data_ = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;

    for (const auto& kv : root.as_object()) {
      if (kv.first == "__metadata__") {
        if (!kv.second.is_object()) throw Error(path + ": \"__metadata__\" must be an object of strings", STRATA_ERR_FORMAT);
        for (const auto& m : kv.second.as_object()) {
          if (!m.second.is_string())
            throw Error(path + ": \"__metadata__\" value for key '" + m.first + "' must be a string, got " +
                            json::type_name(m.second.type()),
                        STRATA_ERR_FORMAT);
          metadata_[m.first] = m.second.as_string();
        }
        continue;
      }
      tensors_.push_back(parse_entry(path, kv.first, kv.second, data_size));
    }

    // Offsets must tile [0, data_size) exactly.
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t next = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo& t : tensors_) {
      if (t.begin < next)
        throw Error(path + ": tensor '" + t.name + "' data_offsets [" + u64s(t.begin) + ", " + u64s(t.end) +
                        "] overlap tensor '" + prev->name + "' [" + u64s(prev->begin) + ", " + u64s(prev->end) + "]",
                    STRATA_ERR_FORMAT);
      if (t.begin > next)
        throw Error(path + ": gap in data section: bytes [" + u64s(next) + ", " + u64s(t.begin) +
                        ") before tensor '" + t.name + "' belong to no tensor",
                    STRATA_ERR_FORMAT);
      next = t.end;
      prev = &t;
    }
    if (next != data_size)
      throw Error(path + ": data section has " + u64s(data_size) + " bytes but tensors cover only " + u64s(next) +
                      " (trailing bytes belong to no tensor)",
                  STRATA_ERR_FORMAT);
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw Error(path_ + ": missing tensor '" + name + "'", STRATA_ERR_WEIGHT_MISMATCH);
  return *t;
}

void SafetensorsFile::validate_against(const std::vector<ExpectedTensor>& expected, bool allow_extra) const {
  std::vector<std::string> problems;
  std::map<std::string, bool> wanted;
  for (const ExpectedTensor& e : expected) {
    wanted[e.name] = true;
    const TensorInfo* t = find(e.name);
    if (!t) {
      problems.push_back("missing tensor '" + e.name + "' (expected " + dtype_name(e.dtype) + " " +
                         shape_str(e.shape) + ")");
      continue;
    }
    if (t->dtype != e.dtype)
      problems.push_back("tensor '" + e.name + "': wrong dtype: expected " + dtype_name(e.dtype) + ", got " +
                         dtype_name(t->dtype));
    if (t->shape != e.shape)
      problems.push_back("tensor '" + e.name + "': wrong shape: expected " + shape_str(e.shape) + ", got " +
                         shape_str(t->shape));
  }
  if (!allow_extra)
    for (const TensorInfo& t : tensors_)
      if (!wanted.count(t.name)) problems.push_back("unexpected tensor '" + t.name + "' (not used by this model)");
  if (problems.empty()) return;
  std::string msg = path_ + ": weights do not match the model (" + std::to_string(problems.size()) + " problem" +
                    (problems.size() == 1 ? "" : "s") + "):";
  const size_t kMaxShown = 20;  // keep the message readable for badly wrong files
  for (size_t i = 0; i < problems.size() && i < kMaxShown; ++i) msg += "\n  " + problems[i];
  if (problems.size() > kMaxShown) msg += "\n  ... and " + std::to_string(problems.size() - kMaxShown) + " more";
  throw Error(msg, STRATA_ERR_WEIGHT_MISMATCH);
}

void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value m = json::Value::object();
    for (const auto& kv : metadata) m.set(kv.first, kv.second);
    header.set("__metadata__", m);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const TensorWrite& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      throw Error(path + ": invalid tensor name '" + t.name + "'");
    if (header.find(t.name)) throw Error(path + ": duplicate tensor name '" + t.name + "'");
    uint64_t nbytes = shape_numel(t.shape, path + ": tensor '" + t.name + "'") * dtype_size(t.dtype);
    if (nbytes && !t.data) throw Error(path + ": tensor '" + t.name + "' has no data");
    json::Value e = json::Value::object();
    e.set("dtype", dtype_name(t.dtype));
    json::Value shape = json::Value::array();
    for (int64_t d : t.shape) shape.push_back(d);
    e.set("shape", shape);
    json::Value offs = json::Value::array();
    offs.push_back(offset);
    offs.push_back(offset + nbytes);
    e.set("data_offsets", offs);
    header.set(t.name, e);
    sizes.push_back(nbytes);
    offset += nbytes;
  }
  std::string h = json::dump(header);
  while ((8 + h.size()) % 8) h += ' ';  // align the data section

  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(path + ": cannot open for writing: " + std::strerror(errno), STRATA_ERR_IO);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i)
    ok = sizes[i] == 0 || std::fwrite(tensors[i].data, 1, sizes[i], f) == sizes[i];
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw Error(path + ": write failed (disk full?)", STRATA_ERR_IO);
}

}  // namespace strata

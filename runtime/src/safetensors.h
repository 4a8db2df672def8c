// safetensors reader/writer (https://github.com/huggingface/safetensors):
//   [u64 little-endian N][N bytes JSON header][data section]
// The header maps tensor name -> {"dtype", "shape", "data_offsets":[begin,end]}
// (offsets relative to the data section) plus an optional "__metadata__"
// object of string -> string.
//
// Validation mirrors the reference implementation: offsets must tile the data
// section exactly (no overlap, no gap, no trailing bytes) and each tensor's
// byte length must equal numel * dtype size. Every failure throws
// strata::Error whose message starts with the file path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dtype.h"

namespace strata {

// Headers above this are rejected before reading (reference impl: 100 MB).
constexpr uint64_t kSafetensorsMaxHeader = 100u * 1000u * 1000u;

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets within the data section
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

// What a model expects a weights file to contain.
struct ExpectedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// A read-only, memory-mapped safetensors file.
class SafetensorsFile {
 public:
  // Opens, maps and validates. Throws strata::Error (IO or FORMAT).
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in file order (sorted by data offset).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr if absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws naming the tensor if absent.
  const TensorInfo& get(const std::string& name) const;
  // Pointer to the tensor's bytes inside the mapping (valid while *this lives).
  const uint8_t* data(const TensorInfo& t) const { return data_ + t.begin; }

  // Check the file against what the model expects. Collects every problem
  // (missing tensor, wrong dtype, wrong shape, and - unless allow_extra -
  // tensors the model does not use) into one STRATA_ERR_WEIGHT_MISMATCH error,
  // each line naming the tensor with expected vs got.
  void validate_against(const std::vector<ExpectedTensor>& expected, bool allow_extra = false) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of data section
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write; `data` must hold numel(shape) * dtype_size bytes.
struct TensorWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// Write a safetensors file. Tensors are laid out in the given order; the
// header is space-padded so the data section starts 8-byte aligned (as the
// reference writer does). Throws on duplicate/empty names or I/O errors.
void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace strata

// Minimal NumPy .npy reader/writer (format versions 1.0-3.0 read, 1.0
// written). Used by the model CLI: tokens in as int32 [batch, seqlen],
// logits out as float32 [batch, seqlen, vocab].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct NpyArray {
  std::string descr;           // e.g. "<i4", "<f4"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;   // raw little-endian element bytes, C order
};

// Throws strata::Error: IO (missing/unreadable) or FORMAT (bad magic,
// header, truncated data). Does not interpret the dtype.
NpyArray read_npy(const std::string& path);

// Read a token file: must be int32 ('<i4'), 2-D [batch, seqlen], C order.
// Errors say what was found and how to produce a valid file.
std::vector<int32_t> read_npy_tokens(const std::string& path, int64_t* batch, int64_t* seqlen);

// Write a v1.0 .npy; `data` holds product(shape) elements of `descr`
// ("<f4", "<i4", "<i8", "<f2"; itemsize taken from the descr digit).
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data);
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, const int32_t* data);

}  // namespace strata

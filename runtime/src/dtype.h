// Tensor element types shared by safetensors, the manifest and weight init,
// plus float <-> bf16/f16 conversions (round-to-nearest-even).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace strata {

enum class DType { BF16, F16, F32, I32, I64 };

// Bytes per element.
size_t dtype_size(DType dt);
// Safetensors spelling: "BF16", "F16", "F32", "I32", "I64".
const char* dtype_name(DType dt);
// Parse the safetensors spelling; throws strata::Error listing valid names.
// `context` prefixes the message (e.g. "weights.safetensors: tensor 'wte'").
DType parse_dtype(const std::string& name, const std::string& context);
bool try_parse_dtype(const std::string& name, DType* out);

// Product of dims; throws on negative dims or overflow.
uint64_t shape_numel(const std::vector<int64_t>& shape, const std::string& context);
// "[2, 3, 4]"
std::string shape_str(const std::vector<int64_t>& shape);

// IEEE binary32 -> bfloat16, round to nearest even; NaN stays (quiet) NaN.
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);
// IEEE binary32 -> binary16, round to nearest even, overflow -> inf,
// subnormals handled.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

// Convert n floats into dst with element type dt (BF16/F16/F32 only; integer
// targets are rejected because weight init only produces real values).
void convert_from_f32(const float* src, size_t n, DType dt, void* dst);

}  // namespace strata

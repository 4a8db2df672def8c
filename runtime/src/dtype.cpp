#include "dtype.h"

#include <cstring>

#include "error.h"

namespace strata {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::F32: return 4;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::F32: return "F32";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

bool try_parse_dtype(const std::string& name, DType* out) {
  static const DType all[] = {DType::BF16, DType::F16, DType::F32, DType::I32, DType::I64};
  for (DType d : all) {
    if (name == dtype_name(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

DType parse_dtype(const std::string& name, const std::string& context) {
  DType d;
  if (!try_parse_dtype(name, &d))
    throw Error(context + ": unknown dtype \"" + name +
                    "\" (supported: BF16, F16, F32, I32, I64)",
                STRATA_ERR_FORMAT);
  return d;
}

uint64_t shape_numel(const std::vector<int64_t>& shape, const std::string& context) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(context + ": negative dimension in shape " + shape_str(shape), STRATA_ERR_FORMAT);
    if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d))
      throw Error(context + ": shape " + shape_str(shape) + " has too many elements", STRATA_ERR_FORMAT);
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

static uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit.
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t h) { return float_of(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_f16(float f) {
  uint32_t u = bits_of(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520 -> inf
  if (a < 0x38800000u) {
    // Result is subnormal (or zero) in f16: value = m * 2^-24. Shift the
    // 24-bit significand so that bit 0 has weight 2^-24, rounding to even.
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14..24 for the range handled here
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped bits to even.
  uint32_t r = a - 0x38000000u;  // exponent - 112
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0x1f) return float_of(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    // subnormal: m * 2^-24, exact in f32
    float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return float_of(sign | ((e + 112) << 23) | (m << 13));
}

void convert_from_f32(const float* src, size_t n, DType dt, void* dst) {
  switch (dt) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::F16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    default:
      throw Error(std::string("cannot convert float weights to integer dtype ") + dtype_name(dt));
  }
}

}  // namespace strata

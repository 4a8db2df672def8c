// strata/bf16.cuh — bf16 conversions and paired loads/stores.
//
//   to_bf16(v)                     round an fp32 value to bf16 and back (the IR's cast to bf16)
//   pack_bf16x2 / unpack_bf16x2    two fp32 <-> one 32-bit register of two bf16 (lo = lower address)
//   load_bf16x2 / store_bf16x2     4-byte bf16 pair load/store as float2 (pointer 4-byte aligned)
//   store_f32x2                    8-byte float pair store (pointer 8-byte aligned)
#pragma once

#include "base.cuh"

namespace strata {
inline namespace math {

STRATA_HD float to_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

}  // namespace math

STRATA_DEV uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low 16 bits) = lo
  return *reinterpret_cast<uint32_t*>(&v);
}
STRATA_DEV float2 unpack_bf16x2(uint32_t v) {
  __nv_bfloat162 b = *reinterpret_cast<__nv_bfloat162*>(&v);
  return __bfloat1622float2(b);
}

STRATA_DEV float2 load_bf16x2(const __nv_bfloat16* p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}
STRATA_DEV void store_bf16x2(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}
STRATA_DEV void store_f32x2(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

}  // namespace strata

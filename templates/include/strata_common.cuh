// strata_common.cuh — small device/host helpers shared by Strata kernels.
//
// Owned by the GEMM engineer; other kernels include it but should not edit it.
// Contents:
//   strata::ceil_div                       host+device integer ceil division
//   strata::smem_u32                       generic -> shared-window 32-bit address
//   strata::bf16x2_to_float2 / float2_to_bf16x2
//   strata::load_bf16x2 / store_bf16x2     4-byte bf16 pair load/store (as float2)
//   strata::store_f32x2                    8-byte float pair store
//   strata::ld_global_v4 / st_global_v4    16-byte vector load/store (uint4)
//   strata::silu / gelu_tanh / relu_sq     common activation helpers (fp32)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace strata {

template <typename T>
__host__ __device__ constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Convert a generic pointer into a shared memory address usable by PTX
// (ldmatrix, cp.async, wgmma descriptors).
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ float2 bf16x2_to_float2(__nv_bfloat162 v) {
  return __bfloat1622float2(v);
}
__device__ __forceinline__ __nv_bfloat162 float2_to_bf16x2(float a, float b) {
  return __floats2bfloat162_rn(a, b);  // a -> low half (lower address)
}

// Pair loads/stores: ptr must be 4-byte (bf16x2) or 8-byte (float2) aligned.
__device__ __forceinline__ float2 load_bf16x2(const __nv_bfloat16* p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}
__device__ __forceinline__ void store_bf16x2(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}
__device__ __forceinline__ void store_f32x2(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

// 16-byte vector accesses; ptr must be 16-byte aligned.
__device__ __forceinline__ uint4 ld_global_v4(const void* p) {
  return *reinterpret_cast<const uint4*>(p);
}
__device__ __forceinline__ void st_global_v4(void* p, uint4 v) {
  *reinterpret_cast<uint4*>(p) = v;
}

// Activation helpers (fp32 in, fp32 out).
__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }
__device__ __forceinline__ float relu_sq(float x) { float r = fmaxf(x, 0.0f); return r * r; }
__device__ __forceinline__ float gelu_tanh(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

}  // namespace strata

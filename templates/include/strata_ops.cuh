// strata_ops.cuh — the `st::` vocabulary of the generated row kernels and GEMM epilogues
// (compiler/codegen/expr.ts and row.ts emit these names): typed loads/stores, the scalar math of
// strata/math.cuh (st::silu, st::softplus, st::gelu, st::to_bf16, ...), block reductions, row
// statistics for the norms and rotary embedding. Everything is float: generated kernels load
// bf16/f32, compute in fp32, and round once when storing (or where the IR has an explicit cast).
#pragma once
#include <math.h>

#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/math.cuh"

namespace st {

__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const int* p) { return static_cast<float>(*p); }
__device__ __forceinline__ void st(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void st(float* p, float v) { *p = v; }

// The scalar math (precise forms: expf, erff, tanhf) and to_bf16, as st::<name>.
using namespace strata::math;

// Sum of `v` over the block; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  v = lane < nwarps ? scratch[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Row statistics over `groups` equal groups of the row held in shared memory `x`:
// mean (0 for RMS norms) and rstd = 1/sqrt(mean((x−mean)²) + eps) per group.
template <bool kCentered>
__device__ void row_stats(const float* x, int cols, int groups, float eps, float* mean, float* rstd) {
  __shared__ float scratch[32];
  const int gs = cols / groups;
  for (int g = 0; g < groups; ++g) {
    float m = 0.f;
    if (kCentered) {
      float s = 0.f;
      for (int c = threadIdx.x; c < gs; c += blockDim.x) s += x[g * gs + c];
      m = block_sum(s, scratch) / gs;
    }
    float q = 0.f;
    for (int c = threadIdx.x; c < gs; c += blockDim.x) {
      const float d = x[g * gs + c] - m;
      q += d * d;
    }
    q = block_sum(q, scratch) / gs;
    if (threadIdx.x == 0) {
      mean[g] = m;
      rstd[g] = rsqrtf(q + eps);
    }
  }
  __syncthreads();
}

// Half-split rotary embedding of element `i` of a head of `rot` rotated dims: x is the value,
// partner the element rot/2 away (after it for i < rot/2, before it otherwise). The angle
// pos·θ^(−2j/rot) is reduced to [0, 2π) in double first, so long contexts keep their precision
// and the fast __sincosf suffices (sincosf's large-argument path would need a stack frame).
// rope_inv takes the inverse frequency θ^(−2j/rot) of element i's pair j = i mod rot/2 instead of θ
// (the code generator emits a double table of them: no pow per element).
__device__ __forceinline__ float rope_inv(float x, float partner, int i, int rot, float pos, double inv_freq) {
  const int half = rot / 2;
  const double turns = (double)pos * inv_freq * 0.15915494309189535;
  const float r = (float)(turns - floor(turns)) * 6.2831853071795865f;
  float s, c;
  __sincosf(r, &s, &c);
  return i < half ? x * c - partner * s : x * c + partner * s;
}
__device__ __forceinline__ float rope(float x, float partner, int i, int rot, float pos, float theta) {
  const int half = rot / 2;
  const int j = i < half ? i : i - half;
  return rope_inv(x, partner, i, rot, pos, pow((double)theta, -2.0 * j / rot));
}

}  // namespace st

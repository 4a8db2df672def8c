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

// Eight consecutive elements, for the row kernels' vectorized loop (row.ts): ld8 reads them with
// 16-byte loads (one for bf16, two for f32) and x[j] gives element j as float, exactly as st::ld
// would (bf16 → f32 is exact); st8 rounds each element as st::st does and writes them with
// 16-byte stores. The pointer must be 16-byte aligned: the kernel checks its base pointers with
// st::aligned16 and takes the scalar loop otherwise (a misaligned vector access traps on the GPU;
// the host build of these helpers traps too, so host tests see a wrong path).
template <class T>
struct vec8;
template <>
struct vec8<__nv_bfloat16> {
  uint4 u;
  STRATA_HD float operator[](int j) const {
    const unsigned w = j < 2 ? u.x : j < 4 ? u.y : j < 6 ? u.z : u.w;
    return __bfloat162float(__ushort_as_bfloat16((unsigned short)((j & 1) ? (w >> 16) : (w & 0xffffu))));
  }
};
template <>
struct vec8<float> {
  float4 a, b;
  STRATA_HD float operator[](int j) const {
    const float4& h = j < 4 ? a : b;
    const int k = j & 3;
    return k == 0 ? h.x : k == 1 ? h.y : k == 2 ? h.z : h.w;
  }
};

STRATA_HD void check_aligned16(const void* p) {
#if !defined(__CUDA_ARCH__)
  if (reinterpret_cast<uintptr_t>(p) & 15u) __builtin_trap();
#if defined(STRATA_HOST_VEC_COUNT)
  ++STRATA_HOST_VEC_COUNT;  // host tests: how many vector accesses ran (tests/device/row-vec-host.test.ts)
#endif
#else
  (void)p;
#endif
}
STRATA_HD vec8<__nv_bfloat16> ld8(const __nv_bfloat16* p) {
  check_aligned16(p);
  return {*reinterpret_cast<const uint4*>(p)};
}
STRATA_HD vec8<float> ld8(const float* p) {
  check_aligned16(p);
  return {reinterpret_cast<const float4*>(p)[0], reinterpret_cast<const float4*>(p)[1]};
}
STRATA_HD void st8(__nv_bfloat16* p, const float (&v)[8]) {
  check_aligned16(p);
  unsigned w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k)
    w[k] = (unsigned)__bfloat16_as_ushort(__float2bfloat16(v[2 * k])) | ((unsigned)__bfloat16_as_ushort(__float2bfloat16(v[2 * k + 1])) << 16);
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}
STRATA_HD void st8(float* p, const float (&v)[8]) {
  check_aligned16(p);
  reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
// Are all these pointers 16-byte aligned (the vectorized loop's run-time condition)?
template <class... P>
STRATA_HD bool aligned16(const P*... p) {
  return ((reinterpret_cast<uintptr_t>(p) | ... | uintptr_t(0)) & 15u) == 0;
}

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
// kGroups (the code generator passes `groups` here too): 1, or more than 32, block_sum per group;
// 2–32 (Mamba-2's gated norm: 8) every group's per-warp partials in one round (warp i then
// reduces groups i, i + warps, …) — one barrier pair per pass instead of one per group, and the
// same additions in the same order as block_sum, so bit-identical to it.
template <bool kCentered, int kGroups = 1>
__device__ void row_stats(const float* x, int cols, int groups, float eps, float* mean, float* rstd) {
  __shared__ float scratch[32];
  const int gs = cols / groups;
  if constexpr (kGroups == 1 || kGroups > 32) {
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
  } else {
    __shared__ float part[kGroups][33];  // [group][warp]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = (blockDim.x + 31) >> 5;
    // one pass: every group's sum (sq: of squared deviations from mean[g]) into part[g][warp], then
    // warp w reduces groups w, w + nwarps, … over the warps and hands the result to `done`
    const auto pass = [&](bool sq, auto done) {
      for (int g = 0; g < groups; ++g) {
        const float m = sq ? mean[g] : 0.f;
        float s = 0.f;
        for (int c = threadIdx.x; c < gs; c += blockDim.x) {
          if (sq) {
            const float d = x[g * gs + c] - m;
            s += d * d;
          } else {
            s += x[g * gs + c];
          }
        }
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) part[g][warp] = s;
      }
      __syncthreads();
      for (int g = warp; g < groups; g += nwarps) {
        float v = lane < nwarps ? part[g][lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) done(g, v);
      }
      __syncthreads();
    };
    if (kCentered) pass(false, [&](int g, float v) { mean[g] = v / gs; });
    else
      for (int g = threadIdx.x; g < groups; g += blockDim.x) mean[g] = 0.f;
    if (!kCentered) __syncthreads();
    pass(true, [&](int g, float v) { rstd[g] = rsqrtf(v / gs + eps); });
  }
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

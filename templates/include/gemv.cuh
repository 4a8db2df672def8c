// gemv.cuh — y = epilogue(x · Wᵀ) for a few rows of x (decode: M ≤ 8 tokens), bound by reading W.
//
// At decode the GEMM is a stream over the weights: each weight is read once and used M times, so
// the tensor-core tiles (256 rows of x per CTA) would idle and launch too few CTAs to draw the
// HBM bandwidth. Here one warp owns two adjacent output columns n, n+1: its lanes stride over K
// in 16-byte chunks (8 bf16) of both weight rows (streamed, not kept in L1), multiply them with
// the same chunks of every x row (small, L1/L2-resident) in fp32, reduce across the warp, and
// hand (row, n, acc_n, acc_n+1) to the same epilogue hook as the GEMM (Epi::store2), so every
// fused epilogue (bias, activation, gate, residual, cast) works unchanged.
//
// The per-lane arithmetic (gemv_lane) is __host__ __device__: tests/device checks it on the host
// against a plain dot product for every lane split.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace strata {
namespace gemv {

using bf16 = __nv_bfloat16;
constexpr int kMaxRows = 8;
constexpr int kWarpsPerBlock = 8;

__host__ __device__ inline void bf16x8_to_float(const uint4& v, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// Lane `lane`'s partial sums for columns n0, n0+1: chunks lane, lane+32, … of K/8.
// A: M rows, row stride lda (elements, multiple of 8); W: [N, K] row-major, K multiple of 8.
template <bool kDevice>
__host__ __device__ inline void gemv_lane(const bf16* A, long long lda, const bf16* W, int M, int K, int n0, int lane,
                                          float (&acc)[kMaxRows][2]) {
#pragma unroll
  for (int m = 0; m < kMaxRows; ++m) acc[m][0] = acc[m][1] = 0.f;
  const uint4* w0 = reinterpret_cast<const uint4*>(W + static_cast<long long>(n0) * K);
  const uint4* w1 = reinterpret_cast<const uint4*>(W + static_cast<long long>(n0 + 1) * K);
  const int kv = K / 8;
#pragma unroll 4
  for (int c = lane; c < kv; c += 32) {
    uint4 a, b;
    if constexpr (kDevice) {
#ifdef __CUDA_ARCH__
      a = load_stream(w0 + c);
      b = load_stream(w1 + c);
#endif
    } else {
      a = w0[c];
      b = w1[c];
    }
    float fa[8], fb[8];
    bf16x8_to_float(a, fa);
    bf16x8_to_float(b, fb);
#pragma unroll
    for (int m = 0; m < kMaxRows; ++m) {
      if (m >= M) break;
      float fx[8];
      bf16x8_to_float(*reinterpret_cast<const uint4*>(A + m * lda + 8LL * c), fx);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[m][0] = fmaf(fx[j], fa[j], acc[m][0]);
        acc[m][1] = fmaf(fx[j], fb[j], acc[m][1]);
      }
    }
  }
}

template <class Epi>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) gemv_kernel(const bf16* __restrict__ A, int lda, const bf16* __restrict__ W, int M, int N,
                                                                     int K, const typename Epi::Params ep) {
  const int lane = threadIdx.x & 31;
  const int n0 = 2 * (blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5));
  if (n0 >= N) return;
  float acc[kMaxRows][2];
  gemv_lane<true>(A, lda, W, M, K, n0, lane, acc);
#pragma unroll
  for (int m = 0; m < kMaxRows; ++m) {
    if (m >= M) break;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], o);
      acc[m][1] += __shfl_xor_sync(0xffffffffu, acc[m][1], o);
    }
  }
  // unrolled with constant indices: a run-time index into acc would put it in local memory
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < kMaxRows; ++m)
      if (m < M) Epi::store2(ep, m, n0, acc[m][0], acc[m][1]);
  }
}

// M in 1..kMaxRows; N even; K, lda multiples of 8; A and W 16-byte aligned (the GEMM's rules).
template <class Epi>
inline cudaError_t gemv_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K, const typename Epi::Params& ep, cudaStream_t stream = 0) {
  if (M < 1 || M > kMaxRows || N < 2 || (N & 1) || K < 8 || (K & 7) || (lda & 7) || ((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(W)) & 15))
    return cudaErrorInvalidValue;
  const int warps = N / 2;
  gemv_kernel<Epi><<<(warps + kWarpsPerBlock - 1) / kWarpsPerBlock, 32 * kWarpsPerBlock, 0, stream>>>(A, lda, W, M, N, K, ep);
  return cudaGetLastError();
}

}  // namespace gemv
}  // namespace strata

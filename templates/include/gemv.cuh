// gemv.cuh — y = epilogue(x · Wᵀ) for a few rows of x (decode: M ≤ 8 tokens), bound by reading W.
//
// At decode the GEMM is a stream over the weights: each weight is read once and used M times, so
// the tensor-core tiles (256 rows of x per CTA) would idle and launch too few CTAs to draw the
// HBM bandwidth. Here a pair of adjacent output columns n, n+1 belongs to kSplit warps of one
// block, each taking one contiguous part of K: its lanes stride over the part in 16-byte chunks
// (8 bf16) of both weight rows (streamed, not kept in L1), multiply them with the same chunks of
// every x row (small, L1/L2-resident) in fp32, and reduce across the warp; the parts are summed
// in shared memory and the pair's first warp hands (row, n, acc_n, acc_n+1) to the same epilogue
// hook as the GEMM (Epi::store2), so every fused epilogue (bias, activation, gate, residual,
// cast) works unchanged. kSplit (1, 2, 4 or 8) is chosen per launch so that even a projection
// with few output columns and long rows (out_proj 8192→4096, MLP down 16384→4096) has enough
// warps in flight to draw the full bandwidth.
//
// Launched programmatically (strata/pdl.cuh): before waiting on the kernel before it, each warp
// prefetches the first lines of its weight rows into L2, so the weight stream starts while the
// previous kernel (a norm, the conv, the scan) finishes.
//
// A prologue (Pro, decode only) computes the rows of x itself instead of reading them: each block
// writes Pro::rows(ep, M, a) — e.g. the RMSNorm of the residual stream, statistic and all — into
// shared memory (M × Pro::kCols bf16, kCols = K) after the wait, and reads x from there; the
// norm's own kernel is skipped at these sizes, one launch fewer.
//
// The per-lane arithmetic (gemv_lane) is __host__ __device__: tests/device checks it on the host
// against a plain dot product for every split and lane.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <algorithm>

#include "strata/pdl.cuh"
#include "strata/ptx.cuh"

namespace strata {
namespace gemv {

using bf16 = __nv_bfloat16;
constexpr int kMaxRows = 8;
constexpr int kWarpsPerBlock = 8;
// Bytes of W prefetched into L2 before the kernel waits on its predecessor (launched
// programmatically, strata/pdl.cuh): enough to keep HBM busy across the gap between kernels
// (a few µs at ~4 TB/s), small enough to stay in L2 until the loads reach it.
constexpr long long kPrefetchBytes = 16ll << 20;

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

// Lane `lane`'s partial sums for columns n0, n0+1 over the 16-byte chunks c_begin + lane,
// c_begin + lane + 32, … below c_end (chunk c holds K elements 8c … 8c+7).
// A: M rows, row stride lda (elements, multiple of 8); W: [N, K] row-major, K multiple of 8.
template <bool kDevice>
__host__ __device__ inline void gemv_lane(const bf16* A, long long lda, const bf16* W, int M, int K, int n0, int c_begin, int c_end, int lane,
                                          float (&acc)[kMaxRows][2]) {
#pragma unroll
  for (int m = 0; m < kMaxRows; ++m) acc[m][0] = acc[m][1] = 0.f;
  const uint4* w0 = reinterpret_cast<const uint4*>(W + static_cast<long long>(n0) * K);
  const uint4* w1 = reinterpret_cast<const uint4*>(W + static_cast<long long>(n0 + 1) * K);
#pragma unroll 4
  for (int c = c_begin + lane; c < c_end; c += 32) {
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

// The chunks [begin, end) of K/8 that part `part` of `split` takes: contiguous, sizes differing
// by at most one.
__host__ __device__ inline void gemv_part(int K, int split, int part, int& begin, int& end) {
  const int kv = K / 8;
  begin = static_cast<int>(static_cast<long long>(kv) * part / split);
  end = static_cast<int>(static_cast<long long>(kv) * (part + 1) / split);
}

// No prologue: x is read from memory as stored.
struct NoPrologue {
  static constexpr int kCols = 0;
};
// No step after the store. A Post (decode only) runs Post::cols2(ep, M, n0) in the thread that
// stored columns n0, n0+1 of all M rows, after those stores: e.g. the conv1d step of a column slice.
struct NoPost {
  static constexpr bool kOn = false;
};

template <class Epi, int kSplit, class Pro = NoPrologue, class Post = NoPost>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) gemv_kernel(const bf16* __restrict__ A, int lda, const bf16* __restrict__ W, int M, int N,
                                                                     int K, int prefetch_lines, const typename Epi::Params ep) {
  static_assert(kWarpsPerBlock % kSplit == 0, "kSplit divides the warps of a block");
  constexpr int kPairs = kWarpsPerBlock / kSplit;  // column pairs per block
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int part = warp % kSplit;
  const int n0 = 2 * (blockIdx.x * kPairs + warp / kSplit);
  int c_begin, c_end;
  gemv_part(K, kSplit, part, c_begin, c_end);
  // the weights are never written by an earlier kernel: start streaming this warp's part of both
  // rows into L2 while the kernel before this one finishes (strata/pdl.cuh)
  if (n0 < N) {
    const int first_line = c_begin / 8, lines = min(prefetch_lines, (c_end - c_begin + 7) / 8);  // 8 chunks per 128-byte line
    for (int i = lane; i < lines; i += 32) {
      prefetch_l2(W + static_cast<long long>(n0) * K + 64ll * (first_line + i));
      prefetch_l2(W + static_cast<long long>(n0 + 1) * K + 64ll * (first_line + i));
    }
  }
  pdl_wait();
  pdl_launch_dependents();
  const bf16* x = A;
  long long ldx = lda;
  if constexpr (Pro::kCols > 0) {
    static_assert(kMaxRows * Pro::kCols * 2 + Pro::kCols * 4 <= 40 * 1024, "a prologue's rows fit in static shared memory");
    __shared__ __align__(16) bf16 x_rows[kMaxRows * Pro::kCols];
    Pro::rows(ep, M, x_rows);  // every thread of the block; ends with a barrier
    x = x_rows;
    ldx = Pro::kCols;
  }
  float acc[kMaxRows][2];
  if (n0 < N) gemv_lane<true>(x, ldx, W, M, K, n0, c_begin, c_end, lane, acc);
#pragma unroll
  for (int m = 0; m < kMaxRows; ++m) {
    if (m >= M) break;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      acc[m][0] += __shfl_xor_sync(0xffffffffu, acc[m][0], o);
      acc[m][1] += __shfl_xor_sync(0xffffffffu, acc[m][1], o);
    }
  }
  if constexpr (kSplit > 1) {
    __shared__ float part_sums[kWarpsPerBlock][kMaxRows][2];
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < kMaxRows; ++m) part_sums[warp][m][0] = acc[m][0], part_sums[warp][m][1] = acc[m][1];
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int q = 1; q < kSplit; ++q)
#pragma unroll
      for (int m = 0; m < kMaxRows; ++m) acc[m][0] += part_sums[warp + q][m][0], acc[m][1] += part_sums[warp + q][m][1];
  }
  // unrolled with constant indices: a run-time index into acc would put it in local memory
  if (lane == 0 && n0 < N) {
#pragma unroll
    for (int m = 0; m < kMaxRows; ++m)
      if (m < M) Epi::store2(ep, m, n0, acc[m][0], acc[m][1]);
    if constexpr (Post::kOn) Post::cols2(ep, M, n0);
  }
}

// Warps per launch: about 8 waves of the ~4200 an H100/H200 holds at once (132 SMs × 4 blocks of
// 8 warps at ~57 registers), so that the last, partly filled wave costs little. A launch with
// fewer column pairs than this splits K.
constexpr int kTargetWarps = 32768;

// How many warps share a column pair: the fewest of 1, 2, 4, 8 that reach kTargetWarps, while
// each part keeps at least 2 chunks per lane (K ≥ 512 elements per part).
inline int gemv_split(int N, int K) {
  int split = 1;
  while (split < kWarpsPerBlock && (N / 2) * split < kTargetWarps && K / 8 / (2 * split) >= 32 * 2) split *= 2;
  return split;
}

template <class Epi, int kSplit, class Pro, class Post>
inline cudaError_t gemv_launch_split(const bf16* A, int lda, const bf16* W, int M, int N, int K, int prefetch_lines, const typename Epi::Params& ep,
                                     cudaStream_t stream) {
  constexpr int kPairs = kWarpsPerBlock / kSplit;
  const int pairs = N / 2;
  return launch_pdl<gemv_kernel<Epi, kSplit, Pro, Post>>(dim3((pairs + kPairs - 1) / kPairs), dim3(32 * kWarpsPerBlock), 0, stream, A, lda, W, M, N, K,
                                              prefetch_lines, ep);
}

// M in 1..kMaxRows; N even; K, lda multiples of 8; A and W 16-byte aligned (the GEMM's rules);
// with a prologue, K is its kCols (A is then not read).
template <class Epi, class Pro = NoPrologue, class Post = NoPost>
inline cudaError_t gemv_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K, const typename Epi::Params& ep, cudaStream_t stream = 0) {
  if (M < 1 || M > kMaxRows || N < 2 || (N & 1) || K < 8 || (K & 7) || (lda & 7) || ((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(W)) & 15))
    return cudaErrorInvalidValue;
  if (Pro::kCols > 0 && Pro::kCols != K) return cudaErrorInvalidValue;
  const int split = gemv_split(N, K);
  // 128-byte lines of its part of each of its two rows that a warp prefetches: N · split parts
  // share kPrefetchBytes (the kernel caps it at the part's length)
  const int prefetch_lines = static_cast<int>(std::min<long long>((2ll * K + 127) / 128, kPrefetchBytes / (128ll * N * split)));
  switch (split) {
    case 1: return gemv_launch_split<Epi, 1, Pro, Post>(A, lda, W, M, N, K, prefetch_lines, ep, stream);
    case 2: return gemv_launch_split<Epi, 2, Pro, Post>(A, lda, W, M, N, K, prefetch_lines, ep, stream);
    case 4: return gemv_launch_split<Epi, 4, Pro, Post>(A, lda, W, M, N, K, prefetch_lines, ep, stream);
    default: return gemv_launch_split<Epi, 8, Pro, Post>(A, lda, W, M, N, K, prefetch_lines, ep, stream);
  }
}

}  // namespace gemv
}  // namespace strata

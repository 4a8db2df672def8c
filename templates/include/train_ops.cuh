// train_ops.cuh — the training kernels of the reduce, cross_entropy, embedding_grad and
// conv1d_grad families (templates/{reduce,cross_entropy,embedding_grad,conv1d_grad}.cu.hbs).
//
// Every kernel here is deterministic: the same inputs give bit-identical outputs run to run
// (bit-exact training resume depends on it). There is no floating-point atomic anywhere: a sum
// over tokens is reduced in a fixed order — per-chunk partials written to a scratch buffer, then a
// second pass that adds the chunks in index order — or one thread / warp / block owns an output.
// The only atomics are integer counts (embedding_grad's histogram), whose result does not depend
// on the order. All accumulation is fp32; loads go through st::ld (bf16 / f32 / i32) and stores
// through st::st, so each kernel is a template over its operand types.
//
// Generated kernels pass functors for the work that fusion splices in (the elementwise producers
// of a reduction's input, the epilogue after it): a Src gives the value to reduce, an Out stores
// a finished value. tests/gpu/train_ops_test.cu runs every kernel here against a float64 CPU
// reference with plain functors.
//
//   reduce:         reduce_warp (one warp per output: row sums, generic sumTo / reduceMean),
//                   column_partials + finish_partials (sums over the token rows B·T, two passes)
//   cross_entropy:  cross_entropy_rows (one block per row: online max / sum over the vocabulary in
//                   one pass, then the loss and / or softmax − onehot scaled by gy in a second)
//   embedding_grad: embedding_grad (histogram of ids, scan, bucket placement; each vocabulary row
//                   then sums its tokens' gradient rows in increasing position order)
//   conv1d_grad:    conv1d_bwd (dx by the anti-causal correlation; dw as per-chunk partials, then
//                   summed over chunks in order; dprefix)
#pragma once

#include <math.h>

#include "strata/base.cuh"
#include "strata_ops.cuh"

namespace strata {
namespace train {
// internal linkage: several generated kernel files of one project include this header
namespace {

// ---- shared ------------------------------------------------------------------------------

// Sum over the warp by an xor butterfly: every lane ends with the same, order-fixed value
// (each step adds the same two operands on both lanes, and fp32 addition commutes exactly).
STRATA_DEV float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- reduce ------------------------------------------------------------------------------

constexpr int kReduceThreads = 256;
constexpr int kReduceWarps = kReduceThreads / 32;

// One warp per output o (grid-stride over outputs): lane l adds src(o, j) for j = l, l+32, …
// < count, then the warp sums; lane 0 stores out(o, sum / denom). For row sums (the reduced
// elements are contiguous) the warp reads contiguous memory.
//   Src: __device__ float operator()(long long o, long long j) const
//   Out: __device__ void operator()(long long o, float v) const
template <class Src, class Out>
__global__ void __launch_bounds__(kReduceThreads) reduce_warp_kernel(Src src, Out out, long long outputs, long long count, float denom) {
  const int lane = threadIdx.x & 31;
  const long long stride = (long long)gridDim.x * kReduceWarps;
  for (long long o = (long long)blockIdx.x * kReduceWarps + (threadIdx.x >> 5); o < outputs; o += stride) {
    float acc = 0.f;
    for (long long j = lane; j < count; j += 32) acc += src(o, j);
    acc = warp_sum(acc);
    if (lane == 0) out(o, acc / denom);
  }
}

template <class Src, class Out>
inline cudaError_t reduce_warp(Src src, Out out, long long outputs, long long count, float denom, cudaStream_t stream) {
  if (outputs <= 0) return cudaSuccess;
  const long long blocks = (outputs + kReduceWarps - 1) / kReduceWarps;
  const unsigned grid = (unsigned)(blocks < 65535 * 32 ? blocks : 65535 * 32);
  reduce_warp_kernel<<<grid, kReduceThreads, 0, stream>>>(src, out, outputs, count, denom);
  return cudaGetLastError();
}

// Sums over token rows, pass 1: block (chunk, column tile) adds src(r, c) over the chunk's
// kRowLanes·kRowsPerLane rows for kCols columns, the row lanes combined in order through
// shared memory; partial[chunk · cols + c].
//   Src: __device__ float operator()(long long row, int c) const
template <int kCols, int kRowLanes, int kRowsPerLane, class Src>
__global__ void __launch_bounds__(kCols * kRowLanes) column_partials_kernel(Src src, long long rows, int cols, float* __restrict__ partial) {
  __shared__ float s[kRowLanes][kCols];
  const int tx = threadIdx.x % kCols, ty = threadIdx.x / kCols;
  const int c = blockIdx.y * kCols + tx;
  const long long chunk = blockIdx.x;
  const long long r0 = chunk * (kRowLanes * kRowsPerLane) + ty;
  float acc = 0.f;
  if (c < cols) {
#pragma unroll 4
    for (int i = 0; i < kRowsPerLane; ++i) {
      const long long r = r0 + (long long)i * kRowLanes;
      if (r < rows) acc += src(r, c);
    }
  }
  s[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && c < cols) {
    float t = 0.f;
#pragma unroll
    for (int y = 0; y < kRowLanes; ++y) t += s[y][tx];
    partial[chunk * cols + c] = t;
  }
}

// Pass 2: one warp per output o adds partial[chunk · cols + col(o, j)] over every chunk and
// j < perOut (the feature columns that fold into o), in a fixed order; out(o, sum / denom).
//   Col: __device__ int operator()(long long o, int j) const
template <class Col, class Out>
__global__ void __launch_bounds__(kReduceThreads) finish_partials_kernel(const float* __restrict__ partial, long long chunks, int cols, int perOut, Col col, Out out, long long outputs, float denom) {
  const int lane = threadIdx.x & 31;
  const long long stride = (long long)gridDim.x * kReduceWarps;
  const long long n = chunks * perOut;
  for (long long o = (long long)blockIdx.x * kReduceWarps + (threadIdx.x >> 5); o < outputs; o += stride) {
    float acc = 0.f;
    for (long long f = lane; f < n; f += 32) {
      const long long chunk = f / perOut;
      const int j = (int)(f - chunk * perOut);
      acc += partial[chunk * cols + col(o, j)];
    }
    acc = warp_sum(acc);
    if (lane == 0) out(o, acc / denom);
  }
}

// Column tile and rows per chunk of column_partials for `cols` input columns: narrow rows
// (a [B, T] loss, a few heads) take more row lanes so the block stays busy.
template <int kCols>
struct ColumnTiling {
  static constexpr int kRowLanes = kReduceThreads / kCols;
  static constexpr int kRowsPerLane = kCols >= 32 ? 16 : 8;
  static constexpr int kRowsPerChunk = kRowLanes * kRowsPerLane;
};

// Bytes of scratch column_sums needs for `rows` rows of `cols` columns.
template <int kCols>
STRATA_HD long long column_sums_scratch_bytes(long long rows, int cols) {
  const long long chunks = (rows + ColumnTiling<kCols>::kRowsPerChunk - 1) / ColumnTiling<kCols>::kRowsPerChunk;
  return chunks * cols * (long long)sizeof(float);
}

// out(o, Σ_rows Σ_{j<perOut} src(row, col(o, j)) / denom) for o < outputs: both passes.
// `partial` holds column_sums_scratch_bytes<kCols>(rows, cols) bytes.
template <int kCols, class Src, class Col, class Out>
inline cudaError_t column_sums(Src src, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t stream) {
  using Tl = ColumnTiling<kCols>;
  if (outputs <= 0) return cudaSuccess;
  const long long chunks = (rows + Tl::kRowsPerChunk - 1) / Tl::kRowsPerChunk;
  if (chunks > 0) {
    if (chunks > 0x7fffffffLL || (cols + kCols - 1) / kCols > 65535) return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)chunks, (unsigned)((cols + kCols - 1) / kCols));
    column_partials_kernel<kCols, Tl::kRowLanes, Tl::kRowsPerLane><<<grid, kReduceThreads, 0, stream>>>(src, rows, cols, partial);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  const long long blocks = (outputs + kReduceWarps - 1) / kReduceWarps;
  finish_partials_kernel<<<(unsigned)(blocks < 65535 * 32 ? blocks : 65535 * 32), kReduceThreads, 0, stream>>>(partial, chunks, cols, perOut, col, out, outputs, denom);
  return cudaGetLastError();
}

// Elementwise over n outputs (expandTo and its epilogue): f(i) for i < n, grid-stride.
template <class F>
__global__ void __launch_bounds__(kReduceThreads) for_each_kernel(F f, long long n) {
  for (long long i = (long long)blockIdx.x * kReduceThreads + threadIdx.x; i < n; i += (long long)gridDim.x * kReduceThreads) f(i);
}

template <class F>
inline cudaError_t for_each(F f, long long n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const long long blocks = (n + kReduceThreads - 1) / kReduceThreads;
  for_each_kernel<<<(unsigned)(blocks < 65535 * 16 ? blocks : 65535 * 16), kReduceThreads, 0, stream>>>(f, n);
  return cudaGetLastError();
}

// ---- cross entropy -----------------------------------------------------------------------

// Online softmax statistics: running max m and Σ exp(x − m). −inf logits add nothing; NaN
// propagates into s.
STRATA_DEV void online_add(float& m, float& s, float x) {
  if (x > m) {
    s = s * expf(m - x) + 1.f;  // m = −inf, s = 0 at the start: 0·0 + 1
    m = x;
  } else if (x != -INFINITY) {
    s += expf(x - m);
  }
}
STRATA_DEV void online_merge(float& m, float& s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  if (mm == -INFINITY) return;  // both empty
  s = (m == -INFINITY ? 0.f : s * expf(m - mm)) + (m2 == -INFINITY ? 0.f : s2 * expf(m2 - mm));
  m = mm;
}

struct CrossEntropyParams {
  long long rows = 0;           // B·T
  int vocab = 0;
  const void* logits = nullptr;  // row r at logits + r·logits_row_stride (elements)
  long long logits_row_stride = 0;
  const int* targets = nullptr;  // [rows]
  const void* gy = nullptr;      // [rows], for dlogits
  float* loss = nullptr;         // [rows], optional: logsumexp − logit[target]
  void* dlogits = nullptr;       // [rows, vocab] (row stride dlogits_row_stride), optional
  long long dlogits_row_stride = 0;
};

constexpr int kCeThreads = 256;

// One block per row. Pass 1 reads the row once for the softmax statistics (each thread keeps its
// own (m, s) over a strided slice, then the block merges them in a fixed tree); pass 2 writes
// gy·softmax − gy·onehot(target). A target outside [0, V) gives NaN (loss and gradient row):
// the runtime range-checks targets, so this only marks a bug, never reads out of bounds.
template <class TL, class TG, class TD, int kVec>
__global__ void __launch_bounds__(kCeThreads) cross_entropy_kernel(const CrossEntropyParams p) {
  __shared__ float sm[32], ss[32];
  const long long row = blockIdx.x;
  const TL* lg = static_cast<const TL*>(p.logits) + row * p.logits_row_stride;
  const int V = p.vocab;
  float m = -INFINITY, s = 0.f;
  if constexpr (kVec > 1) {
    for (int v = threadIdx.x * kVec; v < V; v += kCeThreads * kVec) {
#pragma unroll
      for (int i = 0; i < kVec; ++i) online_add(m, s, st::ld(lg + v + i));
    }
  } else {
    for (int v = threadIdx.x; v < V; v += kCeThreads) online_add(m, s, st::ld(lg + v));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) { sm[warp] = m; ss[warp] = s; }
  __syncthreads();
  m = lane < kCeThreads / 32 ? sm[lane] : -INFINITY;
  s = lane < kCeThreads / 32 ? ss[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
  const int t = p.targets[row];
  const bool bad = t < 0 || t >= V;
  if (p.loss && threadIdx.x == 0) p.loss[row] = bad ? NAN : m + logf(s) - st::ld(lg + t);
  if (!p.dlogits) return;
  const float g = bad ? NAN : st::ld(static_cast<const TG*>(p.gy) + row);
  TD* dl = static_cast<TD*>(p.dlogits) + row * p.dlogits_row_stride;
  if constexpr (kVec > 1) {
    for (int v = threadIdx.x * kVec; v < V; v += kCeThreads * kVec) {
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        const float e = g * expf(st::ld(lg + v + i) - m) / s;
        st::st(dl + v + i, v + i == t ? e - g : e);
      }
    }
  } else {
    for (int v = threadIdx.x; v < V; v += kCeThreads) {
      const float e = g * expf(st::ld(lg + v) - m) / s;
      st::st(dl + v, v == t ? e - g : e);
    }
  }
}

template <class TL, class TG, class TD>
inline cudaError_t cross_entropy_rows(const CrossEntropyParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.rows > 0x7fffffffLL || p.vocab <= 0) return cudaErrorInvalidValue;
  // 4-wide unrolled loads where every row starts on a multiple of 4 elements
  const bool vec = p.vocab % 4 == 0 && p.logits_row_stride % 4 == 0 && (!p.dlogits || p.dlogits_row_stride % 4 == 0);
  if (vec) cross_entropy_kernel<TL, TG, TD, 4><<<(unsigned)p.rows, kCeThreads, 0, stream>>>(p);
  else cross_entropy_kernel<TL, TG, TD, 1><<<(unsigned)p.rows, kCeThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

// ---- embedding gradient --------------------------------------------------------------------

struct EmbeddingGradParams {
  long long tokens = 0;          // B·T
  int vocab = 0;
  const int* ids = nullptr;      // [tokens]
  const void* gy = nullptr;      // row i at gy + i·gy_row_stride (elements)
  long long gy_row_stride = 0;
  void* out = nullptr;           // [vocab, d], contiguous
  void* scratch = nullptr;       // embedding_grad_scratch_bytes(tokens, vocab)
};

// counts[V] | offsets[V + 1] | cursor[V] | order[tokens], ints
STRATA_HD long long embedding_grad_scratch_bytes(long long tokens, int vocab) {
  return ((long long)3 * vocab + 1 + tokens) * (long long)sizeof(int);
}

constexpr int kEgThreads = 256;
// Buckets up to this many tokens are sorted in shared memory; larger ones walk all ids in order.
constexpr int kEgSortMax = 2048;

__global__ void embedding_grad_count(const int* __restrict__ ids, long long n, int V, int* __restrict__ counts) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < V) atomicAdd(counts + id, 1);  // integer: the count is order-free
  }
}

// Exclusive scan of counts into offsets[0..V] and cursor (one block).
__global__ void __launch_bounds__(1024) embedding_grad_scan(const int* __restrict__ counts, int V, int* __restrict__ offsets, int* __restrict__ cursor) {
  __shared__ int part[1024];
  const int per = (V + 1023) / 1024;
  const int lo = min(V, (int)threadIdx.x * per), hi = min(V, lo + per);
  int sum = 0;
  for (int v = lo; v < hi; ++v) sum += counts[v];
  part[threadIdx.x] = sum;
  __syncthreads();
  // Hillis–Steele inclusive scan over the 1024 segment sums
  for (int o = 1; o < 1024; o <<= 1) {
    const int add = threadIdx.x >= o ? part[threadIdx.x - o] : 0;
    __syncthreads();
    part[threadIdx.x] += add;
    __syncthreads();
  }
  int run = part[threadIdx.x] - sum;
  for (int v = lo; v < hi; ++v) {
    offsets[v] = run;
    cursor[v] = run;
    run += counts[v];
  }
  if (threadIdx.x == 1023) offsets[V] = part[1023];
}

// Bucket placement: order[cursor[id]++] = i. The order inside a bucket depends on the atomics;
// the row kernel puts it back in increasing position order before it adds anything.
__global__ void embedding_grad_place(const int* __restrict__ ids, long long n, int V, int* __restrict__ cursor, int* __restrict__ order) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < V) order[atomicAdd(cursor + id, 1)] = (int)i;
  }
}

// One block per vocabulary row v, kPer columns per thread (d = kD): the sum of gy rows of the
// tokens with id v, added in increasing token position whichever path finds them — a bucket
// of at most kEgSortMax tokens is bitonic-sorted in shared memory, a larger one is collected by
// walking all ids in order (a tile of kEgThreads at a time, compacted in order by ballots).
template <int kD, class TG, class TO>
__global__ void __launch_bounds__(kEgThreads) embedding_grad_rows(const EmbeddingGradParams p, const int* __restrict__ offsets, const int* __restrict__ order) {
  constexpr int kPer = (kD + kEgThreads - 1) / kEgThreads;
  __shared__ int list[kEgSortMax];
  __shared__ int warpCount[kEgThreads / 32];
  const int v = blockIdx.x;
  const int start = offsets[v], cnt = offsets[v + 1] - start;
  const TG* gy = static_cast<const TG*>(p.gy);
  float acc[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) acc[i] = 0.f;
  auto add_rows = [&](int n) {
    for (int k = 0; k < n; ++k) {
      const TG* src = gy + (long long)list[k] * p.gy_row_stride;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int c = threadIdx.x + i * kEgThreads;
        if (c < kD) acc[i] += st::ld(src + c);
      }
    }
  };
  if (cnt > 0 && cnt <= kEgSortMax) {
    int size = 1;
    while (size < cnt) size <<= 1;
    for (int k = threadIdx.x; k < size; k += kEgThreads) list[k] = k < cnt ? order[start + k] : 0x7fffffff;
    __syncthreads();
    for (int k = 2; k <= size; k <<= 1)
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int i = threadIdx.x; i < size; i += kEgThreads) {
          const int l = i ^ j;
          if (l > i) {
            const int a = list[i], b = list[l];
            if (((i & k) == 0) == (a > b)) { list[i] = b; list[l] = a; }
          }
        }
        __syncthreads();
      }
    add_rows(cnt);
  } else if (cnt > kEgSortMax) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (long long base = 0; base < p.tokens; base += kEgThreads) {
      const long long i = base + threadIdx.x;
      const bool hit = i < p.tokens && p.ids[i] == v;
      const unsigned m = __ballot_sync(0xffffffffu, hit);
      if (lane == 0) warpCount[warp] = __popc(m);
      __syncthreads();
      int before = 0, total = 0;
      for (int w = 0; w < kEgThreads / 32; ++w) {
        before += w < warp ? warpCount[w] : 0;
        total += warpCount[w];
      }
      if (hit) list[before + __popc(m & ((1u << lane) - 1u))] = (int)i;
      __syncthreads();
      add_rows(total);
      __syncthreads();  // list and warpCount are rewritten by the next tile
    }
  }
  TO* out = static_cast<TO*>(p.out) + (long long)v * kD;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int c = threadIdx.x + i * kEgThreads;
    if (c < kD) st::st(out + c, acc[i]);
  }
}

template <int kD, class TG, class TO>
inline cudaError_t embedding_grad(const EmbeddingGradParams& p, cudaStream_t stream) {
  if (p.vocab <= 0) return cudaErrorInvalidValue;
  int* counts = static_cast<int*>(p.scratch);
  int* offsets = counts + p.vocab;
  int* cursor = offsets + p.vocab + 1;
  int* order = cursor + p.vocab;
  cudaError_t e = cudaMemsetAsync(counts, 0, sizeof(int) * (size_t)p.vocab, stream);
  if (e != cudaSuccess) return e;
  const long long nb = (p.tokens + 255) / 256;
  const unsigned grid = (unsigned)(nb < 1 ? 1 : nb < 65535 ? nb : 65535);
  if (p.tokens > 0) embedding_grad_count<<<grid, 256, 0, stream>>>(p.ids, p.tokens, p.vocab, counts);
  embedding_grad_scan<<<1, 1024, 0, stream>>>(counts, p.vocab, offsets, cursor);
  if (p.tokens > 0) embedding_grad_place<<<grid, 256, 0, stream>>>(p.ids, p.tokens, p.vocab, cursor, order);
  embedding_grad_rows<kD, TG, TO><<<p.vocab, kEgThreads, 0, stream>>>(p, offsets, order);
  return cudaGetLastError();
}

// ---- conv1d backward -----------------------------------------------------------------------

// The forward (conv1d.cuh): xx = concat(prefix or zeros [K−1], x) along time per (b, c);
// y[t] = bias + Σ_k w[c,k]·xx[t + k]. Its gradients, P = K − 1:
//   dx[s]      = Σ_{k, s+P−k < T} gy[s + P − k]·w[k]                 (anti-causal correlation)
//   dw[c, k]   = Σ_{b, t} gy[b, t]·xx[b, t + k]                      (reduction over tokens)
//   dprefix[p] = Σ_{k ≤ p, p−k < T} gy[p − k]·w[k]                   (p < P)
struct Conv1dGradParams {
  int batch = 0, seqlen = 0, channels = 0;
  const void* gy = nullptr; long long gy_row_stride = 0;  // [B, T, C]: row b·T + t
  const void* x = nullptr; long long x_row_stride = 0;
  const void* w = nullptr;                                // [C, K] contiguous
  const void* prefix = nullptr;                           // [B, K−1, C] contiguous, optional
  void* dx = nullptr; long long dx_row_stride = 0;        // optional
  void* dw = nullptr;                                     // [C, K], optional
  void* dprefix = nullptr;                                // [B, K−1, C], optional
  float* scratch = nullptr;                               // conv1d_grad_scratch_bytes (when dw)
};

constexpr int kConvThreads = 128;
constexpr int kConvRows = 64;  // token rows (of the flattened B·T) per chunk

template <int K>
STRATA_HD long long conv1d_grad_scratch_bytes(long long rows, int channels) {
  return (rows + kConvRows - 1) / kConvRows * channels * K * (long long)sizeof(float);
}

// Pass 1: block (chunk, channel tile); each thread owns one channel and walks the chunk's rows
// in order: dx of each row, and its share of dw into partial[(chunk · C + c) · K + k].
template <int K, class TG, class TX, class TW, class TP, class TDX>
__global__ void __launch_bounds__(kConvThreads) conv1d_bwd_main(const Conv1dGradParams p) {
  constexpr int P = K - 1;
  const int C = p.channels, T = p.seqlen;
  const int c = blockIdx.y * kConvThreads + threadIdx.x;
  if (c >= C) return;
  const long long rows = (long long)p.batch * T;
  const long long r0 = (long long)blockIdx.x * kConvRows;
  const long long r1 = r0 + kConvRows < rows ? r0 + kConvRows : rows;
  const TG* gy = static_cast<const TG*>(p.gy) + c;
  const TX* x = static_cast<const TX*>(p.x) + c;
  const TP* prefix = static_cast<const TP*>(p.prefix);
  TDX* dx = static_cast<TDX*>(p.dx);
  float w[K], dw[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    w[k] = st::ld(static_cast<const TW*>(p.w) + (long long)c * K + k);
    dw[k] = 0.f;
  }
  int b = (int)(r0 / T), t = (int)(r0 - (long long)b * T);
  for (long long r = r0; r < r1; ++r) {
    const float g = st::ld(gy + r * p.gy_row_stride);
    if (p.dw) {
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int tp = t + k - P;  // time index of xx[t + k] in x
        float xv = 0.f;
        if (tp >= 0) xv = st::ld(x + (r + k - P) * p.x_row_stride);
        else if (prefix) xv = st::ld(prefix + ((long long)b * P + (t + k)) * C + c);
        dw[k] += g * xv;
      }
    }
    if (dx) {
      float a = 0.f;
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int ts = t + P - k;
        if (ts < T) a += st::ld(gy + (r + P - k) * p.gy_row_stride) * w[k];
      }
      st::st(dx + r * p.dx_row_stride + c, a);
    }
    if (++t == T) { t = 0; ++b; }
  }
  if (p.dw) {
#pragma unroll
    for (int k = 0; k < K; ++k) p.scratch[((long long)blockIdx.x * C + c) * K + k] = dw[k];
  }
}

// Pass 2: dw[c, k] = Σ_chunks partial in chunk order (threads 0 … C·K − 1), then dprefix
// (threads C·K … C·K + B·P·C − 1).
template <int K, class TG, class TW, class TDW, class TDP>
__global__ void __launch_bounds__(256) conv1d_bwd_finish(const Conv1dGradParams p, long long chunks) {
  constexpr int P = K - 1;
  const int C = p.channels, T = p.seqlen;
  const long long nw = p.dw ? (long long)C * K : 0;
  const long long np = p.dprefix ? (long long)p.batch * P * C : 0;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < nw + np; i += (long long)gridDim.x * blockDim.x) {
    if (i < nw) {
      float a = 0.f;
      for (long long ch = 0; ch < chunks; ++ch) a += p.scratch[ch * C * K + i];
      st::st(static_cast<TDW*>(p.dw) + i, a);
    } else {
      const long long j = i - nw;
      const int c = (int)(j % C);
      const int pp = (int)((j / C) % P);
      const long long b = j / ((long long)C * P);
      float a = 0.f;
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int t = pp - k;
        if (k <= pp && t < T) a += st::ld(static_cast<const TG*>(p.gy) + (b * T + t) * p.gy_row_stride + c) * st::ld(static_cast<const TW*>(p.w) + (long long)c * K + k);
      }
      st::st(static_cast<TDP*>(p.dprefix) + j, a);
    }
  }
}

template <int K, class TG, class TX, class TW, class TP, class TDX, class TDW, class TDP>
inline cudaError_t conv1d_bwd(const Conv1dGradParams& p, cudaStream_t stream) {
  static_assert(K >= 1, "K >= 1");
  if (p.batch < 0 || p.seqlen < 0 || p.channels <= 0) return cudaErrorInvalidValue;
  const long long rows = (long long)p.batch * p.seqlen;
  const long long chunks = (rows + kConvRows - 1) / kConvRows;
  if ((p.dx || p.dw) && chunks > 0) {
    if (chunks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)chunks, (unsigned)((p.channels + kConvThreads - 1) / kConvThreads));
    conv1d_bwd_main<K, TG, TX, TW, TP, TDX><<<grid, kConvThreads, 0, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  const long long n = (p.dw ? (long long)p.channels * K : 0) + (p.dprefix ? (long long)p.batch * (K - 1) * p.channels : 0);
  if (n > 0) {
    const long long nb = (n + 255) / 256;
    conv1d_bwd_finish<K, TG, TW, TDW, TDP><<<(unsigned)(nb < 65535 ? nb : 65535), 256, 0, stream>>>(p, chunks);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace train
}  // namespace strata

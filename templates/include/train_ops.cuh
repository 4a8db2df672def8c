// train_ops.cuh — the training kernels of the reduce, cross_entropy, embedding_grad and
// conv1d_grad families (templates/{reduce,cross_entropy,embedding_grad,conv1d_grad}.cu.hbs).
//
// Every kernel here is deterministic: the same inputs give bit-identical outputs run to run
// (bit-exact training resume depends on it). There is no floating-point atomic anywhere: a sum
// over tokens is reduced in a fixed order — per-chunk partials written to a scratch buffer, then a
// second pass that adds the chunks in index order — or one thread / warp / block owns an output.
// The only atomics are integer counts (embedding_grad's histogram), whose result does not depend
// on the order. All accumulation is fp32; loads go through st::ld (bf16 / f32 / i32; st::ld8 for
// 8 columns at once) and stores through st::st, so each kernel is a template over its operand types.
//
// Generated kernels pass functors for the work that fusion splices in (the elementwise producers
// of a reduction's input, the epilogue after it): a Src gives the value to reduce, an Out stores
// a finished value. tests/gpu/train_ops_test.cu runs every kernel here against a float64 CPU
// reference with plain functors.
//
//   reduce:         reduce_warp (one warp per output: row sums, generic sumTo / reduceMean),
//                   column_partials + finish_partials (sums over the token rows B·T, two passes;
//                   pass 1 reads 8 columns per thread with 16-byte loads where it can)
//   cross_entropy:  cross_entropy_rows (one block per row: online max / sum over the vocabulary in
//                   one pass, then the loss and / or softmax − onehot scaled by gy in a second)
//   embedding_grad: embedding_grad (histogram of ids, scan, bucket placement; each vocabulary row
//                   then sums its tokens' gradient rows in increasing position order)
//   conv1d_grad:    conv1d_bwd (a thread walks 4 channels of a chunk of rows with a sliding window
//                   of gy rows: dx by the anti-causal correlation, dprefix, and dw as per-chunk
//                   partials, then summed over chunks in a fixed order)
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
// shared memory; partial[chunk · cols + c]. The order per column: row lane y adds rows
// chunk·kRowsPerChunk + y + i·kRowLanes for i = 0, 1, … (from 0.f), then the lanes are added
// y = 0, 1, … (from 0.f). column_partials_vec_kernel keeps it, so the two are bit-identical.
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

// Columns per thread of the vectorized pass 1: one 16-byte load per bf16 operand and row (two
// for f32).
constexpr int kColumnVec = 8;

// Pass 1, vectorized (cols % kColumnVec == 0, operands 16-byte aligned): thread (x, y) of the
// block owns the kColumnVec consecutive columns c0 = tile·kVecX·kColumnVec + x·kColumnVec and
// row lane y — a warp reads whole rows, 32·16 bytes of each bf16 operand per row at kVecX = 32.
// Each column sees the same rows in the same order as in column_partials_kernel (row lane y adds
// rows y, y + kRowLanes, … of the chunk from 0.f; the lanes, staged in shared memory, are added
// y = 0, 1, … from 0.f), so the partials are bit-identical to the scalar kernel's. A full chunk
// (every lane has all its rows) loads kBatch rows before adding them, in row order.
//   Src8: __device__ void operator()(long long row, int c0, float (&v)[kColumnVec]) const,
//         v[k] = src(row, c0 + k) computed exactly as Src does
template <int kVecX, int kRowLanes, int kRowsPerLane, class Src8>
__global__ void __launch_bounds__(kVecX * kRowLanes) column_partials_vec_kernel(Src8 src, long long rows, int cols, float* __restrict__ partial) {
  constexpr int kTile = kVecX * kColumnVec, kThreads = kVecX * kRowLanes, kBatch = 4;
  static_assert(kColumnVec == 8, "two float4 per thread in shared memory");
  static_assert(kRowsPerLane % kBatch == 0, "rows per lane: whole batches");
  __shared__ __align__(16) float s[kRowLanes][kTile];
  const int tx = threadIdx.x % kVecX, ty = threadIdx.x / kVecX;
  const int c0 = blockIdx.y * kTile + tx * kColumnVec;
  const long long chunk = blockIdx.x;
  const long long r0 = chunk * (kRowLanes * kRowsPerLane) + ty;
  float acc[kColumnVec];
#pragma unroll
  for (int k = 0; k < kColumnVec; ++k) acc[k] = 0.f;
  if (c0 < cols) {
    if (r0 + (long long)(kRowsPerLane - 1) * kRowLanes < rows) {
#pragma unroll
      for (int i0 = 0; i0 < kRowsPerLane; i0 += kBatch) {
        float v[kBatch][kColumnVec];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) src(r0 + (long long)(i0 + b) * kRowLanes, c0, v[b]);
#pragma unroll
        for (int b = 0; b < kBatch; ++b)
#pragma unroll
          for (int k = 0; k < kColumnVec; ++k) acc[k] += v[b][k];
      }
    } else {
      // the last chunk's rows (cold: not unrolled)
#pragma unroll 1
      for (int i = 0; i < kRowsPerLane; ++i) {
        const long long r = r0 + (long long)i * kRowLanes;
        if (r < rows) {
          float v[kColumnVec];
          src(r, c0, v);
#pragma unroll
          for (int k = 0; k < kColumnVec; ++k) acc[k] += v[k];
        }
      }
    }
  }
  float4* row = reinterpret_cast<float4*>(&s[ty][tx * kColumnVec]);
  row[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
  row[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
  __syncthreads();
  // one thread per column of the tile adds the lanes: coalesced partial stores
  for (int t = threadIdx.x; t < kTile; t += kThreads) {
    const int c = blockIdx.y * kTile + t;
    if (c >= cols) break;
    float sum = 0.f;
#pragma unroll
    for (int y = 0; y < kRowLanes; ++y) sum += s[y][t];
    partial[chunk * cols + c] = sum;
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
// (a [B, T] loss, a few heads) take more row lanes so the block stays busy. The vectorized pass 1
// uses the same row lanes and chunks (the same partials, the same scratch).
template <int kCols>
struct ColumnTiling {
  static constexpr int kRowLanes = kReduceThreads / kCols;
  static constexpr int kRowsPerLane = kCols >= 32 ? 16 : 8;
  static constexpr int kRowsPerChunk = kRowLanes * kRowsPerLane;
};

// Bytes of scratch column_sums needs for `rows` rows of `cols` columns (either pass 1).
template <int kCols>
STRATA_HD long long column_sums_scratch_bytes(long long rows, int cols) {
  const long long chunks = (rows + ColumnTiling<kCols>::kRowsPerChunk - 1) / ColumnTiling<kCols>::kRowsPerChunk;
  return chunks * cols * (long long)sizeof(float);
}

// Both passes; pass 1 vectorized (kVecX threads across a tile of kVecX·kColumnVec columns) when
// `vec` (the caller's run-time check: operands 16-byte aligned) and cols % kColumnVec == 0, else
// scalar. Either way the same partials, bit for bit.
template <int kCols, int kVecX, class Src, class Src8, class Col, class Out>
inline cudaError_t column_sums_impl(Src src, Src8 src8, bool vec, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t stream) {
  using Tl = ColumnTiling<kCols>;
  if (outputs <= 0) return cudaSuccess;
  const long long chunks = (rows + Tl::kRowsPerChunk - 1) / Tl::kRowsPerChunk;
  if (chunks > 0) {
    vec = vec && kVecX > 0 && cols % kColumnVec == 0;
    const int tile = vec ? kVecX * kColumnVec : kCols;
    if (chunks > 0x7fffffffLL || (cols + tile - 1) / tile > 65535) return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)chunks, (unsigned)((cols + tile - 1) / tile));
    if constexpr (kVecX > 0) {
      if (vec) column_partials_vec_kernel<kVecX, Tl::kRowLanes, Tl::kRowsPerLane><<<grid, kVecX * Tl::kRowLanes, 0, stream>>>(src8, rows, cols, partial);
    }
    if (!vec) column_partials_kernel<kCols, Tl::kRowLanes, Tl::kRowsPerLane><<<grid, kReduceThreads, 0, stream>>>(src, rows, cols, partial);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  const long long blocks = (outputs + kReduceWarps - 1) / kReduceWarps;
  finish_partials_kernel<<<(unsigned)(blocks < 65535 * 32 ? blocks : 65535 * 32), kReduceThreads, 0, stream>>>(partial, chunks, cols, perOut, col, out, outputs, denom);
  return cudaGetLastError();
}

// out(o, Σ_rows Σ_{j<perOut} src(row, col(o, j)) / denom) for o < outputs: both passes.
// `partial` holds column_sums_scratch_bytes<kCols>(rows, cols) bytes.
template <int kCols, class Src, class Col, class Out>
inline cudaError_t column_sums(Src src, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t stream) {
  return column_sums_impl<kCols, 0>(src, 0, false, rows, cols, col, perOut, out, outputs, denom, partial, stream);
}

// Threads across the columns of the vectorized pass 1: a warp's worth for wide rows, fewer for
// narrow ones (64 columns: 8) so no thread of a tile is idle.
constexpr int column_vec_threads(int cols) {
  int x = 1;
  while (x < 32 && x * kColumnVec < cols) x *= 2;
  return x;
}

// The same with the vectorized pass 1 where it can run: src8 gives kColumnVec consecutive columns
// of a row with vector loads; `aligned` says its operands' base pointers are 16-byte aligned (the
// generated launcher's st::aligned16; offsets and strides are checked when rendered). kVecX
// (a power of two ≤ 32) threads span a tile of columns: column_vec_threads(cols) (a constant
// expression: the generated launchers pass column_vec_threads(<their column count>)).
template <int kCols, int kVecX, class Src, class Src8, class Col, class Out>
inline cudaError_t column_sums_vec(Src src, Src8 src8, bool aligned, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t stream) {
  static_assert(kVecX >= 1 && kVecX <= 32 && (kVecX & (kVecX - 1)) == 0, "kVecX: a power of two ≤ 32");
  return column_sums_impl<kCols, kVecX>(src, src8, aligned, rows, cols, col, perOut, out, outputs, denom, partial, stream);
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
  // rows in increasing position order; the loads of kRowBatch rows are issued before any is
  // added (the same additions in the same order: a frequent token's thousands of rows are one
  // block's serial chain, so a memory round trip per row would set the kernel's time)
  constexpr int kRowBatch = kPer <= 2 ? 8 : kPer <= 4 ? 4 : 2;
  auto add_rows = [&](int n) {
    int k = 0;
    for (; k + kRowBatch <= n; k += kRowBatch) {
      float v[kRowBatch][kPer];
#pragma unroll
      for (int b = 0; b < kRowBatch; ++b) {
        const TG* src = gy + (long long)list[k + b] * p.gy_row_stride;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
          const int c = threadIdx.x + i * kEgThreads;
          v[b][i] = c < kD ? st::ld(src + c) : 0.f;
        }
      }
#pragma unroll
      for (int b = 0; b < kRowBatch; ++b)
#pragma unroll
        for (int i = 0; i < kPer; ++i) acc[i] += v[b][i];
    }
    for (; k < n; ++k) {
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
// Indexed by the row j of xx − P (x[j] for j ≥ 0, prefix[j + P] for −P ≤ j < 0), all three use
// the same P + 1 rows gy[j … j + P] (zero at or past T):
//   dx[j] (j ≥ 0) and dprefix[j + P] (j < 0) = Σ_k gy[j + P − k]·w[k],   dw[k] += gy[j + P − k]·xx[j + P]
// so a thread walks its rows in order with a sliding window of gy rows and reads every gy and x
// element once.
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
// Channels per thread on the vectorized path (one 8-byte bf16 / 16-byte f32 access). On the H200 at
// B=4, T=4096, C=6144, K=4, 4 and 8 channels ran equally fast (train_ops_test.cu's variants); 4
// needs ~110 registers instead of ~190 (so 4 blocks of a multiprocessor instead of 2 keep loads in
// flight), fits K up to 8, and takes any C that 4 divides.
constexpr int kConvVec = 4;
constexpr int kConvUnroll = 4;  // rows whose loads a thread issues together
constexpr int kConvRows = 128;  // token rows (of the flattened B·T) per thread: one dw partial each

template <int K>
STRATA_HD long long conv1d_grad_scratch_bytes(long long rows, int channels) {
  return (rows + kConvRows - 1) / kConvRows * channels * K * (long long)sizeof(float);
}

// V consecutive channels of one row in registers. The 16- and 8-byte shapes load with one access
// (the launcher has checked the alignment) and stay packed until used; the rest load element-wise.
// get(i) is st::ld's value of channel i.
template <class T, int V>
struct ConvVec {
  float v[V];
  __device__ __forceinline__ void load(const T* p) {
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = st::ld(p + i);
  }
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = 0.f;
  }
  __device__ __forceinline__ float get(int i) const { return v[i]; }
};
__device__ __forceinline__ float conv_bf16_lo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float conv_bf16_hi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
template <>
struct ConvVec<__nv_bfloat16, 8> {
  uint4 u;
  __device__ __forceinline__ void load(const __nv_bfloat16* p) { u = *reinterpret_cast<const uint4*>(p); }
  __device__ __forceinline__ void zero() { u = make_uint4(0u, 0u, 0u, 0u); }
  __device__ __forceinline__ float get(int i) const {
    const unsigned w = i < 2 ? u.x : i < 4 ? u.y : i < 6 ? u.z : u.w;
    return (i & 1) ? conv_bf16_hi(w) : conv_bf16_lo(w);
  }
};
template <>
struct ConvVec<__nv_bfloat16, 4> {
  uint2 u;
  __device__ __forceinline__ void load(const __nv_bfloat16* p) { u = *reinterpret_cast<const uint2*>(p); }
  __device__ __forceinline__ void zero() { u = make_uint2(0u, 0u); }
  __device__ __forceinline__ float get(int i) const {
    const unsigned w = i < 2 ? u.x : u.y;
    return (i & 1) ? conv_bf16_hi(w) : conv_bf16_lo(w);
  }
};
template <>
struct ConvVec<float, 8> {
  float4 a, b;
  __device__ __forceinline__ void load(const float* p) {
    a = reinterpret_cast<const float4*>(p)[0];
    b = reinterpret_cast<const float4*>(p)[1];
  }
  __device__ __forceinline__ void zero() { a = b = make_float4(0.f, 0.f, 0.f, 0.f); }
  __device__ __forceinline__ float get(int i) const {
    const float4& h = i < 4 ? a : b;
    const int k = i & 3;
    return k == 0 ? h.x : k == 1 ? h.y : k == 2 ? h.z : h.w;
  }
};
template <>
struct ConvVec<float, 4> {
  float4 a;
  __device__ __forceinline__ void load(const float* p) { a = *reinterpret_cast<const float4*>(p); }
  __device__ __forceinline__ void zero() { a = make_float4(0.f, 0.f, 0.f, 0.f); }
  __device__ __forceinline__ float get(int i) const { return i == 0 ? a.x : i == 1 ? a.y : i == 2 ? a.z : a.w; }
};

// V consecutive values rounded as st::st does, with one access for the 8-element shapes (16 or 32
// bytes) and the 4-element ones, element-wise otherwise.
template <class T, int V>
__device__ __forceinline__ void conv_store(T* p, const float (&v)[V]) {
  if constexpr (V == 8) {
    st::st8(p, v);
  } else if constexpr (V == 4 && sizeof(T) == 2) {
    const unsigned lo = (unsigned)__bfloat16_as_ushort(__float2bfloat16(v[0])) | ((unsigned)__bfloat16_as_ushort(__float2bfloat16(v[1])) << 16);
    const unsigned hi = (unsigned)__bfloat16_as_ushort(__float2bfloat16(v[2])) | ((unsigned)__bfloat16_as_ushort(__float2bfloat16(v[3])) << 16);
    *reinterpret_cast<uint2*>(p) = make_uint2(lo, hi);
  } else if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) st::st(p + i, v[i]);
  }
}

// One row j from its window win[i] = gy[j + i] (i ≤ P) and xv = xx[j + P]: o = Σ_k gy[j+P−k]·w[k]
// (dx or dprefix, stored to out when non-null) and dw[k] += gy[j+P−k]·xv.
template <int K, int V, bool DW, class TG, class TX, class TO>
__device__ __forceinline__ void conv_bwd_row(const ConvVec<TG, V>* win, const ConvVec<TX, V>& xv, const float (&w)[K][V], float (&dw)[K][V], TO* out) {
  constexpr int P = K - 1;
  float o[V];
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const float xi = DW ? xv.get(i) : 0.f;
    float a = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const float g = win[P - k].get(i);
      a += g * w[k][i];
      if (DW) dw[k][i] += g * xi;
    }
    o[i] = a;
  }
  if (out) conv_store<TO, V>(out, o);
}

// The rows j ∈ [j0, j1) (0 ≤ j0 < j1 ≤ T) of one sequence: g, x and dx point at its time 0 and the
// thread's first channel (dx null: dw only). Each step takes U rows: U gy rows enter the window
// (win[i] = gy[j + i]) and U x rows are read, all loads issued before the arithmetic.
template <int K, int V, int U, bool DW, class TG, class TX, class TDX>
__device__ __forceinline__ void conv_bwd_rows(const TG* g, long long gs, const TX* x, long long xs, TDX* dx, long long ds, int T, int j0, int j1,
                                              const float (&w)[K][V], float (&dw)[K][V]) {
  constexpr int P = K - 1;
  ConvVec<TG, V> win[P + U];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (j0 + i < T) win[i].load(g + (long long)(j0 + i) * gs);
    else win[i].zero();
  }
  int j = j0;
  for (; j + U <= j1; j += U) {
    ConvVec<TX, V> xv[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (j + P + u < T) win[P + u].load(g + (long long)(j + P + u) * gs);
      else win[P + u].zero();
      if (DW) xv[u].load(x + (long long)(j + u) * xs);
      else xv[u].zero();
    }
#pragma unroll
    for (int u = 0; u < U; ++u) conv_bwd_row<K, V, DW>(win + u, xv[u], w, dw, dx ? dx + (long long)(j + u) * ds : nullptr);
#pragma unroll
    for (int i = 0; i < P; ++i) win[i] = win[U + i];
  }
  for (; j < j1; ++j) {
    if (j + P < T) win[P].load(g + (long long)(j + P) * gs);
    else win[P].zero();
    ConvVec<TX, V> xv;
    if (DW) xv.load(x + (long long)j * xs);
    else xv.zero();
    conv_bwd_row<K, V, DW>(win, xv, w, dw, dx ? dx + (long long)j * ds : nullptr);
#pragma unroll
    for (int i = 0; i < P; ++i) win[i] = win[i + 1];
  }
}

// The prefix rows j = −P … −1 of one sequence (xx[j + P] = prefix[j + P], or 0 without a prefix):
// dprefix (when dpre) and their share of dw (when DW and pre). g, pre and dpre point at the
// sequence's first row and the thread's first channel; prefix rows are C apart.
template <int K, int V, bool DW, class TG, class TP, class TDP>
__device__ __forceinline__ void conv_bwd_prefix(const TG* g, long long gs, int T, int C, const TP* pre, TDP* dpre, const float (&w)[K][V], float (&dw)[K][V]) {
  constexpr int P = K - 1;
  ConvVec<TG, V> win[K];  // win[i] = gy[j + i]
#pragma unroll
  for (int i = 0; i < K; ++i) win[i].zero();
#pragma unroll
  for (int q = 0; q < P; ++q) {  // j = q − P
#pragma unroll
    for (int i = 0; i < P; ++i) win[i] = win[i + 1];
    if (q < T) win[P].load(g + (long long)q * gs);
    else win[P].zero();
    ConvVec<TP, V> pv;
    if (DW && pre) pv.load(pre + (long long)q * C);
    else pv.zero();
    if (DW && pre) conv_bwd_row<K, V, true>(win, pv, w, dw, dpre ? dpre + (long long)q * C : nullptr);
    else conv_bwd_row<K, V, false>(win, pv, w, dw, dpre ? dpre + (long long)q * C : nullptr);
  }
}

// Pass 1: block (chunk of R token rows, tile of kConvThreads·V channels) — blockIdx.x is
// chunk·tiles + tile when whole_rows (the blocks of a chunk are consecutive, so the resident ones
// read whole rows), tile·chunks + chunk otherwise. A thread owns V channels and walks its chunk's
// rows in order (a chunk may span sequences: the window restarts at each
// sequence's first row, which also does that sequence's prefix rows). dx and dprefix are final;
// dw's share goes to partial[(chunk·K + k)·C + c].
template <int K, int V, int U, int R, int MinBlocks, class TG, class TX, class TW, class TP, class TDX, class TDP>
__global__ void __launch_bounds__(kConvThreads, MinBlocks) conv1d_bwd_rows(const Conv1dGradParams p, int tiles, long long chunks, bool whole_rows) {
  constexpr int P = K - 1;
  const int C = p.channels, T = p.seqlen;
  const long long chunk = whole_rows ? blockIdx.x / tiles : blockIdx.x % chunks;
  const int tile = (int)(whole_rows ? blockIdx.x % tiles : blockIdx.x / chunks);
  const int c0 = (tile * kConvThreads + threadIdx.x) * V;
  if (c0 >= C) return;  // V > 1 only when V divides C
  const long long rows = (long long)p.batch * T;
  const long long r0 = chunk * R;
  const long long r1 = r0 + R < rows ? r0 + R : rows;
  float w[K][V], dw[K][V];
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int i = 0; i < V; ++i) {
      w[k][i] = st::ld(static_cast<const TW*>(p.w) + (long long)(c0 + i) * K + k);
      dw[k][i] = 0.f;
    }
  const bool want_dw = p.dw != nullptr;
  for (long long r = r0; r < r1;) {
    const int b = (int)(r / T), t0 = (int)(r - (long long)b * T);
    const int t1 = (long long)(T - t0) < r1 - r ? T : (int)(t0 + (r1 - r));
    const long long row0 = (long long)b * T;
    const TG* g = static_cast<const TG*>(p.gy) + row0 * p.gy_row_stride + c0;
    if (t0 == 0 && (p.dprefix || (want_dw && p.prefix))) {
      const long long pb = (long long)b * P * C + c0;
      const TP* pre = p.prefix ? static_cast<const TP*>(p.prefix) + pb : nullptr;
      TDP* dpre = p.dprefix ? static_cast<TDP*>(p.dprefix) + pb : nullptr;
      if (want_dw) conv_bwd_prefix<K, V, true>(g, p.gy_row_stride, T, C, pre, dpre, w, dw);
      else conv_bwd_prefix<K, V, false>(g, p.gy_row_stride, T, C, pre, dpre, w, dw);
    }
    TDX* dx = p.dx ? static_cast<TDX*>(p.dx) + row0 * p.dx_row_stride + c0 : nullptr;
    if (want_dw) {
      const TX* x = static_cast<const TX*>(p.x) + row0 * p.x_row_stride + c0;
      conv_bwd_rows<K, V, U, true>(g, p.gy_row_stride, x, p.x_row_stride, dx, p.dx_row_stride, T, t0, t1, w, dw);
    } else if (dx) {
      conv_bwd_rows<K, V, U, false>(g, p.gy_row_stride, static_cast<const TX*>(nullptr), 0, dx, p.dx_row_stride, T, t0, t1, w, dw);
    }
    r += t1 - t0;
  }
  if (want_dw) {
#pragma unroll
    for (int k = 0; k < K; ++k) conv_store<float, V>(p.scratch + (chunk * K + k) * C + c0, dw[k]);
  }
}

constexpr int kConvSumCols = 32, kConvSumSplit = 8;

// Pass 2: dw[c, k] = Σ_chunks partial[(chunk·K + k)·C + c] in a fixed order. Thread (x, y) of a
// block adds chunks y, y + 8, … of column i = blockIdx.x·32 + x in chunk order (a warp reads 32
// consecutive floats of a chunk); then thread (x, 0) adds the 8 sums in y order.
template <int K, class TDW>
__global__ void __launch_bounds__(kConvSumCols* kConvSumSplit) conv1d_bwd_dw(const Conv1dGradParams p, long long chunks) {
  __shared__ float part[kConvSumSplit][kConvSumCols];
  const long long n = (long long)p.channels * K;
  const long long i = (long long)blockIdx.x * kConvSumCols + threadIdx.x;
  float a = 0.f;
  if (i < n) {
#pragma unroll 4
    for (long long ch = threadIdx.y; ch < chunks; ch += kConvSumSplit) a += p.scratch[ch * n + i];
  }
  part[threadIdx.y][threadIdx.x] = a;
  __syncthreads();
  if (threadIdx.y == 0 && i < n) {
    float s = part[0][threadIdx.x];
#pragma unroll
    for (int y = 1; y < kConvSumSplit; ++y) s += part[y][threadIdx.x];
    const int k = (int)(i / p.channels), c = (int)(i - (long long)k * p.channels);
    st::st(static_cast<TDW*>(p.dw) + (long long)c * K + k, s);
  }
}

// Is a pointer of T, and its row stride in elements, aligned for V-element vector accesses (V
// elements' bytes, at most 16: ConvVec and conv_store access 16 bytes at a time)?
template <int V, class T>
inline bool conv_vec_aligned(const void* q, long long stride) {
  constexpr long long A = V * sizeof(T) < 16 ? V * sizeof(T) : 16;
  return reinterpret_cast<uintptr_t>(q) % A == 0 && stride * (long long)sizeof(T) % A == 0;
}

// May conv1d_bwd take the V-channel vector path: V divides C, and every pointer it accesses that
// way, with its row stride, is aligned for it? (An x that is a column slice of a wider projection
// qualifies when its offset and stride are multiples of V elements.)
template <int V, class TG, class TX, class TP, class TDX, class TDP>
inline bool conv1d_bwd_vectorizable(const Conv1dGradParams& p) {
  const long long C = p.channels;
  if (C % V) return false;
  if (!conv_vec_aligned<V, TG>(p.gy, p.gy_row_stride)) return false;
  if (p.dw && !conv_vec_aligned<V, TX>(p.x, p.x_row_stride)) return false;
  if (p.dw && !conv_vec_aligned<V, float>(p.scratch, C)) return false;
  if (p.dw && p.prefix && !conv_vec_aligned<V, TP>(p.prefix, C)) return false;
  if (p.dx && !conv_vec_aligned<V, TDX>(p.dx, p.dx_row_stride)) return false;
  if (p.dprefix && !conv_vec_aligned<V, TDP>(p.dprefix, C)) return false;
  return true;
}

// Both passes with explicit V (channels per thread), U (rows loaded together), R (rows per chunk;
// the scratch must hold ⌈B·T / R⌉·C·K floats), MinBlocks (pass 1's resident blocks per SM that
// ptxas must allow) and block order (conv1d_bwd_rows; it changes no arithmetic). conv1d_bwd picks
// them; the harness times others.
template <int K, int V, int U, int R, class TG, class TX, class TW, class TP, class TDX, class TDW, class TDP, int MinBlocks = 1>
inline cudaError_t conv1d_bwd_launch(const Conv1dGradParams& p, cudaStream_t stream, bool whole_rows = true) {
  static_assert(K >= 1 && U >= 1 && R >= 1, "K, U, R >= 1");
  if (p.batch < 0 || p.seqlen < 0 || p.channels <= 0) return cudaErrorInvalidValue;
  const long long rows = (long long)p.batch * p.seqlen;
  const long long chunks = (rows + R - 1) / R;
  if ((p.dx || p.dw || p.dprefix) && chunks > 0) {
    if (chunks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    const int vecs = (p.channels + V - 1) / V;
    const int tiles = (vecs + kConvThreads - 1) / kConvThreads;
    if (chunks * tiles > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    conv1d_bwd_rows<K, V, U, R, MinBlocks, TG, TX, TW, TP, TDX, TDP><<<(unsigned)(chunks * tiles), kConvThreads, 0, stream>>>(p, tiles, chunks, whole_rows);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  } else if (p.dprefix && p.batch > 0) {  // T = 0: no gradient reaches the prefix
    const cudaError_t e = cudaMemsetAsync(p.dprefix, 0, (size_t)p.batch * (K - 1) * p.channels * sizeof(TDP), stream);
    if (e != cudaSuccess) return e;
  }
  if (p.dw) {
    const long long n = (long long)p.channels * K;
    conv1d_bwd_dw<K, TDW><<<(unsigned)((n + kConvSumCols - 1) / kConvSumCols), dim3(kConvSumCols, kConvSumSplit), 0, stream>>>(p, chunks);
  }
  return cudaGetLastError();
}

// kConvVec channels per thread with vector accesses when conv1d_bwd_vectorizable, else one channel
// per thread with scalar ones (any C, stride or offset). Deterministic either way, and the block
// order (whole_rows; the harness checks both) gives the same bits.
template <int K, class TG, class TX, class TW, class TP, class TDX, class TDW, class TDP>
inline cudaError_t conv1d_bwd(const Conv1dGradParams& p, cudaStream_t stream, bool whole_rows = true) {
  if (conv1d_bwd_vectorizable<kConvVec, TG, TX, TP, TDX, TDP>(p))
    return conv1d_bwd_launch<K, kConvVec, kConvUnroll, kConvRows, TG, TX, TW, TP, TDX, TDW, TDP>(p, stream, whole_rows);
  return conv1d_bwd_launch<K, 1, kConvUnroll, kConvRows, TG, TX, TW, TP, TDX, TDW, TDP>(p, stream, whole_rows);
}

// ---- conv1d backward, the first version (one channel per thread, scalar loads, gy read K times,
// 64-row chunks). Kept only as the harness's timing and agreement baseline (train_ops_test.cu).

constexpr int kConvRefRows = 64;

template <int K>
STRATA_HD long long conv1d_grad_reference_scratch_bytes(long long rows, int channels) {
  return (rows + kConvRefRows - 1) / kConvRefRows * channels * K * (long long)sizeof(float);
}

template <int K, class TG, class TX, class TW, class TP, class TDX>
__global__ void __launch_bounds__(kConvThreads) conv1d_bwd_reference_main(const Conv1dGradParams p) {
  constexpr int P = K - 1;
  const int C = p.channels, T = p.seqlen;
  const int c = blockIdx.y * kConvThreads + threadIdx.x;
  if (c >= C) return;
  const long long rows = (long long)p.batch * T;
  const long long r0 = (long long)blockIdx.x * kConvRefRows;
  const long long r1 = r0 + kConvRefRows < rows ? r0 + kConvRefRows : rows;
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

template <int K, class TG, class TW, class TDW, class TDP>
__global__ void __launch_bounds__(256) conv1d_bwd_reference_finish(const Conv1dGradParams p, long long chunks) {
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

// p.scratch must hold conv1d_grad_reference_scratch_bytes.
template <int K, class TG, class TX, class TW, class TP, class TDX, class TDW, class TDP>
inline cudaError_t conv1d_bwd_reference(const Conv1dGradParams& p, cudaStream_t stream) {
  static_assert(K >= 1, "K >= 1");
  if (p.batch < 0 || p.seqlen < 0 || p.channels <= 0) return cudaErrorInvalidValue;
  const long long rows = (long long)p.batch * p.seqlen;
  const long long chunks = (rows + kConvRefRows - 1) / kConvRefRows;
  if ((p.dx || p.dw) && chunks > 0) {
    if (chunks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)chunks, (unsigned)((p.channels + kConvThreads - 1) / kConvThreads));
    conv1d_bwd_reference_main<K, TG, TX, TW, TP, TDX><<<grid, kConvThreads, 0, stream>>>(p);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  const long long n = (p.dw ? (long long)p.channels * K : 0) + (p.dprefix ? (long long)p.batch * (K - 1) * p.channels : 0);
  if (n > 0) {
    const long long nb = (n + 255) / 256;
    conv1d_bwd_reference_finish<K, TG, TW, TDW, TDP><<<(unsigned)(nb < 65535 ? nb : 65535), 256, 0, stream>>>(p, chunks);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace train
}  // namespace strata

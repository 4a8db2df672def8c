// sampling.cu — choose the next token of each sequence on the GPU, from the bf16 logits the
// model left in its arena: repetition penalty (CTRL-style: a seen token's logit divided by the
// penalty when positive, multiplied when negative), temperature, top-k, top-p, then a draw from a
// counter-based Philox4x32-10 stream keyed by (seed, sequence index, step) — so a seeded request
// reproduces exactly. Temperature 0 is greedy (lowest index among equal maxima).
//
// One block of 1024 threads per sequence. Top-k and top-p thresholds are found exactly by binary
// search over order-preserving 32-bit keys of the logits (≤ 32 passes over the row, each a block
// reduction), so nothing is sorted and any vocabulary size works. The draw scans the kept
// probabilities in index order: per-thread partial sums of contiguous chunks, a block scan, and
// one thread walks its chunk.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "sampling.h"

namespace strata {
namespace {

constexpr int kThreads = 1024;

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter
// based generator, so (seed, sequence, step) names a draw with no state to carry.
__device__ uint32_t philox_first(uint64_t seed, uint32_t seq, uint64_t step) {
  uint32_t c0 = static_cast<uint32_t>(step), c1 = static_cast<uint32_t>(step >> 32), c2 = seq, c3 = 0x5354524fu;  // "STRO"
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
  }
  return c0;
}

// (0, 1]: 24 random bits, never 0
__device__ float uniform_open0(uint32_t x) { return (static_cast<float>(x >> 8) + 1.f) * (1.f / 16777216.f); }

__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct ArgMax {
  float v;
  int i;
};
struct ArgMaxOp {
  __device__ ArgMax operator()(const ArgMax& a, const ArgMax& b) const { return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a; }
};

__global__ void __launch_bounds__(kThreads) sample_kernel(const __nv_bfloat16* __restrict__ logits, size_t stride, int V, SamplingParams p,
                                                          uint64_t step, uint8_t* __restrict__ seen, int32_t* __restrict__ out,
                                                          const int32_t* __restrict__ seq_of_row, AheadFeed feed) {
  using ReduceF = cub::BlockReduce<float, kThreads>;
  using ReduceI = cub::BlockReduce<int, kThreads>;
  using ReduceA = cub::BlockReduce<ArgMax, kThreads>;
  using ScanF = cub::BlockScan<float, kThreads>;
  __shared__ union {
    typename ReduceF::TempStorage f;
    typename ReduceI::TempStorage i;
    typename ReduceA::TempStorage a;
    typename ScanF::TempStorage s;
  } tmp;
  __shared__ float s_f;
  __shared__ int s_i;

  const int r = blockIdx.x, tid = threadIdx.x;
  // a multi-step decode graph: the position, step and seed of this iteration come from the device
  // (base_dev, read-only while the graph runs); P and step are the iteration's offsets from it
  const int64_t* base = feed.base_dev;
  const long long next_P = base ? base[0] + feed.P : feed.P;
  step = base ? static_cast<uint64_t>(base[1]) + step : step;
  const uint64_t seed = base ? static_cast<uint64_t>(base[2]) : p.seed;
  // decode ahead: the next step's position (it reads it from the device; nothing here reads it)
  if (feed.info_dev && r == 0 && tid == 0) {
    feed.info_dev[0] = static_cast<int>(next_P);
    feed.info_dev[1] = static_cast<int>(next_P + 1);
    feed.positions_dev[0] = static_cast<int32_t>(next_P);
  }
  int32_t* next = static_cast<int32_t*>(feed.tokens_dev);
  const __nv_bfloat16* row = logits + static_cast<size_t>(r) * stride;
  uint8_t* sn = seen ? seen + static_cast<size_t>(r) * V : nullptr;
  const bool penal = sn && p.repetition_penalty != 1.f;
  auto val = [&](int i) {
    float x = __bfloat162float(row[i]);
    if (penal && sn[i]) x = x > 0.f ? x / p.repetition_penalty : x * p.repetition_penalty;
    return x;
  };

  // 1. the maximum (and greedy's answer)
  ArgMax best{-INFINITY, 0x7fffffff};
  for (int i = tid; i < V; i += kThreads) best = ArgMaxOp()(best, ArgMax{val(i), i});
  best = ReduceA(tmp.a).Reduce(best, ArgMaxOp());
  if (tid == 0) {
    s_f = best.v;
    s_i = best.i;
  }
  __syncthreads();
  const float m = s_f;
  if (p.temperature <= 0.f || !(m > -INFINITY)) {
    if (tid == 0) {
      const int t = s_i < V ? s_i : 0;
      out[r] = t;
      if (next) next[r] = t;
      if (sn) sn[t] = 1;
    }
    return;
  }
  const float inv_t = 1.f / p.temperature;
  auto weight = [&](float x) { return __expf((x - m) * inv_t); };

  // 2. top-k: the largest key t with count(key >= t) >= k (every token tied with the k-th largest
  //    is kept, as HF's TopKLogitsWarper keeps them)
  uint32_t lo = 0;
  if (p.top_k > 0 && p.top_k < V) {
    uint32_t hi = order_key(m);
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      int c = 0;
      for (int i = tid; i < V; i += kThreads) c += order_key(val(i)) >= mid;
      c = ReduceI(tmp.i).Sum(c);
      if (tid == 0) s_i = c;
      __syncthreads();
      if (s_i >= p.top_k) lo = mid;
      else hi = mid - 1;
      __syncthreads();
    }
  }
  // 3. top-p: the largest key t ≥ the top-k threshold whose kept mass is ≥ top_p of the total
  auto mass = [&](uint32_t thr) {
    float z = 0.f;
    for (int i = tid; i < V; i += kThreads) {
      const float x = val(i);
      if (order_key(x) >= thr) z += weight(x);
    }
    z = ReduceF(tmp.f).Sum(z);
    if (tid == 0) s_f = z;
    __syncthreads();
    const float res = s_f;
    __syncthreads();
    return res;
  };
  float Z = mass(lo);
  if (p.top_p > 0.f && p.top_p < 1.f) {
    uint32_t hi = order_key(m);
    const float want = p.top_p * Z;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      if (mass(mid) >= want) lo = mid;
      else hi = mid - 1;
    }
    Z = mass(lo);
  }
  // 4. the draw: u in (0, Z], the first index whose running kept mass reaches u
  const float u = uniform_open0(philox_first(seed, static_cast<uint32_t>(seq_of_row ? seq_of_row[r] : r), step)) * Z;  // same value in every thread
  const int chunk = (V + kThreads - 1) / kThreads;
  const int b = tid * chunk, e = min(V, b + chunk);
  float part = 0.f;
  int last_kept = -1;
  for (int i = b; i < e; ++i) {
    const float x = val(i);
    if (order_key(x) >= lo) {
      part += weight(x);
      last_kept = i;
    }
  }
  float excl = 0.f;
  ScanF(tmp.s).ExclusiveSum(part, excl);
  if (tid == 0) s_i = -1;
  __syncthreads();
  if (last_kept >= 0 && excl < u && u <= excl + part) {
    float run = excl;
    int pick = last_kept;
    for (int i = b; i < e; ++i) {
      const float x = val(i);
      if (order_key(x) < lo) continue;
      run += weight(x);
      if (run >= u) {
        pick = i;
        break;
      }
    }
    atomicMax(&s_i, pick);  // one thread qualifies, barring rounding ties between neighbours
  }
  __syncthreads();
  // rounding left u beyond the last partial sum: the last kept token
  int pick = s_i;
  if (pick < 0) {
    int lk = ReduceI(tmp.i).Reduce(last_kept, [](int a, int b) { return a > b ? a : b; });
    if (tid == 0) s_i = lk;
    __syncthreads();
    pick = s_i;
  }
  if (tid == 0) {
    out[r] = pick;
    if (next) next[r] = pick;
    if (sn) sn[pick] = 1;
  }
}

__global__ void mark_seen_kernel(uint8_t* seen, int V, const int32_t* tokens, int rows, int cols) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const int t = tokens[i];
  if (t >= 0 && t < V) seen[static_cast<size_t>(i / cols) * V + t] = 1;
}

}  // namespace

cudaError_t launch_sample(const void* logits, size_t rows, size_t stride, int vocab, const SamplingParams& p, uint64_t step, uint8_t* seen,
                          int32_t* tokens_dev, cudaStream_t stream, const int32_t* seq_of_row, const AheadFeed* feed) {
  if (rows == 0) return cudaSuccess;
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(logits), stride, vocab, p, step, seen,
                                                                      tokens_dev, seq_of_row, feed ? *feed : AheadFeed{});
  return cudaGetLastError();
}

cudaError_t launch_mark_seen(uint8_t* seen, int vocab, const int32_t* tokens_dev, int rows, int cols, cudaStream_t stream) {
  const int n = rows * cols;
  if (n == 0) return cudaSuccess;
  mark_seen_kernel<<<(n + 255) / 256, 256, 0, stream>>>(seen, vocab, tokens_dev, rows, cols);
  return cudaGetLastError();
}

}  // namespace strata

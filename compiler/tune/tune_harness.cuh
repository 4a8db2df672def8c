// tune_harness.cuh — the timing program of `strata tune` (copied into the tuning bundle).
//
// One program per (kernel variant, candidate tile config): a variant fixes what is compiled into
// the kernel besides its tiles (family / path, operand and output types, MN-major flags, the
// epilogue's extra reads); the sizes come at run time, one problem per line of the file given as
// argv[1]:   <id> <M> <N> <K> <max splits of the candidate> <max splits of the default>
// For each problem it runs the default config once (the reference), then the candidate, compares
// the outputs (max |cand − ref| / max |ref|), and times the candidate with CUDA events (mean of
// one launch, best of 3 batches sized to about argv[2] milliseconds, default 100; the weight
// operand rotates through copies larger than L2 together, see Buffers). It prints
//   RESULT <id> <ms> <max rel err>      or      ERROR <id> <message>
// one line per problem, flushed, so a run killed at its time limit keeps what it finished.
//
// The program .cu defines, before including this file:
//   TUNE_MATMUL (0: gemm.cuh's forward GEMM, 1: matmul.cuh), TUNE_TA / TUNE_TB / TUNE_OUT (types),
//   TUNE_MNA / TUNE_MNB (bool), TUNE_ELEM_READS / TUNE_COL_READS (int), and the types CandCfg and
//   DefaultCfg (gemm.cuh's WgmmaConfig / MmaConfig).
// The epilogue adds its extra operands to the accumulator (a residual-like read per element, a
// bias-like read per column): the memory traffic of the generated epilogues, not their formulas.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if TUNE_MATMUL
#include "matmul.cuh"
#else
#include "gemm.cuh"
#endif

using bf16 = __nv_bfloat16;

#define TUNE_CHECK(x)                                                                 \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("ERROR %s %s (%s:%d)\n", cur_id, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::fflush(stdout);                                                            \
      return false;                                                                   \
    }                                                                                 \
  } while (0)

// inside run_problem's one-pass loop: report and leave the loop (the buffers are freed after it)
#define TUNE_TRY(x)                                                                   \
  {                                                                                   \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("ERROR %s %s (%s:%d)\n", cur_id, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::fflush(stdout);                                                            \
      failed_ = true;                                                                 \
      break;                                                                          \
    }                                                                                 \
  }

static const char* cur_id = "-";

struct Epi {
  struct Params {
    TUNE_OUT* out;
    long long ldo;
    const bf16* elem[TUNE_ELEM_READS > 0 ? TUNE_ELEM_READS : 1];
    const bf16* col[TUNE_COL_READS > 0 ? TUNE_COL_READS : 1];
  };
  __device__ static void store2(const Params& p, int row, int col, float acc0, float acc1) {
    const long long i = (long long)row * p.ldo + col;
#pragma unroll
    for (int r = 0; r < TUNE_ELEM_READS; ++r) acc0 += __bfloat162float(p.elem[r][i]), acc1 += __bfloat162float(p.elem[r][i + 1]);
#pragma unroll
    for (int r = 0; r < TUNE_COL_READS; ++r) acc0 += __bfloat162float(p.col[r][col]), acc1 += __bfloat162float(p.col[r][col + 1]);
    if constexpr (sizeof(TUNE_OUT) == 2) strata::store_bf16x2(reinterpret_cast<bf16*>(p.out) + i, acc0, acc1);
    else strata::store_f32x2(reinterpret_cast<float*>(p.out) + i, acc0, acc1);
  }
};

// deterministic values in [-1, 1) (a hash of the index and a seed)
template <class T>
__global__ void fill_kernel(T* x, long long n, unsigned seed, float scale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed * 40503u;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13, h *= 3266489917u, h ^= h >> 16;
    x[i] = (T)(scale * ((float)(h & 0xffffff) / 8388608.f - 1.f));
  }
}

template <class T>
__global__ void diff_kernel(const T* a, const T* ref, long long n, float* maxes) {
  float d = 0.f, m = 0.f;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float r = (float)ref[i], v = (float)a[i];
    d = fmaxf(d, (v == v) ? fabsf(v - r) : INFINITY);  // NaN counts as wrong
    m = fmaxf(m, fabsf(r));
  }
  atomicMax(reinterpret_cast<int*>(maxes), __float_as_int(d));  // non-negative floats order as ints
  atomicMax(reinterpret_cast<int*>(maxes) + 1, __float_as_int(m));
}

// Timed launches cycle through copies of B (the weight, for the forward GEMM and dgrad) that
// together exceed the L2 cache, so a small-M GEMM is timed streaming its weight from HBM as it
// does inside a model, not from an L2 warmed by the previous launch.
constexpr int kMaxCopies = 16;
constexpr long long kColdBytes = 160ll << 20;

struct Buffers {
  TUNE_TA* a = nullptr;
  TUNE_TB* b = nullptr;
  TUNE_TB* bcopy[kMaxCopies] = {};
  int copies = 1;
  TUNE_OUT* out = nullptr;
  TUNE_OUT* ref = nullptr;
  bf16* elem[TUNE_ELEM_READS > 0 ? TUNE_ELEM_READS : 1] = {};
  bf16* col[TUNE_COL_READS > 0 ? TUNE_COL_READS : 1] = {};
  float* part = nullptr;
  float* maxes = nullptr;
};

template <class T>
static bool alloc_fill(T** p, long long n, unsigned seed, float scale) {
  TUNE_CHECK(cudaMalloc(p, (size_t)std::max(n, 1LL) * sizeof(T)));
  fill_kernel<T><<<1024, 256>>>(*p, n, seed, scale);
  TUNE_CHECK(cudaGetLastError());
  return true;
}

template <class Cfg>
static cudaError_t launch(const Buffers& b, TUNE_OUT* out, int M, int N, int K, int max_splits, int copy = 0) {
  const TUNE_TB* B = copy ? b.bcopy[copy] : b.b;
  typename Epi::Params ep{};
  ep.out = out;
  ep.ldo = N;
  for (int r = 0; r < TUNE_ELEM_READS; ++r) ep.elem[r] = b.elem[r];
  for (int r = 0; r < TUNE_COL_READS; ++r) ep.col[r] = b.col[r];
#if TUNE_MATMUL
  const long long lda = TUNE_MNA ? M : K, ldb = TUNE_MNB ? N : K;
  const int splits = strata::matmul::matmul_splits<Cfg>(M, N, K, max_splits);
  return strata::matmul::matmul_launch_split<Cfg, TUNE_TA, TUNE_TB, TUNE_MNA, TUNE_MNB, Epi>(b.a, lda, B, ldb, M, N, K, ep, splits, b.part, 0);
#else
  (void)max_splits;
  return strata::gemm::gemm_launch<Cfg, Epi>(b.a, K, B, M, N, K, ep, 0);
#endif
}

static bool run_problem(const char* id, int M, int N, int K, int split_cand, int split_def, double budget_ms) {
  cur_id = id;
  Buffers b;
  const long long mn = (long long)M * N;
  bool ok = alloc_fill(&b.a, (long long)M * K, 1, 1.f) && alloc_fill(&b.b, (long long)N * K, 2, 1.f) && alloc_fill(&b.out, mn, 3, 0.f) &&
            alloc_fill(&b.ref, mn, 4, 0.f);
  for (int r = 0; ok && r < TUNE_ELEM_READS; ++r) ok = alloc_fill(&b.elem[r], mn, 10 + r, 1.f);
  for (int r = 0; ok && r < TUNE_COL_READS; ++r) ok = alloc_fill(&b.col[r], N, 20 + r, 1.f);
  const long long bbytes = (long long)N * K * (long long)sizeof(TUNE_TB);
  b.copies = (int)std::min<long long>(kMaxCopies, std::max<long long>(1, (kColdBytes + bbytes - 1) / std::max(bbytes, 1LL)));
  for (int c = 1; ok && c < b.copies; ++c) ok = alloc_fill(&b.bcopy[c], (long long)N * K, 2, 1.f);  // same values as b.b
  const int max_split = std::max(1, std::max(split_cand, split_def));
  ok = ok && alloc_fill(&b.part, max_split > 1 ? (long long)max_split * mn : 1, 5, 0.f) && alloc_fill(&b.maxes, 2, 6, 0.f);
  bool done = false, failed_ = false;
  if (ok) do {
      TUNE_TRY(launch<DefaultCfg>(b, b.ref, M, N, K, split_def));
      TUNE_TRY(launch<CandCfg>(b, b.out, M, N, K, split_cand));
      TUNE_TRY(cudaDeviceSynchronize());
      TUNE_TRY(cudaMemset(b.maxes, 0, 2 * sizeof(float)));
      diff_kernel<TUNE_OUT><<<1024, 256>>>(b.out, b.ref, mn, b.maxes);
      float mx[2];
      TUNE_TRY(cudaMemcpy(mx, b.maxes, sizeof mx, cudaMemcpyDeviceToHost));
      const double rel = mx[0] / std::max(mx[1], 1e-30f);
      cudaEvent_t e0, e1;
      TUNE_TRY(cudaEventCreate(&e0));
      TUNE_TRY(cudaEventCreate(&e1));
      // one timed launch estimates how many fit the budget
      TUNE_TRY(cudaEventRecord(e0));
      TUNE_TRY(launch<CandCfg>(b, b.out, M, N, K, split_cand));
      TUNE_TRY(cudaEventRecord(e1));
      TUNE_TRY(cudaEventSynchronize(e1));
      float est = 0.f;
      TUNE_TRY(cudaEventElapsedTime(&est, e0, e1));
      const int iters = (int)std::min(200.0, std::max(2.0, budget_ms / 3.0 / std::max(est, 1e-3f)));
      double best = 1e30;
      for (int rep = 0; rep < 3; ++rep) {
        TUNE_TRY(cudaEventRecord(e0));
        cudaError_t le = cudaSuccess;
        for (int i = 0; i < iters && le == cudaSuccess; ++i) le = launch<CandCfg>(b, b.out, M, N, K, split_cand, i % b.copies);
        if (le != cudaSuccess) {
          failed_ = true;
          std::printf("ERROR %s %s\n", id, cudaGetErrorString(le));
          std::fflush(stdout);
          break;
        }
        TUNE_TRY(cudaEventRecord(e1));
        TUNE_TRY(cudaEventSynchronize(e1));
        float ms = 0.f;
        TUNE_TRY(cudaEventElapsedTime(&ms, e0, e1));
        best = std::min(best, (double)ms / iters);
      }
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      if (failed_) break;
      std::printf("RESULT %s %.6f %.6e\n", id, best, rel);
      std::fflush(stdout);
      done = true;
    } while (0);
  cudaFree(b.a), cudaFree(b.b), cudaFree(b.out), cudaFree(b.ref), cudaFree(b.part), cudaFree(b.maxes);
  for (auto* p : b.elem) cudaFree(p);
  for (auto* p : b.bcopy) cudaFree(p);
  for (auto* p : b.col) cudaFree(p);
  return done;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PROBLEMS.txt [BUDGET_MS]\n", argv[0]);
    return 2;
  }
  const double budget = argc > 2 ? std::atof(argv[2]) : 100.0;
  FILE* f = std::fopen(argv[1], "r");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  char id[256];
  int M, N, K, sc, sd;
  int failed = 0;
  while (std::fscanf(f, "%255s %d %d %d %d %d", id, &M, &N, &K, &sc, &sd) == 6) {
    if (!run_problem(id, M, N, K, sc, sd, budget)) {
      ++failed;
      // an out-of-memory is cleared and the next problem runs; a sticky error (an illegal
      // address) poisons the context, so the rest cannot run
      (void)cudaGetLastError();
      if (cudaDeviceSynchronize() != cudaSuccess) break;
    }
  }
  std::fclose(f);
  return failed ? 1 : 0;
}

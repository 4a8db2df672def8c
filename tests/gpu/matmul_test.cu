// matmul_test.cu — self-checking harness + benchmark for templates/include/matmul.cuh (the
// backward-pass GEMMs: dgrad gy·W, wgrad gyᵀ·x over all tokens, and the general batched kernel).
//
// build: nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include \
//          tests/gpu/matmul_test.cu -o matmul_test
// run:   ./matmul_test [seed] [--no-bench] [--no-check] [--fast] [--reps N] [--cool MS]
//        --fast: only the warp-specialized configs (ws and ping-pong), timed in N passes (default 2) of
//        rotated order, then a table of each one's best; --cool MS: an idle pause before each timing (an
//        H200 timed back to back for seconds throttles: 15-20% slower by the end of a run without pauses)
// Correctness: small odd shapes (token counts 1..300, not multiples of the tile) against a float64
// CPU reference of the same inputs (fresh random values per seed, outputs poisoned with NaN
// first); f32 operands are rounded to bf16 by the kernel, so their tolerance is bf16's.
// Determinism: the realistic shapes run twice, outputs compared bit for bit.
// Benchmark: TFLOP/s of the realistic shapes (peer: torch.matmul, timed by tests/gpu/matmul_bench.py).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "matmul.cuh"

namespace sm = strata::matmul;
namespace sg = strata::gemm;
using bf16 = __nv_bfloat16;

#define CK(x)                                                                                             \
  do {                                                                                                    \
    cudaError_t e_ = (x);                                                                                 \
    if (e_ != cudaSuccess) {                                                                              \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                                            \
    }                                                                                                     \
  } while (0)

static int g_pass = 0, g_fail = 0;
static void report(bool ok, const std::string& name, double rel, double maxrel) {
  printf("%s %s  relL2=%.3e maxrel=%.3e\n", ok ? "PASS" : "FAIL", name.c_str(), rel, maxrel);
  (ok ? g_pass : g_fail)++;
}

// ---------------------------------------------------------------- inputs
static uint64_t g_seed = 1;
static uint64_t rng_state;
static double urand() {  // splitmix64 → [-1, 1)
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}
template <class T> struct Host;
template <> struct Host<bf16> {
  static bf16 make(double v) { return __float2bfloat16((float)v); }
  static double val(bf16 v) { return (double)__bfloat162float(v); }
};
template <> struct Host<float> {
  static float make(double v) { return (float)v; }
  static double val(float v) { return (double)v; }
};
// host + device copy of a random matrix (rows × ld), values exactly representable in T
template <class T>
struct Mat {
  std::vector<T> h;
  T* d = nullptr;
  Mat(size_t n, double scale) : h(n) {
    for (auto& v : h) v = Host<T>::make(urand() * scale);
    CK(cudaMalloc(&d, n * sizeof(T) + 64));
    CK(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Mat() { cudaFree(d); }
  double operator[](size_t i) const { return Host<T>::val(h[i]); }
};

// ---------------------------------------------------------------- one tensor-core case
// C[M,N] = Σ_k A(m,k) B(n,k); A(m,k) = kMnA ? A[k*lda+m] : A[m*lda+k] (same for B); out ld = N + pad.
template <class Cfg, class TA, class TB, bool kMnA, bool kMnB, class TO>
static void check_tc(const char* what, int M, int N, int K, int pad, int splits = 1) {
  const long long lda = (kMnA ? M : K) + pad, ldb = (kMnB ? N : K) + pad, ldo = N + pad;
  const size_t na = (size_t)(kMnA ? K : M) * lda, nb = (size_t)(kMnB ? K : N) * ldb;
  Mat<TA> A(std::max<size_t>(na, 1), 1.0);
  Mat<TB> B(std::max<size_t>(nb, 1), 1.0);
  TO* out;
  const size_t no = (size_t)M * ldo;
  CK(cudaMalloc(&out, no * sizeof(TO) + 16));
  CK(cudaMemset(out, 0xFF, no * sizeof(TO)));  // NaN poison
  using Epi = std::conditional_t<std::is_same_v<TO, float>, sg::EpiStoreF32, sg::EpiStoreBF16>;
  float* part = nullptr;
  if (splits > 1) {
    CK(cudaMalloc(&part, (size_t)splits * M * N * 4));
    CK(cudaMemset(part, 0xFF, (size_t)splits * M * N * 4));
  }
  char nm[200];
  snprintf(nm, sizeof nm, "%s M=%d N=%d K=%d pad=%d splits=%d", what, M, N, K, pad, splits);
  // a refused shape is one failed case, not the end of the run
  const cudaError_t le = sm::matmul_launch_split<Cfg, TA, TB, kMnA, kMnB, Epi>(A.d, lda, B.d, ldb, M, N, K, {out, ldo}, splits, part);
  if (le != cudaSuccess) {
    printf("FAIL %s  launch: %s\n", nm, cudaGetErrorString(le));
    ++g_fail;
    cudaGetLastError();
    if (part) CK(cudaFree(part));
    CK(cudaFree(out));
    return;
  }
  CK(cudaDeviceSynchronize());
  if (part) CK(cudaFree(part));
  std::vector<TO> o(no);
  CK(cudaMemcpy(o.data(), out, no * sizeof(TO), cudaMemcpyDeviceToHost));
  CK(cudaFree(out));
  double d2 = 0, r2 = 0, maxd = 0, maxr = 0;
  bool finite = true;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) {
        const double a = kMnA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
        const double b = kMnB ? B[(size_t)k * ldb + n] : B[(size_t)n * ldb + k];
        s += a * b;
      }
      const double v = Host<TO>::val(o[(size_t)m * ldo + n]);
      if (!std::isfinite(v)) finite = false;
      d2 += (v - s) * (v - s), r2 += s * s;
      maxd = std::max(maxd, std::fabs(v - s)), maxr = std::max(maxr, std::fabs(s));
    }
  const double rel = std::sqrt(d2 / std::max(r2, 1e-300)), maxrel = maxd / std::max(maxr, 1e-300);
  // bf16 inputs and f32 output: only fp32 summation error; bf16 output or f32→bf16 inputs: bf16's
  const bool exactIn = !std::is_same_v<TA, float> && !std::is_same_v<TB, float>;
  const double tol = (exactIn && std::is_same_v<TO, float>) ? 1e-5 : 1e-2;
  report(finite && (K == 0 ? maxd == 0 : rel <= tol && maxrel <= 4 * tol), nm, rel, maxrel);
}

// ---------------------------------------------------------------- general batched case
struct EpiGen {
  struct Params {
    float* out; long long sam, sak, sbk, sbn, bsa, bsb, bso, ldo;
  };
  __device__ static void offsets(const Params& p, int z, long long& oa, long long& ob) { oa = z * p.bsa; ob = z * p.bsb; }
  __device__ static void store1(const Params& p, int z, int m, int n, float v) { p.out[z * p.bso + (long long)m * p.ldo + n] = v; }
};
// A as [Z][K][M] (transposed view), B as [Z][K][N]
template <class TA, class TB>
static void check_general(int Z, int M, int N, int K) {
  Mat<TA> A((size_t)Z * K * M, 1.0);
  Mat<TB> B((size_t)Z * K * N, 1.0);
  float* out;
  CK(cudaMalloc(&out, (size_t)Z * M * N * 4));
  CK(cudaMemset(out, 0xFF, (size_t)Z * M * N * 4));
  EpiGen::Params p{out, 1, M, N, 1, (long long)K * M, (long long)K * N, (long long)M * N, N};
  CK((sm::matmul_general_launch<TA, TB, EpiGen>(A.d, B.d, M, N, K, Z, p)));
  CK(cudaDeviceSynchronize());
  std::vector<float> o((size_t)Z * M * N);
  CK(cudaMemcpy(o.data(), out, o.size() * 4, cudaMemcpyDeviceToHost));
  CK(cudaFree(out));
  double d2 = 0, r2 = 0, maxd = 0, maxr = 0;
  for (int z = 0; z < Z; ++z)
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = 0;
        for (int k = 0; k < K; ++k) s += A[((size_t)z * K + k) * M + m] * B[((size_t)z * K + k) * N + n];
        const double v = o[((size_t)z * M + m) * N + n];
        d2 += (v - s) * (v - s), r2 += s * s, maxd = std::max(maxd, std::fabs(v - s)), maxr = std::max(maxr, std::fabs(s));
      }
  const double rel = std::sqrt(d2 / std::max(r2, 1e-300));
  char nm[160];
  snprintf(nm, sizeof nm, "general Z=%d M=%d N=%d K=%d", Z, M, N, K);
  report(std::isfinite(rel) && rel <= 1e-5, nm, rel, maxd / std::max(maxr, 1e-300));
}

// ---------------------------------------------------------------- configs
using Wg256x128 = sg::WgmmaConfig<256, 128, 4>;
using Wg128x256 = sg::WgmmaConfig<128, 256, 4>;
using Mma128x256 = sg::MmaConfig<128, 256, 4, 2, 4>;
using Wg256x128G16 = sg::WgmmaConfig<256, 128, 4, false, 16>;
using Wg128x128 = sg::WgmmaConfig<128, 128, 6>;
using Wg192x128 = sg::WgmmaConfig<192, 128, 5>;
using Ws128x256 = sg::WsConfig<128, 256, 4>;
using Ws256x128 = sg::WsConfig<256, 128, 4>;
using Ws128x128 = sg::WsConfig<128, 128, 5>;
using Ws128x64 = sg::WsConfig<128, 64, 6>;
// ping-pong (matmul_pp_kernel): each consumer warpgroup owns a whole BM × BN tile
using Pp128x128 = sg::PpConfig<128, 128, 6>;
using Pp64x256 = sg::PpConfig<64, 256, 5>;
using Pp128x64 = sg::PpConfig<128, 64, 8>;
// tuning variants (stages, GROUP_M)
using Pp128x128s7 = sg::PpConfig<128, 128, 7>;
using Pp128x128G16 = sg::PpConfig<128, 128, 6, 16>;
using Pp64x256s4 = sg::PpConfig<64, 256, 4>;
using Pp64x256G16 = sg::PpConfig<64, 256, 5, 16>;
using Ws128x256G16 = sg::WsConfig<128, 256, 4, 16>;

template <class Cfg>
static void check_config(const char* cname) {
  std::string c(cname);
  // dgrad: out [tokens, K] = gy [tokens, Nw] · W [Nw, K]    (M = tokens, N = K, contraction Nw)
  // wgrad: dW [Nw, K] = gyᵀ · x over tokens                  (M = Nw, N = K, contraction tokens)
  const int tok[] = {1, 7, 64, 130, 300};
  for (int t : tok) {
    check_tc<Cfg, bf16, bf16, false, true, bf16>((c + " dgrad bf16").c_str(), t, 136, 200, t == 130 ? 8 : 0);
    check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad bf16").c_str(), 136, 264, t, t == 7 ? 8 : 0);
  }
  check_tc<Cfg, bf16, bf16, false, true, float>((c + " dgrad bf16→f32").c_str(), 257, 264, 72, 0);
  check_tc<Cfg, float, bf16, false, true, bf16>((c + " dgrad f32 gy").c_str(), 300, 136, 264, 8);
  check_tc<Cfg, float, bf16, true, true, float>((c + " wgrad f32 gy").c_str(), 264, 8, 299, 0);
  check_tc<Cfg, bf16, float, true, true, float>((c + " wgrad f32 x").c_str(), 8, 520, 129, 0);
  check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad big").c_str(), 520, 392, 1000, 0);
  check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad zero tokens").c_str(), 64, 64, 0, 0);
  check_tc<Cfg, bf16, bf16, false, false, float>((c + " NT").c_str(), 130, 136, 200, 8);
  check_tc<Cfg, bf16, bf16, true, false, float>((c + " TN").c_str(), 136, 72, 136, 0);  // K-major B: K % 8 == 0
  // deterministic split-K of small weights' gradients (splits may exceed the k-tiles: empty parts)
  check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad split").c_str(), 520, 392, 1000, 0, 3);
  check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad split").c_str(), 64, 40, 5001, 0, 8);
  check_tc<Cfg, float, bf16, true, true, float>((c + " wgrad split f32 gy").c_str(), 72, 136, 3000, 8, sm::matmul_splits<Cfg>(72, 136, 3000, 8));
  check_tc<Cfg, bf16, bf16, true, true, float>((c + " wgrad split > k-tiles").c_str(), 8, 16, 130, 0, 5);
  check_tc<Cfg, bf16, bf16, false, true, bf16>((c + " dgrad split").c_str(), 130, 64, 1200, 0, 4);
}

// ---------------------------------------------------------------- benchmark
static int g_cool_ms = 0;  // --cool MS: an idle pause before each timing (a GPU timed back to back throttles)
template <class F>
static float time_ms(F&& f, int warm = 3, int iters = 10) {
  if (g_cool_ms > 0) {
    CK(cudaDeviceSynchronize());
    std::this_thread::sleep_for(std::chrono::milliseconds(g_cool_ms));
  }
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) f();
  std::vector<float> t;
  for (int i = 0; i < iters; ++i) {
    CK(cudaEventRecord(a)); f(); CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b)); t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
__global__ void fill_dev(bf16* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + i;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    p[i] = __float2bfloat16(((x >> 40) * (1.0f / 16777216.0f)) * 2.f - 1.f);
  }
}

// realistic shapes: tokens Mt, weight [Nw, Kw]; dgrad gy[Mt,Nw]·W → [Mt,Kw] bf16; wgrad → [Nw,Kw] f32
__global__ void count_diff(const uint32_t* a, const uint32_t* b, size_t n, unsigned long long* cnt) {
  unsigned long long c = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) c += a[i] != b[i];
  if (c) atomicAdd(cnt, c);
}
static unsigned long long* g_cnt = nullptr;
static bool same_bits(const void* a, const void* b, size_t bytes) {  // bytes % 4 == 0
  CK(cudaMemset(g_cnt, 0, 8));
  count_diff<<<1024, 256>>>((const uint32_t*)a, (const uint32_t*)b, bytes / 4, g_cnt);
  unsigned long long c = 1;
  CK(cudaMemcpy(&c, g_cnt, 8, cudaMemcpyDeviceToHost));
  return c == 0;
}

static std::map<std::string, std::pair<float, float>> g_best;  // "cfg NwxKw" → best dgrad, wgrad ms
template <class Cfg>
static void bench(const char* cname, int Mt, int Nw, int Kw, bf16* gy, bf16* W, bf16* x, bf16* dx, float* dW, bf16* dx2, float* dW2,
                  bool det = true) {
  const double fl = 2.0 * Mt * Nw * Kw;
  auto dgrad = [&](bf16* o) { CK((sm::matmul_launch<Cfg, bf16, bf16, false, true, sg::EpiStoreBF16>(gy, Nw, W, Kw, Mt, Kw, Nw, {o, Kw}))); };
  auto wgrad = [&](float* o) { CK((sm::matmul_launch<Cfg, bf16, bf16, true, true, sg::EpiStoreF32>(gy, Nw, x, Kw, Nw, Kw, Mt, {o, Kw}))); };
  const float td = time_ms([&] { dgrad(dx); }), tw = time_ms([&] { wgrad(dW); });
  {  // the best of the repetitions, for the summary table
    auto& b = g_best[std::string(cname) + " " + std::to_string(Nw) + "x" + std::to_string(Kw)];
    b.first = b.first > 0 ? std::min(b.first, td) : td;
    b.second = b.second > 0 ? std::min(b.second, tw) : tw;
  }
  printf("BENCH %-14s dgrad tokens=%d Nw=%d K=%d: %.3f ms %.0f TFLOP/s | wgrad [%d,%d] over %d tokens: %.3f ms %.0f TFLOP/s\n", cname, Mt,
         Nw, Kw, td, fl / td * 1e-9, Nw, Kw, Mt, tw, fl / tw * 1e-9);
  if (!det) return;
  // determinism: same inputs again, bitwise equal outputs (compared on the device)
  CK(cudaMemset(dx2, 0xFF, (size_t)Mt * Kw * 2)); CK(cudaMemset(dW2, 0xFF, (size_t)Nw * Kw * 4));
  dgrad(dx2); wgrad(dW2);
  CK(cudaDeviceSynchronize());
  const bool same = same_bits(dx, dx2, (size_t)Mt * Kw * 2) && same_bits(dW, dW2, (size_t)Nw * Kw * 4);
  printf("%s determinism %s %dx%dx%d (dgrad and wgrad run twice, bitwise equal)\n", same ? "PASS" : "FAIL", cname, Mt, Nw, Kw);
  (same ? g_pass : g_fail)++;
}

// the small and one-wave wgrads ([160, 4096] split, [2048, 2048]) on config Cfg
template <class Cfg>
static void bench_wgrad_small(const char* cname, int Mt, int K, bf16* gy, bf16* x, float* dW, float* part) {
  const int Nw = 160;
  const int splits = sm::matmul_splits<Cfg>(Nw, K, Mt, 8);
  const double fl = 2.0 * Mt * Nw * K;
  const float ts = time_ms([&] {
    CK((sm::matmul_launch_split<Cfg, bf16, bf16, true, true, sg::EpiStoreF32>(gy, Nw, x, K, Nw, K, Mt, {dW, K}, splits, part)));
  });
  const double fl2 = 2.0 * Mt * 2048 * 2048;
  const float t2 = time_ms([&] { CK((sm::matmul_launch<Cfg, bf16, bf16, true, true, sg::EpiStoreF32>(gy, 2048, x, K, 2048, 2048, Mt, {dW, 2048}))); });
  printf("BENCH %-14s wgrad small weight [%d,%d] %d splits: %.3f ms %.0f TFLOP/s | wgrad [2048,2048] over %d tokens: %.3f ms %.0f TFLOP/s\n", cname,
         Nw, K, splits, ts, fl / ts * 1e-9, Mt, t2, fl2 / t2 * 1e-9);
}

int main(int argc, char** argv) {
  bool do_bench = true, fast = false, do_check = true;
  int reps = 0;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--no-bench")) do_bench = false;
    else if (!strcmp(argv[i], "--no-check")) do_check = false;
    else if (!strcmp(argv[i], "--fast")) fast = true;
    else if (!strcmp(argv[i], "--cool") && i + 1 < argc) g_cool_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else g_seed = strtoull(argv[i], nullptr, 10);
  }
  if (reps < 1) reps = fast ? 2 : 1;
  rng_state = g_seed * 0x2545F4914F6CDD1DULL;
  printf("seed %llu%s, %d timing pass(es), %d ms pause before each timing\n", (unsigned long long)g_seed,
         fast ? " (--fast: warp-specialized configs only)" : "", reps, g_cool_ms);
  if (do_check && !fast) {
    check_config<Wg256x128>("wg256x128");
    check_config<Wg128x256>("wg128x256");
    check_config<Mma128x256>("mma128x256");
    check_config<Wg256x128G16>("wg256x128g16");
    check_config<Wg128x128>("wg128x128s6");
    check_config<Wg192x128>("wg192x128s5");
  }
  // warp-specialized TMA (the f32-operand and zero-token cases run the cp.async fallback)
  if (do_check) {
  check_config<Ws128x256>("ws128x256");
  check_config<Ws256x128>("ws256x128");
  check_config<Ws128x128>("ws128x128s5");
  check_config<Ws128x64>("ws128x64s6");
  // ping-pong TMA (same fallbacks)
  check_config<Pp128x128>("pp128x128s6");
  check_config<Pp64x256>("pp64x256s5");
  check_config<Pp128x64>("pp128x64s8");
  check_config<Pp128x128s7>("pp128x128s7");
  check_config<Pp128x128G16>("pp128x128s6g16");
  check_config<Pp64x256s4>("pp64x256s4");
  check_config<Pp64x256G16>("pp64x256s5g16");
  check_config<Ws128x256G16>("ws128x256g16");
  check_general<bf16, bf16>(3, 37, 70, 19);
  check_general<float, bf16>(1, 130, 8, 300);
  check_general<bf16, float>(2, 1, 65, 5);
  }
  if (do_bench) {
    const int Mt = 16384, K = 4096;
    // weights [Nw, Kw]: the two square-ish shapes first, then the ~0.85B hybrid's (d_model 2048): Mamba-2 in_proj
    // [10304, 2048] and out_proj [2048, 4096], MLP fc1 [8192, 2048] and fc2 [2048, 8192], attention qkv [3072, 2048],
    // LM head [32000, 2048]
    const int shapes[][2] = {{4096, 4096}, {18560, 4096}, {10304, 2048}, {2048, 4096}, {8192, 2048}, {2048, 8192}, {3072, 2048}, {32000, 2048}};
    size_t maxNw = 0, maxKw = 0, maxW = 0;
    for (auto& sh : shapes) maxNw = std::max<size_t>(maxNw, sh[0]), maxKw = std::max<size_t>(maxKw, sh[1]), maxW = std::max<size_t>(maxW, (size_t)sh[0] * sh[1]);
    bf16 *gy, *W, *x, *dx, *dx2;
    float *dW, *dW2;
    CK(cudaMalloc(&g_cnt, 8));
    CK(cudaMalloc(&gy, (size_t)Mt * maxNw * 2)); CK(cudaMalloc(&W, maxW * 2)); CK(cudaMalloc(&x, (size_t)Mt * maxKw * 2));
    CK(cudaMalloc(&dx, (size_t)Mt * maxKw * 2)); CK(cudaMalloc(&dx2, (size_t)Mt * maxKw * 2));
    CK(cudaMalloc(&dW, maxW * 4)); CK(cudaMalloc(&dW2, maxW * 4));
    fill_dev<<<1024, 256>>>(gy, (size_t)Mt * maxNw, 1); fill_dev<<<1024, 256>>>(W, maxW, 2);
    fill_dev<<<1024, 256>>>(x, (size_t)Mt * maxKw, 3);
    {  // a small weight's gradient ([160, 4096], e.g. Mamba-1's x_proj): one CTA row vs the split
      const int Nw = 160;
      const int splits = sm::matmul_splits<Wg256x128>(Nw, K, Mt, 8);
      float *part, *dWa, *dWb;
      CK(cudaMalloc(&part, (size_t)8 * Nw * K * 4)); CK(cudaMalloc(&dWa, (size_t)Nw * K * 4)); CK(cudaMalloc(&dWb, (size_t)Nw * K * 4));
      auto run = [&](int sp, float* o) {
        CK((sm::matmul_launch_split<Wg256x128, bf16, bf16, true, true, sg::EpiStoreF32>(gy, Nw, x, K, Nw, K, Mt, {o, K}, sp, part)));
      };
      const double fl = 2.0 * Mt * Nw * K;
      const float t1 = time_ms([&] { run(1, dWa); }), ts = time_ms([&] { run(splits, dWb); });
      printf("BENCH wgrad small weight [%d,%d] over %d tokens: no split %.3f ms %.0f TFLOP/s | %d splits %.3f ms %.0f TFLOP/s\n", Nw, K, Mt, t1,
             fl / t1 * 1e-9, splits, ts, fl / ts * 1e-9);
      std::vector<float> a((size_t)Nw * K), b(a.size());
      run(splits, dWa);
      CK(cudaMemcpy(a.data(), dWa, a.size() * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(b.data(), dWb, b.size() * 4, cudaMemcpyDeviceToHost));
      const bool same = !memcmp(a.data(), b.data(), a.size() * 4);
      printf("%s determinism split-K wgrad [%d,%d] (bitwise equal)\n", same ? "PASS" : "FAIL", Nw, K);
      (same ? g_pass : g_fail)++;
      CK(cudaFree(part)); CK(cudaFree(dWa)); CK(cudaFree(dWb));
    }
    {  // the 0.85B hybrid's attention out_proj ([2048, 2048]: 128 output tiles, one wave, no split)
      const double fl = 2.0 * Mt * 2048 * 2048;
      const float t = time_ms([&] { CK((sm::matmul_launch<Wg256x128, bf16, bf16, true, true, sg::EpiStoreF32>(gy, 2048, x, K, 2048, 2048, Mt, {dW, 2048}))); });
      printf("BENCH wgrad [2048,2048] over %d tokens: %.3f ms %.0f TFLOP/s\n", Mt, t, fl / t * 1e-9);
    }
    {
      float* part;
      CK(cudaMalloc(&part, (size_t)8 * 160 * K * 4));
      bench_wgrad_small<Wg256x128>("wg256x128", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Ws128x256>("ws128x256", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Ws128x128>("ws128x128s5", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Pp128x128>("pp128x128s6", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Pp64x256>("pp64x256s5", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Pp128x64>("pp128x64s8", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Pp128x128s7>("pp128x128s7", Mt, K, gy, x, dW, part);
      bench_wgrad_small<Pp64x256s4>("pp64x256s4", Mt, K, gy, x, dW, part);
      CK(cudaFree(part));
    }
    // the big shapes: every config (--fast: the warp-specialized ones, timed in two passes, the second in
    // reverse order, so the spread between passes shows the noise)
    std::vector<std::pair<const char*, void (*)(const char*, int, int, int, bf16*, bf16*, bf16*, bf16*, float*, bf16*, float*, bool)>> cfgs;
    if (!fast) {
      cfgs.push_back({"wg256x128", bench<Wg256x128>});
      cfgs.push_back({"wg128x256", bench<Wg128x256>});
      cfgs.push_back({"mma128x256", bench<Mma128x256>});
      cfgs.push_back({"wg256x128g16", bench<Wg256x128G16>});
      cfgs.push_back({"wg128x128s6", bench<Wg128x128>});
      cfgs.push_back({"wg192x128s5", bench<Wg192x128>});
    }
    cfgs.push_back({"ws128x256", bench<Ws128x256>});
    cfgs.push_back({"ws256x128", bench<Ws256x128>});
    cfgs.push_back({"ws128x128s5", bench<Ws128x128>});
    if (!fast) cfgs.push_back({"ws128x256g16", bench<Ws128x256G16>});
    cfgs.push_back({"pp128x128s6", bench<Pp128x128>});
    cfgs.push_back({"pp128x128s7", bench<Pp128x128s7>});
    if (!fast) cfgs.push_back({"pp128x128s6g16", bench<Pp128x128G16>});
    cfgs.push_back({"pp64x256s5", bench<Pp64x256>});
    if (!fast) cfgs.push_back({"pp64x256s4", bench<Pp64x256s4>});
    cfgs.push_back({"pp64x256s5g16", bench<Pp64x256G16>});
    if (!fast) cfgs.push_back({"pp128x64s8", bench<Pp128x64>});
    // pass p walks the configs from a rotated start (odd passes backwards), so no config always runs first
    const size_t nc = cfgs.size();
    for (auto& sh : shapes)
      for (int pass = 0; pass < reps; ++pass)
        for (size_t c = 0; c < nc; ++c) {
          const size_t r = (c + (size_t)pass * (nc / reps + 1)) % nc;
          const auto& cf = cfgs[pass & 1 ? nc - 1 - r : r];
          cf.second(cf.first, Mt, sh[0], sh[1], gy, W, x, dx, dW, dx2, dW2, pass == 0);
        }
    if (reps > 1) {
      printf("best of %d passes (ms), dgrad | wgrad:\n", reps);
      for (auto& sh : shapes)
        for (auto& cf : cfgs) {
          const auto& b = g_best[std::string(cf.first) + " " + std::to_string(sh[0]) + "x" + std::to_string(sh[1])];
          printf("TABLE Nw=%-5d Kw=%-4d %-14s dgrad %.3f ms %.0f TFLOP/s | wgrad %.3f ms %.0f TFLOP/s\n", sh[0], sh[1], cf.first, b.first,
                 2.0 * Mt * sh[0] * sh[1] / b.first * 1e-9, b.second, 2.0 * Mt * sh[0] * sh[1] / b.second * 1e-9);
        }
    }
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

// train_ops_test.cu — correctness and determinism of the training kernels in
// templates/include/train_ops.cuh (the reduce, cross_entropy, embedding_grad and conv1d_grad
// families), against float64 CPU references computed from the same (bf16-rounded) inputs.
//
// Build (from the repository root):
//   nvcc -std=c++17 -O3 -arch=sm_90a -Itemplates/include tests/gpu/train_ops_test.cu -o train_ops_test
// Run:
//   ./train_ops_test [seed]          (seed defaults to the time; it is printed first)
// Prints one PASS/FAIL line per check and a closing "N passed, N failed" line; exits 1 if any
// check failed (2 on a CUDA error).
//
// Every case uses small odd shapes (T not a multiple of any tile, feature sizes not multiples of
// the column tiles), fresh random inputs, outputs poisoned with NaN before each launch, and runs
// twice: the second run's output must be bit-identical to the first (memcmp) — the kernels must
// be deterministic, as bit-exact training resume depends on it.
#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "train_ops.cuh"

using bf16 = __nv_bfloat16;
namespace tr = strata::train;

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      printf("CUDA error %s at %s:%d (%s)\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                                 \
    }                                                                                          \
  } while (0)

static int g_pass = 0, g_fail = 0;
static std::mt19937_64 g_rng;

static double urand(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g_rng); }
static int irand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_rng); }

template <class T>
static T* dalloc(size_t n) {
  T* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
  return p;
}
template <class T>
static T* dupload(const std::vector<T>& h) {
  T* p = dalloc<T>(h.size());
  CK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}
template <class T>
static std::vector<T> ddownload(const T* d, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}
template <class T>
static void poison(T* p, size_t n) { CK(cudaMemset(p, 0xFF, n * sizeof(T))); }  // NaN for bf16 / f32

static float tof(bf16 v) { return __bfloat162float(v); }
static float tof(float v) { return v; }
static std::vector<bf16> rand_bf16(size_t n, double lo, double hi) {
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16((float)urand(lo, hi));
  return v;
}
static std::vector<float> rand_f32(size_t n, double lo, double hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = (float)urand(lo, hi);
  return v;
}
template <class T>
static std::vector<float> to_f(const std::vector<T>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = tof(v[i]);
  return r;
}

static void report(bool ok, const std::string& line) {
  (ok ? g_pass : g_fail)++;
  printf("%s %s\n", ok ? "PASS" : "FAIL", line.c_str());
}

// Relative error (L2 and max) of got vs the float64 reference; NaN anywhere fails.
static void check(const std::string& name, const std::vector<float>& got, const std::vector<double>& ref, double tol) {
  double num = 0, den = 0, maxerr = 0, maxref = 0;
  bool nan = got.size() != ref.size();
  for (size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    const double g = got[i];
    if (!std::isfinite(g)) { nan = true; continue; }
    const double d = g - ref[i];
    num += d * d; den += ref[i] * ref[i];
    maxerr = std::max(maxerr, std::fabs(d));
    maxref = std::max(maxref, std::fabs(ref[i]));
  }
  const double rel = std::sqrt(num / std::max(den, 1e-300)), relmax = maxerr / std::max(maxref, 1e-300);
  char buf[320];
  snprintf(buf, sizeof buf, "%s (relL2 %.2e, max|err|/max|ref| %.2e, n=%zu, tol %.0e%s)", name.c_str(), rel, relmax, ref.size(), tol, nan ? ", NaN/size mismatch" : "");
  report(!nan && rel <= tol && relmax <= tol, buf);
}

// Two runs of `run` (outputs poisoned by it) must give identical bytes.
template <class T>
static void check_same(const std::string& name, const std::vector<T>& a, const std::vector<T>& b) {
  const bool ok = a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
  report(ok, name + " deterministic (two runs, bit-identical)");
}

static constexpr double kTolBf16 = 1e-2;  // bf16 output rounding (2^-8) and bf16 inputs
static constexpr double kTolF32 = 1e-4;

// ---- functors (what the generated kernels splice in) -------------------------------------------

// a·b of two [rows, F] tensors (a row stride and offset each), the reduced element j of output o:
// row sums over groups of G contiguous columns (F = groups·G): o = row·groups + g.
struct RowGroupMul {
  const bf16* a; long long as; const bf16* b; long long bs; int groups, G;
  __device__ float operator()(long long o, long long j) const {
    const long long row = o / groups;
    const int c = (int)(o - row * groups) * G + (int)j;
    return st::ld(a + row * as + c) * st::ld(b + row * bs + c);
  }
};
template <class T>
struct StoreScaled {
  T* p; float scale;
  __device__ void operator()(long long o, float v) const { st::st(p + o, v * scale); }
};
// sum over B (axis 0) of a [B, M] tensor: o = m, j = b
struct LeadingAxis {
  const float* x; long long M;
  __device__ float operator()(long long o, long long j) const { return x[j * M + o]; }
};
// src(row, c) = a[row, c]·b[row, c] (token reductions)
template <class TA, class TB>
struct TokenMul {
  const TA* a; long long as; const TB* b; long long bs;
  __device__ float operator()(long long row, int c) const { return st::ld(a + row * as + c) * st::ld(b + row * bs + c); }
};
struct TokenLoad {
  const float* a;
  __device__ float operator()(long long row, int c) const { return a[row] * 1.f + 0.f * c; }
};
struct ColGroup {
  int per;
  __device__ int operator()(long long o, int j) const { return (int)o * per + j; }
};
// TokenMul at 8 consecutive columns with 16-byte loads (the vectorized pass 1's Src8)
template <class TA, class TB>
struct TokenMul8 {
  const TA* a; long long as; const TB* b; long long bs;
  __device__ void operator()(long long row, int c0, float (&v)[8]) const {
    const auto x = st::ld8(a + row * as + c0);
    const auto y = st::ld8(b + row * bs + c0);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = x[j] * y[j];
  }
};
// TokenMul8 that also sets *ran = 1, so the test sees which pass 1 ran (a store, not a branch:
// each product and its addition stay in one basic block, contracted to an fma as in TokenMul)
template <class TA, class TB>
struct TokenMul8Flag {
  TokenMul8<TA, TB> f; int* ran;
  __device__ void operator()(long long row, int c0, float (&v)[8]) const {
    *ran = 1;
    f(row, c0, v);
  }
};
// one operand (a bias gradient): src(row, c) = a[row, c]
template <class TA>
struct TokenCol {
  const TA* a; long long as;
  __device__ float operator()(long long row, int c) const { return st::ld(a + row * as + c); }
};
template <class TA>
struct TokenCol8 {
  const TA* a; long long as;
  __device__ void operator()(long long row, int c0, float (&v)[8]) const {
    const auto x = st::ld8(a + row * as + c0);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = x[j];
  }
};

// ---- reduce ------------------------------------------------------------------------------------

// sumTo [rows, groups·G] -> [rows, groups, 1] of a·b (norm backward row sums), bf16 out.
static void test_row_sums(int rows, int groups, int G) {
  const int F = groups * G, AS = F + 6, BS = F + 2;
  auto a = rand_bf16((size_t)rows * AS, -1, 1), b = rand_bf16((size_t)rows * BS, -1, 1);
  bf16 *da = dupload(a), *db = dupload(b);
  const long long outs = (long long)rows * groups;
  bf16* dout = dalloc<bf16>(outs);
  std::vector<double> ref(outs);
  for (int r = 0; r < rows; ++r)
    for (int g = 0; g < groups; ++g) {
      double s = 0;
      for (int j = 0; j < G; ++j) s += (double)tof(a[(size_t)r * AS + 3 + g * G + j]) * tof(b[(size_t)r * BS + g * G + j]);
      ref[(size_t)r * groups + g] = s * 0.5;
    }
  std::vector<bf16> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, outs);
    CK(tr::reduce_warp(RowGroupMul{da + 3, AS, db, BS, groups, G}, StoreScaled<bf16>{dout, 0.5f}, outs, G, 1.f, 0));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, outs);
  }
  char nm[128];
  snprintf(nm, sizeof nm, "reduce rows: sumTo [%d, %d·%d] -> [%d, %d, 1] of a·b, ·0.5", rows, groups, G, rows, groups);
  check(nm, to_f(got[0]), ref, kTolBf16);
  check_same(nm, got[0], got[1]);
  cudaFree(da); cudaFree(db); cudaFree(dout);
}

// sumTo [B, M] -> [M] over the leading axis (the generic warp path), f32.
static void test_leading_axis(int Bn, int M) {
  auto x = rand_f32((size_t)Bn * M, -1, 1);
  float* dx = dupload(x);
  float* dout = dalloc<float>(M);
  std::vector<double> ref(M, 0.0);
  for (int b = 0; b < Bn; ++b)
    for (int m = 0; m < M; ++m) ref[m] += x[(size_t)b * M + m];
  std::vector<float> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, M);
    CK(tr::reduce_warp(LeadingAxis{dx, M}, StoreScaled<float>{dout, 1.f}, M, Bn, 1.f, 0));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, M);
  }
  char nm[128];
  snprintf(nm, sizeof nm, "reduce generic: sumTo [%d, %d] -> [%d]", Bn, M, M);
  check(nm, got[0], ref, kTolF32);
  check_same(nm, got[0], got[1]);
  cudaFree(dx); cudaFree(dout);
}

// sumTo [B, T, H·P] -> [H, 1] (per) or [H·P] (per = 1) of a·b over the token rows, two passes.
template <class TA>
static void test_token_sums(int Bn, int T, int H, int per) {
  const long long rows = (long long)Bn * T;
  const int cols = H * per, AS = cols + 5, BS = cols;
  std::vector<TA> a(rows * AS);
  for (auto& v : a) v = TA(urand(-1, 1));
  auto b = rand_bf16(rows * BS, -1, 1);
  TA* da = dupload(a);
  bf16* db = dupload(b);
  const long long scratch = tr::column_sums_scratch_bytes<32>(rows, cols);
  float* dpart = dalloc<float>(scratch / 4);
  float* dout = dalloc<float>(H);
  std::vector<double> ref(H, 0.0);
  for (long long r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) ref[c / per] += (double)tof(a[r * AS + 1 + c]) * tof(b[r * BS + c]);
  std::vector<float> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, H);
    poison(dpart, scratch / 4);
    CK(tr::column_sums<32>(TokenMul<TA, bf16>{da + 1, AS, db, BS}, rows, cols, ColGroup{per}, per, StoreScaled<float>{dout, 1.f}, H, 1.f, dpart, 0));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, H);
  }
  char nm[160];
  snprintf(nm, sizeof nm, "reduce tokens: sumTo [%d, %d, %d·%d] -> [%d%s] of a·b (%s a)", Bn, T, H, per, H, per > 1 ? ", 1" : "", sizeof(TA) == 2 ? "bf16" : "f32");
  check(nm, got[0], ref, kTolF32);
  check_same(nm, got[0], got[1]);
  cudaFree(da); cudaFree(db); cudaFree(dpart); cudaFree(dout);
}

// The vectorized pass 1 (column_sums_vec) against the scalar one (column_sums) on the same
// inputs: sumTo [B, T, H·per] -> [H] of a·b, a at offset aOff of rows of cols + aPad. Checks the
// float64 reference, two vector runs bit-identical, and the partials (scratch) and outputs
// bit-identical to the scalar pass's. expectVec: the vector kernel must run (aligned operands,
// cols % 8 == 0), else the call must fall back to the scalar kernel.
template <class TA, int kCols, int kVecX>
static void test_token_sums_vec(int Bn, int T, int H, int per, int aOff, int aPad, bool expectVec) {
  const long long rows = (long long)Bn * T;
  const int cols = H * per, AS = cols + aPad, BS = cols;
  std::vector<TA> a(rows * AS + aOff);
  for (auto& v : a) v = TA(urand(-1, 1));
  auto b = rand_bf16(rows * BS, -1, 1);
  TA* da = dupload(a);
  bf16* db = dupload(b);
  int* dcalls = dalloc<int>(1);
  const long long scratch = tr::column_sums_scratch_bytes<kCols>(rows, cols), nPart = scratch / 4;
  float *dpartS = dalloc<float>(nPart), *dpartV = dalloc<float>(nPart), *doutS = dalloc<float>(H), *doutV = dalloc<float>(H);
  std::vector<double> ref(H, 0.0);
  for (long long r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) ref[c / per] += (double)tof(a[r * AS + aOff + c]) * tof(b[r * BS + c]);
  const TA* pa = da + aOff;
  const bool aligned = st::aligned16(pa, db);
  poison(doutS, H); poison(dpartS, nPart);
  CK(tr::column_sums<kCols>(TokenMul<TA, bf16>{pa, AS, db, BS}, rows, cols, ColGroup{per}, per, StoreScaled<float>{doutS, 1.f}, H, 1.f, dpartS, 0));
  std::vector<float> got[2], part[2];
  int calls[2];
  for (int run = 0; run < 2; ++run) {
    poison(doutV, H); poison(dpartV, nPart);
    CK(cudaMemset(dcalls, 0, sizeof(int)));
    CK((tr::column_sums_vec<kCols, kVecX>(TokenMul<TA, bf16>{pa, AS, db, BS}, TokenMul8Flag<TA, bf16>{{pa, AS, db, BS}, dcalls}, aligned, rows, cols, ColGroup{per}, per,
                                         StoreScaled<float>{doutV, 1.f}, H, 1.f, dpartV, 0)));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(doutV, H);
    part[run] = ddownload(dpartV, nPart);
    calls[run] = ddownload(dcalls, 1)[0];
  }
  const auto gotS = ddownload(doutS, H), partS = ddownload(dpartS, nPart);
  char nm[200];
  snprintf(nm, sizeof nm, "reduce tokens vec: sumTo [%d, %d, %d·%d] -> [%d] of a·b (%s a at +%d, row %d; kCols %d, %d threads across; %s)", Bn, T, H, per, H,
           sizeof(TA) == 2 ? "bf16" : "f32", aOff, AS, kCols, kVecX, expectVec ? "vector" : "scalar fallback");
  check(nm, got[0], ref, kTolF32);
  check_same(nm, got[0], got[1]);
  report(calls[0] == (expectVec ? 1 : 0), std::string(nm) + (expectVec ? " took the vector pass" : " fell back to the scalar pass"));
  const bool samePart = memcmp(part[0].data(), partS.data(), nPart * sizeof(float)) == 0, sameOut = memcmp(got[0].data(), gotS.data(), H * sizeof(float)) == 0;
  report(samePart && sameOut, std::string(nm) + " partials and outputs bit-identical to column_sums (scalar pass 1)");
  cudaFree(da); cudaFree(db); cudaFree(dcalls); cudaFree(dpartS); cudaFree(dpartV); cudaFree(doutS); cudaFree(doutV);
}

// reduceMean [B, T] f32 -> [] (the loss), kCols = 1.
static void test_mean(int Bn, int T) {
  const long long rows = (long long)Bn * T;
  auto x = rand_f32(rows, 0, 5);
  float* dx = dupload(x);
  const long long scratch = tr::column_sums_scratch_bytes<1>(rows, 1);
  float* dpart = dalloc<float>(scratch / 4);
  float* dout = dalloc<float>(1);
  double s = 0;
  for (float v : x) s += v;
  std::vector<double> ref{s / (double)rows};
  std::vector<float> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, 1);
    CK(tr::column_sums<1>(TokenLoad{dx}, rows, 1, ColGroup{1}, 1, StoreScaled<float>{dout, 1.f}, 1, (float)rows, dpart, 0));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, 1);
  }
  char nm[96];
  snprintf(nm, sizeof nm, "reduce mean: reduceMean [%d, %d] -> []", Bn, T);
  check(nm, got[0], ref, 1e-5);
  check_same(nm, got[0], got[1]);
  cudaFree(dx); cudaFree(dpart); cudaFree(dout);
}

// expandTo [] -> [B, T] with mean (÷ B·T), times a weight: the loss gradient's first step.
struct ExpandMul {
  const float* g; const float* w; float* out; float inv;
  __device__ void operator()(long long i) const { out[i] = g[0] * inv * w[i]; }
};
static void test_expand(int Bn, int T) {
  const long long n = (long long)Bn * T;
  auto w = rand_f32(n, 0, 1);
  std::vector<float> g{1.7f};
  float *dw = dupload(w), *dg = dupload(g), *dout = dalloc<float>(n);
  std::vector<double> ref(n);
  for (long long i = 0; i < n; ++i) ref[i] = 1.7f / (double)n * w[i];
  std::vector<float> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, n);
    CK(tr::for_each(ExpandMul{dg, dw, dout, 1.f / (float)n}, n, 0));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, n);
  }
  char nm[96];
  snprintf(nm, sizeof nm, "reduce expand: expandTo [] -> [%d, %d] mean, ·w", Bn, T);
  check(nm, got[0], ref, 1e-6);
  check_same(nm, got[0], got[1]);
  cudaFree(dw); cudaFree(dg); cudaFree(dout);
}

// ---- cross entropy -------------------------------------------------------------------------------

static void test_cross_entropy(int Bn, int T, int V, bool loss, bool grad, int badRow = -1) {
  const long long rows = (long long)Bn * T;
  const int LS = V + (V % 4 == 0 ? 8 : 3), DS = V;
  auto logits = rand_bf16(rows * LS, -4, 4);
  // a few very negative logits and a peaked row
  for (long long r = 0; r < rows; r += 3) logits[r * LS + (r % V)] = __float2bfloat16(12.f);
  std::vector<int> tg(rows);
  for (auto& t : tg) t = irand(0, V - 1);
  if (badRow >= 0) tg[badRow] = V;
  auto gy = rand_f32(rows, -1, 1);
  bf16* dl = dupload(logits);
  int* dt = dupload(tg);
  float* dg = dupload(gy);
  float* dloss = dalloc<float>(rows);
  bf16* dd = dalloc<bf16>(rows * DS);
  std::vector<double> rl(rows), rd(rows * DS);
  for (long long r = 0; r < rows; ++r) {
    const bf16* x = &logits[r * LS];
    double m = -INFINITY, s = 0;
    for (int v = 0; v < V; ++v) m = std::max(m, (double)tof(x[v]));
    for (int v = 0; v < V; ++v) s += std::exp(tof(x[v]) - m);
    const int t = std::min(tg[r], V - 1);
    rl[r] = m + std::log(s) - tof(x[t]);
    for (int v = 0; v < V; ++v) rd[r * DS + v] = gy[r] * std::exp(tof(x[v]) - m) / s - (v == t ? gy[r] : 0.0);
  }
  tr::CrossEntropyParams p;
  p.rows = rows; p.vocab = V; p.logits = dl; p.logits_row_stride = LS; p.targets = dt; p.gy = dg;
  p.loss = loss ? dloss : nullptr; p.dlogits = grad ? dd : nullptr; p.dlogits_row_stride = DS;
  std::vector<float> gl[2];
  std::vector<bf16> gd[2];
  for (int run = 0; run < 2; ++run) {
    poison(dloss, rows);
    poison(dd, rows * DS);
    CK((tr::cross_entropy_rows<bf16, float, bf16>(p, 0)));
    CK(cudaDeviceSynchronize());
    gl[run] = ddownload(dloss, rows);
    gd[run] = ddownload(dd, rows * DS);
  }
  char nm[128];
  snprintf(nm, sizeof nm, "cross_entropy B=%d T=%d V=%d%s", Bn, T, V, badRow >= 0 ? " (one target out of range)" : "");
  if (badRow >= 0) {
    // the bad row is NaN (loss and gradient); every other row is still right
    bool ok = std::isnan(gl[0][badRow]) && std::isnan(gl[1][badRow]) && std::isnan(tof(gd[0][(size_t)badRow * DS]));
    report(ok, std::string(nm) + ": the out-of-range row is NaN");
    gl[0][badRow] = gl[1][badRow] = (float)rl[badRow];  // (both runs: the loss determinism check compares them)
    for (int v = 0; v < V; ++v) gd[0][(size_t)badRow * DS + v] = __float2bfloat16((float)rd[(size_t)badRow * DS + v]);
  }
  if (loss) {
    check(std::string(nm) + " loss", gl[0], rl, kTolF32);
    check_same(std::string(nm) + " loss", gl[0], gl[1]);
  } else {
    std::vector<float> untouched = ddownload(dloss, rows);
    bool allnan = true;
    for (float v : untouched) allnan = allnan && std::isnan(v);
    report(allnan, std::string(nm) + ": no loss requested, none written");
  }
  if (grad) {
    check(std::string(nm) + " dlogits", to_f(gd[0]), rd, kTolBf16);
    if (badRow < 0) check_same(std::string(nm) + " dlogits", gd[0], gd[1]);
  }
  cudaFree(dl); cudaFree(dt); cudaFree(dg); cudaFree(dloss); cudaFree(dd);
}

// ---- embedding gradient ----------------------------------------------------------------------------

template <int kD, class TG>
static void test_embedding_grad(int Bn, int T, int V, int hot, double hotFrac) {
  const long long n = (long long)Bn * T;
  const int GS = kD + 4;
  std::vector<int> ids(n);
  for (auto& id : ids) id = urand(0, 1) < hotFrac ? hot : irand(0, V / 2);  // the upper half of the vocabulary never occurs
  std::vector<TG> gy(n * GS);
  for (auto& v : gy) v = TG(urand(-1, 1));
  int* di = dupload(ids);
  TG* dg = dupload(gy);
  float* dout = dalloc<float>((size_t)V * kD);
  const long long sb = tr::embedding_grad_scratch_bytes(n, V);
  int* dscr = dalloc<int>(sb / 4);
  std::vector<double> ref((size_t)V * kD, 0.0);
  long long hotCount = 0;
  for (long long i = 0; i < n; ++i) {
    hotCount += ids[i] == hot;
    for (int c = 0; c < kD; ++c) ref[(size_t)ids[i] * kD + c] += tof(gy[i * GS + 2 + c]);
  }
  tr::EmbeddingGradParams p;
  p.tokens = n; p.vocab = V; p.ids = di; p.gy = dg + 2; p.gy_row_stride = GS; p.out = dout; p.scratch = dscr;
  std::vector<float> got[2];
  for (int run = 0; run < 2; ++run) {
    poison(dout, (size_t)V * kD);
    poison(dscr, sb / 4);
    CK((tr::embedding_grad<kD, TG, float>(p, 0)));
    CK(cudaDeviceSynchronize());
    got[run] = ddownload(dout, (size_t)V * kD);
  }
  char nm[160];
  snprintf(nm, sizeof nm, "embedding_grad B=%d T=%d V=%d d=%d gy %s (id %d: %lld tokens%s)", Bn, T, V, kD, sizeof(TG) == 2 ? "bf16" : "f32", hot, hotCount,
           hotCount > tr::kEgSortMax ? ", walks the ids" : ", sorted bucket");
  check(nm, got[0], ref, kTolF32);
  check_same(nm, got[0], got[1]);
  cudaFree(di); cudaFree(dg); cudaFree(dout); cudaFree(dscr);
}

// ---- conv1d backward -------------------------------------------------------------------------------

template <class T>
static std::vector<T> rand_vec(size_t n, double lo, double hi);
template <>
std::vector<bf16> rand_vec<bf16>(size_t n, double lo, double hi) { return rand_bf16(n, lo, hi); }
template <>
std::vector<float> rand_vec<float>(size_t n, double lo, double hi) { return rand_f32(n, lo, hi); }
template <class T>
static const char* tname() { return sizeof(T) == 2 ? "bf16" : "f32"; }
template <class T>
static double tol_of() { return sizeof(T) == 2 ? kTolBf16 : kTolF32; }

// Row layouts of gy, x (a column slice at offset XO of a wider projection) and dx. kAligned keeps
// every offset and stride a multiple of 8 elements (the vector path when kConvVec divides C); kOdd
// makes the x offset and the gy row stride odd; kStride makes only the x row stride 2 mod 4
// elements (not aligned for 4-element bf16 vectors).
enum ConvLayout { kAligned, kOdd, kStride };
struct ConvFlags {
  bool prefix = false, dx = true, dw = true, dprefix = false;
};

template <int K, class TG = bf16, class TX = bf16, class TW = bf16, class TP = float, class TDX = bf16, class TDW = float, class TDP = float>
static void test_conv1d_grad(int Bn, int T, int C, ConvFlags f, ConvLayout lay, bool expectVec) {
  constexpr int P = K - 1;
  const bool prefix = f.prefix, wantDx = f.dx, wantDw = f.dw, wantDp = f.dprefix;
  const long long rows = (long long)Bn * T;
  const int GS = lay == kOdd ? C + 3 : C + 8, XS = lay == kStride ? 3 * C + 2 : lay == kAligned ? 3 * C + 8 : 3 * C + 2,
            XO = lay == kOdd ? C + 1 : C, DS = lay == kOdd ? C + 4 : C + 16;
  auto gy = rand_vec<TG>(rows * GS, -1, 1);
  auto x = rand_vec<TX>(rows * XS, -1, 1);
  auto w = rand_vec<TW>((size_t)C * K, -0.6, 0.6);
  auto pre = rand_vec<TP>((size_t)Bn * P * C, -1, 1);
  TG* dgy = dupload(gy);
  TX* dx = dupload(x);
  TW* dw = dupload(w);
  TP* dpre = dupload(pre);
  TDX* ddx = dalloc<TDX>(rows * DS);
  TDW* ddw = dalloc<TDW>((size_t)C * K);
  TDP* ddp = dalloc<TDP>((size_t)Bn * P * C);
  const long long sb = tr::conv1d_grad_scratch_bytes<K>(rows, C);
  float* dscr = dalloc<float>(sb / 4);
  // references
  std::vector<double> rdx(rows * DS, 0.0), rdw((size_t)C * K, 0.0), rdp((size_t)Bn * P * C, 0.0);
  auto G = [&](long long b, long long t, int c) { return (double)tof(gy[(b * T + t) * GS + c]); };
  for (int b = 0; b < Bn; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        for (int k = 0; k < K; ++k) {
          const int tp = t + k;
          const double wv = tof(w[(size_t)c * K + k]), g = G(b, t, c);
          if (tp >= P) {
            rdw[(size_t)c * K + k] += g * tof(x[((long long)b * T + tp - P) * XS + XO + c]);
            rdx[((long long)b * T + tp - P) * DS + c] += g * wv;
          } else {
            if (prefix) rdw[(size_t)c * K + k] += g * tof(pre[((size_t)b * P + tp) * C + c]);
            rdp[((size_t)b * P + tp) * C + c] += g * wv;
          }
        }
  tr::Conv1dGradParams p;
  p.batch = Bn; p.seqlen = T; p.channels = C;
  p.gy = dgy; p.gy_row_stride = GS; p.x = dx + XO; p.x_row_stride = XS; p.w = dw;
  p.prefix = prefix ? dpre : nullptr;
  p.dx = wantDx ? ddx : nullptr; p.dx_row_stride = DS;
  p.dw = wantDw ? ddw : nullptr;
  p.dprefix = wantDp ? ddp : nullptr;
  p.scratch = dscr;
  const bool vec = tr::conv1d_bwd_vectorizable<tr::kConvVec, TG, TX, TP, TDX, TDP>(p);
  std::vector<TDX> gdx[2];
  std::vector<TDW> gdw[2];
  std::vector<TDP> gdp[2];
  for (int run = 0; run < 2; ++run) {
    poison(ddx, rows * DS); poison(ddw, (size_t)C * K); poison(ddp, (size_t)Bn * P * C); poison(dscr, sb / 4);
    CK((tr::conv1d_bwd<K, TG, TX, TW, TP, TDX, TDW, TDP>(p, 0)));
    CK(cudaDeviceSynchronize());
    gdx[run] = ddownload(ddx, rows * DS);
    gdw[run] = ddownload(ddw, (size_t)C * K);
    gdp[run] = ddownload(ddp, (size_t)Bn * P * C);
  }
  // the other block order (whole_rows = false): the same arithmetic, so the same bits
  poison(ddx, rows * DS); poison(ddw, (size_t)C * K); poison(ddp, (size_t)Bn * P * C); poison(dscr, sb / 4);
  CK((tr::conv1d_bwd<K, TG, TX, TW, TP, TDX, TDW, TDP>(p, 0, false)));
  CK(cudaDeviceSynchronize());
  const std::vector<TDX> odx = ddownload(ddx, rows * DS);
  const bool sameOrder = !wantDx || memcmp(odx.data(), gdx[0].data(), odx.size() * sizeof(TDX)) == 0;
  const std::vector<TDW> odw = ddownload(ddw, (size_t)C * K);
  const std::vector<TDP> odp = ddownload(ddp, (size_t)Bn * P * C);
  const bool sameOrderAll = sameOrder && (!wantDw || memcmp(odw.data(), gdw[0].data(), odw.size() * sizeof(TDW)) == 0) &&
                            (!wantDp || memcmp(odp.data(), gdp[0].data(), odp.size() * sizeof(TDP)) == 0);
  char nm[200];
  snprintf(nm, sizeof nm, "conv1d_grad K=%d B=%d T=%d C=%d prefix=%d %s%s%s gy/x/w %s/%s/%s out %s/%s/%s layout %s path %s", K, Bn, T, C, prefix,
           wantDx ? "dx" : "", wantDw ? "dw" : "", wantDp ? "dp" : "", tname<TG>(), tname<TX>(), tname<TW>(), tname<TDX>(), tname<TDW>(), tname<TDP>(),
           lay == kAligned ? "aligned" : lay == kOdd ? "odd-offset" : "odd-stride", vec ? "vec" : "scalar");
  report(vec == expectVec, std::string(nm) + (expectVec ? " takes the vector path" : " takes the scalar path"));
  report(sameOrderAll, std::string(nm) + " the other block order gives the same bits");
  if (wantDx) {
    std::vector<float> g;
    std::vector<double> r;
    for (long long i = 0; i < rows; ++i)
      for (int c = 0; c < C; ++c) { g.push_back(tof(gdx[0][i * DS + c])); r.push_back(rdx[i * DS + c]); }
    check(std::string(nm) + " dx", g, r, tol_of<TDX>());
    check_same(std::string(nm) + " dx", gdx[0], gdx[1]);
  }
  if (wantDw) {
    check(std::string(nm) + " dw", to_f(gdw[0]), rdw, tol_of<TDW>());
    check_same(std::string(nm) + " dw", gdw[0], gdw[1]);
  }
  if (wantDp) {
    check(std::string(nm) + " dprefix", to_f(gdp[0]), rdp, tol_of<TDP>());
    check_same(std::string(nm) + " dprefix", gdp[0], gdp[1]);
  }
  cudaFree(dgy); cudaFree(dx); cudaFree(dw); cudaFree(dpre); cudaFree(ddx); cudaFree(ddw); cudaFree(ddp); cudaFree(dscr);
}

// Uniform values in [−1, 1) from a hash of the index (the benchmark's inputs, filled on the device).
__global__ void fill_bf16(bf16* p, long long n, unsigned seed, float scale) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
    p[i] = __float2bfloat16(scale * ((float)(h >> 8) * (1.f / 8388608.f) - 1.f));
  }
}

template <class F>
static float time_us(F&& fn, int iters = 20) {
  for (int i = 0; i < 3; ++i) CK(fn());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < iters; ++i) CK(fn());
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a); cudaEventDestroy(b);
  return ms * 1000.f / iters;
}

// The 0.85B model's shape: B=4, T=4096, C=6144, K=4; x and dx are the xBC slice (offset 4096,
// row stride 10304) of the in_proj output and its gradient, gy is contiguous. Times the first
// version (conv1d_bwd_reference) and the current one (plus other V / U / R choices) in one
// process; checks that two runs are bit-identical and that the two versions agree.
static void bench_conv1d_grad() {
  constexpr int K = 4;
  const int Bn = 4, T = 4096, C = 6144, XS = 10304, XO = 4096;
  const long long rows = (long long)Bn * T;
  bf16* gy = dalloc<bf16>(rows * C);
  bf16* x = dalloc<bf16>(rows * XS);
  bf16* dxa = dalloc<bf16>(rows * XS);
  bf16* dxb = dalloc<bf16>(rows * XS);
  bf16* w = dalloc<bf16>((size_t)C * K);
  float *dwa = dalloc<float>((size_t)C * K), *dwb = dalloc<float>((size_t)C * K);
  const long long sb = std::max(tr::conv1d_grad_reference_scratch_bytes<K>(rows, C), (rows + 63) / 64 * C * K * 4);
  float* scr = dalloc<float>(sb / 4);
  fill_bf16<<<1024, 256>>>(gy, rows * C, 1u, 1.f);
  fill_bf16<<<1024, 256>>>(x, rows * XS, 2u, 1.f);
  fill_bf16<<<8, 256>>>(w, (long long)C * K, 3u, 0.5f);
  CK(cudaDeviceSynchronize());
  tr::Conv1dGradParams p;
  p.batch = Bn; p.seqlen = T; p.channels = C;
  p.gy = gy; p.gy_row_stride = C; p.x = x + XO; p.x_row_stride = XS; p.w = w;
  p.dx = dxa + XO; p.dx_row_stride = XS; p.dw = dwa; p.scratch = scr;
  const double bytes = 3.0 * rows * C * sizeof(bf16);  // read gy and x, write dx
  auto line = [&](const char* what, float us) {
    printf("BENCH conv1d_bwd %-44s B=%d T=%d C=%d K=%d x/dx stride %d: %8.1f us  %6.0f GB/s\n", what, Bn, T, C, K, XS, us, bytes / (us * 1e-6) / 1e9);
  };
  using B16 = bf16;
  const float old_us = time_us([&] { return tr::conv1d_bwd_reference<K, B16, B16, B16, float, B16, float, float>(p, 0); });
  line("old (reference)", old_us);
  report(tr::conv1d_bwd_vectorizable<tr::kConvVec, B16, B16, float, B16, float>(p), "conv1d_grad bench shape takes the vector path");
  const float new_us = time_us([&] { return tr::conv1d_bwd<K, B16, B16, B16, float, B16, float, float>(p, 0); });
  line("new (conv1d_bwd)", new_us);
  {
    tr::Conv1dGradParams q = p;
    q.dw = nullptr;
    line("new, dx only", time_us([&] { return tr::conv1d_bwd<K, B16, B16, B16, float, B16, float, float>(q, 0); }));
    q = p; q.dx = nullptr;
    line("new, dw only", time_us([&] { return tr::conv1d_bwd<K, B16, B16, B16, float, B16, float, float>(q, 0); }));
  }
  // determinism: two runs of the new kernel (outputs poisoned first), bit-identical
  std::vector<bf16> hx[2];
  std::vector<float> hw[2];
  for (int run = 0; run < 2; ++run) {
    poison(dxa, rows * XS); poison(dwa, (size_t)C * K); poison(scr, sb / 4);
    CK((tr::conv1d_bwd<K, B16, B16, B16, float, B16, float, float>(p, 0)));
    CK(cudaDeviceSynchronize());
    hx[run] = ddownload(dxa, rows * XS);
    hw[run] = ddownload(dwa, (size_t)C * K);
  }
  check_same("conv1d_grad bench shape dx", hx[0], hx[1]);
  check_same("conv1d_grad bench shape dw", hw[0], hw[1]);
  // agreement with the first version: dx to bf16 rounding, dw (a different summation order) to f32
  tr::Conv1dGradParams r = p;
  r.dx = dxb + XO; r.dw = dwb;
  poison(dxb, rows * XS);
  CK((tr::conv1d_bwd_reference<K, B16, B16, B16, float, B16, float, float>(r, 0)));
  CK(cudaDeviceSynchronize());
  const std::vector<bf16> ox = ddownload(dxb, rows * XS);
  const std::vector<float> ow = ddownload(dwb, (size_t)C * K);
  std::vector<float> gx;
  std::vector<double> rx;
  long long differ = 0;
  for (long long i = 0; i < rows; ++i)
    for (int c = 0; c < C; ++c) {
      const size_t at = i * XS + XO + c;
      gx.push_back(tof(hx[0][at]));
      rx.push_back(tof(ox[at]));
      differ += memcmp(&hx[0][at], &ox[at], sizeof(bf16)) != 0;
    }
  printf("conv1d_grad bench shape: %lld of %lld dx elements differ in bits from the first version\n", differ, rows * C);
  check("conv1d_grad bench shape dx vs the first version", gx, rx, kTolBf16);
  check("conv1d_grad bench shape dw vs the first version", hw[0], std::vector<double>(ow.begin(), ow.end()), 1e-5);
  // every variant: its time, dx bit-identical to conv1d_bwd's (the same per-element arithmetic), dw
  // close to the first version's
#define CONV_VARIANT(V, U, R, MB, ROWS)                                                                                  \
  {                                                                                                                       \
    auto fn = [&] { return tr::conv1d_bwd_launch<K, V, U, R, B16, B16, B16, float, B16, float, float, MB>(p, 0, ROWS); }; \
    const char* nm_ = "V=" #V " U=" #U " R=" #R " minB=" #MB " whole_rows=" #ROWS;                                      \
    line((std::string("variant ") + nm_).c_str(), time_us(fn));                                                           \
    poison(dxa, rows * XS);                                                                                               \
    CK(fn());                                                                                                             \
    CK(cudaDeviceSynchronize());                                                                                          \
    check_same(std::string("conv1d_grad bench variant ") + nm_ + " dx vs conv1d_bwd's", ddownload(dxa, rows * XS), hx[0]); \
    const std::vector<float> vw = ddownload(dwa, (size_t)C * K);                                                          \
    check(std::string("conv1d_grad bench variant ") + nm_ + " dw vs the first version", vw, std::vector<double>(ow.begin(), ow.end()), 1e-5); \
  }
  CONV_VARIANT(4, 4, 128, 1, false)
  CONV_VARIANT(4, 4, 64, 1, true)
  CONV_VARIANT(4, 4, 256, 1, true)
  CONV_VARIANT(4, 2, 128, 1, true)
  CONV_VARIANT(4, 8, 128, 1, true)
  CONV_VARIANT(4, 4, 128, 6, true)
  CONV_VARIANT(8, 4, 128, 1, true)
  CONV_VARIANT(8, 4, 128, 1, false)
  CONV_VARIANT(8, 4, 128, 3, true)
  CONV_VARIANT(8, 8, 128, 1, true)
#undef CONV_VARIANT
  cudaFree(gy); cudaFree(x); cudaFree(dxa); cudaFree(dxb); cudaFree(w); cudaFree(dwa); cudaFree(dwb); cudaFree(scr);
}

// The 0.85B model's token reductions at B=4, T=4096 (16384 rows): a·b over 4096 and 2048 columns
// (mul + sumTo, a norm weight's gradient) and one operand over 6144 (a bias gradient): the scalar
// pass 1 (column_sums) against the vectorized one (column_sums_vec), both passes timed, and the
// outputs compared bit for bit. Prints BENCH lines (bytes read / time) and one check per shape.
static void bench_token_sums() {
  const long long rows = 4 * 4096;
  const int shapes[3][2] = {{4096, 2}, {2048, 2}, {6144, 1}};  // columns, operands
  for (const auto& sh : shapes) {
    const int cols = sh[0], nops = sh[1];
    bf16* da = dalloc<bf16>((size_t)rows * cols);
    bf16* db = dalloc<bf16>((size_t)rows * cols);
    {
      const auto h = rand_bf16((size_t)rows * cols, -1, 1);
      CK(cudaMemcpy(da, h.data(), h.size() * sizeof(bf16), cudaMemcpyHostToDevice));
      CK(cudaMemcpy(db, h.data() + 7, (h.size() - 7) * sizeof(bf16), cudaMemcpyHostToDevice));
    }
    const long long nPart = tr::column_sums_scratch_bytes<32>(rows, cols) / 4;
    float *dpart = dalloc<float>(nPart), *doutS = dalloc<float>(cols), *doutV = dalloc<float>(cols);
    constexpr int kX = tr::column_vec_threads(2048);
    auto scalar = [&]() {
      return nops == 2 ? tr::column_sums<32>(TokenMul<bf16, bf16>{da, cols, db, cols}, rows, cols, ColGroup{1}, 1, StoreScaled<float>{doutS, 1.f}, cols, 1.f, dpart, 0)
                       : tr::column_sums<32>(TokenCol<bf16>{da, cols}, rows, cols, ColGroup{1}, 1, StoreScaled<float>{doutS, 1.f}, cols, 1.f, dpart, 0);
    };
    auto vec = [&]() {
      return nops == 2 ? tr::column_sums_vec<32, kX>(TokenMul<bf16, bf16>{da, cols, db, cols}, TokenMul8<bf16, bf16>{da, cols, db, cols}, true, rows, cols, ColGroup{1}, 1,
                                                     StoreScaled<float>{doutV, 1.f}, cols, 1.f, dpart, 0)
                       : tr::column_sums_vec<32, kX>(TokenCol<bf16>{da, cols}, TokenCol8<bf16>{da, cols}, true, rows, cols, ColGroup{1}, 1, StoreScaled<float>{doutV, 1.f}, cols, 1.f, dpart, 0);
    };
    const float tS = time_us(scalar), tV = time_us(vec);
    CK(cudaDeviceSynchronize());
    const double mb = (double)rows * cols * 2 * nops / 1e6;
    printf("BENCH reduce tokens %lld x %d (%d bf16 operand%s, %.0f MB): scalar %.1f us (%.2f TB/s), vector %.1f us (%.2f TB/s)\n", rows, cols, nops, nops > 1 ? "s" : "", mb, tS,
           mb / tS, tV, mb / tV);  // MB/us = TB/s
    const auto s = ddownload(doutS, cols), v = ddownload(doutV, cols);
    char nm[128];
    snprintf(nm, sizeof nm, "bench reduce tokens %lld x %d: vector outputs bit-identical to scalar", rows, cols);
    report(memcmp(s.data(), v.data(), cols * sizeof(float)) == 0, nm);
    cudaFree(da); cudaFree(db); cudaFree(dpart); cudaFree(doutS); cudaFree(doutV);
  }
}

int main(int argc, char** argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], nullptr, 10) : 0;
  if (!seed) seed = (uint64_t)time(nullptr);
  printf("seed %llu\n", (unsigned long long)seed);
  g_rng.seed(seed);

  // reduce
  test_row_sums(3 * 37, 1, 129);
  test_row_sums(2 * 45, 2, 256);
  test_row_sums(5, 7, 3);
  test_leading_axis(3, 1000);
  test_token_sums<bf16>(3, 37, 200, 1);
  test_token_sums<float>(2, 1001, 77, 1);
  test_token_sums<float>(3, 91, 5, 48);
  test_token_sums<bf16>(1, 1, 8, 1);
  // the vectorized pass 1: bit-identical to the scalar pass (partials and outputs)
  test_token_sums_vec<bf16, 32, 32>(3, 37, 512, 1, 8, 8, true);      // a partial chunk only
  test_token_sums_vec<bf16, 32, 32>(2, 700, 8, 520, 8, 16, true);     // 4160 columns: a partial tile; heads of 520
  test_token_sums_vec<float, 32, 8>(2, 1001, 64, 1, 4, 4, true);      // f32 a, 64 columns: 8 threads across
  test_token_sums_vec<bf16, 32, 4>(3, 91, 24, 1, 0, 0, true);         // 24 columns: 4 threads across
  test_token_sums_vec<bf16, 16, 2>(2, 300, 16, 1, 0, 0, true);        // kCols 16 (16 row lanes)
  test_token_sums_vec<bf16, 8, 1>(2, 300, 8, 1, 0, 8, true);          // kCols 8 (32 row lanes)
  test_token_sums_vec<bf16, 32, 32>(3, 37, 512, 1, 1, 8, false);     // a off 16-byte alignment: scalar
  test_token_sums_vec<float, 32, 32>(2, 150, 256, 1, 2, 4, false);   // f32 a off 16-byte alignment: scalar
  test_token_sums_vec<bf16, 32, 16>(2, 150, 100, 1, 8, 8, false);    // 100 columns (not a multiple of 8): scalar
  test_token_sums_vec<bf16, 32, 32>(2, 0, 512, 1, 0, 0, false);      // no rows: no pass 1
  test_mean(3, 37);
  test_mean(7, 1999);
  test_expand(3, 37);

  // cross entropy
  test_cross_entropy(2, 37, 1000, true, true);
  test_cross_entropy(3, 5, 777, true, true);
  test_cross_entropy(2, 9, 50000, true, false);
  test_cross_entropy(1, 7, 301, false, true);
  test_cross_entropy(2, 5, 64, true, true, 3);

  // embedding gradient
  test_embedding_grad<96, bf16>(2, 37, 301, 7, 0.3);
  test_embedding_grad<300, float>(3, 1500, 517, 11, 0.6);
  test_embedding_grad<128, bf16>(1, 5, 64, 0, 0.0);

  // conv1d backward (kConvRows-row chunks cross sequence boundaries wherever T is not a multiple)
  using F32 = float;
  const ConvFlags all{true, true, true, true}, noPrefix{false, true, true, false};
  test_conv1d_grad<4>(3, 70, 1032, all, kAligned, true);         // chunk 1 spans sequences 1 and 2; a partial channel block
  test_conv1d_grad<4>(2, 300, 264, noPrefix, kAligned, true);    // chunk 2 spans sequences 0 and 1
  test_conv1d_grad<4>(2, 1000, 48, all, kAligned, true);         // several chunks per sequence
  test_conv1d_grad<4>(2, 2, 40, all, kAligned, true);            // T < K − 1
  test_conv1d_grad<4>(2, 2, 40, all, kOdd, false);               // T < K − 1, scalar
  test_conv1d_grad<4>(3, 70, 102, noPrefix, kAligned, false);    // C not a multiple of 4
  test_conv1d_grad<4>(2, 37, 302, all, kAligned, false);         // C not a multiple of 4, prefix
  test_conv1d_grad<4>(2, 137, 256, all, kOdd, false);            // x offset odd
  test_conv1d_grad<4>(2, 137, 64, all, kStride, false);          // x row stride not a multiple of 4
  test_conv1d_grad<4>(2, 137, 100, all, kAligned, true);         // C a multiple of 4, not of 8
  test_conv1d_grad<4>(3, 45, 64, {false, true, false, false}, kAligned, true);  // dx only
  test_conv1d_grad<4>(3, 45, 64, {true, false, true, false}, kAligned, true);   // dw only, prefix
  test_conv1d_grad<4>(3, 45, 64, {false, false, true, false}, kOdd, false);     // dw only, scalar
  test_conv1d_grad<4>(2, 37, 64, {true, false, false, true}, kAligned, true);   // dprefix only
  test_conv1d_grad<4>(2, 0, 64, all, kAligned, true);            // T = 0: dw and dprefix are zero
  test_conv1d_grad<3>(3, 45, 64, {false, false, true, false}, kAligned, true);
  test_conv1d_grad<3>(3, 45, 64, {false, false, true, false}, kOdd, false);
  test_conv1d_grad<2>(2, 45, 129, {true, true, false, true}, kOdd, false);
  test_conv1d_grad<2>(2, 133, 136, {true, true, false, true}, kAligned, true);
  test_conv1d_grad<8>(2, 150, 64, all, kAligned, true);
  test_conv1d_grad<4, F32, F32, F32, F32, F32, F32, F32>(2, 150, 96, all, kAligned, true);   // f32 operands, vector path
  test_conv1d_grad<4, F32, F32, F32, F32, F32, F32, F32>(2, 150, 96, all, kOdd, false);      // f32 operands, scalar
  test_conv1d_grad<4, F32, bf16, bf16, bf16, F32, bf16, bf16>(3, 77, 136, all, kAligned, true);  // mixed
  test_conv1d_grad<4, bf16, F32, F32, bf16, bf16, F32, bf16>(3, 77, 72, all, kOdd, false);      // mixed, scalar
  bench_conv1d_grad();
  bench_token_sums();

  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

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
    bool ok = std::isnan(gl[0][badRow]) && std::isnan(tof(gd[0][(size_t)badRow * DS]));
    report(ok, std::string(nm) + ": the out-of-range row is NaN");
    gl[0][badRow] = (float)rl[badRow];
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

template <int K>
static void test_conv1d_grad(int Bn, int T, int C, bool prefix, bool wantDx, bool wantDw) {
  constexpr int P = K - 1;
  const long long rows = (long long)Bn * T;
  const int GS = C + 8, XS = 3 * C + 2, XO = C + 1, DS = C + 4;
  auto gy = rand_bf16(rows * GS, -1, 1);
  auto x = rand_bf16(rows * XS, -1, 1);
  auto w = rand_bf16((size_t)C * K, -0.6, 0.6);
  auto pre = rand_f32((size_t)Bn * P * C, -1, 1);
  bf16 *dgy = dupload(gy), *dx = dupload(x), *dw = dupload(w);
  float* dpre = dupload(pre);
  bf16* ddx = dalloc<bf16>(rows * DS);
  float* ddw = dalloc<float>((size_t)C * K);
  float* ddp = dalloc<float>((size_t)Bn * P * C);
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
          } else if (prefix) {
            rdw[(size_t)c * K + k] += g * pre[((size_t)b * P + tp) * C + c];
            rdp[((size_t)b * P + tp) * C + c] += g * wv;
          }
        }
  tr::Conv1dGradParams p;
  p.batch = Bn; p.seqlen = T; p.channels = C;
  p.gy = dgy; p.gy_row_stride = GS; p.x = dx + XO; p.x_row_stride = XS; p.w = dw;
  p.prefix = prefix ? dpre : nullptr;
  p.dx = wantDx ? ddx : nullptr; p.dx_row_stride = DS;
  p.dw = wantDw ? ddw : nullptr;
  p.dprefix = prefix ? ddp : nullptr;
  p.scratch = dscr;
  std::vector<bf16> gdx[2];
  std::vector<float> gdw[2], gdp[2];
  for (int run = 0; run < 2; ++run) {
    poison(ddx, rows * DS); poison(ddw, (size_t)C * K); poison(ddp, (size_t)Bn * P * C); poison(dscr, sb / 4);
    CK((tr::conv1d_bwd<K, bf16, bf16, bf16, float, bf16, float, float>(p, 0)));
    CK(cudaDeviceSynchronize());
    gdx[run] = ddownload(ddx, rows * DS);
    gdw[run] = ddownload(ddw, (size_t)C * K);
    gdp[run] = ddownload(ddp, (size_t)Bn * P * C);
  }
  char nm[160];
  snprintf(nm, sizeof nm, "conv1d_grad K=%d B=%d T=%d C=%d prefix=%d", K, Bn, T, C, prefix);
  if (wantDx) {
    std::vector<float> g;
    std::vector<double> r;
    for (long long i = 0; i < rows; ++i)
      for (int c = 0; c < C; ++c) { g.push_back(tof(gdx[0][i * DS + c])); r.push_back(rdx[i * DS + c]); }
    check(std::string(nm) + " dx", g, r, kTolBf16);
    check_same(std::string(nm) + " dx", gdx[0], gdx[1]);
  }
  if (wantDw) {
    check(std::string(nm) + " dw", gdw[0], rdw, kTolF32);
    check_same(std::string(nm) + " dw", gdw[0], gdw[1]);
  }
  if (prefix) {
    check(std::string(nm) + " dprefix", gdp[0], rdp, kTolF32);
    check_same(std::string(nm) + " dprefix", gdp[0], gdp[1]);
  }
  cudaFree(dgy); cudaFree(dx); cudaFree(dw); cudaFree(dpre); cudaFree(ddx); cudaFree(ddw); cudaFree(ddp); cudaFree(dscr);
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

  // conv1d backward
  test_conv1d_grad<4>(3, 70, 100, false, true, true);
  test_conv1d_grad<4>(2, 37, 300, true, true, true);
  test_conv1d_grad<4>(2, 2, 40, true, true, true);  // T < K − 1
  test_conv1d_grad<3>(3, 45, 64, false, false, true);
  test_conv1d_grad<2>(2, 45, 129, true, true, false);

  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

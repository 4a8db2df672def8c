// ssm_test.cu — correctness (vs CPU fp64 sequential recurrences) and timings for
// templates/include/{conv1d,ssd,selective_scan}.cuh.
// Build: nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include tests/gpu/ssm_test.cu -o ssm_test
// Usage: ./ssm_test [seed] [--no-bench] [--ssd-only]
#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "conv1d.cuh"
#include "selective_scan.cuh"
#include "ssd.cuh"

using bf16 = __nv_bfloat16;

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
static double softplus_d(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
static double inv_softplus(double y) { return y + std::log(-std::expm1(-y)); }

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
static void poison_bf16(bf16* p, size_t n) { CK(cudaMemset(p, 0xFF, n * sizeof(bf16))); }   // 0xFFFF = NaN
static void poison_f32(float* p, size_t n) { CK(cudaMemset(p, 0xFF, n * sizeof(float))); }  // NaN

static void check(const std::string& name, const std::vector<float>& got, const std::vector<double>& ref, double tol) {
  double num = 0, den = 0, maxerr = 0, maxref = 0;
  bool nan = false;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i];
    if (!std::isfinite(g)) { nan = true; continue; }
    const double d = g - ref[i];
    num += d * d; den += ref[i] * ref[i];
    maxerr = std::max(maxerr, std::fabs(d));
    maxref = std::max(maxref, std::fabs(ref[i]));
  }
  const double rel = std::sqrt(num / std::max(den, 1e-300));
  const double relmax = maxerr / std::max(maxref, 1e-300);
  const bool ok = !nan && rel <= tol && relmax <= tol;
  if (ok) { ++g_pass; printf("PASS %s (relL2 %.2e, max|err|/max|ref| %.2e, n=%zu)\n", name.c_str(), rel, relmax, ref.size()); }
  else { ++g_fail; printf("FAIL %s relL2 %.3e max|err|/max|ref| %.3e nan=%d n=%zu tol %.1e\n", name.c_str(), rel, relmax, (int)nan, ref.size(), tol); }
}
static std::vector<float> bf_to_f(const std::vector<bf16>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = __bfloat162float(v[i]);
  return r;
}

// ----------------------------------------------------------------------------------------------
// conv1d
// ----------------------------------------------------------------------------------------------
template <int K>
static void test_conv1d(int Bn, int T, int C, bool prefix, bool silu, bool bias) {
  const int W = C + 24, xoff = 8, YW = C + 8;
  std::vector<bf16> buf((size_t)Bn * T * W), w((size_t)C * K), bb(C);
  for (auto& v : buf) v = __float2bfloat16((float)urand(-1, 1));
  for (auto& v : w) v = __float2bfloat16((float)urand(-0.5, 0.5));
  for (auto& v : bb) v = __float2bfloat16((float)urand(-0.2, 0.2));
  std::vector<float> st((size_t)Bn * (K - 1) * C);
  for (auto& v : st) v = (float)urand(-1, 1);
  bf16* dbuf = dupload(buf); bf16* dw = dupload(w); bf16* db = dupload(bb);
  float* dst = dupload(st);
  bf16* dy = dalloc<bf16>((size_t)Bn * T * YW);
  float* dso = dalloc<float>(st.size());
  poison_bf16(dy, (size_t)Bn * T * YW); poison_f32(dso, st.size());
  strata::conv1d::Conv1dParams p;
  p.batch = Bn; p.seqlen = T; p.channels = C;
  p.x = dbuf + xoff; p.x_batch_stride = (long long)T * W; p.x_row_stride = W;
  p.w = dw; p.bias = bias ? db : nullptr; p.state_in = prefix ? dst : nullptr; p.state_out = dso;
  p.y = dy; p.y_batch_stride = (long long)T * YW; p.y_row_stride = YW; p.silu = silu;
  CK(strata::conv1d::causal_conv1d_fwd<K>(p));
  CK(cudaDeviceSynchronize());
  auto yh = bf_to_f(ddownload(dy, (size_t)Bn * T * YW));
  auto so = ddownload(dso, st.size());
  std::vector<float> got, gots;
  std::vector<double> ref, refs;
  for (int b = 0; b < Bn; ++b)
    for (int c = 0; c < C; ++c) {
      std::vector<double> xx(K - 1 + T);
      for (int k = 0; k < K - 1; ++k) xx[k] = prefix ? st[((size_t)b * (K - 1) + k) * C + c] : 0.0;
      for (int t = 0; t < T; ++t) xx[K - 1 + t] = __bfloat162float(buf[((size_t)b * T + t) * W + xoff + c]);
      for (int t = 0; t < T; ++t) {
        double a = bias ? (double)__bfloat162float(bb[c]) : 0.0;
        for (int k = 0; k < K; ++k) a += (double)__bfloat162float(w[(size_t)c * K + k]) * xx[t + k];
        if (silu) a = a / (1.0 + std::exp(-a));
        ref.push_back(a);
        got.push_back(yh[((size_t)b * T + t) * YW + c]);
      }
      for (int k = 0; k < K - 1; ++k) {
        refs.push_back(xx[T + k]);
        gots.push_back(so[((size_t)b * (K - 1) + k) * C + c]);
      }
    }
  char nm[160];
  snprintf(nm, sizeof nm, "conv1d K=%d B=%d T=%d C=%d prefix=%d silu=%d bias=%d", K, Bn, T, C, prefix, silu, bias);
  check(std::string(nm) + " y", got, ref, 2e-2);
  check(std::string(nm) + " state_out", gots, refs, 1e-3);
  cudaFree(dbuf); cudaFree(dw); cudaFree(db); cudaFree(dst); cudaFree(dy); cudaFree(dso);
}

// ----------------------------------------------------------------------------------------------
// SSD (Mamba-2)
// ----------------------------------------------------------------------------------------------
struct SsdHost {
  int Bn, T, H, G, P, N, W;
  int xo, Bo, Co, dto;
  std::vector<bf16> buf;       // fused [B,T,W]
  std::vector<float> A, dtb, D, h0;
};
static SsdHost make_ssd(int Bn, int T, int H, int G, int P, int N) {
  SsdHost s;
  s.Bn = Bn; s.T = T; s.H = H; s.G = G; s.P = P; s.N = N;
  s.xo = 0; s.Bo = H * P; s.Co = s.Bo + G * N; s.dto = s.Co + G * N;
  s.W = ((s.dto + H + 7) / 8) * 8 + 8;
  s.buf.resize((size_t)Bn * T * s.W);
  for (size_t i = 0; i < s.buf.size(); ++i) {
    const int col = (int)(i % s.W);
    float v = (col >= s.dto) ? (float)urand(-0.5, 0.5) : (float)urand(-1, 1);
    s.buf[i] = __float2bfloat16(v);
  }
  s.A.resize(H); s.dtb.resize(H); s.D.resize(H);
  for (int h = 0; h < H; ++h) {
    s.A[h] = -(float)std::exp(std::log(urand(1, 16)));
    s.dtb[h] = (float)inv_softplus(std::exp(urand(std::log(1e-3), std::log(0.1))));
    s.D[h] = (float)urand(0.5, 1.5);
  }
  s.h0.resize((size_t)Bn * H * P * N);
  for (auto& v : s.h0) v = (float)urand(-0.5, 0.5);
  return s;
}
// CPU fp64 reference over tokens [0, T): y [B,T,H,P], hT [B,H,P,N]
static void ssd_ref(const SsdHost& s, bool use_h0, std::vector<double>& y, std::vector<double>& hT) {
  const int H = s.H, P = s.P, N = s.N, T = s.T;
  y.assign((size_t)s.Bn * T * H * P, 0.0);
  hT.assign((size_t)s.Bn * H * P * N, 0.0);
  for (int b = 0; b < s.Bn; ++b)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / s.G);
      std::vector<double> st((size_t)P * N);
      for (size_t i = 0; i < st.size(); ++i) st[i] = use_h0 ? s.h0[((size_t)b * H + h) * P * N + i] : 0.0;
      for (int t = 0; t < T; ++t) {
        const bf16* row = &s.buf[((size_t)b * T + t) * s.W];
        const double dt = softplus_d((double)__bfloat162float(row[s.dto + h]) + s.dtb[h]);
        const double a = std::exp(dt * s.A[h]);
        for (int pp = 0; pp < P; ++pp) {
          const double xv = __bfloat162float(row[s.xo + h * P + pp]);
          double acc = 0;
          for (int n = 0; n < N; ++n) {
            double& hv = st[(size_t)pp * N + n];
            hv = a * hv + dt * xv * (double)__bfloat162float(row[s.Bo + g * N + n]);
            acc += hv * (double)__bfloat162float(row[s.Co + g * N + n]);
          }
          y[(((size_t)b * T + t) * H + h) * P + pp] = acc + s.D[h] * xv;
        }
      }
      for (size_t i = 0; i < st.size(); ++i) hT[((size_t)b * H + h) * P * N + i] = st[i];
    }
}
struct SsdDev {
  bf16* buf; float *A, *dtb, *D, *h0, *hT; bf16* y; int YW;
  void* ws; size_t ws_bytes;  // chunk-parallel workspace (sized for hT absent: covers both)
};
static SsdDev ssd_upload(const SsdHost& s) {
  SsdDev d;
  d.buf = dupload(s.buf); d.A = dupload(s.A); d.dtb = dupload(s.dtb); d.D = dupload(s.D); d.h0 = dupload(s.h0);
  d.hT = dalloc<float>(s.h0.size());
  d.YW = s.H * s.P + 8;
  d.y = dalloc<bf16>((size_t)s.Bn * s.T * d.YW);
  d.ws_bytes = strata::ssd::ssd_chunked_workspace_bytes(s.Bn, s.H, s.P, s.N, false);
  d.ws = dalloc<unsigned char>(d.ws_bytes);
  CK(cudaMemset(d.ws, 0xFF, d.ws_bytes));  // garbage flags: the launcher must reset them
  return d;
}
static void ssd_free(SsdDev& d) {
  cudaFree(d.buf); cudaFree(d.A); cudaFree(d.dtb); cudaFree(d.D); cudaFree(d.h0); cudaFree(d.hT); cudaFree(d.y); cudaFree(d.ws);
}
// params for tokens [t0, t0+len) of the fused buffer
static strata::ssd::SsdParams ssd_params(const SsdHost& s, const SsdDev& d, int t0, int len, const float* h0, float* hT,
                                         bool ws = false) {
  strata::ssd::SsdParams p;
  p.batch = s.Bn; p.seqlen = len; p.nheads = s.H; p.ngroups = s.G;
  const long long bs = (long long)s.T * s.W;
  const bf16* base = d.buf + (size_t)t0 * s.W;
  p.x = base + s.xo; p.x_batch_stride = bs; p.x_row_stride = s.W;
  p.dt = base + s.dto; p.dt_batch_stride = bs; p.dt_row_stride = s.W;
  p.B = base + s.Bo; p.B_batch_stride = bs; p.B_row_stride = s.W;
  p.C = base + s.Co; p.C_batch_stride = bs; p.C_row_stride = s.W;
  p.dt_bias = d.dtb; p.A = d.A; p.D = d.D; p.h0 = h0; p.hT = hT;
  p.y = d.y + (size_t)t0 * d.YW; p.y_batch_stride = (long long)s.T * d.YW; p.y_row_stride = d.YW;
  if (ws) { p.workspace = d.ws; p.workspace_bytes = d.ws_bytes; }
  return p;
}
static std::vector<float> ssd_y_host(const SsdHost& s, const SsdDev& d, int t0, int len) {
  auto yh = bf_to_f(ddownload(d.y, (size_t)s.Bn * s.T * d.YW));
  std::vector<float> out;
  for (int b = 0; b < s.Bn; ++b)
    for (int t = t0; t < t0 + len; ++t)
      for (int i = 0; i < s.H * s.P; ++i) out.push_back(yh[((size_t)b * s.T + t) * d.YW + i]);
  return out;
}
static std::vector<double> slice_y(const SsdHost& s, const std::vector<double>& y, int t0, int len) {
  std::vector<double> out;
  for (int b = 0; b < s.Bn; ++b)
    for (int t = t0; t < t0 + len; ++t)
      for (int i = 0; i < s.H * s.P; ++i) out.push_back(y[((size_t)b * s.T + t) * s.H * s.P + i]);
  return out;
}

template <int L>
static void test_ssd(int T, bool use_h0, bool split = true) {
  constexpr int P = 64, N = 128;
  const int Bn = 2, H = 4, G = 2;
  SsdHost s = make_ssd(Bn, T, H, G, P, N);
  std::vector<double> yref, href;
  ssd_ref(s, use_h0, yref, href);
  SsdDev d = ssd_upload(s);
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  auto p = ssd_params(s, d, 0, T, use_h0 ? d.h0 : nullptr, d.hT);
  CK((split ? strata::ssd::ssd_chunked_fwd<L, P, N, true>(p) : strata::ssd::ssd_chunked_fwd<L, P, N, false>(p)));
  CK(cudaDeviceSynchronize());
  char nm[160];
  snprintf(nm, sizeof nm, "ssd chunked L=%d T=%d B=%d H=%d G=%d P=%d N=%d h0=%d split=%d", L, T, Bn, H, G, P, N, use_h0, split);
  check(std::string(nm) + " y", ssd_y_host(s, d, 0, T), yref, 2e-2);
  auto hT = ddownload(d.hT, s.h0.size());
  check(std::string(nm) + " hT", hT, href, split ? 1e-3 : 1e-2);
  ssd_free(d);
}
// chunk-parallel path (workspace given). hT_mode: 0 none (state slot in workspace), 1 separate
// buffer, 2 aliases h0 (in place).
template <int L, int P, int N>
static void test_ssd_par(int Bn, int T, int H, int G, bool use_h0, int hT_mode, bool split = true) {
  SsdHost s = make_ssd(Bn, T, H, G, P, N);
  std::vector<double> yref, href;
  ssd_ref(s, use_h0, yref, href);
  SsdDev d = ssd_upload(s);
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  float* hT = hT_mode == 0 ? nullptr : hT_mode == 1 ? d.hT : d.h0;
  auto p = ssd_params(s, d, 0, T, use_h0 || hT_mode == 2 ? d.h0 : nullptr, hT, true);
  if (hT_mode == 2 && !use_h0) p.h0 = nullptr;
  CK((split ? strata::ssd::ssd_chunked_fwd<L, P, N, true>(p) : strata::ssd::ssd_chunked_fwd<L, P, N, false>(p)));
  CK(cudaDeviceSynchronize());
  char nm[200];
  snprintf(nm, sizeof nm, "ssd chunk-parallel L=%d T=%d B=%d H=%d G=%d P=%d N=%d h0=%d hT=%s split=%d", L, T, Bn, H, G, P,
           N, use_h0, hT_mode == 0 ? "none" : hT_mode == 1 ? "out" : "in-place", split);
  check(std::string(nm) + " y", ssd_y_host(s, d, 0, T), yref, 2e-2);
  if (hT) check(std::string(nm) + " hT", ddownload(hT, s.h0.size()), href, split ? 1e-3 : 1e-2);
  // run twice (flags left over from the first run must not matter)
  if (hT_mode == 1) {
    poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
    CK((split ? strata::ssd::ssd_chunked_fwd<L, P, N, true>(p) : strata::ssd::ssd_chunked_fwd<L, P, N, false>(p)));
    CK(cudaDeviceSynchronize());
    check(std::string(nm) + " rerun y", ssd_y_host(s, d, 0, T), yref, 2e-2);
    check(std::string(nm) + " rerun hT", ddownload(hT, s.h0.size()), href, split ? 1e-3 : 1e-2);
  }
  ssd_free(d);
}
// wgmma path (ssd_chunked_fwd_wgmma, what sm_90a code runs for P = 64, N = 128). hT_mode: 0 none,
// 1 separate buffer, 2 aliases h0 (in place).
template <bool kSplit = true>
static void test_ssd_wg(int Bn, int T, int H, int G, bool use_h0, int hT_mode) {
  constexpr int L = 128, P = 64, N = 128;
  SsdHost s = make_ssd(Bn, T, H, G, P, N);
  std::vector<double> yref, href;
  ssd_ref(s, use_h0, yref, href);
  SsdDev d = ssd_upload(s);
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  float* hT = hT_mode == 0 ? nullptr : hT_mode == 1 ? d.hT : d.h0;
  auto p = ssd_params(s, d, 0, T, use_h0 ? d.h0 : nullptr, hT);
  CK((strata::ssd::ssd_chunked_fwd_wgmma<L, P, N, kSplit>(p)));
  CK(cudaDeviceSynchronize());
  char nm[200];
  snprintf(nm, sizeof nm, "ssd wgmma T=%d B=%d H=%d G=%d P=%d N=%d h0=%d hT=%s split=%d", T, Bn, H, G, P, N, use_h0,
           hT_mode == 0 ? "none" : hT_mode == 1 ? "out" : "in-place", (int)kSplit);
  check(std::string(nm) + " y", ssd_y_host(s, d, 0, T), yref, 2e-2);
  if (hT) check(std::string(nm) + " hT", ddownload(hT, s.h0.size()), href, kSplit ? 1e-3 : 1e-2);
  if (hT_mode == 1) {  // second run on the same buffers: same result
    poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
    CK((strata::ssd::ssd_chunked_fwd_wgmma<L, P, N, kSplit>(p)));
    CK(cudaDeviceSynchronize());
    check(std::string(nm) + " rerun y", ssd_y_host(s, d, 0, T), yref, 2e-2);
    check(std::string(nm) + " rerun hT", ddownload(hT, s.h0.size()), href, kSplit ? 1e-3 : 1e-2);
  }
  if (T >= 2 && hT_mode == 1) {  // prefill T-1 through the wgmma path, then one decode step in place
    poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
    auto p1 = ssd_params(s, d, 0, T - 1, use_h0 ? d.h0 : nullptr, d.hT);
    CK((strata::ssd::ssd_chunked_fwd_wgmma<L, P, N, kSplit>(p1)));
    auto p2 = ssd_params(s, d, T - 1, 1, d.hT, d.hT);
    CK((strata::ssd::ssd_decode_fwd<P, N>(p2)));
    CK(cudaDeviceSynchronize());
    check(std::string(nm) + " prefill(T-1)+decode y_last", ssd_y_host(s, d, T - 1, 1), slice_y(s, yref, T - 1, 1), 2e-2);
    check(std::string(nm) + " prefill(T-1)+decode hT", ddownload(d.hT, s.h0.size()), href, kSplit ? 1e-3 : 1e-2);
  }
  ssd_free(d);
}
static void test_ssd_decode_continuation(int T, bool use_h0) {
  constexpr int L = 128, P = 64, N = 128;
  const int Bn = 2, H = 4, G = 2;
  SsdHost s = make_ssd(Bn, T, H, G, P, N);
  std::vector<double> yref, href;
  ssd_ref(s, use_h0, yref, href);
  SsdDev d = ssd_upload(s);
  // full GPU run (for the "equals a full run" comparison)
  poison_bf16(d.y, (size_t)Bn * T * d.YW);
  auto pf = ssd_params(s, d, 0, T, use_h0 ? d.h0 : nullptr, d.hT, true);
  CK((strata::ssd::ssd_chunked_fwd<L, P, N>(pf)));
  CK(cudaDeviceSynchronize());
  auto yfull = ssd_y_host(s, d, T - 1, 1);
  auto hfull = ddownload(d.hT, s.h0.size());
  // prefill T-1 tokens, then one decode step in place on the state
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  auto p1 = ssd_params(s, d, 0, T - 1, use_h0 ? d.h0 : nullptr, d.hT, true);
  CK((strata::ssd::ssd_chunked_fwd<L, P, N>(p1)));
  auto p2 = ssd_params(s, d, T - 1, 1, d.hT, d.hT);
  CK((strata::ssd::ssd_decode_fwd<P, N>(p2)));
  CK(cudaDeviceSynchronize());
  char nm[160];
  snprintf(nm, sizeof nm, "ssd prefill(T=%d)+decode(1) h0=%d", T - 1, use_h0);
  auto ydec = ssd_y_host(s, d, T - 1, 1);
  auto hdec = ddownload(d.hT, s.h0.size());
  check(std::string(nm) + " y_last vs ref", ydec, slice_y(s, yref, T - 1, 1), 2e-2);
  check(std::string(nm) + " hT vs ref", hdec, href, 1e-3);
  std::vector<double> yf(yfull.begin(), yfull.end()), hf(hfull.begin(), hfull.end());
  check(std::string(nm) + " y_last vs full GPU run", ydec, yf, 2e-2);
  check(std::string(nm) + " hT vs full GPU run", hdec, hf, 1e-3);
  // sequential kernel over the whole sequence (generic path)
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  auto p3 = ssd_params(s, d, 0, T, use_h0 ? d.h0 : nullptr, d.hT);
  CK((strata::ssd::ssd_decode_fwd<P, N>(p3)));
  CK(cudaDeviceSynchronize());
  snprintf(nm, sizeof nm, "ssd sequential-kernel T=%d h0=%d", T, use_h0);
  check(std::string(nm) + " y", ssd_y_host(s, d, 0, T), yref, 2e-2);
  check(std::string(nm) + " hT", ddownload(d.hT, s.h0.size()), href, 1e-3);
  ssd_free(d);
}

// ----------------------------------------------------------------------------------------------
// Selective scan (Mamba-1)
// ----------------------------------------------------------------------------------------------
struct ScanHost {
  int Bn, T, D, N, W1, W2;  // buf1: [u | z], buf2: [delta | B | C]
  std::vector<bf16> buf1, buf2;
  std::vector<float> A, dbias, Dskip, h0;
};
static ScanHost make_scan(int Bn, int T, int D, int N) {
  ScanHost s;
  s.Bn = Bn; s.T = T; s.D = D; s.N = N;
  s.W1 = 2 * D + 4; s.W2 = D + 2 * N + 2;
  s.buf1.resize((size_t)Bn * T * s.W1); s.buf2.resize((size_t)Bn * T * s.W2);
  for (auto& v : s.buf1) v = __float2bfloat16((float)urand(-1, 1));
  for (size_t i = 0; i < s.buf2.size(); ++i) {
    const int col = (int)(i % s.W2);
    s.buf2[i] = __float2bfloat16(col < D ? (float)urand(-0.5, 0.5) : (float)urand(-1, 1));
  }
  s.A.resize((size_t)D * N); s.dbias.resize(D); s.Dskip.resize(D);
  for (auto& v : s.A) v = -(float)std::exp(std::log(urand(1, 16)));
  for (int d = 0; d < D; ++d) {
    s.dbias[d] = (float)inv_softplus(std::exp(urand(std::log(1e-3), std::log(0.1))));
    s.Dskip[d] = (float)urand(0.5, 1.5);
  }
  s.h0.resize((size_t)Bn * D * N);
  for (auto& v : s.h0) v = (float)urand(-0.5, 0.5);
  return s;
}
static void scan_ref(const ScanHost& s, bool use_h0, bool gate, std::vector<double>& y, std::vector<double>& hT) {
  const int D = s.D, N = s.N, T = s.T;
  y.assign((size_t)s.Bn * T * D, 0.0);
  hT.assign((size_t)s.Bn * D * N, 0.0);
  for (int b = 0; b < s.Bn; ++b)
    for (int d = 0; d < D; ++d) {
      std::vector<double> st(N);
      for (int n = 0; n < N; ++n) st[n] = use_h0 ? s.h0[((size_t)b * D + d) * N + n] : 0.0;
      for (int t = 0; t < T; ++t) {
        const bf16* r1 = &s.buf1[((size_t)b * T + t) * s.W1];
        const bf16* r2 = &s.buf2[((size_t)b * T + t) * s.W2];
        const double dl = softplus_d((double)__bfloat162float(r2[d]) + s.dbias[d]);
        const double u = __bfloat162float(r1[d]);
        double acc = 0;
        for (int n = 0; n < N; ++n) {
          st[n] = std::exp(dl * s.A[(size_t)d * N + n]) * st[n] + dl * u * (double)__bfloat162float(r2[D + n]);
          acc += st[n] * (double)__bfloat162float(r2[D + N + n]);
        }
        double yv = acc + s.Dskip[d] * u;
        if (gate) { const double z = __bfloat162float(r1[D + d]); yv *= z / (1.0 + std::exp(-z)); }
        y[((size_t)b * T + t) * D + d] = yv;
      }
      for (int n = 0; n < N; ++n) hT[((size_t)b * D + d) * N + n] = st[n];
    }
}
struct ScanDev { bf16 *buf1, *buf2, *y; float *A, *dbias, *Dskip, *h0, *hT; int YW; };
static ScanDev scan_upload(const ScanHost& s) {
  ScanDev d;
  d.buf1 = dupload(s.buf1); d.buf2 = dupload(s.buf2); d.A = dupload(s.A); d.dbias = dupload(s.dbias);
  d.Dskip = dupload(s.Dskip); d.h0 = dupload(s.h0); d.hT = dalloc<float>(s.h0.size());
  d.YW = s.D + 2; d.y = dalloc<bf16>((size_t)s.Bn * s.T * d.YW);
  return d;
}
static void scan_free(ScanDev& d) {
  cudaFree(d.buf1); cudaFree(d.buf2); cudaFree(d.y); cudaFree(d.A); cudaFree(d.dbias); cudaFree(d.Dskip); cudaFree(d.h0); cudaFree(d.hT);
}
static strata::sscan::SelectiveScanParams scan_params(const ScanHost& s, const ScanDev& d, int t0, int len, bool gate,
                                                      const float* h0, float* hT) {
  strata::sscan::SelectiveScanParams p;
  p.batch = s.Bn; p.seqlen = len; p.dim = s.D;
  const long long b1 = (long long)s.T * s.W1, b2 = (long long)s.T * s.W2;
  const bf16* r1 = d.buf1 + (size_t)t0 * s.W1;
  const bf16* r2 = d.buf2 + (size_t)t0 * s.W2;
  p.u = r1; p.u_batch_stride = b1; p.u_row_stride = s.W1;
  p.z = gate ? r1 + s.D : nullptr; p.z_batch_stride = b1; p.z_row_stride = s.W1;
  p.delta = r2; p.delta_batch_stride = b2; p.delta_row_stride = s.W2;
  p.B = r2 + s.D; p.B_batch_stride = b2; p.B_row_stride = s.W2;
  p.C = r2 + s.D + s.N; p.C_batch_stride = b2; p.C_row_stride = s.W2;
  p.delta_bias = d.dbias; p.A = d.A; p.Dskip = d.Dskip; p.h0 = h0; p.hT = hT;
  p.y = d.y + (size_t)t0 * d.YW; p.y_batch_stride = (long long)s.T * d.YW; p.y_row_stride = d.YW;
  return p;
}
static std::vector<float> scan_y_host(const ScanHost& s, const ScanDev& d, int t0, int len) {
  auto yh = bf_to_f(ddownload(d.y, (size_t)s.Bn * s.T * d.YW));
  std::vector<float> out;
  for (int b = 0; b < s.Bn; ++b)
    for (int t = t0; t < t0 + len; ++t)
      for (int i = 0; i < s.D; ++i) out.push_back(yh[((size_t)b * s.T + t) * d.YW + i]);
  return out;
}

template <int N>
static void test_scan(int T, int D, bool use_h0, bool gate) {
  const int Bn = 2;
  ScanHost s = make_scan(Bn, T, D, N);
  std::vector<double> yref, href;
  scan_ref(s, use_h0, gate, yref, href);
  ScanDev d = scan_upload(s);
  poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
  auto p = scan_params(s, d, 0, T, gate, use_h0 ? d.h0 : nullptr, d.hT);
  CK(strata::sscan::selective_scan_fwd<N>(p));
  CK(cudaDeviceSynchronize());
  char nm[160];
  snprintf(nm, sizeof nm, "selective_scan N=%d T=%d B=%d D=%d h0=%d gate=%d", N, T, Bn, D, use_h0, gate);
  check(std::string(nm) + " y", scan_y_host(s, d, 0, T), yref, 2e-2);
  check(std::string(nm) + " hT", ddownload(d.hT, s.h0.size()), href, 1e-3);
  if (T >= 2) {  // prefill T-1 then decode 1 token in place
    poison_bf16(d.y, (size_t)Bn * T * d.YW); poison_f32(d.hT, s.h0.size());
    auto p1 = scan_params(s, d, 0, T - 1, gate, use_h0 ? d.h0 : nullptr, d.hT);
    CK(strata::sscan::selective_scan_fwd<N>(p1));
    auto p2 = scan_params(s, d, T - 1, 1, gate, d.hT, d.hT);
    CK(strata::sscan::selective_scan_fwd<N>(p2));
    CK(cudaDeviceSynchronize());
    std::vector<double> ylast;
    for (int b = 0; b < Bn; ++b)
      for (int i = 0; i < D; ++i) ylast.push_back(yref[((size_t)b * T + T - 1) * D + i]);
    check(std::string(nm) + " prefill+decode y_last", scan_y_host(s, d, T - 1, 1), ylast, 2e-2);
    check(std::string(nm) + " prefill+decode hT", ddownload(d.hT, s.h0.size()), href, 1e-3);
  }
  scan_free(d);
}

// ----------------------------------------------------------------------------------------------
// timing
// ----------------------------------------------------------------------------------------------
__global__ void fill_bf16_kernel(bf16* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    const float u = (x >> 40) * (1.0f / 16777216.0f);
    p[i] = __float2bfloat16(lo + (hi - lo) * u);
  }
}
static void fill_bf16(bf16* p, size_t n, uint64_t seed, float lo, float hi) {
  fill_bf16_kernel<<<2048, 256>>>(p, n, seed, lo, hi);
  CK(cudaGetLastError());
}
static float time_ms(const std::function<void()>& f, int warm = 3, int iters = 20) {
  for (int i = 0; i < warm; ++i) f();
  CK(cudaDeviceSynchronize());
  std::vector<float> ts;
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  for (int i = 0; i < iters; ++i) {
    CK(cudaEventRecord(a)); f(); CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b)); ts.push_back(ms);
  }
  CK(cudaGetLastError());
  cudaEventDestroy(a); cudaEventDestroy(b);
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

// ||got - ref|| / ||ref||, max|err| / max|ref| and the non-finite count of got, on the GPU (full-size
// outputs would not fit a host double copy comfortably).
template <class Tv>
__device__ __forceinline__ float to_f(Tv v) { return (float)v; }
template <>
__device__ __forceinline__ float to_f<bf16>(bf16 v) { return __bfloat162float(v); }
template <class Tv>
__global__ void cmp_kernel(const Tv* got, const Tv* ref, size_t n, double* acc, unsigned* bad, float* mx) {
  double num = 0, den = 0;
  float me = 0, mr = 0;
  unsigned nb = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float g = to_f(got[i]), r = to_f(ref[i]);
    if (!isfinite(g) || !isfinite(r)) { ++nb; continue; }
    num += (double)(g - r) * (g - r); den += (double)r * r;
    me = fmaxf(me, fabsf(g - r)); mr = fmaxf(mr, fabsf(r));
  }
  atomicAdd(acc, num); atomicAdd(acc + 1, den);
  if (nb) atomicAdd(bad, nb);
  atomicMax(reinterpret_cast<int*>(mx), __float_as_int(me));  // non-negative floats order as ints
  atomicMax(reinterpret_cast<int*>(mx + 1), __float_as_int(mr));
}
template <class Tv>
static void check_dev(const std::string& name, const Tv* got, const Tv* ref, size_t n, double tol) {
  double* acc = dalloc<double>(2); unsigned* bad = dalloc<unsigned>(1); float* mx = dalloc<float>(2);
  CK(cudaMemset(acc, 0, 2 * sizeof(double))); CK(cudaMemset(bad, 0, sizeof(unsigned))); CK(cudaMemset(mx, 0, 2 * sizeof(float)));
  cmp_kernel<Tv><<<1024, 256>>>(got, ref, n, acc, bad, mx);
  CK(cudaGetLastError());
  auto a = ddownload(acc, 2); auto nb = ddownload(bad, 1); auto m = ddownload(mx, 2);
  const double rel = std::sqrt(a[0] / std::max(a[1], 1e-300)), relmax = m[0] / std::max((double)m[1], 1e-300);
  const bool ok = nb[0] == 0 && rel <= tol && relmax <= tol;
  if (ok) { ++g_pass; printf("PASS %s (relL2 %.2e, max|err|/max|ref| %.2e, n=%zu)\n", name.c_str(), rel, relmax, n); }
  else { ++g_fail; printf("FAIL %s relL2 %.3e max|err|/max|ref| %.3e non-finite=%u n=%zu tol %.1e\n", name.c_str(), rel, relmax, nb[0], n, tol); }
  cudaFree(acc); cudaFree(bad); cudaFree(mx);
}

static void bench_ssd(int Bn, int T) {
  const int H = 128, P = 64, G = 8, N = 128, DI = H * P;
  const int xo = DI, Bo = 2 * DI, Co = Bo + G * N, dto = Co + G * N, W = dto + H;  // [z|x|B|C|dt] = 34944
  bf16* buf = dalloc<bf16>((size_t)Bn * T * W);
  fill_bf16(buf, (size_t)Bn * T * W, 1234, -1.f, 1.f);
  std::vector<float> A(H), dtb(H), D(H);
  for (int h = 0; h < H; ++h) {
    A[h] = -(float)urand(1, 16);
    dtb[h] = (float)inv_softplus(std::exp(urand(std::log(1e-3), std::log(0.1))));
    D[h] = 1.f;
  }
  float *dA = dupload(A), *ddtb = dupload(dtb), *dD = dupload(D);
  float* hT = dalloc<float>((size_t)Bn * H * P * N);
  bf16* y = dalloc<bf16>((size_t)Bn * T * DI);
  strata::ssd::SsdParams p;
  p.batch = Bn; p.seqlen = T; p.nheads = H; p.ngroups = G;
  const long long bs = (long long)T * W;
  p.x = buf + xo; p.x_batch_stride = bs; p.x_row_stride = W;
  p.dt = buf + dto; p.dt_batch_stride = bs; p.dt_row_stride = W;
  p.B = buf + Bo; p.B_batch_stride = bs; p.B_row_stride = W;
  p.C = buf + Co; p.C_batch_stride = bs; p.C_row_stride = W;
  p.dt_bias = ddtb; p.A = dA; p.D = dD; p.h0 = nullptr; p.hT = hT;
  p.y = y; p.y_batch_stride = (long long)T * DI; p.y_row_stride = DI;
  // useful mma flops (causal half of the intra-chunk part)
  const double nch = (double)Bn * H * ((T + 127) / 128);
  const double fl = nch * (2.0 * 128 * 128 * N * 0.5 + 2.0 * 128 * 128 * P * 0.5 + 2.0 * 128 * P * N * 2);
  // the sequential-chunk kernel (what the generated code runs: no workspace) vs the chunk-parallel
  // kernel (workspace given); floor = max(fewest bytes / 4.29 TB/s, useful flops / 790 TFLOP/s)
  const size_t wsb = strata::ssd::ssd_chunked_workspace_bytes(Bn, H, P, N, true);
  void* ws = dalloc<unsigned char>(wsb);
  strata::ssd::SsdParams pp = p;  // chunk-parallel
  pp.workspace = ws; pp.workspace_bytes = wsb;
  const double bytes = (double)Bn * T * (2.0 * DI * 2 + 2.0 * G * N * 2 + H * 2) + (double)Bn * H * P * N * 4;
  const double floor_ms = std::max(bytes / 4.29e9, fl / 790e9);
  // the generated path on sm_90a (wgmma kernel) and the sequential mma.sync kernel, same process
  float t1 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd_wgmma<128, P, N, true>(p))); });
  float t1b = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd_wgmma<128, P, N, false>(p))); });
  float m1 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N, true>(p))); });
  float t1r = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd_wgmma<128, P, N, true>(p))); });  // repeat: spread
  float t2 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N, false>(p))); });
  float t3 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<64, P, N, true>(p))); });
  float c1 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N, true>(pp))); });
  float c2 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N, false>(pp))); });
  float c3 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<64, P, N, true>(pp))); });
  printf("TIME ssd_chunked B=%d T=%d H=%d P=%d G=%d N=%d L=128 split=1 : %.3f ms (%.0f TFLOP/s useful; floor %.3f ms, %.2fx) [wgmma kernel, the generated sm_90a path; repeat %.3f ms]\n", Bn, T, H, P, G, N, t1, fl / t1 * 1e-9, floor_ms, t1 / floor_ms, t1r);
  printf("TIME ssd_chunked_wgmma B=%d T=%d H=%d P=%d G=%d N=%d split=0 : %.3f ms (%.2fx floor)\n", Bn, T, H, P, G, N, t1b, t1b / floor_ms);
  printf("TIME ssd_chunked_mma (sequential mma.sync kernel, the previous path) B=%d T=%d H=%d P=%d G=%d N=%d L=128 split=1 : %.3f ms (%.2fx floor); wgmma speedup %.2fx\n", Bn, T, H, P, G, N, m1, m1 / floor_ms, m1 / t1);
  printf("TIME ssd_chunked_mma B=%d T=%d H=%d P=%d G=%d N=%d L=128 split=0 : %.3f ms\n", Bn, T, H, P, G, N, t2);
  printf("TIME ssd_chunked_mma B=%d T=%d H=%d P=%d G=%d N=%d L=64  split=1 : %.3f ms\n", Bn, T, H, P, G, N, t3);
  printf("TIME ssd_chunk_parallel (one CTA per chunk and head, workspace) B=%d T=%d L=128 split=1 : %.3f ms (%.2fx floor); split=0 : %.3f ms; L=64 : %.3f ms\n", Bn, T, c1, c1 / floor_ms, c2, c3);
  {  // full-size consistency: wgmma kernel vs the mma.sync kernel (y and hT), on the GPU
    const size_t ny = (size_t)Bn * T * DI, nh = (size_t)Bn * H * P * N;
    bf16* y2 = dalloc<bf16>(ny);
    float* h2 = dalloc<float>(nh);
    strata::ssd::SsdParams q = p;
    q.y = y2; q.hT = h2;
    poison_bf16(y2, ny); poison_f32(h2, nh);
    poison_bf16(y, ny); poison_f32(hT, nh);
    CK((strata::ssd::ssd_chunked_fwd<128, P, N, true>(p)));
    CK((strata::ssd::ssd_chunked_fwd_wgmma<128, P, N, true>(q)));
    CK(cudaDeviceSynchronize());
    char nm[160];
    snprintf(nm, sizeof nm, "ssd wgmma vs mma.sync kernel B=%d T=%d H=%d P=%d G=%d N=%d", Bn, T, H, P, G, N);
    check_dev(std::string(nm) + " y", y2, y, ny, 2e-2);
    check_dev(std::string(nm) + " hT", h2, hT, nh, 1e-3);
    cudaFree(y2); cudaFree(h2);
  }
  {
    strata::ssd::SsdParams pn = pp;
    pn.hT = nullptr;
    pn.workspace_bytes = strata::ssd::ssd_chunked_workspace_bytes(Bn, H, P, N, false);
    void* wsn = dalloc<unsigned char>(pn.workspace_bytes);
    pn.workspace = wsn;
    float t4 = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N, true>(pn))); });
    printf("TIME ssd_chunk_parallel (no hT: state slots in workspace) B=%d T=%d L=128 split=1 : %.3f ms\n", Bn, T, t4);
    cudaFree(wsn);
  }
  cudaFree(ws);
  if (T == 8192) {
    strata::ssd::SsdParams q = p;
    q.seqlen = 1; q.h0 = hT; q.hT = hT;
    float t4 = time_ms([&] { CK((strata::ssd::ssd_decode_fwd<P, N>(q))); });
    const double bytes = 2.0 * Bn * H * P * N * 4;
    printf("TIME ssd_decode B=%d H=%d P=%d N=%d T=1 (state in/out in place): %.4f ms (%.0f GB/s state traffic)\n", Bn, H, P, N, t4, bytes / t4 * 1e-6);
  }
  cudaFree(buf); cudaFree(dA); cudaFree(ddtb); cudaFree(dD); cudaFree(hT); cudaFree(y);
}

template <int N>
static void bench_scan(int Bn, int T, int D) {
  bf16* u = dalloc<bf16>((size_t)Bn * T * D); bf16* dl = dalloc<bf16>((size_t)Bn * T * D);
  bf16* z = dalloc<bf16>((size_t)Bn * T * D); bf16* y = dalloc<bf16>((size_t)Bn * T * D);
  bf16* BC = dalloc<bf16>((size_t)Bn * T * 2 * N);
  fill_bf16(u, (size_t)Bn * T * D, 1, -1, 1); fill_bf16(dl, (size_t)Bn * T * D, 2, -0.5f, 0.5f);
  fill_bf16(z, (size_t)Bn * T * D, 3, -1, 1); fill_bf16(BC, (size_t)Bn * T * 2 * N, 4, -1, 1);
  std::vector<float> A((size_t)D * N), db(D), Ds(D, 1.f);
  for (auto& v : A) v = -(float)urand(1, 16);
  for (auto& v : db) v = (float)inv_softplus(std::exp(urand(std::log(1e-3), std::log(0.1))));
  float *dA = dupload(A), *ddb = dupload(db), *dDs = dupload(Ds);
  float* hT = dalloc<float>((size_t)Bn * D * N);
  strata::sscan::SelectiveScanParams p;
  p.batch = Bn; p.seqlen = T; p.dim = D;
  const long long bs = (long long)T * D;
  p.u = u; p.u_batch_stride = bs; p.u_row_stride = D;
  p.delta = dl; p.delta_batch_stride = bs; p.delta_row_stride = D;
  p.z = z; p.z_batch_stride = bs; p.z_row_stride = D;
  p.y = y; p.y_batch_stride = bs; p.y_row_stride = D;
  p.B = BC; p.B_batch_stride = (long long)T * 2 * N; p.B_row_stride = 2 * N;
  p.C = BC + N; p.C_batch_stride = (long long)T * 2 * N; p.C_row_stride = 2 * N;
  p.A = dA; p.delta_bias = ddb; p.Dskip = dDs; p.h0 = nullptr; p.hT = hT;
  float t1 = time_ms([&] { CK(strata::sscan::selective_scan_fwd<N>(p)); }, 2, 10);
  printf("TIME selective_scan B=%d T=%d D=%d N=%d (gate z, hT out): %.3f ms (%.1f G state-updates/s)\n", Bn, T, D, N, t1,
         (double)Bn * T * D * N / t1 * 1e-6);
  strata::sscan::SelectiveScanParams q = p;
  q.seqlen = 1; q.h0 = hT; q.hT = hT;
  float t2 = time_ms([&] { CK(strata::sscan::selective_scan_fwd<N>(q)); });
  printf("TIME selective_scan decode B=%d T=1 D=%d N=%d (state in place): %.4f ms\n", Bn, D, N, t2);
  cudaFree(u); cudaFree(dl); cudaFree(z); cudaFree(y); cudaFree(BC); cudaFree(dA); cudaFree(ddb); cudaFree(dDs); cudaFree(hT);
}

static void bench_conv(int Bn, int T) {
  const int DI = 16384, C = DI + 2 * 1024, W = 2 * DI + 2 * 1024 + 128;  // xBC slice of in_proj
  bf16* buf = dalloc<bf16>((size_t)Bn * T * W);
  fill_bf16(buf, (size_t)Bn * T * W, 7, -1, 1);
  bf16* w = dalloc<bf16>((size_t)C * 4); fill_bf16(w, (size_t)C * 4, 8, -0.5f, 0.5f);
  bf16* bias = dalloc<bf16>(C); fill_bf16(bias, C, 9, -0.1f, 0.1f);
  bf16* y = dalloc<bf16>((size_t)Bn * T * C);
  float* so = dalloc<float>((size_t)Bn * 3 * C);
  strata::conv1d::Conv1dParams p;
  p.batch = Bn; p.seqlen = T; p.channels = C;
  p.x = buf + DI; p.x_batch_stride = (long long)T * W; p.x_row_stride = W;
  p.w = w; p.bias = bias; p.state_in = nullptr; p.state_out = so; p.silu = true;
  p.y = y; p.y_batch_stride = (long long)T * C; p.y_row_stride = C;
  float t = time_ms([&] { CK(strata::conv1d::causal_conv1d_fwd<4>(p)); });
  const double bytes = 2.0 * 2.0 * Bn * T * C;
  printf("TIME causal_conv1d K=4 B=%d T=%d C=%d silu (strided in): %.3f ms (%.0f GB/s x-read+y-write)\n", Bn, T, C, t, bytes / t * 1e-6);
  strata::conv1d::Conv1dParams q = p;
  q.seqlen = 1; q.state_in = so; q.state_out = so;
  float t2 = time_ms([&] { CK(strata::conv1d::causal_conv1d_fwd<4>(q)); });
  printf("TIME causal_conv1d decode K=4 B=%d T=1 C=%d (state in place): %.4f ms\n", Bn, C, t2);
  cudaFree(buf); cudaFree(w); cudaFree(bias); cudaFree(y); cudaFree(so);
}

int main(int argc, char** argv) {
  uint64_t seed = 0;
  bool bench = true, ssd_only = false;  // --ssd-only: SSD tests and timings alone
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--no-bench")) bench = false;
    else if (!strcmp(argv[i], "--ssd-only")) ssd_only = true;
    else seed = strtoull(argv[i], nullptr, 10);
  }
  if (!seed) seed = (uint64_t)time(nullptr);
  printf("seed %llu\n", (unsigned long long)seed);
  g_rng.seed(seed);
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("device %s, %d SMs\n", prop.name, prop.multiProcessorCount);

  // conv1d
  if (!ssd_only) {
    for (int C : {64, 37})
      for (int T : {1, 37, 200})
        for (int pre = 0; pre < 2; ++pre) test_conv1d<4>(2, T, C, pre, T != 37, pre == 1);
    test_conv1d<3>(2, 45, 64, true, true, true);
    test_conv1d<2>(2, 45, 40, true, false, false);
  }

  // SSD chunked
  for (int T : {1, 37, 200, 300})
    for (int h0 = 0; h0 < 2; ++h0) test_ssd<128>(T, h0);
  for (int T : {37, 300})
    for (int h0 = 0; h0 < 2; ++h0) test_ssd<64>(T, h0);
  test_ssd<128>(300, true, false);
  // chunk-parallel path
  for (int T : {1, 37, 128, 129, 200, 1000})
    for (int h0 = 0; h0 < 2; ++h0) test_ssd_par<128, 64, 128>(2, T, 4, 2, h0, 1);
  test_ssd_par<128, 64, 128>(2, 300, 4, 2, true, 0);
  test_ssd_par<128, 64, 128>(2, 1000, 4, 2, false, 0);
  test_ssd_par<128, 64, 128>(2, 300, 4, 2, true, 2);
  test_ssd_par<128, 64, 128>(1, 300, 4, 2, false, 2);
  test_ssd_par<128, 64, 128>(3, 257, 8, 1, true, 1);
  test_ssd_par<128, 64, 128>(1, 300, 8, 8, true, 1);
  test_ssd_par<128, 64, 128>(2, 300, 4, 2, true, 1, false);
  test_ssd_par<128, 64, 64>(2, 300, 4, 2, true, 1);
  test_ssd_par<128, 64, 64>(2, 77, 4, 4, false, 0);
  test_ssd_par<64, 64, 128>(2, 37, 4, 2, true, 1);
  test_ssd_par<64, 64, 128>(2, 1000, 4, 2, true, 1);
  test_ssd_par<64, 64, 64>(2, 300, 8, 2, false, 0);
  test_ssd_par<64, 64, 64>(2, 300, 8, 2, true, 2);
  // wgmma path (sm_90a; the generated code's path for P = 64, N = 128)
  for (int T : {1, 37, 128, 129, 200, 300, 1000})
    for (int h0 = 0; h0 < 2; ++h0) test_ssd_wg(2, T, 4, 2, h0, 1);
  test_ssd_wg(2, 300, 4, 2, true, 0);
  test_ssd_wg(2, 300, 4, 2, true, 2);
  test_ssd_wg(1, 300, 4, 2, false, 2);
  test_ssd_wg(3, 257, 8, 1, true, 1);
  test_ssd_wg(1, 700, 8, 8, true, 1);
  test_ssd_wg(1, 2000, 16, 2, true, 1);
  test_ssd_wg<false>(2, 300, 4, 2, true, 1);
  test_ssd_wg<false>(1, 1000, 4, 4, false, 1);
  test_ssd_decode_continuation(200, false);
  test_ssd_decode_continuation(37, true);

  // selective scan
  if (!ssd_only) {
    for (int T : {1, 37, 200, 300}) test_scan<128>(T, 100, T % 2 == 0, T != 37);
    test_scan<128>(300, 100, false, false);
    test_scan<64>(200, 100, true, true);
    test_scan<16>(200, 101, true, true);
    test_scan<16>(37, 101, false, false);
  }

  if (bench) {
    printf("--- GPU timings (median of events) ---\n");
    if (ssd_only) {
      bench_ssd(2, 8192);
      bench_ssd(4, 4096);
      printf("%d passed, %d failed\n", g_pass, g_fail);
      return g_fail ? 1 : 0;
    }
    bench_ssd(2, 8192);
    bench_ssd(4, 4096);
    bench_ssd(2, 4096);
    bench_scan<128>(1, 4096, 8192);
    bench_scan<16>(1, 4096, 8192);
    bench_conv(2, 8192);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

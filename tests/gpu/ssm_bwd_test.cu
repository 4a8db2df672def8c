// ssm_bwd_test.cu — correctness (vs CPU float64 references of ssdScanGrad / selectiveScanGrad,
// ported from compiler/passes/vjp-ops.ts), determinism (two runs, bitwise) and timings for
// templates/include/{ssd_bwd,selective_scan_bwd}.cuh, next to the forward kernels' times.
// Build: nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include tests/gpu/ssm_bwd_test.cu -o ssm_bwd_test
// Usage: ./ssm_bwd_test [seed] [--no-bench] [--quick] [--ssd] [--profile] [--chain-ab B T H G]
//   (--profile: one default SSD backward at B4, for ncu; --chain-ab: the state-chain paths timed at that shape)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "selective_scan_bwd.cuh"
#include "ssd_bwd.cuh"
#ifndef SSM_BWD_NO_FWD  // the forward kernels, timed next to the backward
#include "selective_scan.cuh"
#include "ssd.cuh"
#endif

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

template <class T> static float tof(T v) { return (float)v; }
template <> float tof<bf16>(bf16 v) { return __bfloat162float(v); }
template <class T> static T fromf(float v) { return (T)v; }
template <> bf16 fromf<bf16>(float v) { return __float2bfloat16(v); }

// A per-token tensor [B, T, feat] inside a wider buffer: row stride feat + pad, offset off.
template <class T>
struct TokBuf {
  int B = 0, T_ = 0, feat = 0, stride = 0, off = 0;
  std::vector<T> h;
  T* d = nullptr;
  // misaligned (with strided): odd row stride and offset, so the kernels' 16-byte loads do not apply
  void init(int b, int t, int f, bool strided, bool misaligned = false) {
    B = b; T_ = t; feat = f; stride = f + (strided ? (misaligned ? 25 : 24) : 0); off = strided ? (misaligned ? 1 : 8) : 0;
    h.assign((size_t)B * T_ * stride + 8, fromf<T>(0.f));
    CK(cudaMalloc(&d, h.size() * sizeof(T)));
  }
  size_t idx(int b, int t, int j) const { return ((size_t)b * T_ + t) * stride + off + j; }
  double at(int b, int t, int j) const { return tof(h[idx(b, t, j)]); }
  void fill(double lo, double hi) {
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T_; ++t)
        for (int j = 0; j < feat; ++j) h[idx(b, t, j)] = fromf<T>((float)urand(lo, hi));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void poison() { CK(cudaMemset(d, 0xFF, h.size() * sizeof(T))); }  // NaN in bf16 and f32
  void download() { CK(cudaMemcpy(h.data(), d, h.size() * sizeof(T), cudaMemcpyDeviceToHost)); }
  std::vector<float> values() const {
    std::vector<float> r;
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T_; ++t)
        for (int j = 0; j < feat; ++j) r.push_back(tof(h[idx(b, t, j)]));
    return r;
  }
  template <class Q> Q tok() const { Q q; q.p = d + off; q.row = stride; q.batch = (long long)T_ * stride; return q; }
  ~TokBuf() { if (d) cudaFree(d); }
};

static float* dvec(const std::vector<float>& v) {
  float* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(v.size(), 1) * sizeof(float)));
  if (!v.empty()) CK(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}
static std::vector<float> hvec(const float* d, size_t n) {
  std::vector<float> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

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
  // an all-zero reference (e.g. dA with no incoming state and T = 1) has no relative scale: there
  // the error is absolute, against the tolerance times 1e-3 (fp32 rounding of cancelling terms)
  const bool zeroRef = maxref == 0.0;
  const double rel = zeroRef ? maxerr * 1e3 : std::sqrt(num / den), relmax = zeroRef ? maxerr * 1e3 : maxerr / maxref;
  const bool ok = !nan && rel <= tol && relmax <= tol;
  (ok ? g_pass : g_fail)++;
  printf("%s %-62s relL2 %.2e  max|err|/max|ref| %.2e  n=%zu%s%s\n", ok ? "PASS" : "FAIL", name.c_str(), rel, relmax, ref.size(),
         zeroRef ? "  (reference all zero: 1e3·max|err|)" : "", nan ? "  (non-finite or size mismatch)" : "");
}
static void check_same(const std::string& name, bool same) {
  (same ? g_pass : g_fail)++;
  printf("%s %s\n", same ? "PASS" : "FAIL", name.c_str());
}

// ---------------------------------------------------------------------------------------------
// SSD backward
// ---------------------------------------------------------------------------------------------
struct SsdRef { std::vector<double> x, dt, A, B, C, h0; };

// kPath: the group path (default: tensor cores, one CTA per (sequence, group, chunk)), the per-head
// tensor-core path (kPathTc) or the fp32 CUDA-core one (kPathSimt); the name printed is the path
// that ran (fallbacks included). misaligned: every per-token
// tensor at an odd offset and row stride (the element-wise load fallback).
// kChain / kBf (default path only): the parts it runs (ssd_grad_impl: chunk_local 0 fast + state_pass,
// 1 chain, 2 split chain, 3 persistent chains (the default; 4 / 5: S and R always / never in separate
// CTAs); chunk_grad 0 TF32, 1 bf16 planes, 2 bf16 planes with the prefetch).
template <class TGy, class TX, class TDt, class TBC, int P, int N, int kPath = strata::ssd_bwd::kPathGroup, int kChain = strata::ssd_bwd::kDefaultChain,
          int kBf = strata::ssd_bwd::kDefaultBf>
static void test_ssd(int Bn, int T, int H, int G, bool withH0, bool strided, const char* types, bool misaligned = false) {
  using PR = strata::ssd_bwd::SsdGradParams<TGy, TX, TDt, TBC, TBC>;
  const bool ma = misaligned && strided;
  TokBuf<TGy> gy; TokBuf<TX> x, dx; TokBuf<TDt> dt, ddt; TokBuf<TBC> Bm, Cm, dB, dC;
  gy.init(Bn, T, H * P, strided, ma); x.init(Bn, T, H * P, strided, ma); dx.init(Bn, T, H * P, strided, ma);
  dt.init(Bn, T, H, strided, ma); ddt.init(Bn, T, H, strided, ma);
  Bm.init(Bn, T, G * N, strided, ma); Cm.init(Bn, T, G * N, strided, ma); dB.init(Bn, T, G * N, strided, ma); dC.init(Bn, T, G * N, strided, ma);
  gy.fill(-1, 1); x.fill(-1, 1); dt.fill(0.02, 0.8); Bm.fill(-1, 1); Cm.fill(-1, 1);
  std::vector<float> A(H), h0(withH0 ? (size_t)Bn * H * P * N : 0);
  for (auto& a : A) a = (float)-std::exp(urand(0.0, std::log(16.0)));
  for (auto& v : h0) v = (float)urand(-0.5, 0.5);
  float* dA_in = dvec(A); float* dh0_in = withH0 ? dvec(h0) : nullptr;
  float* gA = dvec(std::vector<float>(H)); float* gh0 = dvec(std::vector<float>((size_t)Bn * H * P * N));
  const size_t scr = strata::ssd_bwd::ssd_grad_scratch_bytes<P, N, kPath>(Bn, T, H);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scr));

  PR p;
  p.batch = Bn; p.seqlen = T; p.nheads = H; p.ngroups = G;
  using namespace strata::ssd_bwd;
  p.gy = gy.template tok<Tok<const TGy>>(); p.x = x.template tok<Tok<const TX>>(); p.dt = dt.template tok<Tok<const TDt>>();
  p.A = dA_in; p.B = Bm.template tok<Tok<const TBC>>(); p.C = Cm.template tok<Tok<const TBC>>(); p.h0 = dh0_in;
  p.dx = dx.template tok<Tok<TX>>(); p.ddt = ddt.template tok<Tok<TDt>>(); p.dA = gA;
  p.dB = dB.template tok<Tok<TBC>>(); p.dC = dC.template tok<Tok<TBC>>(); p.dh0 = withH0 ? gh0 : nullptr; p.scratch = scratch;

  std::vector<std::vector<float>> runs[2];
  for (int r = 0; r < 2; ++r) {
    dx.poison(); ddt.poison(); dB.poison(); dC.poison();
    CK(cudaMemset(gA, 0xFF, H * sizeof(float))); CK(cudaMemset(gh0, 0xFF, (size_t)Bn * H * P * N * sizeof(float)));
    CK(cudaMemset(scratch, 0xFF, scr));
    CK((strata::ssd_bwd::detail::ssd_grad_impl<P, N, kPath, kChain, kBf>(p, scr, 0)));
    CK(cudaDeviceSynchronize());
    dx.download(); ddt.download(); dB.download(); dC.download();
    runs[r] = {dx.values(), ddt.values(), hvec(gA, H), dB.values(), dC.values(),
               withH0 ? hvec(gh0, (size_t)Bn * H * P * N) : std::vector<float>()};
  }
  // float64 reference (vjp-ops.ts ssdScanGrad)
  const int PN = P * N, HG = H / G;
  std::vector<double> rx((size_t)Bn * T * H * P), rdt((size_t)Bn * T * H), rA(H), rB((size_t)Bn * T * G * N), rC(rB.size()),
      rh0((size_t)Bn * H * PN);
  std::vector<double> st((size_t)(T + 1) * PN), dS(PN);
  for (int b = 0; b < Bn; ++b)
    for (int h = 0; h < H; ++h) {
      const int g = h / HG;
      const double av = A[h];
      for (int i = 0; i < PN; ++i) st[i] = withH0 ? h0[((size_t)b * H + h) * PN + i] : 0.0;
      for (int t = 0; t < T; ++t) {
        const double dtv = dt.at(b, t, h), e = std::exp(dtv * av);
        for (int pp = 0; pp < P; ++pp)
          for (int n = 0; n < N; ++n)
            st[(size_t)(t + 1) * PN + pp * N + n] = e * st[(size_t)t * PN + pp * N + n] + dtv * x.at(b, t, h * P + pp) * Bm.at(b, t, g * N + n);
      }
      std::fill(dS.begin(), dS.end(), 0.0);
      for (int t = T - 1; t >= 0; --t) {
        const double dtv = dt.at(b, t, h), e = std::exp(dtv * av);
        const size_t s0 = (size_t)t * PN, s1 = (size_t)(t + 1) * PN;
        const size_t bo = ((size_t)b * T + t) * G * N + (size_t)g * N;
        for (int pp = 0; pp < P; ++pp) {
          const double gyv = gy.at(b, t, h * P + pp);
          for (int n = 0; n < N; ++n) {
            dS[pp * N + n] += gyv * Cm.at(b, t, g * N + n);
            rC[bo + n] += gyv * st[s1 + pp * N + n];
          }
        }
        double de = 0, dtDirect = 0;
        for (int pp = 0; pp < P; ++pp) {
          const double xv = x.at(b, t, h * P + pp);
          double sx = 0;
          for (int n = 0; n < N; ++n) {
            const double d = dS[pp * N + n], bv = Bm.at(b, t, g * N + n);
            de += d * st[s0 + pp * N + n];
            sx += d * bv;
            dtDirect += d * xv * bv;
            rB[bo + n] += dtv * d * xv;
          }
          rx[(((size_t)b * T + t) * H + h) * P + pp] += dtv * sx;
        }
        rdt[((size_t)b * T + t) * H + h] += de * av * e + dtDirect;
        rA[h] += de * dtv * e;
        for (int i = 0; i < PN; ++i) dS[i] *= e;
      }
      for (int i = 0; i < PN; ++i) rh0[((size_t)b * H + h) * PN + i] = dS[i];
    }
  char nm[200];
  constexpr int kRan = strata::ssd_bwd::ssd_grad_path<P, N, kPath>();
  char grp[64];
  snprintf(grp, sizeof grp, "group local%d/grad%d%s", kChain, kBf, kChain == strata::ssd_bwd::kDefaultChain && kBf == strata::ssd_bwd::kDefaultBf ? " default" : "");
  const char* path = kRan == strata::ssd_bwd::kPathGroup ? grp
                     : kRan == strata::ssd_bwd::kPathGroupTf32 ? "group/tf32"
                     : kRan == strata::ssd_bwd::kPathTc        ? "tc/head"
                                                               : "simt";
  snprintf(nm, sizeof nm, "ssd_grad (%s) %s B=%d T=%d H=%d G=%d P=%d N=%d%s%s", path, types, Bn, T, H, G, P, N, withH0 ? " h0" : "",
           ma ? " misaligned" : strided ? " strided" : "");
  const bool bfOut = sizeof(TX) == 2;
  const double tolX = bfOut ? 1.5e-2 : 2e-3, tolBC = sizeof(TBC) == 2 ? 1.5e-2 : 2e-3, tolDt = sizeof(TDt) == 2 ? 1.5e-2 : 3e-3;
  check(std::string(nm) + " dx", runs[0][0], rx, tolX);
  check(std::string(nm) + " ddt", runs[0][1], rdt, tolDt);
  check(std::string(nm) + " dA", runs[0][2], rA, 3e-3);
  check(std::string(nm) + " dB", runs[0][3], rB, tolBC);
  check(std::string(nm) + " dC", runs[0][4], rC, tolBC);
  if (withH0) check(std::string(nm) + " dh0", runs[0][5], rh0, 2e-3);
  bool same = true;
  for (int k = 0; k < 6; ++k) same = same && runs[0][k].size() == runs[1][k].size() &&
                                     std::memcmp(runs[0][k].data(), runs[1][k].data(), runs[0][k].size() * sizeof(float)) == 0;
  check_same(std::string(nm) + " deterministic (2 runs bitwise)", same);
  cudaFree(dA_in); if (dh0_in) cudaFree(dh0_in); cudaFree(gA); cudaFree(gh0); cudaFree(scratch);
}

// ---------------------------------------------------------------------------------------------
// selective-scan backward
// ---------------------------------------------------------------------------------------------
template <class TGy, class TU, class TDl, class TBC, int N>
static void test_sel(int Bn, int T, int D, bool withH0, bool strided, const char* types) {
  using namespace strata::sscan_bwd;
  using PR = SelScanGradParams<TGy, TU, TDl, TBC, TBC>;
  TokBuf<TGy> gy; TokBuf<TU> u, du; TokBuf<TDl> dl, ddl; TokBuf<TBC> Bm, Cm, dB, dC;
  gy.init(Bn, T, D, strided); u.init(Bn, T, D, strided); du.init(Bn, T, D, strided);
  dl.init(Bn, T, D, strided); ddl.init(Bn, T, D, strided);
  Bm.init(Bn, T, N, strided); Cm.init(Bn, T, N, strided); dB.init(Bn, T, N, strided); dC.init(Bn, T, N, strided);
  gy.fill(-1, 1); u.fill(-1, 1); dl.fill(0.02, 0.8); Bm.fill(-1, 1); Cm.fill(-1, 1);
  std::vector<float> A((size_t)D * N), h0(withH0 ? (size_t)Bn * D * N : 0);
  for (auto& a : A) a = (float)-std::exp(urand(0.0, std::log(16.0)));
  for (auto& v : h0) v = (float)urand(-0.5, 0.5);
  float* dA_in = dvec(A); float* dh0_in = withH0 ? dvec(h0) : nullptr;
  float* gA = dvec(std::vector<float>(A.size())); float* gh0 = dvec(std::vector<float>((size_t)Bn * D * N));
  const size_t scr = selective_scan_grad_scratch_bytes<N>(Bn, T, D);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scr));
  PR p;
  p.batch = Bn; p.seqlen = T; p.dim = D;
  p.gy = gy.template tok<Tok<const TGy>>(); p.u = u.template tok<Tok<const TU>>(); p.delta = dl.template tok<Tok<const TDl>>();
  p.A = dA_in; p.B = Bm.template tok<Tok<const TBC>>(); p.C = Cm.template tok<Tok<const TBC>>(); p.h0 = dh0_in;
  p.du = du.template tok<Tok<TU>>(); p.ddelta = ddl.template tok<Tok<TDl>>(); p.dA = gA;
  p.dB = dB.template tok<Tok<TBC>>(); p.dC = dC.template tok<Tok<TBC>>(); p.dh0 = withH0 ? gh0 : nullptr; p.scratch = scratch;
  std::vector<std::vector<float>> runs[2];
  for (int r = 0; r < 2; ++r) {
    du.poison(); ddl.poison(); dB.poison(); dC.poison();
    CK(cudaMemset(gA, 0xFF, A.size() * sizeof(float))); CK(cudaMemset(gh0, 0xFF, (size_t)Bn * D * N * sizeof(float)));
    CK(cudaMemset(scratch, 0xFF, scr));
    CK((selective_scan_grad<N>(p, scr)));
    CK(cudaDeviceSynchronize());
    du.download(); ddl.download(); dB.download(); dC.download();
    runs[r] = {du.values(), ddl.values(), hvec(gA, A.size()), dB.values(), dC.values(),
               withH0 ? hvec(gh0, (size_t)Bn * D * N) : std::vector<float>()};
  }
  const int DN = D * N;
  std::vector<double> ru((size_t)Bn * T * D), rdl(ru.size()), rA(DN), rB((size_t)Bn * T * N), rC(rB.size()), rh0((size_t)Bn * DN);
  std::vector<double> st((size_t)(T + 1) * DN), dS(DN);
  for (int b = 0; b < Bn; ++b) {
    for (int i = 0; i < DN; ++i) st[i] = withH0 ? h0[(size_t)b * DN + i] : 0.0;
    for (int t = 0; t < T; ++t)
      for (int d = 0; d < D; ++d) {
        const double dv = dl.at(b, t, d), w = dv * u.at(b, t, d);
        for (int n = 0; n < N; ++n)
          st[(size_t)(t + 1) * DN + d * N + n] = std::exp(dv * A[d * N + n]) * st[(size_t)t * DN + d * N + n] + w * Bm.at(b, t, n);
      }
    std::fill(dS.begin(), dS.end(), 0.0);
    for (int t = T - 1; t >= 0; --t) {
      const size_t bo = ((size_t)b * T + t) * N;
      for (int d = 0; d < D; ++d) {
        const size_t ti = ((size_t)b * T + t) * D + d;
        const double gyv = gy.at(b, t, d), dv = dl.at(b, t, d), uv = u.at(b, t, d);
        double dDelta = 0, dU = 0;
        for (int n = 0; n < N; ++n) {
          const int si = d * N + n;
          const double bv = Bm.at(b, t, n);
          dS[si] += gyv * Cm.at(b, t, n);
          rC[bo + n] += gyv * st[(size_t)(t + 1) * DN + si];
          const double av = A[si], e = std::exp(dv * av), ds = dS[si], de = ds * st[(size_t)t * DN + si];
          dDelta += de * av * e + ds * uv * bv;
          rA[si] += de * dv * e;
          dU += ds * bv;
          rB[bo + n] += ds * dv * uv;
          dS[si] = e * ds;
        }
        rdl[ti] += dDelta;
        ru[ti] += dv * dU;
      }
    }
    for (int i = 0; i < DN; ++i) rh0[(size_t)b * DN + i] = dS[i];
  }
  char nm[200];
  snprintf(nm, sizeof nm, "selective_scan_grad %s B=%d T=%d D=%d N=%d%s%s", types, Bn, T, D, N, withH0 ? " h0" : "", strided ? " strided" : "");
  const double tolU = sizeof(TU) == 2 ? 1.5e-2 : 2e-3, tolBC = sizeof(TBC) == 2 ? 1.5e-2 : 2e-3, tolDl = sizeof(TDl) == 2 ? 1.5e-2 : 2e-3;
  check(std::string(nm) + " du", runs[0][0], ru, tolU);
  check(std::string(nm) + " ddelta", runs[0][1], rdl, tolDl);
  check(std::string(nm) + " dA", runs[0][2], rA, 2e-3);
  check(std::string(nm) + " dB", runs[0][3], rB, tolBC);
  check(std::string(nm) + " dC", runs[0][4], rC, tolBC);
  if (withH0) check(std::string(nm) + " dh0", runs[0][5], rh0, 2e-3);
  bool same = true;
  for (int k = 0; k < 6; ++k) same = same && runs[0][k].size() == runs[1][k].size() &&
                                     std::memcmp(runs[0][k].data(), runs[1][k].data(), runs[0][k].size() * sizeof(float)) == 0;
  check_same(std::string(nm) + " deterministic (2 runs bitwise)", same);
  cudaFree(dA_in); if (dh0_in) cudaFree(dh0_in); cudaFree(gA); cudaFree(gh0); cudaFree(scratch);
}

// ---------------------------------------------------------------------------------------------
// timings
// ---------------------------------------------------------------------------------------------
template <class F>
static float time_ms(F f, int reps = 10) {
  f();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) f();
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  return ms / reps;
}

// median of `reps` single runs, each after a write of 256 MB (L2 evicted), as in a training step
// where the inputs were written by earlier kernels long before
template <class F>
static float time_cold_ms(F f, int reps = 15) {
  static void* flush = nullptr;
  const size_t kFlush = 256ull << 20;
  if (!flush) CK(cudaMalloc(&flush, kFlush));
  f();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  std::vector<float> v;
  for (int i = 0; i < reps; ++i) {
    CK(cudaMemsetAsync(flush, i & 0xff, kFlush));
    CK(cudaEventRecord(a));
    f();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    v.push_back(ms);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The inputs of an SSD backward bench at B×T with H heads (P 64) in G groups (N 128): contiguous
// bf16 operands, dt f32 in a training step's range, A = −exp(U(0, ln 16)); `p` points at them (its
// scratch is the caller's).
struct SsdBenchData {
  static constexpr int P = 64, N = 128;
  using PR = strata::ssd_bwd::SsdGradParams<bf16, bf16, float, bf16, bf16>;
  TokBuf<bf16> gy, x, dx, Bm, Cm, dB, dC;
  TokBuf<float> dt, ddt;
  float* dA_in = nullptr;
  float* gA = nullptr;
  PR p{};
  SsdBenchData(int Bn, int T, int H, int G) {
    using strata::ssd_bwd::Tok;
    gy.init(Bn, T, H * P, false); x.init(Bn, T, H * P, false); dx.init(Bn, T, H * P, false);
    dt.init(Bn, T, H, false); ddt.init(Bn, T, H, false);
    Bm.init(Bn, T, G * N, false); Cm.init(Bn, T, G * N, false); dB.init(Bn, T, G * N, false); dC.init(Bn, T, G * N, false);
    gy.fill(-1, 1); x.fill(-1, 1); dt.fill(0.02, 0.8); Bm.fill(-1, 1); Cm.fill(-1, 1);
    std::vector<float> A(H);
    for (auto& a : A) a = (float)-std::exp(urand(0.0, std::log(16.0)));
    dA_in = dvec(A); gA = dvec(std::vector<float>(H));
    p.batch = Bn; p.seqlen = T; p.nheads = H; p.ngroups = G;
    p.gy = gy.tok<Tok<const bf16>>(); p.x = x.tok<Tok<const bf16>>(); p.dt = dt.tok<Tok<const float>>(); p.A = dA_in;
    p.B = Bm.tok<Tok<const bf16>>(); p.C = Cm.tok<Tok<const bf16>>();
    p.dx = dx.tok<Tok<bf16>>(); p.ddt = ddt.tok<Tok<float>>(); p.dA = gA; p.dB = dB.tok<Tok<bf16>>(); p.dC = dC.tok<Tok<bf16>>();
  }
  SsdBenchData(const SsdBenchData&) = delete;
  SsdBenchData& operator=(const SsdBenchData&) = delete;
  ~SsdBenchData() { cudaFree(dA_in); cudaFree(gA); }
};

// The three paths in the same run: fp32 CUDA cores (per head), tensor cores per head (the previous
// default: per-head dB/dC partials + a finish pass), tensor cores per group (the default).
// profile: one default launch sequence and nothing else (for ncu).
static void bench_ssd(int Bn, bool profile = false) {
  constexpr int P = SsdBenchData::P, N = SsdBenchData::N;
  const int T = 4096, H = 64, G = 8;
  using PR = SsdBenchData::PR;
  using namespace strata::ssd_bwd;
  SsdBenchData D(Bn, T, H, G);
  PR& p = D.p;
  const TokBuf<bf16>& x = D.x; const TokBuf<bf16>& Bm = D.Bm; const TokBuf<bf16>& Cm = D.Cm;
  const float* dA_in = D.dA_in;
  TokBuf<bf16> dtRaw, y;  // the forward's raw dt and output, for its time next to the backward's
  dtRaw.init(Bn, T, H, false); y.init(Bn, T, H * P, false);
  dtRaw.fill(-3, 0);
  static_assert(ssd_grad_path<P, N>() == kPathGroup && ssd_grad_path<P, N, kPathGroupTf32>() == kPathGroupTf32 && ssd_grad_path<P, N, kPathTc>() == kPathTc,
                "the bench shape takes the group path");
  const size_t scrG = ssd_grad_scratch_bytes<P, N>(Bn, T, H), scr = ssd_grad_scratch_bytes<P, N, kPathTc>(Bn, T, H);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scr));
  p.scratch = scratch;
  if (profile) {
    CK((ssd_grad<P, N>(p, scrG)));
    CK(cudaDeviceSynchronize());
    cudaFree(scratch);
    return;
  }
  const float bwdSimt = time_ms([&] { CK((ssd_grad<P, N, kPathSimt>(p, scr))); });
  const float bwdTc = time_ms([&] { CK((ssd_grad<P, N, kPathTc>(p, scr))); }, 20);
  const float bwdOld = time_ms([&] { CK((ssd_grad<P, N, kPathGroupTf32>(p, scrG))); }, 20);
  const float bwd = time_ms([&] { CK((ssd_grad<P, N>(p, scrG))); }, 20);
  // the default's parts (ssd_grad_impl<kChain, kBf>), every combination
  float part[3][3];
  part[0][0] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 0, 0>(p, scrG, 0))); }, 20);
  part[0][1] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 0, 1>(p, scrG, 0))); }, 20);
  part[0][2] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 0, 2>(p, scrG, 0))); }, 20);
  part[1][0] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 1, 0>(p, scrG, 0))); }, 20);
  part[1][1] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 1, 1>(p, scrG, 0))); }, 20);
  part[1][2] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 1, 2>(p, scrG, 0))); }, 20);
  part[2][0] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 0>(p, scrG, 0))); }, 20);
  part[2][1] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 1>(p, scrG, 0))); }, 20);
  part[2][2] = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scrG, 0))); }, 20);
  printf("BENCH ssd backward B=%d parts (chunk_local: fast+state_pass | chain | split chain) x (chunk_grad: tf32 | bf16 | bf16+prefetch):", Bn);
  for (int a = 0; a < 3; ++a) printf(" [%.3f %.3f %.3f]", part[a][0], part[a][1], part[a][2]);
  printf(" ms (default local%d/grad%d)\n", kDefaultChain, kDefaultBf);
  // chunk_local_persist (kChain 3 auto / 4 split / 5 one CTA per sequence·head) against the default, same chunk_grad
  {
    const float d0 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, kDefaultChain, kDefaultBf>(p, scrG, 0))); }, 20);
    const float q3 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scrG, 0))); }, 20);
    const float q4 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 4, 2>(p, scrG, 0))); }, 20);
    const float q5 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 5, 2>(p, scrG, 0))); }, 20);
    const float s2 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scrG, 0))); }, 20);
    const float q3b = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scrG, 0))); }, 20);
    const float c2 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scrG, 0))); });
    const float c3 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scrG, 0))); });
    printf("BENCH ssd A/B B=%d (whole backward, chunk_grad bf16+prefetch): default local%d/grad%d %.3f ms | split chain local2 %.3f | persist local3 (auto) %.3f, again %.3f | local4 (S, R in separate CTAs) %.3f | local5 (one CTA per sequence·head) %.3f | L2-cold median: local2 %.3f, local3 %.3f\n",
           Bn, kDefaultChain, kDefaultBf, d0, s2, q3, q3b, q4, q5, c2, c3);
  }
  const float bwd2 = time_ms([&] { CK((ssd_grad<P, N>(p, scrG))); }, 20);  // spread
  const float bwdOld2 = time_ms([&] { CK((ssd_grad<P, N, kPathGroupTf32>(p, scrG))); }, 20);
  {  // where the time goes: each launch of one sub-batch (the whole batch here), timed alone
    namespace dt_ = strata::ssd_bwd::detail;
    constexpr int L = kGradChunk;
    const int nc = T / L;
    dt_::Scratch s{}, sg{};
    float* base = static_cast<float*>(scratch);
    const size_t dAf = dt_::align64((size_t)Bn * H * nc);
    dt_::sub_floats<L, P, N>(Bn, T, H, &s, base + dAf);
    dt_::sub_floats<L, P, N>(Bn, T, H, &sg, base + dAf, false);
    s.dApart = sg.dApart = base;
    const dim3 grid(nc, H, Bn), gridG(nc, G, Bn);
    constexpr size_t smemLt = dt_::chunk_local_smem<kPathTc, L, P, N>(), smemGt = dt_::chunk_grad_smem<kPathTc, L, P, N>();
    constexpr size_t smemGg = dt_::chunk_grad_smem<kPathGroup, L, P, N>();
    CK(cudaFuncSetAttribute(dt_::chunk_local_tc_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemLt));
    CK(cudaFuncSetAttribute(dt_::chunk_local_fast_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemLt));
    CK(cudaFuncSetAttribute(dt_::chunk_grad_tc_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemGt));
    CK(cudaFuncSetAttribute(dt_::chunk_grad_group_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemGg));
    const float t1t = time_ms([&] { dt_::chunk_local_tc_kernel<L, P, N, PR><<<grid, dt_::kThreads, smemLt>>>(p, s); });
    const float t1f = time_ms([&] { dt_::chunk_local_fast_kernel<L, P, N, PR><<<grid, dt_::kThreads, smemLt>>>(p, sg); });
    const float t2 = time_ms([&] { dt_::state_pass_kernel<P, N, PR><<<dim3(P * N / dt_::kThreads, Bn * H), dt_::kThreads>>>(p, sg, nc); });
    // chunks in flight per thread in state_pass (default 8): same arithmetic, only the load batching
    const float t2a = time_ms([&] { dt_::state_pass_kernel<P, N, PR, 4><<<dim3(P * N / dt_::kThreads, Bn * H), dt_::kThreads>>>(p, sg, nc); });
    const float t2b = time_ms([&] { dt_::state_pass_kernel<P, N, PR, 16><<<dim3(P * N / dt_::kThreads, Bn * H), dt_::kThreads>>>(p, sg, nc); });
    const float t3t = time_ms([&] { dt_::chunk_grad_tc_kernel<L, P, N, PR><<<grid, dt_::kThreads, smemGt>>>(p, s); });
    const float t4 = time_ms([&] { dt_::finish_bc_kernel<N, PR><<<(unsigned)(((long long)Bn * T * G * N + 255) / 256), 256>>>(p, s); });
    const float t3g = time_ms([&] { dt_::chunk_grad_group_kernel<L, P, N, PR><<<gridG, dt_::kThreads, smemGg>>>(p, sg); });
    constexpr size_t smemC = dt_::chain_smem<L, P, N, PR>(), smemB = dt_::grad_bf_smem<L, P, N, PR>();
    CK(cudaFuncSetAttribute(dt_::chunk_local_chain_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemC));
    CK(cudaFuncSetAttribute(dt_::chunk_grad_bf_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemB));
    int* flags = reinterpret_cast<int*>(sg.decay);
    int* ticket = reinterpret_cast<int*>(sg.dApart);
    const float t1c = time_ms([&] {
      CK(cudaMemsetAsync(flags, 0, (size_t)Bn * H * nc * sizeof(int)));
      CK(cudaMemsetAsync(ticket, 0, sizeof(int)));
      dt_::chunk_local_chain_kernel<L, P, N, PR><<<(unsigned)(nc * Bn * H), dt_::kThreads, smemC>>>(p, sg, nc, flags, ticket);
    });
    const float t3b = time_ms([&] { dt_::chunk_grad_bf_kernel<L, P, N, PR><<<gridG, dt_::kThreads, smemB>>>(p, sg); });
    constexpr size_t smemS = dt_::split_smem<L, P, N, PR>(), smemBp = dt_::grad_bf_smem<L, P, N, PR, true>();
    static_assert(dt_::GradBfCfg<L, P, N, PR, true>::kPre && dt_::GradBfCfg<L, P, N, PR, true>::SM::kDbl, "the bench shape prefetches");
    CK(cudaFuncSetAttribute(dt_::chunk_local_split_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemS));
    CK(cudaFuncSetAttribute(dt_::chunk_grad_bf_kernel<L, P, N, PR, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemBp));
    const float t1s = time_ms([&] {
      CK(cudaMemsetAsync(flags, 0, (size_t)Bn * H * nc * sizeof(int)));
      CK(cudaMemsetAsync(ticket, 0, sizeof(int)));
      dt_::chunk_local_split_kernel<L, P, N, PR><<<(unsigned)(2 * nc * Bn * H), dt_::kThreads, smemS>>>(p, sg, nc, flags, ticket);
    });
    const float t3p = time_ms([&] { dt_::chunk_grad_bf_kernel<L, P, N, PR, true><<<gridG, dt_::kThreads, smemBp>>>(p, sg); });
    const float tp0 = time_ms([&] { dt_::chunk_local_persist_kernel<L, P, N, PR><<<(unsigned)(Bn * H), dt_::kThreads, smemS>>>(p, sg, nc, 0); });
    const float tp1 = time_ms([&] { dt_::chunk_local_persist_kernel<L, P, N, PR><<<(unsigned)(2 * Bn * H), dt_::kThreads, smemS>>>(p, sg, nc, 1); });
    printf("BENCH ssd backward B=%d chunk_local_persist: %.3f ms (one CTA per sequence·head, %d CTAs) | %.3f ms (S and R in separate CTAs, %d CTAs) (smem %zu B) | chunk_local_split %.3f ms\n", Bn,
           tp0, Bn * H, tp1, 2 * Bn * H, smemS, t1s);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    printf("BENCH ssd backward B=%d new kernels: chunk_local_chain (states + state passing, with its 2 memsets) %.3f ms (smem %zu B) | chunk_local_split %.3f ms (smem %zu B) | chunk_grad_bf %.3f ms (smem %zu B) | chunk_grad_bf prefetch %.3f ms (smem %zu B)\n",
           Bn, t1c, smemC, t1s, smemS, t3b, smemB, t3p, smemBp);
    printf("BENCH ssd backward B=%d breakdown: chunk_local %.3f ms (tc/head) | %.3f ms (fast), state_pass %.3f ms (4 in flight %.3f, 16 in flight %.3f), chunk_grad %.3f ms (tc/head) + finish dB/dC %.3f ms | chunk_grad %.3f ms (group)\n",
           Bn, t1t, t1f, t2, t2a, t2b, t3t, t4, t3g);
  }
  float fwd = NAN;
#ifndef SSM_BWD_NO_FWD
  strata::ssd::SsdParams f{};
  f.batch = Bn; f.seqlen = T; f.nheads = H; f.ngroups = G;
  f.x = x.d; f.x_row_stride = H * P; f.x_batch_stride = (long long)T * H * P;
  f.dt = dtRaw.d; f.dt_row_stride = H; f.dt_batch_stride = (long long)T * H; f.A = dA_in;
  f.B = Bm.d; f.B_row_stride = G * N; f.B_batch_stride = (long long)T * G * N;
  f.C = Cm.d; f.C_row_stride = G * N; f.C_batch_stride = (long long)T * G * N;
  f.y = y.d; f.y_row_stride = H * P; f.y_batch_stride = (long long)T * H * P;
  fwd = time_ms([&] { CK((strata::ssd::ssd_chunked_fwd<128, P, N>(f))); });
#endif
  printf("BENCH ssd backward B=%d T=%d H=%d P=%d G=%d N=%d: simt %.3f ms | tc/head %.3f ms | group/tf32 (kPathGroupTf32) %.3f ms, again %.3f ms | default (local%d/grad%d) %.3f ms, again %.3f ms | %.2fx over group/tf32 (scratch %.0f MB) | forward (ssd.cuh, chunk 128) %.3f ms | bwd/fwd %.2fx\n",
         Bn, T, H, P, G, N, bwdSimt, bwdTc, bwdOld, bwdOld2, kDefaultChain, kDefaultBf, bwd, bwd2, bwdOld / bwd, scrG / 1e6, fwd, bwd / fwd);
  cudaFree(scratch);
}

// The 0.85B hybrid's training step calls ssd_grad with the generated layout (kernels/ssd_grad_*.cu):
// x, B, C read from the conv output [B, T, 6144] (x at 0, B at 4096, C at 5120), dB / dC written into
// one [B, T, 6144] concat buffer at 4096 / 5120, gy and dx [B, T, 4096], dt / ddt f32 [B, T, 64]. Timed
// back to back and L2-cold (median of single runs after a 256 MB write), against the contiguous
// layout of bench_ssd, default and persistent chains.
static void bench_ssd_step(int Bn) {
  constexpr int P = 64, N = 128;
  const int T = 4096, H = 64, G = 8, W = 6144;
  using PR = strata::ssd_bwd::SsdGradParams<bf16, bf16, float, bf16, bf16>;
  using namespace strata::ssd_bwd;
  const size_t tok = (size_t)Bn * T;
  std::vector<bf16> hx(tok * W), hg(tok * H * P);
  std::vector<float> hdt(tok * H);
  for (auto& v : hx) v = __float2bfloat16((float)urand(-1, 1));
  for (auto& v : hg) v = __float2bfloat16((float)urand(-1, 1));
  for (auto& v : hdt) v = (float)urand(0.02, 0.8);
  std::vector<float> A(H);
  for (auto& a : A) a = (float)-std::exp(urand(0.0, std::log(16.0)));
  bf16 *xbc, *gy, *dx, *dbc;
  float *dt, *ddt;
  CK(cudaMalloc(&xbc, tok * W * 2)); CK(cudaMalloc(&dbc, tok * W * 2)); CK(cudaMalloc(&gy, tok * H * P * 2)); CK(cudaMalloc(&dx, tok * H * P * 2));
  CK(cudaMalloc(&dt, tok * H * 4)); CK(cudaMalloc(&ddt, tok * H * 4));
  CK(cudaMemcpy(xbc, hx.data(), tok * W * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(gy, hg.data(), tok * H * P * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dt, hdt.data(), tok * H * 4, cudaMemcpyHostToDevice));
  float* dA_in = dvec(A); float* gA = dvec(std::vector<float>(H));
  const size_t scr = ssd_grad_scratch_bytes<P, N>(Bn, T, H);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scr));
  PR p;
  p.batch = Bn; p.seqlen = T; p.nheads = H; p.ngroups = G;
  const long long bs = (long long)T * W, bg = (long long)T * H * P, bd = (long long)T * H;
  p.gy = {gy, H * P, bg}; p.x = {xbc, W, bs}; p.dt = {dt, H, bd}; p.A = dA_in;
  p.B = {xbc + 4096, W, bs}; p.C = {xbc + 5120, W, bs};
  p.dx = {dx, H * P, bg}; p.ddt = {ddt, H, bd}; p.dA = gA; p.dB = {dbc + 4096, W, bs}; p.dC = {dbc + 5120, W, bs};
  p.scratch = scratch;
  const float w2 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scr, 0))); }, 20);
  const float w3 = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scr, 0))); }, 20);
  const float c2 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scr, 0))); });
  const float c3 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scr, 0))); });
  const float w2b = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scr, 0))); }, 20);
  const float w3b = time_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scr, 0))); }, 20);
  printf("BENCH ssd backward B=%d step layout (x/B/C rows of 6144, dB/dC into a 6144 concat): local2/grad2 %.3f ms, again %.3f | local3/grad2 %.3f, again %.3f | L2-cold median: local2 %.3f, local3 %.3f\n",
         Bn, w2, w2b, w3, w3b, c2, c3);
  cudaFree(xbc); cudaFree(dbc); cudaFree(gy); cudaFree(dx); cudaFree(dt); cudaFree(ddt); cudaFree(dA_in); cudaFree(gA); cudaFree(scratch);
}

template <int N>
static void bench_sel(int Bn, int T, int D) {
  using namespace strata::sscan_bwd;
  using PR = SelScanGradParams<bf16, bf16, float, bf16, bf16>;
  TokBuf<bf16> gy, u, du, Bm, Cm, dB, dC, dlRaw, y; TokBuf<float> dl, ddl;
  gy.init(Bn, T, D, false); u.init(Bn, T, D, false); du.init(Bn, T, D, false); y.init(Bn, T, D, false);
  dl.init(Bn, T, D, false); ddl.init(Bn, T, D, false); dlRaw.init(Bn, T, D, false);
  Bm.init(Bn, T, N, false); Cm.init(Bn, T, N, false); dB.init(Bn, T, N, false); dC.init(Bn, T, N, false);
  gy.fill(-1, 1); u.fill(-1, 1); dl.fill(0.02, 0.8); dlRaw.fill(-3, 0); Bm.fill(-1, 1); Cm.fill(-1, 1);
  std::vector<float> A((size_t)D * N);
  for (auto& a : A) a = (float)-std::exp(urand(0.0, std::log(16.0)));
  float* dA_in = dvec(A); float* gA = dvec(std::vector<float>(A.size()));
  const size_t scr = selective_scan_grad_scratch_bytes<N>(Bn, T, D);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scr));
  PR p;
  p.batch = Bn; p.seqlen = T; p.dim = D;
  p.gy = gy.tok<Tok<const bf16>>(); p.u = u.tok<Tok<const bf16>>(); p.delta = dl.tok<Tok<const float>>(); p.A = dA_in;
  p.B = Bm.tok<Tok<const bf16>>(); p.C = Cm.tok<Tok<const bf16>>();
  p.du = du.tok<Tok<bf16>>(); p.ddelta = ddl.tok<Tok<float>>(); p.dA = gA; p.dB = dB.tok<Tok<bf16>>(); p.dC = dC.tok<Tok<bf16>>();
  p.scratch = scratch;
  const float bwd = time_ms([&] { CK((selective_scan_grad<N>(p, scr))); });
  float fwd = NAN;
#ifndef SSM_BWD_NO_FWD
  strata::sscan::SelectiveScanParams f{};
  f.batch = Bn; f.seqlen = T; f.dim = D;
  f.u = u.d; f.u_row_stride = D; f.u_batch_stride = (long long)T * D;
  f.delta = dlRaw.d; f.delta_row_stride = D; f.delta_batch_stride = (long long)T * D; f.A = dA_in;
  f.B = Bm.d; f.B_row_stride = N; f.B_batch_stride = (long long)T * N;
  f.C = Cm.d; f.C_row_stride = N; f.C_batch_stride = (long long)T * N;
  f.y = y.d; f.y_row_stride = D; f.y_batch_stride = (long long)T * D;
  fwd = time_ms([&] { CK((strata::sscan::selective_scan_fwd<N>(f))); });
#endif
  printf("BENCH selective-scan backward B=%d T=%d D=%d N=%d: %.3f ms (scratch %.0f MB) | forward (selective_scan.cuh) %.3f ms | bwd/fwd %.2fx\n",
         Bn, T, D, N, bwd, scr / 1e6, fwd, bwd / fwd);
  cudaFree(dA_in); cudaFree(gA); cudaFree(scratch);
}

// The state-chain paths at a chosen shape (P 64, N 128, bf16 operands, dt f32): the persistent
// chain (kChain 3, the default; 4 = S and R in separate CTAs, 5 = one CTA per sequence·head) against
// the previous default's one-CTA-per-hop chain (kChain 2), whole backward, median of L2-cold runs.
// For the shapes the suite's models do not cover: few sequence·heads with many chunks (B·H small,
// T long), where one CTA per chain leaves SMs idle.
static void bench_chain_ab(int Bn, int T, int H, int G) {
  constexpr int P = SsdBenchData::P, N = SsdBenchData::N;
  using namespace strata::ssd_bwd;
  SsdBenchData D(Bn, T, H, G);
  SsdBenchData::PR& p = D.p;
  const size_t scrG = ssd_grad_scratch_bytes<P, N>(Bn, T, H);
  void* scratch = nullptr;
  CK(cudaMalloc(&scratch, scrG));
  p.scratch = scratch;
  const float c2 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 2, 2>(p, scrG, 0))); }, 9);
  const float c3 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 3, 2>(p, scrG, 0))); }, 9);
  const float c4 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 4, 2>(p, scrG, 0))); }, 9);
  const float c5 = time_cold_ms([&] { CK((detail::ssd_grad_impl<P, N, kPathGroup, 5, 2>(p, scrG, 0))); }, 9);
  printf("BENCH ssd chain A/B B=%d T=%d H=%d G=%d P=%d N=%d (B*H=%d): hop chain (kChain 2, previous default) %.3f ms | persist (kChain 3, default) %.3f | split 4 %.3f | unsplit 5 %.3f | persist / hop %.2f\n",
         Bn, T, H, G, P, N, Bn * H, c2, c3, c4, c5, c3 / c2);
  cudaFree(scratch);
}

int main(int argc, char** argv) {
  const unsigned long long seed = argc > 1 && argv[1][0] != '-' ? strtoull(argv[1], nullptr, 10) : 1234;
  bool bench = true, quick = false, ssdOnly = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--no-bench")) bench = false;
    if (!strcmp(argv[i], "--ssd")) ssdOnly = true;  // the SSD cases (both paths) and the SSD timings only
    if (!strcmp(argv[i], "--quick")) quick = true, bench = false;  // two small cases (for compute-sanitizer)
    if (!strcmp(argv[i], "--chain-ab") && i + 4 < argc) {  // --chain-ab B T H G: the state-chain paths at that shape
      bench_chain_ab(atoi(argv[i + 1]), atoi(argv[i + 2]), atoi(argv[i + 3]), atoi(argv[i + 4]));
      return 0;
    }
    if (!strcmp(argv[i], "--profile")) {  // one default SSD backward at B4 and nothing else (for ncu)
      bench_ssd(4, true);
      return 0;
    }
  }
  g_rng.seed(seed);
  printf("seed %llu\n", seed);
  if (quick) {
    test_ssd<bf16, bf16, float, bf16, 64, 64>(2, 70, 2, 1, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 64>(2, 70, 4, 2, true, true, "bf16/dt f32", true);
    test_ssd<bf16, bf16, float, bf16, 64, 64, strata::ssd_bwd::kPathTc>(2, 70, 2, 1, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 64, strata::ssd_bwd::kPathSimt>(2, 70, 2, 1, true, true, "bf16/dt f32");
    test_sel<bf16, bf16, float, bf16, 16>(2, 20, 40, true, true, "bf16/delta f32");
    test_sel<bf16, bf16, float, bf16, 128>(2, 20, 20, true, true, "bf16/delta f32");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
  }
  // training dtypes: gy, x, B, C bf16; dt f32 (softplus output)
  test_ssd<bf16, bf16, float, bf16, 64, 16>(2, 1, 4, 2, false, false, "bf16/dt f32");
  test_ssd<bf16, bf16, float, bf16, 64, 64>(1, 63, 2, 1, false, true, "bf16/dt f32");
  test_ssd<bf16, bf16, float, bf16, 64, 128>(2, 130, 4, 2, false, true, "bf16/dt f32");
  test_ssd<bf16, bf16, float, bf16, 64, 128>(1, 300, 8, 2, false, false, "bf16/dt f32");
  test_ssd<float, float, float, float, 64, 128>(2, 200, 4, 4, true, false, "f32");
  test_ssd<float, float, float, float, 32, 32>(1, 257, 6, 3, true, true, "f32");
  test_ssd<bf16, bf16, bf16, bf16, 64, 64>(3, 65, 4, 1, true, false, "bf16 (dt bf16)");
  test_ssd<float, float, float, float, 64, 128>(1, 64, 64, 8, true, false, "f32");  // 0.85B head shape (H 64, G 8)
  test_ssd<bf16, bf16, float, bf16, 64, 128>(1, 200, 64, 8, true, true, "bf16/dt f32");  // the same, bf16, ragged T
  // misaligned tensors: the element-wise load fallback of the group path
  test_ssd<bf16, bf16, float, bf16, 64, 128>(2, 130, 4, 2, true, true, "bf16/dt f32", true);
  test_ssd<float, float, float, float, 32, 32>(1, 100, 6, 3, true, true, "f32", true);
  test_ssd<bf16, bf16, float, bf16, 96, 96>(1, 100, 4, 2, true, true, "bf16/dt f32");
  // the previous default (TF32 group kernels + state_pass) and the default's two parts alone
  test_ssd<bf16, bf16, float, bf16, 64, 128, strata::ssd_bwd::kPathGroupTf32>(1, 200, 64, 8, true, true, "bf16/dt f32");
  test_ssd<float, float, float, float, 64, 128, strata::ssd_bwd::kPathGroupTf32>(2, 200, 4, 4, true, false, "f32");
  {
    using namespace strata::ssd_bwd;
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 1, 1>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 1, 2>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 2, 1>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 2, 0>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 0, 2>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 1, 1>(2, 130, 4, 2, true, true, "bf16/dt f32", true);
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 1, 2>(2, 130, 4, 2, true, true, "bf16/dt f32", true);
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 2, 1>(2, 130, 4, 2, true, true, "bf16/dt f32", true);
    test_ssd<float, float, float, float, 64, 128, kPathGroup, 1, 1>(2, 200, 4, 4, true, false, "f32");
    test_ssd<float, float, float, float, 64, 128, kPathGroup, 1, 2>(2, 200, 4, 4, true, false, "f32");
    test_ssd<float, float, float, float, 32, 32, kPathGroup, 1, 1>(1, 257, 6, 3, true, true, "f32");
    test_ssd<float, float, float, float, 32, 32, kPathGroup, 1, 2>(1, 257, 6, 3, true, true, "f32");
    test_ssd<float, float, float, float, 32, 32, kPathGroup, 2, 1>(1, 257, 6, 3, true, true, "f32");
    test_ssd<bf16, bf16, float, bf16, 64, 64, kPathGroup, 1, 1>(1, 63, 2, 1, false, true, "bf16/dt f32");
    test_ssd<bf16, bf16, bf16, bf16, 64, 64, kPathGroup, 1, 2>(3, 65, 4, 1, true, false, "bf16 (dt bf16)");
    test_ssd<bf16, bf16, bf16, bf16, 64, 64, kPathGroup, 2, 1>(3, 65, 4, 1, true, false, "bf16 (dt bf16)");
    // the previous default (chunk_local_split + chunk_grad_bf with the prefetch)
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 2, 2>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<float, float, float, float, 64, 128, kPathGroup, 2, 2>(2, 200, 4, 4, true, false, "f32");
    // chunk_local_persist: 3 = split where it fits (every case here), 4 = always split, 5 = never
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 3, 2>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 5, 2>(1, 200, 64, 8, true, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 5, 2>(2, 1024, 8, 2, true, false, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 4, 2>(2, 1024, 8, 2, true, false, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 3, 2>(2, 130, 4, 2, true, true, "bf16/dt f32", true);
    test_ssd<bf16, bf16, float, bf16, 64, 128, kPathGroup, 5, 1>(2, 130, 4, 2, false, true, "bf16/dt f32", true);
    test_ssd<float, float, float, float, 64, 128, kPathGroup, 3, 2>(2, 200, 4, 4, true, false, "f32");
    test_ssd<float, float, float, float, 64, 128, kPathGroup, 5, 2>(2, 200, 4, 4, true, false, "f32");
    test_ssd<float, float, float, float, 32, 32, kPathGroup, 4, 1>(1, 257, 6, 3, true, true, "f32");
    test_ssd<float, float, float, float, 32, 32, kPathGroup, 5, 2>(1, 100, 6, 3, true, true, "f32", true);
    test_ssd<bf16, bf16, float, bf16, 64, 64, kPathGroup, 3, 2>(1, 63, 2, 1, false, true, "bf16/dt f32");
    test_ssd<bf16, bf16, float, bf16, 64, 16, kPathGroup, 5, 2>(2, 1, 4, 2, false, false, "bf16/dt f32");
    test_ssd<bf16, bf16, bf16, bf16, 64, 64, kPathGroup, 3, 2>(3, 65, 4, 1, true, false, "bf16 (dt bf16)");
    test_ssd<bf16, bf16, bf16, bf16, 64, 64, kPathGroup, 5, 2>(3, 65, 4, 1, true, false, "bf16 (dt bf16)");
    test_ssd<bf16, bf16, float, bf16, 96, 96, kPathGroup, 5, 2>(1, 100, 4, 2, true, true, "bf16/dt f32");
  }
  // the per-head tensor-core path and the fp32 CUDA-core path, kept for A/B
  test_ssd<bf16, bf16, float, bf16, 64, 128, strata::ssd_bwd::kPathTc>(2, 130, 4, 2, false, true, "bf16/dt f32");
  test_ssd<float, float, float, float, 64, 128, strata::ssd_bwd::kPathTc>(2, 200, 4, 4, true, false, "f32");
  test_ssd<bf16, bf16, float, bf16, 64, 128, strata::ssd_bwd::kPathSimt>(2, 130, 4, 2, false, true, "bf16/dt f32");
  test_ssd<float, float, float, float, 64, 128, strata::ssd_bwd::kPathSimt>(2, 200, 4, 4, true, false, "f32");
  if (ssdOnly) {
    if (bench) bench_ssd(2), bench_ssd(4), bench_ssd_step(4);  // the 8B layer at B2, the 0.85B hybrid's at B4 (T 4096, H 64, P 64, G 8, N 128)
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
  }
  test_sel<bf16, bf16, float, bf16, 16>(2, 1, 64, false, false, "bf16/delta f32");
  test_sel<bf16, bf16, float, bf16, 16>(1, 17, 100, true, true, "bf16/delta f32");
  test_sel<bf16, bf16, float, bf16, 16>(2, 300, 256, false, false, "bf16/delta f32");
  test_sel<float, float, float, float, 16>(2, 129, 200, true, false, "f32");
  test_sel<float, float, float, float, 32>(1, 77, 64, true, true, "f32");
  test_sel<bf16, bf16, bf16, bf16, 8>(1, 40, 72, false, false, "bf16 (delta bf16)");
  // dState 64 / 128: blocks of 16 channels as 4 / 8 passes, a channel over 2 / 4 warps
  test_sel<bf16, bf16, float, bf16, 64>(2, 37, 20, true, true, "bf16/delta f32");
  test_sel<bf16, bf16, float, bf16, 64>(1, 300, 256, false, false, "bf16/delta f32");
  test_sel<float, float, float, float, 64>(2, 129, 40, true, false, "f32");
  test_sel<bf16, bf16, float, bf16, 128>(2, 37, 20, true, true, "bf16/delta f32");
  test_sel<bf16, bf16, float, bf16, 128>(1, 300, 256, false, false, "bf16/delta f32");
  test_sel<float, float, float, float, 128>(1, 77, 72, true, true, "f32");
  test_sel<bf16, bf16, bf16, bf16, 128>(2, 17, 16, false, false, "bf16 (delta bf16)");
  if (bench) {
    bench_ssd(2);
    bench_ssd(4);
    bench_sel<16>(2, 4096, 1536);
    bench_sel<128>(1, 2048, 8192);  // a layer of the 8B Mamba (dState 128, d_inner 8192) at 2048 tokens
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

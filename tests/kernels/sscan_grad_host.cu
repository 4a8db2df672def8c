// sscan_grad_host.cu — host emulation of include/selective_scan_bwd.cuh (the Mamba-1 selective-scan
// backward) for dState 16, 64 and 128, no GPU needed. The launch is replayed block by block with
// the kernels' own layout (Layout<N>, kChunk, sub_floats' scratch carving) and per-element math
// (chunk_state, reverse_step, sum_warps); the warps' xor-shuffle butterflies are emulated lane by
// lane, each phase between two barriers runs its threads in a given order. Checked: every gradient
// against a float64 reference (selectiveScanGrad of compiler/interp/refs-backward.ts), and the
// results bit-identical across two runs and with the threads of every phase run in reverse order
// (nothing depends on the order threads run in: the sums are fixed trees).
// Build: nvcc -std=c++17 -Itemplates/include tests/kernels/sscan_grad_host.cu -o sscan_grad_host
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "selective_scan_bwd.cuh"

namespace sb = strata::sscan_bwd;
using sb::kChunk;
using sb::kThreads;

// reverse_step's dC / dB sink (the kernel's lambdas, callable from a __host__ __device__ function)
struct Store {
  float* p;
  bool add;
  STRATA_HD void operator()(float v) const { *p = add ? *p + v : v; }
};

struct Problem {
  int B, T, D, N;
  bool h0;
  std::vector<float> gy, u, dl, A, Bm, Cm, H0;  // token-major [B,T,D] / [B,T,N]; A [D,N]; h0 [B,D,N]
};
struct Grads {
  std::vector<float> du, ddl, dA, dB, dC, dh0;
};

// One launch of selective_scan_grad<N> (one sub-batch holding the whole batch), emulated.
template <int N>
static Grads emulate(const Problem& P, bool reverseThreads) {
  using L = sb::Layout<N>;
  constexpr int CPB = L::kCpb, G = L::kGroups, W = L::kWarpsPerCh, CH = L::kChannels, kWarps = kThreads / 32;
  constexpr int kSub = G == 1 ? kChunk : kChunk / 2;
  const int Bn = P.B, T = P.T, D = P.D, nc = (T + kChunk - 1) / kChunk, nblk = (D + CH - 1) / CH;
  // scratch carved as the launcher does, for one sub-batch of all the sequences (the launcher's
  // own need: the compiler's reservation holds at least one sequence)
  const size_t runFloats = sb::detail::align64((size_t)D * N);
  if (sb::detail::sub_floats<N>(1, T, D) + runFloats > sb::selective_scan_grad_scratch_bytes<N>(Bn, T, D) / 4) {
    printf("FAIL selective_scan_grad_scratch_bytes holds no sequence (N=%d T=%d D=%d)\n", N, T, D);
    std::exit(1);
  }
  std::vector<float> scratch(runFloats + sb::detail::sub_floats<N>(Bn, T, D), NAN);
  sb::detail::Scratch s{};
  sb::detail::sub_floats<N>(Bn, T, D, &s, scratch.data() + runFloats);
  s.dArun = scratch.data();
  auto at = [&](const std::vector<float>& v, int b, int t, int col, int width) { return v[((size_t)b * T + t) * width + col]; };
  auto order = [&](int k, int cnt) { return reverseThreads ? cnt - 1 - k : k; };
  Grads o;
  o.du.assign((size_t)Bn * T * D, NAN); o.ddl = o.du;
  o.dB.assign((size_t)Bn * T * N, NAN); o.dC = o.dB;
  o.dA.assign((size_t)D * N, NAN); o.dh0.assign((size_t)Bn * D * N, NAN);

  // 1. fwd_states_kernel
  for (int b = 0; b < Bn; ++b)
    for (int d = 0; d < D; ++d)
      for (int n = 0; n < N; ++n) {
        const float a = P.A[d * N + n];
        float h = P.h0 ? P.H0[((size_t)b * D + d) * N + n] : 0.f;
        for (int t = 0; t < T; ++t) {
          if (t % kChunk == 0) s.bnd[(((size_t)b * nc + t / kChunk) * D + d) * N + n] = h;
          const float dv = at(P.dl, b, t, d, D), uv = at(P.u, b, t, d, D), bv = at(P.Bm, b, t, n, N);
          h = fmaf(expf(dv * a), h, dv * uv * bv);
        }
      }

  // 2. bwd_kernel, block (bx, b); per-thread registers as arrays over threadIdx.x
  for (int b = 0; b < Bn; ++b)
    for (int bx = 0; bx < nblk; ++bx) {
      static float sdB[kChunk][CPB][N], sdC[kChunk][CPB][N], sdS[G][kThreads], sred[2][2][kChunk][kWarps];
      std::vector<float> dS(kThreads, 0.f), dAacc(kThreads, 0.f), a(kThreads, 0.f), ddl(kThreads), dup(kThreads);
      std::vector<float> hist(kThreads * kSub), ev(kThreads * kSub), dv(kThreads * kSub), uv(kThreads * kSub), bv(kThreads * kSub);
      for (int tid = 0; tid < kThreads; ++tid) {
        const int d1 = bx * CPB + tid / N;
        if (G == 1 && d1 < D) a[tid] = P.A[d1 * N + tid % N];
      }
      for (int c = nc - 1; c >= 0; --c) {
        const int t0 = c * kChunk, len = std::min(kChunk, T - t0);
        for (int gi = 0; gi < G; ++gi) {
          auto chan = [&](int tid) { return (bx * G + gi) * CPB + tid / N; };
          for (int k = 0; k < kThreads; ++k) {
            const int tid = order(k, kThreads), n = tid % N, d = chan(tid);
            const bool ok = d < D;
            if (G > 1) {
              a[tid] = ok ? P.A[d * N + n] : 0.f;
              dS[tid] = c == nc - 1 ? 0.f : sdS[gi][tid];
              dAacc[tid] = c == nc - 1 || !ok ? 0.f : s.dApart[((size_t)b * D + d) * N + n];
            }
          }
          for (int i0 = kChunk - kSub; i0 >= 0; i0 -= kSub) {
            for (int k = 0; k < kThreads; ++k) {  // the chunk's states, kSub at a time
              const int tid = order(k, kThreads), n = tid % N, d = chan(tid);
              const bool ok = d < D;
              float h = ok ? s.bnd[(((size_t)b * nc + c) * D + d) * N + n] : 0.f;
              for (int i = 0; i < i0; ++i) {
                const bool v = ok && i < len;
                float e_, h_;
                sb::detail::chunk_state(h, a[tid], v ? at(P.dl, b, t0 + i, d, D) : 0.f, v ? at(P.u, b, t0 + i, d, D) : 0.f,
                                        v ? at(P.Bm, b, t0 + i, n, N) : 0.f, e_, h_);
              }
              for (int j = 0; j < kSub; ++j) {
                const bool v = ok && i0 + j < len;
                const int r = tid * kSub + j;
                dv[r] = v ? at(P.dl, b, t0 + i0 + j, d, D) : 0.f;
                uv[r] = v ? at(P.u, b, t0 + i0 + j, d, D) : 0.f;
                bv[r] = v ? at(P.Bm, b, t0 + i0 + j, n, N) : 0.f;
                sb::detail::chunk_state(h, a[tid], dv[r], uv[r], bv[r], ev[r], hist[r]);
              }
            }
            for (int j = kSub - 1; j >= 0; --j) {
              const int i = i0 + j;
              if (i >= len) continue;
              const int t = t0 + i;
              for (int k = 0; k < kThreads; ++k) {
                const int tid = order(k, kThreads), n = tid % N, ch = tid / N, d = chan(tid), r = tid * kSub + j;
                const bool ok = d < D;
                const float g = ok ? at(P.gy, b, t, d, D) : 0.f, cv = ok ? at(P.Cm, b, t, n, N) : 0.f;
                const bool add = G > 1 && gi > 0;
                sb::detail::reverse_step(g, cv, a[tid], ev[r], hist[r], dv[r], uv[r], bv[r], dS[tid], dAacc[tid], ddl[tid], dup[tid],
                                         Store{&sdC[i][ch][n], add}, Store{&sdB[i][ch][n], add});
              }
              // the xor-shuffle butterflies, lane by lane: x_l += x_{l^off}, all lanes at once
              for (int off = (N < 32 ? N : 32) / 2; off > 0; off >>= 1) {
                std::vector<float> pd = ddl, pu = dup;
                for (int tid = 0; tid < kThreads; ++tid) {
                  ddl[tid] = pd[tid] + pd[tid ^ off];
                  dup[tid] = pu[tid] + pu[tid ^ off];
                }
              }
              for (int k = 0; k < kThreads; ++k) {
                const int tid = order(k, kThreads), n = tid % N, d = chan(tid), r = tid * kSub + j;
                if (W == 1) {
                  if (d < D && n == 0) {
                    o.du[((size_t)b * T + t) * D + d] = dv[r] * dup[tid];
                    o.ddl[((size_t)b * T + t) * D + d] = ddl[tid];
                  }
                } else if (tid % 32 == 0) {
                  sred[gi & 1][0][i][tid / 32] = ddl[tid];
                  sred[gi & 1][1][i][tid / 32] = dup[tid];
                }
              }
            }
          }
          if (G > 1) {
            for (int k = 0; k < kThreads; ++k) {
              const int tid = order(k, kThreads), n = tid % N, d = chan(tid);
              sdS[gi][tid] = dS[tid];
              if (d < D) {
                s.dApart[((size_t)b * D + d) * N + n] = dAacc[tid];
                if (c == 0) o.dh0[((size_t)b * D + d) * N + n] = dS[tid];
              }
            }
            // __syncthreads(); then the pass's dΔ and du from the warp sums
            for (int k = 0; k < kChunk * CPB; ++k) {
              const int tid = order(k, kChunk * CPB), i = tid / CPB, cc = tid % CPB, dd = (bx * G + gi) * CPB + cc, t = t0 + i;
              if (i < len && dd < D) {
                const float sd = sb::detail::sum_warps<W>(&sred[gi & 1][0][i][cc * W]), su = sb::detail::sum_warps<W>(&sred[gi & 1][1][i][cc * W]);
                o.du[((size_t)b * T + t) * D + dd] = at(P.dl, b, t, dd, D) * su;
                o.ddl[((size_t)b * T + t) * D + dd] = sd;
              }
            }
          }
        }
        // __syncthreads(); the block's dB / dC partials
        for (int k = 0; k < kChunk * N; ++k) {
          const int idx = order(k, kChunk * N), i = idx / N, nn = idx % N;
          if (i >= len) continue;
          float vb = 0.f, vc = 0.f;
          for (int q = 0; q < CPB; ++q) {
            vb += sdB[i][q][nn];
            vc += sdC[i][q][nn];
          }
          const size_t oo = (((size_t)b * T + t0 + i) * nblk + bx) * N + nn;
          s.dBpart[oo] = vb;
          s.dCpart[oo] = vc;
        }
      }
      if (G == 1)
        for (int tid = 0; tid < kThreads; ++tid) {
          const int d = bx * CPB + tid / N, n = tid % N;
          if (d < D) {
            s.dApart[((size_t)b * D + d) * N + n] = dAacc[tid];
            o.dh0[((size_t)b * D + d) * N + n] = dS[tid];
          }
        }
    }

  // 3. finish_kernel
  for (size_t i = 0; i < (size_t)Bn * T * N; ++i) {
    const size_t bt = i / N, src = bt * nblk * N + i % N;
    float vb = 0.f, vc = 0.f;
    for (int k = 0; k < nblk; ++k) vb += s.dBpart[src + (size_t)k * N], vc += s.dCpart[src + (size_t)k * N];
    o.dB[i] = vb;
    o.dC[i] = vc;
  }
  for (size_t i = 0; i < (size_t)D * N; ++i) {
    float v = 0.f;
    for (int b = 0; b < Bn; ++b) v += s.dApart[(size_t)b * D * N + i];
    o.dA[i] = v;
  }
  return o;
}

// float64 reference: selectiveScanGrad of compiler/interp/refs-backward.ts
static std::vector<std::vector<double>> reference(const Problem& P) {
  const int Bn = P.B, T = P.T, D = P.D, N = P.N, DN = D * N;
  std::vector<double> ru((size_t)Bn * T * D), rdl(ru.size()), rA(DN), rB((size_t)Bn * T * N), rC(rB.size()), rh0((size_t)Bn * DN);
  std::vector<double> st((size_t)(T + 1) * DN), dS(DN);
  for (int b = 0; b < Bn; ++b) {
    for (int i = 0; i < DN; ++i) st[i] = P.h0 ? P.H0[(size_t)b * DN + i] : 0.0;
    for (int t = 0; t < T; ++t)
      for (int d = 0; d < D; ++d) {
        const double dv = P.dl[((size_t)b * T + t) * D + d], w = dv * P.u[((size_t)b * T + t) * D + d];
        for (int n = 0; n < N; ++n)
          st[(size_t)(t + 1) * DN + d * N + n] = std::exp(dv * P.A[d * N + n]) * st[(size_t)t * DN + d * N + n] + w * P.Bm[((size_t)b * T + t) * N + n];
      }
    std::fill(dS.begin(), dS.end(), 0.0);
    for (int t = T - 1; t >= 0; --t) {
      const size_t bo = ((size_t)b * T + t) * N;
      for (int d = 0; d < D; ++d) {
        const size_t ti = ((size_t)b * T + t) * D + d;
        const double gyv = P.gy[ti], dv = P.dl[ti], uv = P.u[ti];
        double dDelta = 0, dU = 0;
        for (int n = 0; n < N; ++n) {
          const int si = d * N + n;
          const double bv = P.Bm[bo + n];
          dS[si] += gyv * P.Cm[bo + n];
          rC[bo + n] += gyv * st[(size_t)(t + 1) * DN + si];
          const double av = P.A[si], e = std::exp(dv * av), ds = dS[si], de = ds * st[(size_t)t * DN + si];
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
  return {ru, rdl, rA, rB, rC, rh0};
}

static int g_fail = 0;
static void check(const char* name, const std::vector<float>& got, const std::vector<double>& ref) {
  double scale = 1e-30, err = 0;
  bool finite = got.size() == ref.size();
  for (size_t i = 0; i < ref.size() && finite; ++i) {
    finite = std::isfinite(got[i]);
    scale = std::max(scale, std::fabs(ref[i]));
    err = std::max(err, std::fabs(got[i] - ref[i]));
  }
  const bool ok = finite && err <= 1e-4 * scale;
  if (!ok) ++g_fail;
  printf("%s %s: max |err| %.3g of max |ref| %.3g\n", ok ? "PASS" : "FAIL", name, err, scale);
}

static bool same(const Grads& x, const Grads& y) {
  auto eq = [](const std::vector<float>& a, const std::vector<float>& b) { return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0; };
  return eq(x.du, y.du) && eq(x.ddl, y.ddl) && eq(x.dA, y.dA) && eq(x.dB, y.dB) && eq(x.dC, y.dC) && eq(x.dh0, y.dh0);
}

template <int N>
static void run(int Bn, int T, int D, bool withH0, unsigned seed) {
  Problem P{Bn, T, D, N, withH0};
  std::mt19937 rng(seed);
  auto fill = [&](std::vector<float>& v, size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    v.resize(n);
    for (auto& x : v) x = dist(rng);
  };
  fill(P.gy, (size_t)Bn * T * D, -1, 1); fill(P.u, (size_t)Bn * T * D, -1, 1); fill(P.dl, (size_t)Bn * T * D, 0.02f, 0.8f);
  fill(P.Bm, (size_t)Bn * T * N, -1, 1); fill(P.Cm, (size_t)Bn * T * N, -1, 1);
  fill(P.A, (size_t)D * N, 0, std::log(16.f));
  for (auto& a : P.A) a = -std::exp(a);
  if (withH0) fill(P.H0, (size_t)Bn * D * N, -0.5f, 0.5f);
  const Grads g1 = emulate<N>(P, false), g2 = emulate<N>(P, false), g3 = emulate<N>(P, true);
  const auto r = reference(P);
  char nm[160];
  auto c = [&](const char* what, const std::vector<float>& got, const std::vector<double>& ref) {
    snprintf(nm, sizeof nm, "N=%d B=%d T=%d D=%d%s %s", N, Bn, T, D, withH0 ? " h0" : "", what);
    check(nm, got, ref);
  };
  c("du", g1.du, r[0]); c("ddelta", g1.ddl, r[1]); c("dA", g1.dA, r[2]); c("dB", g1.dB, r[3]); c("dC", g1.dC, r[4]);
  if (withH0) c("dh0", g1.dh0, r[5]);
  const bool det = same(g1, g2) && same(g1, g3);
  if (!det) ++g_fail;
  printf("%s N=%d B=%d T=%d D=%d: bit-identical across two runs and with every phase's threads in reverse order\n", det ? "PASS" : "FAIL", N, Bn, T, D);
}

int main() {
  // T: partial last chunks and one of length 1; D: a partial last block (N 64 / 128: whole passes
  // of it past D), several blocks (the dB / dC partials summed over blocks)
  run<16>(2, 37, 20, true, 1);
  run<16>(1, 16, 40, false, 2);
  run<64>(2, 37, 20, true, 3);
  run<64>(1, 33, 36, false, 4);
  run<128>(2, 37, 20, true, 5);
  run<128>(1, 17, 18, true, 6);
  printf("%d failed\n", g_fail);
  return g_fail ? 1 : 0;
}

// selective_scan_bwd.cuh — Mamba-1 selective-scan backward (selectiveScanGrad), deterministic, fp32.
//
// Forward (selective_scan.cuh, per batch b, channel d, state element n):
//   h_t[d,n] = e^{Δ_t[d]·A[d,n]}·h_{t−1}[d,n] + Δ_t[d]·u_t[d]·B_t[n],   y_t[d] = Σ_n h_t[d,n]·C_t[n].
// Given gy = dL/dy this computes du, dΔ, dA, dB, dC and dh0 (float64 reference: selectiveScanGrad
// in compiler/interp/refs-backward.ts). Δ arrives materialised (after softplus); A [D,N] from memory.
//
// One thread owns one state element (d, n) of a pass: 256/N channels of one sequence (the N lanes
// of a channel adjacent; for N 64 / 128 a channel spans 2 / 4 warps). N 8–32: a block is one pass;
// N 64 / 128: a block owns 16 channels as kGroups = 4 / 8 passes, run one after another inside each
// chunk (dS kept in shared memory between chunks, dA in the scratch), so the per-block dB / dC
// partials stay as few as for N 16. Two launches over the sequence plus a finish:
//   1. forward: run the recurrence, store the state at every chunk start (every kChunk tokens);
//   2. backward: chunks in reverse; each chunk's states are recomputed from its start state into
//      registers (kChunk of them, fully unrolled; N 64 / 128: half a chunk at a time, the first
//      half's states recomputed twice, to stay within 128 registers), then the reverse recurrence
//        dS += gy_t·C_t;  dC_t += gy_t·h_t;  dΔ_t += dS·(A·a_t·h_{t−1} + u_t·B_t);
//        dA += dS·Δ_t·a_t·h_{t−1};  du_t += Δ_t·dS·B_t;  dB_t += dS·Δ_t·u_t;  dS ← a_t·dS
//      with the sums over n as xor-shuffle butterflies (a fixed order; N 64 / 128: per warp, then
//      the channel's 2 / 4 warp sums added in warp order through shared memory) and dB/dC summed
//      over the block's channels in shared memory in a fixed order (passes in order, then the
//      pass's channels), one partial per block → scratch;
//   3. finish: dB, dC summed over the channel blocks, dA over the batch, in a fixed order.
// No float atomics: bit-identical run to run. dh0 is the final dS. The per-token math is in
// __host__ __device__ functions (chunk_state, reverse_step, sum_warps), which
// tests/kernels/sscan_grad_host.cu runs on the host in an emulation of the block.
// Layouts: token-major with row / batch strides (elements); A [D,N], h0 / dh0 [B,D,N] fp32.
#pragma once

#include "strata/base.cuh"
#include "strata/bf16.cuh"

#include <algorithm>

namespace strata {
namespace sscan_bwd {
// internal linkage: several generated kernel files of one project include this header
namespace {

template <class T>
struct Tok {
  T* p = nullptr;
  long long row = 0, batch = 0;
};

template <class TGy, class TU, class TDl, class TB, class TC>
struct SelScanGradParams {
  int batch = 0, seqlen = 0, dim = 0;
  Tok<const TGy> gy;
  Tok<const TU> u;
  Tok<const TDl> delta;
  const float* A = nullptr;  // [D,N]
  Tok<const TB> B;
  Tok<const TC> C;
  const float* h0 = nullptr;  // [B,D,N], optional
  // outputs: nullptr = not requested
  Tok<TU> du;
  Tok<TDl> ddelta;
  float* dA = nullptr;  // [D,N]
  Tok<TB> dB;
  Tok<TC> dC;
  float* dh0 = nullptr;  // [B,D,N]
  void* scratch = nullptr;  // selective_scan_grad_scratch_bytes
};

constexpr int kChunk = 16;
constexpr int kThreads = 256;

// The block layout for dState N: a pass of kThreads covers kCpb channels (one thread per state
// element); N ≤ 32: one pass per block, a channel within a warp; N 64 / 128: kGroups passes per
// block (16 channels), a channel over kWarpsPerCh warps.
template <int N>
struct Layout {
  static_assert(N == 8 || N == 16 || N == 32 || N == 64 || N == 128, "dState 8, 16, 32, 64 or 128");
  static constexpr int kCpb = kThreads / N;                 // channels per pass
  static constexpr int kGroups = N <= 32 ? 1 : 16 / kCpb;  // passes per block
  static constexpr int kChannels = kCpb * kGroups;          // channels per block
  static constexpr int kWarpsPerCh = N <= 32 ? 1 : N / 32;
};

namespace detail {

// The per-element math (host and device: tests/kernels/sscan_grad_host.cu runs it on the host).
// One token of a chunk's recomputation: keeps h_{t−1} and e^{Δ·a}, advances h to h_t.
STRATA_HD void chunk_state(float& h, float a, float dv, float uv, float bv, float& ev, float& hist) {
  ev = expf(dv * a);
  hist = h;
  h = fmaf(ev, h, dv * uv * bv);
}

// One token of the reverse recurrence for one state element: the contributions to dC_t[n]
// (g·h_t) and dB_t[n] (dS·Δ·u) go to storeC / storeB (summed over channels by the caller; called
// where the kernel stored them before this was factored out, which keeps N ≤ 32's machine code
// byte-identical), those to dΔ_t and du_t/Δ_t to ddl / dup (summed over n by the caller); dS and
// dA accumulate in place.
template <class StoreC, class StoreB>
STRATA_HD void reverse_step(float g, float cv, float a, float ev, float hist, float dv, float uv, float bv, float& dS, float& dAacc,
                            float& ddl, float& dup, StoreC storeC, StoreB storeB) {
  const float ht = fmaf(ev, hist, dv * uv * bv);
  dS = fmaf(g, cv, dS);
  storeC(g * ht);
  const float de = dS * hist;
  ddl = fmaf(de * a, ev, dS * uv * bv);
  dAacc = fmaf(de * dv, ev, dAacc);
  dup = dS * bv;
  storeB(dS * dv * uv);
  dS *= ev;
}

// The sum of a channel's per-warp partials (N 64 / 128), in warp order.
template <int W>
STRATA_HD float sum_warps(const float* part) {
  float v = part[0];
#pragma unroll
  for (int w = 1; w < W; ++w) v += part[w];
  return v;
}

template <class T> STRATA_DEV float ldf(const T* p) { return static_cast<float>(*p); }
template <> STRATA_DEV float ldf<__nv_bfloat16>(const __nv_bfloat16* p) { return __bfloat162float(*p); }
template <class T> STRATA_DEV void stf(T* p, float v) { *p = static_cast<T>(v); }
template <> STRATA_DEV void stf<__nv_bfloat16>(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }

template <class T>
STRATA_DEV float tok(const Tok<const T>& t, int b, int tt, int col) {
  return ldf(t.p + b * t.batch + (long long)tt * t.row + col);
}

// Scratch (floats): the running dA (D·N), then per sub-batch of sequences the chunk-start states,
// the per-sequence dA partials and the per-block dB / dC partials. Parts are 64-float aligned.
struct Scratch {
  float *bnd, *dApart, *dBpart, *dCpart, *dArun;
};
STRATA_HD size_t align64(size_t n) { return (n + 63) & ~size_t(63); }
template <int N>
STRATA_HD size_t sub_floats(int nb, int T, int D, Scratch* s = nullptr, float* base = nullptr) {
  constexpr int CPB = Layout<N>::kChannels;
  const size_t nc = (T + kChunk - 1) / kChunk, nblk = (D + CPB - 1) / CPB;
  const size_t sizes[4] = {(size_t)nb * nc * D * N, (size_t)nb * D * N, (size_t)nb * T * nblk * N, (size_t)nb * T * nblk * N};
  float** dst[4] = {s ? &s->bnd : nullptr, s ? &s->dApart : nullptr, s ? &s->dBpart : nullptr, s ? &s->dCpart : nullptr};
  size_t off = 0;
  for (int i = 0; i < 4; ++i) {
    if (s) *dst[i] = base + off;
    off += align64(sizes[i]);
  }
  return off;
}

template <int N, class PR>
__global__ void __launch_bounds__(kThreads) fwd_states_kernel(const PR p, Scratch s, int nc) {
  constexpr int CPB = kThreads / N;
  const int n = threadIdx.x % N, d = blockIdx.x * CPB + threadIdx.x / N, b = blockIdx.y;
  const int D = p.dim, T = p.seqlen;
  if (d >= D) return;  // no barriers in this kernel
  const float a = p.A[d * N + n];
  float h = p.h0 ? p.h0[((size_t)b * D + d) * N + n] : 0.f;
  for (int t = 0; t < T; ++t) {
    if (t % kChunk == 0) s.bnd[(((size_t)b * nc + t / kChunk) * D + d) * N + n] = h;
    const float dv = tok(p.delta, b, t, d), uv = tok(p.u, b, t, d), bv = tok(p.B, b, t, n);
    h = fmaf(expf(dv * a), h, dv * uv * bv);
  }
}

template <int N, class PR>
__global__ void __launch_bounds__(kThreads) bwd_kernel(const PR p, Scratch s, int nc) {
  using L = Layout<N>;
  constexpr int CPB = L::kCpb, G = L::kGroups, W = L::kWarpsPerCh, kWarps = kThreads / 32;
  constexpr int kSub = G == 1 ? kChunk : kChunk / 2;  // tokens whose states are held at once
  __shared__ float sdB[kChunk][CPB][N], sdC[kChunk][CPB][N];
  // G > 1 only: each pass's dS between chunks; per-warp partial sums of dΔ and du/Δ of a token,
  // double-buffered by pass parity (one barrier per pass)
  __shared__ float sdS[G > 1 ? G : 1][G > 1 ? kThreads : 1], sred[G > 1 ? 2 : 1][2][G > 1 ? kChunk : 1][G > 1 ? kWarps : 1];
  const int n = threadIdx.x % N, ch = threadIdx.x / N, b = blockIdx.y;
  const int D = p.dim, T = p.seqlen, nblk = gridDim.x;
  float dS = 0.f, dAacc = 0.f;
  const int d1 = blockIdx.x * CPB + ch;  // G == 1: the thread's channel
  float a = G == 1 && d1 < D ? p.A[d1 * N + n] : 0.f;
  for (int c = nc - 1; c >= 0; --c) {
    const int t0 = c * kChunk, len = min(kChunk, T - t0);
#pragma unroll 1
    for (int gi = 0; gi < G; ++gi) {
      const int d = (blockIdx.x * G + gi) * CPB + ch;
      const bool ok = d < D;
      const size_t si = ((size_t)b * D + d) * N + n;
      if constexpr (G > 1) {
        a = ok ? p.A[d * N + n] : 0.f;
        dS = c == nc - 1 ? 0.f : sdS[gi][threadIdx.x];
        dAacc = c == nc - 1 || !ok ? 0.f : s.dApart[si];
      }
      const float hc = ok ? s.bnd[(((size_t)b * nc + c) * D + d) * N + n] : 0.f;
      // the chunk's states in registers kSub at a time (N ≥ 64: the second half first, then the
      // first half recomputed again from the chunk start: 128 registers, no spills)
#pragma unroll
      for (int i0 = kChunk - kSub; i0 >= 0; i0 -= kSub) {
        float hist[kSub], ev[kSub], dv[kSub], uv[kSub], bv[kSub];
        float h = hc;
#pragma unroll
        for (int i = 0; i < i0; ++i) {
          const bool v = ok && i < len;
          float e_, h_;
          chunk_state(h, a, v ? tok(p.delta, b, t0 + i, d) : 0.f, v ? tok(p.u, b, t0 + i, d) : 0.f, v ? tok(p.B, b, t0 + i, n) : 0.f, e_, h_);
        }
#pragma unroll
        for (int j = 0; j < kSub; ++j) {
          const bool v = ok && i0 + j < len;
          dv[j] = v ? tok(p.delta, b, t0 + i0 + j, d) : 0.f;
          uv[j] = v ? tok(p.u, b, t0 + i0 + j, d) : 0.f;
          bv[j] = v ? tok(p.B, b, t0 + i0 + j, n) : 0.f;
          chunk_state(h, a, dv[j], uv[j], bv[j], ev[j], hist[j]);
        }
#pragma unroll
        for (int j = kSub - 1; j >= 0; --j) {
          const int i = i0 + j;
          if (i >= len) continue;  // uniform over the block
          const int t = t0 + i;
          const float g = ok ? tok(p.gy, b, t, d) : 0.f;
          const float cv = ok ? tok(p.C, b, t, n) : 0.f;
          float ddl, dup;
          float& rc = sdC[i][ch][n];
          float& rb = sdB[i][ch][n];
          const bool add = G > 1 && gi > 0;
          reverse_step(g, cv, a, ev[j], hist[j], dv[j], uv[j], bv[j], dS, dAacc, ddl, dup,
                       [&](float v) { rc = add ? rc + v : v; }, [&](float v) { rb = add ? rb + v : v; });
  #pragma unroll
          for (int off = (N < 32 ? N : 32) / 2; off > 0; off >>= 1) {
            ddl += __shfl_xor_sync(0xffffffffu, ddl, off);
            dup += __shfl_xor_sync(0xffffffffu, dup, off);
          }
          if constexpr (W == 1) {
            if (ok && n == 0) {
              if (p.du.p) stf(p.du.p + b * p.du.batch + (long long)t * p.du.row + d, dv[j] * dup);
              if (p.ddelta.p) stf(p.ddelta.p + b * p.ddelta.batch + (long long)t * p.ddelta.row + d, ddl);
            }
          } else if (threadIdx.x % 32 == 0) {
            sred[gi & 1][0][i][threadIdx.x / 32] = ddl;
            sred[gi & 1][1][i][threadIdx.x / 32] = dup;
          }
        }
      }
      if constexpr (G > 1) {
        sdS[gi][threadIdx.x] = dS;
        if (ok) {
          s.dApart[si] = dAacc;
          if (c == 0 && p.dh0) p.dh0[si] = dS;
        }
        __syncthreads();
        // dΔ and du of the pass's channels: the channel's warp sums in warp order
        if (threadIdx.x < kChunk * CPB) {
          const int i = threadIdx.x / CPB, cc = threadIdx.x % CPB, dd = (blockIdx.x * G + gi) * CPB + cc, t = t0 + i;
          if (i < len && dd < D) {
            const float ddl = sum_warps<W>(&sred[gi & 1][0][i][cc * W]), dup = sum_warps<W>(&sred[gi & 1][1][i][cc * W]);
            if (p.du.p) stf(p.du.p + b * p.du.batch + (long long)t * p.du.row + dd, tok(p.delta, b, t, dd) * dup);
            if (p.ddelta.p) stf(p.ddelta.p + b * p.ddelta.batch + (long long)t * p.ddelta.row + dd, ddl);
          }
        }
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < kChunk * N; idx += kThreads) {
      const int i = idx / N, nn = idx % N;
      if (i >= len) continue;
      float vb = 0.f, vc = 0.f;
      for (int k = 0; k < CPB; ++k) {
        vb += sdB[i][k][nn];
        vc += sdC[i][k][nn];
      }
      const size_t o = (((size_t)b * T + t0 + i) * nblk + blockIdx.x) * N + nn;
      s.dBpart[o] = vb;
      s.dCpart[o] = vc;
    }
    __syncthreads();
  }
  if constexpr (G == 1) {
    const int d = blockIdx.x * CPB + ch;
    if (d < D) {
      s.dApart[((size_t)b * D + d) * N + n] = dAacc;
      if (p.dh0) p.dh0[((size_t)b * D + d) * N + n] = dS;
    }
  }
}

// dB, dC over the channel blocks (one sub-batch); dA: the running sum over sequences in order.
template <int N, class PR>
__global__ void __launch_bounds__(kThreads) finish_kernel(const PR p, Scratch s, int nblk, bool first, bool last) {
  const long long i = (long long)blockIdx.x * kThreads + threadIdx.x;
  const int T = p.seqlen, D = p.dim;
  const long long total = (long long)p.batch * T * N;
  if (i < total) {
    const int n = (int)(i % N);
    const long long bt = i / N;
    const int b = (int)(bt / T), t = (int)(bt % T);
    const size_t src = (size_t)bt * nblk * N + n;
    if (p.dB.p) {
      float v = 0.f;
      for (int k = 0; k < nblk; ++k) v += s.dBpart[src + (size_t)k * N];
      stf(p.dB.p + b * p.dB.batch + (long long)t * p.dB.row + n, v);
    }
    if (p.dC.p) {
      float v = 0.f;
      for (int k = 0; k < nblk; ++k) v += s.dCpart[src + (size_t)k * N];
      stf(p.dC.p + b * p.dC.batch + (long long)t * p.dC.row + n, v);
    }
  }
  if (p.dA && i < (long long)D * N) {
    float v = first ? 0.f : s.dArun[i];
    for (int b = 0; b < p.batch; ++b) v += s.dApart[(size_t)b * D * N + i];
    s.dArun[i] = v;
    if (last) p.dA[i] = v;
  }
}

}  // namespace detail

// Scratch the compiler reserves: bytes per token of the call (B·T) plus fixed bytes. Any batch and
// length fit: the launcher runs the batch in as many sub-batches of sequences as the space needs.
template <int N>
constexpr size_t selective_scan_grad_scratch_per_token(int D) {
  constexpr int CPB = Layout<N>::kChannels;
  return ((size_t)D * N * 4 + kChunk - 1) / kChunk + (size_t)2 * ((D + CPB - 1) / CPB) * N * 4;
}
template <int N>
constexpr size_t selective_scan_grad_scratch_fixed(int D) { return (size_t)3 * D * N * 4 + 8 * 256; }
template <int N>
inline size_t selective_scan_grad_scratch_bytes(int batch, int T, int D) {
  return selective_scan_grad_scratch_per_token<N>(D) * batch * T + selective_scan_grad_scratch_fixed<N>(D);
}

// Every requested gradient of one selectiveScan on `stream`: per sub-batch three launches
// (chunk-start states, reverse scan, partial sums). N: 8, 16, 32, 64 or 128. `scratch_bytes`: the size of
// p.scratch (at least selective_scan_grad_scratch_bytes for this call).
template <int N, class PR>
inline cudaError_t selective_scan_grad(const PR& p0, size_t scratch_bytes, cudaStream_t stream = 0) {
  constexpr int CPB = Layout<N>::kChannels, FCPB = kThreads / N;  // channels per block: backward, forward states
  if (p0.batch < 0 || p0.seqlen < 0 || p0.dim <= 0) return cudaErrorInvalidValue;
  if (!p0.gy.p || !p0.u.p || !p0.delta.p || !p0.A || !p0.B.p || !p0.C.p || !p0.scratch) return cudaErrorInvalidValue;
  const int T = p0.seqlen, D = p0.dim;
  const int nc = (T + kChunk - 1) / kChunk, nblk = (D + CPB - 1) / CPB;
  float* base = static_cast<float*>(p0.scratch);
  const size_t runFloats = detail::align64((size_t)D * N);
  const size_t avail = scratch_bytes / sizeof(float);
  if (avail < runFloats) return cudaErrorInvalidValue;
  if (p0.batch == 0 || T == 0) {  // no tokens: gradients are zero
    if (p0.dA) cudaMemsetAsync(p0.dA, 0, (size_t)D * N * sizeof(float), stream);
    if (p0.dh0) cudaMemsetAsync(p0.dh0, 0, (size_t)p0.batch * D * N * sizeof(float), stream);
    return cudaGetLastError();
  }
  const size_t one = detail::sub_floats<N>(1, T, D) + 4 * 64;
  int nb = (int)std::max<size_t>(1, std::min<size_t>((size_t)p0.batch, (avail - runFloats) / one));
  nb = std::min(nb, 65535);  // grid.y = sequences
  while (nb > 1 && detail::sub_floats<N>(nb, T, D) > avail - runFloats) --nb;
  if (nb < 1 || detail::sub_floats<N>(nb, T, D) > avail - runFloats) return cudaErrorInvalidValue;
  for (int b0 = 0; b0 < p0.batch; b0 += nb) {
    PR p = p0;
    p.batch = std::min(nb, p0.batch - b0);
    const long long bo = b0;
    p.gy.p += bo * p.gy.batch; p.u.p += bo * p.u.batch; p.delta.p += bo * p.delta.batch;
    p.B.p += bo * p.B.batch; p.C.p += bo * p.C.batch;
    if (p.du.p) p.du.p += bo * p.du.batch;
    if (p.ddelta.p) p.ddelta.p += bo * p.ddelta.batch;
    if (p.dB.p) p.dB.p += bo * p.dB.batch;
    if (p.dC.p) p.dC.p += bo * p.dC.batch;
    if (p.h0) p.h0 += bo * D * N;
    if (p.dh0) p.dh0 += bo * D * N;
    detail::Scratch s{};
    detail::sub_floats<N>(p.batch, T, D, &s, base + runFloats);
    s.dArun = base;
    const dim3 grid(nblk, p.batch);
    detail::fwd_states_kernel<N, PR><<<dim3((D + FCPB - 1) / FCPB, p.batch), kThreads, 0, stream>>>(p, s, nc);
    detail::bwd_kernel<N, PR><<<grid, kThreads, 0, stream>>>(p, s, nc);
    long long total = (long long)p.batch * T * N;
    if (total < (long long)D * N) total = (long long)D * N;
    detail::finish_kernel<N, PR><<<(unsigned)ceil_div<long long>(total, kThreads), kThreads, 0, stream>>>(p, s, nblk, b0 == 0, b0 + nb >= p0.batch);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace sscan_bwd
}  // namespace strata

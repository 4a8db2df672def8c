// selective_scan_bwd.cuh — Mamba-1 selective-scan backward (selectiveScanGrad), deterministic, fp32.
//
// Forward (selective_scan.cuh, per batch b, channel d, state element n):
//   h_t[d,n] = e^{Δ_t[d]·A[d,n]}·h_{t−1}[d,n] + Δ_t[d]·u_t[d]·B_t[n],   y_t[d] = Σ_n h_t[d,n]·C_t[n].
// Given gy = dL/dy this computes du, dΔ, dA, dB, dC and dh0 (float64 reference: selectiveScanGrad
// in compiler/passes/vjp-ops.ts). Δ arrives materialised (after softplus); A [D,N] from memory.
//
// One thread owns one state element (d, n); a block owns 256/N channels of one sequence (the N
// lanes of a channel are adjacent in a warp). Two launches over the sequence plus a finish:
//   1. forward: run the recurrence, store the state at every chunk start (every kChunk tokens);
//   2. backward: chunks in reverse; each chunk's states are recomputed from its start state into
//      registers (kChunk of them, fully unrolled), then the reverse recurrence
//        dS += gy_t·C_t;  dC_t += gy_t·h_t;  dΔ_t += dS·(A·a_t·h_{t−1} + u_t·B_t);
//        dA += dS·Δ_t·a_t·h_{t−1};  du_t += Δ_t·dS·B_t;  dB_t += dS·Δ_t·u_t;  dS ← a_t·dS
//      with the sums over n as xor-shuffle butterflies (a fixed order) and dB/dC summed over the
//      block's channels in shared memory in a fixed order, one partial per block → scratch;
//   3. finish: dB, dC summed over the channel blocks, dA over the batch, in a fixed order.
// No float atomics: bit-identical run to run. dh0 is the final dS.
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

namespace detail {

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
  constexpr int CPB = kThreads / N;
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
  constexpr int CPB = kThreads / N;
  __shared__ float sdB[kChunk][CPB][N], sdC[kChunk][CPB][N];
  const int n = threadIdx.x % N, ch = threadIdx.x / N, d = blockIdx.x * CPB + ch, b = blockIdx.y;
  const int D = p.dim, T = p.seqlen, nblk = gridDim.x;
  const bool ok = d < D;
  const float a = ok ? p.A[d * N + n] : 0.f;
  float dS = 0.f, dAacc = 0.f;
  for (int c = nc - 1; c >= 0; --c) {
    const int t0 = c * kChunk, len = min(kChunk, T - t0);
    float hist[kChunk], ev[kChunk], dv[kChunk], uv[kChunk], bv[kChunk];
    float h = ok ? s.bnd[(((size_t)b * nc + c) * D + d) * N + n] : 0.f;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const bool v = ok && i < len;
      dv[i] = v ? tok(p.delta, b, t0 + i, d) : 0.f;
      uv[i] = v ? tok(p.u, b, t0 + i, d) : 0.f;
      bv[i] = v ? tok(p.B, b, t0 + i, n) : 0.f;
      ev[i] = expf(dv[i] * a);
      hist[i] = h;
      h = fmaf(ev[i], h, dv[i] * uv[i] * bv[i]);
    }
#pragma unroll
    for (int i = kChunk - 1; i >= 0; --i) {
      if (i >= len) continue;  // uniform over the block
      const int t = t0 + i;
      const float g = ok ? tok(p.gy, b, t, d) : 0.f;
      const float cv = ok ? tok(p.C, b, t, n) : 0.f;
      const float ht = fmaf(ev[i], hist[i], dv[i] * uv[i] * bv[i]);
      dS = fmaf(g, cv, dS);
      sdC[i][ch][n] = g * ht;
      const float de = dS * hist[i];
      float ddl = fmaf(de * a, ev[i], dS * uv[i] * bv[i]);
      dAacc = fmaf(de * dv[i], ev[i], dAacc);
      float dup = dS * bv[i];
      sdB[i][ch][n] = dS * dv[i] * uv[i];
      dS *= ev[i];
#pragma unroll
      for (int o = N / 2; o > 0; o >>= 1) {
        ddl += __shfl_xor_sync(0xffffffffu, ddl, o);
        dup += __shfl_xor_sync(0xffffffffu, dup, o);
      }
      if (ok && n == 0) {
        if (p.du.p) stf(p.du.p + b * p.du.batch + (long long)t * p.du.row + d, dv[i] * dup);
        if (p.ddelta.p) stf(p.ddelta.p + b * p.ddelta.batch + (long long)t * p.ddelta.row + d, ddl);
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
  if (ok) {
    s.dApart[((size_t)b * D + d) * N + n] = dAacc;
    if (p.dh0) p.dh0[((size_t)b * D + d) * N + n] = dS;
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
  return ((size_t)D * N * 4 + kChunk - 1) / kChunk + (size_t)2 * ((D + kThreads / N - 1) / (kThreads / N)) * N * 4;
}
template <int N>
constexpr size_t selective_scan_grad_scratch_fixed(int D) { return (size_t)3 * D * N * 4 + 8 * 256; }
template <int N>
inline size_t selective_scan_grad_scratch_bytes(int batch, int T, int D) {
  return selective_scan_grad_scratch_per_token<N>(D) * batch * T + selective_scan_grad_scratch_fixed<N>(D);
}

// Every requested gradient of one selectiveScan on `stream`: per sub-batch three launches
// (chunk-start states, reverse scan, partial sums). N: 8, 16 or 32. `scratch_bytes`: the size of
// p.scratch (at least selective_scan_grad_scratch_bytes for this call).
template <int N, class PR>
inline cudaError_t selective_scan_grad(const PR& p0, size_t scratch_bytes, cudaStream_t stream = 0) {
  static_assert(N == 8 || N == 16 || N == 32, "dState 8, 16 or 32");
  constexpr int CPB = kThreads / N;
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
    detail::fwd_states_kernel<N, PR><<<grid, kThreads, 0, stream>>>(p, s, nc);
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

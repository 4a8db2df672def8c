// ssd_bwd.cuh — Mamba-2 SSD backward (ssdScanGrad), deterministic, chunked, fp32 throughout.
//
// Forward (ssd.cuh, per batch b, head h, state P x N): a_t = exp(dt_t·A[h]),
//   h_t = a_t·h_{t−1} + dt_t·x_t⊗B_t,  y_t = h_t·C_t   (head h reads group g = h / (H/G)).
// Given gy = dL/dy this computes dx, ddt, dA, dB, dC and dh0 (the float64 reference is
// ssdScanGrad in compiler/passes/vjp-ops.ts). dt arrives materialised (after softplus); A is read
// from memory.
//
// Chunked algorithm (chunk L = 64 here, independent of the forward's chunk; T need not be a
// multiple of L: rows past T load as zeros with dt = 0, which contribute nothing). Inside chunk c,
// cs_l = Σ_{r≤l} dt_r·A (inclusive), with h_prev the state entering the chunk and dh_end the
// gradient of the state leaving it:
//   W_ls = (C_l·B_s)·e^{cs_l−cs_s}, M_ls = (gy_l·x_s)·e^{cs_l−cs_s}   (s ≤ l, else 0)
//   dx_s = dt_s·[Σ_l W_ls·gy_l + e^{cs_end−cs_s}·dh_end·B_s]
//   dB_s = dt_s·[Σ_l M_ls·C_l + e^{cs_end−cs_s}·x_sᵀ·dh_end]               (per head: partial)
//   dC_l = Σ_s M_ls·dt_s·B_s + e^{cs_l}·gy_lᵀ·h_prev                         (per head: partial)
//   d cs_l = Σ_s Z_ls − Σ_t Z_tl + Y_l − E_l + [l = L−1]·(E0 + Σ_s E_s)   with
//     Z_ls = dt_s·M_ls·(C_l·B_s), Y_l = e^{cs_l}·gy_l·(h_prev·C_l),
//     E_s = dt_s·e^{cs_end−cs_s}·x_sᵀ·dh_end·B_s, E0 = e^{cs_end}·⟨dh_end, h_prev⟩
//   d(dt_r·A) = Σ_{l≥r} d cs_l;  ddt_r = Σ_l Z_lr/dt_r + E_r/dt_r + A·d(dt_r·A);  dA = Σ dt_r·d(dt_r·A)
// Two launches on the default path (kPathGroup), every reduction in a fixed order (no float
// atomics: bit-identical run to run):
//   1. chunk_local_persist (b, h; S and R chains in separate CTAs where 2·B·H CTAs fit the GPU at
//      2 a SM): a CTA walks the chunks forward, each chunk's own state S_c = Σ_s e^{cs_end−cs_s}
//      dt_s x_s⊗B_s added to the decayed state in the product's accumulators (h_prev from h0), then
//      backward with the own state gradients R_c = Σ_l e^{cs_l} gy_l⊗C_l (dh_end from 0; what is
//      left is dh0) → scratch holds h_prev / dh_end per chunk. (chunk_local_split / _chain: one
//      chain hop per CTA, waiting on the previous chunk's CTA through flags; kept for A/B);
//   2. chunk_grad_bf (b, group, c): the formulas above as tensor-core products for each head of the
//      group in turn (B, C and C·Bᵀ once; the next head's state, x, gy and dt prefetched by cp.async);
//      dx, ddt stored per head, dB / dC summed over the heads in registers and stored once, dA per
//      (head, chunk) → scratch; then dA over batch and chunks.
// kPathGroupTf32 (the previous default) runs chunk_local (own states only), state_pass (the chains)
// and chunk_grad_group (TF32). The per-head paths (ssd_grad<P, N, kPathTc / kPathSimt>, kept for A/B
// and as fallbacks where the group tiles do not fit) run chunk_grad per (b, h, c) with per-head
// dB / dC partials in scratch and a 4th launch that sums them over the heads of each group.
// Products: the default path: bf16 hi/lo planes in shared memory, ldmatrix, mma.sync m16n8k16 bf16
// (fp32 operands carry 16 significant bits, ~2^-16 relative per product; see the bf16-plane
// section). The TF32 paths: mma.sync m16n8k8 TF32 with the 3xTF32 hi/lo split (fp32-accurate; bf16
// operands are exact in TF32 and skip their lo term); kPathSimt runs fp32 CUDA-core kernels instead
// (256 threads, 16 x 16 thread grid, register micro-tiles).
// H200, B4 T4096 H64 P64 G8 N128: 14.0 ms (CUDA cores) → 10.8 ms (tensor cores, per head) → 4.0 ms
// (group/TF32: chunk_local 0.89, state_pass 0.81, chunk_grad 2.32) → 2.36 ms (chunk_local_split 1.02
// with the state passing, chunk_grad_bf with the prefetch 1.32) → 1.93 ms (default: chunk_local_persist
// 0.59 — docs/PERF-NOTES.md).
// Smem: padded fp32 tiles (CUDA-core path: row length + 1, transposed reads are bank-conflict free;
// tensor-core path: + 4 / + 8, see the tc section).
// Layouts: token-major with row / batch strides (elements) for every per-token tensor; A [H],
// h0 / dh0 [B,H,P,N] fp32 contiguous. Element types are template parameters (float or bf16).
#pragma once

#include "strata/base.cuh"
#include "strata/bf16.cuh"

#include <algorithm>
#include <type_traits>

namespace strata {
namespace ssd_bwd {
// internal linkage: several generated kernel files of one project include this header
namespace {

// Per-token operand: base pointer (feature offset applied), row and batch strides in elements.
template <class T>
struct Tok {
  T* p = nullptr;
  long long row = 0, batch = 0;
};

template <class TGy, class TX, class TDt, class TB, class TC>
struct SsdGradParams {
  int batch = 0, seqlen = 0, nheads = 0, ngroups = 0;
  Tok<const TGy> gy;
  Tok<const TX> x;
  Tok<const TDt> dt;
  const float* A = nullptr;  // [H]
  Tok<const TB> B;
  Tok<const TC> C;
  const float* h0 = nullptr;  // [B,H,P,N], optional
  // outputs: nullptr = not requested
  Tok<TX> dx;
  Tok<TDt> ddt;
  float* dA = nullptr;  // [H]
  Tok<TB> dB;
  Tok<TC> dC;
  float* dh0 = nullptr;  // [B,H,P,N]
  void* scratch = nullptr;  // ssd_grad_scratch_bytes
};

namespace detail {

template <class T> STRATA_DEV float ldf(const T* p) { return static_cast<float>(*p); }
template <> STRATA_DEV float ldf<__nv_bfloat16>(const __nv_bfloat16* p) { return __bfloat162float(*p); }
template <class T> STRATA_DEV void stf(T* p, float v) { *p = static_cast<T>(v); }
template <> STRATA_DEV void stf<__nv_bfloat16>(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }

constexpr int kThreads = 256;
constexpr int kGrid = 16;  // 16 x 16 thread grid for the block GEMMs

// acc[i][j] += Σ_k a(row_i, k)·b(k, col_j) over k < K, rows ty + 16i (i < TM), cols tx + 16j.
template <int TM, int TN, int K, class FA, class FB>
STRATA_DEV void gemm_acc(float (&acc)[TM][TN], FA a, FB b) {
  const int tx = threadIdx.x % kGrid, ty = threadIdx.x / kGrid;
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    float av[TM], bv[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) av[i] = a(ty + kGrid * i, k);
#pragma unroll
    for (int j = 0; j < TN; ++j) bv[j] = b(k, tx + kGrid * j);
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}
template <int TM, int TN>
STRATA_DEV void zero(float (&acc)[TM][TN]) {
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
}

// Scratch (floats): dA partials of every chunk of the call, then, per sub-batch of sequences, the
// chunk states S, R, the chunk decays and (per-head paths only) the per-head dB / dC partials.
// Parts are 64-float aligned.
struct Scratch {
  float *S, *R, *decay, *dApart, *dBpart, *dCpart;
};
STRATA_HD size_t align64(size_t n) { return (n + 63) & ~size_t(63); }
// floats of the per-sub-batch part for `nb` sequences of T tokens (pointers set when base != nullptr)
// partials = false (the group path): no dB / dC partials (their pointers are set, to zero-size parts).
template <int L, int P, int N>
STRATA_HD size_t sub_floats(int nb, int T, int H, Scratch* s = nullptr, float* base = nullptr, bool partials = true) {
  const size_t nc = (size_t)nb * H * ((T + L - 1) / L);
  const size_t part = partials ? (size_t)nb * T * H * N : 0;
  const size_t sizes[5] = {nc * P * N, nc * P * N, nc, part, part};
  float** dst[5] = {s ? &s->S : nullptr, s ? &s->R : nullptr, s ? &s->decay : nullptr, s ? &s->dBpart : nullptr, s ? &s->dCpart : nullptr};
  size_t off = 0;
  for (int i = 0; i < 5; ++i) {
    if (s) *dst[i] = base + off;
    off += align64(sizes[i]);
  }
  return off;
}

// Shared chunk prologue: rows of chunk c into padded fp32 tiles, dt and the inclusive cumsum of dt·A.
template <int L, class T>
STRATA_DEV void load_tile(float* dst, int ld, int cols, const Tok<const T>& t, int b, int t0, int T_, int headOff) {
  for (int i = threadIdx.x; i < L * cols; i += kThreads) {
    const int l = i / cols, k = i % cols;
    const int tt = t0 + l;
    dst[l * ld + k] = tt < T_ ? ldf(t.p + b * t.batch + (long long)tt * t.row + headOff + k) : 0.f;
  }
}
template <int L, class TDt>
STRATA_DEV void load_dt_cs(float* sDt, float* sCs, const Tok<const TDt>& dt, float A, int b, int t0, int T_, int h) {
  for (int l = threadIdx.x; l < L; l += kThreads) {
    const int tt = t0 + l;
    sDt[l] = tt < T_ ? ldf(dt.p + b * dt.batch + (long long)tt * dt.row + h) : 0.f;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float run = 0.f;
    for (int l = 0; l < L; ++l) sCs[l] = run = run + sDt[l] * A;  // fixed order
  }
}

template <int L, int P, int N>
struct LocalSmem {
  static constexpr int ldP = P + 1, ldN = N + 1;
  static constexpr size_t kFloats = (size_t)2 * L * ldP + (size_t)2 * L * ldN + 4 * L;
};

// 1. the chunk's own state and own state gradient.
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads) chunk_local_kernel(const PR p, Scratch s) {
  using SM = LocalSmem<L, P, N>;
  extern __shared__ float smem[];
  float* sX = smem;
  float* sGy = sX + L * SM::ldP;
  float* sB = sGy + L * SM::ldP;
  float* sC = sB + L * SM::ldN;
  float* sDt = sC + L * SM::ldN;
  float* sCs = sDt + L;
  float* sW = sCs + L;
  float* sEc = sW + L;
  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, g = h / (H / p.ngroups);
  const int t0 = c * L;
  load_tile<L>(sX, SM::ldP, P, p.x, b, t0, T, h * P);
  load_tile<L>(sGy, SM::ldP, P, p.gy, b, t0, T, h * P);
  load_tile<L>(sB, SM::ldN, N, p.B, b, t0, T, g * N);
  load_tile<L>(sC, SM::ldN, N, p.C, b, t0, T, g * N);
  load_dt_cs<L>(sDt, sCs, p.dt, p.A[h], b, t0, T, h);
  __syncthreads();
  const float csEnd = sCs[L - 1];
  for (int l = threadIdx.x; l < L; l += kThreads) {
    sW[l] = expf(csEnd - sCs[l]) * sDt[l];
    sEc[l] = expf(sCs[l]);
  }
  __syncthreads();
  constexpr int TM = P / kGrid, TN = N / kGrid;
  float accS[TM][TN], accR[TM][TN];
  zero(accS);
  zero(accR);
  // S[p][n] = Σ_s x[s][p]·w_s·B[s][n];  R[p][n] = Σ_l gy[l][p]·e^{cs_l}·C[l][n]
  gemm_acc<TM, TN, L>(accS, [&](int pp, int k) { return sX[k * SM::ldP + pp] * sW[k]; }, [&](int k, int n) { return sB[k * SM::ldN + n]; });
  gemm_acc<TM, TN, L>(accR, [&](int pp, int k) { return sGy[k * SM::ldP + pp] * sEc[k]; }, [&](int k, int n) { return sC[k * SM::ldN + n]; });
  const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;
  float* S = s.S + chunkIdx * P * N;
  float* R = s.R + chunkIdx * P * N;
  const int tx = threadIdx.x % kGrid, ty = threadIdx.x / kGrid;
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int e = (ty + kGrid * i) * N + tx + kGrid * j;
      S[e] = accS[i][j];
      R[e] = accR[i][j];
    }
  if (threadIdx.x == 0) s.decay[chunkIdx] = expf(csEnd);
}

// 2. states entering each chunk (forward, from h) and state gradients leaving it (reverse, from 0),
// in place over one element's column of chunk values (stride floats apart); returns dh0. Both
// chains are sequential over chunks: kInFlight chunks' loads are issued before their dependent
// updates (the pass is latency-bound otherwise). Host-callable for tests/kernels/scan_grad_host.cu.
constexpr int kInFlight = 16;  // 16 over 8: state_pass 0.99 → 0.80 ms at B4 T4096 H64 (H200, same arithmetic)
template <int kIF = kInFlight>
STRATA_HD float pass_chunks(float* S, float* R, const float* decay, int nc, size_t stride, float h) {
  constexpr int kInFlight = kIF;
  float g = 0.f;
  for (int c0 = 0; c0 < nc; c0 += kInFlight) {
    float locS[kInFlight], decS[kInFlight], locR[kInFlight], decR[kInFlight];
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) {
      const int cf = c0 + k, cr = nc - 1 - cf;
      if (cf < nc) {
        locS[k] = S[cf * stride];
        decS[k] = decay[cf];
        locR[k] = R[cr * stride];
        decR[k] = decay[cr];
      }
    }
#pragma unroll
    for (int k = 0; k < kInFlight; ++k) {
      const int cf = c0 + k, cr = nc - 1 - cf;
      if (cf < nc) {
        S[cf * stride] = h;
        h = decS[k] * h + locS[k];
        R[cr * stride] = g;
        g = decR[k] * g + locR[k];
      }
    }
  }
  return g;
}

template <int P, int N, class PR, int kIF = kInFlight>
__global__ void __launch_bounds__(kThreads) state_pass_kernel(const PR p, Scratch s, int nc) {
  const int bh = blockIdx.y;  // b * H + h
  const int e = blockIdx.x * kThreads + threadIdx.x;
  if (e >= P * N) return;
  const size_t base = (size_t)bh * nc;
  const float h = p.h0 ? p.h0[(size_t)bh * P * N + e] : 0.f;
  const float g = pass_chunks<kIF>(s.S + base * P * N + e, s.R + base * P * N + e, s.decay + base, nc, (size_t)P * N, h);
  if (p.dh0) p.dh0[(size_t)bh * P * N + e] = g;
}

template <int L, int P, int N>
struct GradSmem {
  static constexpr int ldP = P + 1, ldN = N + 1, ldL = L + 1;
  // x, gy | B, C | state | W, M, Z | dt, cs, e^{cs_end−cs}, rowZ, colZ, F, Y, dcs | red[L][16] | e0[256]
  static constexpr size_t kFloats = (size_t)2 * L * ldP + (size_t)2 * L * ldN + (size_t)P * ldN + (size_t)3 * L * ldL +
                                    8 * L + L * kGrid + kThreads;
  static constexpr size_t kBytes = kFloats * sizeof(float);
};

// chunk_grad's shared memory, carved the same way on both paths (leading dimensions from SM):
// x, gy | B, C | state gradient | W (or Wᵀ), M, Z | dt, cs, e^{cs_end−cs}, rowZ, colZ, F, Y, dcs |
// row partials [L][kGrid] | E0 partials [kThreads].
template <int L, int P, int N, class SM>
struct GradTiles {
  float *X, *Gy, *B, *C, *St, *W, *M, *Z, *Dt, *Cs, *Ee, *RowZ, *ColZ, *F, *Y, *Dcs, *Red, *E0;
  __device__ explicit GradTiles(float* smem)
      : X(smem), Gy(X + L * SM::ldP), B(Gy + L * SM::ldP), C(B + L * SM::ldN), St(C + L * SM::ldN), W(St + P * SM::ldN), M(W + L * SM::ldL),
        Z(M + L * SM::ldL), Dt(Z + L * SM::ldL), Cs(Dt + L), Ee(Cs + L), RowZ(Ee + L), ColZ(RowZ + L), F(ColZ + L), Y(F + L), Dcs(Y + L), Red(Dcs + L),
        E0(Red + L * kGrid) {}
};

// The end of chunk_grad, both paths: Y_l from the per-row partials (kWidth per row, summed in a
// fixed order), then one thread's d cs_l and the reverse cumsum d(dt_l·A) = Σ_{l' ≥ l} d cs_l'
// (the chunk's dA partial), then ddt. Called by every thread after a barrier.
template <int L, int kWidth, class PR>
STRATA_DEV void chunk_grad_tail(const PR& p, const Scratch& s, const float* sRed, const float* sE0, const float* sDt, const float* sF, const float* sRowZ,
                                const float* sColZ, float* sY, float* sDcs, float csEnd, float A, size_t chunkIdx, int b, int h, int t0, int T) {
  const int tid = threadIdx.x;
  if (tid < L) {
    float y = 0.f;
    for (int k = 0; k < kWidth; ++k) y += sRed[tid * kWidth + k];
    sY[tid] = y;
  }
  __syncthreads();
  if (tid == 0) {
    float e0 = 0.f;
    for (int k = 0; k < kThreads; ++k) e0 += sE0[k];
    float sumE = 0.f;
    for (int l = 0; l < L; ++l) sumE = fmaf(sDt[l], sF[l], sumE);
    const float endTerm = expf(csEnd) * e0 + sumE;
    float run = 0.f, dA = 0.f;
    for (int l = L - 1; l >= 0; --l) {
      float dcs = sRowZ[l] - sDt[l] * sColZ[l] + sY[l] - sDt[l] * sF[l];
      if (l == L - 1) dcs += endTerm;
      run += dcs;
      sDcs[l] = run;
      dA = fmaf(sDt[l], run, dA);
    }
    s.dApart[chunkIdx] = dA;
  }
  __syncthreads();
  if (p.ddt.p && tid < L && t0 + tid < T) {
    const float v = sColZ[tid] + sF[tid] + A * sDcs[tid];
    stf(p.ddt.p + b * p.ddt.batch + (long long)(t0 + tid) * p.ddt.row + h, v);
  }
}

// 3. every gradient of one chunk.
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads) chunk_grad_kernel(const PR p, Scratch s) {
  using SM = GradSmem<L, P, N>;
  constexpr int ldP = SM::ldP, ldN = SM::ldN, ldL = SM::ldL;
  extern __shared__ float smem[];
  const GradTiles<L, P, N, SM> tiles(smem);
  float *sX = tiles.X, *sGy = tiles.Gy, *sB = tiles.B, *sC = tiles.C, *sSt = tiles.St, *sW = tiles.W, *sM = tiles.M, *sZ = tiles.Z;
  float *sDt = tiles.Dt, *sCs = tiles.Cs, *sEe = tiles.Ee, *sRowZ = tiles.RowZ, *sColZ = tiles.ColZ, *sF = tiles.F, *sY = tiles.Y, *sDcs = tiles.Dcs;
  float *sRed = tiles.Red, *sE0 = tiles.E0;

  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, g = h / (H / p.ngroups);
  const int t0 = c * L;
  const int tid = threadIdx.x, tx = tid % kGrid, ty = tid / kGrid;
  const float A = p.A[h];
  const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;

  load_tile<L>(sX, ldP, P, p.x, b, t0, T, h * P);
  load_tile<L>(sGy, ldP, P, p.gy, b, t0, T, h * P);
  load_tile<L>(sB, ldN, N, p.B, b, t0, T, g * N);
  load_tile<L>(sC, ldN, N, p.C, b, t0, T, g * N);
  {  // dh_end → sSt
    const float* R = s.R + chunkIdx * P * N;
    for (int i = tid; i < P * N; i += kThreads) sSt[(i / N) * ldN + i % N] = R[i];
  }
  load_dt_cs<L>(sDt, sCs, p.dt, A, b, t0, T, h);
  __syncthreads();
  const float csEnd = sCs[L - 1];
  for (int l = tid; l < L; l += kThreads) sEe[l] = expf(csEnd - sCs[l]);

  {  // W = (C Bᵀ)·decay, M = (gy xᵀ)·decay, Z/dt = M·(C Bᵀ)
    constexpr int TL = L / kGrid;
    float cb[TL][TL], gx[TL][TL];
    zero(cb);
    zero(gx);
    gemm_acc<TL, TL, N>(cb, [&](int l, int k) { return sC[l * ldN + k]; }, [&](int k, int ss) { return sB[ss * ldN + k]; });
    gemm_acc<TL, TL, P>(gx, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int ss) { return sX[ss * ldP + k]; });
#pragma unroll
    for (int i = 0; i < TL; ++i)
#pragma unroll
      for (int j = 0; j < TL; ++j) {
        const int l = ty + kGrid * i, ss = tx + kGrid * j;
        const float dec = ss <= l ? expf(sCs[l] - sCs[ss]) : 0.f;
        sW[l * ldL + ss] = cb[i][j] * dec;
        sM[l * ldL + ss] = gx[i][j] * dec;
        sZ[l * ldL + ss] = gx[i][j] * cb[i][j] * dec;
      }
  }
  __syncthreads();
  if (tid < L) {  // rowZ_l = Σ_s dt_s·Zd_ls
    float r = 0.f;
    for (int ss = 0; ss <= tid; ++ss) r = fmaf(sDt[ss], sZ[tid * ldL + ss], r);
    sRowZ[tid] = r;
  } else if (tid < 2 * L) {  // colZ_s = Σ_l Zd_ls
    const int ss = tid - L;
    float r = 0.f;
    for (int l = ss; l < L; ++l) r += sZ[l * ldL + ss];
    sColZ[ss] = r;
  }

  // dx (L x P)
  {
    constexpr int TM = L / kGrid, TN = P / kGrid;
    float acc[TM][TN];
    zero(acc);
    gemm_acc<TM, TN, N>(acc, [&](int ss, int k) { return sB[ss * ldN + k]; }, [&](int k, int pp) { return sSt[pp * ldN + k]; });
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] *= sEe[ty + kGrid * i];
    gemm_acc<TM, TN, L>(acc, [&](int ss, int k) { return sW[k * ldL + ss]; }, [&](int k, int pp) { return sGy[k * ldP + pp]; });
    if (p.dx.p) {
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int ss = ty + kGrid * i, tt = t0 + ss;
        if (tt >= T) continue;
        auto* dst = p.dx.p + b * p.dx.batch + (long long)tt * p.dx.row + h * P;
#pragma unroll
        for (int j = 0; j < TN; ++j) stf(dst + tx + kGrid * j, acc[i][j] * sDt[ss]);
      }
    }
  }
  // dB (L x N): U = e^{cs_end−cs_s}·x_sᵀ dh_end, F_s = B_s·U_s, then + Σ_l M_ls C_l, times dt_s
  {
    constexpr int TM = L / kGrid, TN = N / kGrid;
    float acc[TM][TN];
    zero(acc);
    gemm_acc<TM, TN, P>(acc, [&](int ss, int k) { return sX[ss * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int ss = ty + kGrid * i;
      float f = 0.f;
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        acc[i][j] *= sEe[ss];
        f = fmaf(sB[ss * ldN + tx + kGrid * j], acc[i][j], f);
      }
      sRed[ss * kGrid + tx] = f;
    }
    gemm_acc<TM, TN, L>(acc, [&](int ss, int k) { return sM[k * ldL + ss]; }, [&](int k, int n) { return sC[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int ss = ty + kGrid * i, tt = t0 + ss;
      if (tt >= T) continue;
      float* dst = s.dBpart + (((size_t)b * T + tt) * H + h) * N;
#pragma unroll
      for (int j = 0; j < TN; ++j) dst[tx + kGrid * j] = acc[i][j] * sDt[ss];
    }
  }
  __syncthreads();
  if (tid < L) {
    float f = 0.f;
    for (int k = 0; k < kGrid; ++k) f += sRed[tid * kGrid + k];
    sF[tid] = f;
  }
  {  // E0 partials while h_prev replaces dh_end in sSt
    const float* S = s.S + chunkIdx * P * N;
    float e0 = 0.f;
    for (int i = tid; i < P * N; i += kThreads) {
      const int e = (i / N) * ldN + i % N;
      const float v = S[i];
      e0 = fmaf(sSt[e], v, e0);
      sSt[e] = v;
    }
    sE0[tid] = e0;
  }
  __syncthreads();
  // dC (L x N): V = e^{cs_l}·gy_lᵀ h_prev, Y_l = C_l·V_l, then + Σ_s M_ls dt_s B_s
  {
    constexpr int TM = L / kGrid, TN = N / kGrid;
    float acc[TM][TN];
    zero(acc);
    gemm_acc<TM, TN, P>(acc, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int l = ty + kGrid * i;
      const float el = expf(sCs[l]);
      float y = 0.f;
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        acc[i][j] *= el;
        y = fmaf(sC[l * ldN + tx + kGrid * j], acc[i][j], y);
      }
      sRed[l * kGrid + tx] = y;
    }
    gemm_acc<TM, TN, L>(acc, [&](int l, int k) { return sM[l * ldL + k] * sDt[k]; }, [&](int k, int n) { return sB[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int l = ty + kGrid * i, tt = t0 + l;
      if (tt >= T) continue;
      float* dst = s.dCpart + (((size_t)b * T + tt) * H + h) * N;
#pragma unroll
      for (int j = 0; j < TN; ++j) dst[tx + kGrid * j] = acc[i][j];
    }
  }
  __syncthreads();
  chunk_grad_tail<L, kGrid>(p, s, sRed, sE0, sDt, sF, sRowZ, sColZ, sY, sDcs, csEnd, A, chunkIdx, b, h, t0, T);
}

// ---- tensor-core path: the same chunk kernels with every product on mma.sync m16n8k8 TF32 ------
// 3xTF32: an fp32 operand v splits into hi = tf32(v) and lo = tf32(v − hi); a·b ≈ hi·hi + hi·lo +
// lo·hi with fp32 accumulation (relative error ~2^-21, as accurate as the fp32 CUDA-core GEMMs).
// An operand read straight from a bf16 tensor is exact in TF32 (8-bit mantissa ⊂ 10-bit): its lo
// part is zero and its product term is skipped (bf16·bf16 products take one mma). The 8 warps tile
// each M x Nn product as WM x WN warps of MT x NT (16 x 8) mma tiles. Smem rows are padded to
// ≡ 4 (mod 32) floats in chunk_grad (fragment reads of row-major operands are conflict-free) and
// ≡ 8 in chunk_local (all its reads run along k).
STRATA_DEV uint32_t tf32_bits(float f) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(f));
  return r;
}
STRATA_DEV void mma_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <bool kSplit>
STRATA_DEV void tf32_split(float v, uint32_t& hi, uint32_t& lo) {
  hi = tf32_bits(v);
  lo = kSplit ? tf32_bits(v - __uint_as_float(hi)) : 0u;
}

// Warp tiling of an M x Nn product over the 8 warps (WN = 0: no tiling fits; the SIMT path runs).
template <int M, int Nn>
struct TcTile {
  static constexpr int WN = (M % 32 == 0 && Nn % 32 == 0) ? 4 : (M % 64 == 0 && Nn % 16 == 0) ? 2 : (M % 16 == 0 && Nn % 64 == 0) ? 8 : 0;
  static constexpr bool ok = WN != 0;
  static constexpr int WM = ok ? kThreads / 32 / WN : 1;
  static constexpr int MT = ok ? M / (16 * WM) : 1, NT = ok ? Nn / (8 * WN) : 1;
  using Acc = float[MT][NT][4];
  // accumulator element (i, j, q) of this thread: row / column in the product
  STRATA_DEV static int row(int i, int q) { return (int)(threadIdx.x / 32 / WN) * MT * 16 + 16 * i + (int)(threadIdx.x % 32 / 4) + (q & 2 ? 8 : 0); }
  STRATA_DEV static int col(int j, int q) { return (int)(threadIdx.x / 32 % WN) * NT * 8 + 8 * j + 2 * (int)(threadIdx.x % 4) + (q & 1); }
  STRATA_DEV static int wn() { return (int)(threadIdx.x / 32 % WN); }
};
// acc row r *= f(r) (r: the fragment element's row in the tile).
template <class TT, class F>
STRATA_DEV void tc_scale_rows(typename TT::Acc& acc, F f) {
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int j = 0; j < TT::NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] *= f(TT::row(i, q));
}

template <class TT>
STRATA_DEV void tc_zero(typename TT::Acc& acc) {
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int j = 0; j < TT::NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
}
// acc += Σ_k a(row, k)·b(k, col) over k < K (K % 8 == 0); kSplitA / kSplitB: that operand is not
// exact in TF32 (its lo part is multiplied in too).
template <class TT, int K, bool kSplitA, bool kSplitB, class FA, class FB>
STRATA_DEV void tc_gemm(typename TT::Acc& acc, FA a, FB b) {
  static_assert(K % 8 == 0, "K must be a multiple of 8");
  const int lane = threadIdx.x % 32, gq = lane / 4, tq = lane % 4;
  const int r0 = (int)(threadIdx.x / 32 / TT::WN) * TT::MT * 16 + gq, c0 = TT::wn() * TT::NT * 8 + gq;
#pragma unroll 2
  for (int k0 = 0; k0 < K; k0 += 8) {
    uint32_t ah[TT::MT][4], al[TT::MT][4], bh[TT::NT][2], bl[TT::NT][2];
#pragma unroll
    for (int i = 0; i < TT::MT; ++i) {
      const int r = r0 + 16 * i;
      tf32_split<kSplitA>(a(r, k0 + tq), ah[i][0], al[i][0]);
      tf32_split<kSplitA>(a(r + 8, k0 + tq), ah[i][1], al[i][1]);
      tf32_split<kSplitA>(a(r, k0 + tq + 4), ah[i][2], al[i][2]);
      tf32_split<kSplitA>(a(r + 8, k0 + tq + 4), ah[i][3], al[i][3]);
    }
#pragma unroll
    for (int j = 0; j < TT::NT; ++j) {
      const int cc = c0 + 8 * j;
      tf32_split<kSplitB>(b(k0 + tq, cc), bh[j][0], bl[j][0]);
      tf32_split<kSplitB>(b(k0 + tq + 4, cc), bh[j][1], bl[j][1]);
    }
#pragma unroll
    for (int i = 0; i < TT::MT; ++i)
#pragma unroll
      for (int j = 0; j < TT::NT; ++j) {
        if (kSplitA) mma_tf32(acc[i][j], al[i], bh[j][0], bh[j][1]);
        if (kSplitB) mma_tf32(acc[i][j], ah[i], bl[j][0], bl[j][1]);
        mma_tf32(acc[i][j], ah[i], bh[j][0], bh[j][1]);
      }
  }
}
// Row sums of this thread's part of a product, reduced over the 4 lanes of a row (fixed butterfly)
// and written per warp column: red[row * WN + wn] (sum over wn later, in order).
template <class TT, class F>
STRATA_DEV void tc_row_partials(const typename TT::Acc& acc, F term, float* red) {
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = TT::row(i, 2 * hh);
      float f = 0.f;
#pragma unroll
      for (int j = 0; j < TT::NT; ++j)
#pragma unroll
        for (int q = 0; q < 2; ++q) f = fmaf(term(r, TT::col(j, q)), acc[i][j][2 * hh + q], f);
      f += __shfl_xor_sync(0xffffffffu, f, 1);
      f += __shfl_xor_sync(0xffffffffu, f, 2);
      if (threadIdx.x % 4 == 0) red[r * TT::WN + TT::wn()] = f;
    }
}
template <class T> struct Bf16Tok : std::false_type {};
template <> struct Bf16Tok<Tok<const __nv_bfloat16>> : std::true_type {};

template <int L, int P, int N>
struct LocalSmemTc {
  static constexpr int ldP = P + 8, ldN = N + 8;
  static constexpr size_t kFloats = (size_t)2 * L * ldP + (size_t)2 * L * ldN + 4 * L;
  // the carving of the chunk_local kernels' shared memory: x, gy [L][ldP] | B, C [L][ldN] | dt, cs, w, e^{cs} [L]
  struct Tiles {
    float *X, *Gy, *B, *C, *Dt, *Cs, *W, *Ec;
    STRATA_DEV explicit Tiles(float* base)
        : X(base), Gy(X + L * ldP), B(Gy + L * ldP), C(B + L * ldN), Dt(C + L * ldN), Cs(Dt + L), W(Cs + L), Ec(W + L) {}
  };
};

// The tail both chunk_local kernels share once their tiles, dt and cumsum are in shared memory:
// the chunk's own state S[p][n] = Σ_s x[s][p]·w_s·B[s][n] and own state gradient
// R[p][n] = Σ_l gy[l][p]·e^{cs_l}·C[l][n] on tensor cores (one accumulator live), and its decay.
template <int L, int P, int N, class PR>
__device__ __forceinline__ void chunk_local_products(const Scratch& s, const float* sX, const float* sGy, const float* sB, const float* sC,
                                                     const float* sDt, const float* sCs, float* sW, float* sEc, int H, int b, int h, int c) {
  constexpr int ldP = LocalSmemTc<L, P, N>::ldP, ldN = LocalSmemTc<L, P, N>::ldN;
  const float csEnd = sCs[L - 1];
  for (int l = threadIdx.x; l < L; l += kThreads) {
    sW[l] = expf(csEnd - sCs[l]) * sDt[l];
    sEc[l] = expf(sCs[l]);
  }
  __syncthreads();
  using TT = TcTile<P, N>;
  constexpr bool eB = Bf16Tok<decltype(PR::B)>::value, eC = Bf16Tok<decltype(PR::C)>::value;
  const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;
  const auto store = [&](const typename TT::Acc& acc, float* dst) {
#pragma unroll
    for (int i = 0; i < TT::MT; ++i)
#pragma unroll
      for (int j = 0; j < TT::NT; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          *reinterpret_cast<float2*>(dst + TT::row(i, 2 * hh) * N + TT::col(j, 0)) = make_float2(acc[i][j][2 * hh], acc[i][j][2 * hh + 1]);
  };
  typename TT::Acc acc;
  tc_zero<TT>(acc);
  tc_gemm<TT, L, true, !eB>(acc, [&](int pp, int k) { return sX[k * ldP + pp] * sW[k]; }, [&](int k, int n) { return sB[k * ldN + n]; });
  store(acc, s.S + chunkIdx * P * N);
  tc_zero<TT>(acc);
  tc_gemm<TT, L, true, !eC>(acc, [&](int pp, int k) { return sGy[k * ldP + pp] * sEc[k]; }, [&](int k, int n) { return sC[k * ldN + n]; });
  store(acc, s.R + chunkIdx * P * N);
  if (threadIdx.x == 0) s.decay[chunkIdx] = expf(csEnd);
}

// 1. (tensor cores) the chunk's own state and own state gradient.
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 2) chunk_local_tc_kernel(const PR p, Scratch s) {
  using SM = LocalSmemTc<L, P, N>;
  constexpr int ldP = SM::ldP, ldN = SM::ldN;
  extern __shared__ float smem[];
  const typename SM::Tiles t(smem);
  float *sX = t.X, *sGy = t.Gy, *sB = t.B, *sC = t.C, *sDt = t.Dt, *sCs = t.Cs, *sW = t.W, *sEc = t.Ec;
  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, g = h / (H / p.ngroups);
  const int t0 = c * L;
  load_tile<L>(sX, ldP, P, p.x, b, t0, T, h * P);
  load_tile<L>(sGy, ldP, P, p.gy, b, t0, T, h * P);
  load_tile<L>(sB, ldN, N, p.B, b, t0, T, g * N);
  load_tile<L>(sC, ldN, N, p.C, b, t0, T, g * N);
  load_dt_cs<L>(sDt, sCs, p.dt, p.A[h], b, t0, T, h);
  __syncthreads();
  chunk_local_products<L, P, N, PR>(s, sX, sGy, sB, sC, sDt, sCs, sW, sEc, H, b, h, c);
}

template <int L, int P, int N>
struct GradSmemTc {
  static constexpr int ldP = P + 4, ldN = N + 4, ldL = L + 4;
  // x, gy | B, C | state | Wᵀ, M, Z | dt, cs, e^{cs_end−cs}, rowZ, colZ, F, Y, dcs | red[L][16] | e0[256]
  static constexpr size_t kFloats = (size_t)2 * L * ldP + (size_t)2 * L * ldN + (size_t)P * ldN + (size_t)3 * L * ldL +
                                    8 * L + L * kGrid + kThreads;
  static constexpr size_t kBytes = kFloats * sizeof(float);
};
template <int L, int P, int N>
constexpr bool tc_fits() {
  return TcTile<P, N>::ok && TcTile<L, L>::ok && TcTile<L, P>::ok && TcTile<L, N>::ok && P % 8 == 0 && N % 8 == 0 &&
         TcTile<L, N>::WN <= kGrid && TcTile<L, P>::WN <= kGrid && GradSmemTc<L, P, N>::kBytes <= 227 * 1024;
}

// dx (L x P) of one chunk and head: (B·dh_endᵀ)·e^{cs_end−cs_s} + Wᵀ·gy on tensor cores, times
// dt_s, stored for the rows t0 + s < T (both chunk_grad kernels).
template <int L, int P, int N, int ldP, int ldN, int ldL, bool eB, bool eGy, class DX>
STRATA_DEV void chunk_dx(const DX& dx, const float* sB, const float* sSt, const float* sEe, const float* sWt, const float* sGy, const float* sDt,
                         int b, int h, int t0, int T) {
  using TP = TcTile<L, P>;
  typename TP::Acc acc;
  tc_zero<TP>(acc);
  tc_gemm<TP, N, !eB, true>(acc, [&](int ss, int k) { return sB[ss * ldN + k]; }, [&](int k, int pp) { return sSt[pp * ldN + k]; });
  tc_scale_rows<TP>(acc, [&](int r) { return sEe[r]; });
  tc_gemm<TP, L, true, !eGy>(acc, [&](int ss, int k) { return sWt[ss * ldL + k]; }, [&](int k, int pp) { return sGy[k * ldP + pp]; });
  if (!dx.p) return;
#pragma unroll
  for (int i = 0; i < TP::MT; ++i)
#pragma unroll
    for (int j = 0; j < TP::NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int ss = TP::row(i, q), tt = t0 + ss;
        if (tt >= T) continue;
        stf(dx.p + b * dx.batch + (long long)tt * dx.row + h * P + TP::col(j, q), acc[i][j][q] * sDt[ss]);
      }
}

// 3. (tensor cores) every gradient of one chunk: chunk_grad_kernel's formulas, same reduction orders
// for the per-row / per-chunk sums (the products' k order is the mma's).
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads) chunk_grad_tc_kernel(const PR p, Scratch s) {
  using SM = GradSmemTc<L, P, N>;
  constexpr int ldP = SM::ldP, ldN = SM::ldN, ldL = SM::ldL;
  constexpr bool eGy = Bf16Tok<decltype(PR::gy)>::value, eX = Bf16Tok<decltype(PR::x)>::value;
  constexpr bool eB = Bf16Tok<decltype(PR::B)>::value, eC = Bf16Tok<decltype(PR::C)>::value;
  extern __shared__ float smem[];
  const GradTiles<L, P, N, SM> tiles(smem);
  float *sX = tiles.X, *sGy = tiles.Gy, *sB = tiles.B, *sC = tiles.C, *sSt = tiles.St, *sWt = tiles.W, *sM = tiles.M, *sZ = tiles.Z;  // sWt: W transposed, [s][l]
  float *sDt = tiles.Dt, *sCs = tiles.Cs, *sEe = tiles.Ee, *sRowZ = tiles.RowZ, *sColZ = tiles.ColZ, *sF = tiles.F, *sY = tiles.Y, *sDcs = tiles.Dcs;
  float *sRed = tiles.Red, *sE0 = tiles.E0;

  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, g = h / (H / p.ngroups);
  const int t0 = c * L;
  const int tid = threadIdx.x;
  const float A = p.A[h];
  const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;

  load_tile<L>(sX, ldP, P, p.x, b, t0, T, h * P);
  load_tile<L>(sGy, ldP, P, p.gy, b, t0, T, h * P);
  load_tile<L>(sB, ldN, N, p.B, b, t0, T, g * N);
  load_tile<L>(sC, ldN, N, p.C, b, t0, T, g * N);
  {  // dh_end → sSt
    const float4* R = reinterpret_cast<const float4*>(s.R + chunkIdx * P * N);
    for (int i = tid; i < P * N / 4; i += kThreads) {
      const float4 v = R[i];
      float* d = sSt + (4 * i / N) * ldN + 4 * i % N;
      d[0] = v.x; d[1] = v.y; d[2] = v.z; d[3] = v.w;
    }
  }
  load_dt_cs<L>(sDt, sCs, p.dt, A, b, t0, T, h);
  __syncthreads();
  const float csEnd = sCs[L - 1];
  for (int l = tid; l < L; l += kThreads) sEe[l] = expf(csEnd - sCs[l]);

  {  // W = (C Bᵀ)·decay, M = (gy xᵀ)·decay, Z/dt = M·(C Bᵀ)
    using TL = TcTile<L, L>;
    typename TL::Acc cb, gx;
    tc_zero<TL>(cb);
    tc_zero<TL>(gx);
    tc_gemm<TL, N, !eC, !eB>(cb, [&](int l, int k) { return sC[l * ldN + k]; }, [&](int k, int ss) { return sB[ss * ldN + k]; });
    tc_gemm<TL, P, !eGy, !eX>(gx, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int ss) { return sX[ss * ldP + k]; });
#pragma unroll
    for (int i = 0; i < TL::MT; ++i)
#pragma unroll
      for (int j = 0; j < TL::NT; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int l = TL::row(i, q), ss = TL::col(j, q);
          const float dec = ss <= l ? expf(sCs[l] - sCs[ss]) : 0.f;
          sWt[ss * ldL + l] = cb[i][j][q] * dec;
          sM[l * ldL + ss] = gx[i][j][q] * dec;
          sZ[l * ldL + ss] = gx[i][j][q] * cb[i][j][q] * dec;
        }
  }
  __syncthreads();
  if (tid < L) {  // rowZ_l = Σ_s dt_s·Zd_ls
    float r = 0.f;
    for (int ss = 0; ss <= tid; ++ss) r = fmaf(sDt[ss], sZ[tid * ldL + ss], r);
    sRowZ[tid] = r;
  } else if (tid < 2 * L) {  // colZ_s = Σ_l Zd_ls
    const int ss = tid - L;
    float r = 0.f;
    for (int l = ss; l < L; ++l) r += sZ[l * ldL + ss];
    sColZ[ss] = r;
  }

  // dx (L x P)
  chunk_dx<L, P, N, ldP, ldN, ldL, eB, eGy>(p.dx, sB, sSt, sEe, sWt, sGy, sDt, b, h, t0, T);
  using TN = TcTile<L, N>;
  // dB (L x N): U = e^{cs_end−cs_s}·x_sᵀ dh_end, F_s = B_s·U_s, then + Σ_l M_ls C_l, times dt_s
  {
    typename TN::Acc acc;
    tc_zero<TN>(acc);
    tc_gemm<TN, P, !eX, true>(acc, [&](int ss, int k) { return sX[ss * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
    tc_scale_rows<TN>(acc, [&](int r) { return sEe[r]; });
    tc_row_partials<TN>(acc, [&](int ss, int n) { return sB[ss * ldN + n]; }, sRed);
    tc_gemm<TN, L, true, !eC>(acc, [&](int ss, int k) { return sM[k * ldL + ss]; }, [&](int k, int n) { return sC[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TN::MT; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int ss = TN::row(i, 2 * hh), tt = t0 + ss;
        if (tt >= T) continue;
        float* dst = s.dBpart + (((size_t)b * T + tt) * H + h) * N;
        const float d = sDt[ss];
#pragma unroll
        for (int j = 0; j < TN::NT; ++j)
          *reinterpret_cast<float2*>(dst + TN::col(j, 0)) = make_float2(acc[i][j][2 * hh] * d, acc[i][j][2 * hh + 1] * d);
      }
  }
  __syncthreads();
  if (tid < L) {
    float f = 0.f;
    for (int k = 0; k < TN::WN; ++k) f += sRed[tid * TN::WN + k];
    sF[tid] = f;
  }
  {  // E0 partials while h_prev replaces dh_end in sSt
    const float4* S = reinterpret_cast<const float4*>(s.S + chunkIdx * P * N);
    float e0 = 0.f;
    for (int i = tid; i < P * N / 4; i += kThreads) {
      float* d = sSt + (4 * i / N) * ldN + 4 * i % N;
      const float4 v = S[i];
      e0 = fmaf(d[0], v.x, e0); e0 = fmaf(d[1], v.y, e0); e0 = fmaf(d[2], v.z, e0); e0 = fmaf(d[3], v.w, e0);
      d[0] = v.x; d[1] = v.y; d[2] = v.z; d[3] = v.w;
    }
    sE0[tid] = e0;
  }
  __syncthreads();
  // dC (L x N): V = e^{cs_l}·gy_lᵀ h_prev, Y_l = C_l·V_l, then + Σ_s M_ls dt_s B_s
  {
    typename TN::Acc acc;
    tc_zero<TN>(acc);
    tc_gemm<TN, P, !eGy, true>(acc, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
    tc_scale_rows<TN>(acc, [&](int r) { return expf(sCs[r]); });
    tc_row_partials<TN>(acc, [&](int l, int n) { return sC[l * ldN + n]; }, sRed);
    tc_gemm<TN, L, true, !eB>(acc, [&](int l, int k) { return sM[l * ldL + k] * sDt[k]; }, [&](int k, int n) { return sB[k * ldN + n]; });
#pragma unroll
    for (int i = 0; i < TN::MT; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int l = TN::row(i, 2 * hh), tt = t0 + l;
        if (tt >= T) continue;
        float* dst = s.dCpart + (((size_t)b * T + tt) * H + h) * N;
#pragma unroll
        for (int j = 0; j < TN::NT; ++j) *reinterpret_cast<float2*>(dst + TN::col(j, 0)) = make_float2(acc[i][j][2 * hh], acc[i][j][2 * hh + 1]);
      }
  }
  __syncthreads();
  chunk_grad_tail<L, TN::WN>(p, s, sRed, sE0, sDt, sF, sRowZ, sColZ, sY, sDcs, csEnd, A, chunkIdx, b, h, t0, T);
}

// ---- group path (the default): vectorized loads, warp-parallel scans, one CTA per group ---------
// chunk_grad_group_kernel (b, group g, chunk c) loops over the H/G heads of the group: B, C and
// C·Bᵀ are loaded / computed once, dB and dC are summed over the heads in registers (heads in
// order: deterministic) and stored once in their own dtype — no per-head partial scratch and no
// finish pass. Tiles load with 16-byte vectors, every load of a phase in flight before the first
// shared-memory store (element-wise where a tensor is not 16-byte aligned); the chunk cumsum, the
// d cs reverse cumsum and the per-chunk sums run on one warp (shuffle scans, fixed trees);
// rowZ / colZ reduce from the product's fragments (no Z tile, no 64-long loops).

// whether a per-token tensor can be read in 16-byte vectors (its head offsets are multiples of 16
// elements: P, N % 16 == 0)
template <class T>
STRATA_DEV bool vec16_ok(const Tok<const T>& t) {
  return ((reinterpret_cast<uintptr_t>(t.p) | (uintptr_t)(t.row * (long long)sizeof(T)) | (uintptr_t)(t.batch * (long long)sizeof(T))) & 15) == 0;
}
// An L x COLS tile of a per-token tensor in registers (16-byte vectors, rows past T zero), then
// stored as fp32 into a padded shared tile (ld % 4 == 0).
template <int L, int COLS, class T>
struct TileRegs {
  static_assert(std::is_same<T, float>::value || std::is_same<T, __nv_bfloat16>::value, "float or bf16 tiles");
  static constexpr int kVecElems = 16 / (int)sizeof(T), kRowVecs = COLS / kVecElems, kVecs = L * kRowVecs;
  static constexpr int kPer = (kVecs + kThreads - 1) / kThreads;
  static_assert(COLS % kVecElems == 0, "tile rows are whole vectors");
  uint4 v[kPer];
  STRATA_DEV static bool live(int k) { return kVecs % kThreads == 0 || (int)threadIdx.x + k * kThreads < kVecs; }
  STRATA_DEV void load(const Tok<const T>& t, int b, int t0, int T_, int off) {
    const T* base = t.p + b * t.batch + off;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = threadIdx.x + k * kThreads, l = i / kRowVecs, cv = i % kRowVecs;
      v[k] = make_uint4(0u, 0u, 0u, 0u);
      if (live(k) && t0 + l < T_) v[k] = __ldg(reinterpret_cast<const uint4*>(base + (long long)(t0 + l) * t.row) + cv);
    }
  }
  STRATA_DEV void store(float* dst, int ld) const {
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      if (!live(k)) continue;
      const int i = threadIdx.x + k * kThreads, l = i / kRowVecs, cv = i % kRowVecs;
      float4* d = reinterpret_cast<float4*>(dst + l * ld + cv * kVecElems);
      if constexpr (sizeof(T) == 2) {  // bf16 → fp32 exactly: the bf16 bits are the top half of the float
        const uint4 w = v[k];
        d[0] = make_float4(__uint_as_float(w.x << 16), __uint_as_float(w.x & 0xffff0000u), __uint_as_float(w.y << 16), __uint_as_float(w.y & 0xffff0000u));
        d[1] = make_float4(__uint_as_float(w.z << 16), __uint_as_float(w.z & 0xffff0000u), __uint_as_float(w.w << 16), __uint_as_float(w.w & 0xffff0000u));
      } else {
        d[0] = make_float4(__uint_as_float(v[k].x), __uint_as_float(v[k].y), __uint_as_float(v[k].z), __uint_as_float(v[k].w));
      }
    }
  }
};
// Two tiles of chunk c (rows t0 … t0 + L − 1) into padded fp32 shared tiles: all vector loads of both
// issued before the first store.
template <int L, int C1, int C2, class T1, class T2>
STRATA_DEV void load_tiles2(float* d1, int ld1, const Tok<const T1>& t1, int off1, float* d2, int ld2, const Tok<const T2>& t2, int off2, int b, int t0,
                            int T_) {
  TileRegs<L, C1, T1> r1;
  TileRegs<L, C2, T2> r2;
  const bool v1 = vec16_ok(t1), v2 = vec16_ok(t2);
  if (v1) r1.load(t1, b, t0, T_, off1);
  if (v2) r2.load(t2, b, t0, T_, off2);
  if (v1) r1.store(d1, ld1);
  else load_tile<L>(d1, ld1, C1, t1, b, t0, T_, off1);
  if (v2) r2.store(d2, ld2);
  else load_tile<L>(d2, ld2, C2, t2, b, t0, T_, off2);
}
// x, gy (columns xOff …, P wide) and B, C (bOff …, N wide): in one phase when the four fit in 12
// vectors a thread (bf16), else in two.
template <int L, int P, int N, class PR>
STRATA_DEV void load_chunk_tiles(const PR& p, float* sX, float* sGy, int ldP, int xOff, float* sB, float* sC, int ldN, int bOff, int b, int t0, int T_) {
  using TX = typename std::remove_const<typename std::remove_pointer<decltype(p.x.p)>::type>::type;
  using TGy = typename std::remove_const<typename std::remove_pointer<decltype(p.gy.p)>::type>::type;
  using TB = typename std::remove_const<typename std::remove_pointer<decltype(p.B.p)>::type>::type;
  using TC = typename std::remove_const<typename std::remove_pointer<decltype(p.C.p)>::type>::type;
  constexpr int kVecs = TileRegs<L, P, TX>::kPer + TileRegs<L, P, TGy>::kPer + TileRegs<L, N, TB>::kPer + TileRegs<L, N, TC>::kPer;
  if constexpr (kVecs <= 12) {
    TileRegs<L, P, TX> rx;
    TileRegs<L, P, TGy> rg;
    TileRegs<L, N, TB> rb;
    TileRegs<L, N, TC> rc;
    const bool vx = vec16_ok(p.x), vg = vec16_ok(p.gy), vb = vec16_ok(p.B), vc = vec16_ok(p.C);
    if (vx) rx.load(p.x, b, t0, T_, xOff);
    if (vg) rg.load(p.gy, b, t0, T_, xOff);
    if (vb) rb.load(p.B, b, t0, T_, bOff);
    if (vc) rc.load(p.C, b, t0, T_, bOff);
    if (vx) rx.store(sX, ldP);
    else load_tile<L>(sX, ldP, P, p.x, b, t0, T_, xOff);
    if (vg) rg.store(sGy, ldP);
    else load_tile<L>(sGy, ldP, P, p.gy, b, t0, T_, xOff);
    if (vb) rb.store(sB, ldN);
    else load_tile<L>(sB, ldN, N, p.B, b, t0, T_, bOff);
    if (vc) rc.store(sC, ldN);
    else load_tile<L>(sC, ldN, N, p.C, b, t0, T_, bOff);
  } else {
    load_tiles2<L, P, N>(sX, ldP, p.x, xOff, sB, ldN, p.B, bOff, b, t0, T_);
    load_tiles2<L, P, N>(sGy, ldP, p.gy, xOff, sC, ldN, p.C, bOff, b, t0, T_);
  }
}
// A P x N fp32 state (contiguous) in registers, 16-byte loads, then into a padded shared tile.
template <int P, int N>
struct StateRegs {
  static constexpr int kVecs = P * N / 4, kPer = (kVecs + kThreads - 1) / kThreads;
  float4 v[kPer];
  STRATA_DEV static bool live(int k) { return kVecs % kThreads == 0 || (int)threadIdx.x + k * kThreads < kVecs; }
  STRATA_DEV void load(const float* src) {
#pragma unroll
    for (int k = 0; k < kPer; ++k)
      if (live(k)) v[k] = __ldg(reinterpret_cast<const float4*>(src) + threadIdx.x + k * kThreads);
  }
  STRATA_DEV float* at(float* dst, int ld, int k) const {
    const int e = 4 * ((int)threadIdx.x + k * kThreads);
    return dst + (e / N) * ld + e % N;
  }
  STRATA_DEV void store(float* dst, int ld) const {
#pragma unroll
    for (int k = 0; k < kPer; ++k)
      if (live(k)) *reinterpret_cast<float4*>(at(dst, ld, k)) = v[k];
  }
};
// dt of chunk c (head h), rows 2·lane and 2·lane + 1 on warp 0 (other threads: zeros, no load); then
// the inclusive cumsum of dt·A on warp 0 (a shuffle scan of the pair sums: fixed order). Split so
// that the tile loads go out between the two. L == 64. The caller syncs before reading.
template <int L, class TDt>
STRATA_DEV float2 load_dt_pair(const Tok<const TDt>& dt, int b, int t0, int T_, int h) {
  static_assert(L == 64, "two rows a lane");
  float2 d = make_float2(0.f, 0.f);
  if (threadIdx.x >= 32) return d;
  const int l0 = 2 * (int)threadIdx.x;
  const TDt* q = dt.p + b * dt.batch + h;
  if (t0 + l0 < T_) d.x = ldf(q + (long long)(t0 + l0) * dt.row);
  if (t0 + l0 + 1 < T_) d.y = ldf(q + (long long)(t0 + l0 + 1) * dt.row);
  return d;
}
STRATA_DEV void dt_cumsum_warp(float* sDt, float* sCs, float2 d, float A) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x, l0 = 2 * lane;
  const float a0 = d.x * A, a1 = d.y * A;
  float sc = a0 + a1;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float u = __shfl_up_sync(0xffffffffu, sc, o);
    if (lane >= o) sc += u;
  }
  float ex = __shfl_up_sync(0xffffffffu, sc, 1);
  if (lane == 0) ex = 0.f;
  const float c0 = ex + a0;
  sDt[l0] = d.x;
  sDt[l0 + 1] = d.y;
  sCs[l0] = c0;
  sCs[l0 + 1] = c0 + a1;
}
STRATA_DEV float warp_sum(float v) {  // butterfly: every lane ends with the same bits
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// rowZ / colZ of the grouped chunk-gradient kernels, pass 1: each row's per-lane sums over the 4
// lanes of the row (a fixed butterfly) into sRzp[row][warp column], each column's over the 8 row
// lanes into sCzp[col][warp row] (TL fragments).
template <class TL>
STRATA_DEV void rz_cz_partials(const float (&rz)[TL::MT][2], const float (&cz)[TL::NT][2], float* sRzp, float* sCzp, int warp, int lane) {
  const int wn = TL::wn(), wm = warp / TL::WN;
#pragma unroll
  for (int i = 0; i < TL::MT; ++i)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float f = rz[i][hh];
      f += __shfl_xor_sync(0xffffffffu, f, 1);
      f += __shfl_xor_sync(0xffffffffu, f, 2);
      if (lane % 4 == 0) sRzp[TL::row(i, 2 * hh) * TL::WN + wn] = f;
    }
#pragma unroll
  for (int jj = 0; jj < TL::NT; ++jj)
#pragma unroll
    for (int qq = 0; qq < 2; ++qq) {
      float f = cz[jj][qq];
      f += __shfl_xor_sync(0xffffffffu, f, 4);
      f += __shfl_xor_sync(0xffffffffu, f, 8);
      f += __shfl_xor_sync(0xffffffffu, f, 16);
      if (lane < 4) sCzp[TL::col(jj, qq) * TL::WM + wm] = f;
    }
}
// pass 2 (after a barrier): the partials summed per row (threads 0..L−1) and per column (L..2L−1), in order.
template <int L, class TL>
STRATA_DEV void rz_cz_sums(int tid, const float* sRzp, const float* sCzp, float* sRowZ, float* sColZ) {
  if (tid < L) {
    float r = 0.f;
    for (int k = 0; k < TL::WN; ++k) r += sRzp[tid * TL::WN + k];
    sRowZ[tid] = r;
  } else if (tid < 2 * L) {
    const int ss = tid - L;
    float r = 0.f;
    for (int k = 0; k < TL::WM; ++k) r += sCzp[ss * TL::WM + k];
    sColZ[ss] = r;
  }
}

// The grouped chunk-gradient kernels' per-head tail, run by warp 0 (two rows a lane): d cs of each
// row from the products' row partials (sYp, WN of them a row), its reverse cumsum d(dt·A), the ddt
// of the chunk's rows and the chunk's dA partial.
template <int WN, class PR>
STRATA_DEV void chunk_head_tail(const PR& p, float* dApart, size_t chunkIdx, int lane, const float* sYp, const float* sDt,
                                const float* sF, const float* sColZ, const float* sRowZ, const float* sE0, float csEnd,
                                float A, int b, int t0, int T, int h) {
  float dcs[2], dtv[2], fv[2], czv[2];
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int l = 2 * lane + e;
    float y = 0.f;
    for (int k = 0; k < WN; ++k) y += sYp[l * WN + k];
    dtv[e] = sDt[l];
    fv[e] = sF[l];
    czv[e] = sColZ[l];
    dcs[e] = sRowZ[l] - dtv[e] * czv[e] + y - dtv[e] * fv[e];
  }
  float e0 = 0.f;
  for (int k = 0; k < kThreads / 32; ++k) e0 += sE0[k];
  const float sumE = warp_sum(fmaf(dtv[1], fv[1], dtv[0] * fv[0]));
  if (lane == 31) dcs[1] += expf(csEnd) * e0 + sumE;
  float sc = dcs[0] + dcs[1];  // suffix sums over the lanes
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float u = __shfl_down_sync(0xffffffffu, sc, o);
    if (lane + o < 32) sc += u;
  }
  float ex = __shfl_down_sync(0xffffffffu, sc, 1);
  if (lane == 31) ex = 0.f;
  const float run1 = ex + dcs[1], run0 = run1 + dcs[0];
  const float dA = warp_sum(fmaf(dtv[1], run1, dtv[0] * run0));
  if (lane == 0) dApart[chunkIdx] = dA;
  if (p.ddt.p) {
    const float run[2] = {run0, run1};
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int tt = t0 + 2 * lane + e;
      if (tt < T) stf(p.ddt.p + b * p.ddt.batch + (long long)tt * p.ddt.row + h, czv[e] + fv[e] + A * run[e]);
    }
  }
}

// dB, dC of a group's chunk (summed over its heads in registers, TN fragments): one store each.
template <class TN, int N, class PR>
STRATA_DEV void store_group_dbdc(const PR& p, const typename TN::Acc& dBs, const typename TN::Acc& dCs, int b, int g, int t0, int T) {
#pragma unroll
  for (int i = 0; i < TN::MT; ++i)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int l = TN::row(i, 2 * hh), tt = t0 + l;
      if (tt >= T) continue;
#pragma unroll
      for (int jj = 0; jj < TN::NT; ++jj)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          const int n = g * N + TN::col(jj, q);
          if (p.dB.p) stf(p.dB.p + b * p.dB.batch + (long long)tt * p.dB.row + n, dBs[i][jj][2 * hh + q]);
          if (p.dC.p) stf(p.dC.p + b * p.dC.batch + (long long)tt * p.dC.row + n, dCs[i][jj][2 * hh + q]);
        }
    }
}

// 1. (group path) chunk_local_tc_kernel with vectorized loads and the warp cumsum.
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 2) chunk_local_fast_kernel(const PR p, Scratch s) {
  using SM = LocalSmemTc<L, P, N>;
  constexpr int ldP = SM::ldP, ldN = SM::ldN;
  extern __shared__ float4 smem4[];
  const typename SM::Tiles t(reinterpret_cast<float*>(smem4));
  float *sX = t.X, *sGy = t.Gy, *sB = t.B, *sC = t.C, *sDt = t.Dt, *sCs = t.Cs, *sW = t.W, *sEc = t.Ec;
  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, g = h / (H / p.ngroups);
  const int t0 = c * L;
  const float2 dtp = load_dt_pair<L>(p.dt, b, t0, T, h);
  load_chunk_tiles<L, P, N>(p, sX, sGy, ldP, h * P, sB, sC, ldN, g * N, b, t0, T);
  dt_cumsum_warp(sDt, sCs, dtp, p.A[h]);
  __syncthreads();
  chunk_local_products<L, P, N, PR>(s, sX, sGy, sB, sC, sDt, sCs, sW, sEc, H, b, h, c);
}

template <int L, int P, int N>
struct GroupSmem {
  using TL = TcTile<L, L>;
  using TN = TcTile<L, N>;
  static constexpr int ldP = P + 4, ldN = N + 4, ldL = L + 4;
  // x, gy | B, C | state (dh_end, then h_prev) | C·Bᵀ, Wᵀ, M | dt, cs, e^{cs_end−cs}, e^{cs}, rowZ,
  // colZ, F | rowZ partials [L][TL::WN], colZ partials [L][TL::WM], F and Y partials [L][TN::WN] each
  // | E0 partials [warps]
  static constexpr size_t kFloats = (size_t)2 * L * ldP + (size_t)2 * L * ldN + (size_t)P * ldN + (size_t)3 * L * ldL + 7 * L + (size_t)L * TL::WN +
                                    (size_t)L * TL::WM + (size_t)2 * L * TN::WN + kThreads / 32;
  static constexpr size_t kBytes = kFloats * sizeof(float);
};
template <int L, int P, int N>
constexpr bool group_fits() {
  return L == 64 && tc_fits<L, P, N>() && GroupSmem<L, P, N>::kBytes <= 227 * 1024;
}
// 3. (group path) every gradient of one chunk for the heads of one group. (Double-buffering the
// states with cp.async, a phase ahead of their use, measured 2% slower on the H200: not kept.)
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 1) chunk_grad_group_kernel(const PR p, Scratch s) {
  using SM = GroupSmem<L, P, N>;
  using TL = TcTile<L, L>;
  using TP = TcTile<L, P>;
  using TN = TcTile<L, N>;
  constexpr int ldP = SM::ldP, ldN = SM::ldN, ldL = SM::ldL;
  constexpr bool eGy = Bf16Tok<decltype(PR::gy)>::value, eX = Bf16Tok<decltype(PR::x)>::value;
  constexpr bool eB = Bf16Tok<decltype(PR::B)>::value, eC = Bf16Tok<decltype(PR::C)>::value;
  extern __shared__ float4 smem4[];
  float* sX = reinterpret_cast<float*>(smem4);
  float* sGy = sX + L * ldP;
  float* sB = sGy + L * ldP;
  float* sC = sB + L * ldN;
  float* sSt = sC + L * ldN;   // dh_end, then h_prev
  float* sCB = sSt + P * ldN;  // C·Bᵀ [l][s]
  float* sWt = sCB + L * ldL;  // W transposed [s][l]
  float* sM = sWt + L * ldL;   // [l][s]
  float* sDt = sM + L * ldL;
  float* sCs = sDt + L;
  float* sEe = sCs + L;  // e^{cs_end − cs}
  float* sEc = sEe + L;  // e^{cs}
  float* sRowZ = sEc + L;
  float* sColZ = sRowZ + L;
  float* sF = sColZ + L;
  float* sRzp = sF + L;
  float* sCzp = sRzp + L * TL::WN;
  float* sFp = sCzp + L * TL::WM;
  float* sYp = sFp + L * TN::WN;
  float* sE0 = sYp + L * TN::WN;

  const int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, HG = H / p.ngroups;
  const int t0 = c * L;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  load_tiles2<L, N, N>(sB, ldN, p.B, g * N, sC, ldN, p.C, g * N, b, t0, T);
  __syncthreads();
  {  // C·Bᵀ: the same for every head of the group
    typename TL::Acc cb;
    tc_zero<TL>(cb);
    tc_gemm<TL, N, !eC, !eB>(cb, [&](int l, int k) { return sC[l * ldN + k]; }, [&](int k, int ss) { return sB[ss * ldN + k]; });
#pragma unroll
    for (int i = 0; i < TL::MT; ++i)
#pragma unroll
      for (int j = 0; j < TL::NT; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q) sCB[TL::row(i, q) * ldL + TL::col(j, q)] = cb[i][j][q];
  }
  typename TN::Acc dBs, dCs;  // Σ over the group's heads, in head order
  tc_zero<TN>(dBs);
  tc_zero<TN>(dCs);

  for (int j = 0; j < HG; ++j) {
    const int h = g * HG + j;
    const float A = p.A[h];
    const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;
    __syncthreads();  // the previous head is done with every tile
    {
      StateRegs<P, N> rv;
      rv.load(s.R + chunkIdx * P * N);
      const float2 dtp = load_dt_pair<L>(p.dt, b, t0, T, h);
      load_tiles2<L, P, P>(sX, ldP, p.x, h * P, sGy, ldP, p.gy, h * P, b, t0, T);
      rv.store(sSt, ldN);
      dt_cumsum_warp(sDt, sCs, dtp, A);
    }
    __syncthreads();
    const float csEnd = sCs[L - 1];
    if (tid < L) {
      sEe[tid] = expf(csEnd - sCs[tid]);
      sEc[tid] = expf(sCs[tid]);
    }
    {  // M = (gy xᵀ)·decay, Wᵀ = ((C Bᵀ)·decay)ᵀ; rowZ_l = Σ_s dt_s·Zd_ls, colZ_s = Σ_l Zd_ls (Zd = M·CBᵀ) from the fragments
      typename TL::Acc gx;
      tc_zero<TL>(gx);
      tc_gemm<TL, P, !eGy, !eX>(gx, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int ss) { return sX[ss * ldP + k]; });
      float rz[TL::MT][2], cz[TL::NT][2];
#pragma unroll
      for (int i = 0; i < TL::MT; ++i) rz[i][0] = rz[i][1] = 0.f;
#pragma unroll
      for (int jj = 0; jj < TL::NT; ++jj) cz[jj][0] = cz[jj][1] = 0.f;
#pragma unroll
      for (int i = 0; i < TL::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TL::NT; ++jj)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int l = TL::row(i, q), ss = TL::col(jj, q);
            const float cbv = sCB[l * ldL + ss];
            const float dec = ss <= l ? expf(sCs[l] - sCs[ss]) : 0.f;
            const float m = gx[i][jj][q] * dec, z = m * cbv;
            sWt[ss * ldL + l] = cbv * dec;
            sM[l * ldL + ss] = m;
            rz[i][q >> 1] = fmaf(sDt[ss], z, rz[i][q >> 1]);
            cz[jj][q & 1] += z;
          }
      // rows: the 4 lanes of a row (fixed butterfly), then per warp column; columns: the 8 row lanes, then per warp row
      rz_cz_partials<TL>(rz, cz, sRzp, sCzp, warp, lane);
    }
    __syncthreads();
    rz_cz_sums<L, TL>(tid, sRzp, sCzp, sRowZ, sColZ);
    // dx (L x P)
    chunk_dx<L, P, N, ldP, ldN, ldL, eB, eGy>(p.dx, sB, sSt, sEe, sWt, sGy, sDt, b, h, t0, T);
    // dB (L x N): U = e^{cs_end−cs_s}·x_sᵀ dh_end, F_s = B_s·U_s, then + Σ_l M_ls C_l, times dt_s, into Σ_heads
    {
      typename TN::Acc acc;
      tc_zero<TN>(acc);
      tc_gemm<TN, P, !eX, true>(acc, [&](int ss, int k) { return sX[ss * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
      tc_scale_rows<TN>(acc, [&](int r) { return sEe[r]; });
      tc_row_partials<TN>(acc, [&](int ss, int n) { return sB[ss * ldN + n]; }, sFp);
      tc_gemm<TN, L, true, !eC>(acc, [&](int ss, int k) { return sM[k * ldL + ss]; }, [&](int k, int n) { return sC[k * ldN + n]; });
#pragma unroll
      for (int i = 0; i < TN::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TN::NT; ++jj)
#pragma unroll
          for (int q = 0; q < 4; ++q) dBs[i][jj][q] = fmaf(acc[i][jj][q], sDt[TN::row(i, q)], dBs[i][jj][q]);
    }
    {
      StateRegs<P, N> rv;  // h_prev, in flight across the barrier
      rv.load(s.S + chunkIdx * P * N);
      __syncthreads();  // every read of dh_end is done; F partials complete
      if (tid < L) {
        float f = 0.f;
        for (int k = 0; k < TN::WN; ++k) f += sFp[tid * TN::WN + k];
        sF[tid] = f;
      }
      float e0 = 0.f;  // ⟨dh_end, h_prev⟩ while h_prev replaces dh_end
#pragma unroll
      for (int k = 0; k < StateRegs<P, N>::kPer; ++k) {
        if (!rv.live(k)) continue;
        float4* d = reinterpret_cast<float4*>(rv.at(sSt, ldN, k));
        const float4 o = *d, v = rv.v[k];
        e0 = fmaf(o.x, v.x, e0); e0 = fmaf(o.y, v.y, e0); e0 = fmaf(o.z, v.z, e0); e0 = fmaf(o.w, v.w, e0);
        *d = v;
      }
      e0 = warp_sum(e0);
      if (lane == 0) sE0[warp] = e0;
    }
    __syncthreads();
    // dC (L x N): V = e^{cs_l}·gy_lᵀ h_prev, Y_l = C_l·V_l, then + Σ_s M_ls dt_s B_s, into Σ_heads
    {
      typename TN::Acc acc;
      tc_zero<TN>(acc);
      tc_gemm<TN, P, !eGy, true>(acc, [&](int l, int k) { return sGy[l * ldP + k]; }, [&](int k, int n) { return sSt[k * ldN + n]; });
      tc_scale_rows<TN>(acc, [&](int r) { return sEc[r]; });
      tc_row_partials<TN>(acc, [&](int l, int n) { return sC[l * ldN + n]; }, sYp);
      tc_gemm<TN, L, true, !eB>(acc, [&](int l, int k) { return sM[l * ldL + k] * sDt[k]; }, [&](int k, int n) { return sB[k * ldN + n]; });
#pragma unroll
      for (int i = 0; i < TN::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TN::NT; ++jj)
#pragma unroll
          for (int q = 0; q < 4; ++q) dCs[i][jj][q] += acc[i][jj][q];
    }
    __syncthreads();
    if (warp == 0) chunk_head_tail<TN::WN>(p, s.dApart, chunkIdx, lane, sYp, sDt, sF, sColZ, sRowZ, sE0, csEnd, A, b, t0, T, h);
  }
  store_group_dbdc<TN, N>(p, dBs, dCs, b, g, t0, T);  // dB, dC of the group: one store each
}

// ---- bf16-plane path (the default): operands split once into bf16 planes, ldmatrix fragments -----
// The group path spent ~10 warp instructions per mma.sync (ncu): every warp loaded its fragments
// element by element and split each fp32 element into TF32 hi/lo itself (A operands re-split by
// the 4 warps of a row, B by 2). Here every operand tile is written to shared memory once as bf16
// planes: hi = bf16(v) and, where v is not exact in bf16, lo = bf16(v − hi) (hi + lo carries 16
// significant bits: |v − hi − lo| ≤ 2^-17·|v|); fragments come from ldmatrix (.trans for the
// operands stored k-major), products on mma.sync m16n8k16 bf16 with fp32 accumulation as
// hi·hi + lo·hi + hi·lo (bf16 tensors: hi only, their lo products skipped). Relative error of a
// product ~2^-16 (the TF32 path: ~2^-21; the harness tolerances are 2e-3 … 1.5e-2).
// chunk_local_chain_kernel also carries the state passing (no state_pass launch): its CTAs take
// tickets in (chunk level, sequence·head) order; level i computes chunk i's own state S and chunk
// nc−1−i's own state gradient R, waits for level i−1's flag of the same (b, h), reads the state
// entering (leaving) its chunk from scratch and writes the next one — the sequential recurrences
// of pass_chunks, same order, one hop per CTA (every CTA it waits on holds an earlier ticket:
// started, so no deadlock).
STRATA_DEV uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
STRATA_DEV void ldsm_x4(uint32_t (&r)[4], const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
STRATA_DEV void ldsm_x4_t(uint32_t (&r)[4], const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
STRATA_DEV void ldsm_x2(uint32_t& r0, uint32_t& r1, const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_u32(p)));
}
STRATA_DEV void ldsm_x2_t(uint32_t& r0, uint32_t& r1, const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_u32(p)));
}
STRATA_DEV void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// v → bf16 hi (round to nearest) and bf16 lo = bf16(v − hi), as raw bits
STRATA_DEV uint16_t bf_bits(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
STRATA_DEV float bf_val(uint16_t u) { return __uint_as_float((uint32_t)u << 16); }
STRATA_DEV void bf_split(float v, uint16_t& hi, uint16_t& lo) {
  hi = bf_bits(v);
  lo = bf_bits(v - bf_val(hi));
}
// a pair (v0 at the lower address) → packed hi and lo words
STRATA_DEV void bf_split2(float v0, float v1, uint32_t& hi, uint32_t& lo) {
  uint16_t h0, l0, h1, l1;
  bf_split(v0, h0, l0);
  bf_split(v1, h1, l1);
  hi = (uint32_t)h0 | ((uint32_t)h1 << 16);
  lo = (uint32_t)l0 | ((uint32_t)l1 << 16);
}
// An operand tile in shared memory: bf16 hi plane, lo plane (kSplit), row stride ld elements
// (ld·2 bytes an odd multiple of 16: ldmatrix rows conflict-free).
template <bool kSplit>
struct Planes {
  uint16_t* hi;
  uint16_t* lo;
  int ld;
  STRATA_DEV float at(int r, int c) const { return kSplit ? bf_val(hi[r * ld + c]) + bf_val(lo[r * ld + c]) : bf_val(hi[r * ld + c]); }
  STRATA_DEV void put(int r, int c, float v) const {
    if (kSplit) bf_split(v, hi[r * ld + c], lo[r * ld + c]);
    else hi[r * ld + c] = bf_bits(v);
  }
  // v0 at (r, c), v1 at (r, c + 1), c even
  STRATA_DEV void put2(int r, int c, float v0, float v1) const {
    uint32_t h, l;
    bf_split2(v0, v1, h, l);
    *reinterpret_cast<uint32_t*>(hi + r * ld + c) = h;
    if (kSplit) *reinterpret_cast<uint32_t*>(lo + r * ld + c) = l;
  }
  // four consecutive values at (r, c), c % 4 == 0 (read as put4 writes them)
  STRATA_DEV float4 at4(int r, int c) const {
    const uint2 h = *reinterpret_cast<const uint2*>(hi + r * ld + c);
    float4 v = make_float4(__uint_as_float(h.x << 16), __uint_as_float(h.x & 0xffff0000u), __uint_as_float(h.y << 16), __uint_as_float(h.y & 0xffff0000u));
    if (kSplit) {
      const uint2 l = *reinterpret_cast<const uint2*>(lo + r * ld + c);
      v.x += __uint_as_float(l.x << 16); v.y += __uint_as_float(l.x & 0xffff0000u);
      v.z += __uint_as_float(l.y << 16); v.w += __uint_as_float(l.y & 0xffff0000u);
    }
    return v;
  }
  // four consecutive values at (r, c), c % 4 == 0
  STRATA_DEV void put4(int r, int c, float4 v) const {
    uint32_t h0, l0, h1, l1;
    bf_split2(v.x, v.y, h0, l0);
    bf_split2(v.z, v.w, h1, l1);
    *reinterpret_cast<uint2*>(hi + r * ld + c) = make_uint2(h0, h1);
    if (kSplit) *reinterpret_cast<uint2*>(lo + r * ld + c) = make_uint2(l0, l1);
  }
};
// leading dimension (bf16 elements) of a plane of `cols` columns (cols % 16 == 0)
constexpr int bf_ld(int cols) { return cols + 8; }

// acc += A·B on m16n8k16 bf16 (K % 16 == 0). A is M x K: stored [m][k] (kTA = false) or [k][m]
// (kTA); B is K x Nn: stored [n][k] (kTB = false) or [k][n] (kTB). Per k16 step a warp loads one
// ldmatrix.x4 per A tile and one per pair of B tiles (x2 for an odd last one), per plane.
// kUnroll: k steps unrolled; kFresh: the thread index read anew (tid_fresh, for kernels that keep
// long-lived accumulators: its address arithmetic is then not hoisted out of an enclosing loop).
STRATA_DEV int tid_fresh() {
  int t;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(t));
  return t;
}
template <class TT, int K, bool kTA, bool kTB, bool kSA, bool kSB, int kUnroll = 2, bool kFresh = false>
STRATA_DEV void bf_gemm(typename TT::Acc& acc, const Planes<kSA>& a, const Planes<kSB>& b) {
  static_assert(K % 16 == 0, "K must be a multiple of 16");
  const int tx = kFresh ? tid_fresh() : (int)threadIdx.x;
  const int lane = tx % 32, mi = lane / 8, r8 = lane % 8;
  const int m0 = (tx / 32 / TT::WN) * TT::MT * 16, n0 = (tx / 32 % TT::WN) * TT::NT * 8;
  // this lane's row address in the x4 of A tile 0 / of B tile pair 0 (x2: of the last tile), at k = 0
  const int aOff = kTA ? ((mi >> 1) * 8 + r8) * a.ld + m0 + (mi & 1) * 8 : (m0 + (mi & 1) * 8 + r8) * a.ld + (mi >> 1) * 8;
  const int bOff = kTB ? ((mi & 1) * 8 + r8) * b.ld + n0 + (mi >> 1) * 8 : (n0 + (mi >> 1) * 8 + r8) * b.ld + (mi & 1) * 8;
  const int bOff2 = kTB ? ((mi & 1) * 8 + r8) * b.ld + n0 + 8 * (TT::NT - 1) : (n0 + 8 * (TT::NT - 1) + r8) * b.ld + (mi & 1) * 8;
  constexpr int kNP = TT::NT / 2;
  const int aTile = kTA ? 16 : 16 * a.ld, bPair = kTB ? 16 : 16 * b.ld;
  const int aStep = kTA ? 16 * a.ld : 16, bStep = kTB ? 16 * b.ld : 16;
#pragma unroll kUnroll
  for (int k0 = 0; k0 < K / 16; ++k0) {
    uint32_t ah[TT::MT][4], al[TT::MT][4], bh[TT::NT][2], bl[TT::NT][2];
#pragma unroll
    for (int i = 0; i < TT::MT; ++i) {
      const int o = aOff + k0 * aStep + i * aTile;
      if (kTA) ldsm_x4_t(ah[i], a.hi + o);
      else ldsm_x4(ah[i], a.hi + o);
      if (kSA) {
        if (kTA) ldsm_x4_t(al[i], a.lo + o);
        else ldsm_x4(al[i], a.lo + o);
      }
    }
#pragma unroll
    for (int jp = 0; jp < kNP; ++jp) {
      const int o = bOff + k0 * bStep + jp * bPair;
      uint32_t r[4];
      if (kTB) ldsm_x4_t(r, b.hi + o);
      else ldsm_x4(r, b.hi + o);
      bh[2 * jp][0] = r[0]; bh[2 * jp][1] = r[1]; bh[2 * jp + 1][0] = r[2]; bh[2 * jp + 1][1] = r[3];
      if (kSB) {
        if (kTB) ldsm_x4_t(r, b.lo + o);
        else ldsm_x4(r, b.lo + o);
        bl[2 * jp][0] = r[0]; bl[2 * jp][1] = r[1]; bl[2 * jp + 1][0] = r[2]; bl[2 * jp + 1][1] = r[3];
      }
    }
    if constexpr (TT::NT % 2 == 1) {
      constexpr int j = TT::NT - 1;
      const int o = bOff2 + k0 * bStep;
      if (kTB) ldsm_x2_t(bh[j][0], bh[j][1], b.hi + o);
      else ldsm_x2(bh[j][0], bh[j][1], b.hi + o);
      if (kSB) {
        if (kTB) ldsm_x2_t(bl[j][0], bl[j][1], b.lo + o);
        else ldsm_x2(bl[j][0], bl[j][1], b.lo + o);
      }
    }
#pragma unroll
    for (int i = 0; i < TT::MT; ++i)
#pragma unroll
      for (int j = 0; j < TT::NT; ++j) {
        if (kSA) mma_bf16(acc[i][j], al[i], bh[j][0], bh[j][1]);
        if (kSB) mma_bf16(acc[i][j], ah[i], bl[j][0], bl[j][1]);
        mma_bf16(acc[i][j], ah[i], bh[j][0], bh[j][1]);
      }
  }
}

// An L x COLS tile of chunk c (rows past T zero) into planes (bf16 tensors: copied, hi only;
// fp32: split), 16-byte loads where aligned, all in flight before the first store.
template <int L, int COLS, class T, bool kS>
struct PlaneTile {
  TileRegs<L, COLS, T> r;
  bool vec = false;
  STRATA_DEV void load(const Tok<const T>& t, int b, int t0, int T_, int off) {
    vec = vec16_ok(t);
    if (vec) r.load(t, b, t0, T_, off);
  }
  // f(l) scales row l (identity for the plain tiles)
  template <class F>
  STRATA_DEV void store(const Planes<kS>& d, const Tok<const T>& t, int b, int t0, int T_, int off, F f) const {
    using R = TileRegs<L, COLS, T>;
    if (vec) {
#pragma unroll
      for (int k = 0; k < R::kPer; ++k) {
        if (!R::live(k)) continue;
        const int i = threadIdx.x + k * kThreads, l = i / R::kRowVecs, cv = i % R::kRowVecs;
        const uint4 w = r.v[k];
        const float s = f(l);
        if constexpr (sizeof(T) == 2) {
          const int c = cv * 8;
          d.put4(l, c, make_float4(__uint_as_float(w.x << 16) * s, __uint_as_float(w.x & 0xffff0000u) * s, __uint_as_float(w.y << 16) * s,
                                   __uint_as_float(w.y & 0xffff0000u) * s));
          d.put4(l, c + 4, make_float4(__uint_as_float(w.z << 16) * s, __uint_as_float(w.z & 0xffff0000u) * s, __uint_as_float(w.w << 16) * s,
                                       __uint_as_float(w.w & 0xffff0000u) * s));
        } else {
          d.put4(l, cv * 4, make_float4(__uint_as_float(w.x) * s, __uint_as_float(w.y) * s, __uint_as_float(w.z) * s, __uint_as_float(w.w) * s));
        }
      }
    } else {
      for (int i = threadIdx.x; i < L * COLS; i += kThreads) {
        const int l = i / COLS, k = i % COLS, tt = t0 + l;
        d.put(l, k, tt < T_ ? ldf(t.p + b * t.batch + (long long)tt * t.row + off + k) * f(l) : 0.f);
      }
    }
  }
};
struct One {
  STRATA_DEV float operator()(int) const { return 1.f; }
};
template <class T> struct IsBf16 : std::false_type {};
template <> struct IsBf16<__nv_bfloat16> : std::true_type {};
template <class Q> using TokElem = typename std::remove_const<typename std::remove_pointer<decltype(Q::p)>::type>::type;

// dt of chunk c (head h) and the inclusive cumsum of dt·A, on warp `w` (two rows a lane, a shuffle
// scan of the pair sums: dt_cumsum_warp's order). L == 64.
template <int L, class TDt>
STRATA_DEV void dt_cs_on_warp(int w, const Tok<const TDt>& dt, int b, int t0, int T_, int h, float A, float* sDt, float* sCs) {
  static_assert(L == 64, "two rows a lane");
  if ((int)threadIdx.x / 32 != w) return;
  const int lane = threadIdx.x % 32, l0 = 2 * lane;
  const TDt* q = dt.p + b * dt.batch + h;
  float2 d = make_float2(0.f, 0.f);
  if (t0 + l0 < T_) d.x = ldf(q + (long long)(t0 + l0) * dt.row);
  if (t0 + l0 + 1 < T_) d.y = ldf(q + (long long)(t0 + l0 + 1) * dt.row);
  const float a0 = d.x * A, a1 = d.y * A;
  float sc = a0 + a1;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float u = __shfl_up_sync(0xffffffffu, sc, o);
    if (lane >= o) sc += u;
  }
  float ex = __shfl_up_sync(0xffffffffu, sc, 1);
  if (lane == 0) ex = 0.f;
  const float c0 = ex + a0;
  sDt[l0] = d.x;
  sDt[l0 + 1] = d.y;
  sCs[l0] = c0;
  sCs[l0 + 1] = c0 + a1;
}

// Shared memory of chunk_local_chain_kernel (bytes): x·w, gy·e^{cs} planes (split) [L][P + 8] |
// B, C planes [L][N + 8] (lo where fp32) | dt, cs of both chunks, w, e^{cs} [L] each | ticket.
template <int L, int P, int N, bool kSB, bool kSC>
struct ChainSmem {
  static constexpr int ldP = bf_ld(P), ldN = bf_ld(N);
  static constexpr size_t kXW = (size_t)L * ldP, kBt = (size_t)L * ldN;
  static constexpr size_t kHalfs = 4 * kXW + (kSB ? 2 : 1) * kBt + (kSC ? 2 : 1) * kBt;
  static constexpr size_t kBytes = kHalfs * 2 + (6 * L + 4) * sizeof(float);
};

// One hop of a state chain: wait for `flag`'s bit (set by the previous level), read the state
// entering (prev: P x N fp32, nullptr = start from `init` or zeros), write `next` (nullptr = none)
// = decay·prev + acc at this thread's fragment elements, or out (the last hop) ; then publish.
template <class TT, int N>
STRATA_DEV void chain_hop(const typename TT::Acc& acc, float decay, const float* prev, const float* init, float* prevOut, float* next, float* out,
                          int* waitFlag, int* pubFlag, int bit) {
  if (waitFlag) {
    if (threadIdx.x == 0) {
      while ((*reinterpret_cast<volatile int*>(waitFlag) & bit) == 0) {
      }
      __threadfence();
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int j = 0; j < TT::NT; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int e = TT::row(i, 2 * hh) * N + TT::col(j, 0);
        float2 h = make_float2(0.f, 0.f);
        if (prev) h = __ldcg(reinterpret_cast<const float2*>(prev + e));
        else if (init) h = *reinterpret_cast<const float2*>(init + e);
        if (prevOut) __stcg(reinterpret_cast<float2*>(prevOut + e), h);  // the first level writes the state entering chunk 0
        const float2 v = make_float2(fmaf(decay, h.x, acc[i][j][2 * hh]), fmaf(decay, h.y, acc[i][j][2 * hh + 1]));
        if (next) __stcg(reinterpret_cast<float2*>(next + e), v);
        if (out) *reinterpret_cast<float2*>(out + e) = v;
      }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0 && pubFlag) atomicOr(pubFlag, bit);
}

// 1 + 2. (bf16-plane path) own states of chunk i and own state gradients of chunk nc − 1 − i, and
// the state passing over the chunks. flags: [sequence·head][level] (zeroed), ticket: one int (zeroed).
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 2) chunk_local_chain_kernel(const PR p, Scratch s, int nc, int* flags, int* ticket) {
  using TT = TcTile<P, N>;
  constexpr bool kSB = !IsBf16<TokElem<decltype(PR::B)>>::value, kSC = !IsBf16<TokElem<decltype(PR::C)>>::value;
  using SM = ChainSmem<L, P, N, kSB, kSC>;
  extern __shared__ float4 smem4[];
  uint16_t* base = reinterpret_cast<uint16_t*>(smem4);
  const Planes<true> sXW{base, base + SM::kXW, SM::ldP};
  const Planes<true> sGE{base + 2 * SM::kXW, base + 3 * SM::kXW, SM::ldP};
  uint16_t* bb = base + 4 * SM::kXW;
  const Planes<kSB> sB{bb, bb + SM::kBt, SM::ldN};
  bb += (kSB ? 2 : 1) * SM::kBt;
  const Planes<kSC> sC{bb, bb + SM::kBt, SM::ldN};
  bb += (kSC ? 2 : 1) * SM::kBt;
  float* sDtS = reinterpret_cast<float*>(bb);
  float *sCsS = sDtS + L, *sDtR = sCsS + L, *sCsR = sDtR + L, *sW = sCsR + L, *sEc = sW + L;
  int* sTicket = reinterpret_cast<int*>(sEc + L);

  const int H = p.nheads, T = p.seqlen, BH = p.batch * H;
  if (threadIdx.x == 0) *sTicket = atomicAdd(ticket, 1);
  __syncthreads();
  const int tk = *sTicket, lvl = tk / BH, bh = tk % BH, b = bh / H, h = bh % H, g = h / (H / p.ngroups);
  const int cS = lvl, cR = nc - 1 - lvl;
  const float A = p.A[h];
  using TX = TokElem<decltype(PR::x)>;
  using TGy = TokElem<decltype(PR::gy)>;
  using TB = TokElem<decltype(PR::B)>;
  using TC = TokElem<decltype(PR::C)>;
  PlaneTile<L, P, TX, true> tx;
  PlaneTile<L, N, TB, kSB> tb;
  tx.load(p.x, b, cS * L, T, h * P);
  tb.load(p.B, b, cS * L, T, g * N);
  dt_cs_on_warp<L>(0, p.dt, b, cS * L, T, h, A, sDtS, sCsS);
  dt_cs_on_warp<L>(1, p.dt, b, cR * L, T, h, A, sDtR, sCsR);
  __syncthreads();
  const float csEndS = sCsS[L - 1], csEndR = sCsR[L - 1];
  if (threadIdx.x < L) {
    const int l = threadIdx.x;
    sW[l] = expf(csEndS - sCsS[l]) * sDtS[l];
    sEc[l] = expf(sCsR[l]);
  }
  __syncthreads();
  tx.store(sXW, p.x, b, cS * L, T, h * P, [&](int l) { return sW[l]; });
  tb.store(sB, p.B, b, cS * L, T, g * N, One{});
  PlaneTile<L, P, TGy, true> tg;
  PlaneTile<L, N, TC, kSC> tc;
  tg.load(p.gy, b, cR * L, T, h * P);
  tc.load(p.C, b, cR * L, T, g * N);
  __syncthreads();
  const size_t PN = (size_t)P * N;
  int* fl = flags + (size_t)bh * nc;
  {  // S[p][n] = Σ_s x[s][p]·w_s·B[s][n]; h_prev of chunk cS + 1 = e^{cs_end}·h_prev(cS) + S
    typename TT::Acc acc;
    tc_zero<TT>(acc);
    bf_gemm<TT, L, true, true, true, kSB>(acc, sXW, sB);
    float* slot = s.S + ((size_t)bh * nc + cS) * PN;
    chain_hop<TT, N>(acc, expf(csEndS), lvl > 0 ? slot : nullptr, lvl == 0 && p.h0 ? p.h0 + (size_t)bh * PN : nullptr, lvl == 0 ? slot : nullptr,
                     cS + 1 < nc ? slot + PN : nullptr, nullptr, lvl > 0 ? fl + lvl - 1 : nullptr, fl + lvl, 1);
  }
  tg.store(sGE, p.gy, b, cR * L, T, h * P, [&](int l) { return sEc[l]; });
  tc.store(sC, p.C, b, cR * L, T, g * N, One{});
  __syncthreads();
  {  // R[p][n] = Σ_l gy[l][p]·e^{cs_l}·C[l][n]; dh_end of chunk cR − 1 = e^{cs_end}·dh_end(cR) + R (chunk 0: dh0)
    typename TT::Acc acc;
    tc_zero<TT>(acc);
    bf_gemm<TT, L, true, true, true, kSC>(acc, sGE, sC);
    float* slot = s.R + ((size_t)bh * nc + cR) * PN;
    chain_hop<TT, N>(acc, expf(csEndR), lvl > 0 ? slot : nullptr, nullptr, lvl == 0 ? slot : nullptr, cR > 0 ? slot - PN : nullptr,
                     cR == 0 && p.dh0 ? p.dh0 + (size_t)bh * PN : nullptr, lvl > 0 ? fl + lvl - 1 : nullptr, fl + lvl, 2);
  }
}

// Shared memory of chunk_local_split_kernel (bytes): the scaled x (or gy) planes [L][P + 8] hi, lo |
// B (or C) planes [L][N + 8] (lo where fp32) | dt, cs, scale [L] | ticket.
template <int L, int P, int N, bool kSBC>
struct SplitSmem {
  static constexpr int ldP = bf_ld(P), ldN = bf_ld(N);
  static constexpr size_t kA = (size_t)L * ldP, kBt = (size_t)L * ldN;
  static constexpr size_t kBytes = (2 * kA + (kSBC ? 2 : 1) * kBt) * 2 + (3 * L + 4) * sizeof(float);
};
// One CTA of chunk_local_split_kernel: kR = false: S of chunk c (x scaled by w = e^{cs_end−cs}·dt,
// B) and the h_prev hop; kR: R of chunk c (gy scaled by e^{cs}, C) and the dh_end hop.
template <bool kR, int L, int P, int N, class PR, class TA, class TBt, bool kS>
STRATA_DEV void chain_half(const PR& p, const Scratch& s, int nc, int* fl, int lvl, int bh, const Tok<const TA>& ta, const Tok<const TBt>& tb,
                           uint16_t* base, float* sF) {
  using TT = TcTile<P, N>;
  using SM = SplitSmem<L, P, N, kS>;
  const Planes<true> sA{base, base + SM::kA, SM::ldP};
  const Planes<kS> sB{base + 2 * SM::kA, base + 2 * SM::kA + SM::kBt, SM::ldN};
  float *sDt = sF, *sCs = sDt + L, *sSc = sCs + L;
  const int H = p.nheads, T = p.seqlen, b = bh / H, h = bh % H, g = h / (H / p.ngroups);
  const int c = kR ? nc - 1 - lvl : lvl, t0 = c * L;
  PlaneTile<L, P, TA, true> ra;
  PlaneTile<L, N, TBt, kS> rb;
  ra.load(ta, b, t0, T, h * P);
  rb.load(tb, b, t0, T, g * N);
  dt_cs_on_warp<L>(0, p.dt, b, t0, T, h, p.A[h], sDt, sCs);
  __syncthreads();
  const float csEnd = sCs[L - 1];
  if (threadIdx.x < L) {
    const int l = threadIdx.x;
    sSc[l] = kR ? expf(sCs[l]) : expf(csEnd - sCs[l]) * sDt[l];
  }
  __syncthreads();
  ra.store(sA, ta, b, t0, T, h * P, [&](int l) { return sSc[l]; });
  rb.store(sB, tb, b, t0, T, g * N, One{});
  __syncthreads();
  typename TT::Acc acc;
  tc_zero<TT>(acc);
  bf_gemm<TT, L, true, true, true, kS>(acc, sA, sB);
  const size_t PN = (size_t)P * N;
  float* slot = (kR ? s.R : s.S) + ((size_t)bh * nc + c) * PN;
  const float* init = !kR && lvl == 0 && p.h0 ? p.h0 + (size_t)bh * PN : nullptr;
  float* next = kR ? (c > 0 ? slot - PN : nullptr) : (c + 1 < nc ? slot + PN : nullptr);
  float* out = kR && c == 0 && p.dh0 ? p.dh0 + (size_t)bh * PN : nullptr;
  chain_hop<TT, N>(acc, expf(csEnd), lvl > 0 ? slot : nullptr, init, lvl == 0 ? slot : nullptr, next, out, lvl > 0 ? fl + lvl - 1 : nullptr, fl + lvl,
                   kR ? 2 : 1);
}
// 1 + 2. (bf16-plane path, split) chunk_local_chain_kernel with S and R in separate CTAs: tickets
// in (level, S then R, sequence·head) order; half the shared memory and registers a CTA (3 a SM).
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 3) chunk_local_split_kernel(const PR p, Scratch s, int nc, int* flags, int* ticket) {
  constexpr bool kSB = !IsBf16<TokElem<decltype(PR::B)>>::value, kSC = !IsBf16<TokElem<decltype(PR::C)>>::value;
  constexpr bool kS = kSB || kSC;  // one plane layout for both halves
  using SM = SplitSmem<L, P, N, kS>;
  extern __shared__ float4 smem4[];
  uint16_t* base = reinterpret_cast<uint16_t*>(smem4);
  float* sF = reinterpret_cast<float*>(base + 2 * SM::kA + (kS ? 2 : 1) * SM::kBt);
  int* sTicket = reinterpret_cast<int*>(sF + 3 * L);
  const int BH = p.batch * p.nheads;
  if (threadIdx.x == 0) *sTicket = atomicAdd(ticket, 1);
  __syncthreads();
  const int tk = *sTicket, lvl = tk / (2 * BH), r = tk % (2 * BH), bh = r % BH;
  int* fl = flags + (size_t)bh * nc;
  if (r < BH) chain_half<false, L, P, N, PR, TokElem<decltype(PR::x)>, TokElem<decltype(PR::B)>, kS>(p, s, nc, fl, lvl, bh, p.x, p.B, base, sF);
  else chain_half<true, L, P, N, PR, TokElem<decltype(PR::gy)>, TokElem<decltype(PR::C)>, kS>(p, s, nc, fl, lvl, bh, p.gy, p.C, base, sF);
}

// 1 + 2. (bf16-plane path, persistent chains) one CTA per (sequence, head) walks every chunk, first
// forward through the own states S and the h_prev chain, then backward through the own state
// gradients R and the dh_end chain, the chain's state held in the product's accumulators
// (state·e^{cs_end}, then += the chunk's product on the tensor cores): no flags, no tickets and no
// state reads between CTAs. The state entering (leaving) each chunk is written to scratch for
// chunk_grad, where the chain kernels write it. The next chunk's tiles and dt load while this
// chunk's product runs. Rounding: acc = decay·h, then += Σ (the chain kernels: decay·h + Σ, with Σ
// summed from zero): the same formulas, not bitwise the same as kChain 1 / 2.
// Thread index read anew (tid_fresh) in the loop's address arithmetic: hoisted out of the chunk loop
// it kept ~30 registers live and spilled at 2 CTAs a SM.
template <class TT>
STRATA_DEV void scale_acc(typename TT::Acc& acc, float f) {
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int j = 0; j < TT::NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] *= f;
}
template <class TT, int N>
STRATA_DEV void store_state_frag(const typename TT::Acc& acc, float* dst) {
  const int t = tid_fresh(), w = t / 32, lane = t % 32;
  float* d = dst + ((w / TT::WN) * TT::MT * 16 + lane / 4) * N + (w % TT::WN) * TT::NT * 8 + 2 * (lane % 4);
#pragma unroll
  for (int i = 0; i < TT::MT; ++i)
#pragma unroll
    for (int j = 0; j < TT::NT; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        __stcg(reinterpret_cast<float2*>(d + (16 * i + 8 * hh) * N + 8 * j), make_float2(acc[i][j][2 * hh], acc[i][j][2 * hh + 1]));
}
// PlaneTile with the thread index read anew in load and store; all of a thread's vectors of the tile
// in flight before the stores.
template <int L, int COLS, class T, bool kS>
struct PlaneTileP {
  static constexpr int kVE = 16 / (int)sizeof(T), kRV = COLS / kVE, kVecs = L * kRV, kPer = (kVecs + kThreads - 1) / kThreads;
  static_assert(COLS % kVE == 0, "tile rows are whole vectors");
  uint4 v[kPer];
  STRATA_DEV static bool live(int tid, int k) { return kVecs % kThreads == 0 || tid + k * kThreads < kVecs; }
  bool vec = false;
  STRATA_DEV void load(const Tok<const T>& t, int b, int t0, int T_, int off) {
    vec = vec16_ok(t);
    if (!vec) return;
    const int tid = tid_fresh();
    const T* base = t.p + b * t.batch + off;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int i = tid + k * kThreads, l = i / kRV, cv = i % kRV;
      v[k] = make_uint4(0u, 0u, 0u, 0u);
      if (live(tid, k) && t0 + l < T_) v[k] = __ldg(reinterpret_cast<const uint4*>(base + (long long)(t0 + l) * t.row) + cv);
    }
  }
  template <class F>
  STRATA_DEV void store(const Planes<kS>& d, const Tok<const T>& t, int b, int t0, int T_, int off, F f) const {
    if (vec) {
      const int tid = tid_fresh();
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        if (!live(tid, k)) continue;
        const int i = tid + k * kThreads, l = i / kRV, cv = i % kRV;
        const uint4 w = v[k];
        const float sc = f(l);
        if constexpr (sizeof(T) == 2) {
          const int c = cv * 8;
          d.put4(l, c, make_float4(__uint_as_float(w.x << 16) * sc, __uint_as_float(w.x & 0xffff0000u) * sc, __uint_as_float(w.y << 16) * sc,
                                   __uint_as_float(w.y & 0xffff0000u) * sc));
          d.put4(l, c + 4, make_float4(__uint_as_float(w.z << 16) * sc, __uint_as_float(w.z & 0xffff0000u) * sc, __uint_as_float(w.w << 16) * sc,
                                       __uint_as_float(w.w & 0xffff0000u) * sc));
        } else {
          d.put4(l, cv * 4, make_float4(__uint_as_float(w.x) * sc, __uint_as_float(w.y) * sc, __uint_as_float(w.z) * sc, __uint_as_float(w.w) * sc));
        }
      }
    } else {
      for (int i = tid_fresh(); i < L * COLS; i += kThreads) {
        const int l = i / COLS, k = i % COLS, tt = t0 + l;
        d.put(l, k, tt < T_ ? ldf(t.p + b * t.batch + (long long)tt * t.row + off + k) * f(l) : 0.f);
      }
    }
  }
};
// Shared memory of chunk_local_persist_kernel (bytes): the scaled x (or gy) planes [L][P + 8] hi, lo |
// B (or C) planes [L][N + 8] (lo where fp32) | dt, cs, scale [L]. (= SplitSmem: one chain at a time.)
// One chain of chunk_local_persist_kernel: kR = false: forward over the chunks, S (x scaled by
// w = e^{cs_end−cs}·dt, B) and h_prev from h0 (or 0); kR: backward, R (gy scaled by e^{cs}, C) and
// dh_end from 0, the last one dh0.
template <bool kR, int L, int P, int N, class PR, class TA, class TBt, bool kS>
STRATA_DEV void persist_chain(const PR& p, const Scratch& s, int nc, int bh, const Tok<const TA>& ta, const Tok<const TBt>& tb, uint16_t* base,
                              float* sF) {
  using TT = TcTile<P, N>;
  using SM = SplitSmem<L, P, N, kS>;
  const Planes<true> sA{base, base + SM::kA, SM::ldP};
  const Planes<kS> sB{base + 2 * SM::kA, base + 2 * SM::kA + SM::kBt, SM::ldN};
  float *sDt = sF, *sCs = sDt + L, *sSc = sCs + L;
  const int H = p.nheads, T = p.seqlen, b = bh / H, h = bh % H, g = h / (H / p.ngroups);
  const float A = p.A[h];
  const size_t PN = (size_t)P * N;
  typename TT::Acc st;  // the state entering (S) / leaving (R) chunk c
  {
    const float* h0 = !kR && p.h0 ? p.h0 + (size_t)bh * PN : nullptr;
#pragma unroll
    for (int i = 0; i < TT::MT; ++i)
#pragma unroll
      for (int j = 0; j < TT::NT; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          float2 v = make_float2(0.f, 0.f);
          if (h0) v = *reinterpret_cast<const float2*>(h0 + TT::row(i, 2 * hh) * N + TT::col(j, 0));
          st[i][j][2 * hh] = v.x;
          st[i][j][2 * hh + 1] = v.y;
        }
  }
  PlaneTileP<L, P, TA, true> ra;
  PlaneTileP<L, N, TBt, kS> rb;
  int c = kR ? nc - 1 : 0;
  ra.load(ta, b, c * L, T, h * P);
  rb.load(tb, b, c * L, T, g * N);
  float2 dtp = load_dt_pair<L>(p.dt, b, c * L, T, h);
  for (int it = 0; it < nc; ++it, c += kR ? -1 : 1) {
    dt_cumsum_warp(sDt, sCs, dtp, A);
    __syncthreads();  // the cumsum; the previous chunk's product is done with the planes
    const float csEnd = sCs[L - 1];
    if (threadIdx.x < L) {
      const int l = threadIdx.x;
      sSc[l] = kR ? expf(sCs[l]) : expf(csEnd - sCs[l]) * sDt[l];
    }
    __syncthreads();
    ra.store(sA, ta, b, c * L, T, h * P, [&](int l) { return sSc[l]; });
    rb.store(sB, tb, b, c * L, T, g * N, One{});
    const int cn = kR ? c - 1 : c + 1;  // the next chunk: its tiles and dt in flight across this product
    if (it + 1 < nc) {
      ra.load(ta, b, cn * L, T, h * P);
      rb.load(tb, b, cn * L, T, g * N);
      dtp = load_dt_pair<L>(p.dt, b, cn * L, T, h);
    }
    __syncthreads();
    store_state_frag<TT, N>(st, (kR ? s.R : s.S) + ((size_t)bh * nc + c) * PN);
    if (it + 1 < nc || (kR && p.dh0)) {  // the state entering chunk cn (S) / leaving it (R; after chunk 0: dh0)
      scale_acc<TT>(st, expf(csEnd));
      bf_gemm<TT, L, true, true, true, kS, 1, true>(st, sA, sB);
    }
  }
  if (kR && p.dh0) {
    float* d = p.dh0 + (size_t)bh * PN;
#pragma unroll
    for (int i = 0; i < TT::MT; ++i)
#pragma unroll
      for (int j = 0; j < TT::NT; ++j)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          *reinterpret_cast<float2*>(d + TT::row(i, 2 * hh) * N + TT::col(j, 0)) = make_float2(st[i][j][2 * hh], st[i][j][2 * hh + 1]);
  }
}
// split = 0: CTA bh runs both chains in turn (grid B·H); split = 1: CTA 2·bh the S chain and 2·bh + 1
// the R chain (grid 2·B·H, when that fits the GPU at once). Either way each chain is the same code
// (bitwise the same results).
template <int L, int P, int N, class PR>
__global__ void __launch_bounds__(kThreads, 2) chunk_local_persist_kernel(const PR p, Scratch s, int nc, int split) {
  constexpr bool kSB = !IsBf16<TokElem<decltype(PR::B)>>::value, kSC = !IsBf16<TokElem<decltype(PR::C)>>::value;
  constexpr bool kS = kSB || kSC;  // one plane layout for both chains
  using SM = SplitSmem<L, P, N, kS>;
  extern __shared__ float4 smem4[];
  uint16_t* base = reinterpret_cast<uint16_t*>(smem4);
  float* sF = reinterpret_cast<float*>(base + 2 * SM::kA + (kS ? 2 : 1) * SM::kBt);
  const int bh = split ? blockIdx.x >> 1 : blockIdx.x;
  if (!split || (blockIdx.x & 1) == 0)
    persist_chain<false, L, P, N, PR, TokElem<decltype(PR::x)>, TokElem<decltype(PR::B)>, kS>(p, s, nc, bh, p.x, p.B, base, sF);
  if (!split) __syncthreads();  // the S chain's last product is done with the planes
  if (!split || (blockIdx.x & 1) == 1)
    persist_chain<true, L, P, N, PR, TokElem<decltype(PR::gy)>, TokElem<decltype(PR::C)>, kS>(p, s, nc, bh, p.gy, p.C, base, sF);
}

// Shared memory of chunk_grad_bf_kernel (bytes): x, gy [L][P + 8] | B, C [L][N + 8] (bf16 planes,
// lo where fp32) | state (dh_end, then h_prev) [P][N + 8] hi, lo | W, M, M·dt [L][L + 8] hi, lo |
// fp32: dt, cs, e^{cs_end−cs}, e^{cs}, rowZ, colZ, F | rowZ, colZ, F, Y partials | E0 partials.
// kPre (prefetch): + a P x N fp32 stage for the next state (cp.async), and, with bf16 x and gy, a
// second x, gy buffer (cp.async straight into the planes).
template <int L, int P, int N, bool kSX, bool kSGy, bool kSB, bool kSC, bool kPre = false>
struct GradBfSmem {
  using TL = TcTile<L, L>;
  using TN = TcTile<L, N>;
  static constexpr int ldP = bf_ld(P), ldN = bf_ld(N), ldL = bf_ld(L);
  static constexpr bool kDbl = kPre && !kSX && !kSGy;
  static constexpr size_t kX = (size_t)L * ldP, kB = (size_t)L * ldN, kSt = (size_t)P * ldN, kL = (size_t)L * ldL;
  static constexpr size_t kHalfs = kX * ((kSX ? 2 : 1) + (kSGy ? 2 : 1)) * (kDbl ? 2 : 1) + kB * ((kSB ? 2 : 1) + (kSC ? 2 : 1)) + 2 * kSt + 6 * kL;
  static constexpr size_t kStage = kPre ? (size_t)P * N : 0;
  static constexpr size_t kFloats = 7 * L + (size_t)L * TL::WN + (size_t)L * TL::WM + (size_t)2 * L * TN::WN + kThreads / 32;
  static constexpr size_t kBytes = kHalfs * 2 + (kStage + kFloats) * sizeof(float);
};
// chunk_grad_bf's configuration for PR: which operands split, whether the prefetch (asked for by
// kPreReq) fits in shared memory, and the layout.
template <int L, int P, int N, class PR, bool kPreReq>
struct GradBfCfg {
  static constexpr bool kSX = !IsBf16<TokElem<decltype(PR::x)>>::value, kSGy = !IsBf16<TokElem<decltype(PR::gy)>>::value;
  static constexpr bool kSB = !IsBf16<TokElem<decltype(PR::B)>>::value, kSC = !IsBf16<TokElem<decltype(PR::C)>>::value;
  static constexpr bool kPre = kPreReq && GradBfSmem<L, P, N, kSX, kSGy, kSB, kSC, true>::kBytes <= 227 * 1024;
  using SM = GradBfSmem<L, P, N, kSX, kSGy, kSB, kSC, kPre>;
};
STRATA_DEV void cp_async16(void* dst, const void* src, bool valid) {  // valid = false: 16 zero bytes
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
STRATA_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
STRATA_DEV void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
template <int L, int P, int N>
constexpr bool bf_fits() {  // the largest case (every tensor fp32)
  return L == 64 && tc_fits<L, P, N>() && TcTile<P, N>::ok && GradBfSmem<L, P, N, true, true, true, true>::kBytes <= 227 * 1024 &&
         P % 16 == 0 && N % 16 == 0;
}

// 3. (bf16-plane path) every gradient of one chunk for the heads of one group:
// chunk_grad_group_kernel's algorithm and reduction orders on the bf16-plane products; C·Bᵀ stays
// in registers across the heads.
// kPreReq: the next state, x, gy and dt are prefetched a phase ahead (cp.async into a stage / the
// second x, gy buffer) where that fits in shared memory: dh_end of head j + 1 and its x, gy while
// head j's dC runs, h_prev of head j while its dx and dB run.
template <int L, int P, int N, class PR, bool kPreReq = false>
__global__ void __launch_bounds__(kThreads, 1) chunk_grad_bf_kernel(const PR p, Scratch s) {
  using TL = TcTile<L, L>;
  using TP = TcTile<L, P>;
  using TN = TcTile<L, N>;
  using Cfg = GradBfCfg<L, P, N, PR, kPreReq>;
  constexpr bool kSX = Cfg::kSX, kSGy = Cfg::kSGy, kSB = Cfg::kSB, kSC = Cfg::kSC, kPre = Cfg::kPre;
  using SM = typename Cfg::SM;
  using TX = TokElem<decltype(PR::x)>;
  using TGy = TokElem<decltype(PR::gy)>;
  using TB = TokElem<decltype(PR::B)>;
  using TC = TokElem<decltype(PR::C)>;
  extern __shared__ float4 smem4[];
  uint16_t* u = reinterpret_cast<uint16_t*>(smem4);
  Planes<kSX> sX0{u, u + SM::kX, SM::ldP};
  u += (kSX ? 2 : 1) * SM::kX;
  Planes<kSGy> sGy0{u, u + SM::kX, SM::ldP};
  u += (kSGy ? 2 : 1) * SM::kX;
  Planes<kSX> sX1 = sX0;  // the second x, gy buffer (SM::kDbl)
  Planes<kSGy> sGy1 = sGy0;
  if constexpr (SM::kDbl) {
    sX1 = Planes<kSX>{u, u + SM::kX, SM::ldP};
    u += SM::kX;
    sGy1 = Planes<kSGy>{u, u + SM::kX, SM::ldP};
    u += SM::kX;
  }
  const Planes<kSB> sB{u, u + SM::kB, SM::ldN};
  u += (kSB ? 2 : 1) * SM::kB;
  const Planes<kSC> sC{u, u + SM::kB, SM::ldN};
  u += (kSC ? 2 : 1) * SM::kB;
  const Planes<true> sSt{u, u + SM::kSt, SM::ldN};  // dh_end, then h_prev
  u += 2 * SM::kSt;
  const Planes<true> sW{u, u + SM::kL, SM::ldL};  // W [l][s]
  const Planes<true> sM{u + 2 * SM::kL, u + 3 * SM::kL, SM::ldL};  // M [l][s]
  const Planes<true> sMd{u + 4 * SM::kL, u + 5 * SM::kL, SM::ldL};  // M_ls·dt_s
  float* sStage = reinterpret_cast<float*>(u + 6 * SM::kL);  // kPre: the next state, fp32 (each thread's own elements)
  float* sDt = sStage + SM::kStage;
  float* sCs = sDt + L;
  float* sEe = sCs + L;  // e^{cs_end − cs}
  float* sEc = sEe + L;  // e^{cs}
  float* sRowZ = sEc + L;
  float* sColZ = sRowZ + L;
  float* sF = sColZ + L;
  float* sRzp = sF + L;
  float* sCzp = sRzp + L * TL::WN;
  float* sFp = sCzp + L * TL::WM;
  float* sYp = sFp + L * TN::WN;
  float* sE0 = sYp + L * TN::WN;

  const int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int H = p.nheads, T = p.seqlen, HG = H / p.ngroups;
  const int t0 = c * L;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  using SR = StateRegs<P, N>;
  // kPre: a state into the stage, x and gy of head hh into buffer `buf` (bf16, 16-byte aligned)
  const auto pre_state = [&](const float* src) {
#pragma unroll
    for (int k = 0; k < SR::kPer; ++k) {
      if (!SR::live(k)) continue;
      const int e = 4 * (tid + k * kThreads);
      cp_async16(sStage + e, src + e, true);
    }
  };
  const bool preXG = SM::kDbl && vec16_ok(p.x) && vec16_ok(p.gy);
  const auto pre_xg = [&](int hh, int buf) {
    if constexpr (SM::kDbl) {
      constexpr int kRowVecs = P / 8, kVecs = L * kRowVecs;
      uint16_t* dxh = buf ? sX1.hi : sX0.hi;
      uint16_t* dgh = buf ? sGy1.hi : sGy0.hi;
      for (int i = tid; i < kVecs; i += kThreads) {
        const int l = i / kRowVecs, cv = i % kRowVecs, tt = t0 + l;
        const bool ok = tt < T;
        const long long ro = (long long)(ok ? tt : 0);
        cp_async16(dxh + l * SM::ldP + cv * 8, p.x.p + b * p.x.batch + ro * p.x.row + hh * P + cv * 8, ok);
        cp_async16(dgh + l * SM::ldP + cv * 8, p.gy.p + b * p.gy.batch + ro * p.gy.row + hh * P + cv * 8, ok);
      }
    }
  };
  float2 dtNext = make_float2(0.f, 0.f);  // kPre: dt of the next head (warp 0)
  if constexpr (kPre) {
    pre_state(s.R + (((size_t)b * H + g * HG) * gridDim.x + c) * P * N);
    if (preXG) pre_xg(g * HG, 0);
    cp_async_commit();
    dtNext = load_dt_pair<L>(p.dt, b, t0, T, g * HG);
  }

  {
    PlaneTile<L, N, TB, kSB> rb;
    PlaneTile<L, N, TC, kSC> rc;
    rb.load(p.B, b, t0, T, g * N);
    rc.load(p.C, b, t0, T, g * N);
    rb.store(sB, p.B, b, t0, T, g * N, One{});
    rc.store(sC, p.C, b, t0, T, g * N, One{});
  }
  __syncthreads();
  typename TL::Acc cb;  // C·Bᵀ: the same for every head of the group, kept in registers
  tc_zero<TL>(cb);
  bf_gemm<TL, N, false, false, kSC, kSB>(cb, sC, sB);
  typename TN::Acc dBs, dCs;  // Σ over the group's heads, in head order
  tc_zero<TN>(dBs);
  tc_zero<TN>(dCs);

  for (int j = 0; j < HG; ++j) {
    const int h = g * HG + j;
    const float A = p.A[h];
    const size_t chunkIdx = ((size_t)b * H + h) * gridDim.x + c;
    const Planes<kSX> sX = (j & 1) ? sX1 : sX0;
    const Planes<kSGy> sGy = (j & 1) ? sGy1 : sGy0;
    __syncthreads();  // the previous head is done with every tile
    if constexpr (kPre) {
      cp_async_wait_all();  // dh_end (own elements of the stage), x, gy (every thread's: the barrier below)
#pragma unroll
      for (int k = 0; k < SR::kPer; ++k) {
        if (!SR::live(k)) continue;
        const int e = 4 * (tid + k * kThreads);
        sSt.put4(e / N, e % N, *reinterpret_cast<const float4*>(sStage + e));
      }
      pre_state(s.S + chunkIdx * P * N);  // h_prev, over the elements just read
      cp_async_commit();
      if (!preXG) {
        PlaneTile<L, P, TX, kSX> rx;
        PlaneTile<L, P, TGy, kSGy> rg;
        rx.load(p.x, b, t0, T, h * P);
        rg.load(p.gy, b, t0, T, h * P);
        rx.store(sX, p.x, b, t0, T, h * P, One{});
        rg.store(sGy, p.gy, b, t0, T, h * P, One{});
      }
      dt_cumsum_warp(sDt, sCs, dtNext, A);
    } else {
      StateRegs<P, N> rv;
      rv.load(s.R + chunkIdx * P * N);
      PlaneTile<L, P, TX, kSX> rx;
      PlaneTile<L, P, TGy, kSGy> rg;
      rx.load(p.x, b, t0, T, h * P);
      rg.load(p.gy, b, t0, T, h * P);
      dt_cs_on_warp<L>(0, p.dt, b, t0, T, h, A, sDt, sCs);
#pragma unroll
      for (int k = 0; k < StateRegs<P, N>::kPer; ++k) {
        if (!rv.live(k)) continue;
        const int e = 4 * (tid + k * kThreads);
        sSt.put4(e / N, e % N, rv.v[k]);
      }
      rx.store(sX, p.x, b, t0, T, h * P, One{});
      rg.store(sGy, p.gy, b, t0, T, h * P, One{});
    }
    __syncthreads();
    const float csEnd = sCs[L - 1];
    if (tid < L) {
      sEe[tid] = expf(csEnd - sCs[tid]);
      sEc[tid] = expf(sCs[tid]);
    }
    {  // M = (gy xᵀ)·decay, W = (C Bᵀ)·decay, M·dt; rowZ_l = Σ_s dt_s·Zd_ls, colZ_s = Σ_l Zd_ls (Zd = M·CBᵀ) from the fragments
      typename TL::Acc gx;
      tc_zero<TL>(gx);
      bf_gemm<TL, P, false, false, kSGy, kSX>(gx, sGy, sX);
      float rz[TL::MT][2], cz[TL::NT][2];
#pragma unroll
      for (int i = 0; i < TL::MT; ++i) rz[i][0] = rz[i][1] = 0.f;
#pragma unroll
      for (int jj = 0; jj < TL::NT; ++jj) cz[jj][0] = cz[jj][1] = 0.f;
#pragma unroll
      for (int i = 0; i < TL::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TL::NT; ++jj)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int l = TL::row(i, 2 * hh), s0 = TL::col(jj, 0);
            const float csl = sCs[l];
            float wv[2], mv[2], mdv[2];
#pragma unroll
            for (int qq = 0; qq < 2; ++qq) {
              const int q = 2 * hh + qq, ss = s0 + qq;
              const float cbv = cb[i][jj][q];
              const float dec = ss <= l ? expf(csl - sCs[ss]) : 0.f;
              const float m = gx[i][jj][q] * dec, z = m * cbv, dts = sDt[ss];
              wv[qq] = cbv * dec;
              mv[qq] = m;
              mdv[qq] = m * dts;
              rz[i][hh] = fmaf(dts, z, rz[i][hh]);
              cz[jj][qq] += z;
            }
            sW.put2(l, s0, wv[0], wv[1]);
            sM.put2(l, s0, mv[0], mv[1]);
            sMd.put2(l, s0, mdv[0], mdv[1]);
          }
      rz_cz_partials<TL>(rz, cz, sRzp, sCzp, warp, lane);
    }
    __syncthreads();
    rz_cz_sums<L, TL>(tid, sRzp, sCzp, sRowZ, sColZ);
    {  // dx (L x P) = [(B·dh_endᵀ)·e^{cs_end−cs_s} + Wᵀ·gy]·dt_s
      typename TP::Acc acc;
      tc_zero<TP>(acc);
      bf_gemm<TP, N, false, false, kSB, true>(acc, sB, sSt);
      tc_scale_rows<TP>(acc, [&](int r) { return sEe[r]; });
      bf_gemm<TP, L, true, true, true, kSGy>(acc, sW, sGy);
      if (p.dx.p) {
#pragma unroll
        for (int i = 0; i < TP::MT; ++i)
#pragma unroll
          for (int jj = 0; jj < TP::NT; ++jj)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              const int ss = TP::row(i, q), tt = t0 + ss;
              if (tt >= T) continue;
              stf(p.dx.p + b * p.dx.batch + (long long)tt * p.dx.row + h * P + TP::col(jj, q), acc[i][jj][q] * sDt[ss]);
            }
      }
    }
    {  // dB (L x N): U = e^{cs_end−cs_s}·x_sᵀ dh_end, F_s = B_s·U_s, then + Σ_l M_ls C_l, times dt_s, into Σ_heads
      typename TN::Acc acc;
      tc_zero<TN>(acc);
      bf_gemm<TN, P, false, true, kSX, true>(acc, sX, sSt);
      tc_scale_rows<TN>(acc, [&](int r) { return sEe[r]; });
      tc_row_partials<TN>(acc, [&](int ss, int n) { return sB.at(ss, n); }, sFp);
      bf_gemm<TN, L, true, true, true, kSC>(acc, sM, sC);
#pragma unroll
      for (int i = 0; i < TN::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TN::NT; ++jj)
#pragma unroll
          for (int q = 0; q < 4; ++q) dBs[i][jj][q] = fmaf(acc[i][jj][q], sDt[TN::row(i, q)], dBs[i][jj][q]);
    }
    {
      StateRegs<P, N> rv;  // h_prev, in flight across the barrier
      if constexpr (kPre) cp_async_wait_all();
      else rv.load(s.S + chunkIdx * P * N);
      __syncthreads();  // every read of dh_end is done; F partials complete
      if (tid < L) {
        float f = 0.f;
        for (int k = 0; k < TN::WN; ++k) f += sFp[tid * TN::WN + k];
        sF[tid] = f;
      }
      float e0 = 0.f;  // ⟨dh_end, h_prev⟩ while h_prev replaces dh_end
#pragma unroll
      for (int k = 0; k < StateRegs<P, N>::kPer; ++k) {
        if (!rv.live(k)) continue;
        const int e = 4 * (tid + k * kThreads), r = e / N, cc = e % N;
        const float4 v = kPre ? *reinterpret_cast<const float4*>(sStage + e) : rv.v[k], o = sSt.at4(r, cc);
        e0 = fmaf(o.x, v.x, e0); e0 = fmaf(o.y, v.y, e0); e0 = fmaf(o.z, v.z, e0); e0 = fmaf(o.w, v.w, e0);
        sSt.put4(r, cc, v);
      }
      e0 = warp_sum(e0);
      if (lane == 0) sE0[warp] = e0;
      if constexpr (kPre) {
        if (j + 1 < HG) {  // the next head's dh_end, x, gy and dt, while this head's dC runs
          pre_state(s.R + (chunkIdx + gridDim.x) * P * N);
          if (preXG) pre_xg(h + 1, (j + 1) & 1);
          cp_async_commit();
          dtNext = load_dt_pair<L>(p.dt, b, t0, T, h + 1);
        }
      }
    }
    __syncthreads();
    {  // dC (L x N): V = e^{cs_l}·gy_lᵀ h_prev, Y_l = C_l·V_l, then + Σ_s M_ls dt_s B_s, into Σ_heads
      typename TN::Acc acc;
      tc_zero<TN>(acc);
      bf_gemm<TN, P, false, true, kSGy, true>(acc, sGy, sSt);
      tc_scale_rows<TN>(acc, [&](int r) { return sEc[r]; });
      tc_row_partials<TN>(acc, [&](int l, int n) { return sC.at(l, n); }, sYp);
      bf_gemm<TN, L, false, true, true, kSB>(acc, sMd, sB);
#pragma unroll
      for (int i = 0; i < TN::MT; ++i)
#pragma unroll
        for (int jj = 0; jj < TN::NT; ++jj)
#pragma unroll
          for (int q = 0; q < 4; ++q) dCs[i][jj][q] += acc[i][jj][q];
    }
    __syncthreads();
    if (warp == 0) chunk_head_tail<TN::WN>(p, s.dApart, chunkIdx, lane, sYp, sDt, sF, sColZ, sRowZ, sE0, csEnd, A, b, t0, T, h);
  }
  store_group_dbdc<TN, N>(p, dBs, dCs, b, g, t0, T);  // dB, dC of the group: one store each
}


// The paths: 0 = fp32 CUDA cores (per head), 1 = tensor cores per head (partials + finish pass),
// 2 = tensor cores (TF32) per group with the state_pass launch (the previous default), 3 = bf16
// planes per group with the state passing in chunk_local (the default). A path falls back to the one
// below where its tiling or shared memory does not fit; paths 2 and 3 keep no dB / dC partials.
constexpr int kPathSimt = 0, kPathTc = 1, kPathGroupTf32 = 2, kPathGroup = 3;
template <int kPath, int L, int P, int N>
constexpr int resolve_path() {
  return (kPath >= kPathGroup && group_fits<L, P, N>() && bf_fits<L, P, N>()) ? kPathGroup
         : (kPath >= kPathGroupTf32 && group_fits<L, P, N>())                 ? kPathGroupTf32
         : (kPath >= kPathTc && tc_fits<L, P, N>())                           ? kPathTc
                                                                              : kPathSimt;
}
// The chunk kernels of paths 0 … 2 (only the chosen path's kernels are instantiated).
template <int kP, int L, int P, int N, class PR>
inline auto chunk_local_for() {
  if constexpr (kP >= kPathGroupTf32) return &chunk_local_fast_kernel<L, P, N, PR>;
  else if constexpr (kP == kPathTc) return &chunk_local_tc_kernel<L, P, N, PR>;
  else return &chunk_local_kernel<L, P, N, PR>;
}
template <int kP, int L, int P, int N, class PR>
inline auto chunk_grad_for() {
  if constexpr (kP >= kPathGroupTf32) return &chunk_grad_group_kernel<L, P, N, PR>;
  else if constexpr (kP == kPathTc) return &chunk_grad_tc_kernel<L, P, N, PR>;
  else return &chunk_grad_kernel<L, P, N, PR>;
}
template <int kP, int L, int P, int N>
constexpr size_t chunk_local_smem() {
  return (kP == kPathSimt ? LocalSmem<L, P, N>::kFloats : LocalSmemTc<L, P, N>::kFloats) * sizeof(float);
}
template <int kP, int L, int P, int N>
constexpr size_t chunk_grad_smem() {
  return kP >= kPathGroupTf32 ? GroupSmem<L, P, N>::kBytes : kP == kPathTc ? GradSmemTc<L, P, N>::kBytes : GradSmem<L, P, N>::kBytes;
}
template <int L, int P, int N, class PR>
constexpr size_t chain_smem() {
  return ChainSmem<L, P, N, !IsBf16<TokElem<decltype(PR::B)>>::value, !IsBf16<TokElem<decltype(PR::C)>>::value>::kBytes;
}
template <int L, int P, int N, class PR, bool kPre = false>
constexpr size_t grad_bf_smem() {
  return GradBfCfg<L, P, N, PR, kPre>::SM::kBytes;
}
template <int L, int P, int N, class PR>
constexpr size_t split_smem() {
  return SplitSmem<L, P, N, !IsBf16<TokElem<decltype(PR::B)>>::value || !IsBf16<TokElem<decltype(PR::C)>>::value>::kBytes;
}

template <int kChain, int kP, int L, int P, int N, class PR>
constexpr size_t local_smem_for() {
  if constexpr (kChain == 1) return chain_smem<L, P, N, PR>();
  else if constexpr (kChain >= 2) return split_smem<L, P, N, PR>();
  else return chunk_local_smem<kP, L, P, N>();
}
template <int kBf, int kP, int L, int P, int N, class PR>
constexpr size_t grad_smem_for() {
  if constexpr (kBf != 0) return grad_bf_smem<L, P, N, PR, kBf == 2>();
  else return chunk_grad_smem<kP, L, P, N>();
}

// 4. dB, dC over the heads of each group (one sub-batch); dA over batch and chunks (once).
template <int N, class PR>
__global__ void __launch_bounds__(kThreads) finish_bc_kernel(const PR p, Scratch s) {
  const int H = p.nheads, G = p.ngroups, HG = H / G, T = p.seqlen;
  const long long total = (long long)p.batch * T * G * N;
  const long long i = (long long)blockIdx.x * kThreads + threadIdx.x;
  if (i >= total) return;
  const int n = (int)(i % N);
  const long long r = i / N;
  const int gg = (int)(r % G);
  const long long bt = r / G;
  const int b = (int)(bt / T), t = (int)(bt % T);
  const size_t src = ((size_t)bt * H + (size_t)gg * HG) * N + n;
  if (p.dB.p) {
    float v = 0.f;
    for (int j = 0; j < HG; ++j) v += s.dBpart[src + (size_t)j * N];
    stf(p.dB.p + b * p.dB.batch + (long long)t * p.dB.row + gg * N + n, v);
  }
  if (p.dC.p) {
    float v = 0.f;
    for (int j = 0; j < HG; ++j) v += s.dCpart[src + (size_t)j * N];
    stf(p.dC.p + b * p.dC.batch + (long long)t * p.dC.row + gg * N + n, v);
  }
}
__global__ void finish_dA_kernel(float* dA, const float* dApart, int batch, int H, int nc) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  float v = 0.f;
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < nc; ++c) v += dApart[((size_t)b * H + h) * nc + c];
  dA[h] = v;
}

}  // namespace detail

constexpr int kGradChunk = 64;
using detail::kPathGroup;
using detail::kPathGroupTf32;
using detail::kPathSimt;
using detail::kPathTc;

// The path ssd_grad<P, N, kPath> runs (kPath falls back where its tiles do not fit).
template <int P, int N, int kPath = kPathGroup>
constexpr int ssd_grad_path() { return detail::resolve_path<kPath, kGradChunk, P, N>(); }

// Scratch the compiler reserves: bytes per token of the call (B·T) plus fixed bytes. Any batch and
// length fit: the launcher runs the batch in as many sub-batches of sequences as the space needs
// (one, unless T is short of a multiple of the chunk). The per-head paths also keep per-head dB / dC
// partials (2·H·N floats a token); the group path does not.
template <int P, int N, int kPath = kPathGroup>
constexpr size_t ssd_grad_scratch_per_token(int H) {
  return ((size_t)H * (2 * P * N + 1) * 4 + kGradChunk - 1) / kGradChunk + (ssd_grad_path<P, N, kPath>() >= kPathGroupTf32 ? 0 : (size_t)2 * H * N * 4) +
         (size_t)H * 4;
}
template <int P, int N>
constexpr size_t ssd_grad_scratch_fixed(int H) { return (size_t)H * (2 * P * N + 1) * 4 + 8 * 256; }
template <int P, int N, int kPath = kPathGroup>
inline size_t ssd_grad_scratch_bytes(int batch, int T, int H) {
  return ssd_grad_scratch_per_token<P, N, kPath>(H) * batch * T + ssd_grad_scratch_fixed<P, N>(H);
}

template <int P, int N>
constexpr size_t ssd_grad_smem_bytes() { return detail::GradSmem<kGradChunk, P, N>::kBytes; }

namespace detail {
// ssd_grad's body. On the default path (kPathGroup) kChain / kBf pick its parts, for A/B in the
// harness: kChain 0 = chunk_local_fast + state_pass, 1 = chunk_local_chain (S and R in one CTA),
// 2 = chunk_local_split (S and R in separate CTAs), 3 = chunk_local_persist (a CTA walks every chunk
// of a chain, the state in registers; the S and R chains in separate CTAs where 2·B·H CTAs fit the
// GPU at 2 a SM, else one after the other in one CTA), 4 / 5: chunk_local_persist always / never split; kBf 0 = chunk_grad_group (TF32), 1 =
// chunk_grad_bf, 2 = chunk_grad_bf with the prefetch.
template <int P, int N, int kPath, int kChain, int kBf, class PR>
inline cudaError_t ssd_grad_impl(const PR& p0, size_t scratch_bytes, cudaStream_t stream) {
  constexpr int L = kGradChunk;
  constexpr int kP = ssd_grad_path<P, N, kPath>();
  constexpr bool kPartials = kP < kPathGroupTf32;
  constexpr int kUseChain = kP == kPathGroup ? kChain : 0, kUseBf = kP == kPathGroup ? kBf : 0;
  static_assert(P % detail::kGrid == 0 && N % detail::kGrid == 0, "P and N must be multiples of 16");
  static_assert(ssd_grad_smem_bytes<P, N>() <= 227 * 1024, "P x N too large for the chunk-gradient tile");
  if (p0.batch < 0 || p0.seqlen < 0 || p0.nheads <= 0 || p0.ngroups <= 0 || p0.nheads % p0.ngroups) return cudaErrorInvalidValue;
  if (!p0.gy.p || !p0.x.p || !p0.dt.p || !p0.A || !p0.B.p || !p0.C.p || !p0.scratch) return cudaErrorInvalidValue;
  if (p0.batch == 0) return cudaSuccess;
  const int H = p0.nheads, G = p0.ngroups, T = p0.seqlen, nc = (T + L - 1) / L;
  constexpr size_t smemL = detail::local_smem_for<kUseChain, kP, L, P, N, PR>();
  constexpr size_t smemG = detail::grad_smem_for<kUseBf, kP, L, P, N, PR>();
  const auto k1 = detail::chunk_local_for<kP, L, P, N, PR>();
  const auto k3 = detail::chunk_grad_for<kP, L, P, N, PR>();
  cudaError_t e = cudaSuccess;
  if constexpr (kUseChain == 1) e = cudaFuncSetAttribute(&detail::chunk_local_chain_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemL);
  else if constexpr (kUseChain == 2) e = cudaFuncSetAttribute(&detail::chunk_local_split_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemL);
  else if constexpr (kUseChain >= 3) e = cudaFuncSetAttribute(&detail::chunk_local_persist_kernel<L, P, N, PR>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemL);
  else e = cudaFuncSetAttribute(k1, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemL);
  if (e == cudaSuccess) {
    if constexpr (kUseBf != 0)
      e = cudaFuncSetAttribute(&detail::chunk_grad_bf_kernel<L, P, N, PR, kUseBf == 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemG);
    else e = cudaFuncSetAttribute(k3, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smemG);
  }
  if (e != cudaSuccess) return e;
  float* base = static_cast<float*>(p0.scratch);
  float* dApart = base;
  const size_t dAfloats = detail::align64((size_t)p0.batch * H * nc);
  const size_t avail = scratch_bytes / sizeof(float);
  if (avail < dAfloats) return cudaErrorInvalidValue;
  // sequences per sub-batch: as many as fit (sub_floats is affine in the count, up to alignment)
  const size_t one = detail::sub_floats<L, P, N>(1, T, H, nullptr, nullptr, kPartials) + 5 * 64;
  int nb = (int)std::max<size_t>(1, std::min<size_t>((size_t)p0.batch, (avail - dAfloats) / one));
  nb = std::max(1, std::min(nb, 65535 / H));  // grid.z = sequences, state_pass grid.y = sequences · heads
  while (nb > 1 && detail::sub_floats<L, P, N>(nb, T, H, nullptr, nullptr, kPartials) > avail - dAfloats) --nb;
  if (nb < 1 || detail::sub_floats<L, P, N>(nb, T, H, nullptr, nullptr, kPartials) > avail - dAfloats) return cudaErrorInvalidValue;
  const size_t PNs = (size_t)P * N;
  for (int b0 = 0; b0 < p0.batch; b0 += nb) {
    PR p = p0;
    p.batch = std::min(nb, p0.batch - b0);
    const long long bo = b0;
    p.gy.p += bo * p.gy.batch; p.x.p += bo * p.x.batch; p.dt.p += bo * p.dt.batch;
    p.B.p += bo * p.B.batch; p.C.p += bo * p.C.batch;
    if (p.dx.p) p.dx.p += bo * p.dx.batch;
    if (p.ddt.p) p.ddt.p += bo * p.ddt.batch;
    if (p.dB.p) p.dB.p += bo * p.dB.batch;
    if (p.dC.p) p.dC.p += bo * p.dC.batch;
    if (p.h0) p.h0 += bo * H * PNs;
    if (p.dh0) p.dh0 += bo * H * PNs;
    detail::Scratch s{};
    detail::sub_floats<L, P, N>(p.batch, T, H, &s, base + dAfloats, kPartials);
    s.dApart = dApart + bo * H * nc;
    const dim3 grid(nc, H, p.batch);
    if constexpr (kUseChain >= 3) {
      if (nc > 0) {  // the chains in separate CTAs where all of them fit at 2 a SM
        int dev = 0, sms = 0;
        e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        if (e != cudaSuccess) return e;
        const int split = kUseChain == 4 ? 1 : kUseChain == 5 ? 0 : 2 * p.batch * H <= 2 * sms ? 1 : 0;
        detail::chunk_local_persist_kernel<L, P, N, PR><<<(unsigned)((split + 1) * p.batch * H), detail::kThreads, smemL, stream>>>(p, s, nc, split);
      }
      else if (p.dh0) {
        e = cudaMemsetAsync(p.dh0, 0, (size_t)p.batch * H * PNs * sizeof(float), stream);
        if (e != cudaSuccess) return e;
      }
    } else if constexpr (kUseChain != 0) {
      // flags [sequence·head][level] in the decay part (unused here), the ticket in this sub-batch's
      // dA partials (written by chunk_grad afterwards)
      if (nc > 0) {
        int* flags = reinterpret_cast<int*>(s.decay);
        int* ticket = reinterpret_cast<int*>(s.dApart);
        e = cudaMemsetAsync(flags, 0, (size_t)p.batch * H * nc * sizeof(int), stream);
        if (e == cudaSuccess) e = cudaMemsetAsync(ticket, 0, sizeof(int), stream);
        if (e != cudaSuccess) return e;
        if constexpr (kUseChain == 1)
          detail::chunk_local_chain_kernel<L, P, N, PR><<<(unsigned)(nc * p.batch * H), detail::kThreads, smemL, stream>>>(p, s, nc, flags, ticket);
        else detail::chunk_local_split_kernel<L, P, N, PR><<<(unsigned)(2 * nc * p.batch * H), detail::kThreads, smemL, stream>>>(p, s, nc, flags, ticket);
      } else if (p.dh0) {
        e = cudaMemsetAsync(p.dh0, 0, (size_t)p.batch * H * PNs * sizeof(float), stream);
        if (e != cudaSuccess) return e;
      }
    } else {
      if (nc > 0) k1<<<grid, detail::kThreads, smemL, stream>>>(p, s);
      // with no tokens this still writes dh0 = 0
      detail::state_pass_kernel<P, N, PR><<<dim3(ceil_div(P * N, detail::kThreads), p.batch * H), detail::kThreads, 0, stream>>>(p, s, nc);
    }
    if (nc > 0) {
      if constexpr (kUseBf != 0) {
        detail::chunk_grad_bf_kernel<L, P, N, PR, kUseBf == 2><<<dim3(nc, G, p.batch), detail::kThreads, smemG, stream>>>(p, s);
      } else if constexpr (kP >= kPathGroupTf32) {
        k3<<<dim3(nc, G, p.batch), detail::kThreads, smemG, stream>>>(p, s);
      } else {
        k3<<<grid, detail::kThreads, smemG, stream>>>(p, s);
        const long long total = (long long)p.batch * T * G * N;
        if (p.dB.p || p.dC.p) detail::finish_bc_kernel<N, PR><<<(unsigned)ceil_div<long long>(total, detail::kThreads), detail::kThreads, 0, stream>>>(p, s);
      }
    }
  }
  if (p0.dA) detail::finish_dA_kernel<<<ceil_div(H, 128), 128, 0, stream>>>(p0.dA, dApart, p0.batch, H, nc);
  return cudaGetLastError();
}
}  // namespace detail

// Every requested gradient of one ssdScan on `stream`: per sub-batch the chunk states and state
// passing (kPathGroup: one launch, no memsets; the others: chunk_local then state_pass), the chunk gradients
// (the per-head paths then a dB/dC pass over the heads), then dA.
// `scratch_bytes`: the size of p.scratch (at least ssd_grad_scratch_bytes<P, N, kPath> for this call).
// kPath: kPathGroup (default), kPathGroupTf32 (the previous default), kPathTc (the per-head
// tensor-core kernels) or kPathSimt (the fp32 CUDA-core kernels), kept for A/B timing and as the
// fallbacks where a path's tiles do not fit.
// the default path's parts (ssd_grad_impl's kChain, kBf): chunk_local_persist (kChain 2, the
// ticketed chain of chunk_local_split, was the default until 2026-11-30 session 6), chunk_grad_bf with the prefetch
constexpr int kDefaultChain = 3, kDefaultBf = 2;
template <int P, int N, int kPath = kPathGroup, class PR>
inline cudaError_t ssd_grad(const PR& p0, size_t scratch_bytes, cudaStream_t stream = 0) {
  return detail::ssd_grad_impl<P, N, kPath, kDefaultChain, kDefaultBf>(p0, scratch_bytes, stream);
}

}  // namespace
}  // namespace ssd_bwd
}  // namespace strata

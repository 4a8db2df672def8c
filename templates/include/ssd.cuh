// ssd.cuh — Mamba-2 SSD (state space duality) chunked scan, forward, for Hopper (sm_90a).
//
// Definition (per batch b, head h; state h is P x N, fp32):
//   dt_t = softplus(dt_raw_t + dt_bias[h]),   a_t = exp(dt_t * A[h])   (A = -exp(A_log) < 0)
//   h_t  = a_t * h_{t-1} + dt_t * x_t (outer) B_t          x_t in R^P, B_t in R^N
//   y_t  = h_t . C_t + D[h] * x_t                           (h_t . C_t = sum_n h_t[:, n] C_t[n])
// Head h reads group g = h / (H / G) of B and C.
//
// Chunked algorithm (chunk length L = 64 or 128, T need not be a multiple of L):
// with cs_l = sum_{r<=l} dt_r A (cumsum inside the chunk, fp32), for row l of chunk c:
//   y_l = sum_{s<=l} (C_l . B_s) exp(cs_l - cs_s) dt_s x_s      (intra-chunk "diagonal", quadratic)
//       + exp(cs_l) * C_l . h_prev                               (state -> output, "off-diagonal")
//       + D x_l
//   h_next = exp(cs_{L-1}) h_prev + sum_s x_s (outer) B_s * exp(cs_{L-1} - cs_s) dt_s   (chunk state)
// Instead of materialising per-chunk states and running a separate state-passing kernel
// (mamba_ssm: chunk_cumsum / chunk_state / state_passing / chunk_scan), one CTA owns one
// (b, h) and walks the chunks sequentially, carrying h_prev in fp32 in shared memory
// (swizzled [P][N], 32 KB) across chunks: per chunk it
//   1. cp.async-loads C, B (L x N) and x (L x P) bf16 tiles into swizzled shared memory
//      (rows past T are zero-filled) and computes dt / cumsum(dt*A) for the chunk (warp scan);
//   2. phase A (warp w owns 16 rows of the chunk, all of P; for L = 64 two warps split P):
//      O = C h_prev^T (mma; h_prev fragments read from the fp32 smem state, rounded to bf16),
//      rows scaled by exp(cs_l);
//      then flash-attention style over the causal 16-column blocks s <= l:
//      S = C B^T (mma), S *= exp(cs_l - cs_s) dt_s (masked), O += S x (mma, S re-used as the
//      A fragment straight from the accumulators); y = O + D x, stored bf16;
//   3. barrier; phase B (warp w owns a 16 x N/2 slice of the P x N state): load it into mma
//      accumulators, h *= exp(cs_{L-1}), h += (x * w)^T B with w_s = exp(cs_{L-1} - cs_s) dt_s,
//      store back (fp32). x*w is split into bf16 hi + lo parts (two mmas) so that the carried
//      fp32 state keeps ~fp32 accuracy; 4. barrier.
// All matmuls are mma.sync.m16n8k16 bf16 x bf16 -> fp32 with ldmatrix operand loads.
// Exponentials use ex2.approx on log2e-prescaled cumsums. The carried state never leaves the
// CTA; h0 is read at the start and hT written at the end (hT may alias h0).
// One CTA of 256 threads per (b, h); 113 KB smem for L=128, P=64, N=128 -> 2 CTAs / SM
// (exactly the 228 KB of an SM), <= 128 registers, no spills.
//
// Chunk-parallel variant (ssd_chunk_parallel_fwd_kernel, taken when SsdParams::workspace is set):
// one CTA per (chunk, b, h), chunk-major, the same per-chunk math; each CTA computes its chunk's
// own state first, then waits for its predecessor's flag, adds the decayed incoming state and
// publishes the result through one fp32 slot per (b, h) (hT itself when requested), then writes
// its outputs. Correct (tests/gpu/ssm_test.cu), but measured slower on H200 at B2 T8192 H128
// (1.213 ms vs 1.033 ms for the sequential kernel): with 2 CTAs per SM, each SM still runs load ->
// state -> outputs back to back, and the chain adds an L2 round trip + fence per chunk. The code
// generator keeps the sequential kernel (ssd.cu.hbs passes no workspace); docs/PERF-NOTES.md.
//
// wgmma variant (ssd_wgmma_fwd_kernel through ssd_chunked_fwd_wgmma; sm_90a, P = 64, N = 128,
// chunk 128; tested and timed by tests/gpu/ssm_test.cu but NOT generated: it runs at the
// 255-register limit and spills 8 bytes, which the CI compile check forbids, for only 7% at B2
// T8192 — docs/PERF-NOTES.md): the same sequential walk and the same arithmetic (its
// y and hT match the mma.sync kernel's bit for bit at B2 T8192 H128), on two consumer warpgroups
// of 128 threads. Warpgroup wg owns chunk rows [64 wg, +64) of the outputs and state columns
// [64 wg, +64) of h, which stays in fp32 wgmma accumulators (registers) across chunks; per chunk:
//   barrier (tiles of chunk c, its dt / cumsum / chunk-state weights, and h_c rounded to bf16 in
//   smem are visible); issue O = C_rows h_cᵀ (m64n64, 8 k-steps) and S = C_rows Bᵀ over the
//   causal columns (m64n64 for wg 0, m64n128 for wg 1), both operands in 128B-swizzled smem;
//   cp.async the next chunk's C, B, x into the other stage (warp 0 stages its raw dt); wait;
//   O rows *= exp(cs_l), S *= exp(cs_l - cs_s) dt_s (masked), S -> bf16 A fragments in registers;
//   issue O += S x (A from registers, x an MN-major operand); build (x w)ᵀ hi/lo fragments
//   (ldmatrix.trans; w_s = exp(cs_{L-1} - cs_s) dt_s precomputed once per chunk) and issue
//   h = exp(cs_{L-1}) h + (x w)ᵀ B (m64n64, 16 k-steps with the split); wait; y = O + D x;
//   write h_{c+1} as bf16 into the other state buffer. One barrier per chunk; 195 KB smem,
//   1 CTA (256 threads, 255 registers; split=1 spills 8 bytes) per SM.
// Measured (H200, tests/gpu/ssm_test.cu): B2 T8192 H128 P64 G8 N128 0.957 ms (split=1) /
// 0.867 ms (split=0) vs 1.026 ms for the mma.sync kernel; floor 0.152 ms. Still latency bound:
// the per-warpgroup chain of small (n64) wgmmas and the element-wise steps between them run
// ~13k cycles per chunk against ~3k of tensor work (docs/PERF-NOTES.md).
//
// Decode / generic sequential path: ssd_decode_kernel, one CTA per (b, h), any T (meant for
// T = 1): state row in registers (one warp per p, lanes over n), fp32 throughout.
//
// Layouts: token-major, row-major. Every activation = base pointer + batch stride + token row
// stride (elements), so inputs may be column slices of a fused projection output:
//   x [B,T,H,P] bf16, dt_raw [B,T,H] bf16, Bm/Cm [B,T,G,N] bf16, y [B,T,H,P] bf16;
//   dt_bias/A/D [H] fp32; h0/hT [B,H,P,N] fp32 contiguous.
// Chunked-path alignment: x/B/C base pointers 16-byte aligned and their strides multiples of
// 8 elements (cp.async 16 B); y strides even. The launcher checks and returns
// cudaErrorInvalidValue otherwise.
#pragma once

#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/math.cuh"
#include "strata/ptx.cuh"
#include "strata/pdl.cuh"

namespace strata {
namespace ssd {

struct SsdParams {
  int batch = 0, seqlen = 0, nheads = 0, ngroups = 0;  // P (headdim), N (dstate): template params
  const __nv_bfloat16* x = nullptr;  long long x_batch_stride = 0, x_row_stride = 0;
  const __nv_bfloat16* dt = nullptr; long long dt_batch_stride = 0, dt_row_stride = 0;
  const float* dt_f32 = nullptr;     // instead of dt: an f32 dt (a stored softplus(dt + bias)), same strides
  const float* dt_bias = nullptr;    // [H], optional (0)
  bool dt_softplus = true;           // false: dt is already softplus(dt_raw + bias) (stored for the backward)
  const float* A = nullptr;          // [H], A = -exp(A_log)
  const __nv_bfloat16* B = nullptr;  long long B_batch_stride = 0, B_row_stride = 0;
  const __nv_bfloat16* C = nullptr;  long long C_batch_stride = 0, C_row_stride = 0;
  const float* D = nullptr;          // [H], optional (0)
  const float* h0 = nullptr;         // [B,H,P,N], optional (zeros)
  float* hT = nullptr;               // [B,H,P,N], optional; may alias h0
  __nv_bfloat16* y = nullptr;        long long y_batch_stride = 0, y_row_stride = 0;
  // Chunk-parallel path (T > L): ssd_chunked_workspace_bytes, 256-byte aligned, contents
  // undefined on entry. Null: the sequential-chunk kernel.
  void* workspace = nullptr;         size_t workspace_bytes = 0;
};

namespace detail {

// PTX wrappers (cp.async, ldmatrix, mma.sync), fast_exp2 / fast_softplus and the bf16 packing
// come from strata/ (ptx.cuh, math.cuh, bf16.cuh).

// XOR swizzle of 16-byte chunks inside rows of RL bf16 elements (RL multiple of 64):
// ldmatrix on 8 consecutive rows hits 8 distinct bank groups.
template <int RL>
__device__ __forceinline__ int swz(int row, int col) {
  return row * RL + ((((col >> 3) ^ (row & 7)) << 3) | (col & 7));
}
// fp32 rows of RL floats (RL multiple of 64): XOR 32-byte chunks with row & 7.
template <int RL>
__device__ __forceinline__ int swzf(int row, int col) {
  return row * RL + (col ^ ((row & 7) << 3));
}

template <int L, int P, int N>
struct SsdSmem {
  static constexpr size_t kBytes =
      sizeof(__nv_bfloat16) * (size_t)(2 * L * N + L * P) + sizeof(float) * (size_t)(P * N + 2 * L);
};

// Work split of one chunk over the CTA's 8 warps (both chunked kernels).
template <int L, int P, int N>
struct SsdTile {
  static constexpr int NW = 8;
  static constexpr int RB = L / 16;       // outputs: 16-row blocks per chunk
  static constexpr int PSPLIT = NW / RB;  // outputs: warps sharing one row block (split P)
  static constexpr int PW = P / PSPLIT;   // outputs: P columns per warp
  static constexpr int MT = P / 16;       // state: m16 tiles over P
  static constexpr int NSPL = NW / MT;    // state: splits over N
  static constexpr int NWB = N / NSPL;    // state: N columns per warp
  static_assert(L == 64 || L == 128, "chunk must be 64 or 128");
  static_assert(P % 64 == 0 && N % 64 == 0, "P, N multiples of 64 (swizzle)");
  static_assert(NW % RB == 0 && P % PSPLIT == 0 && PW % 16 == 0, "output split");
  static_assert(NW % MT == 0 && N % NSPL == 0 && NWB % 16 == 0, "state split");
  static_assert(P * N <= 8192, "state must fit 32 fp32 registers per thread");
};

// cp.async an L x W bf16 tile (token rows t0.. of a token-major operand) into swizzled smem
// (row length W); rows >= Lc are zero-filled.
template <int L, int W>
__device__ __forceinline__ void load_tile(__nv_bfloat16* dst, const __nv_bfloat16* src, long long row_stride, int t0,
                                          int Lc, int tid) {
  constexpr int CPR = W / 8;
#pragma unroll 4
  for (int i = tid; i < L * CPR; i += 256) {
    const int r = i / CPR, ch = i % CPR;
    const bool v = r < Lc;
    const long long tt = v ? (long long)(t0 + r) : 0;
    cp_async_16(smem_u32(dst + r * W + ((ch ^ (r & 7)) << 3)), src + tt * row_stride + ch * 8, v);
  }
}

// dt and cumsum(dt*A) (log2 units) of one chunk into sDt / sCs: one warp, L/32 consecutive rows per
// lane. Rows >= Lc get dt = 0, so sCs[L-1] is the cumsum of the last valid row. Split in two so
// that a pipelined kernel can issue the loads a chunk ahead: chunk_dt_load (raw dt + bias, global
// loads only) and chunk_dt_finish (softplus, warp scan, smem stores).
template <int L>
__device__ __forceinline__ void chunk_dt_load(const SsdParams& p, long long dt_base, int t0, int Lc, float dtb, int lane,
                                              float (&raw)[L / 32]) {
  constexpr int RPL = L / 32;
#pragma unroll
  for (int k = 0; k < RPL; ++k) {
    const int r = lane * RPL + k;
    raw[k] = 0.f;
    if (r < Lc) {
      const long long di = dt_base + (long long)(t0 + r) * p.dt_row_stride;
      raw[k] = (p.dt_f32 ? p.dt_f32[di] : __bfloat162float(p.dt[di])) + dtb;
    }
  }
}
template <int L>
__device__ __forceinline__ void chunk_dt_finish(const SsdParams& p, const float (&raw)[L / 32], int Lc, float A2, int lane,
                                                float* sDt, float* sCs) {
  constexpr int RPL = L / 32;
  float dA[RPL];
  float run = 0.f;
#pragma unroll
  for (int k = 0; k < RPL; ++k) {
    const int r = lane * RPL + k;
    const float dtv = r < Lc ? (p.dt_softplus ? fast_softplus(raw[k]) : raw[k]) : 0.f;
    sDt[r] = dtv;
    run += dtv * A2;
    dA[k] = run;
  }
  float s = run;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float nv = __shfl_up_sync(0xffffffffu, s, o);
    if (lane >= o) s += nv;
  }
  const float excl = s - run;
#pragma unroll
  for (int k = 0; k < RPL; ++k) sCs[lane * RPL + k] = excl + dA[k];
}
// chunk_dt_finish, plus the chunk-state weights w_s = exp(cs_{L-1} - cs_s) dt_s into sW (one
// exponential per row and chunk instead of one per use).
template <int L>
__device__ __forceinline__ void chunk_dt_finish_w(const SsdParams& p, const float (&raw)[L / 32], int Lc, float A2,
                                                  int lane, float* sDt, float* sCs, float* sW) {
  constexpr int RPL = L / 32;
  float dv[RPL], cv[RPL];
  float run = 0.f;
#pragma unroll
  for (int k = 0; k < RPL; ++k) {
    const int r = lane * RPL + k;
    dv[k] = r < Lc ? (p.dt_softplus ? fast_softplus(raw[k]) : raw[k]) : 0.f;
    run += dv[k] * A2;
    cv[k] = run;
  }
  float s = run;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float nv = __shfl_up_sync(0xffffffffu, s, o);
    if (lane >= o) s += nv;
  }
  const float excl = s - run;
#pragma unroll
  for (int k = 0; k < RPL; ++k) cv[k] += excl;
  const float last = __shfl_sync(0xffffffffu, cv[RPL - 1], 31);  // = sCs[L-1]
#pragma unroll
  for (int k = 0; k < RPL; ++k) {
    const int r = lane * RPL + k;
    sDt[r] = dv[k];
    sCs[r] = cv[k];
    sW[r] = fast_exp2(last - cv[k]) * dv[k];
  }
}
template <int L>
__device__ __forceinline__ void chunk_dt_cumsum(const SsdParams& p, long long dt_base, int t0, int Lc, float dtb,
                                                float A2, int lane, float* sDt, float* sCs) {
  float raw[L / 32];
  chunk_dt_load<L>(p, dt_base, t0, Lc, dtb, lane, raw);
  chunk_dt_finish<L>(p, raw, Lc, A2, lane, sDt, sCs);
}

// Outputs of one chunk (warp w owns 16 rows, all of P; for L = 64 two warps split P):
// O = exp(cs_l) C_l h_in^T + sum_{s<=l} (C_l . B_s) exp(cs_l - cs_s) dt_s x_s, y = O + D x (bf16).
// sH holds h_in (fp32 [P][N] swizzled), rounded to bf16 for the mma.
template <int L, int P, int N>
__device__ __forceinline__ void chunk_outputs(const __nv_bfloat16* sC, const __nv_bfloat16* sB,
                                              const __nv_bfloat16* sX, const float* sH, const float* sDt,
                                              const float* sCs, __nv_bfloat16* yg, long long y_row_stride, int t0,
                                              int Lc, float Dh, int warp, int lane) {
  using Tl = SsdTile<L, P, N>;
  constexpr int PW = Tl::PW;
  const int gid = lane >> 2, tig = lane & 3;
  const int rb = warp % Tl::RB;
  const int pbase = (warp / Tl::RB) * PW;
  const int r0 = rb * 16;
  float o[PW / 8][4];
#pragma unroll
  for (int j = 0; j < PW / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

  const int a_row = r0 + (lane & 7) + ((lane >> 3) & 1) * 8;  // A frag (non-trans) row
  const int a_colo = (lane >> 4) * 8;
  // off-diagonal: O = C_rows . h_in^T
#pragma unroll 1
  for (int kt = 0; kt < N / 16; ++kt) {
    uint32_t a[4];
    ldmatrix_x4(a, smem_u32(sC + swz<N>(a_row, kt * 16 + a_colo)));
#pragma unroll
    for (int nt = 0; nt < PW / 8; ++nt) {
      const int hr = pbase + nt * 8 + gid;
      const float2 v0 = *reinterpret_cast<const float2*>(sH + swzf<N>(hr, kt * 16 + 2 * tig));
      const float2 v1 = *reinterpret_cast<const float2*>(sH + swzf<N>(hr, kt * 16 + 2 * tig + 8));
      mma_m16n8k16_bf16(o[nt], a, pack_bf16x2(v0.x, v0.y), pack_bf16x2(v1.x, v1.y));
    }
  }
  const float csr0 = sCs[r0 + gid], csr1 = sCs[r0 + gid + 8];
  {
    const float e0 = fast_exp2(csr0), e1 = fast_exp2(csr1);
#pragma unroll
    for (int j = 0; j < PW / 8; ++j) { o[j][0] *= e0; o[j][1] *= e0; o[j][2] *= e1; o[j][3] *= e1; }
  }
  // diagonal blocks (causal): column blocks sb <= rb
  for (int sb = 0; sb <= rb; ++sb) {
    float s[2][4];
#pragma unroll
    for (int j = 0; j < 2; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 2
    for (int kt = 0; kt < N / 16; ++kt) {
      uint32_t a[4], bf[4];
      ldmatrix_x4(a, smem_u32(sC + swz<N>(a_row, kt * 16 + a_colo)));
      const int br = sb * 16 + (lane & 7) + (lane >> 4) * 8;
      ldmatrix_x4(bf, smem_u32(sB + swz<N>(br, kt * 16 + ((lane >> 3) & 1) * 8)));
      mma_m16n8k16_bf16(s[0], a, bf[0], bf[1]);
      mma_m16n8k16_bf16(s[1], a, bf[2], bf[3]);
    }
    uint32_t pa[4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int col = sb * 16 + nt * 8 + 2 * tig;
      const float cc0 = sCs[col], cc1 = sCs[col + 1];
      const float d0 = sDt[col], d1 = sDt[col + 1];
      const int row0 = r0 + gid, row1 = row0 + 8;
      const float v00 = (col <= row0) ? s[nt][0] * fast_exp2(csr0 - cc0) * d0 : 0.f;
      const float v01 = (col + 1 <= row0) ? s[nt][1] * fast_exp2(csr0 - cc1) * d1 : 0.f;
      const float v10 = (col <= row1) ? s[nt][2] * fast_exp2(csr1 - cc0) * d0 : 0.f;
      const float v11 = (col + 1 <= row1) ? s[nt][3] * fast_exp2(csr1 - cc1) * d1 : 0.f;
      pa[nt * 2 + 0] = pack_bf16x2(v00, v01);
      pa[nt * 2 + 1] = pack_bf16x2(v10, v11);
    }
    // A-frag order: a0=(g, k lo)=nt0 row0, a1=(g+8, k lo)=nt0 row1, a2=nt1 row0, a3=nt1 row1
    const uint32_t af[4] = {pa[0], pa[1], pa[2], pa[3]};
#pragma unroll
    for (int np = 0; np < PW / 16; ++np) {
      uint32_t bf[4];
      const int xr = sb * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
      ldmatrix_x4_trans(bf, smem_u32(sX + swz<P>(xr, pbase + np * 16 + (lane >> 4) * 8)));
      mma_m16n8k16_bf16(o[2 * np], af, bf[0], bf[1]);
      mma_m16n8k16_bf16(o[2 * np + 1], af, bf[2], bf[3]);
    }
  }
  // epilogue: y = O + D x
  const int row0 = r0 + gid, row1 = row0 + 8;
#pragma unroll
  for (int j = 0; j < PW / 8; ++j) {
    const int col = pbase + j * 8 + 2 * tig;
    if (row0 < Lc) {
      const float2 xv = unpack_bf16x2(*reinterpret_cast<const uint32_t*>(sX + swz<P>(row0, col)));
      *reinterpret_cast<uint32_t*>(yg + (long long)(t0 + row0) * y_row_stride + col) =
          pack_bf16x2(o[j][0] + Dh * xv.x, o[j][1] + Dh * xv.y);
    }
    if (row1 < Lc) {
      const float2 xv = unpack_bf16x2(*reinterpret_cast<const uint32_t*>(sX + swz<P>(row1, col)));
      *reinterpret_cast<uint32_t*>(yg + (long long)(t0 + row1) * y_row_stride + col) =
          pack_bf16x2(o[j][2] + Dh * xv.x, o[j][3] + Dh * xv.y);
    }
  }
}

// Chunk state contribution: hacc += (x w)^T B, w_s = exp(cs_{L-1} - cs_s) dt_s, for the warp's
// 16 x NWB slice of the P x N state (rows mt*16.., cols nb0..). kSplitState: x*w is split into
// bf16 hi + lo parts (two mmas) so the sum keeps ~fp32 accuracy.
template <int L, int P, int N, bool kSplitState>
__device__ __forceinline__ void chunk_state_mma(float (&hacc)[SsdTile<L, P, N>::NWB / 8][4], const __nv_bfloat16* sX,
                                                const __nv_bfloat16* sB, const float* sDt, const float* sCs,
                                                int mt, int nb0, int lane) {
  constexpr int NWB = SsdTile<L, P, N>::NWB;
  const int tig = lane & 3;
  const float cs_last = sCs[L - 1];
#pragma unroll 1
  for (int kt = 0; kt < L / 16; ++kt) {
    uint32_t a[4];
    // A = x^T (m = p, k = s) from x[s][p]: trans
    const int xr = kt * 16 + (lane & 7) + (lane >> 4) * 8;
    ldmatrix_x4_trans(a, smem_u32(sX + swz<P>(xr, mt * 16 + ((lane >> 3) & 1) * 8)));
    const int s0 = kt * 16 + 2 * tig;
    const float w0 = fast_exp2(cs_last - sCs[s0]) * sDt[s0];
    const float w1 = fast_exp2(cs_last - sCs[s0 + 1]) * sDt[s0 + 1];
    const float w8 = fast_exp2(cs_last - sCs[s0 + 8]) * sDt[s0 + 8];
    const float w9 = fast_exp2(cs_last - sCs[s0 + 9]) * sDt[s0 + 9];
    uint32_t ahi[4], alo[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float2 v = unpack_bf16x2(a[q]);
      const float f0 = v.x * (q < 2 ? w0 : w8);
      const float f1 = v.y * (q < 2 ? w1 : w9);
      ahi[q] = pack_bf16x2(f0, f1);
      if (kSplitState) {
        const float2 hv = unpack_bf16x2(ahi[q]);
        alo[q] = pack_bf16x2(f0 - hv.x, f1 - hv.y);
      }
    }
#pragma unroll
    for (int np = 0; np < NWB / 16; ++np) {
      uint32_t bf[4];
      const int br = kt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
      ldmatrix_x4_trans(bf, smem_u32(sB + swz<N>(br, nb0 + np * 16 + (lane >> 4) * 8)));
      mma_m16n8k16_bf16(hacc[2 * np], ahi, bf[0], bf[1]);
      mma_m16n8k16_bf16(hacc[2 * np + 1], ahi, bf[2], bf[3]);
      if (kSplitState) {
        mma_m16n8k16_bf16(hacc[2 * np], alo, bf[0], bf[1]);
        mma_m16n8k16_bf16(hacc[2 * np + 1], alo, bf[2], bf[3]);
      }
    }
  }
}

// One (sequence b, head h)'s constants and operand bases, shared by the chunked kernels: the head
// reads group g's B and C; A is prescaled by log2(e) for ex2.
template <int P, int N>
struct HeadView {
  float A2, dtb, Dh;
  const __nv_bfloat16 *x, *B, *C;
  long long dt_base;
  __nv_bfloat16* y;
  __device__ __forceinline__ HeadView(const SsdParams& p, int b, int h, int g)
      : A2(p.A[h] * kLog2e),
        dtb(p.dt_bias ? p.dt_bias[h] : 0.f),
        Dh(p.D ? p.D[h] : 0.f),
        x(p.x + (long long)b * p.x_batch_stride + (long long)h * P),
        B(p.B + (long long)b * p.B_batch_stride + (long long)g * N),
        C(p.C + (long long)b * p.C_batch_stride + (long long)g * N),
        dt_base((long long)b * p.dt_batch_stride + h),
        y(p.y + (long long)b * p.y_batch_stride + (long long)h * P) {}
};

// Sequential-chunk kernel (the fallback when no workspace is given): one CTA per (b, h) walks
// the chunks, carrying the state in smem.
// The chunk kernels' shared memory: C, B [L][N] and x [L][P] bf16 tiles, the state fp32 [P][N],
// dt and its cumulative sum [L] (SsdSmem<L, P, N>::kBytes in all).
template <int L, int P, int N>
struct ChunkSmem {
  __nv_bfloat16 *C, *B, *X;
  float *H, *dt, *cs;
  __device__ explicit ChunkSmem(unsigned char* raw)
      : C(reinterpret_cast<__nv_bfloat16*>(raw)), B(C + L * N), X(B + L * N), H(reinterpret_cast<float*>(X + L * P)), dt(H + P * N), cs(dt + L) {}
};

template <int L, int P, int N, bool kSplitState>
__global__ void __launch_bounds__(256, 2) ssd_chunked_fwd_kernel(const SsdParams p) {
  using Tl = SsdTile<L, P, N>;
  constexpr int NWB = Tl::NWB;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const ChunkSmem<L, P, N> sm(smem_raw);
  __nv_bfloat16 *sC = sm.C, *sB = sm.B, *sX = sm.X;
  float *sH = sm.H, *sDt = sm.dt, *sCs = sm.cs;  // sH: the carried state, fp32 [P][N] swizzled

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const int H = p.nheads;
  const int b = blockIdx.x / H, h = blockIdx.x % H;
  const int g = h / (H / p.ngroups);
  const int T = p.seqlen;

  const HeadView<P, N> hv(p, b, h, g);
  const float A2 = hv.A2, dtb = hv.dtb, Dh = hv.Dh;
  const __nv_bfloat16 *xg = hv.x, *Bg = hv.B, *Cg = hv.C;
  const long long dt_base = hv.dt_base;
  __nv_bfloat16* yg = hv.y;

  // ---- carried state h (P x N, fp32) lives in smem between chunks ----
  const size_t hoff = ((size_t)b * H + h) * (size_t)P * N;
  for (int i = tid * 4; i < P * N; i += 256 * 4) {
    const int pr = i / N, n = i % N;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (p.h0) v = *reinterpret_cast<const float4*>(p.h0 + hoff + i);
    *reinterpret_cast<float4*>(sH + swzf<N>(pr, n)) = v;
  }
  // state ownership: warp owns rows [mt*16, +16) x cols [nb0, nb0+NWB) of h
  const int mt = warp % Tl::MT;
  const int nb0 = (warp / Tl::MT) * NWB;

  const int nchunks = (T + L - 1) / L;
  for (int c = 0; c < nchunks; ++c) {
    const int t0 = c * L;
    const int Lc = min(L, T - t0);
    load_tile<L, N>(sC, Cg, p.C_row_stride, t0, Lc, tid);
    load_tile<L, N>(sB, Bg, p.B_row_stride, t0, Lc, tid);
    load_tile<L, P>(sX, xg, p.x_row_stride, t0, Lc, tid);
    cp_async_commit();
    if (warp == 0) chunk_dt_cumsum<L>(p, dt_base, t0, Lc, dtb, A2, lane, sDt, sCs);
    cp_async_wait_all();
    __syncthreads();

    chunk_outputs<L, P, N>(sC, sB, sX, sH, sDt, sCs, yg, p.y_row_stride, t0, Lc, Dh, warp, lane);

    __syncthreads();  // outputs done reading sH
    // state update h = exp(cs_last) h + (x w)^T B
    {
      const float decay = fast_exp2(sCs[L - 1]);
      float hacc[NWB / 8][4];
#pragma unroll
      for (int j = 0; j < NWB / 8; ++j) {
        const int pr = mt * 16 + gid, n = nb0 + j * 8 + 2 * tig;
        const float2 v0 = *reinterpret_cast<const float2*>(sH + swzf<N>(pr, n));
        const float2 v1 = *reinterpret_cast<const float2*>(sH + swzf<N>(pr + 8, n));
        hacc[j][0] = v0.x * decay; hacc[j][1] = v0.y * decay; hacc[j][2] = v1.x * decay; hacc[j][3] = v1.y * decay;
      }
      chunk_state_mma<L, P, N, kSplitState>(hacc, sX, sB, sDt, sCs, mt, nb0, lane);
#pragma unroll
      for (int j = 0; j < NWB / 8; ++j) {
        const int pr = mt * 16 + gid, n = nb0 + j * 8 + 2 * tig;
        *reinterpret_cast<float2*>(sH + swzf<N>(pr, n)) = make_float2(hacc[j][0], hacc[j][1]);
        *reinterpret_cast<float2*>(sH + swzf<N>(pr + 8, n)) = make_float2(hacc[j][2], hacc[j][3]);
      }
    }
    __syncthreads();  // chunk done: sC/sB/sX/sCs free, sH updated
  }

  __syncthreads();
  if (p.hT) {
    for (int i = tid * 4; i < P * N; i += 256 * 4) {
      const int pr = i / N, n = i % N;
      *reinterpret_cast<float4*>(p.hT + hoff + i) = *reinterpret_cast<const float4*>(sH + swzf<N>(pr, n));
    }
  }
}

__device__ __forceinline__ unsigned ld_acquire_gpu(const unsigned* ptr) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(ptr) : "memory");
  return v;
}
__device__ __forceinline__ void st_release_gpu(unsigned* ptr, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(ptr), "r"(v) : "memory");
}

// Chunk-parallel kernel: one CTA per (chunk c, b, h), chunk-major (blockIdx = c * B*H + b*H + h),
// so a chunk's predecessor has a lower index and was dispatched first. Per CTA:
//   1. cp.async x, B (group 0) and C (group 1); dt / cumsum; wait for x, B;
//   2. the chunk's own state S_c = (x w)^T B in registers (mma, hi/lo split) — independent of
//      the incoming state, so it overlaps the predecessor's work;
//   3. wait until flags[b,h] >= c (the predecessor published h_in); read h_in (h0 for c = 0)
//      from the state slot (L2, ld.cg), keep it in smem for step 4, write h_out =
//      exp(cs_{L-1}) h_in + S_c back to the same slot (each thread reads and writes only its own
//      elements, so one slot per (b, h) is enough), fence, publish flags[b,h] = c + 1;
//   4. the chunk's outputs from h_in (as in the sequential kernel).
// The state slot is hT itself when hT is requested (the last chunk leaves the final state
// there), else workspace. The state-passing chain per (b, h) is a 32 KB L2 read + write per
// chunk; everything else runs B*H*nchunks-wide.
template <int L, int P, int N, bool kSplitState>
__global__ void __launch_bounds__(256, 2)
    ssd_chunk_parallel_fwd_kernel(const SsdParams p, unsigned* __restrict__ flags, float* ring) {
  using Tl = SsdTile<L, P, N>;
  constexpr int NWB = Tl::NWB;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const ChunkSmem<L, P, N> sm(smem_raw);
  __nv_bfloat16 *sC = sm.C, *sB = sm.B, *sX = sm.X;
  float *sH = sm.H, *sDt = sm.dt, *sCs = sm.cs;  // sH: the incoming state, fp32 [P][N] swizzled

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const int H = p.nheads;
  const int BH = p.batch * H;
  const int c = blockIdx.x / BH, bh = blockIdx.x % BH;
  const int b = bh / H, h = bh % H;
  const int g = h / (H / p.ngroups);
  const int T = p.seqlen;
  const int nchunks = (T + L - 1) / L;
  const int t0 = c * L;
  const int Lc = min(L, T - t0);

  const HeadView<P, N> hv(p, b, h, g);
  const float A2 = hv.A2, dtb = hv.dtb, Dh = hv.Dh;
  const __nv_bfloat16 *xg = hv.x, *Bg = hv.B, *Cg = hv.C;
  const long long dt_base = hv.dt_base;
  __nv_bfloat16* yg = hv.y;

  load_tile<L, N>(sB, Bg, p.B_row_stride, t0, Lc, tid);
  load_tile<L, P>(sX, xg, p.x_row_stride, t0, Lc, tid);
  cp_async_commit();
  load_tile<L, N>(sC, Cg, p.C_row_stride, t0, Lc, tid);
  cp_async_commit();
  if (warp == 0) chunk_dt_cumsum<L>(p, dt_base, t0, Lc, dtb, A2, lane, sDt, sCs);
  cp_async_wait<1>();
  __syncthreads();

  const int mt = warp % Tl::MT;
  const int nb0 = (warp / Tl::MT) * NWB;
  float hacc[NWB / 8][4];
#pragma unroll
  for (int j = 0; j < NWB / 8; ++j) hacc[j][0] = hacc[j][1] = hacc[j][2] = hacc[j][3] = 0.f;
  chunk_state_mma<L, P, N, kSplitState>(hacc, sX, sB, sDt, sCs, mt, nb0, lane);

  // ---- state passing: wait for the predecessor chunk of this (b, h) ----
  if (c > 0 && tid == 0) {
    while (ld_acquire_gpu(flags + bh) < (unsigned)c) __nanosleep(32);
  }
  cp_async_wait_all();
  __syncthreads();
  {
    const size_t hoff = (size_t)bh * (size_t)P * N;
    const float decay = fast_exp2(sCs[L - 1]);
    const bool write_out = (c + 1 < nchunks) || p.hT;
    const float* hin = c > 0 ? ring + hoff : (p.h0 ? p.h0 + hoff : nullptr);
#pragma unroll
    for (int j = 0; j < NWB / 8; ++j) {
      const int pr = mt * 16 + gid, n = nb0 + j * 8 + 2 * tig;
      float2 v0 = make_float2(0.f, 0.f), v1 = v0;
      if (hin) {
        v0 = __ldcg(reinterpret_cast<const float2*>(hin + (size_t)pr * N + n));
        v1 = __ldcg(reinterpret_cast<const float2*>(hin + (size_t)(pr + 8) * N + n));
      }
      *reinterpret_cast<float2*>(sH + swzf<N>(pr, n)) = v0;
      *reinterpret_cast<float2*>(sH + swzf<N>(pr + 8, n)) = v1;
      if (write_out) {
        __stcg(reinterpret_cast<float2*>(ring + hoff + (size_t)pr * N + n),
               make_float2(decay * v0.x + hacc[j][0], decay * v0.y + hacc[j][1]));
        __stcg(reinterpret_cast<float2*>(ring + hoff + (size_t)(pr + 8) * N + n),
               make_float2(decay * v1.x + hacc[j][2], decay * v1.y + hacc[j][3]));
      }
    }
    if (c + 1 < nchunks) __threadfence();
  }
  __syncthreads();
  if (c + 1 < nchunks && tid == 0) st_release_gpu(flags + bh, (unsigned)(c + 1));

  chunk_outputs<L, P, N>(sC, sB, sX, sH, sDt, sCs, yg, p.y_row_stride, t0, Lc, Dh, warp, lane);
}

// ---- wgmma kernel (sm_90a): one CTA of two consumer warpgroups per (b, h), L = 128, P = 64,
// N = 128; see the file header. Shared memory, from a 1 KB-aligned base:
//   2 stages x { C, B: N/64 panels of [L][64] bf16; x: one panel [L][64] bf16 }   (128B swizzle)
//   2 x the state rounded to bf16, N/64 panels of [P][64]  (the B operand of C·hᵀ)
//   2 x dt [L], 2 x cumsum(dt·A) [L] (log2 units), 2 x the chunk-state weights w [L], and the
//   next chunk's raw dt [L] (staged by warp 0 while the tensor cores run), all fp32
template <int N>
struct WgSmem {
  static constexpr int L = 128, P = 64;
  static constexpr uint32_t kC = L * N * 2, kB = L * N * 2, kX = L * P * 2;
  static constexpr uint32_t kStage = kC + kB + kX;
  static constexpr uint32_t kH = P * N * 2;
  static constexpr uint32_t kF = 2 * kStage + 2 * kH;  // fp32 dt / cumsum / w / raw-dt buffers
  static constexpr size_t kBytes = 1024 /* alignment slack */ + kF + 7 * L * sizeof(float);
};

// Byte offset of element (r, c) in a 128B-swizzled tile of R rows stored as 64-column panels.
template <int R>
__device__ __forceinline__ uint32_t sw128(int r, int c) {
  return (uint32_t)((c >> 6) * R * 128 + r * 128 + ((((c >> 3) & 7) ^ (r & 7)) << 4) + (c & 7) * 2);
}

// cp.async an L x W bf16 tile (token rows t0..) into 64-column swizzled panels; rows >= Lc zero-filled.
template <int L, int W>
__device__ __forceinline__ void load_tile_sw128(uint32_t dst, const __nv_bfloat16* src, long long row_stride, int t0,
                                                int Lc, int tid) {
  constexpr int CPR = W / 8;
#pragma unroll 4
  for (int i = tid; i < L * CPR; i += 256) {
    const int r = i / CPR, ch = i % CPR;
    const bool v = r < Lc;
    const long long tt = v ? (long long)(t0 + r) : 0;
    cp_async_16(dst + (uint32_t)((ch >> 3) * L * 128 + r * 128 + (((ch & 7) ^ (r & 7)) << 4)),
                src + tt * row_stride + ch * 8, v);
  }
}

// One consumer warpgroup's whole walk over the chunks. Warpgroup wg owns chunk rows
// [64 wg, 64 wg + 64) of the outputs (NS = 64 (wg + 1) causal columns of C·Bᵀ) and state columns
// [64 wg, 64 wg + 64) of h (P x 64 fp32, kept in wgmma accumulator registers across chunks).
template <int N, int NS, bool kSplitState>
__device__ __forceinline__ void ssd_wgmma_walk(const SsdParams& p, uint8_t* base, int wg) {
#if defined(STRATA_HAS_WGMMA)
  constexpr int L = 128, P = 64;
  using SM = WgSmem<N>;
  const int tid = threadIdx.x, lane = tid & 31, wq = (tid >> 5) & 3;  // wq: warp within the warpgroup
  const int g = lane >> 2, tq = lane & 3;
  const int H = p.nheads;
  const int b = blockIdx.x / H, h = blockIdx.x % H;
  const int grp = h / (H / p.ngroups);
  const int T = p.seqlen;
  const HeadView<P, N> hv(p, b, h, grp);
  const float A2 = hv.A2, dtb = hv.dtb, Dh = hv.Dh;
  const __nv_bfloat16 *xg = hv.x, *Bg = hv.B, *Cg = hv.C;
  const long long dt_base = hv.dt_base;
  __nv_bfloat16* yg = hv.y;
  float* const fbuf = reinterpret_cast<float*>(base + SM::kF);  // dt[2][L], cs[2][L], w[2][L], raw[L]
  float* const sRaw = fbuf + 6 * L;
  const uint32_t sbase = smem_u32(base);
  const bool dt_warp = tid < 32;  // warp 0 computes dt / cumsum, one chunk ahead
  const int nchunks = (T + L - 1) / L;
  const size_t hoff = ((size_t)b * H + h) * (size_t)P * N;
  const int nb = wg * 64;                           // this warpgroup's state columns
  const int pr0 = wq * 16 + g, pr1 = pr0 + 8;       // state rows (accumulator rows) of this thread

  // carried state: accumulator layout of m64n64 (rows pr0 / pr1, cols nb + 8i + 2tq (+1))
  float hst[32];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int n = nb + 8 * i + 2 * tq;
    float2 v0 = make_float2(0.f, 0.f), v1 = v0;
    if (p.h0) {
      v0 = *reinterpret_cast<const float2*>(p.h0 + hoff + (size_t)pr0 * N + n);
      v1 = *reinterpret_cast<const float2*>(p.h0 + hoff + (size_t)pr1 * N + n);
    }
    hst[4 * i + 0] = v0.x; hst[4 * i + 1] = v0.y; hst[4 * i + 2] = v1.x; hst[4 * i + 3] = v1.y;
  }
  auto store_state_bf16 = [&](int buf) {
    uint8_t* sh = base + 2 * SM::kStage + buf * SM::kH + wg * P * 128;  // panel wg of [P][64]
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      *reinterpret_cast<uint32_t*>(sh + pr0 * 128 + ((i ^ (pr0 & 7)) << 4) + tq * 4) = pack_bf16x2(hst[4 * i], hst[4 * i + 1]);
      *reinterpret_cast<uint32_t*>(sh + pr1 * 128 + ((i ^ (pr1 & 7)) << 4) + tq * 4) =
          pack_bf16x2(hst[4 * i + 2], hst[4 * i + 3]);
    }
  };
  auto load_chunk = [&](int c, int stage) {
    const int t0 = c * L, Lc = min(L, T - t0);
    const uint32_t st = sbase + stage * SM::kStage;
    load_tile_sw128<L, N>(st, Cg, p.C_row_stride, t0, Lc, tid);
    load_tile_sw128<L, N>(st + SM::kC, Bg, p.B_row_stride, t0, Lc, tid);
    load_tile_sw128<L, P>(st + SM::kC + SM::kB, xg, p.x_row_stride, t0, Lc, tid);
    cp_async_commit();
  };

  if (nchunks > 0) {
    load_chunk(0, 0);
    if (dt_warp) {
      float raw[L / 32];
      chunk_dt_load<L>(p, dt_base, 0, min(L, T), dtb, lane, raw);
      chunk_dt_finish_w<L>(p, raw, min(L, T), A2, lane, fbuf, fbuf + 2 * L, fbuf + 4 * L);
    }
  }
  store_state_bf16(0);

  float o[32];
  float s[NS / 2];
  uint32_t pa[NS / 16][4];
#pragma unroll
  for (int i = 0; i < 32; ++i) o[i] = 0.f;
#pragma unroll
  for (int i = 0; i < NS / 2; ++i) s[i] = 0.f;
  for (int c = 0; c < nchunks; ++c) {
    const int cur = c & 1, nxt = cur ^ 1;
    const int t0 = c * L, Lc = min(L, T - t0);
    cp_async_wait_all();
    fence_proxy_async();
    named_barrier_sync(1, 256);  // chunk c's tiles, dt / cumsum and bf16 state visible; chunk c-1 fully read
    const uint32_t sC = sbase + cur * SM::kStage, sB = sC + SM::kC, sX = sB + SM::kB;
    const uint32_t sH = sbase + 2 * SM::kStage + cur * SM::kH;
    const float* sDt = fbuf + cur * L;
    const float* sCs = fbuf + 2 * L + cur * L;
    const float* sW = fbuf + 4 * L + cur * L;
    const uint8_t* xs = base + cur * SM::kStage + SM::kC + SM::kB;

    // 1. O = C_rows h^T and S = C_rows B^T (both K = N, smem x smem)
    const uint32_t sCw = sC + wg * 64 * 128;
    wgmma_reg_fence(o);
    wgmma_reg_fence(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < N / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;
      WgmmaSS<64>::mma(o, wgmma_desc_sw128(sCw + (kk >> 2) * L * 128 + koff),
                       wgmma_desc_sw128(sH + (kk >> 2) * P * 128 + koff), kk > 0 ? 1 : 0);
    }
#pragma unroll
    for (int kk = 0; kk < N / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;
      WgmmaSS<NS>::mma(s, wgmma_desc_sw128(sCw + (kk >> 2) * L * 128 + koff),
                       wgmma_desc_sw128(sB + (kk >> 2) * L * 128 + koff), kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    // the next chunk's loads go out while the tensor cores run (its stage was last read in c-1);
    // warp 0 stages its raw dt in smem (the load latency hides under this warpgroup's wgmma wait)
    const int Lc1 = min(L, T - t0 - L);
    if (c + 1 < nchunks) {
      load_chunk(c + 1, nxt);
      if (dt_warp) {
        float raw[L / 32];
        chunk_dt_load<L>(p, dt_base, t0 + L, Lc1, dtb, lane, raw);
#pragma unroll
        for (int k = 0; k < L / 32; ++k) sRaw[lane * (L / 32) + k] = raw[k];
      }
    }
    wgmma_wait<0>();
    wgmma_reg_fence(o);
    wgmma_reg_fence(s);

    // 2. O rows *= exp(cs_l); S *= exp(cs_l - cs_s) dt_s on s <= l, else 0; S -> bf16 A fragments
    const int r0 = wg * 64 + pr0, r1 = r0 + 8;  // chunk rows of this thread
    const float c0 = sCs[r0], c1 = sCs[r1];
    {
      const float e0 = fast_exp2(c0), e1 = fast_exp2(c1);
#pragma unroll
      for (int i = 0; i < 8; ++i) { o[4 * i] *= e0; o[4 * i + 1] *= e0; o[4 * i + 2] *= e1; o[4 * i + 3] *= e1; }
    }
#pragma unroll
    for (int i = 0; i < NS / 8; ++i) {
      const int j = 8 * i + 2 * tq;
      const float2 cj = *reinterpret_cast<const float2*>(sCs + j);
      const float2 dj = *reinterpret_cast<const float2*>(sDt + j);
      s[4 * i + 0] = (j <= r0) ? s[4 * i + 0] * fast_exp2(c0 - cj.x) * dj.x : 0.f;
      s[4 * i + 1] = (j + 1 <= r0) ? s[4 * i + 1] * fast_exp2(c0 - cj.y) * dj.y : 0.f;
      s[4 * i + 2] = (j <= r1) ? s[4 * i + 2] * fast_exp2(c1 - cj.x) * dj.x : 0.f;
      s[4 * i + 3] = (j + 1 <= r1) ? s[4 * i + 3] * fast_exp2(c1 - cj.y) * dj.y : 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < NS / 16; ++kk) {
      pa[kk][0] = pack_bf16x2(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pack_bf16x2(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack_bf16x2(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack_bf16x2(s[8 * kk + 6], s[8 * kk + 7]);
    }

    // 3. O += S x (A from registers, x an MN-major B operand: s is the contraction)
    wgmma_reg_fence(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < NS / 16; ++kk) WgmmaRS<64, 1>::mma(o, pa[kk], wgmma_desc_sw128_mn(sX + kk * 2048, L * 128), 1);
    wgmma_commit();
    wgmma_reg_fence(o);

    // 4. state: h = exp(cs_{L-1}) h + (x w)^T B, w_s = exp(cs_{L-1} - cs_s) dt_s (hi + lo bf16 parts)
    const float cl = sCs[L - 1];
    uint32_t ahi[L / 16][4], alo[L / 16][4];
#pragma unroll
    for (int kk = 0; kk < L / 16; ++kk) {
      uint32_t a[4];
      const int xr = kk * 16 + (lane & 7) + (lane >> 4) * 8;
      ldmatrix_x4_trans(a, sX + sw128<L>(xr, wq * 16 + ((lane >> 3) & 1) * 8));
      const int s0 = kk * 16 + 2 * tq;
      const float2 wa = *reinterpret_cast<const float2*>(sW + s0);
      const float2 wb = *reinterpret_cast<const float2*>(sW + s0 + 8);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float2 v = unpack_bf16x2(a[q]);
        const float f0 = v.x * (q < 2 ? wa.x : wb.x);
        const float f1 = v.y * (q < 2 ? wa.y : wb.y);
        ahi[kk][q] = pack_bf16x2(f0, f1);
        const float2 hv = unpack_bf16x2(ahi[kk][q]);
        alo[kk][q] = kSplitState ? pack_bf16x2(f0 - hv.x, f1 - hv.y) : 0u;
      }
    }
    {
      const float dec = fast_exp2(cl);
#pragma unroll
      for (int i = 0; i < 32; ++i) hst[i] *= dec;
    }
    wgmma_reg_fence(hst);
    wgmma_fence();
    const uint32_t sBw = sB + wg * L * 128;  // panel wg of B: state columns nb..nb+63
#pragma unroll
    for (int kk = 0; kk < L / 16; ++kk) {
      WgmmaRS<64, 1>::mma(hst, ahi[kk], wgmma_desc_sw128_mn(sBw + kk * 2048, L * 128), 1);
      if (kSplitState) WgmmaRS<64, 1>::mma(hst, alo[kk], wgmma_desc_sw128_mn(sBw + kk * 2048, L * 128), 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_reg_fence(o);
    wgmma_reg_fence(hst);

    // 5. y = O + D x (bf16), rows < Lc
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int col = 8 * i + 2 * tq;
      if (r0 < Lc) {
        const float2 xv = unpack_bf16x2(*reinterpret_cast<const uint32_t*>(xs + sw128<L>(r0, col)));
        *reinterpret_cast<uint32_t*>(yg + (long long)(t0 + r0) * p.y_row_stride + col) =
            pack_bf16x2(o[4 * i] + Dh * xv.x, o[4 * i + 1] + Dh * xv.y);
      }
      if (r1 < Lc) {
        const float2 xv = unpack_bf16x2(*reinterpret_cast<const uint32_t*>(xs + sw128<L>(r1, col)));
        *reinterpret_cast<uint32_t*>(yg + (long long)(t0 + r1) * p.y_row_stride + col) =
            pack_bf16x2(o[4 * i + 2] + Dh * xv.x, o[4 * i + 3] + Dh * xv.y);
      }
    }
    // 6. the next chunk's bf16 state and dt / cumsum (buffers last read in chunk c-1)
    if (c + 1 < nchunks) {
      store_state_bf16(nxt);
      if (dt_warp) {
        float raw[L / 32];
#pragma unroll
        for (int k = 0; k < L / 32; ++k) raw[k] = sRaw[lane * (L / 32) + k];
        chunk_dt_finish_w<L>(p, raw, Lc1, A2, lane, fbuf + nxt * L, fbuf + 2 * L + nxt * L, fbuf + 4 * L + nxt * L);
      }
    }
  }

  if (p.hT) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int n = nb + 8 * i + 2 * tq;
      *reinterpret_cast<float2*>(p.hT + hoff + (size_t)pr0 * N + n) = make_float2(hst[4 * i], hst[4 * i + 1]);
      *reinterpret_cast<float2*>(p.hT + hoff + (size_t)pr1 * N + n) = make_float2(hst[4 * i + 2], hst[4 * i + 3]);
    }
  }
#else
  __trap();
#endif
}

template <int N, bool kSplitState>
__global__ void __launch_bounds__(256, 1) ssd_wgmma_fwd_kernel(const SsdParams p) {
  extern __shared__ __align__(1024) uint8_t ssd_wg_smem[];
  uint8_t* const base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(ssd_wg_smem) + 1023) & ~uintptr_t(1023));
  if (threadIdx.x < 128) ssd_wgmma_walk<N, 64, kSplitState>(p, base, 0);
  else ssd_wgmma_walk<N, 128, kSplitState>(p, base, 1);
}

// Sequential (decode) path: one warp per state row (b, h, p), lanes over n; a CTA (128 threads)
// holds 4 rows of one head (grid: B·H × ⌈P/4⌉). At decode the state (B·H·P·N fp32, read and
// written once per step) is the whole cost, so every warp has one row's loads in flight at once
// rather than walking the head's P rows one after another. Launched programmatically
// (strata/pdl.cuh).
template <int P, int N>
__global__ void __launch_bounds__(128) ssd_decode_kernel(const SsdParams p) {
  static_assert(N % 32 == 0, "N multiple of 32");
  constexpr int NPL = N / 32;
  pdl_wait();
  pdl_launch_dependents();
  const int H = p.nheads;
  const int b = blockIdx.x / H, h = blockIdx.x % H;
  const int g = h / (H / p.ngroups);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float A = p.A[h];
  const float dtb = p.dt_bias ? p.dt_bias[h] : 0.f;
  const float Dh = p.D ? p.D[h] : 0.f;
  const size_t hoff = ((size_t)b * H + h) * (size_t)P * N;
  const int pr = blockIdx.y * 4 + warp;
  if (pr < P) {
    float st[NPL];
#pragma unroll
    for (int i = 0; i < NPL; ++i) st[i] = p.h0 ? p.h0[hoff + (size_t)pr * N + lane + 32 * i] : 0.f;
    for (int t = 0; t < p.seqlen; ++t) {
      const long long di = (long long)b * p.dt_batch_stride + (long long)t * p.dt_row_stride + h;
      const float raw = (p.dt_f32 ? p.dt_f32[di] : __bfloat162float(p.dt[di])) + dtb;
      const float dtv = (p.dt_softplus ? fast_softplus(raw) : raw);
      const float a = fast_exp(dtv * A);
      const float xv = __bfloat162float(p.x[(long long)b * p.x_batch_stride + (long long)t * p.x_row_stride + h * P + pr]);
      const __nv_bfloat16* Bt = p.B + (long long)b * p.B_batch_stride + (long long)t * p.B_row_stride + g * N;
      const __nv_bfloat16* Ct = p.C + (long long)b * p.C_batch_stride + (long long)t * p.C_row_stride + g * N;
      float acc = 0.f;
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        const int n = lane + 32 * i;
        st[i] = a * st[i] + dtv * xv * __bfloat162float(Bt[n]);
        acc += st[i] * __bfloat162float(Ct[n]);
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (lane == 0)
        p.y[(long long)b * p.y_batch_stride + (long long)t * p.y_row_stride + h * P + pr] =
            __float2bfloat16(acc + Dh * xv);
    }
    if (p.hT) {
#pragma unroll
      for (int i = 0; i < NPL; ++i) p.hT[hoff + (size_t)pr * N + lane + 32 * i] = st[i];
    }
  }
}

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

}  // namespace detail

// Smem bytes of the chunked kernels.
template <int L, int P, int N>
constexpr size_t ssd_chunked_smem_bytes() { return detail::SsdSmem<L, P, N>::kBytes; }

// Workspace of the chunk-parallel path: a ready flag per (b, h) (256-byte aligned block), then,
// when hT is not requested, one fp32 P x N state slot per (b, h). Needed only when T > L.
inline size_t ssd_chunked_workspace_bytes(int batch, int nheads, int P, int N, bool has_hT) {
  const size_t bh = (size_t)batch * nheads;
  const size_t flags = (bh * sizeof(unsigned) + 255) / 256 * 256;
  return flags + (has_hT ? 0 : bh * (size_t)P * N * sizeof(float));
}

// Chunked forward (prefill). Template: chunk L (64/128), head dim P, d_state N.
// kSplitState: hi/lo bf16 split of the chunk-state operand (fp32-accurate states; ~20% slower).
// With p.workspace (>= ssd_chunked_workspace_bytes; unused for a single chunk): the chunk-parallel
// kernel (one CTA per chunk and head, states passed chunk to chunk through L2; slower today, see
// the file header); without: the sequential-chunk kernel (one CTA per head), the generated path.
namespace detail {
// The chunked kernels' contract (both launchers): shapes, pointers, 16-byte cp.async alignment.
inline cudaError_t validate_chunked(const SsdParams& p) {
  if (p.batch <= 0 || p.nheads <= 0 || p.ngroups <= 0 || p.nheads % p.ngroups) return cudaErrorInvalidValue;
  if (!p.x || !(p.dt || p.dt_f32) || !p.A || !p.B || !p.C || !p.y) return cudaErrorInvalidValue;
  if (p.seqlen < 0) return cudaErrorInvalidValue;
  if (!aligned16(p.x) || !aligned16(p.B) || !aligned16(p.C)) return cudaErrorInvalidValue;
  if ((p.x_row_stride | p.x_batch_stride | p.B_row_stride | p.B_batch_stride | p.C_row_stride | p.C_batch_stride) & 7)
    return cudaErrorInvalidValue;
  if (((p.y_row_stride | p.y_batch_stride) & 1) || (reinterpret_cast<uintptr_t>(p.y) & 3)) return cudaErrorInvalidValue;
  if ((p.h0 && (reinterpret_cast<uintptr_t>(p.h0) & 15)) || (p.hT && (reinterpret_cast<uintptr_t>(p.hT) & 15)))
    return cudaErrorInvalidValue;
  return cudaSuccess;
}
}  // namespace detail

template <int L, int P, int N, bool kSplitState = true>
inline cudaError_t ssd_chunked_fwd(const SsdParams& p, cudaStream_t stream = 0) {
  if (const cudaError_t e = detail::validate_chunked(p); e != cudaSuccess) return e;
  constexpr size_t smem = ssd_chunked_smem_bytes<L, P, N>();
  const long long nchunks = (p.seqlen + L - 1) / L;
  const long long bh = (long long)p.batch * p.nheads;
  const bool parallel = nchunks >= 1 && p.workspace;
  if (parallel) {
    if (nchunks * bh > 0x7fffffffLL) return cudaErrorInvalidValue;
    unsigned* flags = nullptr;
    float* ring = p.hT;
    if (nchunks > 1) {
      const size_t need = ssd_chunked_workspace_bytes(p.batch, p.nheads, P, N, p.hT != nullptr);
      if (p.workspace_bytes < need || (reinterpret_cast<uintptr_t>(p.workspace) & 255)) return cudaErrorInvalidValue;
      flags = static_cast<unsigned*>(p.workspace);
      if (!ring) ring = reinterpret_cast<float*>(static_cast<char*>(p.workspace) + (need - (size_t)bh * P * N * sizeof(float)));
      cudaError_t e = cudaMemsetAsync(flags, 0, (size_t)bh * sizeof(unsigned), stream);
      if (e != cudaSuccess) return e;
    }
    auto kern = detail::ssd_chunk_parallel_fwd_kernel<L, P, N, kSplitState>;
    cudaError_t e = opt_in_smem<detail::ssd_chunk_parallel_fwd_kernel<L, P, N, kSplitState>>((int)smem);
    if (e != cudaSuccess) return e;
    kern<<<(unsigned)(nchunks * bh), 256, smem, stream>>>(p, flags, ring);
    return cudaGetLastError();
  }
  auto kern = detail::ssd_chunked_fwd_kernel<L, P, N, kSplitState>;
  cudaError_t e = opt_in_smem<detail::ssd_chunked_fwd_kernel<L, P, N, kSplitState>>((int)smem);
  if (e != cudaSuccess) return e;
  kern<<<(unsigned)bh, 256, smem, stream>>>(p);
  return cudaGetLastError();
}

// Chunked forward through the wgmma kernel (sm_90a builds only: elsewhere its body traps, and the
// code generator calls this for sm_90a alone). Shapes it does not cover (P != 64, N != 128) and
// a given workspace go to ssd_chunked_fwd. The chunk length is the kernel's own (128) whatever L
// says: it changes only the rounding of y, not the function.
template <int L, int P, int N, bool kSplitState = true>
inline cudaError_t ssd_chunked_fwd_wgmma(const SsdParams& p, cudaStream_t stream = 0) {
  if constexpr (P != 64 || N != 128) {
    return ssd_chunked_fwd<L, P, N, kSplitState>(p, stream);
  } else {
    if (p.workspace) return ssd_chunked_fwd<L, P, N, kSplitState>(p, stream);
    if (const cudaError_t e = detail::validate_chunked(p); e != cudaSuccess) return e;
    constexpr int smem = (int)detail::WgSmem<N>::kBytes;
    const cudaError_t e = opt_in_smem<detail::ssd_wgmma_fwd_kernel<N, kSplitState>>(smem);
    if (e != cudaSuccess) return e;
    const long long bh = (long long)p.batch * p.nheads;
    detail::ssd_wgmma_fwd_kernel<N, kSplitState><<<(unsigned)bh, 256, smem, stream>>>(p);
    return cudaGetLastError();
  }
}

// Decode / sequential path (intended for T = 1; correct for any T). hT may alias h0.
template <int P, int N>
inline cudaError_t ssd_decode_fwd(const SsdParams& p, cudaStream_t stream = 0) {
  if (p.batch <= 0 || p.nheads <= 0 || p.ngroups <= 0 || p.nheads % p.ngroups) return cudaErrorInvalidValue;
  if (!p.x || !(p.dt || p.dt_f32) || !p.A || !p.B || !p.C || !p.y || p.seqlen < 0) return cudaErrorInvalidValue;
  return launch_pdl<detail::ssd_decode_kernel<P, N>>(dim3(p.batch * p.nheads, (P + 3) / 4), dim3(128), 0, stream, p);
}

}  // namespace ssd
}  // namespace strata

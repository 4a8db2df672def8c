// attention_bwd.cuh — Strata causal GQA attention backward (FlashAttention-2 style, recompute),
// bf16 in / bf16 out, fp32 softmax statistics and accumulation, deterministic (no atomics: every
// output element is written by one thread, every sum runs in a fixed order). Header-only, over
// strata/ and the tile helpers of attention.cuh (swizzled smem tiles, async tile loads).
//
// ─── What it computes (compiler/passes/vjp-ops.ts attentionGrad, the float64 reference) ──────
//   Forward: o_i = Σ_j p_ij v_j,  p_ij = softmax_j(scale · q_i·k_j) over the keys j ≤ i + S − T.
//   Given dO (the gradient of o):
//     dp_ij = dO_i·v_j,  D_i = Σ_j p_ij dp_ij = dO_i·o_i,  ds_ij = p_ij (dp_ij − D_i)
//     dq_i = scale Σ_j ds_ij k_j,  dk_j = scale Σ_(h in group, i) ds_ij q_i,  dv_j = Σ_(h, i) p_ij dO_i
//   GQA: query head h reads kv head h / (H/Hk); dk/dv of a kv head sum over its H/Hk query heads.
//   A query with no visible key (only when S < T) has o = 0 and no gradient.
//
// ─── Layout contract (as attention.cuh) ───────────────────────────────────────────────────
//   q, dout, dq : [B, T, H, D]   k, v, dk, dv : [B, S, Hk, D]   (bf16, token-major: element
//   (b, t, h, d) at base + b*batch_stride + t*row_stride + h*D + d; q/k/v may be column slices of
//   one fused projection). Base pointers 16-byte aligned (q, k, v, dout; dq/dk/dv 4-byte), row and
//   batch strides multiples of 8 elements. H % Hk == 0, S ≥ 1.
//   Scratch: lse and delta, fp32 [B, H, T] each (attention_bwd_scratch_bytes = 8·B·H·T bytes).
//
// ─── Algorithm: two kernels, no S×S in memory ─────────────────────────────────────────────
//   1. attn_bwd_dq_kernel — one CTA per (query block of BM = 64 rows, head, batch), 4 warps of
//      16 rows each (the forward's layout). The attention inputs do not include the forward's
//      output or its log-sum-exp, so the kernel recomputes them: sweep 1 over the visible key
//      tiles is the forward (online softmax, O += P·V in registers), and its epilogue turns O into
//      the row statistics lse (log2 domain, scaled) and D = rowsum(dO ∘ O) (fp32 O, never
//      stored), written to the scratch for kernel 2. Sweep 2 over the same key tiles (in the
//      reverse order, so the tile left in smem by sweep 1 is reused) recomputes P exactly,
//      dP = dO·Vᵀ, dS = P ∘ (dP − D) and accumulates dQ += dS·K in the registers that held O.
//      dQ is owned by its CTA: no atomics, no partials.
//   2. attn_bwd_dkdv_kernel — one CTA per (key block of BN = 64 keys, kv head, batch), 4 warps of
//      16 keys each; K and V stay in smem for the whole CTA. It walks the query heads of the kv
//      head's group and, for each, the query tiles (BQ rows) that see the block, through a
//      2-stage cp.async double buffer of Q, dO, lse and D: Sᵀ = K·Qᵀ, Pᵀ = exp2(Sᵀ·c − lse),
//      dPᵀ = V·dOᵀ, dSᵀ = Pᵀ ∘ (dPᵀ − D), dV += Pᵀ·dO, dK += dSᵀ·Q. The accumulators live in
//      registers and are summed in the fixed order (head, query tile), so the GQA reduction is
//      deterministic without atomics.
//   All products are mma.sync m16n8k16 bf16 → fp32 with ldmatrix fragments; a C-fragment pair
//   is the A fragment of the next product (P, dS), as in the forward. Causal: tiles entirely
//   above the diagonal are skipped, only tiles crossing it are masked. CTAs with the most work
//   are issued first (longest-processing-time-first).
//
// ─── Hopper: the same two kernels on wgmma (the default where the image is sm_90a) ───────
//   dq_wgmma_body / dkdv_wgmma_body, 2 warpgroups (256 threads) per CTA, each warpgroup 64 rows
//   (kernel 1: query rows; kernel 2: keys) with its accumulators (m64nN fp32) in registers.
//   Tiles sit in shared memory as attention_wgmma.cuh lays them out (D/64 panels of [rows][64],
//   128-byte rows, 128B swizzle), filled by cp.async from all threads through a 3-stage ring
//   (fence.proxy.async before the barrier that hands a stage to wgmma). S = Q·Kᵀ, dP = dO·Vᵀ
//   (kernel 2: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ) take both operands from shared memory; P·V, dS·K, Pᵀ·dO,
//   dSᵀ·Q take P / dS from registers (the accumulator layout converted pairwise to bf16) and an
//   MN-major B from shared memory. Kernel 1 runs 64 rows × 2 query heads of one kv group per CTA
//   where H/Hk is even (the K/V tiles are read once for both heads), else 128 rows of one head;
//   kernel 2 runs 128 keys per CTA. Same fixed orders (bit-identical repeats), same statistics.
//   attention_bwd_launch picks them when the kernel's image is sm_90 or later (an sm_90 image
//   without the "a" features runs 8-warp mma.sync bodies in the same launch shape), else the
//   mma.sync kernels above.
//
// ─── API ──────────────────────────────────────────────────────────────────────────────────
//   strata::attn::AttentionBwdParams p{...};
//   strata::attn::attention_bwd_launch<D /*64|128*/>(p, stream)      // the two kernels
//   strata::attn::attention_bwd_launch_cfg<D, BwdConfig<...>>(p, stream, parts)  // a tile
//       configuration; parts: bit 0 kernel 1, bit 1 kernel 2 (timing each alone)
//   strata::attn::attention_bwd_launch_simple<D>(p, stream)           // scalar reference path
//   Returns cudaError_t (argument errors -> cudaErrorInvalidValue).
#pragma once

#include "attention.cuh"

namespace strata {
namespace attn {

struct AttentionBwdParams {
  const __nv_bfloat16* q;     // [B, T, H, D]
  const __nv_bfloat16* k;     // [B, S, Hk, D]
  const __nv_bfloat16* v;     // [B, S, Hk, D]
  const __nv_bfloat16* dout;  // [B, T, H, D]  gradient of the attention output
  __nv_bfloat16* dq;          // [B, T, H, D]
  __nv_bfloat16* dk;          // [B, S, Hk, D]
  __nv_bfloat16* dv;          // [B, S, Hk, D]
  int64_t q_row_stride, k_row_stride, v_row_stride, do_row_stride;
  int64_t q_batch_stride, k_batch_stride, v_batch_stride, do_batch_stride;
  int64_t dq_row_stride, dk_row_stride, dv_row_stride;
  int64_t dq_batch_stride, dk_batch_stride, dv_batch_stride;
  int B, T, S, H, Hk;
  float scale;   // softmax scale; <= 0 means 1/sqrt(D)
  float* lse;    // scratch fp32 [B, H, T]: log2-domain row log-sum-exp of scale·log2e·q·k
  float* delta;  // scratch fp32 [B, H, T]: D = rowsum(dO ∘ O)
};

inline size_t attention_bwd_scratch_bytes(int B, int T, int H) {
  return static_cast<size_t>(2) * B * H * T * sizeof(float);
}

namespace detail {

// ---- fragment loads from swizzled [rows x D] tiles (attention.cuh's tile_addr) -------------
// A fragment (16 rows x 16 k) of rows [r0, r0 + 16), k columns [16 kk, 16 kk + 16).
template <int D>
STRATA_DEV void ld_frag_a(uint32_t (&a)[4], uint32_t base, int r0, int kk, int lane) {
  ldmatrix_x4(a, tile_addr<D>(base, r0 + (lane & 7) + ((lane >> 3) & 1) * 8, kk * 2 + (lane >> 4)));
}
// B fragments of two n8 tiles whose n index is the tile's row: rows [n0, n0 + 16), k columns
// [16 kk, +16). b[0], b[1]: rows n0..n0+7; b[2], b[3]: rows n0+8..n0+15.
template <int D>
STRATA_DEV void ld_frag_b_rows(uint32_t (&b)[4], uint32_t base, int n0, int kk, int lane) {
  ldmatrix_x4(b, tile_addr<D>(base, n0 + (lane & 7) + (lane >> 4) * 8, kk * 2 + ((lane >> 3) & 1)));
}
// B fragments of two n8 tiles whose k index is the tile's row: rows [k0, k0 + 16), n columns
// [16 dp, +16). b[0], b[1]: columns 16dp..16dp+7; b[2], b[3]: 16dp+8..16dp+15.
template <int D>
STRATA_DEV void ld_frag_b_cols(uint32_t (&b)[4], uint32_t base, int k0, int dp, int lane) {
  ldmatrix_x4_trans(b, tile_addr<D>(base, k0 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 2 + (lane >> 4)));
}

// ============================================================================================
// Kernel 1: row statistics (lse, D) and dQ, one CTA per (query block, group of heads, batch).
// BMQ query rows x HPC query heads of one kv group (HPC divides H / Hk): every warp owns 16 rows
// of one head, and the CTA's warps share each K/V tile (HPC > 1 divides the K/V traffic from L2
// by HPC at the same causal extent). STAGES-deep cp.async ring of K/V tiles.
// ============================================================================================
template <int D, int BN, int BMQ, int HPC, int STAGES>
struct DqCfg {
  static constexpr int BM = BMQ;          // query rows per CTA (per head)
  static constexpr int RW = BMQ / 16;     // warps per head
  static constexpr int WARPS = RW * HPC;  // 16 rows of one head per warp
  static constexpr int THREADS = 32 * WARPS;
  static constexpr int SMEM_ROWS = BM * D * 2;  // one head's Q (or dO) tile
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM = 2 * HPC * SMEM_ROWS + 2 * STAGES * SMEM_KV;  // Q, dO (x HPC), STAGES x (K, V)
  static_assert(BMQ % 16 == 0 && WARPS >= 1 && WARPS <= 8, "1..8 warps of 16 rows");
  static_assert(STAGES >= 2, "at least a double buffer");
};

template <int D, int BN, int BMQ, int HPC, int STAGES>
STRATA_DEV void dq_mma_body(const AttentionBwdParams& p, float scale, float scale_log2) {
  using C = DqCfg<D, BN, BMQ, HPC, STAGES>;
  constexpr int BM = C::BM;
  constexpr int THREADS = C::THREADS;
  constexpr int KD = D / 16;  // k-steps over the head dim
  constexpr int NT = BN / 8;  // n8 tiles of S per warp
  constexpr int DT = D / 8;   // n8 tiles of O / dQ per warp
  constexpr int KN = BN / 16; // k-steps over the keys

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tg = lane & 3;
  const int slot = HPC == 1 ? 0 : warp / C::RW;             // this warp's head within the CTA's HPC heads
  const int wr = (HPC == 1 ? warp : warp % C::RW) * 16;    // this warp's first row within the block

  const uint32_t sQall = smem_u32(smem_raw);
  const uint32_t sdOall = sQall + HPC * C::SMEM_ROWS;
  const uint32_t sK0 = sdOall + HPC * C::SMEM_ROWS;
  const uint32_t sV0 = sK0 + STAGES * C::SMEM_KV;
  const uint32_t sQ = sQall + slot * C::SMEM_ROWS;
  const uint32_t sdO = sdOall + slot * C::SMEM_ROWS;

  const int num_m = (p.T + BM - 1) / BM;
  const int G = p.H / HPC;  // head groups of HPC heads
  const int BG = p.B * G;
  const int work = static_cast<int>(blockIdx.x);
  const int bg = work % BG;
  const int m_block = num_m - 1 - work / BG;  // the longest (last) query blocks first
  if (m_block < 0) return;                    // (a grid sized for another body)
  const int b = bg / G, h0 = (bg % G) * HPC;
  const int hk = h0 / (p.H / p.Hk);
  const int h = h0 + slot;
  const int bh = b * p.H + h;
  const int m0 = m_block * BM;
  const int offset = p.S - p.T;

  const __nv_bfloat16* gK = p.k + b * p.k_batch_stride + hk * D;
  const __nv_bfloat16* gV = p.v + b * p.v_batch_stride + hk * D;

  const int last_row = min(m0 + BM, p.T) - 1;
  const int n_end = min(p.S, last_row + offset + 1);  // keys [0, n_end) are visible to the block
  const int nkv = n_end > 0 ? (n_end + BN - 1) / BN : 0;
  const bool warp_active = (m0 + wr) < p.T;
  const int row0 = m0 + wr + g;  // query index of fragment row g (row g + 8: row0 + 8)
  const int lim[2] = {min(row0 + offset, p.S - 1), min(row0 + 8 + offset, p.S - 1)};

  // the visit order: sweep 1 tiles nkv-1 .. 0, sweep 2 tiles 0 .. nkv-1
  const int total = 2 * nkv;
  auto tile_of = [&](int it) { return it < nkv ? nkv - 1 - it : it - nkv; };
  auto load_kv = [&](int it) {
    const int n0 = tile_of(it) * BN;
    const uint32_t off = (it % STAGES) * C::SMEM_KV;
    load_tile_async<D, BN, THREADS>(sK0 + off, gK + static_cast<int64_t>(n0) * p.k_row_stride, p.k_row_stride, p.S - n0, tid);
    load_tile_async<D, BN, THREADS>(sV0 + off, gV + static_cast<int64_t>(n0) * p.v_row_stride, p.v_row_stride, p.S - n0, tid);
  };

#pragma unroll
  for (int e = 0; e < HPC; ++e) {
    load_tile_async<D, BM, THREADS>(sQall + e * C::SMEM_ROWS,
                                    p.q + b * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + (h0 + e) * D,
                                    p.q_row_stride, p.T - m0, tid);
    load_tile_async<D, BM, THREADS>(sdOall + e * C::SMEM_ROWS,
                                    p.dout + b * p.do_batch_stride + static_cast<int64_t>(m0) * p.do_row_stride + (h0 + e) * D,
                                    p.do_row_stride, p.T - m0, tid);
  }
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < total) load_kv(s);
    cp_async_commit();
  }

  float acc[DT][4];  // sweep 1: O (unnormalised); sweep 2: dQ
#pragma unroll
  for (int i = 0; i < DT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  float m_r[2] = {-INFINITY, -INFINITY};  // running max (log2 units)
  float l_r[2] = {0.f, 0.f};              // this thread's partial row sums
  float lse[2] = {INFINITY, INFINITY};    // log2-domain lse; +inf: no visible key (p = 0)
  float dl[2] = {0.f, 0.f};               // D = rowsum(dO ∘ O)

  for (int it = 0; it < total; ++it) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile `it` landed; every warp is done with the stage loaded next
    if (it + STAGES - 1 < total) load_kv(it + STAGES - 1);
    cp_async_commit();

    const uint32_t sK = sK0 + (it % STAGES) * C::SMEM_KV;
    const uint32_t sV = sV0 + (it % STAGES) * C::SMEM_KV;
    const int n0 = tile_of(it) * BN;
    const bool sweep2 = it >= nkv;

    if (sweep2 && it == nkv) {
      // ---- sweep 1 epilogue: lse and D for rows g, g + 8 ----
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 1);
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 2);
        const float inv = l_r[r] > 0.f ? 1.f / l_r[r] : 0.f;
        const int row = wr + g + r * 8;
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < DT; ++i) {
          uint32_t gw;
          asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(gw) : "r"(sdO + static_cast<uint32_t>((row * D + swz<D>(row, i) * 8 + tg * 2) * 2)));
          const float2 go = unpack_bf16x2(gw);
          d = fmaf(acc[i][2 * r], go.x, fmaf(acc[i][2 * r + 1], go.y, d));
        }
        d += __shfl_xor_sync(0xffffffffu, d, 1);
        d += __shfl_xor_sync(0xffffffffu, d, 2);
        dl[r] = d * inv;
        lse[r] = l_r[r] > 0.f ? m_r[r] + __log2f(l_r[r]) : INFINITY;
        const int t = m0 + row;
        if (tg == 0 && t < p.T) {
          const int64_t o = static_cast<int64_t>(bh) * p.T + t;
          p.lse[o] = lse[r];
          p.delta[o] = dl[r];
        }
      }
#pragma unroll
      for (int i = 0; i < DT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    }
    if (!warp_active || n0 > wr + m0 + 15 + offset) continue;  // above this warp's rows

    // ---- S = Q K^T ----
    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      uint32_t qa[4];
      ld_frag_a<D>(qa, sQ, wr, kk, lane);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t kb[4];
        ld_frag_b_rows<D>(kb, sK, np * 16, kk, lane);
        mma_m16n8k16_bf16(s[2 * np], qa, kb[0], kb[1]);
        mma_m16n8k16_bf16(s[2 * np + 1], qa, kb[2], kb[3]);
      }
    }
    if (n0 + BN - 1 > min(row0 + offset, p.S - 1)) {  // tile crosses the diagonal or the end of S
#pragma unroll
      for (int i = 0; i < NT; ++i) {
        const int j = n0 + i * 8 + tg * 2;
        if (j > lim[0]) s[i][0] = -INFINITY;
        if (j + 1 > lim[0]) s[i][1] = -INFINITY;
        if (j > lim[1]) s[i][2] = -INFINITY;
        if (j + 1 > lim[1]) s[i][3] = -INFINITY;
      }
    }

    uint32_t pa[KN][4];  // P (sweep 1) or dS (sweep 2) as bf16 A fragments
    if (!sweep2) {
      // ---- online softmax (log2 domain) ----
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int i = 0; i < NT; ++i) mx = fmaxf(mx, fmaxf(s[i][2 * r], s[i][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_r[r], mx * scale_log2);
        const float alpha = (m_r[r] == -INFINITY) ? 0.f : fast_exp2(m_r[r] - m_new);
        m_r[r] = m_new;
        l_r[r] *= alpha;
#pragma unroll
        for (int i = 0; i < DT; ++i) {
          acc[i][2 * r] *= alpha;
          acc[i][2 * r + 1] *= alpha;
        }
        const float msc = (m_new == -INFINITY) ? 0.f : m_new;
#pragma unroll
        for (int i = 0; i < NT; ++i) {
          const float p0 = fast_exp2(fmaf(s[i][2 * r], scale_log2, -msc));
          const float p1 = fast_exp2(fmaf(s[i][2 * r + 1], scale_log2, -msc));
          l_r[r] += p0 + p1;
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0, p1);
        }
      }
      // ---- O += P V ----
#pragma unroll
      for (int kk = 0; kk < KN; ++kk) {
#pragma unroll
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t vb[4];
          ld_frag_b_cols<D>(vb, sV, kk * 16, dp, lane);
          mma_m16n8k16_bf16(acc[2 * dp], pa[kk], vb[0], vb[1]);
          mma_m16n8k16_bf16(acc[2 * dp + 1], pa[kk], vb[2], vb[3]);
        }
      }
    } else {
      // ---- dP = dO V^T ----
      float dp_[NT][4];
#pragma unroll
      for (int i = 0; i < NT; ++i) dp_[i][0] = dp_[i][1] = dp_[i][2] = dp_[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t da[4];
        ld_frag_a<D>(da, sdO, wr, kk, lane);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t vb[4];
          ld_frag_b_rows<D>(vb, sV, np * 16, kk, lane);
          mma_m16n8k16_bf16(dp_[2 * np], da, vb[0], vb[1]);
          mma_m16n8k16_bf16(dp_[2 * np + 1], da, vb[2], vb[3]);
        }
      }
      // ---- dS = P (dP - D), P = exp2(S c - lse) ----
#pragma unroll
      for (int i = 0; i < NT; ++i) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float p0 = fast_exp2(fmaf(s[i][2 * r], scale_log2, -lse[r]));
          const float p1 = fast_exp2(fmaf(s[i][2 * r + 1], scale_log2, -lse[r]));
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0 * (dp_[i][2 * r] - dl[r]), p1 * (dp_[i][2 * r + 1] - dl[r]));
        }
      }
      // ---- dQ += dS K ----
#pragma unroll
      for (int kk = 0; kk < KN; ++kk) {
#pragma unroll
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t kb[4];
          ld_frag_b_cols<D>(kb, sK, kk * 16, dp, lane);
          mma_m16n8k16_bf16(acc[2 * dp], pa[kk], kb[0], kb[1]);
          mma_m16n8k16_bf16(acc[2 * dp + 1], pa[kk], kb[2], kb[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // A block with no visible key (S < T only) never ran the epilogue above: lse = +inf, D = 0.
  if (nkv == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int t = row0 + r * 8;
      if (tg == 0 && t < p.T) {
        p.lse[static_cast<int64_t>(bh) * p.T + t] = INFINITY;
        p.delta[static_cast<int64_t>(bh) * p.T + t] = 0.f;
      }
    }
  }
  // ---- dQ = scale * acc, bf16 ----
  __nv_bfloat16* gdQ = p.dq + b * p.dq_batch_stride + h * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = row0 + r * 8;
    if (t < p.T) {
      __nv_bfloat16* row = gdQ + static_cast<int64_t>(t) * p.dq_row_stride;
#pragma unroll
      for (int i = 0; i < DT; ++i) store_bf16x2(row + i * 8 + tg * 2, acc[i][2 * r] * scale, acc[i][2 * r + 1] * scale);
    }
  }
}

template <int D, int BN, int BMQ, int HPC, int STAGES>
__global__ void __launch_bounds__(DqCfg<D, BN, BMQ, HPC, STAGES>::THREADS, (DqCfg<D, BN, BMQ, HPC, STAGES>::WARPS <= 4 ? 2 : 1))
attn_bwd_dq_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
  dq_mma_body<D, BN, BMQ, HPC, STAGES>(p, scale, scale_log2);
}

// ============================================================================================
// Kernel 2: dK and dV, one CTA per (key block of 16·WARPS keys, kv head, batch), STAGES-deep
// cp.async ring of (Q, dO, lse, D) query tiles.
// ============================================================================================
template <int D, int BQ, int WARPS, int STAGES>
struct DkvCfg {
  static constexpr int BN = 16 * WARPS;  // WARPS x 16 keys
  static constexpr int THREADS = 32 * WARPS;
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM_ROWS = BQ * D * 2;
  static constexpr int SMEM_STATS = 2 * BQ * 4;  // lse, D of one query tile
  static constexpr int SMEM = 2 * SMEM_KV + STAGES * (2 * SMEM_ROWS + SMEM_STATS);  // K, V, STAGES x (Q, dO, stats)
  static_assert(THREADS >= 2 * BQ, "one thread per statistic");
  static_assert(STAGES >= 2, "at least a double buffer");
};

template <int D, int BQ, int WARPS, int STAGES>
STRATA_DEV void dkdv_mma_body(const AttentionBwdParams& p, float scale, float scale_log2) {
  using C = DkvCfg<D, BQ, WARPS, STAGES>;
  constexpr int BN = C::BN;
  constexpr int THREADS = C::THREADS;
  constexpr int KD = D / 16;   // k-steps over the head dim
  constexpr int NT = BQ / 8;   // n8 tiles (queries) of S^T per warp
  constexpr int DT = D / 8;    // n8 tiles of dK / dV per warp
  constexpr int KQ = BQ / 16;  // k-steps over the queries

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const uint32_t sK = smem_u32(smem_raw);
  const uint32_t sV = sK + C::SMEM_KV;
  const uint32_t sQ0 = sV + C::SMEM_KV;
  const uint32_t sdO0 = sQ0 + STAGES * C::SMEM_ROWS;
  float* sStats = reinterpret_cast<float*>(smem_raw + 2 * C::SMEM_KV + 2 * STAGES * C::SMEM_ROWS);  // [STAGES][lse BQ, D BQ]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tg = lane & 3;

  const int BHk = p.B * p.Hk;
  const int n_block = static_cast<int>(blockIdx.x) / BHk;  // the longest (first) key blocks first
  const int bhk = static_cast<int>(blockIdx.x) % BHk;
  const int b = bhk / p.Hk, hk = bhk % p.Hk;
  const int rep = p.H / p.Hk;
  const int n0 = n_block * BN;
  const int offset = p.S - p.T;

  const __nv_bfloat16* gK = p.k + b * p.k_batch_stride + static_cast<int64_t>(n0) * p.k_row_stride + hk * D;
  const __nv_bfloat16* gV = p.v + b * p.v_batch_stride + static_cast<int64_t>(n0) * p.v_row_stride + hk * D;

  // query tiles that see some key of the block: queries i >= n0 - offset
  const int num_m = (p.T + BQ - 1) / BQ;
  const int m_first = max(0, n0 - offset) / BQ;
  const int n_mt = max(0, num_m - m_first);
  const int iters = rep * n_mt;

  auto load_q = [&](int it) {
    const int h = hk * rep + it / n_mt;
    const int m0 = (m_first + it % n_mt) * BQ;
    const int stage = it % STAGES;
    load_tile_async<D, BQ, THREADS>(sQ0 + stage * C::SMEM_ROWS,
                                    p.q + b * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + h * D,
                                    p.q_row_stride, p.T - m0, tid);
    load_tile_async<D, BQ, THREADS>(sdO0 + stage * C::SMEM_ROWS,
                                    p.dout + b * p.do_batch_stride + static_cast<int64_t>(m0) * p.do_row_stride + h * D,
                                    p.do_row_stride, p.T - m0, tid);
  };
  // lse / D of tile `it` -> registers (issued early), -> smem (after the tile's compute)
  float stat = 0.f;
  auto fetch_stat = [&](int it) {
    if (tid < 2 * BQ) {
      const int h = hk * rep + it / n_mt;
      const int t = (m_first + it % n_mt) * BQ + (tid % BQ);
      const int64_t o = (static_cast<int64_t>(b) * p.H + h) * p.T + t;
      // rows past T: lse = +inf (p = 0), D = 0
      stat = tid < BQ ? (t < p.T ? p.lse[o] : INFINITY) : (t < p.T ? p.delta[o] : 0.f);
    }
  };
  auto store_stat = [&](int it) {
    if (tid < 2 * BQ) sStats[(it % STAGES) * 2 * BQ + tid] = stat;
  };

  load_tile_async<D, BN, THREADS>(sK, gK, p.k_row_stride, p.S - n0, tid);
  load_tile_async<D, BN, THREADS>(sV, gV, p.v_row_stride, p.S - n0, tid);
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < iters) {
      load_q(s);
      fetch_stat(s);
      store_stat(s);
    }
    cp_async_commit();
  }

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i) {
    dk[i][0] = dk[i][1] = dk[i][2] = dk[i][3] = 0.f;
    dv[i][0] = dv[i][1] = dv[i][2] = dv[i][3] = 0.f;
  }
  const int key0 = n0 + warp * 16 + g;  // key index of fragment row g (row g + 8: key0 + 8)
  const bool warp_active = n0 + warp * 16 < p.S;

  for (int it = 0; it < iters; ++it) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // tile `it` (and its stats) landed; every warp is done with the stage loaded next
    const int nxt = it + STAGES - 1;
    const bool more = nxt < iters;
    if (more) {
      load_q(nxt);
      fetch_stat(nxt);
    }
    cp_async_commit();

    const int stage = it % STAGES;
    const uint32_t sQ = sQ0 + stage * C::SMEM_ROWS;
    const uint32_t sdO = sdO0 + stage * C::SMEM_ROWS;
    const float* sL = sStats + stage * 2 * BQ;
    const float* sD = sL + BQ;
    const int m0 = (m_first + it % n_mt) * BQ;
    // warp skips when every key of its 16 lies past the tile's last visible query, or past S
    if (warp_active && n0 + warp * 16 <= m0 + BQ - 1 + offset) {
      // ---- S^T = K Q^T  and  dP^T = V dO^T ----
      float s[NT][4], dpt[NT][4];
#pragma unroll
      for (int i = 0; i < NT; ++i) {
        s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
        dpt[i][0] = dpt[i][1] = dpt[i][2] = dpt[i][3] = 0.f;
      }
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t ka[4], va[4];
        ld_frag_a<D>(ka, sK, warp * 16, kk, lane);
        ld_frag_a<D>(va, sV, warp * 16, kk, lane);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t qb[4], ob[4];
          ld_frag_b_rows<D>(qb, sQ, np * 16, kk, lane);
          ld_frag_b_rows<D>(ob, sdO, np * 16, kk, lane);
          mma_m16n8k16_bf16(s[2 * np], ka, qb[0], qb[1]);
          mma_m16n8k16_bf16(s[2 * np + 1], ka, qb[2], qb[3]);
          mma_m16n8k16_bf16(dpt[2 * np], va, ob[0], ob[1]);
          mma_m16n8k16_bf16(dpt[2 * np + 1], va, ob[2], ob[3]);
        }
      }
      // ---- mask: key j is visible to query i iff j <= i + offset ----
      if (n0 + warp * 16 + 15 > m0 + offset) {
#pragma unroll
        for (int i = 0; i < NT; ++i) {
          const int qi = m0 + i * 8 + tg * 2 + offset;
          if (key0 > qi) s[i][0] = -INFINITY;
          if (key0 > qi + 1) s[i][1] = -INFINITY;
          if (key0 + 8 > qi) s[i][2] = -INFINITY;
          if (key0 + 8 > qi + 1) s[i][3] = -INFINITY;
        }
      }
      // ---- P^T, dS^T as bf16 A fragments (k = queries) ----
      uint32_t pa[KQ][4], da[KQ][4];
#pragma unroll
      for (int i = 0; i < NT; ++i) {
        const float2 l2 = *reinterpret_cast<const float2*>(sL + i * 8 + tg * 2);
        const float2 d2 = *reinterpret_cast<const float2*>(sD + i * 8 + tg * 2);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float p0 = fast_exp2(fmaf(s[i][2 * r], scale_log2, -l2.x));
          const float p1 = fast_exp2(fmaf(s[i][2 * r + 1], scale_log2, -l2.y));
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0, p1);
          da[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0 * (dpt[i][2 * r] - d2.x), p1 * (dpt[i][2 * r + 1] - d2.y));
        }
      }
      // ---- dV += P^T dO,  dK += dS^T Q ----
#pragma unroll
      for (int kk = 0; kk < KQ; ++kk) {
#pragma unroll
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t ob[4], qb[4];
          ld_frag_b_cols<D>(ob, sdO, kk * 16, dp, lane);
          ld_frag_b_cols<D>(qb, sQ, kk * 16, dp, lane);
          mma_m16n8k16_bf16(dv[2 * dp], pa[kk], ob[0], ob[1]);
          mma_m16n8k16_bf16(dv[2 * dp + 1], pa[kk], ob[2], ob[3]);
          mma_m16n8k16_bf16(dk[2 * dp], da[kk], qb[0], qb[1]);
          mma_m16n8k16_bf16(dk[2 * dp + 1], da[kk], qb[2], qb[3]);
        }
      }
    }
    if (more) store_stat(nxt);  // the other stage: free since the barrier above
  }
  cp_async_wait<0>();

  // ---- dK = scale * acc, dV = acc, bf16 ----
  __nv_bfloat16* gdK = p.dk + b * p.dk_batch_stride + hk * D;
  __nv_bfloat16* gdV = p.dv + b * p.dv_batch_stride + hk * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int j = key0 + r * 8;
    if (j < p.S) {
      __nv_bfloat16* rk = gdK + static_cast<int64_t>(j) * p.dk_row_stride;
      __nv_bfloat16* rv = gdV + static_cast<int64_t>(j) * p.dv_row_stride;
#pragma unroll
      for (int i = 0; i < DT; ++i) {
        store_bf16x2(rk + i * 8 + tg * 2, dk[i][2 * r] * scale, dk[i][2 * r + 1] * scale);
        store_bf16x2(rv + i * 8 + tg * 2, dv[i][2 * r], dv[i][2 * r + 1]);
      }
    }
  }
}

template <int D, int BQ, int WARPS, int STAGES>
__global__ void __launch_bounds__(32 * WARPS, (WARPS <= 4 ? 2 : 1))
attn_bwd_dkdv_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
  dkdv_mma_body<D, BQ, WARPS, STAGES>(p, scale, scale_log2);
}

// ============================================================================================
// Kernel 2 on Hopper (sm_90a): dK and dV with wgmma, one CTA of 2 warpgroups per (key block of
// 128 keys, kv head, batch); warpgroup w owns keys [64w, 64w + 64) of the block. Tiles live in
// shared memory as D/64 panels of [rows][64] (128-byte rows, 128B swizzle, 1 KB aligned), the
// layout of attention_wgmma.cuh, filled by cp.async (all 256 threads) through a STAGES-deep ring
// of (Q, dO, lse, D) query tiles of BQ = 64 rows. Per tile and warpgroup:
//   S^T = K Q^T, dP^T = V dO^T      (wgmma m64n64k16, both operands from shared memory)
//   P^T = exp2(S^T c - lse), dS^T = P^T (dP^T - D)   (registers; the accumulator layout is the
//                                     register-A layout of the next products)
//   dV += P^T dO, dK += dS^T Q       (wgmma m64nDk16, A from registers, B MN-major from smem)
// With OVL 1 the dV/dK products of tile i retire while S^T/dP^T of tile i+1 run (one wait per
// tile), with OVL 2 only the dV product does; the ring then prefetches STAGES-2 tiles ahead. The fixed summation order is the same
// as the mma.sync kernel's (head, query tile), so results are bit-identical run to run.
// ============================================================================================
template <int D, int STAGES>
struct DkvWgCfg {
  static constexpr int BN = 128;  // 2 warpgroups x 64 keys
  static constexpr int BQ = 64;
  static constexpr int THREADS = 256;
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM_ROWS = BQ * D * 2;
  static constexpr int SMEM_STATS = 2 * BQ * 4;
  static constexpr int SMEM = 1024 + 2 * SMEM_KV + STAGES * (2 * SMEM_ROWS + SMEM_STATS);
};

// Async copy of a [ROWS x D] tile into D/64 panels of [ROWS][64] (128-byte rows, 128B swizzle);
// rows >= valid_rows are zero-filled.
template <int D, int ROWS, int THREADS>
STRATA_DEV void load_tile_panels_async(uint32_t s_base, const __nv_bfloat16* g, int64_t stride, int valid_rows, int tid) {
  constexpr int CPR = D / 8;
  constexpr int TOTAL = ROWS * CPR;
  static_assert(TOTAL % THREADS == 0, "tile size must be a multiple of the CTA size in 16B chunks");
#pragma unroll
  for (int it = 0; it < TOTAL / THREADS; ++it) {
    const int i = it * THREADS + tid;
    const int r = i / CPR;
    const int c = i % CPR;
    const bool ok = r < valid_rows;
    const __nv_bfloat16* src = ok ? (g + static_cast<int64_t>(r) * stride + c * 8) : g;
    cp_async_16(s_base + static_cast<uint32_t>((c >> 3) * ROWS * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)), src, ok);
  }
}

template <int D, int STAGES, int OVL>
STRATA_DEV void dkdv_wgmma_body(const AttentionBwdParams& p, float scale, float scale_log2) {
#if defined(STRATA_HAS_WGMMA)
  using C = DkvWgCfg<D, STAGES>;
  constexpr int BN = C::BN, BQ = C::BQ, THREADS = C::THREADS;
  constexpr int NS = BQ / 2;  // S^T accumulators per thread (m64nBQ)
  constexpr int NO = D / 2;   // dK / dV accumulators per thread (m64nD)
  constexpr int KQ = BQ / 16;
  // OVL 1: the dV and dK products of a tile retire during the next tile's S^T / dP^T; OVL 2:
  // only dV does (dK is waited for at once: 16 registers fewer in flight)
  constexpr bool OVERLAP = OVL > 0;
  constexpr int AHEAD = OVERLAP ? STAGES - 2 : STAGES - 1;  // tiles in flight ahead of the current one
  static_assert(AHEAD >= 1, "OVERLAP needs 3 stages or more");

  extern __shared__ __align__(1024) unsigned char bwd_wg_smem[];
  const uint32_t sbase = (smem_u32(bwd_wg_smem) + 1023u) & ~1023u;
  const uint32_t sK = sbase;
  const uint32_t sV = sK + C::SMEM_KV;
  const uint32_t sQ0 = sV + C::SMEM_KV;
  const uint32_t sdO0 = sQ0 + STAGES * C::SMEM_ROWS;
  float* sStats = reinterpret_cast<float*>(bwd_wg_smem + (sdO0 + STAGES * C::SMEM_ROWS - smem_u32(bwd_wg_smem)));

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7, warp = (tid >> 5) & 3;
  const int g = lane >> 2, tg = lane & 3;

  const int BHk = p.B * p.Hk;
  const int n_block = static_cast<int>(blockIdx.x) / BHk;  // the longest (first) key blocks first
  const int bhk = static_cast<int>(blockIdx.x) % BHk;
  const int b = bhk / p.Hk, hk = bhk % p.Hk;
  const int rep = p.H / p.Hk;
  const int n0 = n_block * BN;
  const int offset = p.S - p.T;

  const int num_m = (p.T + BQ - 1) / BQ;
  const int m_first = max(0, n0 - offset) / BQ;
  const int n_mt = max(0, num_m - m_first);
  const int iters = rep * n_mt;

  auto load_q = [&](int it) {
    const int h = hk * rep + it / n_mt;
    const int m0 = (m_first + it % n_mt) * BQ;
    const int stage = it % STAGES;
    load_tile_panels_async<D, BQ, THREADS>(sQ0 + stage * C::SMEM_ROWS,
                                           p.q + b * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + h * D,
                                           p.q_row_stride, p.T - m0, tid);
    load_tile_panels_async<D, BQ, THREADS>(sdO0 + stage * C::SMEM_ROWS,
                                           p.dout + b * p.do_batch_stride + static_cast<int64_t>(m0) * p.do_row_stride + h * D,
                                           p.do_row_stride, p.T - m0, tid);
  };
  float stat = 0.f;
  auto fetch_stat = [&](int it) {
    if (tid < 2 * BQ) {
      const int h = hk * rep + it / n_mt;
      const int t = (m_first + it % n_mt) * BQ + (tid % BQ);
      const int64_t o = (static_cast<int64_t>(b) * p.H + h) * p.T + t;
      stat = tid < BQ ? (t < p.T ? p.lse[o] : INFINITY) : (t < p.T ? p.delta[o] : 0.f);
    }
  };
  auto store_stat = [&](int it) {
    if (tid < 2 * BQ) sStats[(it % STAGES) * 2 * BQ + tid] = stat;
  };

  load_tile_panels_async<D, BN, THREADS>(sK, p.k + b * p.k_batch_stride + static_cast<int64_t>(n0) * p.k_row_stride + hk * D,
                                         p.k_row_stride, p.S - n0, tid);
  load_tile_panels_async<D, BN, THREADS>(sV, p.v + b * p.v_batch_stride + static_cast<int64_t>(n0) * p.v_row_stride + hk * D,
                                         p.v_row_stride, p.S - n0, tid);
#pragma unroll
  for (int s = 0; s < AHEAD; ++s) {
    if (s < iters) {
      load_q(s);
      fetch_stat(s);
      store_stat(s);
    }
    cp_async_commit();
  }

  float dk[NO], dv[NO];
#pragma unroll
  for (int i = 0; i < NO; ++i) dk[i] = dv[i] = 0.f;
  float st[NS], dpt[NS];
  uint32_t pa[KQ][4], da[KQ][4];
  const int kw0 = n0 + wg * 64;                   // this warpgroup's first key
  const int key0 = kw0 + warp * 16 + g;           // key of accumulator row g (row g + 8: key0 + 8)
  const bool wg_active = kw0 < p.S;
  const uint32_t sKw = sK + wg * 64 * 128, sVw = sV + wg * 64 * 128;
  bool pending = false;  // OVERLAP: dV/dK products of the previous tile still in flight

  for (int it = 0; it < iters; ++it) {
    cp_async_wait<AHEAD - 1>();
    fence_proxy_async();  // this thread's cp.async writes -> the wgmma (async proxy) reads
    __syncthreads();      // tile `it` landed; the stage loaded next is free
    const int nxt = it + AHEAD;
    const bool more = nxt < iters;
    if (more) {
      load_q(nxt);
      fetch_stat(nxt);
    }
    cp_async_commit();

    const int stage = it % STAGES;
    const uint32_t sQ = sQ0 + stage * C::SMEM_ROWS;
    const uint32_t sdO = sdO0 + stage * C::SMEM_ROWS;
    const float* sL = sStats + stage * 2 * BQ;
    const float* sD = sL + BQ;
    const int m0 = (m_first + it % n_mt) * BQ;

    // warpgroup-uniform: some key of the warpgroup sees some query of the tile. OVERLAP computes
    // every tile (a skipped one would leave wgmma in flight across a branch ptxas cannot prove
    // uniform, and it then serialises every wgmma): fully masked keys add exact zeros, and
    // keys past S are never stored.
    if (OVERLAP || (wg_active && kw0 <= m0 + BQ - 1 + offset)) {
      // ---- S^T = K Q^T, dP^T = V dO^T ----
      wgmma_reg_fence(st);
      wgmma_reg_fence(dpt);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t koff = (kk & 3) * 32;
        WgmmaSS<BQ>::mma(st, wgmma_desc_sw128(sKw + (kk >> 2) * BN * 128 + koff),
                         wgmma_desc_sw128(sQ + (kk >> 2) * BQ * 128 + koff), kk > 0 ? 1 : 0);
      }
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t koff = (kk & 3) * 32;
        WgmmaSS<BQ>::mma(dpt, wgmma_desc_sw128(sVw + (kk >> 2) * BN * 128 + koff),
                         wgmma_desc_sw128(sdO + (kk >> 2) * BQ * 128 + koff), kk > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();  // (OVERLAP: also retires the previous tile's dV/dK: pa, da are free)
      wgmma_reg_fence(st);
      wgmma_reg_fence(dpt);
      wgmma_reg_fence(dk);
      wgmma_reg_fence(dv);
      pending = false;

      // ---- mask: key j is visible to query i iff j <= i + offset ----
      if (kw0 + 63 > m0 + offset) {
#pragma unroll
        for (int i = 0; i < BQ / 8; ++i) {
          const int qi = m0 + i * 8 + tg * 2 + offset;
          if (key0 > qi) st[4 * i + 0] = -INFINITY;
          if (key0 > qi + 1) st[4 * i + 1] = -INFINITY;
          if (key0 + 8 > qi) st[4 * i + 2] = -INFINITY;
          if (key0 + 8 > qi + 1) st[4 * i + 3] = -INFINITY;
        }
      }
      // ---- P^T, dS^T -> bf16 register-A fragments (k = queries) ----
#pragma unroll
      for (int i = 0; i < BQ / 8; ++i) {
        const float2 l2 = *reinterpret_cast<const float2*>(sL + i * 8 + tg * 2);
        const float2 d2 = *reinterpret_cast<const float2*>(sD + i * 8 + tg * 2);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float p0 = fast_exp2(fmaf(st[4 * i + 2 * r], scale_log2, -l2.x));
          const float p1 = fast_exp2(fmaf(st[4 * i + 2 * r + 1], scale_log2, -l2.y));
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0, p1);
          da[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0 * (dpt[4 * i + 2 * r] - d2.x), p1 * (dpt[4 * i + 2 * r + 1] - d2.y));
        }
      }
      // ---- dV += P^T dO, dK += dS^T Q ----
      wgmma_reg_fence(dk);
      wgmma_reg_fence(dv);
      wgmma_fence();
      if constexpr (OVL == 2) {
#pragma unroll
        for (int kk = 0; kk < KQ; ++kk) WgmmaRS<D, 1>::mma(dk, da[kk], wgmma_desc_sw128_mn(sQ + kk * 2048, BQ * 128), 1);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < KQ; ++kk) WgmmaRS<D, 1>::mma(dv, pa[kk], wgmma_desc_sw128_mn(sdO + kk * 2048, BQ * 128), 1);
        wgmma_commit();
      } else {
#pragma unroll
        for (int kk = 0; kk < KQ; ++kk) WgmmaRS<D, 1>::mma(dv, pa[kk], wgmma_desc_sw128_mn(sdO + kk * 2048, BQ * 128), 1);
#pragma unroll
        for (int kk = 0; kk < KQ; ++kk) WgmmaRS<D, 1>::mma(dk, da[kk], wgmma_desc_sw128_mn(sQ + kk * 2048, BQ * 128), 1);
        wgmma_commit();
      }
      if constexpr (OVL == 2) {
        wgmma_wait<1>();  // dK retired (da free); dV stays in flight
        wgmma_reg_fence(dk);
        pending = true;
      } else if constexpr (OVERLAP) {
        pending = true;
      } else {
        wgmma_wait<0>();
        wgmma_reg_fence(dk);
        wgmma_reg_fence(dv);
      }
    }
    if (more) store_stat(nxt);  // a stage no warp reads this iteration
  }
  if (pending) {
    wgmma_wait<0>();
    wgmma_reg_fence(dk);
    wgmma_reg_fence(dv);
  }
  cp_async_wait<0>();

  // ---- dK = scale * acc, dV = acc, bf16 ----
  __nv_bfloat16* gdK = p.dk + b * p.dk_batch_stride + hk * D;
  __nv_bfloat16* gdV = p.dv + b * p.dv_batch_stride + hk * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int j = key0 + r * 8;
    if (j < p.S) {
      __nv_bfloat16* rk = gdK + static_cast<int64_t>(j) * p.dk_row_stride;
      __nv_bfloat16* rv = gdV + static_cast<int64_t>(j) * p.dv_row_stride;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        store_bf16x2(rk + i * 8 + tg * 2, dk[4 * i + 2 * r] * scale, dk[4 * i + 2 * r + 1] * scale);
        store_bf16x2(rv + i * 8 + tg * 2, dv[4 * i + 2 * r], dv[4 * i + 2 * r + 1]);
      }
    }
  }
#else
  __trap();
#endif
}

// Kernel 2 with one launch shape (256 threads, 128 keys per CTA) for every architecture: the
// wgmma body where the device pass has sm_90a features, else the 8-warp mma.sync body (32-query
// tiles, double buffers).
template <int D, int SW, int OVL>
struct DkvAutoCfg {
  static constexpr int BN = 128, THREADS = 256;
  static constexpr int SMEM = DkvWgCfg<D, SW>::SMEM > DkvCfg<D, 32, 8, 2>::SMEM ? DkvWgCfg<D, SW>::SMEM : DkvCfg<D, 32, 8, 2>::SMEM;
};
template <int D, int SW, int OVL>
__global__ void __launch_bounds__(256, 1) attn_bwd_dkdv_auto_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
#if defined(STRATA_HAS_WGMMA)
  dkdv_wgmma_body<D, SW, OVL>(p, scale, scale_log2);
#else
  dkdv_mma_body<D, 32, 8, 2>(p, scale, scale_log2);
#endif
}

// ============================================================================================
// Kernel 1 on Hopper (sm_90a): lse, D and dQ with wgmma, one CTA of 2 warpgroups per (128 query
// rows of one head, or 64 rows of HPC = 2 heads of one kv group, batch); each warpgroup owns 64
// query rows of one head. Tiles in shared memory as [rows][64] panels (128B swizzle, as
// kernel 2's wgmma body), K/V tiles of BN = 64 keys through a STAGES-deep cp.async ring.
//   sweep 1 (tiles nkv-1 .. 0): S = Q K^T (wgmma, smem x smem), online softmax, O += P V
//            (wgmma, P from registers); epilogue lse, D = rowsum(dO ∘ O) / l -> scratch.
//   sweep 2 (tiles 0 .. nkv-1): S = Q K^T, dP = dO V^T, dS = P (dP - D), dQ += dS K.
// ============================================================================================
template <int D, int HPC, int STAGES>
struct DqWgCfg {
  static constexpr int BN = 64;
  static constexpr int BMQ = 128 / HPC;  // query rows per CTA (per head)
  static constexpr int THREADS = 256;
  static constexpr int SMEM_ROWS = BMQ * D * 2;  // one head's Q (or dO) tile
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM = 1024 + 2 * HPC * SMEM_ROWS + 2 * STAGES * SMEM_KV;
};

template <int D, int HPC, int STAGES, bool OV>
STRATA_DEV void dq_wgmma_body(const AttentionBwdParams& p, float scale, float scale_log2) {
#if defined(STRATA_HAS_WGMMA)
  using C = DqWgCfg<D, HPC, STAGES>;
  constexpr int BN = C::BN, BM = C::BMQ, THREADS = C::THREADS;
  constexpr int NS = BN / 2;  // S accumulators per thread (m64nBN)
  constexpr int NO = D / 2;   // O / dQ accumulators per thread (m64nD)
  constexpr int KN = BN / 16;
  // OV: the P·V / dS·K product of a tile retires while the next tile's S (and dP) run; the ring
  // then prefetches STAGES - 2 tiles ahead (the stage of the product in flight stays untouched)
  constexpr int AHEAD = OV ? STAGES - 2 : STAGES - 1;
  static_assert(AHEAD >= 1, "OV needs 3 stages or more");

  extern __shared__ __align__(1024) unsigned char bwd_wg_smem[];
  const uint32_t sbase = (smem_u32(bwd_wg_smem) + 1023u) & ~1023u;
  const uint32_t sQall = sbase;
  const uint32_t sdOall = sQall + HPC * C::SMEM_ROWS;
  const uint32_t sK0 = sdOall + HPC * C::SMEM_ROWS;
  const uint32_t sV0 = sK0 + STAGES * C::SMEM_KV;

  const int tid = threadIdx.x, lane = tid & 31;
  const int wg = tid >> 7, warp = (tid >> 5) & 3;
  const int g = lane >> 2, tg = lane & 3;
  const int slot = HPC == 1 ? 0 : wg;          // this warpgroup's head within the CTA's heads
  const int wr = HPC == 1 ? wg * 64 : 0;       // this warpgroup's first row within the block
  // this warpgroup's 64 rows of Q / dO: rows [wr, wr + 64) of head slot's tile, panels BM*128 apart
  const uint32_t sQw = sQall + slot * C::SMEM_ROWS + wr * 128;
  const uint32_t sdOw = sdOall + slot * C::SMEM_ROWS + wr * 128;

  const int num_m = (p.T + BM - 1) / BM;
  const int G = p.H / HPC;
  const int BG = p.B * G;
  const int work = static_cast<int>(blockIdx.x);
  const int bg = work % BG;
  const int m_block = num_m - 1 - work / BG;  // the longest (last) query blocks first
  if (m_block < 0) return;                    // (a grid sized for another body)
  const int b = bg / G, h0 = (bg % G) * HPC;
  const int hk = h0 / (p.H / p.Hk);
  const int h = h0 + slot;
  const int m0 = m_block * BM;
  const int offset = p.S - p.T;

  const __nv_bfloat16* gK = p.k + b * p.k_batch_stride + hk * D;
  const __nv_bfloat16* gV = p.v + b * p.v_batch_stride + hk * D;

  const int last_row = min(m0 + BM, p.T) - 1;
  const int n_end = min(p.S, last_row + offset + 1);  // keys [0, n_end) are visible to the block
  const int nkv = n_end > 0 ? (n_end + BN - 1) / BN : 0;
  const int wrow0 = m0 + wr;                        // this warpgroup's first query
  const bool wg_active = wrow0 < p.T;
  const int row0 = wrow0 + warp * 16 + g;           // query of accumulator row g (g + 8: row0 + 8)
  const int lim[2] = {min(row0 + offset, p.S - 1), min(row0 + 8 + offset, p.S - 1)};

  const int total = 2 * nkv;
  auto tile_of = [&](int it) { return it < nkv ? nkv - 1 - it : it - nkv; };
  auto load_kv = [&](int it) {
    const int n0 = tile_of(it) * BN;
    const uint32_t off = (it % STAGES) * C::SMEM_KV;
    load_tile_panels_async<D, BN, THREADS>(sK0 + off, gK + static_cast<int64_t>(n0) * p.k_row_stride, p.k_row_stride, p.S - n0, tid);
    load_tile_panels_async<D, BN, THREADS>(sV0 + off, gV + static_cast<int64_t>(n0) * p.v_row_stride, p.v_row_stride, p.S - n0, tid);
  };
#pragma unroll
  for (int e = 0; e < HPC; ++e) {
    load_tile_panels_async<D, BM, THREADS>(sQall + e * C::SMEM_ROWS,
                                           p.q + b * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + (h0 + e) * D,
                                           p.q_row_stride, p.T - m0, tid);
    load_tile_panels_async<D, BM, THREADS>(sdOall + e * C::SMEM_ROWS,
                                           p.dout + b * p.do_batch_stride + static_cast<int64_t>(m0) * p.do_row_stride + (h0 + e) * D,
                                           p.do_row_stride, p.T - m0, tid);
  }
#pragma unroll
  for (int s = 0; s < AHEAD; ++s) {
    if (s < total) load_kv(s);
    cp_async_commit();
  }

  float acc[NO];  // sweep 1: O (unnormalised); sweep 2: dQ
#pragma unroll
  for (int i = 0; i < NO; ++i) acc[i] = 0.f;
  float sa[NS], dpa[NS];
  uint32_t pa[KN][4];
  float m_r[2] = {-INFINITY, -INFINITY};
  float l_r[2] = {0.f, 0.f};
  float lse[2] = {INFINITY, INFINITY};
  float dl[2] = {0.f, 0.f};

  for (int it = 0; it < total; ++it) {
    cp_async_wait<AHEAD - 1>();
    fence_proxy_async();
    __syncthreads();
    if (it + AHEAD < total) load_kv(it + AHEAD);
    cp_async_commit();

    const uint32_t sK = sK0 + (it % STAGES) * C::SMEM_KV;
    const uint32_t sV = sV0 + (it % STAGES) * C::SMEM_KV;
    const int n0 = tile_of(it) * BN;
    const bool sweep2 = it >= nkv;

    if (sweep2 && it == nkv) {
      if constexpr (OV) {  // the last P·V
        wgmma_wait<0>();
        wgmma_reg_fence(acc);
      }
      // ---- sweep 1 epilogue: lse and D for rows g, g + 8 ----
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 1);
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 2);
        const float inv = l_r[r] > 0.f ? 1.f / l_r[r] : 0.f;
        const int rl = warp * 16 + g + r * 8;  // row within the warpgroup's 64
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) {
          uint32_t gw;
          asm volatile("ld.shared.b32 %0, [%1];\n"
                       : "=r"(gw)
                       : "r"(sdOw + static_cast<uint32_t>((i >> 3) * BM * 128 + rl * 128 + (((i & 7) ^ (rl & 7)) << 4) + tg * 4)));
          const float2 go = unpack_bf16x2(gw);
          d = fmaf(acc[4 * i + 2 * r], go.x, fmaf(acc[4 * i + 2 * r + 1], go.y, d));
        }
        d += __shfl_xor_sync(0xffffffffu, d, 1);
        d += __shfl_xor_sync(0xffffffffu, d, 2);
        dl[r] = d * inv;
        lse[r] = l_r[r] > 0.f ? m_r[r] + __log2f(l_r[r]) : INFINITY;
        const int t = row0 + r * 8;
        if (tg == 0 && t < p.T) {
          const int64_t o = (static_cast<int64_t>(b) * p.H + h) * p.T + t;
          p.lse[o] = lse[r];
          p.delta[o] = dl[r];
        }
      }
#pragma unroll
      for (int i = 0; i < NO; ++i) acc[i] = 0.f;
    }
    // warpgroup-uniform: the tile lies above the warpgroup's rows (or past T). OV computes every
    // tile (fully masked rows add exact zeros; rows past T are never stored): a skip would leave
    // a product in flight across a branch ptxas cannot prove uniform, and it serialises wgmma.
    if (!OV && (!wg_active || n0 > wrow0 + 63 + offset)) continue;

    auto mask_s = [&]() {
      if (n0 + BN - 1 > lim[0]) {  // tile crosses this thread's diagonal or the end of S
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) {
          const int j = n0 + i * 8 + tg * 2;
          if (j > lim[0]) sa[4 * i + 0] = -INFINITY;
          if (j + 1 > lim[0]) sa[4 * i + 1] = -INFINITY;
          if (j > lim[1]) sa[4 * i + 2] = -INFINITY;
          if (j + 1 > lim[1]) sa[4 * i + 3] = -INFINITY;
        }
      }
    };

    if (!sweep2) {
      // ---- S = Q K^T ----
      wgmma_reg_fence(sa);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t koff = (kk & 3) * 32;
        WgmmaSS<BN>::mma(sa, wgmma_desc_sw128(sQw + (kk >> 2) * BM * 128 + koff), wgmma_desc_sw128(sK + (kk >> 2) * BN * 128 + koff),
                         kk > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_reg_fence(sa);
      if constexpr (OV) wgmma_reg_fence(acc);
      mask_s();
      // ---- online softmax (log2 domain) ----
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) mx = fmaxf(mx, fmaxf(sa[4 * i + 2 * r], sa[4 * i + 2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_r[r], mx * scale_log2);
        const float alpha = (m_r[r] == -INFINITY) ? 0.f : fast_exp2(m_r[r] - m_new);
        m_r[r] = m_new;
        l_r[r] *= alpha;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) {
          acc[4 * i + 2 * r] *= alpha;
          acc[4 * i + 2 * r + 1] *= alpha;
        }
        const float msc = (m_new == -INFINITY) ? 0.f : m_new;
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) {
          const float p0 = fast_exp2(fmaf(sa[4 * i + 2 * r], scale_log2, -msc));
          const float p1 = fast_exp2(fmaf(sa[4 * i + 2 * r + 1], scale_log2, -msc));
          l_r[r] += p0 + p1;
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0, p1);
        }
      }
      // ---- O += P V ----
      wgmma_reg_fence(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < KN; ++kk) WgmmaRS<D, 1>::mma(acc, pa[kk], wgmma_desc_sw128_mn(sV + kk * 2048, BN * 128), 1);
      wgmma_commit();
      if constexpr (!OV) {
        wgmma_wait<0>();
        wgmma_reg_fence(acc);
      }
    } else {
      // ---- S = Q K^T, dP = dO V^T ----
      wgmma_reg_fence(sa);
      wgmma_reg_fence(dpa);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t koff = (kk & 3) * 32;
        WgmmaSS<BN>::mma(sa, wgmma_desc_sw128(sQw + (kk >> 2) * BM * 128 + koff), wgmma_desc_sw128(sK + (kk >> 2) * BN * 128 + koff),
                         kk > 0 ? 1 : 0);
      }
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t koff = (kk & 3) * 32;
        WgmmaSS<BN>::mma(dpa, wgmma_desc_sw128(sdOw + (kk >> 2) * BM * 128 + koff),
                         wgmma_desc_sw128(sV + (kk >> 2) * BN * 128 + koff), kk > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_reg_fence(sa);
      wgmma_reg_fence(dpa);
      if constexpr (OV) wgmma_reg_fence(acc);
      mask_s();
      // ---- dS = P (dP - D), P = exp2(S c - lse) ----
#pragma unroll
      for (int i = 0; i < BN / 8; ++i) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float p0 = fast_exp2(fmaf(sa[4 * i + 2 * r], scale_log2, -lse[r]));
          const float p1 = fast_exp2(fmaf(sa[4 * i + 2 * r + 1], scale_log2, -lse[r]));
          pa[i >> 1][(i & 1) * 2 + r] = pack_bf16x2(p0 * (dpa[4 * i + 2 * r] - dl[r]), p1 * (dpa[4 * i + 2 * r + 1] - dl[r]));
        }
      }
      // ---- dQ += dS K ----
      wgmma_reg_fence(acc);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < KN; ++kk) WgmmaRS<D, 1>::mma(acc, pa[kk], wgmma_desc_sw128_mn(sK + kk * 2048, BN * 128), 1);
      wgmma_commit();
      if constexpr (!OV) {
        wgmma_wait<0>();
        wgmma_reg_fence(acc);
      }
    }
  }
  if constexpr (OV) {
    wgmma_wait<0>();
    wgmma_reg_fence(acc);
  }
  cp_async_wait<0>();

  if (nkv == 0) {  // no visible key (S < T only): lse = +inf, D = 0
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int t = row0 + r * 8;
      if (tg == 0 && t < p.T) {
        p.lse[(static_cast<int64_t>(b) * p.H + h) * p.T + t] = INFINITY;
        p.delta[(static_cast<int64_t>(b) * p.H + h) * p.T + t] = 0.f;
      }
    }
  }
  // ---- dQ = scale * acc, bf16 ----
  __nv_bfloat16* gdQ = p.dq + b * p.dq_batch_stride + h * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int t = row0 + r * 8;
    if (t < p.T) {
      __nv_bfloat16* row = gdQ + static_cast<int64_t>(t) * p.dq_row_stride;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) store_bf16x2(row + i * 8 + tg * 2, acc[4 * i + 2 * r] * scale, acc[4 * i + 2 * r + 1] * scale);
    }
  }
#else
  __trap();
#endif
}

// Kernel 1 with one launch shape (256 threads) for every architecture: the wgmma body (HW heads
// per CTA, SW stages) where the device pass has sm_90a features, else the 8-warp mma.sync body
// (BN keys, 128 rows, double buffers) — an sm_90 build without the "a" features. The grid covers
// both bodies' CTA counts; a body returns from the CTAs past its own.
template <int D, int HW, int SW, int BN, bool OV = false>
struct DqAutoCfg {
  using M = DqCfg<D, BN, 128, 1, 2>;
  static constexpr int THREADS = 256;
  static constexpr int SMEM = DqWgCfg<D, HW, SW>::SMEM > M::SMEM ? DqWgCfg<D, HW, SW>::SMEM : M::SMEM;
  static long long blocks(const AttentionBwdParams& p) {
    const long long a = static_cast<long long>((p.T + DqWgCfg<D, HW, SW>::BMQ - 1) / DqWgCfg<D, HW, SW>::BMQ) * p.B * (p.H / HW);
    const long long c = static_cast<long long>((p.T + 127) / 128) * p.B * p.H;
    return a > c ? a : c;
  }
};
template <int D, int HW, int SW, int BN, bool OV>
__global__ void __launch_bounds__(256, 1) attn_bwd_dq_auto_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
#if defined(STRATA_HAS_WGMMA)
  dq_wgmma_body<D, HW, SW, OV>(p, scale, scale_log2);
#else
  dq_mma_body<D, BN, 128, 1, 2>(p, scale, scale_log2);
#endif
}

// Whether a kernel's machine code is for sm_90 or later (the auto kernels' wgmma bodies, or
// their 8-warp mma.sync bodies on an sm_90 build); elsewhere (an sm_80 image) the launcher takes
// the mma.sync kernels of the configuration. Read once per kernel (cudaFuncGetAttributes is no
// stream operation: safe inside a graph capture).
template <auto Kernel>
inline bool binary_sm90() {
  static int v = -1;
  if (v < 0) {
    cudaFuncAttributes a{};
    v = cudaFuncGetAttributes(&a, Kernel) == cudaSuccess ? a.binaryVersion : 0;
  }
  return v >= 90;
}

// ============================================================================================
// Scalar path (one warp per row; the same statistics, the same fixed orders): a reference that
// shares no fragment code with the kernels above, and a fallback for any head dim <= 256 that
// is a multiple of 32.
// ============================================================================================
template <int D>
__global__ void attn_bwd_simple_rows(const AttentionBwdParams p, float scale) {
  constexpr int E = D / 32;  // elements per lane
  const int warp = static_cast<int>((blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (warp >= p.B * p.H * p.T) return;
  const int t = warp % p.T, bh = warp / p.T, b = bh / p.H, h = bh % p.H, hk = h / (p.H / p.Hk);
  const int last = min(p.S - 1, t + p.S - p.T);
  float q[E], go[E], o[E], dq[E];
  const __nv_bfloat16* gq = p.q + b * p.q_batch_stride + static_cast<int64_t>(t) * p.q_row_stride + h * D;
  const __nv_bfloat16* gdo = p.dout + b * p.do_batch_stride + static_cast<int64_t>(t) * p.do_row_stride + h * D;
  for (int e = 0; e < E; ++e) {
    q[e] = __bfloat162float(gq[lane + 32 * e]);
    go[e] = __bfloat162float(gdo[lane + 32 * e]);
    o[e] = 0.f;
    dq[e] = 0.f;
  }
  auto dot = [&](const float* a, const __nv_bfloat16* row) {
    float s = 0.f;
    for (int e = 0; e < E; ++e) s = fmaf(a[e], __bfloat162float(row[lane + 32 * e]), s);
    for (int x = 16; x > 0; x >>= 1) s += __shfl_xor_sync(0xffffffffu, s, x);
    return s;
  };
  const __nv_bfloat16* gk = p.k + b * p.k_batch_stride + hk * D;
  const __nv_bfloat16* gv = p.v + b * p.v_batch_stride + hk * D;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j <= last; ++j) m = fmaxf(m, dot(q, gk + static_cast<int64_t>(j) * p.k_row_stride) * scale);
  for (int j = 0; j <= last; ++j) {
    const float e_ = expf(dot(q, gk + static_cast<int64_t>(j) * p.k_row_stride) * scale - m);
    l += e_;
    const __nv_bfloat16* vr = gv + static_cast<int64_t>(j) * p.v_row_stride;
    for (int e = 0; e < E; ++e) o[e] = fmaf(e_, __bfloat162float(vr[lane + 32 * e]), o[e]);
  }
  const float lse = last >= 0 ? (m + logf(l)) * kLog2e : INFINITY;
  float dd = 0.f;
  for (int e = 0; e < E; ++e) dd = fmaf(go[e], last >= 0 ? o[e] / l : 0.f, dd);
  for (int x = 16; x > 0; x >>= 1) dd += __shfl_xor_sync(0xffffffffu, dd, x);
  for (int j = 0; j <= last; ++j) {
    const float pj = exp2f(dot(q, gk + static_cast<int64_t>(j) * p.k_row_stride) * scale * kLog2e - lse);
    const float ds = pj * (dot(go, gv + static_cast<int64_t>(j) * p.v_row_stride) - dd);
    const __nv_bfloat16* kr = gk + static_cast<int64_t>(j) * p.k_row_stride;
    for (int e = 0; e < E; ++e) dq[e] = fmaf(ds, __bfloat162float(kr[lane + 32 * e]), dq[e]);
  }
  __nv_bfloat16* gdq = p.dq + b * p.dq_batch_stride + static_cast<int64_t>(t) * p.dq_row_stride + h * D;
  for (int e = 0; e < E; ++e) gdq[lane + 32 * e] = __float2bfloat16(dq[e] * scale);
  if (lane == 0) {
    p.lse[static_cast<int64_t>(bh) * p.T + t] = lse;
    p.delta[static_cast<int64_t>(bh) * p.T + t] = dd;
  }
}

template <int D>
__global__ void attn_bwd_simple_keys(const AttentionBwdParams p, float scale) {
  constexpr int E = D / 32;
  const int warp = static_cast<int>((blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (warp >= p.B * p.Hk * p.S) return;
  const int j = warp % p.S, bhk = warp / p.S, b = bhk / p.Hk, hk = bhk % p.Hk, rep = p.H / p.Hk;
  float kr[E], vr[E], dk[E], dv[E];
  const __nv_bfloat16* gk = p.k + b * p.k_batch_stride + static_cast<int64_t>(j) * p.k_row_stride + hk * D;
  const __nv_bfloat16* gv = p.v + b * p.v_batch_stride + static_cast<int64_t>(j) * p.v_row_stride + hk * D;
  for (int e = 0; e < E; ++e) {
    kr[e] = __bfloat162float(gk[lane + 32 * e]);
    vr[e] = __bfloat162float(gv[lane + 32 * e]);
    dk[e] = dv[e] = 0.f;
  }
  auto dot = [&](const float* a, const __nv_bfloat16* row) {
    float s = 0.f;
    for (int e = 0; e < E; ++e) s = fmaf(a[e], __bfloat162float(row[lane + 32 * e]), s);
    for (int x = 16; x > 0; x >>= 1) s += __shfl_xor_sync(0xffffffffu, s, x);
    return s;
  };
  for (int h = hk * rep; h < (hk + 1) * rep; ++h)
    for (int t = max(0, j - (p.S - p.T)); t < p.T; ++t) {
      const __nv_bfloat16* gq = p.q + b * p.q_batch_stride + static_cast<int64_t>(t) * p.q_row_stride + h * D;
      const __nv_bfloat16* gdo = p.dout + b * p.do_batch_stride + static_cast<int64_t>(t) * p.do_row_stride + h * D;
      const int64_t o = (static_cast<int64_t>(b) * p.H + h) * p.T + t;
      const float pj = exp2f(dot(kr, gq) * scale * kLog2e - p.lse[o]);
      const float ds = pj * (dot(vr, gdo) - p.delta[o]);
      for (int e = 0; e < E; ++e) {
        dv[e] = fmaf(pj, __bfloat162float(gdo[lane + 32 * e]), dv[e]);
        dk[e] = fmaf(ds, __bfloat162float(gq[lane + 32 * e]), dk[e]);
      }
    }
  __nv_bfloat16* odk = p.dk + b * p.dk_batch_stride + static_cast<int64_t>(j) * p.dk_row_stride + hk * D;
  __nv_bfloat16* odv = p.dv + b * p.dv_batch_stride + static_cast<int64_t>(j) * p.dv_row_stride + hk * D;
  for (int e = 0; e < E; ++e) {
    odk[lane + 32 * e] = __float2bfloat16(dk[e] * scale);
    odv[lane + 32 * e] = __float2bfloat16(dv[e]);
  }
}

inline cudaError_t validate_bwd(const AttentionBwdParams& p) {
  if (p.B <= 0 || p.T <= 0 || p.H <= 0 || p.Hk <= 0 || p.S <= 0 || (p.H % p.Hk) != 0) return cudaErrorInvalidValue;
  if (!p.q || !p.k || !p.v || !p.dout || !p.dq || !p.dk || !p.dv || !p.lse || !p.delta) return cudaErrorInvalidValue;
  auto misaligned = [](const void* ptr, uintptr_t a) { return (reinterpret_cast<uintptr_t>(ptr) & (a - 1)) != 0; };
  if (misaligned(p.q, 16) || misaligned(p.k, 16) || misaligned(p.v, 16) || misaligned(p.dout, 16)) return cudaErrorInvalidValue;
  if (misaligned(p.dq, 4) || misaligned(p.dk, 4) || misaligned(p.dv, 4)) return cudaErrorInvalidValue;
  if ((p.q_row_stride | p.k_row_stride | p.v_row_stride | p.do_row_stride | p.q_batch_stride | p.k_batch_stride |
       p.v_batch_stride | p.do_batch_stride) & 7)
    return cudaErrorInvalidValue;
  if ((p.dq_row_stride | p.dk_row_stride | p.dv_row_stride | p.dq_batch_stride | p.dk_batch_stride | p.dv_batch_stride) & 1)
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

template <typename K>
inline cudaError_t set_smem(K kernel, int bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

}  // namespace detail

// A tile configuration of the two kernels. Kernel 1 (dQ): BN keys per K/V tile, BMQ query rows
// x HPC query heads of one kv group per CTA (BMQ/16 x HPC warps; when HPC does not divide H / Hk
// it runs as BMQ·HPC rows of one head), S1 cp.async stages. Kernel 2 (dK/dV): BQ queries per
// tile, W2 warps (16·W2 keys per CTA), S2 stages.
// K2W (kernel 2 on sm_90a builds): 0 = the mma.sync kernel everywhere; 1 = wgmma (SW stages),
// 2 = wgmma with the dV/dK products overlapping the next tile's S^T/dP^T, 3 = only dV's doing
// so (fewer registers in flight). With K1W / K2W > 0 an
// sm_90 image without the "a" features runs 8-warp mma.sync bodies in the wgmma launch shape; an
// image below sm_90 takes the mma.sync kernels of (BN, BMQ, HPC, S1) and (BQ, W2, S2).
// K1W (kernel 1 on sm_90a builds): 0 = the mma.sync kernel everywhere; 1 = wgmma with HW heads
// (1: 128 rows, 2: 64 rows x 2 heads of a group) and SW1 stages; 2 = the same with each tile's
// P·V / dS·K product overlapping the next tile's S (and dP).
template <int BN_, int BMQ_, int HPC_, int S1_, int BQ_, int W2_, int S2_, int K2W_ = 0, int SW_ = 3, int K1W_ = 0, int HW_ = 1,
          int SW1_ = 3>
struct BwdConfig {
  static constexpr int BN = BN_, BMQ = BMQ_, HPC = HPC_, S1 = S1_, BQ = BQ_, W2 = W2_, S2 = S2_, K2W = K2W_, SW = SW_;
  static constexpr int K1W = K1W_, HW = HW_, SW1 = SW1_;
};

// Default tiles (see tests/gpu/attention_bwd_test.cu). Hopper (an sm_90 image of the kernels):
// the wgmma kernels, kernel 1 with 64 rows x 2 heads of a kv group per CTA (128 rows of one head
// where the group is odd), kernel 2 with 128 keys per CTA; each tile's P·V / dS·K (kernel 1) and
// dV (kernel 2) product overlaps the next tile's S (dP) products; 4 stages for D 128, 3 for D 64.
// H200, causal (2026-11-30, ms total = dq kernel + dk/dv kernel): B 4, T 4096, H 16, KV 4, D 128
// (the training model) 2.50 (1.42 + 1.09); B 2, T 8192, H 32, KV 8: D 128 9.63 (5.70 + 4.32),
// D 64 6.55 (3.91 + 2.65); torch SDPA backward (cuDNN) 1.46 / 5.2 / 3.3. Without the overlap
// (3 stages): 2.79 (1.60 + 1.19), 10.69, 7.49; dV and dK both in flight: kernel 2 1.05 ms but 32
// bytes of spills.
// Elsewhere (an image below sm_90) the mma.sync kernels: keys per sweep tile of the dQ kernel
// (BN 64, 64 rows per CTA), queries per tile of the dK/dV kernel. H200, same shapes: 4.38
// (2.39 + 2.00), 17.07 (9.34 + 7.85), 9.29 (5.40 + 3.90); earlier tuning: D 128 BQ 64 16.8 ms
// (but 8 bytes of spills), BN 32 18.9 ms; D 64 BN 32 9.7 ms; 8-warp CTAs (128 rows / keys)
// 4-14 % slower.
template <int D>
struct BwdTiles {
  static constexpr int BN = 64;
  static constexpr int BQ = (D >= 128) ? 32 : 64;
  static constexpr int BMQ = 64, HPC = 1, S1 = 2, W2 = 4, S2 = 2;
  static constexpr int K2W = 3, K1W = 2, HW = 2;       // overlapped products, 2 heads per kernel-1 CTA
  static constexpr int SW = (D >= 128) ? 4 : 3, SW1 = SW;  // wgmma ring stages
  using Config = BwdConfig<BN, BMQ, HPC, S1, BQ, W2, S2, K2W, SW, K1W, HW, SW1>;
};

namespace detail {
template <typename T>
struct TypeTag {
  using type = T;
};
template <int D, int HW, int SW, int BN, bool OV>
struct DqAutoTag : DqAutoCfg<D, HW, SW, BN, OV> {
  static constexpr int HW_ = HW;
  static constexpr bool OV_ = OV;
};
template <auto Kernel>
inline cudaError_t set_smem_once(int bytes) {
  static cudaError_t attr = cudaErrorNotReady;  // one flag per kernel instantiation
  if (attr != cudaSuccess) attr = set_smem(Kernel, bytes);
  return attr;
}
}  // namespace detail

// parts: bit 0 runs kernel 1 (dQ, lse, D), bit 1 kernel 2 (dK, dV; reads lse and D from the
// scratch, so alone it needs an earlier kernel-1 run on the same inputs): for timing each one.
template <int D, class Cf>
inline cudaError_t attention_bwd_launch_cfg(const AttentionBwdParams& p, cudaStream_t stream = 0, int parts = 3) {
  static_assert(D == 64 || D == 128, "the attention backward kernels take head dim 64 or 128");
  cudaError_t e = detail::validate_bwd(p);
  if (e != cudaSuccess) return e;
  const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
  const float scale_log2 = scale * kLog2e;
  if (parts & 1) {
    bool done = false;
    if constexpr (Cf::K1W > 0) {
      auto run = [&](auto cfg_tag) -> bool {
        using C1 = typename decltype(cfg_tag)::type;
        constexpr auto k1 = detail::attn_bwd_dq_auto_kernel<D, C1::HW_, Cf::SW1, Cf::BN, C1::OV_>;
        if (!detail::binary_sm90<k1>()) return false;
        e = detail::set_smem_once<k1>(C1::SMEM);
        if (e != cudaSuccess) return true;
        const long long b1 = C1::blocks(p);
        if (b1 > 0x7fffffffLL) {
          e = cudaErrorInvalidValue;
          return true;
        }
        k1<<<static_cast<unsigned>(b1), C1::THREADS, C1::SMEM, stream>>>(p, scale, scale_log2);
        e = cudaGetLastError();
        return true;
      };
      const bool grouped = Cf::HW > 1 && ((p.H / p.Hk) % Cf::HW) == 0;
      // HW does not divide the group: 128 rows of one head
      done = grouped ? run(detail::TypeTag<detail::DqAutoTag<D, Cf::HW, Cf::SW1, Cf::BN, (Cf::K1W == 2)>>{})
                     : run(detail::TypeTag<detail::DqAutoTag<D, 1, Cf::SW1, Cf::BN, (Cf::K1W == 2)>>{});
      if (done && e != cudaSuccess) return e;
    }
    if (!done) {
      const bool grouped = Cf::HPC > 1 && ((p.H / p.Hk) % Cf::HPC) == 0;
      using C1g = detail::DqCfg<D, Cf::BN, Cf::BMQ, Cf::HPC, Cf::S1>;
      using C1f = detail::DqCfg<D, Cf::BN, Cf::BMQ * Cf::HPC, 1, Cf::S1>;
      if (grouped || Cf::HPC == 1) {
        constexpr auto k1 = detail::attn_bwd_dq_kernel<D, Cf::BN, Cf::BMQ, Cf::HPC, Cf::S1>;
        e = detail::set_smem_once<k1>(C1g::SMEM);
        if (e != cudaSuccess) return e;
        const long long b1 = static_cast<long long>((p.T + C1g::BM - 1) / C1g::BM) * p.B * (p.H / Cf::HPC);
        if (b1 > 0x7fffffffLL) return cudaErrorInvalidValue;
        k1<<<static_cast<unsigned>(b1), C1g::THREADS, C1g::SMEM, stream>>>(p, scale, scale_log2);
      } else {
        constexpr auto k1 = detail::attn_bwd_dq_kernel<D, Cf::BN, Cf::BMQ * Cf::HPC, 1, Cf::S1>;
        e = detail::set_smem_once<k1>(C1f::SMEM);
        if (e != cudaSuccess) return e;
        const long long b1 = static_cast<long long>((p.T + C1f::BM - 1) / C1f::BM) * p.B * p.H;
        if (b1 > 0x7fffffffLL) return cudaErrorInvalidValue;
        k1<<<static_cast<unsigned>(b1), C1f::THREADS, C1f::SMEM, stream>>>(p, scale, scale_log2);
      }
      e = cudaGetLastError();
      if (e != cudaSuccess) return e;
    }
  }
  if (parts & 2) {
    bool done = false;
    if constexpr (Cf::K2W > 0) {
      using C2 = detail::DkvAutoCfg<D, Cf::SW, Cf::K2W - 1>;
      constexpr auto k2 = detail::attn_bwd_dkdv_auto_kernel<D, Cf::SW, Cf::K2W - 1>;
      if (detail::binary_sm90<k2>()) {
        done = true;
        e = detail::set_smem_once<k2>(C2::SMEM);
        if (e != cudaSuccess) return e;
        const long long b2 = static_cast<long long>((p.S + C2::BN - 1) / C2::BN) * p.B * p.Hk;
        if (b2 > 0x7fffffffLL) return cudaErrorInvalidValue;
        k2<<<static_cast<unsigned>(b2), C2::THREADS, C2::SMEM, stream>>>(p, scale, scale_log2);
        e = cudaGetLastError();
      }
    }
    if (!done) {
      using C2 = detail::DkvCfg<D, Cf::BQ, Cf::W2, Cf::S2>;
      constexpr auto k2 = detail::attn_bwd_dkdv_kernel<D, Cf::BQ, Cf::W2, Cf::S2>;
      e = detail::set_smem_once<k2>(C2::SMEM);
      if (e != cudaSuccess) return e;
      const long long b2 = static_cast<long long>((p.S + C2::BN - 1) / C2::BN) * p.B * p.Hk;
      if (b2 > 0x7fffffffLL) return cudaErrorInvalidValue;
      k2<<<static_cast<unsigned>(b2), C2::THREADS, C2::SMEM, stream>>>(p, scale, scale_log2);
      e = cudaGetLastError();
    }
  }
  return e;
}

template <int D, int BN = BwdTiles<D>::BN, int BQ = BwdTiles<D>::BQ>
inline cudaError_t attention_bwd_launch(const AttentionBwdParams& p, cudaStream_t stream = 0) {
  using T_ = BwdTiles<D>;
  return attention_bwd_launch_cfg<D, BwdConfig<BN, T_::BMQ, T_::HPC, T_::S1, BQ, T_::W2, T_::S2, T_::K2W, T_::SW, T_::K1W, T_::HW,
                                               T_::SW1>>(p, stream);
}

template <int D>
inline cudaError_t attention_bwd_launch_simple(const AttentionBwdParams& p, cudaStream_t stream = 0) {
  static_assert(D % 32 == 0 && D <= 256, "the scalar attention backward takes head dims that are multiples of 32, up to 256");
  cudaError_t e = detail::validate_bwd(p);
  if (e != cudaSuccess) return e;
  const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
  const long long w1 = static_cast<long long>(p.B) * p.H * p.T, w2 = static_cast<long long>(p.B) * p.Hk * p.S;
  detail::attn_bwd_simple_rows<D><<<static_cast<unsigned>((w1 + 3) / 4), 128, 0, stream>>>(p, scale);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  detail::attn_bwd_simple_keys<D><<<static_cast<unsigned>((w2 + 3) / 4), 128, 0, stream>>>(p, scale);
  return cudaGetLastError();
}

}  // namespace attn
}  // namespace strata

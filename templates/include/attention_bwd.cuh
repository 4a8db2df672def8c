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
// ─── API ──────────────────────────────────────────────────────────────────────────────────
//   strata::attn::AttentionBwdParams p{...};
//   strata::attn::attention_bwd_launch<D /*64|128*/>(p, stream)      // the two kernels
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
// Kernel 1: row statistics (lse, D) and dQ, one CTA per (query block, head, batch).
// ============================================================================================
template <int D, int BN>
struct DqCfg {
  static constexpr int BM = 64;  // 4 warps x 16 query rows
  static constexpr int WARPS = 4;
  static constexpr int THREADS = 128;
  static constexpr int SMEM_ROWS = BM * D * 2;
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM = 2 * SMEM_ROWS + 4 * SMEM_KV;  // Q, dO, 2 x (K, V)
};

template <int D, int BN>
__global__ void __launch_bounds__(128, 2) attn_bwd_dq_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
  using C = DqCfg<D, BN>;
  constexpr int BM = C::BM;
  constexpr int THREADS = C::THREADS;
  constexpr int KD = D / 16;  // k-steps over the head dim
  constexpr int NT = BN / 8;  // n8 tiles of S per warp
  constexpr int DT = D / 8;   // n8 tiles of O / dQ per warp
  constexpr int KN = BN / 16; // k-steps over the keys

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const uint32_t sQ = smem_u32(smem_raw);
  const uint32_t sdO = sQ + C::SMEM_ROWS;
  const uint32_t sK0 = sdO + C::SMEM_ROWS;
  const uint32_t sV0 = sK0 + 2 * C::SMEM_KV;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tg = lane & 3;

  const int num_m = (p.T + BM - 1) / BM;
  const int BH = p.B * p.H;
  const int work = static_cast<int>(blockIdx.x);
  const int bh = work % BH;
  const int m_block = num_m - 1 - work / BH;  // the longest (last) query blocks first
  const int b = bh / p.H, h = bh % p.H;
  const int hk = h / (p.H / p.Hk);
  const int m0 = m_block * BM;
  const int offset = p.S - p.T;

  const __nv_bfloat16* gQ = p.q + b * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + h * D;
  const __nv_bfloat16* gdO = p.dout + b * p.do_batch_stride + static_cast<int64_t>(m0) * p.do_row_stride + h * D;
  const __nv_bfloat16* gK = p.k + b * p.k_batch_stride + hk * D;
  const __nv_bfloat16* gV = p.v + b * p.v_batch_stride + hk * D;

  const int last_row = min(m0 + BM, p.T) - 1;
  const int n_end = min(p.S, last_row + offset + 1);  // keys [0, n_end) are visible to the block
  const int nkv = n_end > 0 ? (n_end + BN - 1) / BN : 0;
  const bool warp_active = (m0 + warp * 16) < p.T;
  const int row0 = m0 + warp * 16 + g;  // query index of fragment row g (row g + 8: row0 + 8)
  const int lim[2] = {min(row0 + offset, p.S - 1), min(row0 + 8 + offset, p.S - 1)};

  // the visit order: sweep 1 tiles nkv-1 .. 0, sweep 2 tiles 0 .. nkv-1
  auto tile_of = [&](int it) { return it < nkv ? nkv - 1 - it : it - nkv; };
  auto load_kv = [&](int it) {
    const int n0 = tile_of(it) * BN;
    const uint32_t off = (it & 1) * C::SMEM_KV;
    load_tile_async<D, BN, THREADS>(sK0 + off, gK + static_cast<int64_t>(n0) * p.k_row_stride, p.k_row_stride, p.S - n0, tid);
    load_tile_async<D, BN, THREADS>(sV0 + off, gV + static_cast<int64_t>(n0) * p.v_row_stride, p.v_row_stride, p.S - n0, tid);
  };

  load_tile_async<D, BM, THREADS>(sQ, gQ, p.q_row_stride, p.T - m0, tid);
  load_tile_async<D, BM, THREADS>(sdO, gdO, p.do_row_stride, p.T - m0, tid);
  if (nkv > 0) load_kv(0);
  cp_async_commit();

  float acc[DT][4];  // sweep 1: O (unnormalised); sweep 2: dQ
#pragma unroll
  for (int i = 0; i < DT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
  float m_r[2] = {-INFINITY, -INFINITY};  // running max (log2 units)
  float l_r[2] = {0.f, 0.f};              // this thread's partial row sums
  float lse[2] = {INFINITY, INFINITY};    // log2-domain lse; +inf: no visible key (p = 0)
  float dl[2] = {0.f, 0.f};               // D = rowsum(dO ∘ O)

  for (int it = 0; it < 2 * nkv; ++it) {
    cp_async_wait<0>();
    __syncthreads();  // tile `it` landed; every warp is done with the other stage
    if (it + 1 < 2 * nkv) load_kv(it + 1);
    cp_async_commit();

    const uint32_t sK = sK0 + (it & 1) * C::SMEM_KV;
    const uint32_t sV = sV0 + (it & 1) * C::SMEM_KV;
    const int n0 = tile_of(it) * BN;
    const bool sweep2 = it >= nkv;

    if (sweep2 && it == nkv) {
      // ---- sweep 1 epilogue: lse and D for rows g, g + 8 ----
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 1);
        l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 2);
        const float inv = l_r[r] > 0.f ? 1.f / l_r[r] : 0.f;
        const int row = warp * 16 + g + r * 8;
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < DT; ++i) {
          const float2 go = unpack_bf16x2(*reinterpret_cast<const uint32_t*>(
              smem_raw + C::SMEM_ROWS + (row * D + swz<D>(row, i) * 8 + tg * 2) * 2));
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
    if (!warp_active || n0 > warp * 16 + m0 + 15 + offset) continue;  // above this warp's rows

    // ---- S = Q K^T ----
    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      uint32_t qa[4];
      ld_frag_a<D>(qa, sQ, warp * 16, kk, lane);
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
        ld_frag_a<D>(da, sdO, warp * 16, kk, lane);
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
      const int t = m0 + warp * 16 + g + r * 8;
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

// ============================================================================================
// Kernel 2: dK and dV, one CTA per (key block, kv head, batch).
// ============================================================================================
template <int D, int BQ>
struct DkvCfg {
  static constexpr int BN = 64;  // 4 warps x 16 keys
  static constexpr int THREADS = 128;
  static constexpr int SMEM_KV = BN * D * 2;
  static constexpr int SMEM_ROWS = BQ * D * 2;
  static constexpr int SMEM_STATS = 2 * BQ * 4;  // lse, D of one query tile
  static constexpr int SMEM = 2 * SMEM_KV + 4 * SMEM_ROWS + 2 * SMEM_STATS;  // K, V, 2 x (Q, dO, stats)
};

template <int D, int BQ>
__global__ void __launch_bounds__(128, 2) attn_bwd_dkdv_kernel(const AttentionBwdParams p, float scale, float scale_log2) {
  using C = DkvCfg<D, BQ>;
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
  const uint32_t sdO0 = sQ0 + 2 * C::SMEM_ROWS;
  float* sStats = reinterpret_cast<float*>(smem_raw + 2 * C::SMEM_KV + 4 * C::SMEM_ROWS);  // [2][lse BQ, D BQ]

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
    const int stage = it & 1;
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
    if (tid < 2 * BQ) sStats[(it & 1) * 2 * BQ + tid] = stat;
  };

  load_tile_async<D, BN, THREADS>(sK, gK, p.k_row_stride, p.S - n0, tid);
  load_tile_async<D, BN, THREADS>(sV, gV, p.v_row_stride, p.S - n0, tid);
  if (iters > 0) {
    load_q(0);
    fetch_stat(0);
    store_stat(0);
  }
  cp_async_commit();

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i) {
    dk[i][0] = dk[i][1] = dk[i][2] = dk[i][3] = 0.f;
    dv[i][0] = dv[i][1] = dv[i][2] = dv[i][3] = 0.f;
  }
  const int key0 = n0 + warp * 16 + g;  // key index of fragment row g (row g + 8: key0 + 8)
  const bool warp_active = n0 + warp * 16 < p.S;

  for (int it = 0; it < iters; ++it) {
    cp_async_wait<0>();
    __syncthreads();  // tile `it` (and its stats) landed; every warp is done with the other stage
    const bool more = it + 1 < iters;
    if (more) {
      load_q(it + 1);
      fetch_stat(it + 1);
    }
    cp_async_commit();

    const int stage = it & 1;
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
    if (more) store_stat(it + 1);  // the other stage: free since the barrier above
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

// Default tiles (see tests/gpu/attention_bwd_test.cu): keys per sweep tile of the dQ kernel,
// queries per tile of the dK/dV kernel. H200, B 2, T 8192, H 32, KV 8, causal (2026-11-30):
// D 128: BN 64 / BQ 32 17.1 ms, BQ 64 16.8 ms (but 8 bytes of spills), BN 32 18.9 ms;
// D 64: BN 64 / BQ 64 9.4 ms, BN 32 9.7 ms. torch SDPA backward (cuDNN) 5.2 / 3.3 ms.
template <int D>
struct BwdTiles {
  static constexpr int BN = 64;
  static constexpr int BQ = (D >= 128) ? 32 : 64;
};

template <int D, int BN = BwdTiles<D>::BN, int BQ = BwdTiles<D>::BQ>
inline cudaError_t attention_bwd_launch(const AttentionBwdParams& p, cudaStream_t stream = 0) {
  static_assert(D == 64 || D == 128, "the attention backward kernels take head dim 64 or 128");
  cudaError_t e = detail::validate_bwd(p);
  if (e != cudaSuccess) return e;
  using C1 = detail::DqCfg<D, BN>;
  using C2 = detail::DkvCfg<D, BQ>;
  auto k1 = detail::attn_bwd_dq_kernel<D, BN>;
  auto k2 = detail::attn_bwd_dkdv_kernel<D, BQ>;
  static cudaError_t attr = cudaSuccess;
  static bool attr_done = false;
  if (!attr_done) {
    attr = detail::set_smem(k1, C1::SMEM);
    if (attr == cudaSuccess) attr = detail::set_smem(k2, C2::SMEM);
    attr_done = attr == cudaSuccess;
    if (!attr_done) return attr;
  }
  const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
  const float scale_log2 = scale * kLog2e;
  const long long b1 = static_cast<long long>((p.T + C1::BM - 1) / C1::BM) * p.B * p.H;
  const long long b2 = static_cast<long long>((p.S + C2::BN - 1) / C2::BN) * p.B * p.Hk;
  if (b1 > 0x7fffffffLL || b2 > 0x7fffffffLL) return cudaErrorInvalidValue;
  k1<<<static_cast<unsigned>(b1), C1::THREADS, C1::SMEM, stream>>>(p, scale, scale_log2);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  k2<<<static_cast<unsigned>(b2), C2::THREADS, C2::SMEM, stream>>>(p, scale, scale_log2);
  return cudaGetLastError();
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

// attention_wgmma.cuh — Hopper (sm_90a) attention forward, FlashAttention-3 style: a TMA
// producer warpgroup and two wgmma consumer warpgroups. Same contract as attention.cuh
// (AttentionParams: token-major q/k/v/out with row and batch strides, GQA, causal with offset
// S - T, scale); included from attention.cuh.
//
// ─── Algorithm ────────────────────────────────────────────────────────────────
//   * One CTA of 384 threads per (query block of BM = 128 rows, head, batch), heaviest causal
//     blocks first (as attention.cuh). Warpgroup 0 is the producer (setmaxnreg.dec 24): one
//     thread issues TMA boxes; warpgroups 1 and 2 (setmaxnreg.inc 240) each own 64 query rows.
//   * Global views: q, k, v are 3-D tensor maps [B, rows (T or S), heads*D] over the token-major
//     buffers (row stride and batch stride as given, so fused-QKV column slices work), boxes of
//     [rows, 64 columns] with the 128-byte swizzle. Rows past T / S are out of bounds of their
//     batch and zero-filled by TMA (never the next batch's rows). A [rows, D] tile sits in
//     shared memory as D/64 panels of [rows][64] (128-byte rows, 1 KB-aligned): the K-major
//     layout of the wgmma descriptors for Q and K, and for V (an MN-major B operand: keys are
//     the contraction) the transposed descriptor with LBO = one panel, SBO = 8 rows.
//   * Pipeline: Q once (one mbarrier), then K and V tiles of BN = 128 keys into a 2-stage ring
//     (full_k/full_v complete on TMA bytes; empty_k/empty_v on one arrive per consumer warp),
//     visited from the last (diagonal) tile down to key 0 — as in attention.cuh, only the first
//     tiles need the element-wise mask (causal diagonal, ragged S tail).
//   * Consumer, per KV tile n (FA3's intra-warpgroup overlap):
//       issue S = Q·K[n]^T (wgmma m64nBNk16, smem x smem; first k-step scale-d 0)
//       issue O += P[n-1]·V[n-1] (wgmma m64nDk16, P from registers)
//       wait S -> release K slot; mask; online softmax in place (log2 domain, lazy rescale
//       with threshold 8 as attention.cuh); wait PV -> release V slot; rescale O if a row max
//       moved; P = bf16(S) in registers (the m64nN accumulator layout converted pairwise is
//       exactly the register-A fragment layout).
//     so the softmax of tile n runs while the tensor cores do P·V of tile n-1.
//   * Epilogue: O / l (rows with no visible key -> 0), bf16, staged in this warpgroup's own
//     (dead) rows of the Q tile, 16-byte coalesced stores guarded by row < T.
//
// ─── API ──────────────────────────────────────────────────────────────────────
//   attention_launch_wgmma<D /*64|128*/, Causal = true>(p, stream)
//   Falls back to attention_launch<D> (mma.sync) where this kernel does not apply: S read from
//   the device (p.S_dev, CUDA-graph replays: the tensor maps fix S at launch), S == 0, or a
//   layout the driver's tensor-map encoder rejects. Needs a -gencode arch=compute_90a build;
//   elsewhere the kernel body traps (the code generator only calls it for sm_90a).
#pragma once

#include "attention.cuh"  // AttentionParams, validate, the mma.sync fallback
#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/math.cuh"
#include "strata/ptx.cuh"
#include "strata/tma.cuh"

namespace strata {
namespace attn {

template <int D>
struct WgmmaAttnCfg {
  static_assert(D == 64 || D == 128, "the wgmma attention kernel supports head dim 64 and 128");
  static constexpr int BM = 128;  // 2 consumer warpgroups x 64 rows
  static constexpr int BN = 128;  // keys per K/V tile
  static constexpr int THREADS = 384;
  static constexpr int PANELS = D / 64;        // 64-column (128-byte) panels per tile
  static constexpr uint32_t Q_BYTES = BM * D * 2;
  static constexpr uint32_t KV_BYTES = BN * D * 2;  // one K or V stage
  static constexpr uint32_t SMEM_TILES = Q_BYTES + 4 * KV_BYTES;
  static constexpr int SMEM = 1024 /* alignment slack */ + SMEM_TILES + 16 * 8 /* mbarriers */;
  static constexpr int PRODUCER_REGS = 24;
  static constexpr int CONSUMER_REGS = 240;
};

namespace detail {

template <int D, bool CAUSAL>
__global__ void __launch_bounds__(384, 1)
    attention_fwd_wgmma_kernel(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,
                               const __grid_constant__ CUtensorMap tmV, const AttentionParams p, float scale_log2) {
#if defined(STRATA_HAS_WGMMA)
  using C = WgmmaAttnCfg<D>;
  constexpr int BM = C::BM, BN = C::BN;
  constexpr int NS = BN / 2;  // S accumulators per thread (m64nBN)
  constexpr int NO = D / 2;   // O accumulators per thread (m64nD)
  constexpr float RESCALE_THRESH = 8.0f;

  extern __shared__ __align__(1024) uint8_t attn_wg_smem[];
  uint8_t* const sQ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(attn_wg_smem) + 1023) & ~uintptr_t(1023));
  uint8_t* const sK0 = sQ + C::Q_BYTES;
  uint8_t* const sV0 = sK0 + 2 * C::KV_BYTES;
  uint64_t* const bars = reinterpret_cast<uint64_t*>(sV0 + 2 * C::KV_BYTES);
  uint64_t* const bar_q = bars;
  uint64_t* const full_k = bars + 1;   // [2]
  uint64_t* const full_v = bars + 3;   // [2]
  uint64_t* const empty_k = bars + 5;  // [2]
  uint64_t* const empty_v = bars + 7;  // [2]

  // ---- work decode: longest causal blocks first ----
  const int S = p.S;
  const int num_m = (p.T + BM - 1) / BM;
  const int BH = p.B * p.H;
  const int work = static_cast<int>(blockIdx.x);
  const int bh = work % BH;
  const int m_block = CAUSAL ? (num_m - 1 - work / BH) : work / BH;
  const int b = bh / p.H;
  const int h = bh % p.H;
  const int hk = h / (p.H / p.Hk);
  const int m0 = m_block * BM;
  const int offset = S - p.T;
  int n_end = S;
  if (CAUSAL) n_end = min(S, min(m0 + BM, p.T) - 1 + offset + 1);
  const int n_tiles = n_end > 0 ? (n_end + BN - 1) / BN : 0;

  const int wg = threadIdx.x >> 7;
  if (threadIdx.x == 0) {
    prefetch_tensormap(&tmQ);
    prefetch_tensormap(&tmK);
    prefetch_tensormap(&tmV);
    mbarrier_init(bar_q, 1);
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      mbarrier_init(&full_k[s], 1);
      mbarrier_init(&full_v[s], 1);
      mbarrier_init(&empty_k[s], 8);  // one arrive per consumer warp
      mbarrier_init(&empty_v[s], 8);
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<C::PRODUCER_REGS>();
    if (threadIdx.x == 0) {
      mbarrier_arrive_expect_tx(bar_q, C::Q_BYTES);
#pragma unroll
      for (int j = 0; j < C::PANELS; ++j) tma_load_3d(sQ + j * BM * 128, &tmQ, bar_q, h * D + 64 * j, m0, b);
      for (int i = 0; i < n_tiles; ++i) {
        const int n0 = (n_tiles - 1 - i) * BN;
        const int slot = i & 1;
        const uint32_t par = (i >> 1) & 1;
        mbarrier_wait_parity(&empty_k[slot], par ^ 1);  // fresh barrier: parity 1 counts as done
        mbarrier_arrive_expect_tx(&full_k[slot], C::KV_BYTES);
        uint8_t* dk = sK0 + slot * C::KV_BYTES;
#pragma unroll
        for (int j = 0; j < C::PANELS; ++j) tma_load_3d(dk + j * BN * 128, &tmK, &full_k[slot], hk * D + 64 * j, n0, b);
        mbarrier_wait_parity(&empty_v[slot], par ^ 1);
        mbarrier_arrive_expect_tx(&full_v[slot], C::KV_BYTES);
        uint8_t* dv = sV0 + slot * C::KV_BYTES;
#pragma unroll
        for (int j = 0; j < C::PANELS; ++j) tma_load_3d(dv + j * BN * 128, &tmV, &full_v[slot], hk * D + 64 * j, n0, b);
      }
    }
    return;
  }

  // ---- consumers ----
  setmaxnreg_inc<C::CONSUMER_REGS>();
  const int cw = wg - 1;  // rows [64*cw, 64*cw + 64) of the block
  const int lane = threadIdx.x & 31;
  const int warp = (threadIdx.x >> 5) & 3;
  const int g = lane >> 2, tq = lane & 3;
  const int row_lo = m0 + cw * 64 + warp * 16 + g;  // query index of this thread's first row (second: +8)
  const uint32_t sQw = smem_u32(sQ) + cw * 64 * 128;
  const uint32_t sKb = smem_u32(sK0), sVb = smem_u32(sV0);

  float o[NO];
#pragma unroll
  for (int i = 0; i < NO; ++i) o[i] = 0.f;
  float s[NS];
  uint32_t pa[BN / 16][4];
  float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.f, 0.f}, alpha[2] = {1.f, 1.f};

  auto issue_qk = [&](int slot) {
    const uint32_t sK = sKb + slot * C::KV_BYTES;
    wgmma_reg_fence(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // k16 step inside a 64-column panel
      WgmmaSS<BN>::mma(s, wgmma_desc_sw128(sQw + (kk >> 2) * BM * 128 + koff),
                       wgmma_desc_sw128(sK + (kk >> 2) * BN * 128 + koff), kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    wgmma_reg_fence(s);
  };
  auto issue_pv = [&](int slot) {
    const uint32_t sV = sVb + slot * C::KV_BYTES;
    wgmma_reg_fence(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)
      WgmmaRS<D, 1>::mma(o, pa[kk], wgmma_desc_sw128_mn(sV + kk * 2048, BN * 128), 1);
    wgmma_commit();
    wgmma_reg_fence(o);
  };
  // mask + online softmax of tile n0 in place (s -> unnormalised probabilities, fp32);
  // returns whether any row of this warp moved its reference max (alpha[] then rescales O).
  auto softmax = [&](int n0) -> bool {
    bool need_mask = (n0 + BN > S);
    if (CAUSAL) need_mask |= (n0 + BN - 1 > m0 + cw * 64 + offset);
    if (need_mask) {
      const int lim_lo = CAUSAL ? min(row_lo + offset, S - 1) : S - 1;
      const int lim_hi = CAUSAL ? min(row_lo + 8 + offset, S - 1) : S - 1;
#pragma unroll
      for (int i = 0; i < BN / 8; ++i) {
        const int j = n0 + i * 8 + tq * 2;
        if (j > lim_lo) s[4 * i + 0] = -INFINITY;
        if (j + 1 > lim_lo) s[4 * i + 1] = -INFINITY;
        if (j > lim_hi) s[4 * i + 2] = -INFINITY;
        if (j + 1 > lim_hi) s[4 * i + 3] = -INFINITY;
      }
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) {
      mx[0] = fmaxf(mx[0], fmaxf(s[4 * i + 0], s[4 * i + 1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[4 * i + 2], s[4 * i + 3]));
    }
    bool moved = false;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mxs = mx[r] * scale_log2;
      alpha[r] = 1.f;
      if (mxs > m_r[r] + RESCALE_THRESH) {
        alpha[r] = fast_exp2(m_r[r] - mxs);
        m_r[r] = mxs;
        moved = true;
      }
      l_r[r] *= alpha[r];
    }
    const float msc0 = (m_r[0] == -INFINITY) ? 0.f : m_r[0];
    const float msc1 = (m_r[1] == -INFINITY) ? 0.f : m_r[1];
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) {
      s[4 * i + 0] = fast_exp2(fmaf(s[4 * i + 0], scale_log2, -msc0));
      s[4 * i + 1] = fast_exp2(fmaf(s[4 * i + 1], scale_log2, -msc0));
      s[4 * i + 2] = fast_exp2(fmaf(s[4 * i + 2], scale_log2, -msc1));
      s[4 * i + 3] = fast_exp2(fmaf(s[4 * i + 3], scale_log2, -msc1));
      l_r[0] += s[4 * i + 0] + s[4 * i + 1];
      l_r[1] += s[4 * i + 2] + s[4 * i + 3];
    }
    return __any_sync(0xffffffffu, moved);
  };
  auto convert_p = [&]() {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      pa[kk][0] = pack_bf16x2(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pack_bf16x2(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack_bf16x2(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack_bf16x2(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };
  auto rescale_o = [&]() {
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[4 * i + 0] *= alpha[0];
      o[4 * i + 1] *= alpha[0];
      o[4 * i + 2] *= alpha[1];
      o[4 * i + 3] *= alpha[1];
    }
  };

  mbarrier_wait_parity(bar_q, 0);
  if (n_tiles > 0) {
    // tile 0 of the sweep (the last KV tile): S, softmax, P
    mbarrier_wait_parity(&full_k[0], 0);
    issue_qk(0);
    wgmma_wait<0>();
    wgmma_reg_fence(s);
    if (lane == 0) mbarrier_arrive(&empty_k[0]);
    softmax((n_tiles - 1) * BN);  // O is still zero: no rescale needed
    convert_p();
    for (int i = 1; i < n_tiles; ++i) {
      const int slot = i & 1, pslot = slot ^ 1;
      const uint32_t par = (i >> 1) & 1, ppar = ((i - 1) >> 1) & 1;
      mbarrier_wait_parity(&full_k[slot], par);
      issue_qk(slot);
      mbarrier_wait_parity(&full_v[pslot], ppar);
      issue_pv(pslot);
      wgmma_wait<1>();  // S = Q K[i]^T retired (P V[i-1] may still run)
      wgmma_reg_fence(s);
      if (lane == 0) mbarrier_arrive(&empty_k[slot]);
      const bool moved = softmax((n_tiles - 1 - i) * BN);
      wgmma_wait<0>();  // P V[i-1] retired: O and pa are free again
      wgmma_reg_fence(o);
      if (lane == 0) mbarrier_arrive(&empty_v[pslot]);
      if (moved) rescale_o();
      convert_p();
    }
    const int last = n_tiles - 1;
    mbarrier_wait_parity(&full_v[last & 1], (last >> 1) & 1);
    issue_pv(last & 1);
    wgmma_wait<0>();
    wgmma_reg_fence(o);
    if (lane == 0) mbarrier_arrive(&empty_v[last & 1]);
  }

  // ---- epilogue: O / l -> bf16 in this warpgroup's rows of the dead Q tile -> global ----
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 1);
    l_r[r] += __shfl_xor_sync(0xffffffffu, l_r[r], 2);
    inv[r] = l_r[r] > 0.f ? 1.f / l_r[r] : 0.f;
  }
  {
    const int rl = cw * 64 + warp * 16 + g;  // row within the block (and within each Q panel)
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      const int panel = i >> 3, chunk = i & 7;
      uint8_t* base = sQ + panel * BM * 128;
      *reinterpret_cast<uint32_t*>(base + rl * 128 + ((chunk ^ (rl & 7)) << 4) + tq * 4) =
          pack_bf16x2(o[4 * i + 0] * inv[0], o[4 * i + 1] * inv[0]);
      const int rh = rl + 8;
      *reinterpret_cast<uint32_t*>(base + rh * 128 + ((chunk ^ (rh & 7)) << 4) + tq * 4) =
          pack_bf16x2(o[4 * i + 2] * inv[1], o[4 * i + 3] * inv[1]);
    }
  }
  named_barrier_sync(1 + cw, 128);
  {
    constexpr int CPR = D / 8;  // 16-byte chunks per row
    const int t = threadIdx.x & 127;
    __nv_bfloat16* gO = p.out + static_cast<int64_t>(b) * p.o_batch_stride + h * D;
#pragma unroll
    for (int it = 0; it < 64 * CPR / 128; ++it) {
      const int idx = it * 128 + t;
      const int rr = idx / CPR, c = idx % CPR;
      const int rl = cw * 64 + rr;
      const int row = m0 + rl;
      if (row < p.T) {
        const uint4 val =
            *reinterpret_cast<const uint4*>(sQ + (c >> 3) * BM * 128 + rl * 128 + (((c & 7) ^ (rl & 7)) << 4));
        *reinterpret_cast<uint4*>(gO + static_cast<int64_t>(row) * p.o_row_stride + c * 8) = val;
      }
    }
  }
#else
  __trap();
#endif
}

// The q, k, v tensor maps of the wgmma kernel; cudaErrorInvalidValue (reason in *why) where the
// kernel does not apply and attention_launch_wgmma falls back to the mma.sync kernel.
template <int D>
inline cudaError_t wgmma_tensor_maps(const AttentionParams& p, CUtensorMap* mq, CUtensorMap* mk, CUtensorMap* mv,
                                     const char** why = nullptr) {
  using C = WgmmaAttnCfg<D>;
  if (p.S_dev) {
    if (why) *why = "S is read from the device (the tensor maps would fix it at launch)";
    return cudaErrorInvalidValue;
  }
  if (p.S <= 0) {
    if (why) *why = "no keys";
    return cudaErrorInvalidValue;
  }
  cudaError_t e = make_tensor_map_3d_bf16(mq, p.q, p.B, p.T, static_cast<uint64_t>(p.H) * D, p.q_row_stride,
                                          p.q_batch_stride, C::BM, 64, CU_TENSOR_MAP_SWIZZLE_128B, why);
  if (e == cudaSuccess)
    e = make_tensor_map_3d_bf16(mk, p.k, p.B, p.S, static_cast<uint64_t>(p.Hk) * D, p.k_row_stride, p.k_batch_stride,
                                C::BN, 64, CU_TENSOR_MAP_SWIZZLE_128B, why);
  if (e == cudaSuccess)
    e = make_tensor_map_3d_bf16(mv, p.v, p.B, p.S, static_cast<uint64_t>(p.Hk) * D, p.v_row_stride, p.v_batch_stride,
                                C::BN, 64, CU_TENSOR_MAP_SWIZZLE_128B, why);
  return e;
}

}  // namespace detail

template <int D, bool CAUSAL = true>
inline cudaError_t attention_launch_wgmma(const AttentionParams& p, cudaStream_t stream = 0) {
  const cudaError_t e = detail::validate(p);
  if (e != cudaSuccess) return e;
  auto fallback = [&]() {
    return detail::launch_fwd<D, DefaultTiles<D>::BM, DefaultTiles<D>::BN, CAUSAL, false, DefaultTiles<D>::MT>(p, 1,
                                                                                                              stream);
  };
  if constexpr (D != 64 && D != 128) {
    return fallback();
  } else {
    using C = WgmmaAttnCfg<D>;
    CUtensorMap mq, mk, mv;
    if (detail::wgmma_tensor_maps<D>(p, &mq, &mk, &mv) != cudaSuccess) return fallback();
    auto kernel = detail::attention_fwd_wgmma_kernel<D, CAUSAL>;
    const cudaError_t attr_err = opt_in_smem<detail::attention_fwd_wgmma_kernel<D, CAUSAL>>(C::SMEM);
    if (attr_err != cudaSuccess) return attr_err;
    const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
    const float scale_log2 = scale * 1.4426950408889634f;
    const long long blocks = static_cast<long long>((p.T + C::BM - 1) / C::BM) * p.B * p.H;
    if (blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
    kernel<<<static_cast<unsigned>(blocks), C::THREADS, C::SMEM, stream>>>(mq, mk, mv, p, scale_log2);
    return cudaGetLastError();
  }
}

}  // namespace attn
}  // namespace strata

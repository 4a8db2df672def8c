// attention.cuh — Strata fused causal attention forward (FlashAttention-2 style)
// for NVIDIA Hopper (sm_90a; also valid for sm_80+), bf16 in / bf16 out, fp32
// softmax and accumulation. Header-only, over the device foundation in strata/.
//
// ─── Layout contract ──────────────────────────────────────────────────────────
//   q   : [B, T, H,  D]   k, v : [B, S, Hk, D]   out : [B, T, H, D]   (bf16)
//   Every tensor is "token-major": element (b, t, h, d) lives at
//       base + b*batch_stride + t*row_stride + h*D + d
//   so q/k/v may be column slices of one fused QKV projection [B, T, (H+2Hk)*D]
//   (row_stride = (H+2Hk)*D, k base = qkv + H*D, v base = qkv + (H+Hk)*D).
//   Requirements: base pointers 16-byte aligned, row/batch strides multiples of
//   8 elements (16-byte cp.async / vector stores); H % Hk == 0.
//   GQA: query head h reads kv head h / (H/Hk).
//   Causal with offset: query i (0..T-1) attends keys j <= i + (S - T). This
//   is prefill for S == T and decode / chunked prefill for T < S.
//
// ─── Algorithm (FlashAttention-2 forward) ─────────────────────────────────────
//   * One CTA per (query block of BM rows, head, batch). BM = 16 * MT * WARPS:
//     each warp owns 16*MT query rows (MT = 1 or 2 m16 tiles; MT = 2 halves the
//     ldmatrix traffic per MMA, Q then re-read from smem instead of kept in
//     registers) for the whole kernel, so the softmax statistics
//     (row max m, row sum l) and the output accumulator O[16 x D] live in that
//     warp's registers and no inter-warp reduction is ever needed.
//   * Q tile is loaded once (cp.async -> smem -> ldmatrix) into registers as
//     mma A-fragments. K/V are streamed in BN-row tiles through a 2-stage
//     cp.async double buffer (separate buffers for K and V so that the load of
//     K[n-1] overlaps S = Q K[n]^T + softmax + P V[n], and the load of V[n-1]
//     overlaps P V[n] and the next Q K^T).
//   * S = Q·K^T with mma.sync.m16n8k16 bf16 -> fp32 (K fragments via ldmatrix,
//     non-transposed: K rows are the "col-major" B operand). Online softmax in
//     the log2 domain (exp2 with scale*log2(e) folded in): new row max via quad
//     shuffles, O and l rescaled by exp2(m_old - m_new). P is converted to bf16
//     in registers; the m16n8 C-fragment layout of two adjacent n-tiles is
//     exactly the m16k16 A-fragment layout, so P is fed straight back as the A
//     operand of O += P·V (V fragments via ldmatrix.trans). S×S is never
//     materialised, not even per tile in smem.
//   * Causal: KV tiles entirely above the diagonal are never loaded. Tiles are
//     visited from the last (diagonal) one backwards, so only the first few
//     iterations carry the element-wise mask (diagonal tiles and the ragged
//     S tail); all other iterations run the unmasked fast path. Warps skip
//     sub-blocks that lie entirely above their own last query row.
//   * Lazy rescaling (FA4 trick): the exp2 reference max of a row only moves
//     when the tile max exceeds it by > 8 (log2 units), so P <= 256 and the O
//     accumulator is rescaled (warp-uniform branch) almost only in the first
//     tiles of a row block.
//   * A BN-key K/V tile may be computed as BN/BNC sub-blocks (BNC =
//     default_bnc: 32 for D=128/MT=2/BN=128) to bound S/P register pressure
//     while keeping one barrier pair per BN keys.
//   * Scheduling: the grid is 1-D, ordered so that CTAs with the most KV tiles
//     (the last query blocks in causal mode) are issued first; the short blocks
//     fill the tail of the wave ("longest-processing-time-first").
//   * Shared memory rows are XOR-swizzled at 16-byte granularity so that both
//     the cp.async writes and the ldmatrix reads are bank-conflict free.
//   * Epilogue: O / l (rows with no visible key -> 0), rounded to bf16, staged
//     through the warp's own (dead) rows of the Q smem tile and written back
//     with 16-byte coalesced stores.
//
// ─── API ──────────────────────────────────────────────────────────────────────
//   strata::attn::AttentionParams p{...};
//   strata::attn::attention_launch<D /*32|64|128*/, BM, BN, Causal, MT>(p, stream)
//   BM in {64,128} (query rows per CTA), MT in {1,2} (m16 tiles per warp;
//   warps = BM/(16*MT)), BN in {32,64,128} (keys per K/V tile). Defaults
//   (DefaultTiles<D>) are the tuned H200 choices for each D.
//   Small T (decode): attention_launch_splitkv<D>(p, stream) with p.num_splits,
//   p.partial_o / p.partial_lse workspace (attention_splitkv_workspace_bytes,
//   attention_splitkv_heuristic) — flash-decoding split over KV + combine.
//   Returns cudaError_t (argument errors -> cudaErrorInvalidValue).
//   sm_90a prefill: attention_launch_wgmma<D, Causal>(p, stream) in attention_wgmma.cuh
//   (FlashAttention-3 style: TMA producer warpgroup + 2 wgmma consumer warpgroups).
#pragma once

#include <cstdlib>
#include <cstring>

#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/math.cuh"
#include "strata/ptx.cuh"

namespace strata {
namespace attn {

struct AttentionParams {
  const __nv_bfloat16* q;  // [B, T, H, D]  (token-major, see header)
  const __nv_bfloat16* k;  // [B, S, Hk, D]
  const __nv_bfloat16* v;  // [B, S, Hk, D]
  __nv_bfloat16* out;      // [B, T, H, D]
  int64_t q_row_stride, k_row_stride, v_row_stride, o_row_stride;          // elements between tokens
  int64_t q_batch_stride, k_batch_stride, v_batch_stride, o_batch_stride;  // elements between batches
  int B, T, S, H, Hk;
  const int* S_dev = nullptr;  // when set, the kernels read S from the device (CUDA-graph replays)
  float scale;  // softmax scale; <= 0 means 1/sqrt(D)
  // Split-KV (flash-decoding) workspace, only used by attention_launch_splitkv:
  //   partial_o  : fp32 [num_splits, B, H, T, D], partial_lse : fp32 [num_splits, B, H, T]
  float* partial_o = nullptr;
  float* partial_lse = nullptr;
  int num_splits = 1;
};

namespace detail {

// PTX wrappers (cp.async with "memory" clobbers on commit/wait, ldmatrix, mma.sync), fast_exp2
// and pack_bf16x2 come from strata/ (ptx.cuh, math.cuh, bf16.cuh).

// 16-byte-chunk XOR swizzle of a [rows x D] bf16 tile (D/8 chunks per row).
template <int D>
__device__ __forceinline__ int swz(int row, int chunk) {
  if constexpr (D >= 64) {
    return chunk ^ (row & 7);
  } else {  // D == 32: 4 chunks (64 B) per row, two rows per 128 B line
    return chunk ^ ((row >> 1) & 3);
  }
}
template <int D>
__device__ __forceinline__ uint32_t tile_addr(uint32_t base, int row, int chunk) {
  return base + static_cast<uint32_t>((row * D + swz<D>(row, chunk) * 8) * 2);
}

// Async copy of a [ROWS x D] tile whose rows start at g (row stride `stride`
// elements); rows >= valid_rows are zero-filled.
template <int D, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile_async(uint32_t s_base, const __nv_bfloat16* g, int64_t stride,
                                                int valid_rows, int tid) {
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
    cp_async_16(tile_addr<D>(s_base, r, c), src, ok);
  }
}

template <int BM, int BN, int D, int MT>
struct Cfg {
  static_assert(D == 32 || D == 64 || D == 128, "head dim must be 32, 64 or 128");
  static_assert(MT == 1 || MT == 2, "MT (16-row m-tiles per warp) must be 1 or 2");
  static_assert(BM == 64 || BM == 128, "BM must be 64 or 128");
  static_assert(BN == 32 || BN == 64 || BN == 128, "BN must be 32, 64 or 128");
  static constexpr int WARPS = BM / (16 * MT);
  static constexpr int THREADS = WARPS * 32;
  static constexpr int SMEM_Q = BM * D * 2;
  static constexpr int SMEM_KV = BN * D * 2;  // one K or V stage
  static constexpr int SMEM = SMEM_Q + 4 * SMEM_KV;  // Q + 2 K stages + 2 V stages
};

// ---- the kernel ---------------------------------------------------------------
// MT = 16-row m-tiles per warp. MT == 1: Q fragments stay in registers.
// MT == 2: each K/V fragment read from smem feeds twice the MMAs (half the
// ldmatrix traffic per FLOP); Q fragments are re-read from smem per k-step.
// BNC = keys per compute sub-block (BN % BNC == 0): a BN-key K/V tile (one
// pair of barriers / cp.async groups) is processed as BN/BNC sequential
// QK^T -> softmax -> PV sub-blocks, so S/P register pressure is that of BNC.
template <int D, int BM, int BN, bool CAUSAL, bool SPLIT, int MT, int BNC>
__global__ void __launch_bounds__(Cfg<BM, BN, D, MT>::THREADS, 1)
    attention_fwd_kernel(const AttentionParams p, float scale_log2) {
  using C = Cfg<BM, BN, D, MT>;
  static_assert(BNC >= 16 && BN % BNC == 0, "BNC must divide BN");
  constexpr int THREADS = C::THREADS;
  constexpr int KD = D / 16;    // k-steps of Q·K^T
  constexpr int NT = BNC / 8;   // n-tiles of S per m-tile (per sub-block)
  constexpr int DT = D / 8;     // n-tiles of O per m-tile
  constexpr int KN = BNC / 16;  // k-steps of P·V (per sub-block)
  constexpr int NSUB = BN / BNC;
  // Lazy rescaling (FA4): the running max used as the exp2 reference is only
  // moved when a new row max exceeds it by more than RESCALE_THRESH (log2
  // units), so P <= 2^RESCALE_THRESH and O/l are rescaled only when some row of
  // the warp moved (warp-uniform branch) — after the first tiles almost never.
  constexpr float RESCALE_THRESH = 8.0f;
  constexpr bool Q_IN_REGS = (MT == 1);
  constexpr int WROWS = 16 * MT;  // query rows owned by one warp

  extern __shared__ __align__(128) unsigned char smem_raw[];
  const uint32_t sQ = smem_u32(smem_raw);
  const uint32_t sK0 = sQ + C::SMEM_Q;
  const uint32_t sV0 = sK0 + 2 * C::SMEM_KV;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;   // row within the 8-row group
  const int tg = lane & 3;   // thread within the quad

  // ---- work decode: longest causal blocks first ----
  const int S = p.S_dev ? *p.S_dev : p.S;
  const int num_m = (p.T + BM - 1) / BM;
  const int BH = p.B * p.H;
  const int split = SPLIT ? static_cast<int>(blockIdx.x % p.num_splits) : 0;
  const int work = SPLIT ? static_cast<int>(blockIdx.x / p.num_splits) : static_cast<int>(blockIdx.x);
  const int bh = work % BH;
  const int m_block = CAUSAL ? (num_m - 1 - work / BH) : work / BH;
  const int b = bh / p.H;
  const int h = bh % p.H;
  const int hk = h / (p.H / p.Hk);
  const int m0 = m_block * BM;
  const int offset = S - p.T;  // causal diagonal offset

  const __nv_bfloat16* gQ = p.q + static_cast<int64_t>(b) * p.q_batch_stride + static_cast<int64_t>(m0) * p.q_row_stride + h * D;
  const __nv_bfloat16* gK = p.k + static_cast<int64_t>(b) * p.k_batch_stride + hk * D;
  const __nv_bfloat16* gV = p.v + static_cast<int64_t>(b) * p.v_batch_stride + hk * D;

  // keys visible to the block: [0, n_end)
  int n_end = S;
  if (CAUSAL) {
    const int last_row = min(m0 + BM, p.T) - 1;
    n_end = min(S, last_row + offset + 1);
  }
  const int n_tiles_all = n_end > 0 ? (n_end + BN - 1) / BN : 0;
  // this CTA's KV tile range [n_lo, n_hi) (whole range unless split-KV)
  int n_lo = 0, n_hi = n_tiles_all;
  if (SPLIT) {
    const int per = (n_tiles_all + p.num_splits - 1) / p.num_splits;
    n_lo = min(n_tiles_all, split * per);
    n_hi = min(n_tiles_all, n_lo + per);
  }
  // warps whose rows are all past T (ragged tail / decode) skip the math
  const bool warp_active = (m0 + warp * WROWS) < p.T;

  // ---- prologue: Q + K[last] (group 0), V[last] (group 1) ----
  load_tile_async<D, BM, THREADS>(sQ, gQ, p.q_row_stride, p.T - m0, tid);
  if (n_hi > n_lo) {
    const int n0 = (n_hi - 1) * BN;
    load_tile_async<D, BN, THREADS>(sK0 + ((n_hi - 1) & 1) * C::SMEM_KV, gK + static_cast<int64_t>(n0) * p.k_row_stride,
                                    p.k_row_stride, S - n0, tid);
    cp_async_commit();
    load_tile_async<D, BN, THREADS>(sV0 + ((n_hi - 1) & 1) * C::SMEM_KV, gV + static_cast<int64_t>(n0) * p.v_row_stride,
                                    p.v_row_stride, S - n0, tid);
  }
  cp_async_commit();

  float o[MT][DT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < DT; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.f;
  float m_r[MT][2], l_r[MT][2];  // reference max (log2 units, i.e. score*scale_log2) / partial sums, rows g and g+8
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    m_r[mt][0] = m_r[mt][1] = -INFINITY;
    l_r[mt][0] = l_r[mt][1] = 0.f;
  }
  uint32_t qf[Q_IN_REGS ? KD : 1][4];

  // Per-thread ldmatrix address parts. Every ldmatrix row index is
  // (lane & 7) + multiple of 8, so the XOR swizzle only depends on lane & 7;
  // address = tile + row_off + (chunk ^ xr) * 16 (+ immediate row-block offset).
  const int xr = (D >= 64) ? (lane & 7) : ((lane >> 1) & 3);
  const uint32_t q_row_off = static_cast<uint32_t>((warp * WROWS + (lane & 7) + ((lane >> 3) & 1) * 8) * D * 2);
  const int q_chunk_lo = lane >> 4;
  const uint32_t k_row_off = static_cast<uint32_t>(((lane & 7) + (lane >> 4) * 8) * D * 2);
  const int k_chunk_lo = (lane >> 3) & 1;
  const uint32_t v_row_off = static_cast<uint32_t>(((lane & 7) + ((lane >> 3) & 1) * 8) * D * 2);
  const int v_chunk_lo = lane >> 4;

  const int row_base = m0 + warp * WROWS + g;  // query index of row g of m-tile 0

  if (n_hi > n_lo) {
    cp_async_wait<1>();  // Q + K[last] landed
    __syncthreads();
    if constexpr (Q_IN_REGS) {
      // Q fragments -> registers, once for the whole KV sweep
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        ldmatrix_x4(qf[kk], sQ + q_row_off + static_cast<uint32_t>(((kk * 2 + q_chunk_lo) ^ xr) << 4));
      }
    }
  }

  for (int nt = n_hi - 1; nt >= n_lo; --nt) {
    const int stage = nt & 1;
    const uint32_t sK = sK0 + stage * C::SMEM_KV;
    const uint32_t sV = sV0 + stage * C::SMEM_KV;
    const int n0 = nt * BN;

    cp_async_wait<1>();  // K[nt] landed
    __syncthreads();
    if (nt > n_lo) {
      const int nn = n0 - BN;
      load_tile_async<D, BN, THREADS>(sK0 + (stage ^ 1) * C::SMEM_KV, gK + static_cast<int64_t>(nn) * p.k_row_stride,
                                      p.k_row_stride, S - nn, tid);
    }
    cp_async_commit();

#pragma unroll
    for (int sb = 0; sb < NSUB; ++sb) {
      const int n0s = n0 + sb * BNC;
      const uint32_t sKs = sK + sb * BNC * D * 2;
      const uint32_t sVs = sV + sb * BNC * D * 2;
      // sub-blocks entirely above this warp's last row are skipped (warp-uniform)
      bool sub_active = warp_active;
      if (CAUSAL) sub_active &= (n0s <= m0 + warp * WROWS + WROWS - 1 + offset);
      if (NSUB > 1) sub_active &= (n0s < S);

      // ---- S = Q K^T ----
      float s[MT][NT][4];
      uint32_t pa[MT][KN][4];  // P as bf16 A-fragments
      if (sub_active) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int i = 0; i < NT; ++i) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
          uint32_t qa[MT][4];
          if constexpr (Q_IN_REGS) {
#pragma unroll
            for (int j = 0; j < 4; ++j) qa[0][j] = qf[kk][j];
          } else {
            const uint32_t qaddr = sQ + q_row_off + static_cast<uint32_t>(((kk * 2 + q_chunk_lo) ^ xr) << 4);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
              ldmatrix_x4(qa[mt], qaddr + mt * 16 * D * 2);
          }
          const uint32_t kaddr = sKs + k_row_off + static_cast<uint32_t>(((kk * 2 + k_chunk_lo) ^ xr) << 4);
#pragma unroll
          for (int np = 0; np < NT / 2; ++np) {
            uint32_t kb[4];
            ldmatrix_x4(kb, kaddr + np * 16 * D * 2);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
              mma_m16n8k16_bf16(s[mt][2 * np], qa[mt], kb[0], kb[1]);
              mma_m16n8k16_bf16(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
            }
          }
        }

        // ---- mask (only diagonal / ragged sub-blocks) ----
        bool need_mask = (n0s + BNC > S);
        if (CAUSAL) need_mask |= (n0s + BNC - 1 > m0 + offset);
        if (need_mask) {
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            const int rlo = row_base + mt * 16;
            const int lim_lo = CAUSAL ? min(rlo + offset, S - 1) : S - 1;
            const int lim_hi = CAUSAL ? min(rlo + 8 + offset, S - 1) : S - 1;
#pragma unroll
            for (int i = 0; i < NT; ++i) {
              const int j = n0s + i * 8 + tg * 2;
              if (j > lim_lo) s[mt][i][0] = -INFINITY;
              if (j + 1 > lim_lo) s[mt][i][1] = -INFINITY;
              if (j > lim_hi) s[mt][i][2] = -INFINITY;
              if (j + 1 > lim_hi) s[mt][i][3] = -INFINITY;
            }
          }
        }

        // ---- online softmax (log2 domain, lazy rescale) ----
        float alpha[MT][2];
        bool moved = false;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
          for (int i = 0; i < NT; ++i) {
            mx[0] = fmaxf(mx[0], fmaxf(s[mt][i][0], s[mt][i][1]));
            mx[1] = fmaxf(mx[1], fmaxf(s[mt][i][2], s[mt][i][3]));
          }
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float mxs = mx[r] * scale_log2;  // -inf stays -inf (scale_log2 > 0)
            alpha[mt][r] = 1.f;
            if (mxs > m_r[mt][r] + RESCALE_THRESH) {  // m_r = -inf: any finite max moves it
              alpha[mt][r] = fast_exp2(m_r[mt][r] - mxs);  // m_old = -inf -> 0
              m_r[mt][r] = mxs;
              moved = true;
            }
            l_r[mt][r] *= alpha[mt][r];
          }
        }
        if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int i = 0; i < DT; ++i) {
              o[mt][i][0] *= alpha[mt][0];
              o[mt][i][1] *= alpha[mt][0];
              o[mt][i][2] *= alpha[mt][1];
              o[mt][i][3] *= alpha[mt][1];
            }
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          // rows with no visible key so far keep m = -inf: use 0 (their s are -inf -> p = 0)
          const float msc0 = (m_r[mt][0] == -INFINITY) ? 0.f : m_r[mt][0];
          const float msc1 = (m_r[mt][1] == -INFINITY) ? 0.f : m_r[mt][1];
#pragma unroll
          for (int i = 0; i < NT; ++i) {
            const float p0 = fast_exp2(fmaf(s[mt][i][0], scale_log2, -msc0));
            const float p1 = fast_exp2(fmaf(s[mt][i][1], scale_log2, -msc0));
            const float p2 = fast_exp2(fmaf(s[mt][i][2], scale_log2, -msc1));
            const float p3 = fast_exp2(fmaf(s[mt][i][3], scale_log2, -msc1));
            l_r[mt][0] += p0 + p1;
            l_r[mt][1] += p2 + p3;
            pa[mt][i >> 1][(i & 1) * 2 + 0] = pack_bf16x2(p0, p1);
            pa[mt][i >> 1][(i & 1) * 2 + 1] = pack_bf16x2(p2, p3);
          }
        }
      }  // sub_active

      if (sb == 0) {
        cp_async_wait<1>();  // V[nt] landed (K[nt-1] may still be in flight)
        __syncthreads();
        if (nt > n_lo) {
          const int nn = n0 - BN;
          load_tile_async<D, BN, THREADS>(sV0 + (stage ^ 1) * C::SMEM_KV,
                                          gV + static_cast<int64_t>(nn) * p.v_row_stride, p.v_row_stride, S - nn,
                                          tid);
        }
        cp_async_commit();
      }

      // ---- O += P V  (P from registers) ----
      if (sub_active) {
#pragma unroll
        for (int kk = 0; kk < KN; ++kk) {
#pragma unroll
          for (int dp = 0; dp < DT / 2; ++dp) {
            uint32_t vb[4];
            const uint32_t vaddr = sVs + v_row_off + static_cast<uint32_t>(((dp * 2 + v_chunk_lo) ^ xr) << 4);
            ldmatrix_x4_trans(vb, vaddr + kk * 16 * D * 2);
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
              mma_m16n8k16_bf16(o[mt][2 * dp], pa[mt][kk], vb[0], vb[1]);
              mma_m16n8k16_bf16(o[mt][2 * dp + 1], pa[mt][kk], vb[2], vb[3]);
            }
          }
        }
      }  // sub_active
    }  // sb
  }

  // ---- epilogue ----
  cp_async_wait<0>();
  __syncthreads();  // all warps are done with Q smem (and with K/V)
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l_r[mt][r] += __shfl_xor_sync(0xffffffffu, l_r[mt][r], 1);
      l_r[mt][r] += __shfl_xor_sync(0xffffffffu, l_r[mt][r], 2);
      inv[r] = l_r[mt][r] > 0.f ? 1.f / l_r[mt][r] : 0.f;
    }
    if constexpr (SPLIT) {
      // fp32 partial O (normalised by this split's l) + log2-sum-exp of the split
      const int64_t base_row = (static_cast<int64_t>(split) * p.B * p.H + bh) * p.T;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = row_base + mt * 16 + r * 8;
        if (row < p.T) {
          float* po = p.partial_o + (base_row + row) * D;
#pragma unroll
          for (int i = 0; i < DT; ++i) {
            *reinterpret_cast<float2*>(po + i * 8 + tg * 2) =
                make_float2(o[mt][i][2 * r] * inv[r], o[mt][i][2 * r + 1] * inv[r]);
          }
          if (tg == 0) {
            p.partial_lse[base_row + row] = l_r[mt][r] > 0.f ? m_r[mt][r] + __log2f(l_r[mt][r]) : -INFINITY;
          }
        }
      }
    } else {
      // stage bf16 O in this warp's own rows of the (dead) Q tile
      const int r_lo = warp * WROWS + mt * 16 + g;
      const int r_hi = r_lo + 8;
#pragma unroll
      for (int i = 0; i < DT; ++i) {
        const uint32_t off_lo = (r_lo * D + swz<D>(r_lo, i) * 8 + tg * 2) * 2;
        const uint32_t off_hi = (r_hi * D + swz<D>(r_hi, i) * 8 + tg * 2) * 2;
        *reinterpret_cast<uint32_t*>(smem_raw + off_lo) = pack_bf16x2(o[mt][i][0] * inv[0], o[mt][i][1] * inv[0]);
        *reinterpret_cast<uint32_t*>(smem_raw + off_hi) = pack_bf16x2(o[mt][i][2] * inv[1], o[mt][i][3] * inv[1]);
      }
    }
  }
  if constexpr (!SPLIT) {
    __syncwarp();
    constexpr int CPR = D / 8;
    __nv_bfloat16* gO = p.out + static_cast<int64_t>(b) * p.o_batch_stride + h * D;
#pragma unroll
    for (int it = 0; it < WROWS * CPR / 32; ++it) {
      const int i = it * 32 + lane;
      const int rr = i / CPR;
      const int c = i % CPR;
      const int row = warp * WROWS + rr;
      if (m0 + row < p.T) {
        const uint4 val = *reinterpret_cast<const uint4*>(smem_raw + (row * D + swz<D>(row, c) * 8) * 2);
        *reinterpret_cast<uint4*>(gO + static_cast<int64_t>(m0 + row) * p.o_row_stride + c * 8) = val;
      }
    }
  }
}

// Split-KV combine: one CTA of D threads per (b, h, t) row.
template <int D>
__global__ void attention_splitkv_combine_kernel(const AttentionParams p) {
  const int t = blockIdx.x % p.T;
  const int bh = blockIdx.x / p.T;
  const int b = bh / p.H, h = bh % p.H;
  const int d = threadIdx.x;
  const int64_t rows_per_split = static_cast<int64_t>(p.B) * p.H * p.T;
  const int64_t row = static_cast<int64_t>(bh) * p.T + t;
  float mx = -INFINITY;
  for (int s = 0; s < p.num_splits; ++s) mx = fmaxf(mx, p.partial_lse[s * rows_per_split + row]);
  float acc = 0.f, wsum = 0.f;
  if (mx != -INFINITY) {
    for (int s = 0; s < p.num_splits; ++s) {
      const float w = exp2f(p.partial_lse[s * rows_per_split + row] - mx);
      wsum += w;
      acc += w * p.partial_o[(s * rows_per_split + row) * D + d];
    }
  }
  const float res = wsum > 0.f ? acc / wsum : 0.f;
  p.out[static_cast<int64_t>(b) * p.o_batch_stride + static_cast<int64_t>(t) * p.o_row_stride + h * D + d] =
      __float2bfloat16(res);
}

// Decode (T = 1) split-KV kernel: one CTA (128 threads) per (split, kv head, batch) serves all
// G = H / Hk query heads of its kv head, so each K/V row is read from memory once per step, not
// once per query head, and no tensor-core tile idles on 63 empty query rows. K/V tiles of KB keys
// stream through a cp.async double buffer; per tile: scores (one (head, key) dot product per
// thread, 16-byte chunks visited in a key-rotated order so the threads of a warp hit different
// banks), an online softmax per head (one warp per head, log2 domain), then O += P·V with each
// thread owning (head, dim) outputs. The split's normalised O and log2-sum-exp go to the
// workspace the combine kernel reads, exactly as the tensor-core split kernel writes them.
constexpr int kDecodeThreads = 128;
constexpr int kDecodeMaxG = 16;  // query heads per kv head the decode kernel serves
template <int D>
__host__ __device__ constexpr int decode_kb() { return D >= 128 ? 32 : 64; }  // keys per tile: 2·2·KB·D bytes of K/V buffers

template <int D>
__global__ void __launch_bounds__(kDecodeThreads) attention_decode_kernel(const AttentionParams p, float scale_log2) {
  constexpr int KB = decode_kb<D>();
  constexpr int CPR = D / 8;                                   // 16-byte chunks per row
  constexpr int kOut = (kDecodeMaxG * D + kDecodeThreads - 1) / kDecodeThreads;  // (head, dim) outputs per thread, at most
  __shared__ alignas(16) __nv_bfloat16 sK[2][KB * D];
  __shared__ alignas(16) __nv_bfloat16 sV[2][KB * D];
  __shared__ alignas(16) float sQ[kDecodeMaxG * D];
  __shared__ float sP[kDecodeMaxG * KB];
  __shared__ float sM[kDecodeMaxG], sL[kDecodeMaxG], sAlpha[kDecodeMaxG];
  const int split = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int G = p.H / p.Hk;
  const int S = p.S_dev ? *p.S_dev : p.S;
  const int per = (S + static_cast<int>(gridDim.x) - 1) / static_cast<int>(gridDim.x);
  const int k0 = min(S, split * per), k1 = min(S, k0 + per);
  const int ntiles = (k1 - k0 + KB - 1) / KB;
  const __nv_bfloat16* gK = p.k + static_cast<int64_t>(b) * p.k_batch_stride + static_cast<int64_t>(hk) * D;
  const __nv_bfloat16* gV = p.v + static_cast<int64_t>(b) * p.v_batch_stride + static_cast<int64_t>(hk) * D;
  // the G query rows of this kv head (heads hk·G … hk·G+G−1), fp32, pre-scaled into the log2 domain
  for (int i = tid; i < G * D; i += kDecodeThreads) {
    const int h = hk * G + i / D;
    sQ[i] = __bfloat162float(p.q[static_cast<int64_t>(b) * p.q_batch_stride + static_cast<int64_t>(h) * D + i % D]) * scale_log2;
  }
  if (tid < kDecodeMaxG) sM[tid] = -INFINITY, sL[tid] = 0.f;
  __syncthreads();  // an empty split (no tile) still reads sM / sL below
  auto load = [&](int tile, int buf) {
    const int kb = k0 + tile * KB;
    const uint32_t k_s = static_cast<uint32_t>(__cvta_generic_to_shared(sK[buf]));
    const uint32_t v_s = static_cast<uint32_t>(__cvta_generic_to_shared(sV[buf]));
    for (int i = tid; i < KB * CPR; i += kDecodeThreads) {
      const int r = i / CPR, c = i % CPR;
      const bool ok = kb + r < k1;
      const int64_t row = ok ? kb + r : k0;  // a valid address; zero-filled when !ok
      cp_async_16(k_s + static_cast<uint32_t>(i * 16), gK + row * p.k_row_stride + c * 8, ok);
      cp_async_16(v_s + static_cast<uint32_t>(i * 16), gV + row * p.v_row_stride + c * 8, ok);
    }
    cp_async_commit();
  };
  float o[kOut];
#pragma unroll
  for (int i = 0; i < kOut; ++i) o[i] = 0.f;
  if (ntiles > 0) load(0, 0);
  for (int tile = 0; tile < ntiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < ntiles) {
      load(tile + 1, buf ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // tile `tile` (and, first time round, sQ / sM / sL) visible
    const int kb = k0 + tile * KB;
    // scores s[h][k] = q_h · k_k (log2 domain); keys past the split's end → −∞
    for (int i = tid; i < G * KB; i += kDecodeThreads) {
      const int h = i / KB, k = i % KB;
      const __nv_bfloat16* kr = sK[buf] + k * D;
      const float* qr = sQ + h * D;
      float acc = 0.f;
#pragma unroll 4
      for (int cc = 0; cc < CPR; ++cc) {
        const int c = (cc + k) % CPR;
        const uint4 raw = *reinterpret_cast<const uint4*>(kr + c * 8);
        const __nv_bfloat162* k2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 kf = __bfloat1622float2(k2[j]);
          acc = fmaf(qr[c * 8 + 2 * j], kf.x, acc);
          acc = fmaf(qr[c * 8 + 2 * j + 1], kf.y, acc);
        }
      }
      sP[h * KB + k] = kb + k < k1 ? acc : -INFINITY;
    }
    __syncthreads();
    // online softmax, one warp per head
    for (int h = warp; h < G; h += kDecodeThreads / 32) {
      float mx = -INFINITY;
      for (int k = lane; k < KB; k += 32) mx = fmaxf(mx, sP[h * KB + k]);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_old = sM[h];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.f;
      for (int k = lane; k < KB; k += 32) {
        const float sc = sP[h * KB + k];
        const float pk = sc == -INFINITY ? 0.f : exp2f(sc - m_new);
        sP[h * KB + k] = pk;
        sum += pk;
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      if (lane == 0) {
        const float alpha = m_old == -INFINITY ? 0.f : exp2f(m_old - m_new);
        sAlpha[h] = alpha;
        sM[h] = m_new;
        sL[h] = sL[h] * alpha + sum;
      }
    }
    __syncthreads();
    // O[h][d] = O·alpha_h + Σ_k P[h][k] V[k][d]
#pragma unroll
    for (int i = 0; i < kOut; ++i) {
      const int e = tid + i * kDecodeThreads;
      if (e < G * D) {
        const int h = e / D, d = e % D;
        float acc = o[i] * sAlpha[h];
        const float* ph = sP + h * KB;
        const __nv_bfloat16* vc = sV[buf] + d;
#pragma unroll 8
        for (int k = 0; k < KB; ++k) acc = fmaf(ph[k], __bfloat162float(vc[k * D]), acc);
        o[i] = acc;
      }
    }
    __syncthreads();  // the buffer is refilled and sP rewritten next round
  }
  // this split's normalised output and log2-sum-exp per query row (combine_kernel's inputs)
  const int64_t rows_per_split = static_cast<int64_t>(p.B) * p.H;  // T = 1
#pragma unroll
  for (int i = 0; i < kOut; ++i) {
    const int e = tid + i * kDecodeThreads;
    if (e < G * D) {
      const int h = e / D, d = e % D;
      const float l = sL[h];
      const int64_t row = static_cast<int64_t>(split) * rows_per_split + static_cast<int64_t>(b) * p.H + hk * G + h;
      p.partial_o[row * D + d] = l > 0.f ? o[i] / l : 0.f;
      if (d == 0) p.partial_lse[row] = l > 0.f ? sM[h] + log2f(l) : -INFINITY;
    }
  }
}

inline cudaError_t validate(const AttentionParams& p) {
  if (p.B <= 0 || p.T <= 0 || p.H <= 0 || p.Hk <= 0 || p.S < 0 || (p.H % p.Hk) != 0) return cudaErrorInvalidValue;
  if (!p.q || !p.k || !p.v || !p.out) return cudaErrorInvalidValue;
  auto misaligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) != 0; };
  if (misaligned(p.q) || misaligned(p.k) || misaligned(p.v) || misaligned(p.out)) return cudaErrorInvalidValue;
  if ((p.q_row_stride | p.k_row_stride | p.v_row_stride | p.o_row_stride | p.q_batch_stride | p.k_batch_stride |
       p.v_batch_stride | p.o_batch_stride) & 7)
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

// Default compute sub-block: D=128 with MT=2 computes up to 64 keys at once
// (O accumulator 128 registers + 64-key S/P: 255 registers, no spills); 128-key
// tiles (and BM=64 with 64-key tiles, which spills) use 32-key sub-blocks.
template <int D, int BM, int BN, int MT>
constexpr int default_bnc() {
  return (D == 128 && MT == 2 && (BN > 64 || (BN > 32 && BM < 128))) ? 32 : BN;
}

template <int D, int BM, int BN, bool CAUSAL, bool SPLIT, int MT, int BNC = default_bnc<D, BM, BN, MT>()>
inline cudaError_t launch_fwd(const AttentionParams& p, int splits, cudaStream_t stream) {
  using C = Cfg<BM, BN, D, MT>;
  auto kernel = attention_fwd_kernel<D, BM, BN, CAUSAL, SPLIT, MT, BNC>;
  if (C::SMEM > 48 * 1024) {
    const cudaError_t attr_err = opt_in_smem<attention_fwd_kernel<D, BM, BN, CAUSAL, SPLIT, MT, BNC>>(C::SMEM);
    if (attr_err != cudaSuccess) return attr_err;
  }
  const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
  const float scale_log2 = scale * 1.4426950408889634f;
  const int num_m = (p.T + BM - 1) / BM;
  const long long blocks = static_cast<long long>(num_m) * p.B * p.H * splits;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
  kernel<<<static_cast<unsigned>(blocks), C::THREADS, C::SMEM, stream>>>(p, scale_log2);
  return cudaGetLastError();
}

}  // namespace detail

// Default tile choices (tuned on H200; see tests/gpu/attention_test.cu).
template <int D>
// H200 measurements (B=2, T=S=8192, H=32, causal, lazy rescale): D=128
// BM128/BN64/MT2 (64-key sub-block) 331 TFLOP/s (BN64 as 2x32 sub-blocks 319,
// BN32 314, before lazy rescale BN32 304); D=64 BM128/BN64/MT2 284 TFLOP/s.
// D=32 untuned.
struct DefaultTiles {
  static constexpr int BM = 128;
  static constexpr int BN = 64;
  static constexpr int MT = (D == 32) ? 1 : 2;
};

template <int D, int BM = DefaultTiles<D>::BM, int BN = DefaultTiles<D>::BN, bool CAUSAL = true,
          int MT = DefaultTiles<D>::MT>
inline cudaError_t attention_launch(const AttentionParams& p, cudaStream_t stream = 0) {
  const cudaError_t e = detail::validate(p);
  if (e != cudaSuccess) return e;
  return detail::launch_fwd<D, BM, BN, CAUSAL, false, MT>(p, 1, stream);
}

// ---- split-KV ("flash-decoding") path for small T (decode, short chunks) ----
// Bytes of fp32 workspace needed for num_splits splits (partial_o + partial_lse).
inline size_t attention_splitkv_workspace_bytes(int num_splits, int B, int T, int H, int D) {
  const size_t rows = static_cast<size_t>(num_splits) * B * H * T;
  return rows * D * sizeof(float) + rows * sizeof(float);
}
// Split count for a decode (T = 1) call of the GQA decode kernel, whose CTAs are (split, kv head,
// batch): about two waves of CTAs, at least 64 keys per split.
inline int attention_decode_splits(int B, int S, int Hk, int num_sms) {
  const int base = B * Hk;
  int splits = (2 * num_sms + base - 1) / base;
  const int most = S / 64;
  splits = splits < most ? splits : most;
  splits = splits < 128 ? splits : 128;
  return splits < 1 ? 1 : splits;
}
// Heuristic split count: enough CTAs for ~2 waves, at least 2 KV tiles per split.
inline int attention_splitkv_heuristic(int B, int T, int S, int H, int num_sms, int BM = 64, int BN = 64) {
  const int base = ((T + BM - 1) / BM) * B * H;
  const int tiles = (S + BN - 1) / BN;
  int splits = (2 * num_sms + base - 1) / base;
  splits = splits < tiles / 2 ? splits : tiles / 2;
  splits = splits < 128 ? splits : 128;
  return splits < 1 ? 1 : splits;
}
// Launches the split kernel (p.num_splits CTAs per query block, each over a
// contiguous KV range) and the combine kernel. p.partial_o / p.partial_lse must
// point at attention_splitkv_workspace_bytes(...) bytes (partial_lse placed
// after partial_o, e.g. partial_lse = partial_o + num_splits*B*H*T*D).
// num_splits <= 1 falls back to attention_launch.
//
// For one query row (T = 1) `decode` picks the split kernel: the tensor-core one (FlashAttention-2
// tiles, one CTA per query head) or the GQA decode kernel (one CTA per kv head serving its query
// heads). Default: the tensor-core one unless STRATA_DECODE_ATTN=gqa (read once per process). The
// GQA kernel is 1.37× faster at B8 S8192 H32/8 D128 (harness) but slower inside the 8B
// Transformer's batch-1 decode step (0.74 vs 0.83 of the HBM roofline, same H200 run): per tile
// it runs a serial 128-FMA dot product per thread between three barriers, so a CTA that walks
// only 4 tiles is latency-bound (docs/PERF-NOTES.md).
enum class DecodeKernel { Default, TensorCore, Gqa };
inline bool gqa_decode_opted_in() {
  static const bool on = [] {
    const char* e = std::getenv("STRATA_DECODE_ATTN");
    return e && std::strcmp(e, "gqa") == 0;
  }();
  return on;
}
template <int D, int BM = 64, int BN = 64, bool CAUSAL = true>
inline cudaError_t attention_launch_splitkv(const AttentionParams& p, cudaStream_t stream = 0, DecodeKernel decode = DecodeKernel::Default) {
  cudaError_t e = detail::validate(p);
  if (e != cudaSuccess) return e;
  if (p.num_splits <= 1) return detail::launch_fwd<D, BM, BN, CAUSAL, false, 1>(p, 1, stream);
  if (!p.partial_o || !p.partial_lse) return cudaErrorInvalidValue;
  const bool gqa = decode == DecodeKernel::Gqa || (decode == DecodeKernel::Default && gqa_decode_opted_in());
  if (p.T == 1 && p.H / p.Hk <= detail::kDecodeMaxG && gqa) {
    // one query row per sequence (decode): every key is visible, causal or not
    const float scale = p.scale > 0.f ? p.scale : 1.0f / sqrtf(static_cast<float>(D));
    if (p.num_splits > 65535 || p.Hk > 65535 || p.B > 65535) return cudaErrorInvalidValue;
    detail::attention_decode_kernel<D><<<dim3(static_cast<unsigned>(p.num_splits), static_cast<unsigned>(p.Hk), static_cast<unsigned>(p.B)),
                                        detail::kDecodeThreads, 0, stream>>>(p, scale * 1.4426950408889634f);
  } else {
    e = detail::launch_fwd<D, BM, BN, CAUSAL, true, 1>(p, p.num_splits, stream);
  }
  e = e != cudaSuccess ? e : cudaGetLastError();
  if (e != cudaSuccess) return e;
  const long long rows = static_cast<long long>(p.B) * p.H * p.T;
  if (rows > 0x7fffffffLL) return cudaErrorInvalidValue;
  detail::attention_splitkv_combine_kernel<D><<<static_cast<unsigned>(rows), D, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn
}  // namespace strata

// sm_90a: the wgmma / TMA forward (attention_launch_wgmma), same contract.
#include "attention_wgmma.cuh"

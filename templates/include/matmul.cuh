// matmul.cuh — header-only tensor-core GEMMs of the backward pass (and a general batched
// strided GEMM), with the same epilogue hook as gemm.cuh.
//
//   C[M,N] = epilogue( Σ_k A(m,k) · B(n,k) ),  fp32 accumulation, deterministic: every output
//   tile is owned by one CTA that walks k in a fixed order, no atomics; with few output tiles
//   (a small weight's gradient over many tokens) the contraction is split in a number of parts
//   fixed by the shape, partials go to scratch and a second pass adds them in a fixed order.
//
// Each operand is one of two layouts (template flags kMnA / kMnB):
//   K-major  ("row", like nn.Linear's W):  X(i,k) at X[i*ld + k]     (k contiguous)
//   MN-major ("transposed view"):           X(i,k) at X[k*ld + i]     (i contiguous)
// which covers the three GEMMs of a linear layer's training step:
//   forward  y  = x · Wᵀ       A = x  K-major,  B = W  K-major        (gemm.cuh does this one)
//   dgrad    dx = gy · W       A = gy K-major,  B = W  MN-major  (W [N,K]: contraction over rows)
//   wgrad    dW = gyᵀ · x      A = gy MN-major, B = x  MN-major  (contraction over all B·T tokens)
// so no operand is ever transposed in memory.
//
// Operand element types: bf16 is copied global→shared with cp.async; an f32 operand (a gradient
// kept in f32) is loaded with 16-byte loads and rounded to bf16 on its way into shared memory
// (tensor-core inputs are bf16 either way; accumulation is fp32).
//
// Shared-memory tiles (per stage and operand, R = BM or BN rows of the output tile, 64 k deep),
// both 128-byte-swizzled (16-byte chunk c of a 128-byte row r stored at chunk c ^ (r & 7)):
//   K-major : R rows (output index) × 64 k            = the layout of gemm.cuh; wgmma K-major
//             descriptor (SBO 1024 B), +32 B per k16 step.
//   MN-major: R/64 blocks of [64 k rows × 64 outputs] = 8 KB each; a k-row is 128 contiguous
//             bytes of one token/row in global memory. wgmma MN-major ("transposed") descriptor:
//             LBO 8192 B (next 64 outputs), SBO 1024 B (next 8 k rows), +2048 B per k16 step.
//             The mma.sync path reads it with ldmatrix.trans.
// Ragged edges: 16-byte chunks are zero-filled outside the matrix (rows past the end, and chunks
// past the contiguous extent, which must be a multiple of 8), so any M, N, K ≥ 0 work (K = 0
// stores the epilogue of zeros).
//
// Kernels (the pipeline is gemm.cuh's; its configs WgmmaConfig / MmaConfig are reused):
//   matmul_wgmma_kernel  sm_90a: BM/64 warpgroups, wgmma m64nBNk16 with per-operand transpose
//                        immediates, cp.async ring of STAGES k-tiles, one wgmma batch in flight.
//   matmul_ws_kernel     sm_90a, WsConfig, bf16 operands: gemm.cuh's warp-specialized persistent
//                        kernel (TMA producer warpgroup, mbarrier ring, two consumer warpgroups)
//                        with the per-operand layouts; an MN-major operand's k-tile is R/64 TMA
//                        boxes of [64 k × 64 outputs]. A WsConfig launch with an f32 operand (or
//                        K = 0) runs matmul_wgmma_kernel with the same tiles.
//   matmul_pp_kernel     sm_90a, PpConfig, bf16 operands: gemm.cuh's ping-pong gemm_pp_kernel (each
//                        consumer warpgroup owns a whole BM×BN tile, the two take the CTA's tiles in
//                        turn, so one's epilogue runs under the other's mainloop) with the layouts and
//                        split-K of matmul_ws_kernel; an f32 operand (or K = 0) falls back likewise.
//                        Checked on the H200 (tests/gpu/matmul_test.cu); timed at 16384 tokens with
//                        pauses between timings, it beats WsConfig<128,256,4> only where the output tile
//                        count or a short contraction favours it: PpConfig<128,128,6> on dgrad of
//                        [2048, 8192] (0.762 vs 0.843 ms) and [3072, 2048] (0.278 vs 0.302 ms) weights and
//                        the [3072, 2048] wgrad (0.271 vs 0.328 ms); elsewhere ws128x256 is 1-6% faster.
//   matmul_mma_kernel    sm_80+: mma.sync m16n8k16 + ldmatrix(.trans).
//   matmul_general_kernel  any strides, batched (blockIdx.z), any element type: a 64×64×16 fp32
//                        SIMT tile (correct everywhere; for the rare matmuls that are not a
//                        linear layer's GEMMs).
//
// Host API
//   matmul_launch<Cfg, TA, TB, kMnA, kMnB, Epi>(A, lda, B, ldb, M, N, K, ep, stream)
//   matmul_launch_split<...>(..., ep, splits, part, stream)   deterministic split-K (two passes)
//   matmul_splits<Cfg>(M, N, K, max_splits)                   the split count for a shape
//   matmul_shape_error<TA, TB, kMnA, kMnB>(A, lda, B, ldb, M, N, K)   nullptr when supported
//   matmul_general_launch<TA, TB, Epi>(A, B, M, N, K, batches, ep, stream)
//     Epi::Params carries the strides; Epi::offsets(p, z, oa, ob) gives batch z's operand offsets,
//     Epi::store1(p, z, m, n, v) stores one output.
#pragma once

#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "gemm.cuh"
#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/ptx.cuh"

namespace strata {
namespace matmul {
// internal linkage: several generated kernel files of one project include this header
namespace {

using bf16 = __nv_bfloat16;
using gemm::kBK;
using gemm::kRowBytes;
using gemm::MmaConfig;
using gemm::WgmmaConfig;

// Defaults (tests/gpu/matmul_test.cu times the alternatives).
using DefaultWgmmaConfig = WgmmaConfig<256, 128, 4>;
using DefaultMmaConfig = MmaConfig<128, 256, 4, 2, 4>;

constexpr uint32_t kMnBlockBytes = 64 * kRowBytes;  // one MN-major block: 64 k rows × 64 outputs

namespace detail {
using gemm::detail::swz;
using gemm::detail::tile_coords;
using gemm::detail::tile_coords_of;

// wgmma descriptor of an MN-major (transposed) 128B-swizzled operand laid out as above.
// (Checked on the H200: exchanging LBO and SBO gives wrong products, this layout right ones.)
STRATA_HD uint64_t wgmma_desc_mn_sw128(uint32_t saddr) {
  constexpr uint32_t kLbo = kMnBlockBytes, kSbo = 1024;
  uint64_t d = 0;
  d |= (uint64_t)((saddr & 0x3FFFF) >> 4);          // start address >> 4
  d |= (uint64_t)(kLbo >> 4) << 16;                 // LBO: next 64 elements along M/N
  d |= (uint64_t)(kSbo >> 4) << 32;                 // SBO: next 8 k rows
  d |= (uint64_t)1 << 62;                           // SWIZZLE_128B
  return d;
}

STRATA_DEV void st_shared_v4(uint32_t addr, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(a), "r"(b), "r"(c), "r"(d));
}

// One 16-byte chunk (8 elements) global → shared, as bf16; zeros when !ok.
STRATA_DEV void copy_chunk(uint32_t dst, const bf16* src, const bf16* safe, bool ok) {
  cp_async_16(dst, ok ? (const void*)src : (const void*)safe, ok);
}
STRATA_DEV void copy_chunk(uint32_t dst, const float* src, const float*, bool ok) {
  float4 lo = make_float4(0.f, 0.f, 0.f, 0.f), hi = lo;
  if (ok) {
    lo = __ldg(reinterpret_cast<const float4*>(src));
    hi = __ldg(reinterpret_cast<const float4*>(src) + 1);
  }
  st_shared_v4(dst, pack_bf16x2(lo.x, lo.y), pack_bf16x2(lo.z, lo.w), pack_bf16x2(hi.x, hi.y), pack_bf16x2(hi.z, hi.w));
}

// Fill one operand's R × 64 k-tile (outputs mn0.., k k0..) of a stage.
//   K-major : unit u → row r = u / 8 (output index), chunk c = u % 8 (k0 + 8c)
//   MN-major: unit u → block j = u / 512, k row r = (u / 8) % 64, chunk c = u % 8 (mn0 + 64j + 8c)
template <int R, int THREADS, bool kMn, class T>
STRATA_DEV void load_operand(uint32_t s_tile, const T* __restrict__ g, long long ld, int mn0, int mn_lim, int k0, int K,
                             int tid) {
  static_assert(R % 64 == 0 && THREADS % 64 == 0, "tile rows and threads: multiples of 64");
  constexpr int kUnits = R * 8;
  constexpr int kIters = (kUnits + THREADS - 1) / THREADS;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int u = tid + i * THREADS;
    if (kUnits % THREADS != 0 && u >= kUnits) break;
    const int c = u & 7;
    if constexpr (!kMn) {
      const int r = u >> 3;
      const int k = k0 + c * 8;
      const bool ok = (mn0 + r < mn_lim) && (k < K);
      copy_chunk(s_tile + swz(r, c), g + (long long)(mn0 + r) * ld + k, g, ok);
    } else {
      const int r = (u >> 3) & 63, j = u >> 9;
      const int mn = mn0 + j * 64 + c * 8;
      const bool ok = (k0 + r < K) && (mn < mn_lim);
      copy_chunk(s_tile + j * kMnBlockBytes + swz(r, c), g + (long long)(k0 + r) * ld + mn, g, ok);
    }
  }
}

// Split-K: CTA row blockIdx.y of gridDim.y takes k-tiles [kt0, kt0 + count) (all of them
// without a split).
STRATA_DEV void split_range(int K, int& kt0, int& count) {
  const int KT = ceil_div(K, kBK);
  const int per = ceil_div(KT, (int)gridDim.y);
  kt0 = min(KT, (int)blockIdx.y * per);
  count = min(KT, kt0 + per) - kt0;
}

}  // namespace detail

// ----------------------------------------------------------------------------------
// wgmma (sm_90a)
// ----------------------------------------------------------------------------------
template <class Cfg, class TA, class TB, bool kMnA, bool kMnB, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    matmul_wgmma_kernel(const TA* __restrict__ A, long long lda, const TB* __restrict__ B, long long ldb, int M, int N,
                        int K, const typename Epi::Params ep) {
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES, T = Cfg::kThreads;
  constexpr int NREG = BN / 2;
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  const uint32_t smem = (smem_u32(smem_raw) + 1023u) & ~1023u;

  int tm, tn;
  tile_coords<BM, BN, Cfg::GROUP_M>(M, N, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  int kt0, KT;
  split_range(K, kt0, KT);
  const int tid = threadIdx.x;
  const int wg = tid >> 7;

  float acc[NREG];
#pragma unroll
  for (int i = 0; i < NREG; ++i) acc[i] = 0.f;

  auto load_stage = [&](int kt, int slot) {
    const uint32_t sA = smem + slot * Cfg::kStageBytes;
    load_operand<BM, T, kMnA>(sA, A, lda, m0, M, (kt0 + kt) * kBK, K, tid);
    load_operand<BN, T, kMnB>(sA + kStageA, B, ldb, n0, N, (kt0 + kt) * kBK, K, tid);
  };

  constexpr int D = Cfg::kPrefetch;
#pragma unroll
  for (int s = 0; s < D; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();
  }

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<D - 1>();
    fence_proxy_async();  // cp.async and st.shared (f32 operands) → visible to wgmma
    __syncthreads();
    // this warpgroup's 64 rows of A: rows 64·wg.. (K-major) or block wg (MN-major): both +8 KB·wg
    const uint32_t sA = smem + (kt % S) * Cfg::kStageBytes + wg * kMnBlockBytes;
    const uint32_t sB = smem + (kt % S) * Cfg::kStageBytes + kStageA;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      const uint64_t da = kMnA ? wgmma_desc_mn_sw128(sA + kk * 2 * 1024) : wgmma_desc_sw128(sA + kk * 32);
      const uint64_t db = kMnB ? wgmma_desc_mn_sw128(sB + kk * 2 * 1024) : wgmma_desc_sw128(sB + kk * 32);
      Wgmma<BN, kMnA ? 1 : 0, kMnB ? 1 : 0>::mma(acc, da, db);  // strata/ptx.cuh, transposed operands
    }
    wgmma_commit();
    {
      const int nk = kt + D;
      if (nk < KT) load_stage(nk, nk % S);
      cp_async_commit();
    }
    if constexpr (Cfg::kRetireEach) wgmma_wait<0>();
    else wgmma_wait<1>();
  }
  wgmma_wait<0>();
  cp_async_wait<0>();

  const int lane = tid & 31, warp_in_wg = (tid >> 5) & 3;
  const int row = m0 + wg * 64 + warp_in_wg * 16 + (lane >> 2);
#pragma unroll
  for (int i = 0; i < BN / 8; ++i) {
    const int col = n0 + i * 8 + (lane & 3) * 2;
    if (col < N) {
      if (row < M) Epi::store2(ep, row, col, acc[4 * i + 0], acc[4 * i + 1]);
      if (row + 8 < M) Epi::store2(ep, row + 8, col, acc[4 * i + 2], acc[4 * i + 3]);
    }
  }
}

// ----------------------------------------------------------------------------------
// warp-specialized TMA + wgmma (sm_90a, bf16 operands): gemm.cuh's gemm_ws_kernel with
// per-operand layouts
// ----------------------------------------------------------------------------------
// One producer warpgroup (one thread issues TMA boxes into a STAGES-deep ring completed on
// mbarrier transaction bytes) and two consumer warpgroups (BM/2 rows × BN each, one wgmma batch in
// flight, the slot of the previous k-tile released after wgmma.wait_group 1), persistent over the
// output tiles in the grouped order, so a tile's epilogue overlaps the next tile's loads. The
// smem layouts are the cp.async kernels' (both are what TMA's 128-byte swizzle writes):
//   K-major : one box [R rows × 64 k]
//   MN-major: R/64 boxes [64 k rows × 64 outputs], one per 8 KB block
// A deterministic split of the contraction runs as gridDim.y = splits (split_range), each CTA
// walking the output tiles of its split.
namespace detail {
template <int R, bool kMn>
STRATA_DEV void tma_operand(uint8_t* dst, const CUtensorMap* map, uint64_t* bar, int mn0, int k0) {
  if constexpr (!kMn) {
    tma_load_2d(dst, map, bar, k0, mn0);
  } else {
#pragma unroll
    for (int j = 0; j < R / 64; ++j) tma_load_2d(dst + j * kMnBlockBytes, map, bar, mn0 + 64 * j, k0);
  }
}

// The operand's tensor map (extent mn along the outputs, K along the contraction, row stride ld).
template <int R, bool kMn>
inline cudaError_t operand_map(CUtensorMap* map, const bf16* p, long long ld, int mn, int K) {
  if constexpr (!kMn) return make_tensor_map_2d_bf16(map, p, (uint64_t)mn, (uint64_t)K, (uint64_t)ld, R, kBK, CU_TENSOR_MAP_SWIZZLE_128B);
  else return make_tensor_map_2d_bf16(map, p, (uint64_t)K, (uint64_t)mn, (uint64_t)ld, kBK, 64, CU_TENSOR_MAP_SWIZZLE_128B);
}
}  // namespace detail

template <class Cfg, bool kMnA, bool kMnB, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    matmul_ws_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB, int M, int N, int K,
                     const typename Epi::Params ep) {
#if defined(STRATA_HAS_WGMMA)
  using namespace detail;
  static_assert(Cfg::kCluster == 1, "matmul_ws_kernel: no clusters");
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES;
  constexpr int NREG = BN / 2;
  constexpr int MT = Cfg::kMTiles;
  constexpr uint32_t kStageA = BM * kRowBytes;
  constexpr int kConsumerWarps = 4 * Cfg::kConsumers;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* const tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(tiles + S * Cfg::kStageBytes);
  uint64_t* const empty = full + S;

  const int num_units = ceil_div(M, BM) * ceil_div(N, BN);
  int kt0, KT;
  split_range(K, kt0, KT);
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&tmA);
    prefetch_tensormap(&tmB);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], kConsumerWarps);
    }
    fence_mbarrier_init();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<Cfg::kProducerRegs>();
    if (threadIdx.x == 0) {
      int slot = 0;
      uint32_t phase = 0;
      for (int unit = blockIdx.x; unit < num_units; unit += gridDim.x) {
        int tm, tn;
        tile_coords_of<BM, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
        for (int kt = 0; kt < KT; ++kt) {
          mbarrier_wait_parity(&empty[slot], phase ^ 1);  // fresh barrier: parity 1 counts as done
          uint8_t* st = tiles + slot * Cfg::kStageBytes;
          const int k0 = (kt0 + kt) * kBK;
          mbarrier_arrive_expect_tx(&full[slot], Cfg::kStageBytes);
          tma_operand<BM, kMnA>(st, &tmA, &full[slot], tm * BM, k0);
          tma_operand<BN, kMnB>(st + kStageA, &tmB, &full[slot], tn * BN, k0);
          if (++slot == S) { slot = 0; phase ^= 1; }
        }
      }
    }
  } else {
    // ---- consumers ----
    setmaxnreg_inc<Cfg::kConsumerRegs>();
    const int cw = wg - 1;  // rows [cw*BM/2, (cw+1)*BM/2) of the tile
    const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
    const uint32_t smem = smem_u32(tiles);
    int slot = 0;
    uint32_t phase = 0;
    for (int unit = blockIdx.x; unit < num_units; unit += gridDim.x) {
      int tm, tn;
      tile_coords_of<BM, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
      const int m0 = tm * BM, n0 = tn * BN;
      float acc[MT][NREG];
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int i = 0; i < NREG; ++i) acc[t][i] = 0.f;

      int prev = 0;
      for (int kt = 0; kt < KT; ++kt) {
        mbarrier_wait_parity(&full[slot], phase);
        // this consumer's m64 slices: 8 KB blocks (cw·MT + t) of A, either layout
        const uint32_t sA = smem + slot * Cfg::kStageBytes + cw * MT * kMnBlockBytes;
        const uint32_t sB = smem + slot * Cfg::kStageBytes + kStageA;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          const uint64_t db = kMnB ? wgmma_desc_mn_sw128(sB + kk * 2 * 1024) : wgmma_desc_sw128(sB + kk * 32);
#pragma unroll
          for (int t = 0; t < MT; ++t) {
            const uint32_t a = sA + t * kMnBlockBytes;
            const uint64_t da = kMnA ? wgmma_desc_mn_sw128(a + kk * 2 * 1024) : wgmma_desc_sw128(a + kk * 32);
            Wgmma<BN, kMnA ? 1 : 0, kMnB ? 1 : 0>::mma(acc[t], da, db);
          }
        }
        wgmma_commit();
        wgmma_wait<1>();  // the batch of k-tile kt-1 retired: its slot may be refilled
        if (kt > 0 && lane == 0) mbarrier_arrive(&empty[prev]);
        prev = slot;
        if (++slot == S) { slot = 0; phase ^= 1; }
      }
      wgmma_wait<0>();
      if (KT > 0 && lane == 0) mbarrier_arrive(&empty[prev]);

      // m64nN accumulator layout: acc[4i+0,1] → (r, 8i + 2q + {0,1}), acc[4i+2,3] → (r+8, same)
#pragma unroll
      for (int t = 0; t < MT; ++t) {
        const int row = m0 + cw * Cfg::kWgRows + t * 64 + warp_in_wg * 16 + (lane >> 2);
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) {
          const int col = n0 + i * 8 + (lane & 3) * 2;
          if (col < N) {
            if (row < M) Epi::store2(ep, row, col, acc[t][4 * i + 0], acc[t][4 * i + 1]);
            if (row + 8 < M) Epi::store2(ep, row + 8, col, acc[t][4 * i + 2], acc[t][4 * i + 3]);
          }
        }
      }
    }
  }
#else
  __trap();
#endif
}

// ----------------------------------------------------------------------------------
// ping-pong warp-specialized TMA + wgmma (sm_90a, PpConfig, bf16 operands): gemm.cuh's
// gemm_pp_kernel with the per-operand layouts of matmul_ws_kernel
// ----------------------------------------------------------------------------------
// The producer (one thread of warpgroup 0) walks this CTA's output tiles u_0, u_1, … (blockIdx.x,
// +gridDim.x, grouped order) and fills ONE STAGES-deep ring with their k-tiles (of this CTA's
// split, split_range) in that order: local tile i's k-tiles sit at ring positions i·KT … i·KT+KT−1
// (slot = position % STAGES, the fill's parity = (position / STAGES) & 1). Consumer warpgroup
// c (c = 0, 1) takes the local tiles i ≡ c (mod 2) and the whole BM × BN of each (BM/64 m64nBN
// wgmmas per k16 step, the descriptors of matmul_ws_kernel), keeps one wgmma batch in flight,
// releases the previous slot (empty[s] counts the 4 warps of one warpgroup) and, after its last
// k-tile, that slot too, then runs the epilogue while the other consumer's mainloop uses the
// tensor cores. The mainloops take turns (turn[c]: the other consumer has waited on every position
// before this consumer's next tile), since an mbarrier parity wait cannot tell a fill from the one
// two fills later. An empty split (KT = 0) waits on no position and stores the epilogue of zeros.
template <class Cfg, bool kMnA, bool kMnB, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    matmul_pp_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB, int M, int N, int K,
                     const typename Epi::Params ep) {
#if defined(STRATA_HAS_WGMMA)
  using namespace detail;
  static_assert(gemm::IsPingPong<Cfg>::value, "matmul_pp_kernel: a PpConfig");
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES;
  constexpr int NREG = BN / 2;
  constexpr int MT = Cfg::kMTiles;  // BM / 64
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* const tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(tiles + S * Cfg::kStageBytes);
  uint64_t* const empty = full + S;
  uint64_t* const turn = empty + S;  // turn[c]: consumer c may start its next mainloop

  const int num_units = ceil_div(M, BM) * ceil_div(N, BN);
  int kt0, KT;
  split_range(K, kt0, KT);
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&tmA);
    prefetch_tensormap(&tmB);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 4);  // the 4 warps of the one consumer warpgroup that read the slot
    }
    mbarrier_init(&turn[0], 4);  // one arrival per warp of the other consumer
    mbarrier_init(&turn[1], 4);
    fence_mbarrier_init();
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<Cfg::kProducerRegs>();
    if (threadIdx.x == 0) {
      int slot = 0;
      uint32_t phase = 0;
      for (int unit = blockIdx.x; unit < num_units; unit += gridDim.x) {
        int tm, tn;
        tile_coords_of<BM, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
        for (int kt = 0; kt < KT; ++kt) {
          mbarrier_wait_parity(&empty[slot], phase ^ 1);  // fresh barrier: parity 1 counts as done
          uint8_t* st = tiles + slot * Cfg::kStageBytes;
          const int k0 = (kt0 + kt) * kBK;
          mbarrier_arrive_expect_tx(&full[slot], Cfg::kStageBytes);
          tma_operand<BM, kMnA>(st, &tmA, &full[slot], tm * BM, k0);
          tma_operand<BN, kMnB>(st + kStageA, &tmB, &full[slot], tn * BN, k0);
          if (++slot == S) { slot = 0; phase ^= 1; }
        }
      }
    }
  } else {
    // ---- consumers: local tiles i = cw, cw + 2, … ----
    setmaxnreg_inc<Cfg::kConsumerRegs>();
    const int cw = wg - 1;
    const int lane = threadIdx.x & 31, warp_in_wg = (threadIdx.x >> 5) & 3;
    const uint32_t smem = smem_u32(tiles);
    int i = cw, j = 0;  // local tile i = 2j + cw
    for (int unit = blockIdx.x + cw * (int)gridDim.x; unit < num_units; unit += 2 * (int)gridDim.x, i += 2, ++j) {
      int tm, tn;
      tile_coords_of<BM, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
      const int m0 = tm * BM, n0 = tn * BN;
      const long long pos = (long long)i * KT;  // ring position of this tile's first k-tile
      int slot = (int)(pos % S);
      uint32_t phase = (uint32_t)((pos / S) & 1);
      float acc[MT][NREG];
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int r = 0; r < NREG; ++r) acc[t][r] = 0.f;

      // my turn: consumer 0's tile j follows consumer 1's tile j − 1 (its completion j − 1 of
      // turn[0]; a fresh barrier passes parity 1), consumer 1's tile j follows consumer 0's tile j
      mbarrier_wait_parity(&turn[cw], cw == 0 ? (uint32_t)((j & 1) ^ 1) : (uint32_t)(j & 1));
      int prev = 0;
      for (int kt = 0; kt < KT; ++kt) {
        mbarrier_wait_parity(&full[slot], phase);
        // m64 slice t: the 8 KB block t of A in either layout
        const uint32_t sA = smem + slot * Cfg::kStageBytes;
        const uint32_t sB = sA + kStageA;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          const uint64_t db = kMnB ? wgmma_desc_mn_sw128(sB + kk * 2 * 1024) : wgmma_desc_sw128(sB + kk * 32);
#pragma unroll
          for (int t = 0; t < MT; ++t) {
            const uint32_t a = sA + t * kMnBlockBytes;
            const uint64_t da = kMnA ? wgmma_desc_mn_sw128(a + kk * 2 * 1024) : wgmma_desc_sw128(a + kk * 32);
            Wgmma<BN, kMnA ? 1 : 0, kMnB ? 1 : 0>::mma(acc[t], da, db);
          }
        }
        wgmma_commit();
        wgmma_wait<1>();  // the batch of k-tile kt-1 retired: its slot may be refilled
        if (kt > 0 && lane == 0) mbarrier_arrive(&empty[prev]);
        prev = slot;
        if (++slot == S) { slot = 0; phase ^= 1; }
      }
      wgmma_wait<0>();
      if (lane == 0) {
        if (KT > 0) mbarrier_arrive(&empty[prev]);
        mbarrier_arrive(&turn[cw ^ 1]);  // every position of this tile waited on: the other's turn
      }

      // m64nN accumulator layout: acc[4i+0,1] → (r, 8i + 2q + {0,1}), acc[4i+2,3] → (r+8, same)
#pragma unroll
      for (int t = 0; t < MT; ++t) {
        const int row = m0 + t * 64 + warp_in_wg * 16 + (lane >> 2);
#pragma unroll
        for (int c8 = 0; c8 < BN / 8; ++c8) {
          const int col = n0 + c8 * 8 + (lane & 3) * 2;
          if (col < N) {
            if (row < M) Epi::store2(ep, row, col, acc[t][4 * c8 + 0], acc[t][4 * c8 + 1]);
            if (row + 8 < M) Epi::store2(ep, row + 8, col, acc[t][4 * c8 + 2], acc[t][4 * c8 + 3]);
          }
        }
      }
    }
  }
#else
  __trap();
#endif
}

// ----------------------------------------------------------------------------------
// mma.sync + ldmatrix(.trans) (sm_80+)
// ----------------------------------------------------------------------------------
template <class Cfg, class TA, class TB, bool kMnA, bool kMnB, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    matmul_mma_kernel(const TA* __restrict__ A, long long lda, const TB* __restrict__ B, long long ldb, int M, int N,
                      int K, const typename Epi::Params ep) {
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES, T = Cfg::kThreads;
  constexpr int WTM = BM / Cfg::WARPS_M, WTN = BN / Cfg::WARPS_N;
  constexpr int MI = WTM / 16, NI = WTN / 8;
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  const uint32_t smem = (smem_u32(smem_raw) + 1023u) & ~1023u;

  int tm, tn;
  tile_coords<BM, BN, Cfg::GROUP_M>(M, N, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  int kt0, KT;
  split_range(K, kt0, KT);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / Cfg::WARPS_N, wn = warp % Cfg::WARPS_N;

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0.f;

  auto load_stage = [&](int kt, int slot) {
    const uint32_t sA = smem + slot * Cfg::kStageBytes;
    load_operand<BM, T, kMnA>(sA, A, lda, m0, M, (kt0 + kt) * kBK, K, tid);
    load_operand<BN, T, kMnB>(sA + kStageA, B, ldb, n0, N, (kt0 + kt) * kBK, K, tid);
  };
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();
  }

  // ldmatrix x4 lane → 8×8 matrix q = lane / 8, its row lane % 8.
  //  A fragments: q → (m + 8·(q&1), k + 8·(q>>1));  B fragments: q → (n + 8·(q>>1), k + 8·(q&1)).
  //  K-major tiles are read as stored (rows = outputs), MN-major ones with .trans (rows = k).
  const int q = lane >> 3, r8 = lane & 7;
  const int a_m = wm * WTM + (q & 1) * 8, a_k = (q >> 1) * 8;
  const int b_n = wn * WTN + (q >> 1) * 8, b_k = (q & 1) * 8;

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<S - 2>();
    __syncthreads();
    {
      const int nk = kt + S - 1;
      if (nk < KT) load_stage(nk, nk % S);
      cp_async_commit();
    }
    const uint32_t sA = smem + (kt % S) * Cfg::kStageBytes;
    const uint32_t sB = sA + kStageA;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t af[MI][4], bfr[NI / 2][4];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int m = a_m + mi * 16, k = kk * 16 + a_k;
        if constexpr (kMnA) ldmatrix_x4_trans(af[mi], sA + (m >> 6) * kMnBlockBytes + swz(k + r8, (m & 63) >> 3));
        else ldmatrix_x4(af[mi], sA + swz(m + r8, k >> 3));
      }
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        const int n = b_n + nj * 16, k = kk * 16 + b_k;
        if constexpr (kMnB) ldmatrix_x4_trans(bfr[nj], sB + (n >> 6) * kMnBlockBytes + swz(k + r8, (n & 63) >> 3));
        else ldmatrix_x4(bfr[nj], sB + swz(n + r8, k >> 3));
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
          mma_m16n8k16_bf16(acc[mi][ni], af[mi], bfr[ni / 2][(ni & 1) * 2], bfr[ni / 2][(ni & 1) * 2 + 1]);
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
    const int row = m0 + wm * WTM + mi * 16 + (lane >> 2);
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const int col = n0 + wn * WTN + ni * 8 + (lane & 3) * 2;
      if (col < N) {
        if (row < M) Epi::store2(ep, row, col, acc[mi][ni][0], acc[mi][ni][1]);
        if (row + 8 < M) Epi::store2(ep, row + 8, col, acc[mi][ni][2], acc[mi][ni][3]);
      }
    }
  }
}

// ----------------------------------------------------------------------------------
// General batched strided GEMM (SIMT, fp32): C_z(m,n) = Σ_k A_z(m,k) B_z(k,n)
// ----------------------------------------------------------------------------------
// Epi::Params must hold sam, sak (A's strides along m and k) and sbk, sbn; Epi::offsets(p, z, oa, ob)
// the element offsets of batch z; Epi::store1(p, z, m, n, v) stores (and applies the epilogue).
STRATA_DEV float to_float(bf16 v) { return __bfloat162float(v); }
STRATA_DEV float to_float(float v) { return v; }
STRATA_DEV float to_float(__half v) { return __half2float(v); }

constexpr int kGenTile = 64, kGenK = 16, kGenThreads = 256;

template <class TA, class TB, class Epi>
__global__ void __launch_bounds__(kGenThreads)
    matmul_general_kernel(const TA* __restrict__ A, const TB* __restrict__ B, int M, int N, int K,
                          const typename Epi::Params ep) {
  __shared__ float sa[kGenK][kGenTile + 4];
  __shared__ float sb[kGenK][kGenTile + 4];
  const int z = blockIdx.z, m0 = blockIdx.y * kGenTile, n0 = blockIdx.x * kGenTile;
  long long oa, ob;
  Epi::offsets(ep, z, oa, ob);
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += kGenK) {
#pragma unroll
    for (int i = 0; i < kGenTile * kGenK / kGenThreads; ++i) {
      const int e = tid + i * kGenThreads;
      const int kk = e / kGenTile, mm = e % kGenTile;  // consecutive threads: consecutive m (or n)
      const int k = k0 + kk;
      sa[kk][mm] = (k < K && m0 + mm < M) ? to_float(A[oa + (long long)(m0 + mm) * ep.sam + (long long)k * ep.sak]) : 0.f;
      sb[kk][mm] = (k < K && n0 + mm < N) ? to_float(B[ob + (long long)k * ep.sbk + (long long)(n0 + mm) * ep.sbn]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kGenK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = sa[kk][ty + 16 * i], b[i] = sb[kk][tx + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) Epi::store1(ep, z, m, n, acc[i][j]);
    }
}

// ----------------------------------------------------------------------------------
// Host side
// ----------------------------------------------------------------------------------
template <class TA, class TB, bool kMnA, bool kMnB>
inline const char* matmul_shape_error(const TA* A, long long lda, const TB* B, long long ldb, int M, int N, int K) {
  if (M < 0 || N < 0 || K < 0) return "matmul: negative size";
  if (!A || !B) return "matmul: null operand";
  if (((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(B)) & 15) != 0) return "matmul: operands must be 16-byte aligned";
  if (lda % 8 != 0 || ldb % 8 != 0) return "matmul: leading dimensions must be multiples of 8";
  if (kMnA ? M % 8 != 0 : K % 8 != 0) return "matmul: A's contiguous extent must be a multiple of 8";
  if (kMnB ? N % 8 != 0 : K % 8 != 0) return "matmul: B's contiguous extent must be a multiple of 8";
  return nullptr;
}

namespace detail {
// The warp-specialized kernel: tensor maps encoded on the host per launch (kernel parameters, so
// CUDA-graph capture records them); grid = min(output tiles, SMs / splits) × splits.
template <class Cfg, bool kMnA, bool kMnB, class Epi>
cudaError_t matmul_ws_launch(const bf16* A, long long lda, const bf16* B, long long ldb, int M, int N, int K,
                             const typename Epi::Params& ep, cudaStream_t stream, int splits) {
  CUtensorMap ma, mb;
  cudaError_t e = operand_map<Cfg::BM, kMnA>(&ma, A, lda, M, K);
  if (e != cudaSuccess) return e;
  e = operand_map<Cfg::BN, kMnB>(&mb, B, ldb, N, K);
  if (e != cudaSuccess) return e;
  constexpr int smem = Cfg::kSmemBytes;
  e = opt_in_smem<matmul_ws_kernel<Cfg, kMnA, kMnB, Epi>>(smem);
  if (e != cudaSuccess) return e;
  const long long tiles = (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN);
  if (tiles > 0x7fffffffLL) return cudaErrorInvalidValue;
  const int sms = gemm::detail::sm_count();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const long long per_split = std::max(1, sms / splits);
  const unsigned grid = (unsigned)std::min(tiles, per_split);
  matmul_ws_kernel<Cfg, kMnA, kMnB, Epi><<<dim3(grid, (unsigned)splits), dim3(Cfg::kThreads), smem, stream>>>(ma, mb, M, N, K, ep);
  return cudaGetLastError();
}

// The ping-pong kernel (PpConfig): tensor maps and grid as matmul_ws_launch's.
template <class Cfg, bool kMnA, bool kMnB, class Epi>
cudaError_t matmul_pp_launch(const bf16* A, long long lda, const bf16* B, long long ldb, int M, int N, int K,
                             const typename Epi::Params& ep, cudaStream_t stream, int splits) {
  CUtensorMap ma, mb;
  cudaError_t e = operand_map<Cfg::BM, kMnA>(&ma, A, lda, M, K);
  if (e != cudaSuccess) return e;
  e = operand_map<Cfg::BN, kMnB>(&mb, B, ldb, N, K);
  if (e != cudaSuccess) return e;
  constexpr int smem = Cfg::kSmemBytes;
  e = opt_in_smem<matmul_pp_kernel<Cfg, kMnA, kMnB, Epi>>(smem);
  if (e != cudaSuccess) return e;
  const long long tiles = (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN);
  if (tiles > 0x7fffffffLL) return cudaErrorInvalidValue;
  const int sms = gemm::detail::sm_count();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const long long per_split = std::max(1, sms / splits);
  const unsigned grid = (unsigned)std::min(tiles, per_split);
  matmul_pp_kernel<Cfg, kMnA, kMnB, Epi><<<dim3(grid, (unsigned)splits), dim3(Cfg::kThreads), smem, stream>>>(ma, mb, M, N, K, ep);
  return cudaGetLastError();
}
}  // namespace detail

template <class Cfg, class TA, class TB, bool kMnA, bool kMnB, class Epi>
cudaError_t matmul_launch(const TA* A, long long lda, const TB* B, long long ldb, int M, int N, int K,
                          const typename Epi::Params& ep, cudaStream_t stream = 0, int splits = 1) {
  if (matmul_shape_error<TA, TB, kMnA, kMnB>(A, lda, B, ldb, M, N, K) || splits < 1 || splits > 65535) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  if constexpr (Cfg::kWarpSpecialized) {
    // TMA reads bf16 only: an f32 operand (or an empty contraction, which has no tensor map) takes
    // the cp.async kernel with the same tiles
    if constexpr (std::is_same_v<TA, bf16> && std::is_same_v<TB, bf16>) {
      if (K > 0) {
        if constexpr (gemm::IsPingPong<Cfg>::value) return detail::matmul_pp_launch<Cfg, kMnA, kMnB, Epi>(A, lda, B, ldb, M, N, K, ep, stream, splits);
        else return detail::matmul_ws_launch<Cfg, kMnA, kMnB, Epi>(A, lda, B, ldb, M, N, K, ep, stream, splits);
      }
    }
    return matmul_launch<WgmmaConfig<Cfg::BM, Cfg::BN, (Cfg::STAGES < 3 ? 3 : Cfg::STAGES), false, Cfg::GROUP_M>, TA, TB, kMnA, kMnB, Epi>(
        A, lda, B, ldb, M, N, K, ep, stream, splits);
  } else {
    void (*kernel)(const TA*, long long, const TB*, long long, int, int, int, const typename Epi::Params);
    constexpr int smem = Cfg::kSmemBytes;
    cudaError_t e = cudaSuccess;  // the shared-memory opt-in: once per kernel (strata/base.cuh)
    if constexpr (Cfg::kWgmma) {
      kernel = matmul_wgmma_kernel<Cfg, TA, TB, kMnA, kMnB, Epi>;
      if (smem > 48 * 1024) e = opt_in_smem<matmul_wgmma_kernel<Cfg, TA, TB, kMnA, kMnB, Epi>>(smem);
    } else {
      kernel = matmul_mma_kernel<Cfg, TA, TB, kMnA, kMnB, Epi>;
      if (smem > 48 * 1024) e = opt_in_smem<matmul_mma_kernel<Cfg, TA, TB, kMnA, kMnB, Epi>>(smem);
    }
    if (e != cudaSuccess) return e;
    const long long tiles = (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN);
    if (tiles > 0x7fffffffLL) return cudaErrorInvalidValue;
    kernel<<<dim3((unsigned)tiles, (unsigned)splits), dim3(Cfg::kThreads), smem, stream>>>(A, lda, B, ldb, M, N, K, ep);
    return cudaGetLastError();
  }
}

// ---- deterministic split-K (few output tiles, a long contraction: small weights' gradients) ----
// Pass 1: split s of the contraction stores its fp32 partial tile to part[s][M][N] (EpiPartial);
// pass 2 sums the splits in order s = 0, 1, ... and applies Epi. The split count is a function of
// the shape alone (matmul_splits), so the same shapes give the same bits on any GPU.
struct EpiPartial {
  struct Params { float* part; int M, N; };
  __device__ __forceinline__ static void store2(const Params& p, int row, int col, float v0, float v1) {
    store_f32x2(p.part + ((long long)blockIdx.y * p.M + row) * p.N + col, v0, v1);
  }
};

template <class Epi>
__global__ void __launch_bounds__(256) matmul_split_reduce_kernel(const float* __restrict__ part, int splits, int M, int N,
                                                                   const typename Epi::Params ep) {
  const long long pairs = (long long)M * (N / 2), plane = (long long)M * N;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < pairs; i += (long long)gridDim.x * blockDim.x) {
    const int row = (int)(i / (N / 2)), col = (int)(i % (N / 2)) * 2;
    const float* p = part + (long long)row * N + col;
    float v0 = 0.f, v1 = 0.f;
    for (int s = 0; s < splits; ++s) {
      const float2 v = *reinterpret_cast<const float2*>(p + s * plane);
      v0 += v.x, v1 += v.y;
    }
    Epi::store2(ep, row, col, v0, v1);
  }
}

// Splits for an M×N output contracting over K: up to one wave of a 132-SM GPU (tiles · splits ≤
// 132), so only outputs of at most 66 tiles split; each split at least 8 k-tiles (512 of K); at
// most max_splits (the scratch holds max_splits·M·N fp32). compiler/kernels/matmul.ts sizes the
// scratch with the same rule.
constexpr int kSplitWave = 132;
template <class Cfg>
inline int matmul_splits(int M, int N, int K, int max_splits) {
  const long long tiles = std::max<long long>(1, (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN));
  const int want = (int)std::min<long long>(max_splits, kSplitWave / tiles);
  return std::max(1, std::min(want, ceil_div(K, kBK) / 8));
}

// C = Epi(A·Bᵀ) with the contraction cut into `splits` (1: the plain launch); `part` holds
// splits·M·N fp32 (N even).
template <class Cfg, class TA, class TB, bool kMnA, bool kMnB, class Epi>
cudaError_t matmul_launch_split(const TA* A, long long lda, const TB* B, long long ldb, int M, int N, int K,
                                const typename Epi::Params& ep, int splits, float* part, cudaStream_t stream = 0) {
  if (splits <= 1) return matmul_launch<Cfg, TA, TB, kMnA, kMnB, Epi>(A, lda, B, ldb, M, N, K, ep, stream);
  if (!part || N % 2 != 0) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  cudaError_t e = matmul_launch<Cfg, TA, TB, kMnA, kMnB, EpiPartial>(A, lda, B, ldb, M, N, K, {part, M, N}, stream, splits);
  if (e != cudaSuccess) return e;
  const long long pairs = (long long)M * (N / 2);
  const int blocks = (int)std::min<long long>(ceil_div<long long>(pairs, 256), 4096);
  matmul_split_reduce_kernel<Epi><<<blocks, 256, 0, stream>>>(part, splits, M, N, ep);
  return cudaGetLastError();
}

template <class TA, class TB, class Epi>
cudaError_t matmul_general_launch(const TA* A, const TB* B, int M, int N, int K, int batches, const typename Epi::Params& ep,
                                  cudaStream_t stream = 0) {
  if (M < 0 || N < 0 || K < 0 || batches < 0) return cudaErrorInvalidValue;
  if (M == 0 || N == 0 || batches == 0) return cudaSuccess;
  if (batches > 65535) return cudaErrorInvalidValue;
  const dim3 grid(ceil_div(N, kGenTile), ceil_div(M, kGenTile), batches);
  matmul_general_kernel<TA, TB, Epi><<<grid, kGenThreads, 0, stream>>>(A, B, M, N, K, ep);
  return cudaGetLastError();
}

}  // namespace
}  // namespace matmul
}  // namespace strata

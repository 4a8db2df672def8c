// gemm.cuh — header-only bf16 tensor-core GEMM for Hopper with an epilogue hook.
//
//   C[M,N] = epilogue( A[M,K] · W[N,K]^T )     ("linear"/NT: W is nn.Linear weight)
//   A: bf16 row-major, row stride lda (elements).  W: bf16 row-major [N,K], stride K.
//   Accumulation in fp32.  Requirements: M >= 1 (rows guarded), N % 8 == 0,
//   K % 8 == 0, K >= 8, lda % 8 == 0, lda >= K, A/W 16-byte aligned.
//
// Algorithm
//   * Tiling: each CTA computes a BM x BN output tile, marching over K in k-tiles of
//     BK = 64 bf16 (= 128 bytes per row).  CTAs are rasterized in groups of GROUP_M
//     (default 8) M-tiles
//     ("grouped launch order") so CTAs resident at the same time share A and W tiles
//     in L2.
//   * Shared memory: per pipeline stage one A tile [BM][64] and one W tile [BN][64],
//     both K-major.  Rows are 128 bytes = 8 chunks of 16 bytes; chunk c of row r is
//     stored at chunk (c ^ (r & 7)) ("128B swizzle").  This is exactly the layout the
//     Hopper wgmma descriptor calls SWIZZLE_128B (tile base 1024-byte aligned), and it
//     also makes ldmatrix (8 rows x 16 bytes per phase) and the cp.async fills
//     bank-conflict free.
//   * Global->shared: cp.async.cg 16-byte copies, zero-filled (src-size 0) for rows >= M
//     / >= N and k >= K, so ragged edges need no special code in the main loop.
//   * Pipeline: STAGES-deep ring of k-tiles; cp.async groups keep loads for future
//     k-tiles in flight while tensor cores work on the current one.
//   * Two compute back-ends (selected by the Config type):
//       MmaConfig   : mma.sync.m16n8k16 + ldmatrix.x4, WARPS_M x WARPS_N warps, each
//                     owning a (BM/WARPS_M) x (BN/WARPS_N) warp tile.  Portable fallback
//                     (sm_80+).  One __syncthreads per k-tile.
//       WgmmaConfig : sm_90a warpgroup MMA (wgmma.mma_async m64nBNk16) reading both
//                     operands straight from the swizzled smem via descriptors.  BM/64
//                     warpgroups, each owning 64 rows x BN cols; every thread also
//                     issues cp.async (no warp specialization, no TMA).  Per k-tile:
//                     wait cp.async -> fence.proxy.async -> __syncthreads -> 4 wgmma
//                     (k16 steps = +32 B on the descriptor address) -> commit -> issue
//                     the refill cp.async -> wait_group 1.  One wgmma batch stays in
//                     flight across the barrier, so the slot refilled is the one read
//                     two k-tiles ago (prefetch distance STAGES-2).
//                     Needs -gencode arch=compute_90a,code=sm_90a.
//       WsConfig    : sm_90a warp-specialized persistent kernel (gemm_ws_kernel).  A
//                     producer warpgroup (setmaxnreg.dec 40; one thread issues TMA boxes
//                     of A [BM x 64] and W [BN x 64], 128B swizzle, zero fill past the
//                     edges) fills a STAGES-deep ring; full[s] completes on transaction
//                     bytes, empty[s] on one arrive per consumer warp.  Two consumer
//                     warpgroups (setmaxnreg.inc 232) each own BM/2 rows x BN, keep one
//                     wgmma batch in flight and release the previous slot after
//                     wgmma.wait_group 1.  grid = min(#tiles, #SMs); each CTA walks
//                     tiles blockIdx.x, +gridDim.x, ... in the grouped order, so the
//                     epilogue of one tile overlaps the TMA loads of the next.  Tensor
//                     maps are encoded on the host per launch (A with row stride lda)
//                     and passed as __grid_constant__ parameters (CUDA-graph safe).
//                     CLUSTER_M = 2 pairs vertically adjacent tiles in a 2-CTA cluster
//                     that multicasts W halves (correct, but measured 2x slower: see
//                     docs/PERF-NOTES.md).
//     Measured on H200 (M=16384 LLM shapes, tests/gpu/gemm_test.cu): WsConfig<128,256,4>
//     is the fastest (0.78-0.97x cuBLAS), ahead of WgmmaConfig<256,128,4> (0.62-0.81x)
//     on all six shapes.  DefaultWgmmaConfig (what the code generator still renders)
//     stays WgmmaConfig<256,128,4>; DefaultWsConfig = WsConfig<128,256,4>.
//   * Epilogue hook: accumulators are handed to Epi::store2(params, row, col, v0, v1)
//     for two horizontally adjacent outputs (col even, col+1 < N guaranteed, row < M
//     guaranteed).  Epi is a plain struct the code generator emits:
//
//       struct MyEpi {
//         struct Params { __nv_bfloat16* out; long long ldo; const float* bias; };
//         __device__ static void store2(const Params& p, int row, int col, float v0, float v1) {
//           v0 = strata::relu2(v0 + p.bias[col]); v1 = strata::relu2(v1 + p.bias[col + 1]);
//           strata::store_bf16x2(p.out + (long long)row * p.ldo + col, v0, v1);
//         }
//       };
//
//     Ready-made: EpiStoreBF16, EpiStoreF32, EpiBiasResidualBF16 (out = acc + bias + res).
//   * Staged epilogue (PpConfig<…, STAGED_EPI = true>): the accumulators go through shared memory
//     and leave row-coalesced; an epilogue with the optional 4-wide interface (pre4 / col4 /
//     store4, see EpiHasVec4; EpiStoreBF16 and EpiBiasResidualBF16 have it) loads its residual 16
//     chunks a thread at a time before the first store. H200, M = 16384, bias + residual: 0.96–1.04×
//     cuBLAS + a separate pass on the 8B hybrid's six shapes, 1.00–1.30× faster than the fragment
//     store (tests/gpu/gemm_test.cu "+epi" rows); with a plain store it is 1–4% slower, and a
//     store2-only epilogue gains little (its loads stay one pair at a time: the store may alias them).
//
// Host API
//   template <class Cfg, class Epi>
//   cudaError_t gemm_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K,
//                           const typename Epi::Params& ep, cudaStream_t stream = 0);
//   const char* gemm_shape_error(A, lda, W, M, N, K)   // nullptr if the shape is OK
//   (WsConfig launches also return an error when the driver rejects the tensor maps.)
#pragma once

#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/ptx.cuh"
#include "strata/tma.cuh"

namespace strata {
namespace gemm {

using bf16 = __nv_bfloat16;

constexpr int kBK = 64;          // k-tile depth in elements (one 128-byte swizzle row)
constexpr int kRowBytes = 128;   // bytes per smem tile row

// ----------------------------------------------------------------------------------
// Configurations
// ----------------------------------------------------------------------------------
// GROUP_M: CTA rasterization group height in M-tiles (L2 reuse of W tiles).
template <int BM_, int BN_, int STAGES_, int WARPS_M_, int WARPS_N_, int GROUP_M_ = 8>
struct MmaConfig {
  static constexpr bool kWgmma = false;
  static constexpr bool kWarpSpecialized = false;
  static constexpr int GROUP_M = GROUP_M_;
  static constexpr int BM = BM_, BN = BN_, STAGES = STAGES_;
  static constexpr int WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int kThreads = 32 * WARPS_M * WARPS_N;
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kSmemBytes = STAGES * kStageBytes + 1024;  // +1024: alignment slack
  static_assert(BM % (16 * WARPS_M) == 0, "warp tile M must be a multiple of 16");
  static_assert(BN % (16 * WARPS_N) == 0, "warp tile N must be a multiple of 16");
  static_assert(STAGES >= 2, "need at least 2 stages");
};

// kRetireEach = false: keep one wgmma batch in flight across the barrier, prefetch
//                      distance STAGES-2 (default).
// kRetireEach = true : retire every batch before the barrier (wait_group 0), prefetch
//                      distance STAGES-1.
template <int BM_, int BN_, int STAGES_, bool kRetireEach_ = false, int GROUP_M_ = 8>
struct WgmmaConfig {
  static constexpr bool kWgmma = true;
  static constexpr bool kWarpSpecialized = false;
  static constexpr int GROUP_M = GROUP_M_;
  static constexpr bool kRetireEach = kRetireEach_;
  static constexpr int kPrefetch = kRetireEach ? STAGES_ - 1 : STAGES_ - 2;
  static constexpr int BM = BM_, BN = BN_, STAGES = STAGES_;
  static constexpr int kWarpGroups = BM / 64;
  static constexpr int kThreads = 128 * kWarpGroups;
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kSmemBytes = STAGES * kStageBytes + 1024;
  static_assert(BM % 64 == 0, "BM must be a multiple of 64 (one warpgroup per 64 rows)");
  static_assert(BN == 64 || BN == 128 || BN == 256, "BN must be 64, 128 or 256");
  static_assert(STAGES >= 3, "wgmma pipeline needs >= 3 stages");
};

// Warp-specialized persistent wgmma (sm_90a): TMA producer warpgroup + 2 consumer warpgroups,
// each consumer owning BM/2 rows x BN (BM/128 m64nBN wgmmas per k16 step), STAGES-deep ring
// of (A,W) k-tiles completed on mbarriers.  grid = min(#tiles, #SMs), tiles walked in the
// grouped (GROUP_M) order.  CLUSTER_M = 2: clusters of two CTAs on vertically adjacent tiles
// (same W columns); each CTA loads half of the W tile and multicasts it to both.
template <int BM_, int BN_, int STAGES_, int GROUP_M_ = 8, int CLUSTER_M_ = 1>
struct WsConfig {
  static constexpr bool kWgmma = true;
  static constexpr bool kWarpSpecialized = true;
  static constexpr int GROUP_M = GROUP_M_;
  static constexpr int BM = BM_, BN = BN_, STAGES = STAGES_;
  static constexpr int kCluster = CLUSTER_M_;          // CTAs per cluster along M (1 or 2)
  static constexpr int kConsumers = 2;                 // consumer warpgroups
  static constexpr int kWgRows = BM / kConsumers;      // rows of the tile per consumer
  static constexpr int kMTiles = kWgRows / 64;         // m64 wgmmas per k16 step per consumer
  static constexpr int kThreads = 128 * (kConsumers + 1);
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;  // 40 + 2*232 = 504 <= 512 (x128)
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  static constexpr int kBarrierBytes = 2 * STAGES * 8;
  static constexpr int kSmemBytes = STAGES * kStageBytes + kBarrierBytes + 1024;
  static_assert(BM == 128 || BM == 256, "BM must be 128 or 256 (2 consumer warpgroups of 64 or 128 rows)");
  static_assert(BN == 64 || BN == 128 || BN == 256, "BN must be 64, 128 or 256 (one TMA box <= 256 rows)");
  static_assert(kMTiles * BN / 2 <= 128, "at most 128 fp32 accumulators per consumer thread");
  static_assert(STAGES >= 2, "need at least 2 stages");
  static_assert(kCluster == 1 || kCluster == 2, "CLUSTER_M must be 1 or 2");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory per block exceeds 227 KB");
};

// Ping-pong warp-specialized persistent wgmma (sm_90a; see gemm_pp_kernel): a TMA producer warpgroup and two consumer warpgroups that each own a whole
// BM × BN tile (BM/64 m64nBN wgmmas per k16 step, at most 128 accumulators a thread) and take this
// CTA's tiles in turn, so one consumer's epilogue runs under the other's mainloop.
//
// STAGED_EPI = true: the staged epilogue (gemm_pp_kernel): the consumer writes its accumulators
// in parts of 64 rows × min(BN, 128) columns (fp32, 32 KB for BN >= 128) to one shared-memory
// buffer the two consumers take in turn (sfree[2] mbarriers), then stores them row-coalesced, four
// columns a thread; an epilogue with the 4-wide interface (EpiHasVec4: pre4 / col4 / store4, e.g.
// EpiBiasResidualBF16) loads its per-element operand (the residual) for the whole tile, 8 bytes a
// load, before the first store. Epilogues with store2 alone get the same staging, a pair at a time.
template <int BM_, int BN_, int STAGES_, int GROUP_M_ = 8, bool STAGED_EPI_ = false>
struct PpConfig {
  static constexpr bool kWgmma = true;
  static constexpr bool kWarpSpecialized = true;
  static constexpr bool kPingPong = true;
  static constexpr bool kStagedEpi = STAGED_EPI_;
  static constexpr int GROUP_M = GROUP_M_;
  static constexpr int BM = BM_, BN = BN_, STAGES = STAGES_;
  static constexpr int kCluster = 1;
  static constexpr int kConsumers = 2;
  static constexpr int kMTiles = BM / 64;  // m64 wgmmas per k16 step, per consumer (its whole tile)
  static constexpr int kThreads = 128 * (kConsumers + 1);
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr int kStageBytes = (BM + BN) * kRowBytes;
  // full[S], empty[S], turn[2] (+ sfree[2] with the staged epilogue)
  static constexpr int kBarrierBytes = (2 * STAGES + (kStagedEpi ? 4 : 2)) * 8;
  static constexpr int kEpiCols = BN < 128 ? BN : 128;  // columns of one staged part
  static constexpr int kEpiOffset = STAGES * kStageBytes + ((kBarrierBytes + 127) / 128) * 128;
  static constexpr int kEpiBytes = 64 * kEpiCols * 4;   // one part, fp32
  static constexpr int kSmemBytes =
      kStagedEpi ? kEpiOffset + kEpiBytes + 1024 : STAGES * kStageBytes + kBarrierBytes + 1024;
  static_assert(BM == 64 || BM == 128, "BM must be 64 or 128 (one consumer warpgroup holds the tile)");
  static_assert(BN == 64 || BN == 128 || BN == 256, "BN must be 64, 128 or 256 (one TMA box <= 256 rows)");
  static_assert(kMTiles * BN / 2 <= 128, "at most 128 fp32 accumulators per consumer thread");
  static_assert(STAGES >= 2, "need at least 2 stages");
  static_assert(kSmemBytes <= 227 * 1024, "shared memory per block exceeds 227 KB");
};
// Is Cfg a ping-pong config (PpConfig)?
template <class Cfg, class = void>
struct IsPingPong { static constexpr bool value = false; };
template <class Cfg>
struct IsPingPong<Cfg, decltype(void(Cfg::kPingPong))> { static constexpr bool value = Cfg::kPingPong; };

// Sensible defaults (benchmarked on H200, see tests/gpu/gemm_test.cu).
using DefaultMmaConfig = MmaConfig<128, 256, 4, 2, 4>;
using DefaultWgmmaConfig = WgmmaConfig<256, 128, 4>;  // 4 warpgroups x m64n128
using DefaultWsConfig = WsConfig<128, 256, 4>;        // producer + 2 consumers x m64n256, persistent

// ----------------------------------------------------------------------------------
// Ready-made epilogues
// ----------------------------------------------------------------------------------
struct EpiStoreBF16 {
  struct Params { bf16* out; long long ldo; };
  __device__ __forceinline__ static void store2(const Params& p, int row, int col, float v0, float v1) {
    store_bf16x2(p.out + (long long)row * p.ldo + col, v0, v1);
  }
  struct Pre {};
  struct Col {};
  static bool vec4_ok(const Params& p) { return ((reinterpret_cast<uintptr_t>(p.out) & 7) | (p.ldo & 3)) == 0; }
  __device__ __forceinline__ static Pre pre4(const Params&, int, int) { return {}; }
  __device__ __forceinline__ static Col col4(const Params&, int) { return {}; }
  __device__ __forceinline__ static void store4(const Params& p, int row, int col, float4 v, const Col&, const Pre&) {
    *reinterpret_cast<uint2*>(p.out + (long long)row * p.ldo + col) = make_uint2(pack_bf16x2(v.x, v.y), pack_bf16x2(v.z, v.w));
  }
};

struct EpiStoreF32 {
  struct Params { float* out; long long ldo; };
  __device__ __forceinline__ static void store2(const Params& p, int row, int col, float v0, float v1) {
    store_f32x2(p.out + (long long)row * p.ldo + col, v0, v1);
  }
};

// out = acc + bias[col] (optional, may be nullptr) + residual[row, col]; bf16 store.
// out may alias residual (in-place residual add): each element is read then written
// by the same thread.
struct EpiBiasResidualBF16 {
  struct Params { bf16* out; long long ldo; const bf16* residual; long long ldr; const bf16* bias; };
  __device__ __forceinline__ static void store2(const Params& p, int row, int col, float v0, float v1) {
    if (p.bias) { const float2 b = load_bf16x2(p.bias + col); v0 += b.x; v1 += b.y; }
    const float2 r = load_bf16x2(p.residual + (long long)row * p.ldr + col);
    store_bf16x2(p.out + (long long)row * p.ldo + col, v0 + r.x, v1 + r.y);
  }
  // 4-wide: the staged epilogue loads every residual chunk of its tile before the first store (an
  // in-place residual, out == residual, is still read before it is written: same thread, same chunk)
  using Pre = uint2;
  using Col = float4;
  static bool vec4_ok(const Params& p) {
    return ((reinterpret_cast<uintptr_t>(p.out) | reinterpret_cast<uintptr_t>(p.residual) | reinterpret_cast<uintptr_t>(p.bias)) & 7) == 0 &&
           ((p.ldo | p.ldr) & 3) == 0;
  }
  __device__ __forceinline__ static Pre pre4(const Params& p, int row, int col) {
    return *reinterpret_cast<const uint2*>(p.residual + (long long)row * p.ldr + col);
  }
  __device__ __forceinline__ static Col col4(const Params& p, int col) {
    if (!p.bias) return make_float4(0.f, 0.f, 0.f, 0.f);
    const uint2 b = __ldg(reinterpret_cast<const uint2*>(p.bias + col));
    const float2 lo = unpack_bf16x2(b.x), hi = unpack_bf16x2(b.y);
    return make_float4(lo.x, lo.y, hi.x, hi.y);
  }
  __device__ __forceinline__ static void store4(const Params& p, int row, int col, float4 v, const Col& b, const Pre& r) {
    v.x += b.x; v.y += b.y; v.z += b.z; v.w += b.w;
    const float2 lo = unpack_bf16x2(r.x), hi = unpack_bf16x2(r.y);
    *reinterpret_cast<uint2*>(p.out + (long long)row * p.ldo + col) =
        make_uint2(pack_bf16x2(v.x + lo.x, v.y + lo.y), pack_bf16x2(v.z + hi.x, v.w + hi.y));
  }
};

// The optional 4-wide interface the staged epilogue uses (col % 4 == 0, col + 4 <= N, row < M):
//   using Pre = …; using Col = …;                   per-element operands (loaded early), per-column ones
//   static bool vec4_ok(const Params&)              host: pointers and strides allow it
//   __device__ static Col col4(const Params&, int col)         once a tile (bias)
//   __device__ static Pre pre4(const Params&, int row, int col) every chunk of a part before its stores
//   __device__ static void store4(const Params&, int row, int col, float4 acc, const Col&, const Pre&)
template <class Epi, class = void>
struct EpiHasVec4 { static constexpr bool value = false; };
template <class Epi>
struct EpiHasVec4<Epi, decltype(void(&Epi::store4))> { static constexpr bool value = true; };
// Element j (0..3, a constant) of four bf16 packed in a uint2, as float (exactly __bfloat162float).
__device__ __forceinline__ float bf16x4_at(uint2 u, int j) {
  const uint32_t w = j < 2 ? u.x : u.y;
  return __uint_as_float((j & 1) ? (w & 0xffff0000u) : (w << 16));
}
template <class Epi, bool kVec>
struct EpiPreOf { using type = int; using col = int; };
template <class Epi>
struct EpiPreOf<Epi, true> { using type = typename Epi::Pre; using col = typename Epi::Col; };

// ----------------------------------------------------------------------------------
// Tiling helpers
// ----------------------------------------------------------------------------------
namespace detail {

// PTX wrappers (cp.async, ldmatrix, mma.sync, wgmma): strata/ptx.cuh.

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in a 128B-swizzled tile.
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  return (uint32_t)(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

// Grouped rasterization: consecutive CTAs walk GROUP M-tiles down, then step right, so
// the CTAs resident at one time share a few A row-panels and W column-panels in L2.
template <int BM, int BN, int kGroupM>
__device__ __forceinline__ void tile_coords_of(int pid, int M, int N, int& tm, int& tn) {
  const int grid_m = ceil_div(M, BM), grid_n = ceil_div(N, BN);
  const int per_group = kGroupM * grid_n;
  const int group = pid / per_group;
  const int first_m = group * kGroupM;
  const int gsize = min(grid_m - first_m, kGroupM);
  const int local = pid - group * per_group;
  tm = first_m + local % gsize;
  tn = local / gsize;
}
template <int BM, int BN, int kGroupM>
__device__ __forceinline__ void tile_coords(int M, int N, int& tm, int& tn) {
  tile_coords_of<BM, BN, kGroupM>(blockIdx.x, M, N, tm, tn);
}

// Issue the cp.async copies of one ROWS x 64 k-tile (rows row0.., k k0..) into a
// swizzled smem tile.  Thread t copies chunk (t & 7) of rows (t >> 3) + i*THREADS/8.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(uint32_t s_tile, const bf16* __restrict__ g, int ld, int row0,
                                          int row_limit, int k0, int K, int tid) {
  static_assert(THREADS % 64 == 0, "row step must keep (row & 7) fixed per thread");
  constexpr int kIters = (ROWS * 8 + THREADS - 1) / THREADS;
  constexpr int kRowStep = THREADS / 8;
  const int c = tid & 7;
  const int r = tid >> 3;
  const int kcol = k0 + c * 8;
  const bool k_ok = kcol < K;  // K % 8 == 0, so a chunk is entirely in or out
  const bf16* src = g + (long long)(row0 + r) * ld + kcol;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int row = r + i * kRowStep;
    if ((ROWS * 8) % THREADS != 0 && row >= ROWS) break;  // ragged last iteration
    const bool ok = k_ok && (row0 + row < row_limit);
    cp_async_16(s_tile + swz(row, c), ok ? (const void*)(src + (long long)i * kRowStep * ld) : (const void*)g, ok);
  }
}

}  // namespace detail

// ----------------------------------------------------------------------------------
// Kernel 1: mma.sync + ldmatrix, multi-stage cp.async pipeline (sm_80+ fallback)
// ----------------------------------------------------------------------------------
template <class Cfg, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    gemm_mma_kernel(const bf16* __restrict__ A, int lda, const bf16* __restrict__ W, int M, int N, int K,
                    const typename Epi::Params ep) {
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES, T = Cfg::kThreads;
  constexpr int WTM = BM / Cfg::WARPS_M, WTN = BN / Cfg::WARPS_N;  // warp tile
  constexpr int MI = WTM / 16, NI = WTN / 8;                        // mma tiles per warp
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  const uint32_t smem = (smem_u32(smem_raw) + 1023u) & ~1023u;

  int tm, tn;
  tile_coords<BM, BN, Cfg::GROUP_M>(M, N, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  const int KT = ceil_div(K, kBK);
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
    load_tile<BM, T>(sA, A, lda, m0, M, kt * kBK, K, tid);
    load_tile<BN, T>(sA + kStageA, W, K, n0, N, kt * kBK, K, tid);
  };

  // Prologue: S-1 k-tiles in flight.  Always commit (possibly empty) groups so the
  // wait_group arithmetic below is uniform.
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();
  }

  // ldmatrix lane -> (row, chunk) mapping, see PTX fragment layouts of m16n8k16:
  //  A x4: matrices (rows 0-7,k0-7) (rows 8-15,k0-7) (rows 0-7,k8-15) (rows 8-15,k8-15)
  //  W x4: matrices (n 0-7,k0-7) (n 0-7,k8-15) (n 8-15,k0-7) (n 8-15,k8-15)
  const int a_row = wm * WTM + (lane & 15), a_chk = lane >> 4;
  const int b_row = wn * WTN + (lane & 7) + ((lane >> 4) << 3), b_chk = (lane >> 3) & 1;

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<S - 2>();  // k-tile kt has landed (for this thread) ...
    __syncthreads();         // ... for all threads; and everyone is done with slot kt-1
    {
      const int nk = kt + S - 1;
      if (nk < KT) load_stage(nk, nk % S);  // refill the slot consumed at kt-1
      cp_async_commit();
    }
    const uint32_t sA = smem + (kt % S) * Cfg::kStageBytes;
    const uint32_t sB = sA + kStageA;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t af[MI][4], bfr[NI / 2][4];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) ldmatrix_x4(af[mi], sA + swz(a_row + mi * 16, kk * 2 + a_chk));
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) ldmatrix_x4(bfr[nj], sB + swz(b_row + nj * 16, kk * 2 + b_chk));
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
          mma_m16n8k16_bf16(acc[mi][ni], af[mi], bfr[ni / 2][(ni & 1) * 2], bfr[ni / 2][(ni & 1) * 2 + 1]);
    }
  }
  cp_async_wait<0>();  // only empty groups remain; drain before exit

  // Epilogue: c0,c1 at (row, col..col+1); c2,c3 at (row+8, col..col+1).
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
// Kernel 2: wgmma (sm_90a), operands from swizzled smem filled by cp.async
// ----------------------------------------------------------------------------------
template <class Cfg, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    gemm_wgmma_kernel(const bf16* __restrict__ A, int lda, const bf16* __restrict__ W, int M, int N, int K,
                      const typename Epi::Params ep) {
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES, T = Cfg::kThreads;
  constexpr int NREG = BN / 2;  // fp32 accumulators per thread for m64nBN
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  const uint32_t smem = (smem_u32(smem_raw) + 1023u) & ~1023u;  // SWIZZLE_128B needs 1 KB alignment

  int tm, tn;
  tile_coords<BM, BN, Cfg::GROUP_M>(M, N, tm, tn);
  const int m0 = tm * BM, n0 = tn * BN;
  const int KT = ceil_div(K, kBK);
  const int tid = threadIdx.x;
  const int wg = tid >> 7;  // warpgroup -> rows [64*wg, 64*wg+64) of the CTA tile

  float acc[NREG];
#pragma unroll
  for (int i = 0; i < NREG; ++i) acc[i] = 0.f;

  auto load_stage = [&](int kt, int slot) {
    const uint32_t sA = smem + slot * Cfg::kStageBytes;
    load_tile<BM, T>(sA, A, lda, m0, M, kt * kBK, K, tid);
    load_tile<BN, T>(sA + kStageA, W, K, n0, N, kt * kBK, K, tid);
  };

  // A slot may only be refilled once the wgmma that read it has retired.  With one
  // batch kept in flight that is the slot read two k-tiles ago (prefetch distance S-2).
  constexpr int D = Cfg::kPrefetch;
#pragma unroll
  for (int s = 0; s < D; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();
  }

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<D - 1>();  // k-tile kt landed (this thread's copies)
    fence_proxy_async();     // make generic-proxy smem writes visible to wgmma (async proxy)
    __syncthreads();         // all copies visible; all warpgroups retired wgmma kt+D-S
    const uint32_t sA = smem + (kt % S) * Cfg::kStageBytes + wg * 64 * kRowBytes;
    const uint32_t sB = smem + (kt % S) * Cfg::kStageBytes + kStageA;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk)
      Wgmma<BN>::mma(acc, wgmma_desc_sw128(sA + kk * 32), wgmma_desc_sw128(sB + kk * 32));
    wgmma_commit();
    {  // issue the refill after the MMAs so the tensor cores are fed first
      const int nk = kt + D;
      if (nk < KT) load_stage(nk, nk % S);  // slot (kt+D-S) % S, already retired
      cp_async_commit();
    }
    if constexpr (Cfg::kRetireEach) wgmma_wait<0>();
    else wgmma_wait<1>();  // batch kt-1 retired; batch kt may still run
  }
  wgmma_wait<0>();
  cp_async_wait<0>();

  // Accumulator layout of m64nN (per warp: 16 rows): acc[4i+0,1] -> (r, 8i + 2q + {0,1}),
  // acc[4i+2,3] -> (r+8, same cols) with r = 16*warp + lane/4, q = lane%4.
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
// Kernel 3: warp-specialized persistent wgmma (sm_90a): TMA producer, mbarrier ring
// ----------------------------------------------------------------------------------
// Warpgroup 0 (producer) gives its registers back (setmaxnreg.dec) and one thread of it
// walks this CTA's tiles (tile = blockIdx.x, += gridDim.x, grouped order) issuing, per
// k-tile, one TMA box of A [BM x 64] and one of W [BN x 64] into ring slot s (128B swizzle:
// the layout the wgmma descriptors read), completing on full[s] by transaction bytes
// (out-of-bounds rows / k are zero-filled and still counted).  It waits on empty[s] before
// refilling.  Warpgroups 1..2 (consumers, setmaxnreg.inc) wait on full[s], issue the
// wgmmas of their BM/2 rows, keep one batch in flight and release the slot of the
// previous k-tile (one arrive per consumer warp on empty[s]) once wgmma.wait_group 1 says
// its batch retired.  After the last k-tile they run the epilogue hook from registers
// while the producer already fills the ring for the next tile.
template <class Cfg, class Epi>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    gemm_ws_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmW, int M, int N,
                   int K, const typename Epi::Params ep) {
#if defined(STRATA_HAS_WGMMA)
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES;
  constexpr int NREG = BN / 2;  // fp32 accumulators per thread per m64nBN
  constexpr int MT = Cfg::kMTiles;
  constexpr uint32_t kStageA = BM * kRowBytes;
  constexpr int kConsumerWarps = 4 * Cfg::kConsumers;
  constexpr int CL = Cfg::kCluster;
  constexpr uint32_t kHalfB = (BN / CL) * kRowBytes;  // bytes of W this CTA loads per k-tile

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* const tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(tiles + S * Cfg::kStageBytes);
  uint64_t* const empty = full + S;

  // Work units: with clusters, a cluster walks pairs of vertically adjacent tiles (one each);
  // a CTA whose tile lies below M still loads and multicasts its half of W (its A box is all
  // zero fill) and stores nothing.
  const int grid_m = ceil_div(M, BM * CL), grid_n = ceil_div(N, BN);
  const int num_units = grid_m * grid_n;
  const int KT = ceil_div(K, kBK);
  const int wg = threadIdx.x >> 7;
  const uint32_t rank = CL > 1 ? cluster_ctarank() : 0;
  const int first_unit = blockIdx.x / CL, unit_step = gridDim.x / CL;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&tmA);
    prefetch_tensormap(&tmW);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], kConsumerWarps * CL);  // the consumers of every CTA it multicasts to
    }
    fence_mbarrier_init();
  }
  if constexpr (CL > 1) cluster_sync();  // peers' barriers initialised before any multicast
  else __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    setmaxnreg_dec<Cfg::kProducerRegs>();
    if (threadIdx.x == 0) {
      int slot = 0;
      uint32_t phase = 0;
      for (int unit = first_unit; unit < num_units; unit += unit_step) {
        int tm, tn;
        tile_coords_of<BM * CL, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
        const int m0 = (tm * CL + (int)rank) * BM, n0 = tn * BN;
        for (int kt = 0; kt < KT; ++kt) {
          mbarrier_wait_parity(&empty[slot], phase ^ 1);  // fresh barrier: parity 1 counts as done
          uint8_t* st = tiles + slot * Cfg::kStageBytes;
          mbarrier_arrive_expect_tx(&full[slot], Cfg::kStageBytes);  // A + all of W (halves from each CTA)
          tma_load_2d(st, &tmA, &full[slot], kt * kBK, m0);
          if constexpr (CL > 1)
            tma_load_2d_multicast(st + kStageA + rank * kHalfB, &tmW, &full[slot], kt * kBK, n0 + (int)rank * (BN / CL),
                                  (uint16_t)((1u << CL) - 1));
          else
            tma_load_2d(st + kStageA, &tmW, &full[slot], kt * kBK, n0);
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
    // slot free again: tell this CTA's producer and, with clusters, every peer that multicasts into it
    auto release = [&](int s) {
      if constexpr (CL > 1) {
#pragma unroll
        for (int c = 0; c < CL; ++c) mbarrier_arrive_cluster(&empty[s], (uint32_t)c);
      } else {
        mbarrier_arrive(&empty[s]);
      }
    };
    int slot = 0;
    uint32_t phase = 0;
    for (int unit = first_unit; unit < num_units; unit += unit_step) {
      int tm, tn;
      tile_coords_of<BM * CL, BN, Cfg::GROUP_M>(unit, M, N, tm, tn);
      const int m0 = (tm * CL + (int)rank) * BM, n0 = tn * BN;
      float acc[MT][NREG];
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int i = 0; i < NREG; ++i) acc[t][i] = 0.f;

      int prev = 0;
      for (int kt = 0; kt < KT; ++kt) {
        mbarrier_wait_parity(&full[slot], phase);
        const uint32_t sA = smem + slot * Cfg::kStageBytes + cw * Cfg::kWgRows * kRowBytes;
        const uint32_t sB = smem + slot * Cfg::kStageBytes + kStageA;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk)
#pragma unroll
          for (int t = 0; t < MT; ++t)
            Wgmma<BN>::mma(acc[t], wgmma_desc_sw128(sA + t * 64 * kRowBytes + kk * 32), wgmma_desc_sw128(sB + kk * 32));
        wgmma_commit();
        wgmma_wait<1>();  // the batch of k-tile kt-1 retired: its slot may be refilled
        if (kt > 0 && lane == 0) release(prev);
        prev = slot;
        if (++slot == S) { slot = 0; phase ^= 1; }
      }
      wgmma_wait<0>();
      if (lane == 0) release(prev);

      // Accumulator layout of m64nN (per warp: 16 rows): acc[4i+0,1] -> (r, 8i + 2q + {0,1}),
      // acc[4i+2,3] -> (r+8, same cols) with r = 16*warp + lane/4, q = lane%4.
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
  // No CTA may leave while a peer can still arrive on its barriers or multicast into it.
  if constexpr (CL > 1) {
    __syncwarp();
    cluster_sync();
  }
#else
  __trap();
#endif
}

// ----------------------------------------------------------------------------------
// Kernel 4: ping-pong warp-specialized persistent wgmma (sm_90a, PpConfig)
// ----------------------------------------------------------------------------------
// Validated on the H200 (tests/gpu/gemm_test.cu, 2026-11-30): PpConfig<128,128,6> runs the 8B
// hybrid's M = 16384 GEMMs at 0.89–1.17× cuBLAS, 1.01–1.17× WsConfig<128,256,4> on five of the six
// shapes and 0.95× on K = 16384; the code generator's wave model (compiler/kernels/tiles.ts)
// chooses between them per shape.
// The producer (one thread of warpgroup 0) walks this CTA's tiles u_0, u_1, … (blockIdx.x,
// +gridDim.x, grouped order) and fills ONE STAGES-deep ring with their k-tiles in that order, so
// local tile i's k-tiles sit at ring positions i·KT … i·KT + KT − 1 (slot = position % STAGES,
// the fill's parity = (position / STAGES) & 1). Consumer warpgroup c (c = 0, 1) takes the local
// tiles i ≡ c (mod 2) and the whole BM × BN of each: it waits on full[slot] of its positions,
// keeps one wgmma batch in flight, releases the previous slot (4 arrivals, one per warp: empty[s]
// counts one warpgroup) and, after its last k-tile, releases that slot too and runs the epilogue —
// while the other consumer's mainloop uses the tensor cores. Every slot is released before its
// consumer's epilogue, so the producer (which needs position p − STAGES released to fill p)
// never waits on an epilogue. The mainloops take turns (turn[c] completes when the other
// consumer has waited on every position before this consumer's next tile): an mbarrier parity
// wait cannot tell phase k from k + 2, so a consumer must never wait on a position more than one
// fill ahead of its slot's barrier — it would read the slot's older contents.
//
// Staged epilogue (Cfg::kStagedEpi): after its mainloop a consumer waits until the other
// consumer's previous epilogue has read the staging buffer out (sfree[c] completes once per
// epilogue of consumer c: 4 arrivals, one per warp), and then per part (64 rows × kEpiCols) writes
// its accumulators there (fp32; 16-byte chunk k of row r at k ^ 2(r & 3): the fragment's float2
// stores and the row reads are both conflict-free), issues the part's per-element operand loads
// (kVec: Epi::pre4, 16 per thread, all before the first store), syncs its 128 threads (named
// barrier 1 + c) and stores the part row by row, 4 columns a thread (a warp: 128 contiguous
// columns). Consumer
// c's epilogue j waits for the other's epilogue before it (local tile i − 1); that one cannot lag
// two behind, since the other consumer arrived on sfree before it arrived on turn for the mainloop
// that precedes this epilogue.
template <class Cfg, class Epi, bool kVec = false>
__global__ void __launch_bounds__(Cfg::kThreads, 1)
    gemm_pp_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmW, int M, int N,
                   int K, const typename Epi::Params ep) {
#if defined(STRATA_HAS_WGMMA)
  using namespace detail;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, S = Cfg::STAGES;
  constexpr int NREG = BN / 2;  // fp32 accumulators per thread per m64nBN
  constexpr int MT = Cfg::kMTiles;
  constexpr uint32_t kStageA = BM * kRowBytes;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* const tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(tiles + S * Cfg::kStageBytes);
  uint64_t* const empty = full + S;
  uint64_t* const turn = empty + S;  // turn[c]: consumer c may start its next mainloop
  uint64_t* const sfree = turn + 2;  // sfree[c]: consumer c's epilogue has read the staging buffer out

  const int num_units = ceil_div(M, BM) * ceil_div(N, BN);
  const int KT = ceil_div(K, kBK);
  const int wg = threadIdx.x >> 7;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&tmA);
    prefetch_tensormap(&tmW);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 4);  // the 4 warps of the one consumer warpgroup that read the slot
    }
    mbarrier_init(&turn[0], 4);  // one arrival per warp of the other consumer
    mbarrier_init(&turn[1], 4);
    if constexpr (Cfg::kStagedEpi) {
      mbarrier_init(&sfree[0], 4);  // one arrival per warp of the consumer
      mbarrier_init(&sfree[1], 4);
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
          mbarrier_arrive_expect_tx(&full[slot], Cfg::kStageBytes);
          tma_load_2d(st, &tmA, &full[slot], kt * kBK, tm * BM);
          tma_load_2d(st + kStageA, &tmW, &full[slot], kt * kBK, tn * BN);
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
        const uint32_t sA = smem + slot * Cfg::kStageBytes;
        const uint32_t sB = sA + kStageA;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk)
#pragma unroll
          for (int t = 0; t < MT; ++t)
            Wgmma<BN>::mma(acc[t], wgmma_desc_sw128(sA + t * 64 * kRowBytes + kk * 32), wgmma_desc_sw128(sB + kk * 32));
        wgmma_commit();
        wgmma_wait<1>();  // the batch of k-tile kt-1 retired: its slot may be refilled
        if (kt > 0 && lane == 0) mbarrier_arrive(&empty[prev]);
        prev = slot;
        if (++slot == S) { slot = 0; phase ^= 1; }
      }
      wgmma_wait<0>();
      if (lane == 0) {
        mbarrier_arrive(&empty[prev]);
        mbarrier_arrive(&turn[cw ^ 1]);  // every position of this tile waited on: the other's turn
      }

      if constexpr (Cfg::kStagedEpi) {
        constexpr int EC = Cfg::kEpiCols, H = BN / EC;  // parts: (t, h), 64 rows × EC columns each
        constexpr int CPR = EC / 4, RPP = 128 / CPR, PASSES = 64 / RPP;
        const int tid = threadIdx.x & 127, cc = tid % CPR, r0 = tid / CPR;
        float* const stage = reinterpret_cast<float*>(tiles + Cfg::kEpiOffset);
        using Pre = typename EpiPreOf<Epi, kVec>::type;
        typename EpiPreOf<Epi, kVec>::col cadd[H];
        if constexpr (kVec) {
#pragma unroll
          for (int h = 0; h < H; ++h) {
            const int col = n0 + h * EC + cc * 4;
            if (col < N) cadd[h] = Epi::col4(ep, col);
          }
        }
        // the other consumer's previous epilogue (local tile i − 1) has read the buffer out
        if (i > 0) mbarrier_wait_parity(&sfree[cw ^ 1], cw == 0 ? (uint32_t)((j - 1) & 1) : (uint32_t)(j & 1));
#pragma unroll
        for (int t = 0; t < MT; ++t)
#pragma unroll
          for (int h = 0; h < H; ++h) {
            if (t + h > 0) named_barrier_sync(1 + cw, 128);  // the previous part is read out
            // m64nN accumulator layout: acc[4i+0,1] → (r, 8i + 2q + {0,1}), acc[4i+2,3] → (r+8, same)
            const int r = warp_in_wg * 16 + (lane >> 2);
#pragma unroll
            for (int c8 = 0; c8 < EC / 8; ++c8) {
              const int ck = c8 * 2 + ((lane & 3) >> 1), sub = (lane & 1) * 2;
              const int sw = (r & 3) << 1;  // (r + 8) & 3 == r & 3
              const int i8 = h * (EC / 8) + c8;
              *reinterpret_cast<float2*>(stage + r * EC + ((ck ^ sw) << 2) + sub) = make_float2(acc[t][4 * i8 + 0], acc[t][4 * i8 + 1]);
              *reinterpret_cast<float2*>(stage + (r + 8) * EC + ((ck ^ sw) << 2) + sub) =
                  make_float2(acc[t][4 * i8 + 2], acc[t][4 * i8 + 3]);
            }
            // this part's per-element operands: PASSES loads in flight (the accumulators just
            // staged free their registers), then the barrier, then the stores
            Pre pre[PASSES];
            if constexpr (kVec) {
#pragma unroll
              for (int k = 0; k < PASSES; ++k) {
                const int row = m0 + t * 64 + r0 + k * RPP, col = n0 + h * EC + cc * 4;
                if (row < M && col < N) pre[k] = Epi::pre4(ep, row, col);
              }
            }
            named_barrier_sync(1 + cw, 128);
#pragma unroll
            for (int k = 0; k < PASSES; ++k) {
              const int rr = r0 + k * RPP;
              const int row = m0 + t * 64 + rr, col = n0 + h * EC + cc * 4;
              const float4 v = *reinterpret_cast<const float4*>(stage + rr * EC + ((cc ^ ((rr & 3) << 1)) << 2));
              if (row < M && col < N) {
                if constexpr (kVec) {
                  Epi::store4(ep, row, col, v, cadd[h], pre[k]);
                } else {
                  Epi::store2(ep, row, col, v.x, v.y);
                  Epi::store2(ep, row, col + 2, v.z, v.w);
                }
              }
            }
          }
        __syncwarp();
        if (lane == 0) mbarrier_arrive(&sfree[cw]);
      } else {
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
  }
#else
  __trap();
#endif
}

// ----------------------------------------------------------------------------------
// Host side
// ----------------------------------------------------------------------------------
// Returns nullptr when (A, lda, W, M, N, K) is supported, else a human-readable reason.
inline const char* gemm_shape_error(const bf16* A, int lda, const bf16* W, int M, int N, int K) {
  if (M < 1) return "gemm: M must be >= 1";
  if (N < 8 || N % 8 != 0) return "gemm: N must be a positive multiple of 8";
  if (K < 8 || K % 8 != 0) return "gemm: K must be a positive multiple of 8";
  if (lda < K || lda % 8 != 0) return "gemm: lda must be >= K and a multiple of 8";
  if (!A || !W) return "gemm: null operand";
  if ((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(W)) & 15)
    return "gemm: A and W must be 16-byte aligned";
  return nullptr;
}

namespace detail {
// Streaming multiprocessors of the current device (queried once per device, then cached).
inline int sm_count() {
  static int cache[64] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return 0;
  if (dev < 64 && cache[dev] > 0) return cache[dev];
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
  if (dev < 64) cache[dev] = n;
  return n;
}

// The warp-specialized kernel: tensor maps encoded on the host for this launch (a kernel
// parameter, so CUDA-graph capture records them), persistent grid of min(#tiles, #SMs).
// The ping-pong kernel (PpConfig): tensor maps as gemm_ws_launch's, grid = min(#tiles, #SMs).
template <class Cfg, class Epi>
cudaError_t gemm_pp_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K,
                           const typename Epi::Params& ep, cudaStream_t stream) {
  CUtensorMap ma, mw;
  cudaError_t e = make_tensor_map_2d_bf16(&ma, A, (uint64_t)M, (uint64_t)K, (uint64_t)lda, Cfg::BM, kBK, CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess) return e;
  e = make_tensor_map_2d_bf16(&mw, W, (uint64_t)N, (uint64_t)K, (uint64_t)K, Cfg::BN, kBK, CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess) return e;
  constexpr int smem = Cfg::kSmemBytes;
  const long long units = (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN);
  if (units > 0x7fffffffLL) return cudaErrorInvalidValue;
  const int sms = sm_count();
  if (sms <= 0) return cudaErrorInvalidDevice;
  const unsigned grid = (unsigned)(units < sms ? units : sms);
  // the staged epilogue's 4-wide path where the epilogue has one and its pointers allow it
  // (not with BN = 256: its 128 accumulators a thread leave no registers for the loads in flight,
  // which spill; it takes the pairs)
  if constexpr (Cfg::kStagedEpi && Cfg::BN <= 128 && EpiHasVec4<Epi>::value) {
    if (Epi::vec4_ok(ep)) {
      e = opt_in_smem<gemm_pp_kernel<Cfg, Epi, true>>(smem);
      if (e != cudaSuccess) return e;
      gemm_pp_kernel<Cfg, Epi, true><<<dim3(grid), dim3(Cfg::kThreads), smem, stream>>>(ma, mw, M, N, K, ep);
      return cudaGetLastError();
    }
  }
  e = opt_in_smem<gemm_pp_kernel<Cfg, Epi>>(smem);
  if (e != cudaSuccess) return e;
  gemm_pp_kernel<Cfg, Epi><<<dim3(grid), dim3(Cfg::kThreads), smem, stream>>>(ma, mw, M, N, K, ep);
  return cudaGetLastError();
}

template <class Cfg, class Epi>
cudaError_t gemm_ws_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K,
                           const typename Epi::Params& ep, cudaStream_t stream) {
  CUtensorMap ma, mw;
  cudaError_t e = make_tensor_map_2d_bf16(&ma, A, (uint64_t)M, (uint64_t)K, (uint64_t)lda, Cfg::BM, kBK,
                                          CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess) return e;
  e = make_tensor_map_2d_bf16(&mw, W, (uint64_t)N, (uint64_t)K, (uint64_t)K, Cfg::BN / Cfg::kCluster, kBK,
                              CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess) return e;
  auto kernel = gemm_ws_kernel<Cfg, Epi>;
  constexpr int smem = Cfg::kSmemBytes;
  e = opt_in_smem<gemm_ws_kernel<Cfg, Epi>>(smem);
  if (e != cudaSuccess) return e;
  constexpr int CL = Cfg::kCluster;
  const long long units = (long long)ceil_div(M, Cfg::BM * CL) * ceil_div(N, Cfg::BN);
  if (units * CL > 0x7fffffffLL) return cudaErrorInvalidValue;
  if constexpr (CL == 1) {
    const int sms = sm_count();
    if (sms <= 0) return cudaErrorInvalidDevice;
    const unsigned grid = (unsigned)(units < sms ? units : sms);
    kernel<<<dim3(grid), dim3(Cfg::kThreads), smem, stream>>>(ma, mw, M, N, K, ep);
    return cudaGetLastError();
  } else {
    cudaLaunchConfig_t lc = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = CL;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    lc.blockDim = dim3(Cfg::kThreads);
    lc.dynamicSmemBytes = smem;
    lc.stream = stream;
    lc.attrs = attr;
    lc.numAttrs = 1;
    // clusters resident at once (queried once per device for this kernel)
    static int max_clusters[64] = {};
    int dev = 0;
    e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    int mc = dev < 64 ? max_clusters[dev] : 0;
    if (mc <= 0) {
      lc.gridDim = dim3(CL * 64);
      e = cudaOccupancyMaxActiveClusters(&mc, kernel, &lc);
      if (e != cudaSuccess) return e;
      if (mc <= 0) return cudaErrorInvalidConfiguration;
      if (dev < 64) max_clusters[dev] = mc;
    }
    lc.gridDim = dim3((unsigned)(CL * (units < mc ? units : mc)));
    return cudaLaunchKernelEx(&lc, kernel, ma, mw, M, N, K, ep);
  }
}
}  // namespace detail

template <class Cfg, class Epi>
cudaError_t gemm_launch(const bf16* A, int lda, const bf16* W, int M, int N, int K,
                        const typename Epi::Params& ep, cudaStream_t stream = 0) {
  if (gemm_shape_error(A, lda, W, M, N, K)) return cudaErrorInvalidValue;
  if constexpr (IsPingPong<Cfg>::value) {
    return detail::gemm_pp_launch<Cfg, Epi>(A, lda, W, M, N, K, ep, stream);
  } else if constexpr (Cfg::kWarpSpecialized) {
    return detail::gemm_ws_launch<Cfg, Epi>(A, lda, W, M, N, K, ep, stream);
  } else {
    void (*kernel)(const bf16*, int, const bf16*, int, int, int, const typename Epi::Params);
    constexpr int smem = Cfg::kSmemBytes;
    cudaError_t e = cudaSuccess;  // the shared-memory opt-in: once per kernel (strata/base.cuh)
    if constexpr (Cfg::kWgmma) {
      kernel = gemm_wgmma_kernel<Cfg, Epi>;
      if (smem > 48 * 1024) e = opt_in_smem<gemm_wgmma_kernel<Cfg, Epi>>(smem);
    } else {
      kernel = gemm_mma_kernel<Cfg, Epi>;
      if (smem > 48 * 1024) e = opt_in_smem<gemm_mma_kernel<Cfg, Epi>>(smem);
    }
    if (e != cudaSuccess) return e;
    const long long tiles = (long long)ceil_div(M, Cfg::BM) * ceil_div(N, Cfg::BN);
    if (tiles > 0x7fffffffLL) return cudaErrorInvalidValue;
    kernel<<<dim3((unsigned)tiles), dim3(Cfg::kThreads), smem, stream>>>(A, lda, W, M, N, K, ep);
    return cudaGetLastError();
  }
}

}  // namespace gemm
}  // namespace strata

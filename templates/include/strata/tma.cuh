// strata/tma.cuh — Hopper tensor memory accelerator (TMA): bulk tensor copies between global
// and shared memory described by a CUtensorMap, completed through an mbarrier transaction count
// (loads) or a bulk async-group (stores). Used by the producer warps of the warp-specialized GEMM
// (gemm.cuh's WsConfig) and the wgmma attention (attention_wgmma.cuh).
//
// Device (sm_90; trap elsewhere):
//   tma_load_2d(smem_dst, &map, bar, c0, c1)   box at coordinates (c0 innermost, c1) -> smem;
//                                              arrival counted on `bar` in bytes: pair it with
//                                              mbarrier_arrive_expect_tx(bar, box bytes)
//   tma_load_3d(smem_dst, &map, bar, c0, c1, c2)  the same for a 3-D map (batched token-major views)
//   tma_load_2d_multicast(smem_dst, &map, bar, c0, c1, cta_mask)   the same box into every CTA of
//                                              the cluster in cta_mask (same smem / barrier offsets)
//   tma_store_2d(&map, smem_src, c0, c1)       smem -> box in global (fence_proxy_async first)
//   tma_store_commit / tma_store_wait<N>       bulk async-group of stores; wait until <= N pending
//   prefetch_tensormap(&map)
// Host:
//   make_tensor_map_2d_bf16(&map, base, rows, cols, row_stride, box_rows, box_cols, swizzle)
//     encodes a row-major bf16 [rows, cols] matrix (row_stride elements between rows) through
//     cuTensorMapEncodeTiled, fetched from the driver by cudaGetDriverEntryPointByVersion so
//     nothing links libcuda. Returns cudaErrorInvalidValue with a reason in *why on bad
//     arguments. make_tensor_map_3d_bf16(&map, base, batches, rows, cols, row_stride, batch_stride,
//     box_rows, box_cols, swizzle) the same over [batches, rows, cols]. Pass the map to a kernel as `const __grid_constant__ CUtensorMap`.
#pragma once

#include <cuda.h>

#include "base.cuh"
#include "ptx.cuh"

namespace strata {
inline namespace tma {

STRATA_DEV void tma_load_2d(void* smem_dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1) {
#if defined(STRATA_HAS_SM90)
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n"
      ::"r"(smem_u32(smem_dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1)
      : "memory");
#else
  __trap();
#endif
}

// 3-D box at (c0 innermost, c1, c2): e.g. [batch, token, column] views of token-major tensors,
// where rows past a batch's end are out of bounds (zero-filled) rather than the next batch's.
STRATA_DEV void tma_load_3d(void* smem_dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1, int c2) {
#if defined(STRATA_HAS_SM90)
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];\n"
      ::"r"(smem_u32(smem_dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
#else
  __trap();
#endif
}

// Multicast load: the box lands at the same shared-memory offset in every CTA of the cluster
// named in cta_mask (bit i = rank i), each completing on its own mbarrier at `bar`'s offset.
STRATA_DEV void tma_load_2d_multicast(void* smem_dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1,
                                      uint16_t cta_mask) {
#if defined(STRATA_HAS_SM90)
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%3, %4}], [%2], %5;\n"
      ::"r"(smem_u32(smem_dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "h"(cta_mask)
      : "memory");
#else
  __trap();
#endif
}

STRATA_DEV void tma_store_2d(const CUtensorMap* map, const void* smem_src, int c0, int c1) {
#if defined(STRATA_HAS_SM90)
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%2, %3}], [%1];\n"
               ::"l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(smem_src)), "r"(c0), "r"(c1)
               : "memory");
#else
  __trap();
#endif
}

STRATA_DEV void tma_store_commit() {
#if defined(STRATA_HAS_SM90)
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
// Wait until at most N committed store groups still read their shared-memory source.
template <int N>
STRATA_DEV void tma_store_wait() {
#if defined(STRATA_HAS_SM90)
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#endif
}

STRATA_DEV void prefetch_tensormap(const CUtensorMap* map) {
#if defined(STRATA_HAS_SM90)
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

}  // namespace tma

// ---- host --------------------------------------------------------------------------------
namespace detail {
// What both maps share once their shapes are checked: the box and swizzle checks, the driver's
// cuTensorMapEncodeTiled (looked up once), and the bf16 encode with boxes of
// [1…, box_rows, box_cols] (rank 2 or 3; dims and byte strides innermost first).
inline cudaError_t encode_bf16_map(CUtensorMap* map, const void* base, cuuint32_t rank, const cuuint64_t* dims, const cuuint64_t* strides,
                                   uint32_t box_rows, uint32_t box_cols, CUtensorMapSwizzle swizzle, const char** why) {
  auto fail = [&](const char* reason) {
    if (why) *why = reason;
    return cudaErrorInvalidValue;
  };
  if (box_rows == 0 || box_cols == 0 || box_rows > 256 || box_cols > 256) return fail("tensor map: box dims must be in 1..256");
  if ((box_cols * 2) % 16 != 0) return fail("tensor map: the box's inner extent must be a multiple of 16 bytes");
  const uint32_t span = swizzle == CU_TENSOR_MAP_SWIZZLE_128B ? 128 : swizzle == CU_TENSOR_MAP_SWIZZLE_64B ? 64
                        : swizzle == CU_TENSOR_MAP_SWIZZLE_32B ? 32 : 0;
  if (span && box_cols * 2 > span) return fail("tensor map: the box's inner extent exceeds the swizzle span");

  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                              const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static Encode encode = nullptr;
  if (!encode) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess) return e;
    if (q != cudaDriverEntryPointSuccess || !fn) return fail("tensor map: the driver has no cuTensorMapEncodeTiled");
    encode = reinterpret_cast<Encode>(fn);
  }
  const cuuint32_t box[3] = {box_cols, box_rows, 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rank, const_cast<void*>(base), dims, strides, box, elem_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : fail("tensor map: cuTensorMapEncodeTiled rejected the arguments");
}
}  // namespace detail

inline cudaError_t make_tensor_map_2d_bf16(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                                           uint64_t row_stride, uint32_t box_rows, uint32_t box_cols,
                                           CUtensorMapSwizzle swizzle, const char** why = nullptr) {
  auto fail = [&](const char* reason) {
    if (why) *why = reason;
    return cudaErrorInvalidValue;
  };
  if (!map || !base) return fail("tensor map: null map or base pointer");
  if (reinterpret_cast<uintptr_t>(base) & 15) return fail("tensor map: base must be 16-byte aligned");
  if (rows == 0 || cols == 0 || row_stride < cols) return fail("tensor map: need rows, cols > 0 and row_stride >= cols");
  if ((row_stride * 2) % 16 != 0) return fail("tensor map: the row stride must be a multiple of 16 bytes");
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_stride * 2};  // bytes, for dims 1..rank-1
  return detail::encode_bf16_map(map, base, 2, dims, strides, box_rows, box_cols, swizzle, why);
}

// A bf16 [batches, rows, cols] tensor (row_stride / batch_stride elements between rows / batches;
// cols <= row_stride) as a 3-D map with boxes of [box_rows, box_cols] in one batch. Same checks
// and driver entry point as the 2-D map.
inline cudaError_t make_tensor_map_3d_bf16(CUtensorMap* map, const void* base, uint64_t batches, uint64_t rows,
                                           uint64_t cols, uint64_t row_stride, uint64_t batch_stride,
                                           uint32_t box_rows, uint32_t box_cols, CUtensorMapSwizzle swizzle,
                                           const char** why = nullptr) {
  auto fail = [&](const char* reason) {
    if (why) *why = reason;
    return cudaErrorInvalidValue;
  };
  if (!map || !base) return fail("tensor map: null map or base pointer");
  if (reinterpret_cast<uintptr_t>(base) & 15) return fail("tensor map: base must be 16-byte aligned");
  if (batches == 0 || rows == 0 || cols == 0 || row_stride < cols) return fail("tensor map: need batches, rows, cols > 0 and row_stride >= cols");
  if (batches > 1 && batch_stride < rows * row_stride) return fail("tensor map: batches must not overlap (batch_stride >= rows * row_stride)");
  if (batches == 1) batch_stride = rows * row_stride;  // unused, but must be a valid stride
  if ((row_stride * 2) % 16 != 0 || (batch_stride * 2) % 16 != 0) return fail("tensor map: strides must be multiples of 16 bytes");
  const cuuint64_t dims[3] = {cols, rows, batches};
  const cuuint64_t strides[2] = {row_stride * 2, batch_stride * 2};  // bytes, for dims 1..rank-1
  return detail::encode_bf16_map(map, base, 3, dims, strides, box_rows, box_cols, swizzle, why);
}

}  // namespace strata

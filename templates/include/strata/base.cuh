// strata/base.cuh — the ground floor of Strata's device library: CUDA headers, the function
// qualifiers and architecture switches every other header uses, and integer helpers.
//
//   STRATA_HD            __host__ __device__ __forceinline__ (math that host tests also run)
//   STRATA_DEV           __device__ __forceinline__
//   STRATA_HAS_WGMMA     defined in the device pass for sm_90a (wgmma, setmaxnreg: "a" features)
//   STRATA_HAS_SM90      defined in the device pass for sm_90 and later (mbarrier tx counts,
//                        cp.async.bulk / TMA, fence.proxy.async)
//   strata::ceil_div, strata::opt_in_smem<kernel>(bytes)
//
// Every wrapper whose instruction needs an architecture is guarded by these macros, so the
// kernel headers compile for sm_80 (mma.sync paths) as well as sm_90a; a guarded wrapper that is
// reached on the wrong architecture traps rather than silently doing nothing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#define STRATA_HD __host__ __device__ __forceinline__
#define STRATA_DEV __device__ __forceinline__

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define STRATA_HAS_WGMMA 1
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define STRATA_HAS_SM90 1
#endif

namespace strata {

template <typename T>
__host__ __device__ constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }

// Opts `Kernel` into `bytes` of dynamic shared memory (needed above 48 KB) once per kernel and
// process (thread-safe static init; a compiled model drives one device); a failed call is retried
// at the next launch. `bytes` must be the same at every call for a given kernel.
template <auto Kernel>
inline cudaError_t opt_in_smem(int bytes) {
  static cudaError_t err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  return err;
}

}  // namespace strata

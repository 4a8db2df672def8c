// strata/pdl.cuh — programmatic dependent launch (Hopper, sm_90+): a kernel may be launched
// while the kernel before it in the stream is still running, so its launch latency and its
// prologue (loading weights, which no earlier kernel writes) overlap the predecessor's tail. The
// decode step is a chain of ~300 short kernels at batch 1; the gaps between them, not the
// kernels, are what keeps it off the HBM roofline.
//
// The contract, for every kernel launched through launch_pdl:
//   * every thread calls pdl_wait() before it reads anything an earlier kernel wrote and before
//     it writes anything, and before it returns (a block that exits without waiting could let
//     the grid "complete" before its predecessor has, and a kernel waiting on this one would
//     then not be waiting on that predecessor);
//   * before pdl_wait() it may only read memory nothing in this stream writes (weights);
//   * it calls pdl_launch_dependents() (after its wait) to let the next kernel be scheduled.
// pdl_wait and pdl_launch_dependents are no-ops when the kernel was launched normally and on
// architectures without the instructions (sm_80 builds), so the same kernels serve both.
//
// Host: launch_pdl<kernel>(grid, block, smem, stream, args...) launches with the programmatic
// stream serialization attribute when pdl_enabled() — a device of compute capability ≥ 9 whose
// loaded binary for this kernel is sm_90 or newer (an sm_80 build run on a Hopper GPU has no
// wait instruction in it, so it must not be launched early) — and STRATA_PDL is not "0"
// (STRATA_PDL=0 turns it off, for A/B measurements). CUDA-graph capture records the
// programmatic edges, so a replayed decode step keeps the overlap.
#pragma once

#include <cstdlib>
#include <cstring>
#include <utility>

#include "base.cuh"

namespace strata {

STRATA_DEV void pdl_wait() {
#if defined(STRATA_HAS_SM90)
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

STRATA_DEV void pdl_launch_dependents() {
#if defined(STRATA_HAS_SM90)
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether launches may be programmatic at all: STRATA_PDL unset or not "0", and the current
// device is Hopper or newer. Read once per process.
inline bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("STRATA_PDL");
    if (e && std::strcmp(e, "0") == 0) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major >= 9;
  }();
  return on;
}

// Launch `Kernel` (a __global__ function that keeps the contract above), programmatically
// serialized when pdl_enabled() and the kernel's binary is sm_90+ (checked once per kernel).
template <auto Kernel, class... Args>
inline cudaError_t launch_pdl(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  static const bool binary_has_wait = [] {
    cudaFuncAttributes a{};
    return cudaFuncGetAttributes(&a, Kernel) == cudaSuccess && a.binaryVersion >= 90;
  }();
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  if (binary_has_wait && pdl_enabled()) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&cfg, Kernel, std::forward<Args>(args)...);
}

}  // namespace strata

// CUDA error checks that throw strata::Error naming the failing call or
// kernel plus file:line, so a failure surfaces through strata_last_error()
// as e.g. "CUDA error in cudaMalloc(&p, n) at arena.cpp:31:
// cudaErrorMemoryAllocation (out of memory)".
//
// Kernel launches are asynchronous: STRATA_LAUNCH_CHECK catches launch
// configuration errors immediately; faults *inside* a kernel show up at the
// next synchronising call. Set STRATA_SYNC_LAUNCHES=1 in the environment to
// synchronise after every launch and attribute such faults to the right
// kernel (slow; for debugging).
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "error.h"

namespace strata {
namespace detail {

inline std::string cuda_where(const char* file, int line) {
  std::string f(file);
  size_t slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(line);
}

[[noreturn]] inline void throw_cuda(cudaError_t err, const std::string& what, const char* file, int line) {
  strata_status code = err == cudaErrorMemoryAllocation ? STRATA_ERR_OUT_OF_MEMORY : STRATA_ERR_CUDA;
  throw Error("CUDA error in " + what + " at " + cuda_where(file, line) + ": " + cudaGetErrorName(err) + " (" +
                  cudaGetErrorString(err) + ")",
              code);
}

inline bool sync_launches() {
  static const bool on = [] {
    const char* v = std::getenv("STRATA_SYNC_LAUNCHES");
    return v && *v && *v != '0';
  }();
  return on;
}

inline void launch_check(const char* kernel, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda(err, std::string("launch of kernel ") + kernel, file, line);
  if (sync_launches()) {
    err = cudaDeviceSynchronize();
    if (err != cudaSuccess) throw_cuda(err, std::string("kernel ") + kernel + " (synchronised)", file, line);
  }
}

}  // namespace detail
}  // namespace strata

// Wrap any CUDA runtime call: CUDA_CHECK(cudaMemcpy(dst, src, n, kind));
#define CUDA_CHECK(call)                                                         \
  do {                                                                           \
    cudaError_t strata_err_ = (call);                                            \
    if (strata_err_ != cudaSuccess)                                              \
      ::strata::detail::throw_cuda(strata_err_, #call, __FILE__, __LINE__);      \
  } while (0)

// Right after a <<<...>>> launch: STRATA_LAUNCH_CHECK("rmsnorm_fwd");
#define STRATA_LAUNCH_CHECK(kernel_name) ::strata::detail::launch_check((kernel_name), __FILE__, __LINE__)

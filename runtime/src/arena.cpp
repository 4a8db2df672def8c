#include "arena.h"

#include <cstdio>

#include "check.h"

namespace strata {

std::string format_bytes(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu bytes (%.1f MiB)", bytes, static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

DeviceArena::DeviceArena(size_t bytes, const std::string& label) : label_(label), size_(bytes) {
  std::fprintf(stderr, "%s: peak %s\n", label_.c_str(), format_bytes(bytes).c_str());
  if (bytes == 0) return;  // nothing to allocate; at() still bounds-checks
  cudaError_t err = cudaMalloc(&base_, bytes);
  if (err != cudaSuccess) {
    base_ = nullptr;
    cudaGetLastError();  // clear the error so later calls are not poisoned
    size_t free_b = 0, total_b = 0;
    std::string avail;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      avail = "; device has " + format_bytes(free_b) + " free of " + format_bytes(total_b);
    throw Error(label_ + ": cudaMalloc of " + format_bytes(bytes) + " failed: " + cudaGetErrorString(err) + avail +
                    " (reduce maxBatch/maxSeqlen when compiling, or free GPU memory)",
                err == cudaErrorMemoryAllocation ? STRATA_ERR_OUT_OF_MEMORY : STRATA_ERR_CUDA);
  }
}

DeviceArena::~DeviceArena() {
  if (base_) cudaFree(base_);  // errors ignored: destructors must not throw
}

void* DeviceArena::at(size_t offset, size_t bytes) const {
  if (offset > size_ || bytes > size_ - offset)
    throw Error(label_ + ": buffer [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                    ") lies outside the arena of " + std::to_string(size_) + " bytes (memory plan bug)",
                STRATA_ERR_INTERNAL);
  return static_cast<char*>(base_) + offset;
}

size_t DeviceArena::reserve(size_t bytes, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0)
    throw Error(label_ + ": reserve alignment " + std::to_string(align) + " is not a power of two", STRATA_ERR_INTERNAL);
  size_t off = (used_ + align - 1) & ~(align - 1);
  if (off < used_ || off > size_ || bytes > size_ - off)
    throw Error(label_ + ": cannot reserve " + std::to_string(bytes) + " bytes; " + std::to_string(size_ - used_) +
                    " of " + std::to_string(size_) + " bytes left (memory plan too small)",
                STRATA_ERR_OUT_OF_MEMORY);
  used_ = off + bytes;
  return off;
}

void DeviceArena::fill_zero() {
  if (base_) CUDA_CHECK(cudaMemset(base_, 0, size_));
}

}  // namespace strata

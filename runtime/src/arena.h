// DeviceArena: one cudaMalloc sized from the compiler's memory plan. The
// plan assigns every activation/workspace buffer a byte offset, so the
// schedule never allocates during forward(); this class only owns the block
// and turns offsets into bounds-checked pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

class DeviceArena {
 public:
  // Alignment of the base and default alignment of reserve() (cudaMalloc
  // guarantees at least 256).
  static constexpr size_t kAlign = 256;

  // Prints "arena: peak N bytes (X MiB)" to stderr, then allocates.
  // Throws strata::Error (STRATA_ERR_OUT_OF_MEMORY) naming the size if the
  // device cannot provide it. `label` distinguishes several arenas in logs.
  explicit DeviceArena(size_t bytes, const std::string& label = "arena");
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  size_t size() const { return size_; }
  void* base() const { return base_; }

  // Pointer at a planned offset; throws if [offset, offset+bytes) is outside
  // the arena (a memory-plan bug that would otherwise corrupt memory).
  void* at(size_t offset, size_t bytes) const;
  template <class T>
  T* at(size_t offset, size_t count) const {
    return static_cast<T*>(at(offset, count * sizeof(T)));
  }

  // Bump allocation for buffers not in the plan (e.g. weights when the plan
  // leaves them out). Returns the offset; throws when the arena is full.
  size_t reserve(size_t bytes, size_t align = kAlign);
  size_t used() const { return used_; }

  // cudaMemset the whole arena (debugging: makes uninitialised reads visible).
  void fill_zero();

 private:
  std::string label_;
  void* base_ = nullptr;
  size_t size_ = 0;
  size_t used_ = 0;
};

// "123456789 bytes (117.7 MiB)"
std::string format_bytes(size_t bytes);

}  // namespace strata

// init_device.h — deterministic weight init on the GPU (spec: runtime/INIT.md; the kernel is in
// init_device.cu). Same values as the host's init_tensor + convert_from_f32, bit for bit: one
// thread per element runs init_math::element (the host's arithmetic, compiled for the device),
// and the rare elements whose value lies within the host/device libm radius of a float32
// rounding boundary are recomputed on the host (init_math.h says why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dtype.h"
#include "init.h"
#include "strata_model_iface.h"

namespace strata {

// Writes tensors straight into device memory on one CUDA stream; owns the scratch for the
// elements recomputed on the host. Host-side only (no CUDA types in this header).
class DeviceInitializer {
 public:
  explicit DeviceInitializer(void* stream);  // a cudaStream_t; null = the legacy default stream
  ~DeviceInitializer();
  DeviceInitializer(const DeviceInitializer&) = delete;
  DeviceInitializer& operator=(const DeviceInitializer&) = delete;

  // `dst` (device, numel elements of `dtype`) ← tensor `name` of spec `s`. Integer dtypes take
  // the const value (as strata_model_init_weights does on the host). Asynchronous but for the
  // recomputed elements. `fix_on_host` false leaves the device's own values everywhere (tests).
  void fill(const InitSpec& s, uint64_t seed, const std::string& name, DType dtype, void* dst, uint64_t numel, bool fix_on_host = true);
  void sync();
  // Elements recomputed on the host so far: flagged by the radius test, and the number of tensors
  // that overflowed the scratch and were made on the host whole (never expected).
  uint64_t recomputed() const { return recomputed_; }
  uint64_t host_tensors() const { return host_tensors_; }

 private:
  void* stream_;
  unsigned long long* flagged_ = nullptr;  // device [kCap] element indices
  unsigned int* count_ = nullptr;          // device, pinned-readable counter
  uint32_t* patch_bits_ = nullptr;         // device [kCap] host-computed storage bits
  uint64_t recomputed_ = 0, host_tensors_ = 0;
};

// Every weight of a compiled Program model, on its device and stream. False (nothing done) when
// `m` is not one (program_weight_device returns null), e.g. the host tests' models.
bool init_weights_on_device(Model& m, const Manifest& mf, uint64_t seed, uint64_t* recomputed = nullptr);

// Defined in program_model.cu: weight `index`'s device buffer (and, when `stream` is not null,
// the model's cudaStream_t); null when `m` is not a compiled Program model.
void* program_weight_device(Model* m, size_t index, void** stream);

}  // namespace strata

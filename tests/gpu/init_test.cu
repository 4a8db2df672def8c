// GPU weight init (runtime/src/init_device.cu) against the host path (init_tensor +
// convert_from_f32), bit for bit, for every InitKind and storage dtype; then a 1 GiB bf16 normal
// tensor timed on the device (and on the host threads, for the ratio) and compared whole.
// Also reports how many elements the device's own libm rounded differently before the host
// fix-up ("raw mismatches"), which the fix-up must reduce to zero.
//
//   nvcc -std=c++17 -O2 -arch=sm_90a -Iruntime/include -Iruntime/src tests/gpu/init_test.cu \
//        runtime/src/init_device.cu runtime/src/{init,json,dtype}.cpp -o init_test && ./init_test
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dtype.h"
#include "init.h"
#include "init_device.h"
#include "json.h"

namespace strata {
// The harness has no Program model (init_device.cu's model glue is not exercised here).
void* program_weight_device(Model*, size_t, void**) { return nullptr; }
}  // namespace strata

using namespace strata;

#define CK(x)                                                                        \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(2);                                                                  \
    }                                                                                \
  } while (0)

static int threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

static std::vector<uint8_t> host_bytes(const InitSpec& s, uint64_t seed, const std::string& name, DType dt, uint64_t n) {
  std::vector<uint8_t> b(n * dtype_size(dt));
  if (dt == DType::I32 || dt == DType::I64) {
    const int64_t v = static_cast<int64_t>(s.value);
    for (uint64_t k = 0; k < n; ++k) {
      if (dt == DType::I32) {
        const int32_t v32 = static_cast<int32_t>(v);
        std::memcpy(b.data() + k * 4, &v32, 4);
      } else {
        std::memcpy(b.data() + k * 8, &v, 8);
      }
    }
    return b;
  }
  std::vector<float> f(n);
  init_tensor(s, seed, name, f.data(), n, threads());
  convert_from_f32(f.data(), n, dt, b.data());
  return b;
}

static uint64_t mismatches(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, size_t esize) {
  uint64_t m = 0;
  for (size_t i = 0; i < a.size(); i += esize) m += std::memcmp(a.data() + i, b.data() + i, esize) != 0;
  return m;
}

int main() {
  int failures = 0;
  void* dev = nullptr;
  const uint64_t big = 1ull << 29;  // 1 GiB of bf16
  CK(cudaMalloc(&dev, big * 2));
  DeviceInitializer init(nullptr);
  struct Case {
    const char* spec;
    DType dt;
    uint64_t n;
  };
  const Case cases[] = {
      {R"({"kind":"normal","std":1})", DType::F32, 64u << 20},
      {R"({"kind":"normal","std":0.02,"mean":0.5})", DType::F32, 16u << 20},
      {R"({"kind":"normal","std":0.02})", DType::BF16, 16u << 20},
      {R"({"kind":"normal","std":0.02})", DType::F16, 4u << 20},
      {R"({"kind":"uniform","low":-3,"high":5})", DType::F32, 8u << 20},
      {R"({"kind":"const","value":0.1})", DType::BF16, 1u << 20},
      {R"({"kind":"ones"})", DType::F32, 1000},
      {R"({"kind":"alog_uniform","low":1,"high":16})", DType::F32, 16u << 20},
      {R"({"kind":"alog_uniform","low":0.5,"high":1.5})", DType::F32, 8u << 20},
      {R"({"kind":"alog_arange","n":16})", DType::F32, 1u << 20},
      {R"({"kind":"alog_arange","n":100000007})", DType::F32, 16u << 20},
      {R"({"kind":"dt_bias"})", DType::F32, 16u << 20},
      {R"({"kind":"dt_bias","dtMin":0.01,"dtMax":2,"floor":0.05})", DType::F32, 8u << 20},
      {R"({"kind":"kaiming_uniform","fanIn":37})", DType::BF16, 8u << 20},
      {R"({"kind":"const","value":3})", DType::I32, 1000},
      {R"({"kind":"const","value":-5})", DType::I64, 1000},
  };
  uint64_t total = 0, total_raw = 0;
  for (const Case& c : cases) {
    const InitSpec s = parse_init_spec(json::parse(c.spec), "init_test");
    for (uint64_t seed : {1ull, 0xfedcba9876543210ull}) {
      const std::string name = "layers." + std::to_string(seed % 97) + ".w";
      const std::vector<uint8_t> want = host_bytes(s, seed, name, c.dt, c.n);
      std::vector<uint8_t> got(want.size());
      init.fill(s, seed, name, c.dt, dev, c.n, false);  // the device's own values
      init.sync();
      CK(cudaMemcpy(got.data(), dev, got.size(), cudaMemcpyDeviceToHost));
      const uint64_t raw = mismatches(got, want, dtype_size(c.dt));
      const uint64_t before = init.recomputed();
      init.fill(s, seed, name, c.dt, dev, c.n);  // with the host fix-up: the product path
      init.sync();
      CK(cudaMemcpy(got.data(), dev, got.size(), cudaMemcpyDeviceToHost));
      const uint64_t bad = mismatches(got, want, dtype_size(c.dt));
      std::printf("%-60s %-4s %9llu elements seed %016llx: %s (raw device mismatches %llu, recomputed on host %llu)\n", c.spec, dtype_name(c.dt),
                  (unsigned long long)c.n, (unsigned long long)seed, bad ? "DIFFERS" : "bit-identical", (unsigned long long)raw,
                  (unsigned long long)(init.recomputed() - before));
      failures += bad != 0;
      total += c.n;
      total_raw += raw;
    }
  }
  std::printf("%llu elements, raw device/host mismatches before the fix-up: %llu; fix-ups total %llu; whole-tensor host fallbacks %llu\n",
              (unsigned long long)total, (unsigned long long)total_raw, (unsigned long long)init.recomputed(),
              (unsigned long long)init.host_tensors());

  // 1 GiB bf16 normal: device time (warm, with the fix-up), host time, whole comparison
  const InitSpec s = parse_init_spec(json::parse(R"({"kind":"normal","std":0.02})"), "init_test");
  init.fill(s, 7, "warmup", DType::BF16, dev, 1 << 20);
  init.sync();
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  const uint64_t before = init.recomputed();
  auto w0 = std::chrono::steady_clock::now();
  CK(cudaEventRecord(a));
  init.fill(s, 42, "embed.weight", DType::BF16, dev, big);
  CK(cudaEventRecord(b));
  init.sync();
  const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  auto h0 = std::chrono::steady_clock::now();
  const std::vector<uint8_t> want = host_bytes(s, 42, "embed.weight", DType::BF16, big);
  const double host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - h0).count();
  std::vector<uint8_t> got(want.size());
  CK(cudaMemcpy(got.data(), dev, got.size(), cudaMemcpyDeviceToHost));
  const uint64_t bad = mismatches(got, want, 2);
  failures += bad != 0;
  std::printf("1 GiB bf16 normal (%llu elements): GPU %.2f ms (events), %.2f ms wall incl. %llu host fix-ups; host %d threads %.0f ms; %s\n",
              (unsigned long long)big, ms, wall, (unsigned long long)(init.recomputed() - before), threads(), host_ms,
              bad ? "DIFFERS" : "bit-identical");
  CK(cudaFree(dev));
  std::printf("%s: %d failing case(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

// adamw_test.cu — the CUDA AdamW (runtime/src/adamw.cu) against its host twin
// (runtime/src/adamw_host.cpp, the same adamw_element): masters, moments, compute copies and the
// per-parameter Σ g² after accumulation over micro-batches, on parameters whose sizes straddle the
// kernels' chunk boundary, bf16 and f32 compute copies, decayed and not; determinism (two runs
// bit-identical); checkpoint round trips (download / upload / write_compute).
//
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Iruntime/include -Iruntime/src \
//     tests/gpu/adamw_test.cu runtime/src/adamw.cu runtime/src/adamw_host.cpp -o /tmp/adamw_test && /tmp/adamw_test
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "adamw.h"

using namespace strata;

static int g_pass = 0, g_fail = 0;
#define EXPECT(cond, ...)                                                   \
  do {                                                                      \
    if (cond) ++g_pass;                                                     \
    else {                                                                  \
      ++g_fail;                                                             \
      std::printf("FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond);        \
      std::printf(__VA_ARGS__);                                             \
      std::printf("\n");                                                    \
    }                                                                       \
  } while (0)
#define CK(call)                                                                                  \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__);      \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)

static uint64_t g_rng = 0x1234567;
static float urand() {  // [-1, 1)
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((g_rng >> 40) & 0xffffff) / 8388608.f - 1.f;
}

struct Setup {
  std::vector<ParamSlot> dev, host;
  std::vector<std::vector<uint8_t>> host_compute;
  std::vector<std::vector<float>> host_grad;
  std::vector<void*> dev_compute;
  std::vector<float*> dev_grad;
};

static Setup make_setup(const std::vector<size_t>& sizes, int accum) {
  Setup s;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ParamSlot p;
    p.name = "p" + std::to_string(i);
    p.numel = sizes[i];
    p.bf16 = i % 2 == 0;
    p.decay = i % 3 != 1;
    const size_t bytes = p.numel * (p.bf16 ? 2 : 4);
    s.host_compute.emplace_back(bytes);
    s.host_grad.emplace_back(p.numel);
    for (size_t e = 0; e < p.numel; ++e) {
      const float x = urand() * 0.5f;
      if (p.bf16) {
        const uint16_t h = bf16_bits(x);
        std::memcpy(&s.host_compute[i][2 * e], &h, 2);
      } else {
        std::memcpy(&s.host_compute[i][4 * e], &x, 4);
      }
    }
    void* dc = nullptr;
    float* dg = nullptr;
    CK(cudaMalloc(&dc, bytes ? bytes : 1));
    CK(cudaMalloc(&dg, (p.numel ? p.numel : 1) * 4));
    CK(cudaMemcpy(dc, s.host_compute[i].data(), bytes, cudaMemcpyHostToDevice));
    s.dev_compute.push_back(dc);
    s.dev_grad.push_back(dg);
    ParamSlot d = p, h = p;
    d.compute = dc;
    d.grad = dg;
    h.compute = s.host_compute[i].data();
    h.grad = s.host_grad[i].data();
    s.dev.push_back(d);
    s.host.push_back(h);
  }
  (void)accum;
  return s;
}

static void fill_grads(Setup& s, float scale) {
  for (size_t i = 0; i < s.host.size(); ++i) {
    for (auto& g : s.host_grad[i]) g = urand() * scale;
    CK(cudaMemcpy(s.dev_grad[i], s.host_grad[i].data(), s.host_grad[i].size() * 4, cudaMemcpyHostToDevice));
  }
}

// Runs `steps` steps of `accum` micro-batches on both; returns the device masters.
static std::vector<std::vector<float>> run(const std::vector<size_t>& sizes, int accum, int steps, bool compare) {
  g_rng = 0x1234567;
  Setup s = make_setup(sizes, accum);
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  std::unique_ptr<OptimizerState> d = make_cuda_adamw(s.dev, stream, accum), h = make_host_adamw(s.host, accum);
  d->init_from_compute();
  h->init_from_compute();
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.min_lr = 1e-3;
  cfg.warmup = 1;
  cfg.clip = 0.5;
  for (int t = 1; t <= steps; ++t) {
    for (int k = 0; k < accum; ++k) {
      fill_grads(s, t == 2 ? 10.f : 0.1f);  // step 2 is clipped
      d->accumulate(k == 0);
      h->accumulate(k == 0);
    }
    std::vector<double> sd, sh;
    d->grad_sumsq(sd);
    h->grad_sumsq(sh);
    double total = 0;
    for (size_t i = 0; i < sd.size(); ++i) {
      total += sd[i];
      if (compare)
        EXPECT(std::fabs(sd[i] - sh[i]) <= 1e-12 * std::max(1.0, sh[i]), "step %d accum %d: Σg² of p%zu: device %.17g host %.17g", t, accum, i, sd[i],
               sh[i]);
    }
    const AdamWStep st = adamw_step_constants(cfg, t, steps, std::sqrt(total) / accum, accum);
    d->update(st);
    h->update(st);
  }
  d->sync();
  std::vector<std::vector<float>> masters;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<float> md(sizes[i]), mh(sizes[i]), vd(sizes[i]), vh(sizes[i]);
    d->download(static_cast<int>(i), OptTensor::kMaster, md.data());
    h->download(static_cast<int>(i), OptTensor::kMaster, mh.data());
    d->download(static_cast<int>(i), OptTensor::kV, vd.data());
    h->download(static_cast<int>(i), OptTensor::kV, vh.data());
    if (compare) {
      double worst = 0, worst_v = 0;
      for (size_t e = 0; e < sizes[i]; ++e) {
        worst = std::max(worst, std::fabs(md[e] - mh[e]) / (1e-6 + 1e-5 * std::fabs(mh[e])));
        worst_v = std::max(worst_v, std::fabs(vd[e] - vh[e]) / (1e-12 + 1e-5 * std::fabs(vh[e])));
      }
      EXPECT(worst < 1 && worst_v < 1, "accum %d: p%zu (%zu elements) device vs host: master %.3g, v %.3g of the tolerance", accum, i, sizes[i], worst,
             worst_v);
      // compute copies: bf16(master) / master of the device's own masters
      std::vector<uint8_t> cd(sizes[i] * (s.dev[i].bf16 ? 2 : 4));
      d->download_compute(static_cast<int>(i), cd.data());
      bool ok = true;
      for (size_t e = 0; e < sizes[i] && ok; ++e) {
        if (s.dev[i].bf16) {
          uint16_t b;
          std::memcpy(&b, &cd[2 * e], 2);
          ok = b == bf16_bits(md[e]);
        } else {
          float f;
          std::memcpy(&f, &cd[4 * e], 4);
          ok = f == md[e];
        }
      }
      EXPECT(ok, "accum %d: p%zu compute copy = its master rounded", accum, i);
      // round trip: upload the host's state, write_compute → the host's compute copy exactly
      std::vector<float> mm(sizes[i]);
      h->download(static_cast<int>(i), OptTensor::kM, mm.data());
      d->upload(static_cast<int>(i), OptTensor::kMaster, mh.data());
      d->upload(static_cast<int>(i), OptTensor::kM, mm.data());
      d->write_compute();
      d->download_compute(static_cast<int>(i), cd.data());
      EXPECT(std::memcmp(cd.data(), s.host_compute[i].data(), cd.size()) == 0, "accum %d: p%zu upload + write_compute reproduces the host's compute copy",
             accum, i);
      std::vector<float> back(sizes[i]);
      d->download(static_cast<int>(i), OptTensor::kM, back.data());
      EXPECT(std::memcmp(back.data(), mm.data(), back.size() * 4) == 0, "accum %d: p%zu moments round-trip", accum, i);
    }
    masters.push_back(md);
  }
  d.reset();
  for (void* p : s.dev_compute) cudaFree(p);
  for (float* p : s.dev_grad) cudaFree(p);
  cudaStreamDestroy(stream);
  return masters;
}

int main() {
  const std::vector<size_t> sizes = {1, 7, 16383, 16384, 16385, 100003, 0, 3 * 16384 + 5};
  for (int accum : {1, 3}) {
    run(sizes, accum, 4, true);
    const auto a = run(sizes, accum, 4, false), b = run(sizes, accum, 4, false);
    bool same = true;
    for (size_t i = 0; i < a.size(); ++i) same = same && std::memcmp(a[i].data(), b[i].data(), a[i].size() * 4) == 0;
    EXPECT(same, "accum %d: two device runs give bit-identical masters", accum);
  }
  // throughput of one update over 256M parameters (bf16 compute copies)
  {
    const size_t n = size_t(1) << 28;
    void* c = nullptr;
    float* g = nullptr;
    CK(cudaMalloc(&c, n * 2));
    CK(cudaMalloc(&g, n * 4));
    CK(cudaMemset(c, 0, n * 2));
    CK(cudaMemset(g, 0, n * 4));
    ParamSlot p;
    p.name = "big";
    p.numel = n;
    p.bf16 = true;
    p.decay = true;
    p.compute = c;
    p.grad = g;
    auto d = make_cuda_adamw({p}, nullptr, 1);
    d->init_from_compute();
    AdamWStep st = adamw_step_constants(AdamWConfig{}, 1, 10, 1.0, 1);
    std::vector<double> ss;
    d->update(st);
    d->sync();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0);
    for (int i = 0; i < 5; ++i) {
      d->grad_sumsq(ss);
      d->update(st);
    }
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double bytes = 5.0 * n * (4 /*sumsq*/ + 16 + 14 /*update*/);
    std::printf("BENCH adamw 256M params: sumsq + update %.2f ms/step, %.0f GB/s\n", ms / 5, bytes / (ms / 5 * 1e-3) / 5 / 1e9);
    d.reset();
    cudaFree(c);
    cudaFree(g);
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

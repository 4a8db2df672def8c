// host_block.h — a host stand-in for one CUDA thread block, so the device library's block-level
// code (st::block_sum, st::row_stats, st::rope in strata_ops.cuh) runs under the host compiler
// for tests/device/norms-host.test.ts. Include it before any Strata header.
//
// run_block(threads, f) runs f on `threads` std::threads that play threadIdx.x = 0..threads-1:
//   __syncthreads()        a std::barrier over the block
//   __shfl_xor_sync        lanes of a warp exchange through a slot array between two warp barriers
//   __shared__             static storage (one block runs at a time, as the test launches them)
// Host math stand-ins for device intrinsics: rsqrtf, __sincosf (libm, accurate — the device's
// __sincosf is approximate; the GPU suite covers that difference).
#pragma once

#include <cuda_runtime.h>

#include <barrier>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

namespace hostblock {

struct Block {
  explicit Block(int n) : bar(n), warps((n + 31) / 32), lanes(n) {
    for (int w = 0; w < (n + 31) / 32; ++w) warps[w] = std::make_unique<std::barrier<>>(std::min(32, n - 32 * w));
  }
  std::barrier<> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<float> lanes;
};

inline Block* g_block = nullptr;
inline uint3 g_dim{1, 1, 1};
inline thread_local uint3 t_idx{0, 0, 0};

template <class F>
void run_block(int threads, F f) {
  Block b(threads);
  g_block = &b;
  g_dim = uint3{(unsigned)threads, 1, 1};
  std::vector<std::thread> ts;
  ts.reserve(threads);
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([t, &f] {
      t_idx = uint3{(unsigned)t, 0, 0};
      f();
    });
  for (auto& t : ts) t.join();
  g_block = nullptr;
}

}  // namespace hostblock

#define threadIdx (::hostblock::t_idx)
#define blockDim (::hostblock::g_dim)
#undef __shared__
#define __shared__ static

inline void __syncthreads() { ::hostblock::g_block->bar.arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
  auto* b = ::hostblock::g_block;
  const int t = (int)threadIdx.x, w = t >> 5;
  b->lanes[t] = v;
  b->warps[w]->arrive_and_wait();
  const float r = b->lanes[(w << 5) | ((t & 31) ^ lane_mask)];
  b->warps[w]->arrive_and_wait();
  return r;
}

inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline void __sincosf(float x, float* s, float* c) {
  *s = std::sin(x);
  *c = std::cos(x);
}

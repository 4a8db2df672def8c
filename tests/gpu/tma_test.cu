// tma_test.cu — GPU check of the TMA and mbarrier wrappers of templates/include/strata/ (tma.cuh,
// ptx.cuh), which no kernel uses yet: a bf16 matrix with ragged edges is copied tile by tile
// global -> shared (cp.async.bulk.tensor, completion counted on an mbarrier) -> global, with
// SWIZZLE_NONE and SWIZZLE_128B tensor maps made by strata::make_tensor_map_2d_bf16.
// Checked: the shared-memory image of every tile (row-major for NONE; 16-byte chunk c of row r at
// chunk c ^ (r & 7) for 128B — the layout gemm.cuh's wgmma descriptors read), zero fill past the
// edges, the round trip (out == in, stores clipped at the edges), a second load on the barrier's
// next phase (parity 1), and the host helper's argument errors.
// Build: nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include tests/gpu/tma_test.cu -o tma_test
// Usage: ./tma_test [seed]     (prints "N passed, N failed"; exit 1 on any failure)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "strata/ptx.cuh"
#include "strata/tma.cuh"

using bf16 = __nv_bfloat16;

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      printf("CUDA error %s at %s:%d (%s)\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                                 \
    }                                                                                          \
  } while (0)

static int g_pass = 0, g_fail = 0;
static void check(bool ok, const char* what, const char* detail = "") {
  printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, *detail ? ": " : "", detail);
  (ok ? g_pass : g_fail)++;
}

constexpr int kBox = 64;  // 64 x 64 bf16 tiles: 128-byte rows, one SWIZZLE_128B span

// Per CTA (tile row blockIdx.y, tile column blockIdx.x): TMA load -> dump the raw shared image ->
// TMA store; then a second load of the same tile on the barrier's next phase, dumped again.
__global__ void tma_roundtrip(const __grid_constant__ CUtensorMap in, const __grid_constant__ CUtensorMap out,
                              uint16_t* dump, uint16_t* dump2) {
  __shared__ alignas(1024) bf16 tile[kBox * kBox];
  __shared__ alignas(8) uint64_t bar;
  const int c0 = blockIdx.x * kBox, r0 = blockIdx.y * kBox;
  const size_t slot = ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * kBox * kBox;
  if (threadIdx.x == 0) {
    strata::prefetch_tensormap(&in);
    strata::mbarrier_init(&bar, 1);
    strata::fence_mbarrier_init();
  }
  __syncthreads();
  for (int phase = 0; phase < 2; ++phase) {
    if (threadIdx.x == 0) {
      strata::mbarrier_arrive_expect_tx(&bar, sizeof(tile));  // OOB fill counts as bytes too
      strata::tma_load_2d(tile, &in, &bar, c0, r0);
    }
    strata::mbarrier_wait_parity(&bar, phase);
    uint16_t* d = phase == 0 ? dump : dump2;
    for (int i = threadIdx.x; i < kBox * kBox; i += blockDim.x) d[slot + i] = reinterpret_cast<const uint16_t*>(tile)[i];
    if (phase == 0) {
      strata::fence_proxy_async();  // (the tile was not written by threads; kept as the store recipe)
      __syncthreads();
      if (threadIdx.x == 0) {
        strata::tma_store_2d(&out, tile, c0, r0);
        strata::tma_store_commit();
        strata::tma_store_wait<0>();  // the store has read the tile: it may be overwritten
      }
    }
    __syncthreads();
  }
}

static uint16_t bits(bf16 v) {
  uint16_t u;
  memcpy(&u, &v, 2);
  return u;
}

static void run(CUtensorMapSwizzle swz, const char* name, int rows, int cols, int ld, std::mt19937_64& rng) {
  std::vector<bf16> h((size_t)rows * ld);
  std::normal_distribution<float> nd;
  for (auto& v : h) v = __float2bfloat16(nd(rng) + 0.001f);  // never exactly 0: zero fill is visible
  bf16 *d_in, *d_out;
  CK(cudaMalloc(&d_in, h.size() * 2));
  CK(cudaMalloc(&d_out, h.size() * 2));
  CK(cudaMemcpy(d_in, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMemset(d_out, 0xFF, h.size() * 2));  // NaN: an element the store missed shows
  CUtensorMap mi, mo;
  const char* why = "";
  CK(strata::make_tensor_map_2d_bf16(&mi, d_in, rows, cols, ld, kBox, kBox, swz, &why));
  CK(strata::make_tensor_map_2d_bf16(&mo, d_out, rows, cols, ld, kBox, kBox, swz, &why));
  const dim3 grid((cols + kBox - 1) / kBox, (rows + kBox - 1) / kBox);
  const size_t ntile = (size_t)grid.x * grid.y * kBox * kBox;
  uint16_t *d_dump, *d_dump2;
  CK(cudaMalloc(&d_dump, ntile * 2));
  CK(cudaMalloc(&d_dump2, ntile * 2));
  tma_roundtrip<<<grid, 128>>>(mi, mo, d_dump, d_dump2);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<uint16_t> dump(ntile), dump2(ntile);
  std::vector<bf16> got(h.size());
  CK(cudaMemcpy(dump.data(), d_dump, ntile * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(dump2.data(), d_dump2, ntile * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(got.data(), d_out, h.size() * 2, cudaMemcpyDeviceToHost));

  long bad_smem = 0, bad_out = 0, bad_phase = 0, bad_pad = 0;
  for (unsigned ty = 0; ty < grid.y; ++ty)
    for (unsigned tx = 0; tx < grid.x; ++tx) {
      const size_t slot = ((size_t)ty * grid.x + tx) * kBox * kBox;
      for (int r = 0; r < kBox; ++r)
        for (int c = 0; c < kBox; ++c) {
          const int gr = ty * kBox + r, gc = tx * kBox + c;
          const uint16_t want = (gr < rows && gc < cols) ? bits(h[(size_t)gr * ld + gc]) : 0;
          // position of element (r, c) in the shared image
          const int chunk = c / 8, within = c % 8;
          const int pos = swz == CU_TENSOR_MAP_SWIZZLE_128B ? r * kBox + ((chunk ^ (r & 7)) * 8) + within : r * kBox + c;
          bad_smem += dump[slot + pos] != want;
          bad_phase += dump2[slot + pos] != dump[slot + pos];
        }
    }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < ld; ++c) {
      const uint16_t g = bits(got[(size_t)r * ld + c]);
      if (c < cols) bad_out += g != bits(h[(size_t)r * ld + c]);
      else bad_pad += g != 0xFFFF;  // the row padding past `cols` is never written
    }
  char buf[256];
  snprintf(buf, sizeof buf, "%d x %d (ld %d), %u tiles: %ld wrong in shared memory", rows, cols, ld, grid.x * grid.y, bad_smem);
  check(bad_smem == 0, (std::string(name) + " load: shared-memory image and zero fill").c_str(), buf);
  snprintf(buf, sizeof buf, "%ld elements differ", bad_out);
  check(bad_out == 0, (std::string(name) + " store: round trip out == in").c_str(), buf);
  snprintf(buf, sizeof buf, "%ld padding elements written", bad_pad);
  check(bad_pad == 0, (std::string(name) + " store: clipped at the tensor's edge").c_str(), buf);
  snprintf(buf, sizeof buf, "%ld differ", bad_phase);
  check(bad_phase == 0, (std::string(name) + " second load on mbarrier parity 1").c_str(), buf);
  CK(cudaFree(d_in));
  CK(cudaFree(d_out));
  CK(cudaFree(d_dump));
  CK(cudaFree(d_dump2));
}

int main(int argc, char** argv) {
  const unsigned long long seed = argc > 1 ? strtoull(argv[1], nullptr, 10) : (unsigned long long)time(nullptr);
  printf("tma_test seed %llu (./tma_test %llu reproduces)\n", seed, seed);
  std::mt19937_64 rng(seed);
  int dev = 0, major = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major < 9) {
    printf("needs sm_90 (TMA); found sm_%d0\n0 passed, 1 failed\n", major);
    return 1;
  }
  run(CU_TENSOR_MAP_SWIZZLE_NONE, "SWIZZLE_NONE", 200, 96, 104, rng);
  run(CU_TENSOR_MAP_SWIZZLE_128B, "SWIZZLE_128B", 136, 200, 200, rng);

  // argument errors are reported, not passed to the driver
  CUtensorMap m;
  bf16* p = nullptr;
  CK(cudaMalloc(&p, 1 << 20));
  const char* why = nullptr;
  check(strata::make_tensor_map_2d_bf16(&m, p + 1, 64, 64, 64, 64, 64, CU_TENSOR_MAP_SWIZZLE_NONE, &why) == cudaErrorInvalidValue,
        "tensor map: misaligned base rejected", why ? why : "");
  check(strata::make_tensor_map_2d_bf16(&m, p, 64, 60, 60, 64, 64, CU_TENSOR_MAP_SWIZZLE_NONE, &why) == cudaErrorInvalidValue,
        "tensor map: row stride not a multiple of 16 bytes rejected", why ? why : "");
  check(strata::make_tensor_map_2d_bf16(&m, p, 64, 128, 128, 64, 128, CU_TENSOR_MAP_SWIZZLE_128B, &why) == cudaErrorInvalidValue,
        "tensor map: box wider than the swizzle span rejected", why ? why : "");
  CK(cudaFree(p));
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}

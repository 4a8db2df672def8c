// Host program for tests/device/tma-map-host.test.ts: strata/tma.cuh's tensor-map builders on argument
// errors (no GPU needed: every case below is rejected before the driver is asked), and one valid
// map, which without a GPU fails at the driver lookup. Prints one line per case: "<rank> <cudaError> <reason>".
#include <cstdio>
#include <cuda.h>
#include <cuda_runtime.h>
#include "strata/tma.cuh"
int main() {
  CUtensorMap m; const char* why = nullptr; alignas(16) static char buf[1 << 16];
  struct C2 { const void* b; uint64_t r, c, rs; uint32_t br, bc; CUtensorMapSwizzle s; } c2[] = {
    {nullptr, 8, 8, 8, 8, 8, CU_TENSOR_MAP_SWIZZLE_128B}, {buf + 2, 8, 8, 8, 8, 8, CU_TENSOR_MAP_SWIZZLE_128B},
    {buf, 0, 8, 8, 8, 8, CU_TENSOR_MAP_SWIZZLE_128B}, {buf, 8, 8, 4, 8, 8, CU_TENSOR_MAP_SWIZZLE_128B},
    {buf, 8, 6, 6, 8, 8, CU_TENSOR_MAP_SWIZZLE_128B}, {buf, 8, 8, 8, 0, 8, CU_TENSOR_MAP_SWIZZLE_128B},
    {buf, 8, 8, 8, 8, 4, CU_TENSOR_MAP_SWIZZLE_128B}, {buf, 8, 128, 128, 8, 128, CU_TENSOR_MAP_SWIZZLE_128B},
    {buf, 8, 64, 64, 8, 64, CU_TENSOR_MAP_SWIZZLE_128B}};
  for (auto& c : c2) { why = nullptr; cudaError_t e = strata::make_tensor_map_2d_bf16(&m, c.b, c.r, c.c, c.rs, c.br, c.bc, c.s, &why); printf("2d %d %s\n", (int)e, why ? why : "-"); }
  struct C3 { uint64_t bt, r, c, rs, bs; uint32_t br, bc; } c3[] = {{0, 8, 8, 8, 64, 8, 8}, {2, 8, 8, 8, 8, 8, 8}, {2, 8, 8, 8, 68, 8, 8}, {2, 8, 8, 8, 64, 300, 8}, {1, 8, 64, 64, 0, 8, 64}};
  for (auto& c : c3) { why = nullptr; cudaError_t e = strata::make_tensor_map_3d_bf16(&m, buf, c.bt, c.r, c.c, c.rs, c.bs, c.br, c.bc, CU_TENSOR_MAP_SWIZZLE_128B, &why); printf("3d %d %s\n", (int)e, why ? why : "-"); }
}

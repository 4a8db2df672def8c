// epilogue_bench.cu — what a GEMM store that reads memory costs (H200, sm_90a): the 0.85B hybrid's
// MLP dgrad (M = 16384 tokens, N = 8192, K = 2048; A = gy K-major, B = W MN-major) on the
// warp-specialized kernel with epilogues: plain; × gelu′(h) of the stored pre-activation h (what
// the dgrad's store computed before compiler/kernels/matmul.ts absorbLinearEpilogue stopped
// fusing per-token reads); × h (the load alone); × gelu′(acc) (the arithmetic alone); and the
// plain dgrad followed by a vectorized row kernel that multiplies by gelu′(h) (what is generated
// now). Timing only (median of 10 after 3 warm-ups); correctness of the generated kernels is the
// GPU suite's.
// build: nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include tests/gpu/epilogue_bench.cu -o epilogue_bench
#include <cuda_bf16.h>
#include <cstdio>
#include <vector>
#include <algorithm>
#include "matmul.cuh"
#include "strata/math.cuh"
namespace sm = strata::matmul; namespace sg = strata::gemm; using bf16 = __nv_bfloat16;
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e_), __LINE__); exit(1);} } while (0)
struct P { const bf16* h; bf16* out; };
struct EpiPlain { using Params = P; __device__ static void store2(const P& p, int r, int c, float a, float b) { strata::store_bf16x2(p.out + (long long)r * 8192 + c, a, b); } };
struct EpiGeluInline { using Params = P; __device__ static void store2(const P& p, int r, int c, float a, float b) {
  const float g0 = strata::math::gelu_grad(__bfloat162float(p.h[(long long)r * 8192 + c])), g1 = strata::math::gelu_grad(__bfloat162float(p.h[(long long)r * 8192 + c + 1]));
  strata::store_bf16x2(p.out + (long long)r * 8192 + c, a * g0, b * g1); } };
struct EpiMulInline { using Params = P; __device__ static void store2(const P& p, int r, int c, float a, float b) {
  strata::store_bf16x2(p.out + (long long)r * 8192 + c, a * __bfloat162float(p.h[(long long)r * 8192 + c]), b * __bfloat162float(p.h[(long long)r * 8192 + c + 1])); } };
struct EpiGeluNoLoad { using Params = P; __device__ static void store2(const P& p, int r, int c, float a, float b) {
  strata::store_bf16x2(p.out + (long long)r * 8192 + c, a * strata::math::gelu_grad(a), b * strata::math::gelu_grad(b)); } };
__global__ void gelu_rows(const bf16* __restrict__ d, const bf16* __restrict__ h, bf16* __restrict__ o, long long n) {
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * 8; i < n; i += (long long)gridDim.x * blockDim.x * 8) {
    uint4 dv = *reinterpret_cast<const uint4*>(d + i), hv = *reinterpret_cast<const uint4*>(h + i), ov;
    const bf16* dd = reinterpret_cast<const bf16*>(&dv); const bf16* hh = reinterpret_cast<const bf16*>(&hv); bf16* oo = reinterpret_cast<bf16*>(&ov);
#pragma unroll
    for (int j = 0; j < 8; ++j) oo[j] = __float2bfloat16(__bfloat162float(dd[j]) * strata::math::gelu_grad(__bfloat162float(hh[j])));
    *reinterpret_cast<uint4*>(o + i) = ov; } }
__global__ void fill(bf16* p, size_t n, uint64_t s) { for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) { uint64_t x = s * 0x9E3779B97F4A7C15ULL + i; x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; p[i] = __float2bfloat16(((x >> 40) * (1.0f / 16777216.0f)) * 2.f - 1.f); } }
template <class F> float tms(F f) { cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b); for (int i = 0; i < 3; ++i) f(); std::vector<float> t; for (int i = 0; i < 10; ++i) { cudaEventRecord(a); f(); cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b); t.push_back(ms);} std::sort(t.begin(), t.end()); return t[5]; }
int main() {
  const int M = 16384, N = 8192, K = 2048; bf16 *gy, *W, *h, *out, *tmp;
  CK(cudaMalloc(&gy, (size_t)M * K * 2)); CK(cudaMalloc(&W, (size_t)K * N * 2)); CK(cudaMalloc(&h, (size_t)M * N * 2)); CK(cudaMalloc(&out, (size_t)M * N * 2)); CK(cudaMalloc(&tmp, (size_t)M * N * 2));
  fill<<<1024, 256>>>(gy, (size_t)M * K, 1); fill<<<1024, 256>>>(W, (size_t)K * N, 2); fill<<<1024, 256>>>(h, (size_t)M * N, 3);
  using C = sg::WsConfig<128, 256, 4>; using C2 = sg::WsConfig<128, 128, 5>; const double fl = 2.0 * M * N * K; P p{h, out};
#define RUN(CFG, E, name) { float t = tms([&] { CK((sm::matmul_launch<CFG, bf16, bf16, false, true, E>(gy, K, W, N, M, N, K, p))); }); printf("%-28s %8.1f us %6.0f TFLOP/s\n", name, t * 1e3, fl / t * 1e-9); }
  RUN(C, EpiPlain, "plain 128x256"); RUN(C, EpiGeluInline, "gelu'(h) in the store"); RUN(C, EpiMulInline, "h in the store (load only)"); RUN(C, EpiGeluNoLoad, "gelu'(acc) (compute only)");
  RUN(C2, EpiPlain, "plain 128x128"); RUN(C2, EpiGeluInline, "gelu'(h) in the store 128x128");
  P q{h, tmp};
  float t = tms([&] { CK((sm::matmul_launch<C, bf16, bf16, false, true, EpiPlain>(gy, K, W, N, M, N, K, q))); gelu_rows<<<132 * 8, 256>>>(tmp, h, out, (long long)M * N); });
  float tr = tms([&] { gelu_rows<<<132 * 8, 256>>>(tmp, h, out, (long long)M * N); });
  printf("unfused plain + gelu_rows %8.1f us (rows alone %.1f us)\n", t * 1e3, tr * 1e3);
  return 0; }

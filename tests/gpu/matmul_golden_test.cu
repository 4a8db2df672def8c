// matmul_golden_test.cu — every matmul-family kernel the compiler emits for the tiny examples'
// training graphs (dgrad with its fused epilogue and recomputed activation derivative, wgrad with
// sumTo + cast, split-K, general), run through its launcher on the inputs tests/gpu/matmul_golden.ts
// wrote and compared with the interpreter's float64 output of the same group; each case runs twice
// (bitwise equal). Output buffers and launch scratch are poisoned (NaN) first.
//
//   npx tsx tests/gpu/matmul_golden.ts .tmp/matmul-golden            (CPU machine, needs Node)
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include -I.tmp/matmul-golden \
//        tests/gpu/matmul_golden_test.cu -o matmul_golden_test && ./matmul_golden_test .tmp/matmul-golden
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "golden.inc"

#define CK(x)                                                                                \
  do {                                                                                       \
    cudaError_t e_ = (x);                                                                    \
    if (e_ != cudaSuccess) {                                                                 \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                               \
    }                                                                                        \
  } while (0)

static std::vector<char> slurp(const std::string& path, long long bytes) {
  std::vector<char> v(bytes);
  FILE* f = fopen(path.c_str(), "rb");
  if (!f || fread(v.data(), 1, bytes, f) != (size_t)bytes) { fprintf(stderr, "cannot read %lld bytes of %s\n", bytes, path.c_str()); exit(2); }
  fclose(f);
  return v;
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".tmp/matmul-golden";
  int pass = 0, fail = 0;
  for (const GoldenCase& c : kGolden) {
    void* ptrs[12] = {};
    int io = -1;
    for (int i = 0; i < c.nbuf; ++i) {
      CK(cudaMalloc(&ptrs[i], c.bytes[i] + 16));
      if (c.kind[i] == 0) {
        const std::vector<char> v = slurp(dir + "/" + c.file[i], c.bytes[i]);
        CK(cudaMemcpy(ptrs[i], v.data(), c.bytes[i], cudaMemcpyHostToDevice));
      } else {
        CK(cudaMemset(ptrs[i], 0xFF, c.bytes[i]));
        if (c.kind[i] != 3) io = i;
      }
    }
    const bool outBf16 = c.kind[io] == 1;
    const long long n = c.bytes[io] / (outBf16 ? 2 : 4);
    const std::vector<char> want = slurp(dir + "/" + c.file[io], n * 4);
    const StrataDims dims{c.B, c.T, 0, c.T, 0, nullptr};
    std::vector<char> r1(c.bytes[io]), r2(c.bytes[io]);
    const cudaError_t le = c.launch(ptrs, &dims, 0);
    if (le != cudaSuccess) {
      printf("FAIL golden %-60s launch: %s\n", c.name, cudaGetErrorString(le));
      ++fail;
      continue;
    }
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(r1.data(), ptrs[io], r1.size(), cudaMemcpyDeviceToHost));
    CK(c.launch(ptrs, &dims, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(r2.data(), ptrs[io], r2.size(), cudaMemcpyDeviceToHost));
    double d2 = 0, w2 = 0, maxd = 0, maxw = 0;
    bool finite = true;
    for (long long i = 0; i < n; ++i) {
      const double o = outBf16 ? (double)__bfloat162float(reinterpret_cast<const __nv_bfloat16*>(r1.data())[i]) : (double)reinterpret_cast<const float*>(r1.data())[i];
      const double w = reinterpret_cast<const float*>(want.data())[i];
      if (!std::isfinite(o)) finite = false;
      d2 += (o - w) * (o - w), w2 += w * w, maxd = std::fmax(maxd, std::fabs(o - w)), maxw = std::fmax(maxw, std::fabs(w));
    }
    const double rel = std::sqrt(d2 / std::fmax(w2, 1e-300)), maxrel = maxd / std::fmax(maxw, 1e-300);
    const bool same = r1 == r2;
    // bf16 tensor-core inputs (f32 operands rounded), bf16 outputs: bf16's tolerance
    const bool ok = finite && same && rel <= 1e-2 && maxrel <= 4e-2;
    printf("%s golden %-60s B=%d T=%d relL2=%.2e maxrel=%.2e%s\n", ok ? "PASS" : "FAIL", c.name, c.B, c.T, rel, maxrel, same ? "" : " NOT REPEATABLE");
    (ok ? pass : fail)++;
    for (int i = 0; i < c.nbuf; ++i) cudaFree(ptrs[i]);
  }
  printf("%d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
}

// matmul_emitted_test.cu — the matmul family's kernels exactly as the compiler emits them
// (tests/gpu/matmul_emit.ts writes them with a case table), run through their launchers on fresh
// random inputs and checked against a float64 CPU reference; each case runs twice (bitwise equal).
//
//   npx tsx tests/gpu/matmul_emit.ts .tmp/matmul/emitted.inc            (on the CPU machine)
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Itemplates/include -I.tmp/matmul \
//        tests/gpu/matmul_emitted_test.cu -o matmul_emitted_test && ./matmul_emitted_test
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "emitted.inc"

#define CK(x)                                                                                \
  do {                                                                                       \
    cudaError_t e_ = (x);                                                                    \
    if (e_ != cudaSuccess) {                                                                 \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                               \
    }                                                                                        \
  } while (0)

static uint64_t rng = 0x1234567ULL;
static double urand() {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (double)((z ^ (z >> 31)) >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

struct Buf {
  int dtype = 0;
  size_t n = 0;
  std::vector<double> h;  // the exact values (representable in dtype)
  void* d = nullptr;
  void random(int dt, size_t count) {
    dtype = dt, n = count, h.resize(n);
    std::vector<__nv_bfloat16> b(n);
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i) {
      const float v = (float)urand();
      if (dt == 0) b[i] = __float2bfloat16(v), h[i] = (double)__bfloat162float(b[i]);
      else f[i] = v, h[i] = v;
    }
    CK(cudaMalloc(&d, n * (dt ? 4 : 2) + 16));
    CK(cudaMemcpy(d, dt ? (void*)f.data() : (void*)b.data(), n * (dt ? 4 : 2), cudaMemcpyHostToDevice));
  }
  void poison(int dt, size_t count) {
    dtype = dt, n = count;
    CK(cudaMalloc(&d, n * (dt ? 4 : 2) + 16));
    CK(cudaMemset(d, 0xFF, n * (dt ? 4 : 2)));
  }
  std::vector<double> read(std::vector<char>* raw = nullptr) const {
    std::vector<char> r(n * (dtype ? 4 : 2));
    CK(cudaMemcpy(r.data(), d, r.size(), cudaMemcpyDeviceToHost));
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = dtype ? (double)reinterpret_cast<float*>(r.data())[i] : (double)__bfloat162float(reinterpret_cast<__nv_bfloat16*>(r.data())[i]);
    if (raw) *raw = r;
    return v;
  }
};

int main() {
  int pass = 0, fail = 0;
  // 111 tokens (not a multiple of any tile); 3000 (wgrad of these small weights splits its tokens)
  for (const int2 bt : {make_int2(3, 37), make_int2(2, 1500)})
  for (const EmCase& c : kCases) {
    const int B = bt.x, T = bt.y, M = B * T;
    Buf bufs[8];
    const int n = c.n, k = c.k;
    const int H = n, D = k;  // general: heads, head dim
    int iA = -1, iB = -1, iO = -1, iX = -1;
    int iS = -1;
    for (int i = 0; i < c.nbuf; ++i) (c.role[i] == 0 ? iA : c.role[i] == 1 ? iB : c.role[i] == 2 ? iO : c.role[i] == 3 ? iX : iS) = i;
    size_t na, nb, no;
    if (c.kind == 0) na = (size_t)M * k, nb = (size_t)k * n, no = (size_t)M * n;
    else if (c.kind == 1) na = (size_t)M * n, nb = (size_t)M * k, no = (size_t)n * k;
    else na = nb = (size_t)M * H * D, no = (size_t)B * H * T * T;
    bufs[iA].random(c.dtype[iA], na);
    bufs[iB].random(c.dtype[iB], nb);
    if (iX >= 0) bufs[iX].random(c.dtype[iX], no);
    bufs[iO].poison(c.dtype[iO], no);
    if (iS >= 0) bufs[iS].poison(1, (size_t)c.scratch / 4);  // launch scratch: garbage on entry
    void* ptrs[8];
    for (int i = 0; i < c.nbuf; ++i) ptrs[i] = bufs[i].d;
    const StrataDims dims{B, T, 0, T, 0, nullptr};
    CK(c.launch(ptrs, &dims, 0));
    CK(cudaDeviceSynchronize());
    std::vector<char> raw1, raw2;
    const std::vector<double> o = bufs[iO].read(&raw1);
    CK(c.launch(ptrs, &dims, 0));
    CK(cudaDeviceSynchronize());
    bufs[iO].read(&raw2);
    const std::vector<double>&a = bufs[iA].h, &b = bufs[iB].h;
    std::vector<double> ref(no);
    if (c.kind == 0) {
      for (int m = 0; m < M; ++m)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int q = 0; q < k; ++q) s += a[(size_t)m * k + q] * b[(size_t)q * n + j];
          if (c.mask) s *= bufs[iX].h[(size_t)m * n + j] > 0 ? 1.0 : 0.0;
          ref[(size_t)m * n + j] = s;
        }
    } else if (c.kind == 1) {
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < k; ++j) {
          double s = 0;
          for (int t = 0; t < M; ++t) s += a[(size_t)t * n + i] * b[(size_t)t * k + j];
          ref[(size_t)i * k + j] = s;
        }
    } else {
      for (int bb = 0; bb < B; ++bb)
        for (int h = 0; h < H; ++h)
          for (int t1 = 0; t1 < T; ++t1)
            for (int t2 = 0; t2 < T; ++t2) {
              double s = 0;
              for (int d = 0; d < D; ++d) s += a[((size_t)bb * T + t1) * H * D + h * D + d] * b[((size_t)bb * T + t2) * H * D + h * D + d];
              ref[(((size_t)bb * H + h) * T + t1) * T + t2] = s;
            }
    }
    double d2 = 0, r2 = 0, maxd = 0, maxr = 0;
    bool finite = true;
    for (size_t i = 0; i < no; ++i) {
      if (!std::isfinite(o[i])) finite = false;
      d2 += (o[i] - ref[i]) * (o[i] - ref[i]), r2 += ref[i] * ref[i];
      maxd = std::fmax(maxd, std::fabs(o[i] - ref[i])), maxr = std::fmax(maxr, std::fabs(ref[i]));
    }
    const double rel = std::sqrt(d2 / std::fmax(r2, 1e-300)), maxrel = maxd / std::fmax(maxr, 1e-300);
    // bf16 output or f32 inputs rounded to bf16: bf16's tolerance; bf16 inputs into f32: fp32 summation
    bool exactIn = c.dtype[iA] == 0 && c.dtype[iB] == 0;
    const double tol = (exactIn && c.dtype[iO] == 1) ? 1e-5 : 1e-2;
    const bool same = raw1 == raw2;
    const bool ok = finite && rel <= tol && maxrel <= 4 * tol && same;
    printf("%s emitted %-40s B=%d T=%d n=%d k=%d relL2=%.3e maxrel=%.3e %s\n", ok ? "PASS" : "FAIL", c.name, B, T, n, k, rel, maxrel,
           same ? "bitwise-repeatable" : "NOT REPEATABLE");
    (ok ? pass : fail)++;
    for (int i = 0; i < c.nbuf; ++i) cudaFree(bufs[i].d);
  }
  printf("%d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
}

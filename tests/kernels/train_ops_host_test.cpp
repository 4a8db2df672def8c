// train_ops_host_test.cpp — the training-op kernels as emitted (tests/gpu/train_ops_emit.ts), run
// on the CPU through the host stand-in of train_ops.cuh (tests/kernels/train_ops_host/): the
// functors fusion generated, the launchers' buffer wiring and the scratch sizes, against the
// interpreter's float64 values. Built and run by tests/kernels/train-ops.test.ts:
//   nvcc -x c++ -std=c++17 -O2 -I<dir of emitted.inc> -Itests/kernels/train_ops_host -Itemplates/include \
//        tests/kernels/train_ops_host_test.cpp -o host_test && ./host_test <dir>/data.bin
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "emitted.inc"

static const size_t kSize[] = {2, 4, 4};  // bf16, f32, i32
static const size_t kCanary = 256;

int main(int argc, char** argv) {
  FILE* f = fopen(argc > 1 ? argv[1] : "data.bin", "rb");
  if (!f) return 2;
  std::vector<char> blob;
  fseek(f, 0, SEEK_END);
  blob.resize(ftell(f));
  fseek(f, 0, SEEK_SET);
  if (fread(blob.data(), 1, blob.size(), f) != blob.size()) return 2;
  fclose(f);
  int pass = 0, fail = 0;
  const StrataDims dims{kEmittedB, kEmittedT, 0, kEmittedT, 0, nullptr};
  for (const EmittedCase& c : kEmitted) {
    std::vector<std::vector<char>> mem(c.nbuf);
    std::vector<void*> ptr(c.nbuf);
    for (int i = 0; i < c.nbuf; ++i) {
      const EmittedBuf& b = c.bufs[i];
      const size_t bytes = b.role == 2 ? (size_t)b.n : (size_t)b.n * kSize[b.dtype];
      mem[i].assign(bytes + kCanary, (char)0xA5);
      memset(mem[i].data(), 0xFF, bytes);
      if (b.role == 0) {
        const float* v = reinterpret_cast<const float*>(blob.data() + b.data);
        for (long long k = 0; k < b.n; ++k) {
          if (b.dtype == 0) reinterpret_cast<__nv_bfloat16*>(mem[i].data())[k] = __float2bfloat16(v[k]);
          else if (b.dtype == 1) reinterpret_cast<float*>(mem[i].data())[k] = v[k];
          else reinterpret_cast<int*>(mem[i].data())[k] = (int)v[k];
        }
      }
      ptr[i] = mem[i].data();
    }
    if (c.launch(ptr.data(), &dims, 0) != cudaSuccess) { printf("FAIL %s: launcher returned an error\n", c.name); ++fail; continue; }
    for (int i = 0; i < c.nbuf; ++i) {
      const EmittedBuf& b = c.bufs[i];
      const size_t bytes = b.role == 2 ? (size_t)b.n : (size_t)b.n * kSize[b.dtype];
      bool canary = true;
      for (size_t k = 0; k < kCanary; ++k) canary = canary && mem[i][bytes + k] == (char)0xA5;
      if (!canary) { printf("FAIL %s: buffer %d written past its %zu bytes\n", c.name, i, bytes); ++fail; }
      if (b.role != 1) continue;
      const double* ref = reinterpret_cast<const double*>(blob.data() + b.ref);
      double num = 0, den = 0, maxerr = 0, maxref = 0;
      bool nan = false;
      for (long long k = 0; k < b.n; ++k) {
        const double g = b.dtype == 0 ? __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(mem[i].data())[k]) : reinterpret_cast<const float*>(mem[i].data())[k];
        if (!std::isfinite(g)) { nan = true; continue; }
        num += (g - ref[k]) * (g - ref[k]); den += ref[k] * ref[k];
        maxerr = std::fmax(maxerr, std::fabs(g - ref[k]));
        maxref = std::fmax(maxref, std::fabs(ref[k]));
      }
      const double rel = std::sqrt(num / std::fmax(den, 1e-300)), relmax = maxerr / std::fmax(maxref, 1e-300);
      const bool ok = !nan && rel <= b.tol && relmax <= b.tol;
      printf("%s %s: output %d (relL2 %.2e, max|err|/max|ref| %.2e, n=%lld, tol %.0e%s)\n", ok ? "PASS" : "FAIL", c.name, i, rel, relmax, b.n, b.tol, nan ? ", NaN" : "");
      (ok ? pass : fail)++;
    }
  }
  printf("%d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
}

// train_ops_emitted_test.cu — the reduce / cross_entropy / embedding_grad / conv1d_grad kernels as
// the compiler emits them for tiny examples' training graphs (tests/gpu/train_ops_emit.ts), run on
// the GPU against the interpreter's float64 values of each group, twice (bit-identical).
//
// Build and run (from the repository root; the first step needs Node, so run it on the CPU
// machine and carry .tmp/train_ops over):
//   npx tsx tests/gpu/train_ops_emit.ts .tmp/train_ops
//   nvcc -std=c++17 -O3 -arch=sm_90a -Itemplates/include -I.tmp/train_ops tests/gpu/train_ops_emitted_test.cu -o train_ops_emitted_test
//   ./train_ops_emitted_test .tmp/train_ops/data.bin
// One PASS/FAIL line per check, then "N passed, N failed"; exit 1 if any failed, 2 on a CUDA error.
#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "emitted.inc"

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      printf("CUDA error %s at %s:%d (%s)\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      exit(2);                                                                                 \
    }                                                                                          \
  } while (0)

static int g_pass = 0, g_fail = 0;
static const size_t kSize[] = {2, 4, 4};  // bf16, f32, i32

static void report(bool ok, const std::string& line) {
  (ok ? g_pass : g_fail)++;
  printf("%s %s\n", ok ? "PASS" : "FAIL", line.c_str());
}

static std::vector<char> to_device_bytes(const float* v, long long n, int dtype) {
  std::vector<char> out(n * kSize[dtype]);
  for (long long i = 0; i < n; ++i) {
    if (dtype == 0) reinterpret_cast<__nv_bfloat16*>(out.data())[i] = __float2bfloat16(v[i]);
    else if (dtype == 1) reinterpret_cast<float*>(out.data())[i] = v[i];
    else reinterpret_cast<int*>(out.data())[i] = (int)v[i];
  }
  return out;
}

static double value(const std::vector<char>& b, long long i, int dtype) {
  if (dtype == 0) return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(b.data())[i]);
  if (dtype == 1) return reinterpret_cast<const float*>(b.data())[i];
  return reinterpret_cast<const int*>(b.data())[i];
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : ".tmp/train_ops/data.bin";
  FILE* f = fopen(path, "rb");
  if (!f) { printf("cannot open %s (write it with: npx tsx tests/gpu/train_ops_emit.ts .tmp/train_ops)\n", path); return 2; }
  std::vector<char> blob;
  {
    fseek(f, 0, SEEK_END);
    blob.resize(ftell(f));
    fseek(f, 0, SEEK_SET);
    if (fread(blob.data(), 1, blob.size(), f) != blob.size()) { printf("short read of %s\n", path); return 2; }
    fclose(f);
  }
  const StrataDims dims{kEmittedB, kEmittedT, 0, kEmittedT, 0, nullptr};
  for (const EmittedCase& c : kEmitted) {
    std::vector<void*> dev(c.nbuf, nullptr);
    std::vector<size_t> bytes(c.nbuf);
    for (int i = 0; i < c.nbuf; ++i) {
      const EmittedBuf& b = c.bufs[i];
      bytes[i] = b.role == 2 ? (size_t)b.n : (size_t)b.n * kSize[b.dtype];
      CK(cudaMalloc(&dev[i], bytes[i] ? bytes[i] : 1));
      if (b.role == 0) {
        auto h = to_device_bytes(reinterpret_cast<const float*>(blob.data() + b.data), b.n, b.dtype);
        CK(cudaMemcpy(dev[i], h.data(), h.size(), cudaMemcpyHostToDevice));
      }
    }
    std::vector<std::vector<char>> got[2];
    bool launched = true;
    for (int run = 0; run < 2; ++run) {
      for (int i = 0; i < c.nbuf; ++i)
        if (c.bufs[i].role != 0) CK(cudaMemset(dev[i], 0xFF, bytes[i]));  // NaN in every output and the scratch
      const cudaError_t e = c.launch(dev.data(), &dims, 0);
      const cudaError_t s = cudaDeviceSynchronize();
      if (e != cudaSuccess || s != cudaSuccess) {
        report(false, std::string(c.name) + ": launch failed: " + cudaGetErrorString(e != cudaSuccess ? e : s));
        launched = false;
        break;
      }
      for (int i = 0; i < c.nbuf; ++i) {
        got[run].emplace_back();
        if (c.bufs[i].role != 1) continue;
        got[run].back().resize(bytes[i]);
        CK(cudaMemcpy(got[run].back().data(), dev[i], bytes[i], cudaMemcpyDeviceToHost));
      }
    }
    if (launched) {
      for (int i = 0; i < c.nbuf; ++i) {
        const EmittedBuf& b = c.bufs[i];
        if (b.role != 1) continue;
        const double* ref = reinterpret_cast<const double*>(blob.data() + b.ref);
        double num = 0, den = 0, maxerr = 0, maxref = 0;
        bool nan = false;
        for (long long k = 0; k < b.n; ++k) {
          const double g = value(got[0][i], k, b.dtype);
          if (!std::isfinite(g)) { nan = true; continue; }
          num += (g - ref[k]) * (g - ref[k]); den += ref[k] * ref[k];
          maxerr = std::fmax(maxerr, std::fabs(g - ref[k]));
          maxref = std::fmax(maxref, std::fabs(ref[k]));
        }
        const double rel = std::sqrt(num / std::fmax(den, 1e-300)), relmax = maxerr / std::fmax(maxref, 1e-300);
        char line[512];
        snprintf(line, sizeof line, "%s: output %d (relL2 %.2e, max|err|/max|ref| %.2e, n=%lld, tol %.0e%s)", c.name, i, rel, relmax, b.n, b.tol, nan ? ", NaN" : "");
        report(!nan && rel <= b.tol && relmax <= b.tol, line);
        const bool same = got[0][i].size() == got[1][i].size() && memcmp(got[0][i].data(), got[1][i].data(), got[0][i].size()) == 0;
        report(same, std::string(c.name) + ": output " + std::to_string(i) + " deterministic (two runs, bit-identical)");
      }
    }
    for (void* p : dev) cudaFree(p);
  }
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

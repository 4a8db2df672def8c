// reduce_vec_test.cpp — the token reductions' vectorized pass 1 against the scalar pass, on the
// CPU through the host stand-in (train_ops.cuh here): every case of reduce_vec.inc (a rendered
// reduce kernel; written by tests/kernels/train-ops.test.ts) runs twice on the same inputs, once
// with 16-byte aligned base pointers (the launcher must take column_sums_vec's vector pass, where
// the stand-in also checks Src8 against Src and the two passes' partials bit for bit) and once
// with every base pointer 4 bytes off (st::aligned16 fails: the scalar pass must run; a vector load
// there would trap). Every buffer — outputs and the partials' scratch — must be bit-identical
// between the two runs. Built and run by the test:
//   nvcc -x c++ -std=c++17 -O2 -I<dir of reduce_vec.inc> -Itests/kernels/train_ops_host \
//        -Itemplates/include reduce_vec_test.cpp -o reduce_vec_test && ./reduce_vec_test
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "reduce_vec.inc"

// Finite as bf16 and, read in pairs, as f32: each 16-bit half a bf16 of magnitude in [2^-8, 2).
static void fill(unsigned char* p, size_t bytes, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t k = 0; k + 1 < bytes; k += 2) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    const unsigned sign = (unsigned)(s >> 63), exp = 119 + (unsigned)((s >> 40) % 9), man = (unsigned)(s & 0x7f);
    const uint16_t h = (uint16_t)((sign << 15) | (exp << 7) | man);
    memcpy(p + k, &h, 2);
  }
}

int main() {
  int pass = 0, fail = 0;
  const StrataDims dims{kVecB, kVecT, 0, kVecT, 0, nullptr};
  for (size_t ci = 0; ci < sizeof kVecCases / sizeof kVecCases[0]; ++ci) {
    const VecCase& c = kVecCases[ci];
    std::vector<std::vector<unsigned char>> out[2];
    strata::train::ColumnSumsCount count[2];
    for (int run = 0; run < 2; ++run) {
      const size_t shift = run == 0 ? 0 : 4;
      std::vector<unsigned char*> base(c.nbuf);
      std::vector<void*> ptr(c.nbuf);
      for (int i = 0; i < c.nbuf; ++i) {
        base[i] = static_cast<unsigned char*>(aligned_alloc(64, (size_t)c.bytes + 64));
        fill(base[i] + shift, (size_t)c.bytes, ci * 64 + i);
        ptr[i] = base[i] + shift;
      }
      const strata::train::ColumnSumsCount before = strata::train::g_column_sums;
      const cudaError_t e = c.launch(ptr.data(), &dims, 0);
      count[run] = strata::train::g_column_sums;
      count[run].scalar -= before.scalar; count[run].vec -= before.vec; count[run].fallback -= before.fallback;
      if (e != cudaSuccess) { printf("FAIL %s: launcher returned an error\n", c.name); ++fail; }
      for (int i = 0; i < c.nbuf; ++i) {
        out[run].emplace_back(base[i] + shift, base[i] + shift + c.bytes);
        free(base[i]);
      }
    }
    const bool tookVec = count[0].vec == 1 && count[0].fallback == 0 && count[0].scalar == 0;
    const bool fellBack = count[1].vec == 0 && count[1].fallback == 1 && count[1].scalar == 1;
    bool same = true;
    for (int i = 0; i < c.nbuf; ++i) same = same && out[0][i] == out[1][i];
    const bool ok = tookVec == (c.vec != 0) && (c.vec ? fellBack : count[1].vec == 0) && same;
    printf("%s %s: aligned %s, misaligned %s, buffers %s\n", ok ? "PASS" : "FAIL", c.name, tookVec ? "vector pass" : "scalar pass",
           fellBack ? "fell back to the scalar pass" : count[1].vec ? "VECTOR pass" : "scalar pass", same ? "bit-identical" : "DIFFER");
    (ok ? pass : fail)++;
  }
  printf("%d passed, %d failed\n", pass, fail);
  return fail ? 1 : 0;
}

// scan_grad_host.cu — host check of include/ssd_bwd.cuh's state passing (pass_chunks, the body of
// state_pass_kernel): with its loads issued kInFlight chunks ahead it must give bit-identical
// results to the plain sequential recurrence (the form measured on the GPU by
// tests/gpu/ssm_bwd_test.cu), for chunk counts around the batch size. No GPU needed.
// Build: nvcc -std=c++17 -Itemplates/include tests/kernels/scan_grad_host.cu -o scan_grad_host
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ssd_bwd.cuh"

int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f), d(0.01f, 1.f);
  int fails = 0;
  for (int nc : {0, 1, 2, 7, 8, 9, 16, 17, 64, 100}) {
    const size_t stride = 3;
    std::vector<float> S(nc * stride + 1), R(S.size()), dec(nc);
    for (auto& v : S) v = u(rng);
    for (auto& v : R) v = u(rng);
    for (auto& v : dec) v = d(rng);
    const float h0 = u(rng);
    // reference: the plain loops
    std::vector<float> S1 = S, R1 = R;
    float h = h0;
    for (int c = 0; c < nc; ++c) {
      const float loc = S1[c * stride];
      S1[c * stride] = h;
      h = dec[c] * h + loc;
    }
    float g = 0.f;
    for (int c = nc - 1; c >= 0; --c) {
      const float loc = R1[c * stride];
      R1[c * stride] = g;
      g = dec[c] * g + loc;
    }
    std::vector<float> S2 = S, R2 = R;
    const float g2 = strata::ssd_bwd::detail::pass_chunks(S2.data(), R2.data(), dec.data(), nc, stride, h0);
    const bool same = std::memcmp(S1.data(), S2.data(), S1.size() * 4) == 0 && std::memcmp(R1.data(), R2.data(), R1.size() * 4) == 0 &&
                      std::memcmp(&g, &g2, 4) == 0;
    if (!same) ++fails;
    printf("%s pass_chunks nc=%d\n", same ? "PASS" : "FAIL", nc);
  }
  printf("%d failed\n", fails);
  return fails ? 1 : 0;
}

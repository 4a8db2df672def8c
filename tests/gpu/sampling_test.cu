// GPU check of the sampler (runtime/src/sampling.cu) on synthetic logits, against the exact
// distribution computed on the host: greedy = argmax; temperature / top-k / top-p / repetition
// penalty draws follow softmax restricted to the kept set (chi-square test over many draws, each
// draw a different Philox step); the same seed and step give the same token; a different batch
// composition does not change sequence 0's draws. Prints "N passed, N failed".
//   nvcc -std=c++17 -O2 -arch=sm_90a -I runtime/include -I runtime/src -I templates/include \
//        tests/gpu/sampling_test.cu runtime/src/sampling.cu -o sampling_test
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "sampling.h"

using strata::SamplingParams;

static int g_pass = 0, g_fail = 0;
static void check(bool ok, const char* what, double v) {
  std::printf("%s %s (%g)\n", ok ? "PASS" : "FAIL", what, v);
  (ok ? g_pass : g_fail)++;
}

// the distribution the sampler must follow, computed in double on the bf16-rounded logits
static std::vector<double> target(const std::vector<float>& l, const SamplingParams& p, const std::vector<uint8_t>& seen) {
  const int V = static_cast<int>(l.size());
  std::vector<double> x(V);
  for (int i = 0; i < V; ++i) {
    double v = __bfloat162float(__float2bfloat16(l[i]));
    if (!seen.empty() && seen[i] && p.repetition_penalty != 1.f) v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    x[i] = v;
  }
  std::vector<int> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] > x[b]; });
  const double m = x[idx[0]];
  std::vector<double> w(V, 0.0);
  // ties at a threshold are kept (the kernel keeps every token whose logit reaches the k-th
  // largest, as HF's TopKLogitsWarper does): bf16 logits tie often enough to matter
  const auto with_ties = [&](int k) {
    while (k > 0 && k < V && x[idx[k]] == x[idx[k - 1]]) ++k;
    return k;
  };
  int keep = with_ties((p.top_k > 0 && p.top_k < V) ? p.top_k : V);
  double Z = 0;
  for (int r = 0; r < keep; ++r) Z += std::exp((x[idx[r]] - m) / p.temperature);
  if (p.top_p < 1.f) {
    double acc = 0;
    int k2 = 0;
    while (k2 < keep && acc < p.top_p * Z) acc += std::exp((x[idx[k2++]] - m) / p.temperature);
    keep = std::min(keep, with_ties(k2));
  }
  double Zk = 0;
  for (int r = 0; r < keep; ++r) Zk += (w[idx[r]] = std::exp((x[idx[r]] - m) / p.temperature));
  for (double& v : w) v /= Zk;
  return w;
}

static std::vector<int> draw(const std::vector<float>& l, int rows, const SamplingParams& p, int steps, uint64_t step0 = 0,
                             const std::vector<uint8_t>* seen = nullptr) {
  const int V = static_cast<int>(l.size());
  std::vector<__nv_bfloat16> h(static_cast<size_t>(rows) * V);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < V; ++i) h[static_cast<size_t>(r) * V + i] = __float2bfloat16(l[i]);
  __nv_bfloat16* d;
  int32_t* t;
  uint8_t* s = nullptr;
  cudaMalloc(&d, h.size() * 2);
  cudaMalloc(&t, rows * 4);
  cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice);
  if (seen) cudaMalloc(&s, static_cast<size_t>(rows) * V);
  std::vector<int> out;
  std::vector<int32_t> buf(rows);
  for (int k = 0; k < steps; ++k) {
    if (seen)
      for (int r = 0; r < rows; ++r) cudaMemcpy(s + static_cast<size_t>(r) * V, seen->data(), V, cudaMemcpyHostToDevice);
    strata::launch_sample(d, rows, V, V, p, step0 + k, s, t, 0);
    cudaMemcpy(buf.data(), t, rows * 4, cudaMemcpyDeviceToHost);
    out.insert(out.end(), buf.begin(), buf.end());
  }
  cudaFree(d);
  cudaFree(t);
  if (s) cudaFree(s);
  return out;
}

// chi-square statistic over categories with expected count ≥ 5 (the rest pooled); returns
// (statistic, degrees of freedom); also fails if a token outside the kept set was drawn
static bool chi_square_ok(const std::vector<int>& got, const std::vector<double>& w, const char* what) {
  const int V = static_cast<int>(w.size());
  std::vector<double> cnt(V, 0);
  for (int t : got) cnt[t] += 1;
  const double n = static_cast<double>(got.size());
  double chi = 0, pooled_o = 0, pooled_e = 0;
  int df = -1, outside = 0;
  for (int i = 0; i < V; ++i) {
    if (w[i] == 0) {
      outside += cnt[i] > 0;
      continue;
    }
    const double e = w[i] * n;
    if (e < 5) {
      pooled_o += cnt[i];
      pooled_e += e;
      continue;
    }
    chi += (cnt[i] - e) * (cnt[i] - e) / e;
    ++df;
  }
  if (pooled_e > 0) chi += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e, ++df;
  // p < 1e-4 critical value, Wilson–Hilferty approximation
  const double z = 3.719;
  const double crit = df * std::pow(1 - 2.0 / (9 * df) + z * std::sqrt(2.0 / (9 * df)), 3);
  std::printf("  %s: chi2 %.1f, df %d, critical %.1f, outside the kept set %d\n", what, chi, df, crit, outside);
  return df > 0 && chi < crit && outside == 0;
}

int main() {
  std::mt19937 rng(std::random_device{}());
  const unsigned seed = rng();
  std::printf("seed %u\n", seed);
  rng.seed(seed);
  std::normal_distribution<float> nd(0.f, 2.f);
  const int V = 61;  // not a power of two, fewer than the block's threads
  std::vector<float> l(V);
  for (auto& v : l) v = nd(rng);
  const int N = 40000;

  SamplingParams greedy;
  {
    auto g = draw(l, 3, greedy, 4);
    const int am = static_cast<int>(std::max_element(l.begin(), l.end(), [](float a, float b) {
                     return __bfloat162float(__float2bfloat16(a)) < __bfloat162float(__float2bfloat16(b));
                   }) - l.begin());
    check(std::all_of(g.begin(), g.end(), [&](int t) { return t == am; }), "greedy = argmax", am);
  }
  struct Case {
    const char* name;
    float temp;
    int k;
    float p;
  } cases[] = {{"temperature 1", 1.f, 0, 1.f}, {"temperature 0.7", 0.7f, 0, 1.f}, {"top-k 7", 1.f, 7, 1.f}, {"top-p 0.8", 1.2f, 0, 0.8f}, {"top-k 20 + top-p 0.9", 0.9f, 20, 0.9f}};
  for (const Case& c : cases) {
    SamplingParams p;
    p.temperature = c.temp;
    p.top_k = c.k;
    p.top_p = c.p;
    p.seed = rng();
    auto got = draw(l, 4, p, N / 4);
    check(chi_square_ok(got, target(l, p, {}), c.name), c.name, static_cast<double>(got.size()));
  }
  {
    // a tie at the k-th largest logit: top-k 3 keeps all four of 2.5, 1.5, 1, 1
    std::vector<float> tied(V);
    for (auto& v : tied) v = -2.f + 0.5f * nd(rng) * 0.1f;
    tied[5] = 2.5f, tied[17] = 1.5f, tied[30] = 1.f, tied[44] = 1.f;
    SamplingParams p;
    p.temperature = 1.f;
    p.top_k = 3;
    p.seed = rng();
    auto got = draw(tied, 4, p, N / 4);
    const auto w = target(tied, p, {});
    const int kept = static_cast<int>(std::count_if(w.begin(), w.end(), [](double x) { return x > 0; }));
    check(kept == 4 && chi_square_ok(got, w, "top-k 3, tie at the 3rd"), "top-k 3 with a tie at the threshold keeps both", kept);
  }
  {
    SamplingParams p;
    p.temperature = 1.f;
    p.repetition_penalty = 1.8f;
    p.seed = rng();
    std::vector<uint8_t> seen(V, 0);
    for (int i = 0; i < V; i += 3) seen[i] = 1;
    auto got = draw(l, 2, p, N / 2, 0, &seen);
    check(chi_square_ok(got, target(l, p, seen), "repetition penalty 1.8"), "repetition penalty 1.8", static_cast<double>(got.size()));
  }
  {
    SamplingParams p;
    p.temperature = 1.f;
    p.seed = 12345;
    auto a = draw(l, 2, p, 50, 7);
    auto b = draw(l, 2, p, 50, 7);
    check(a == b, "same seed and step: same tokens", static_cast<double>(a.size()));
    auto c = draw(l, 5, p, 50, 7);  // sequence 0 alone vs among 5
    bool same0 = true;
    for (int k = 0; k < 50; ++k) same0 &= a[static_cast<size_t>(k) * 2] == c[static_cast<size_t>(k) * 5];
    check(same0, "sequence 0's draws do not depend on the batch", 50);
    p.seed = 12346;
    auto d = draw(l, 2, p, 50, 7);
    check(d != a, "another seed: other tokens", 50);
  }
  {
    // a large vocabulary (the 8B models' 256000) with one dominant token and top-p 0.5: that token
    std::vector<float> big(256000);
    for (auto& v : big) v = nd(rng) * 0.5f;
    big[123457] = 40.f;
    SamplingParams p;
    p.temperature = 1.f;
    p.top_p = 0.5f;
    p.seed = rng();
    auto got = draw(big, 2, p, 20);
    check(std::all_of(got.begin(), got.end(), [](int t) { return t == 123457; }), "vocab 256000: top-p keeps the dominant token", got[0]);
  }
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

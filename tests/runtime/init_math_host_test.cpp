// init_math.h compiled as plain C++ (no CUDA) against the host init it now backs (init.cpp,
// dtype.cpp) and against the arithmetic init.cpp had before the header existed (ref_element,
// verbatim): the host path's values must not change, every InitKind, random names / seeds /
// indices. Also: its bf16 / f16 storage conversions equal dtype.cpp's on random and special bit
// patterns, and the radius test (f32_ambiguous) flags few elements and never passes a value
// that another libm within the radius could round differently. Run by init-math.test.ts.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dtype.h"
#include "init.h"
#include "init_math.h"
#include "json.h"

using namespace strata;

static int failures = 0;
#define CHECK(cond, ...)                        \
  do {                                          \
    if (!(cond)) {                              \
      if (++failures <= 20) {                   \
        std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
        std::printf(__VA_ARGS__);               \
        std::printf("\n");                      \
      }                                         \
    }                                           \
  } while (0)

// init.cpp's init_element before init_math.h (libm double functions, no FMA).
static double ref_element(const InitSpec& s, uint64_t key, uint64_t i) {
  switch (s.kind) {
    case InitKind::Const:
      return s.value;
    case InitKind::Normal: {
      double u1 = init_uniform01(init_random_word(key, 2 * i));
      double u2 = init_uniform01(init_random_word(key, 2 * i + 1));
      double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      return s.mean + s.std * z;
    }
    case InitKind::Uniform: {
      double u = init_uniform01(init_random_word(key, 2 * i));
      return s.low + (s.high - s.low) * u;
    }
    case InitKind::AlogUniform: {
      double u = init_uniform01(init_random_word(key, 2 * i));
      return std::log(s.low + (s.high - s.low) * u);
    }
    case InitKind::AlogArange:
      return std::log(static_cast<double>(i % s.n + 1));
    case InitKind::DtBias: {
      double u = init_uniform01(init_random_word(key, 2 * i));
      double lmin = std::log(s.dt_min);
      double lmax = std::log(s.dt_max);
      double dt = std::exp(lmin + (lmax - lmin) * u);
      if (dt < s.floor) dt = s.floor;
      return dt + std::log(-std::expm1(-dt));
    }
    case InitKind::KaimingUniform: {
      double u = init_uniform01(init_random_word(key, 2 * i));
      double b = 1.0 / std::sqrt(s.fan_in);
      return -b + (b + b) * u;
    }
  }
  return 0;
}

static uint64_t dbits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

int main() {
  const char* specs[] = {
      R"({"kind":"normal","std":0.02})",
      R"({"kind":"normal","std":1.5,"mean":-0.25})",
      R"({"kind":"uniform","low":-3,"high":5})",
      R"({"kind":"const","value":0.1})",
      R"({"kind":"ones"})",
      R"({"kind":"alog_uniform","low":1,"high":16})",
      R"({"kind":"alog_uniform","low":0.5,"high":1.5})",
      R"({"kind":"alog_arange","n":16})",
      R"({"kind":"alog_arange","n":1000003})",
      R"({"kind":"dt_bias"})",
      R"({"kind":"dt_bias","dtMin":0.01,"dtMax":2,"floor":0.05})",
      R"({"kind":"kaiming_uniform","fanIn":37})",
  };
  std::mt19937_64 rng(12345);
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz._0123456789";
  uint64_t checked = 0, flagged = 0, flagged_normal = 0, normal = 0;
  for (const char* j : specs) {
    const InitSpec s = parse_init_spec(json::parse(j), "test");
    for (int t = 0; t < 40; ++t) {
      std::string name;
      for (int c = 0, len = static_cast<int>(rng() % 40); c < len; ++c) name += alphabet[rng() % 38];
      const uint64_t seed = t == 0 ? 0 : t == 1 ? ~0ull : rng();
      const uint64_t key = init_stream_key(seed, name);
      std::vector<float> tensor(1000);
      init_tensor(s, seed, name, tensor.data(), tensor.size(), t % 3 + 1);
      for (int k = 0; k < 2000; ++k) {
        const uint64_t i = k < 1000 ? static_cast<uint64_t>(k) : rng() >> (rng() % 64);
        double r = -1;
        const double v = init_math::element(s, key, i, &r);
        const double want = ref_element(s, key, i);
        CHECK(dbits(v) == dbits(want), "%s name '%s' seed %llu i %llu: %.17g, before the header %.17g", j, name.c_str(),
              (unsigned long long)seed, (unsigned long long)i, v, want);
        CHECK(dbits(init_element(s, key, i)) == dbits(want), "init_element %s i %llu", j, (unsigned long long)i);
        if (k < 1000) CHECK(tensor[k] == static_cast<float>(want), "init_tensor %s i %d", j, k);
        CHECK(r >= 0, "radius %g", r);
        // Another libm's value v2 within the radius of v (the device's): when v2 ± r rounds to one
        // float (not flagged), that float is float(v). Probe the worst places: v2 = v ± r.
        for (double v2 : {v + r, v - r, std::nextafter(v, 1e300), std::nextafter(v, -1e300)}) {
          if (std::fabs(v2 - v) > r) continue;
          if (!init_math::f32_ambiguous(v2, r)) CHECK(static_cast<float>(v2) == static_cast<float>(v), "%s i %llu: unflagged value rounds apart", j, (unsigned long long)i);
        }
        const bool amb = init_math::f32_ambiguous(v, r);
        flagged += amb;
        if (s.kind == InitKind::Normal) normal++, flagged_normal += amb;
        if (s.kind == InitKind::Uniform || s.kind == InitKind::Const || s.kind == InitKind::KaimingUniform) CHECK(r == 0, "exact kind with radius %g", r);
        ++checked;
      }
    }
  }
  // ~2^-20 of the normal elements are flagged; more than 2^-12 would make the device path slow.
  CHECK(flagged_normal * 4096 <= normal + 4096, "%llu of %llu normal elements flagged", (unsigned long long)flagged_normal,
        (unsigned long long)normal);

  // storage conversions: random bits, and the edges (NaN, inf, subnormals, f16 overflow, ties)
  std::vector<uint32_t> pats = {0, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffbfffffu, 0x00000001u, 0x007fffffu,
                                0x477ff000u, 0x477fefffu, 0x33000000u, 0x33000001u, 0x38800000u, 0x387fffffu, 0x3f808000u, 0x3f818000u,
                                0x3f80ffffu, 0x7f7fffffu};
  for (int k = 0; k < 2000000; ++k) pats.push_back(static_cast<uint32_t>(rng()));
  for (uint32_t p : pats) {
    float f;
    std::memcpy(&f, &p, 4);
    CHECK(init_math::f32_to_bf16(f) == f32_to_bf16(f), "bf16 of 0x%08x", p);
    CHECK(init_math::f32_to_f16(f) == f32_to_f16(f), "f16 of 0x%08x", p);
    CHECK(init_math::f32_bits(f) == p, "bits of 0x%08x", p);
  }
  std::printf("%llu elements equal the pre-header host values (%llu flagged for host recompute on the GPU path, %llu of %llu normal); "
              "%zu bf16/f16 conversions equal dtype.cpp\n",
              (unsigned long long)checked, (unsigned long long)flagged, (unsigned long long)flagged_normal, (unsigned long long)normal, pats.size());
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

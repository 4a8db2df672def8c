// init_math.h — the per-element arithmetic of deterministic weight init (spec: runtime/INIT.md),
// written once for the host (init.cpp) and the device (init_device.cu).
//
// Every element is a pure function of (spec, key, index): the counter-based words (mix64 of the
// key plus a multiple of the golden ratio), the uniform in (0, 1], each kind's double value, its
// rounding to float32 and the float32 → bf16 / f16 storage bits. Plain C++ translation units see
// ordinary inline functions; nvcc compiles the same text for both sides (STRATA_INIT_HD).
//
// Host and device agree bit for bit on everything but the transcendental functions: + - * / and
// sqrt are IEEE (the products below are explicit __dmul_rn on the device, so nvcc cannot contract
// them into FMAs), while log, exp, expm1 and cos are glibc's on the host (< 1 ulp) and CUDA's on
// the device (log, exp, expm1: 1 ulp; cos: 2 ulp). `element` therefore also returns a radius that
// bounds |device value − host value| with a wide margin (see kSlack); when the interval
// [v − radius, v + radius] holds a float32 rounding boundary the two sides might round apart, and
// the device path recomputes that element on the host (init_device.cu). Elsewhere the float32 —
// and so the stored bf16 / f16 / f32 — is the same on both sides.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define STRATA_INIT_HD __host__ __device__
#else
#define STRATA_INIT_HD
#endif

namespace strata {

enum class InitKind { Normal, Uniform, Const, AlogUniform, AlogArange, DtBias, KaimingUniform };

// A parsed manifest "init" spec (init.h: parse_init_spec). Plain data: passed to kernels by value.
struct InitSpec {
  InitKind kind = InitKind::Const;
  double mean = 0, std = 0;           // normal
  double low = 0, high = 0;           // uniform, alog_uniform
  double value = 0;                   // const
  double dt_min = 0, dt_max = 0, floor = 0;  // dt_bias
  double fan_in = 0;                  // kaiming_uniform
  uint64_t n = 0;                     // alog_arange (period: element i = log((i mod n) + 1))
};

namespace init_math {

// Relative bound used for the host/device radius: 2^-44 = 256 double ulps. The worst chain
// (dt_bias: two logs, exp, expm1, log, three roundings) differs by under 16 ulps of its largest
// term between two libraries each within 2 ulps, so the margin is at least 16×.
constexpr double kSlack = 1.0 / 17592186044416.0;  // 2^-44

// IEEE products and sums that nvcc may not fuse (INIT.md §2: no fused multiply-add).
STRATA_INIT_HD inline double mul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
STRATA_INIT_HD inline double add(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

STRATA_INIT_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

STRATA_INIT_HD inline uint64_t random_word(uint64_t key, uint64_t counter) { return mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull); }

// Uniform double in (0, 1]: ((w >> 11) + 1) * 2^-53 (exact).
STRATA_INIT_HD inline double uniform01(uint64_t word) { return static_cast<double>((word >> 11) + 1) * (1.0 / 9007199254740992.0); }

// Element i of a tensor before rounding to float (INIT.md §2). With `radius`, also a bound on
// how far another conforming libm's value may lie (0 for the kinds that use only + - * / sqrt).
STRATA_INIT_HD inline double element(const InitSpec& s, uint64_t key, uint64_t i, double* radius = nullptr) {
  // Element i owns random words 2i and 2i+1 (only normal uses the second).
  double v = 0, r = 0;
  switch (s.kind) {
    case InitKind::Const:
      v = s.value;
      break;
    case InitKind::Normal: {
      const double u1 = uniform01(random_word(key, 2 * i));
      const double u2 = uniform01(random_word(key, 2 * i + 1));
      const double z = mul(sqrt(mul(-2.0, log(u1))), cos(mul(6.283185307179586, u2)));
      const double sz = mul(s.std, z);
      v = add(s.mean, sz);
      r = (fabs(sz) + fabs(v)) * kSlack;
      break;
    }
    case InitKind::Uniform:
      v = add(s.low, mul(s.high - s.low, uniform01(random_word(key, 2 * i))));
      break;
    case InitKind::AlogUniform:
      v = log(add(s.low, mul(s.high - s.low, uniform01(random_word(key, 2 * i)))));
      r = fabs(v) * kSlack;
      break;
    case InitKind::AlogArange:  // no random words
      v = log(static_cast<double>(i % s.n + 1));
      r = fabs(v) * kSlack;
      break;
    case InitKind::DtBias: {
      const double u = uniform01(random_word(key, 2 * i));
      const double lmin = log(s.dt_min);
      const double lmax = log(s.dt_max);
      double dt = exp(add(lmin, mul(lmax - lmin, u)));
      if (dt < s.floor) dt = s.floor;
      const double l = log(-expm1(-dt));
      v = dt + l;  // inverse softplus
      r = ((fabs(lmin) + fabs(lmax) + 1.0) * (dt + 1.0) + fabs(l) + fabs(v)) * kSlack;
      break;
    }
    case InitKind::KaimingUniform: {
      const double b = 1.0 / sqrt(s.fan_in);
      v = add(-b, mul(b + b, uniform01(random_word(key, 2 * i))));
      break;
    }
  }
  if (radius) *radius = r;
  return v;
}

// True when v ± radius round to different float32 values: the host and the device may disagree.
STRATA_INIT_HD inline bool f32_ambiguous(double v, double radius) {
  return radius > 0 && static_cast<float>(v - radius) != static_cast<float>(v + radius);
}

STRATA_INIT_HD inline uint32_t f32_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

// float32 → bfloat16 bits, round to nearest even; NaN stays (quiet) NaN (= dtype.cpp f32_to_bf16).
STRATA_INIT_HD inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// float32 → binary16 bits, round to nearest even, overflow → inf, subnormals kept
// (= dtype.cpp f32_to_f16).
STRATA_INIT_HD inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520 -> inf
  if (a < 0x38800000u) {
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a - 0x38000000u;  // exponent - 112
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

}  // namespace init_math
}  // namespace strata

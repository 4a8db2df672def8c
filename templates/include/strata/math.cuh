// strata/math.cuh — scalar fp32 math shared by every kernel and by the expressions the compiler
// renders from the IR (compiler/codegen/expr.ts emits them as st::<name>, see strata_ops.cuh).
//
// Two families, kept apart on purpose because they round differently:
//   precise  sigmoid, silu, softplus, gelu (erf), gelu_tanh, relu2 — CUDA's expf / erff / tanhf,
//            the forms the interpreter (compiler/interp/ref.ts) defines; rendered epilogues and
//            row kernels use these.
//   fast     fast_exp (__expf: one ex2.approx of x·log2e), fast_exp2 (one ex2.approx.ftz),
//            fast_silu, fast_softplus — used inside the scan, conv and attention kernels where the
//            approximation was measured against the interpreter (tests/gpu).
// Everything is __host__ __device__: on the host the fast forms fall back to expf / exp2f, so
// host tests (tests/device) run the same formulas without a GPU.
#pragma once

#include <math.h>

#include "base.cuh"

namespace strata {
inline namespace math {

constexpr float kLog2e = 1.4426950408889634f;

// e^x via the fast hardware path (__expf = ex2.approx(x·log2e), ~2 ulp + flush to zero).
STRATA_HD float fast_exp(float x) {
#ifdef __CUDA_ARCH__
  return __expf(x);
#else
  return expf(x);
#endif
}

// 2^x with a single ex2.approx.ftz.f32 (subnormal results flush to zero).
STRATA_HD float fast_exp2(float x) {
#ifdef __CUDA_ARCH__
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return exp2f(x);
#endif
}

STRATA_HD float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
STRATA_HD float silu(float x) { return x / (1.f + expf(-x)); }
// PyTorch's softplus: linear above 20.
STRATA_HD float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }
STRATA_HD float relu2(float x) { float r = fmaxf(x, 0.f); return r * r; }
STRATA_HD float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
STRATA_HD float gelu_tanh(float x) {
  return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// Derivatives for the backward (activationGrad): relu′(0) = 0; gelu′ = Φ(x) + x·φ(x).
STRATA_HD float relu_grad(float x) { return x > 0.f ? 1.f : 0.f; }
STRATA_HD float gelu_grad(float x) {
  return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
}
STRATA_HD float gelu_tanh_grad(float x) {
  const float k = 0.7978845608028654f;
  const float t = tanhf(k * (x + 0.044715f * x * x * x));
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * x * x);
}

STRATA_HD float fast_silu(float x) { return x / (1.f + fast_exp(-x)); }
STRATA_HD float fast_softplus(float x) { return x > 20.f ? x : log1pf(fast_exp(x)); }

}  // namespace math
}  // namespace strata

// adamw.h — AdamW with fp32 master weights, the learning-rate schedule and the weight-decay rule.
//
// One optimizer state per model: for every parameter an fp32 master copy, the first and second
// moments m and v (allocated once), and — with gradient accumulation — an fp32 accumulator. The
// update of one element is `adamw_element` below, a __host__ __device__ function: the CUDA kernels
// (adamw.cu) and the host twin (adamw_host.cpp, used by the CPU tests' fake targets) run the same
// source.
//
// The step (PyTorch torch.optim.AdamW / apex FusedAdam adam_w_mode, with t = the 1-based step):
//   g  = acc · s                      s = clip_coef / K  (K micro-batches summed into acc)
//   m  = β1·m + (1 − β1)·g
//   v  = β2·v + (1 − β2)·g²
//   p  = p − lr·( (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps) + wd·p )     wd = 0 when not decayed
//   compute copy = bf16(p) (round to nearest even) or p
// Global gradient norm: ‖g‖ = sqrt(Σ_params Σ_elements acc²) / K, every sum in float64 in a fixed
// order (no atomics): deterministic run to run. clip_coef = min(1, clip / (‖g‖ + 1e-6)); clip ≤ 0
// turns clipping off.
// Schedule for step t = 1..N (warmup W): t ≤ W: lr = max·t/W; else lr = min + (max − min)·½(1 +
// cos(π·(t − W)/(N − W))): the first step after warmup runs at max, the last at min.
// Weight decay (`adamw_decays`): a parameter is decayed unless it has fewer than 2 dimensions, or
// its name contains "A_log", "dt_bias", "norm" or "bias", or one of its dot-separated components
// is exactly "D" (the Mamba skip, `layers.3.mixer.D`).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__ __forceinline__
#else
#define STRATA_HD inline
#endif

namespace strata {

// Megatron-LM's 8B recipe (Waleffe et al. 2024) as the defaults.
struct AdamWConfig {
  double lr = 3e-4, min_lr = 3e-5;
  int64_t warmup = 0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1.0;
};

// The per-step constants of one update, as the kernels use them (float).
struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;
  float bc1, bc2;     // 1 − β1^t, 1 − β2^t
  float grad_scale;   // clip_coef / K
};

STRATA_HD float bf16_round(float x) {  // the value bf16(x) holds, as float (round to nearest even)
#if defined(__CUDA_ARCH__)
  uint32_t u = __float_as_uint(x);
#else
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) u |= 0x400000u;  // NaN stays NaN
  else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
#endif
}

STRATA_HD uint16_t bf16_bits(float x) {
  const float r = bf16_round(x);
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(r);
#else
  __builtin_memcpy(&u, &r, 4);
#endif
  return static_cast<uint16_t>(u >> 16);
}

// One element: updates master p and moments m, v in place from the accumulated gradient `acc`.
STRATA_HD void adamw_element(float& p, float& m, float& v, float acc, const AdamWStep& s, bool decay) {
  const float g = acc * s.grad_scale;
  m = s.beta1 * m + (1.f - s.beta1) * g;
  v = s.beta2 * v + (1.f - s.beta2) * (g * g);
  const float mhat = m / s.bc1;
  const float vhat = v / s.bc2;
  const float wd = decay ? s.weight_decay : 0.f;
  p = p - s.lr * (mhat / (sqrtf(vhat) + s.eps) + wd * p);
}

// Learning rate of step t (1-based) of `total`.
double adamw_lr(const AdamWConfig& c, int64_t t, int64_t total);
// The constants of step t given the gradient's global norm (already divided by K) and K.
AdamWStep adamw_step_constants(const AdamWConfig& c, int64_t t, int64_t total, double grad_norm, int k);
// The weight-decay rule above.
bool adamw_decays(const std::string& name, const std::vector<int64_t>& shape);

// One parameter as the optimizer sees it.
struct ParamSlot {
  std::string name;
  size_t numel = 0;
  bool bf16 = false;
  bool decay = false;
  void* compute = nullptr;  // the compute copy (device)
  float* grad = nullptr;    // the target's gradient (device), f32 [numel]
};

enum class OptTensor { kMaster = 0, kM = 1, kV = 2 };

// Master weights, moments and accumulators of every parameter, on the target's device.
class OptimizerState {
 public:
  virtual ~OptimizerState() = default;
  // The target's gradient pointers may move between steps: the trainer refreshes them.
  virtual void set_grad(int i, float* grad) = 0;
  // master = f32(compute copy), m = v = 0.
  virtual void init_from_compute() = 0;
  // After one micro-batch: acc = grad (first) or acc += grad. With K = 1 the accumulator is the
  // gradient itself (no copy).
  virtual void accumulate(bool first) = 0;
  // Σ acc² per parameter (float64, fixed reduction order), to host: out[param_count].
  virtual void grad_sumsq(std::vector<double>& out) = 0;
  // One AdamW step of every parameter; writes the compute copies from the new masters.
  virtual void update(const AdamWStep& s) = 0;
  // compute copy = bf16(master) / master (after a resume loaded the masters).
  virtual void write_compute() = 0;
  // Host copies for checkpoints (float [numel]; the compute copy in its own dtype: bf16 bits / f32).
  virtual void download(int i, OptTensor t, float* host) = 0;
  virtual void upload(int i, OptTensor t, const float* host) = 0;
  virtual void download_compute(int i, void* host) = 0;
  virtual void sync() = 0;
};

// CUDA (adamw.cu): `stream` is the target's cudaStream_t; `accum` > 1 allocates the accumulators.
std::unique_ptr<OptimizerState> make_cuda_adamw(const std::vector<ParamSlot>& params, void* stream, int accum);
// Host memory twin (adamw_host.cpp): the same adamw_element, for targets whose "device" is host memory.
std::unique_ptr<OptimizerState> make_host_adamw(const std::vector<ParamSlot>& params, int accum);

}  // namespace strata

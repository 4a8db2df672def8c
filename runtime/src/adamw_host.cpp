// adamw_host.cpp — the optimizer's host-side rules (schedule, step constants, weight-decay rule),
// shared by every backend, and the host-memory twin of adamw.cu: the same adamw_element over
// plain host arrays, for targets whose "device" is host memory (the CPU tests' fake models).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "adamw.h"
#include "error.h"

namespace strata {

double adamw_lr(const AdamWConfig& c, int64_t t, int64_t total) {
  if (c.warmup > 0 && t <= c.warmup) return c.lr * static_cast<double>(t) / static_cast<double>(c.warmup);
  if (total <= c.warmup) return c.lr;
  const double ratio = static_cast<double>(t - c.warmup) / static_cast<double>(total - c.warmup);
  const double r = ratio < 0 ? 0 : ratio > 1 ? 1 : ratio;
  return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * r));
}

AdamWStep adamw_step_constants(const AdamWConfig& c, int64_t t, int64_t total, double grad_norm, int k) {
  AdamWStep s;
  s.lr = static_cast<float>(adamw_lr(c, t, total));
  s.beta1 = static_cast<float>(c.beta1);
  s.beta2 = static_cast<float>(c.beta2);
  s.eps = static_cast<float>(c.eps);
  s.weight_decay = static_cast<float>(c.weight_decay);
  s.bc1 = static_cast<float>(1.0 - std::pow(c.beta1, static_cast<double>(t)));
  s.bc2 = static_cast<float>(1.0 - std::pow(c.beta2, static_cast<double>(t)));
  double clip_coef = 1.0;
  if (c.clip > 0 && grad_norm + 1e-6 > c.clip) clip_coef = c.clip / (grad_norm + 1e-6);
  s.grad_scale = static_cast<float>(clip_coef / (k > 0 ? k : 1));
  return s;
}

bool adamw_decays(const std::string& name, const std::vector<int64_t>& shape) {
  if (shape.size() < 2) return false;
  for (const char* s : {"A_log", "dt_bias", "norm", "bias"})
    if (name.find(s) != std::string::npos) return false;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('.', i);
    if (j == std::string::npos) j = name.size();
    if (name.compare(i, j - i, "D") == 0) return false;
    i = j + 1;
  }
  return true;
}

namespace {

class HostAdamW : public OptimizerState {
 public:
  HostAdamW(const std::vector<ParamSlot>& params, int accum) : p_(params) {
    for (const ParamSlot& p : params) {
      master_.emplace_back(p.numel);
      m_.emplace_back(p.numel);
      v_.emplace_back(p.numel);
      acc_.emplace_back(accum > 1 ? p.numel : 0);
    }
    accum_ = accum;
  }
  void set_grad(int i, float* grad) override { p_[i].grad = grad; }
  void init_from_compute() override {
    for (size_t i = 0; i < p_.size(); ++i) {
      for (size_t e = 0; e < p_[i].numel; ++e) master_[i][e] = compute_value(i, e);
      std::fill(m_[i].begin(), m_[i].end(), 0.f);
      std::fill(v_[i].begin(), v_[i].end(), 0.f);
    }
  }
  void accumulate(bool first) override {
    if (accum_ <= 1) return;
    for (size_t i = 0; i < p_.size(); ++i)
      for (size_t e = 0; e < p_[i].numel; ++e) acc_[i][e] = first ? p_[i].grad[e] : acc_[i][e] + p_[i].grad[e];
  }
  void grad_sumsq(std::vector<double>& out) override {
    out.assign(p_.size(), 0.0);
    for (size_t i = 0; i < p_.size(); ++i) {
      const float* a = acc(i);
      double s = 0;
      for (size_t e = 0; e < p_[i].numel; ++e) s += static_cast<double>(a[e]) * a[e];
      out[i] = s;
    }
  }
  void update(const AdamWStep& s) override {
    for (size_t i = 0; i < p_.size(); ++i) {
      const float* a = acc(i);
      for (size_t e = 0; e < p_[i].numel; ++e) adamw_element(master_[i][e], m_[i][e], v_[i][e], a[e], s, p_[i].decay);
    }
    write_compute();
  }
  void write_compute() override {
    for (size_t i = 0; i < p_.size(); ++i)
      for (size_t e = 0; e < p_[i].numel; ++e) {
        if (p_[i].bf16) static_cast<uint16_t*>(p_[i].compute)[e] = bf16_bits(master_[i][e]);
        else static_cast<float*>(p_[i].compute)[e] = master_[i][e];
      }
  }
  void download(int i, OptTensor t, float* host) override { std::memcpy(host, vec(i, t).data(), p_[i].numel * sizeof(float)); }
  void upload(int i, OptTensor t, const float* host) override { std::memcpy(vec(i, t).data(), host, p_[i].numel * sizeof(float)); }
  void download_compute(int i, void* host) override { std::memcpy(host, p_[i].compute, p_[i].numel * (p_[i].bf16 ? 2 : 4)); }
  void sync() override {}

 private:
  float compute_value(size_t i, size_t e) const {
    if (!p_[i].bf16) return static_cast<const float*>(p_[i].compute)[e];
    const uint32_t u = static_cast<uint32_t>(static_cast<const uint16_t*>(p_[i].compute)[e]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const float* acc(size_t i) const { return accum_ > 1 ? acc_[i].data() : p_[i].grad; }
  std::vector<float>& vec(int i, OptTensor t) { return t == OptTensor::kMaster ? master_[i] : t == OptTensor::kM ? m_[i] : v_[i]; }

  std::vector<ParamSlot> p_;
  int accum_ = 1;
  std::vector<std::vector<float>> master_, m_, v_, acc_;
};

}  // namespace

std::unique_ptr<OptimizerState> make_host_adamw(const std::vector<ParamSlot>& params, int accum) {
  return std::unique_ptr<OptimizerState>(new HostAdamW(params, accum));
}

}  // namespace strata

// Host tests of the training runtime (runtime/src/{trainer,adamw_host,checkpoint,train_data,
// loss_plot,cli_train}.cpp) over a fake TrainTarget whose "device" is host memory: a bigram
// softmax regression with an exact gradient,
//   logits[b, t, :] = E[tok] + lm_head.bias + layers.0.mixer.D[0] + layers.0.mixer.A_log[0]
// E (bf16 compute copy, [V, V], decayed), the rest f32 and never decayed (1-D, or names the
// weight-decay rule excludes). The optimizer is the host twin of adamw.cu: the same
// adamw_element. Checked: the schedule and decay rule, AdamW against an independent float64
// reference (clipping, accumulation, warmup + cosine, decay masks), the loss falling, bit-exact
// resume, a non-finite gradient / loss stopping the run, checkpoints killed at every point of the
// write, token-file header errors, and `model train` argument errors and an end-to-end CLI run.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "adamw.h"
#include "checkpoint.h"
#include "cli_train.h"
#include "dtype.h"
#include "error.h"
#include "loss_plot.h"
#include "safetensors.h"
#include "strata_model_iface.h"
#include "train.h"
#include "train_data.h"
#include "trainer.h"

using namespace strata;

namespace {

int g_pass = 0, g_fail = 0;
#define EXPECT(cond, ...)                                                     \
  do {                                                                        \
    if (cond) {                                                               \
      ++g_pass;                                                               \
    } else {                                                                  \
      ++g_fail;                                                               \
      std::fprintf(stderr, "FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                      \
      std::fprintf(stderr, "\n");                                             \
    }                                                                         \
  } while (0)

std::string g_tmp;
std::string tmp(const std::string& name) { return g_tmp + "/" + name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
void rm_rf(const std::string& p) {
  const std::string cmd = "rm -rf '" + p + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "warning: %s failed\n", cmd.c_str());
}

// ---- token files ------------------------------------------------------------------------------

struct TokSpec {
  std::vector<uint32_t> ids;
  uint32_t vocab = 16, row = 0, eos = 0xFFFFFFFFu, id_bytes = 2;
  std::vector<uint8_t> mask;
};

std::string tok_bytes(const TokSpec& s) {
  std::string b(64, '\0');
  std::memcpy(&b[0], "STRATATK", 8);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
  };
  put32(8, 1);
  put32(12, s.id_bytes);
  const uint64_t n = s.ids.size();
  for (int i = 0; i < 8; ++i) b[16 + i] = static_cast<char>(n >> (8 * i));
  put32(24, s.vocab);
  put32(28, s.row);
  put32(32, s.eos);
  put32(36, s.mask.empty() ? 0 : 1);
  for (uint32_t id : s.ids)
    for (uint32_t i = 0; i < s.id_bytes; ++i) b += static_cast<char>(id >> (8 * i));
  for (uint8_t m : s.mask) b += static_cast<char>(m);
  return b;
}
void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}

// A stream with bigram structure: mostly next = (3·cur + 1) mod V, sometimes random.
std::string make_stream(const std::string& name, uint32_t V, size_t n, uint64_t seed) {
  TokSpec s;
  s.vocab = V;
  uint64_t st = seed;
  uint32_t cur = 0;
  for (size_t i = 0; i < n; ++i) {
    s.ids.push_back(cur);
    const uint64_t r = splitmix64(st);
    cur = (r % 5 == 0) ? static_cast<uint32_t>((r >> 8) % V) : (3 * cur + 1) % V;
  }
  write_bytes(tmp(name), tok_bytes(s));
  return tmp(name);
}
// Probe rows of `row` tokens: x a b a b … with the mask on the second half.
std::string make_probe(const std::string& name, uint32_t V, uint32_t row, size_t rows, uint64_t seed) {
  TokSpec s;
  s.vocab = V;
  s.row = row;
  uint64_t st = seed;
  for (size_t r = 0; r < rows; ++r) {
    uint32_t cur = static_cast<uint32_t>(splitmix64(st) % V);
    for (uint32_t t = 0; t < row; ++t) {
      s.ids.push_back(cur);
      s.mask.push_back(t >= row / 2 ? 1 : 0);
      cur = (3 * cur + 1) % V;
    }
  }
  write_bytes(tmp(name), tok_bytes(s));
  return tmp(name);
}

// ---- the fake model ----------------------------------------------------------------------------

std::vector<uint8_t> g_last_embedding;  // the compute copy of E when the CLI's target was destroyed

struct FakeTarget : TrainTarget {
  int V;
  std::vector<std::string> names = {"embedding.weight", "lm_head.bias", "layers.0.mixer.D", "layers.0.mixer.A_log"};
  std::vector<std::vector<int64_t>> shapes;
  std::vector<bool> bf16 = {true, false, false, false};
  std::vector<std::vector<uint8_t>> compute;  // the "device" compute copies
  std::vector<std::vector<float>> grads;
  int calls = 0, prep_runs = 0;
  int nan_grad_at_call = -1, nan_grad_param = 2;  // inject a NaN into one gradient at call N (1-based)
  int nan_loss_at_call = -1;
  int throw_at_call = -1;                          // simulate a crash
  bool record = false;
  std::vector<std::vector<std::vector<float>>> recorded;  // per call: the gradients it produced

  bool keep_embedding = false;
  ~FakeTarget() override;
  explicit FakeTarget(int vocab) : V(vocab) {
    shapes = {{V, V}, {V}, {1, V}, {1, V}};
    uint64_t st = 42;
    for (size_t i = 0; i < names.size(); ++i) {
      const size_t n = numel(i);
      compute.emplace_back(n * (bf16[i] ? 2 : 4));
      grads.emplace_back(n);
      for (size_t e = 0; e < n; ++e) {
        const float x = (static_cast<float>(splitmix64(st) % 2001) / 1000.f - 1.f) * (i == 0 ? 0.5f : 0.1f);
        set(i, e, x);
      }
    }
  }
  size_t numel(size_t i) const { return static_cast<size_t>(shapes[i].size() == 1 ? shapes[i][0] : shapes[i][0] * shapes[i][1]); }
  float get(size_t i, size_t e) const {
    if (bf16[i]) {
      uint16_t h;
      std::memcpy(&h, &compute[i][2 * e], 2);
      return bf16_to_f32(h);
    }
    float f;
    std::memcpy(&f, &compute[i][4 * e], 4);
    return f;
  }
  void set(size_t i, size_t e, float x) {
    if (bf16[i]) {
      const uint16_t h = f32_to_bf16(x);
      std::memcpy(&compute[i][2 * e], &h, 2);
    } else {
      std::memcpy(&compute[i][4 * e], &x, 4);
    }
  }
  void logits_row(int tok, std::vector<double>& l) const {
    l.resize(V);
    for (int v = 0; v < V; ++v) l[v] = static_cast<double>(get(0, static_cast<size_t>(tok) * V + v)) + get(1, v) + get(2, v) + get(3, v);
  }

  int param_count() const override { return static_cast<int>(names.size()); }
  const std::string& param_name(int i) const override { return names[i]; }
  size_t param_numel(int i) const override { return numel(i); }
  bool param_bf16(int i) const override { return bf16[i]; }
  void* param_device(int i) override { return compute[i].data(); }
  float* grad_device(int i) override { return grads[i].data(); }
  float train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen) override {
    ++calls;
    if (calls == throw_at_call) throw Error("simulated crash");
    double wsum = 0, lsum = 0;
    for (int p = 0; p < batch * seqlen; ++p) wsum += weights[p];
    std::vector<std::vector<double>> gd(names.size());
    for (size_t i = 0; i < names.size(); ++i) gd[i].assign(numel(i), 0.0);
    std::vector<double> l;
    for (int p = 0; p < batch * seqlen; ++p) {
      if (weights[p] == 0) continue;
      logits_row(tokens[p], l);
      double mx = l[0];
      for (double x : l) mx = std::max(mx, x);
      double se = 0;
      for (double x : l) se += std::exp(x - mx);
      lsum += weights[p] * (std::log(se) + mx - l[targets[p]]);
      for (int v = 0; v < V; ++v) {
        const double d = weights[p] * (std::exp(l[v] - mx) / se - (v == targets[p])) / wsum;
        gd[0][static_cast<size_t>(tokens[p]) * V + v] += d;
        for (size_t i = 1; i < 4; ++i) gd[i][v] += d;
      }
    }
    for (size_t i = 0; i < names.size(); ++i)
      for (size_t e = 0; e < numel(i); ++e) grads[i][e] = static_cast<float>(gd[i][e]);
    if (calls == nan_grad_at_call) grads[nan_grad_param][1] = NAN;
    if (record) recorded.push_back(grads);
    if (calls == nan_loss_at_call) return NAN;
    return wsum > 0 ? static_cast<float>(lsum / wsum) : NAN;
  }
  void forward(const int32_t* tokens, int batch, int seqlen, float* logits) override {
    std::vector<double> l;
    for (int p = 0; p < batch * seqlen; ++p) {
      logits_row(tokens[p], l);
      for (int v = 0; v < V; ++v) logits[static_cast<size_t>(p) * V + v] = static_cast<float>(l[v]);
    }
  }
  void params_changed() override { ++prep_runs; }
  int64_t vocab() const override { return V; }
  int max_tokens() const override { return 256; }
  double flops_per_token(int) const override { return 6.0 * V * V; }
  void* stream() override { return nullptr; }
};

FakeTarget::~FakeTarget() {
  if (keep_embedding) g_last_embedding = compute[0];
}

OptimizerFactory host_factory() {
  return [](const std::vector<ParamSlot>& s, int accum) { return make_host_adamw(s, accum); };
}

FILE* devnull() {
  static FILE* f = std::fopen("/dev/null", "w");
  return f;
}

TrainConfig base_config(const std::string& data, const std::string& out) {
  TrainConfig c;
  c.data = data;
  c.out = out;
  c.steps = 12;
  c.batch = 4;
  c.seq = 8;
  c.opt.lr = 0.05;
  c.opt.min_lr = 0.005;
  c.opt.warmup = 2;
  c.seed = 7;
  c.log_every = 1;
  return c;
}

std::vector<float> master_of(Trainer& t, int i, size_t n) {
  std::vector<float> m(n);
  t.optimizer().download(i, OptTensor::kMaster, m.data());
  return m;
}

// ---- tests -------------------------------------------------------------------------------------

void test_schedule_and_decay() {
  AdamWConfig c;
  c.lr = 1.0;
  c.min_lr = 0.1;
  c.warmup = 4;
  const double pi = std::acos(-1.0);
  EXPECT(std::fabs(adamw_lr(c, 1, 20) - 0.25) < 1e-12, "warmup step 1: %g", adamw_lr(c, 1, 20));
  EXPECT(std::fabs(adamw_lr(c, 4, 20) - 1.0) < 1e-12, "end of warmup: %g", adamw_lr(c, 4, 20));
  EXPECT(std::fabs(adamw_lr(c, 20, 20) - 0.1) < 1e-12, "last step at min: %g", adamw_lr(c, 20, 20));
  const double mid = 0.1 + 0.9 * 0.5 * (1 + std::cos(pi * 8.0 / 16.0));
  EXPECT(std::fabs(adamw_lr(c, 12, 20) - mid) < 1e-12, "cosine midpoint: %g vs %g", adamw_lr(c, 12, 20), mid);
  c.warmup = 0;
  EXPECT(std::fabs(adamw_lr(c, 1, 10) - (0.1 + 0.9 * 0.5 * (1 + std::cos(pi * 0.1)))) < 1e-12, "no warmup: %g", adamw_lr(c, 1, 10));
  const AdamWStep s = adamw_step_constants(AdamWConfig{}, 3, 10, 4.0, 2);
  EXPECT(std::fabs(s.grad_scale - 1.0 / (4.0 + 1e-6) / 2) < 1e-7, "clip scale: %g", s.grad_scale);
  EXPECT(std::fabs(s.bc1 - (1 - std::pow(0.9, 3))) < 1e-7 && std::fabs(s.bc2 - (1 - std::pow(0.95, 3))) < 1e-7, "bias corrections");
  EXPECT(adamw_step_constants(AdamWConfig{}, 3, 10, 0.5, 1).grad_scale == 1.f, "no clipping below the threshold");

  struct Case {
    const char* name;
    std::vector<int64_t> shape;
    bool decays;
  } cases[] = {{"embedding.weight", {8, 4}, true},
               {"layers.0.mixer.in_proj.weight", {8, 4}, true},
               {"layers.0.mixer.conv1d.weight", {8, 4}, true},
               {"layers.0.mixer.A_log", {8, 4}, false},
               {"layers.0.mixer.D", {8, 4}, false},
               {"D", {8, 4}, false},
               {"layers.0.mixer.Dense.weight", {8, 4}, true},
               {"layers.0.mixer.dt_bias", {8}, false},
               {"layers.0.mixer.dt_proj.bias", {8, 1}, false},
               {"layers.0.norm.weight", {1, 8}, false},
               {"final_norm.weight", {8}, false},
               {"lm_head.weight", {8}, false},  // 1-D
               {"layers.1.mlp.fc1.weight", {16, 8}, true}};
  for (const Case& k : cases) EXPECT(adamw_decays(k.name, k.shape) == k.decays, "decay rule for %s", k.name);
}

// AdamW against a float64 reference written here from the formulas (not adamw.h): the trainer's
// masters after 6 steps with accumulation 2, warmup, cosine, clipping active and the decay mask.
void test_adamw_reference() {
  const std::string data = make_stream("ref.tok", 16, 4000, 1);
  TokenFile f(data);
  FakeTarget t(16);
  t.record = true;
  TrainConfig c = base_config(data, tmp("ref_out"));
  c.steps = 6;
  c.accum = 2;
  c.opt.clip = 0.05;  // small: clipping is active on every step
  c.opt.weight_decay = 0.3;
  // initial values, from the compute copies
  std::vector<std::vector<double>> p(4), m(4), v(4);
  for (int i = 0; i < 4; ++i) {
    for (size_t e = 0; e < t.numel(i); ++e) p[i].push_back(t.get(i, e));
    m[i].assign(t.numel(i), 0);
    v[i].assign(t.numel(i), 0);
  }
  Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
  EXPECT(tr.run() == 0, "run: %s", tr.stop_message().c_str());
  EXPECT(t.recorded.size() == 12, "12 micro-batches, got %zu", t.recorded.size());
  const bool decays[4] = {true, false, false, false};  // E only: bias is 1-D, D and A_log by name
  const double pi = std::acos(-1.0);
  double clipped_steps = 0;
  for (int s = 1; s <= 6; ++s) {
    std::vector<std::vector<double>> acc(4);
    double ss = 0;
    for (int i = 0; i < 4; ++i) {
      acc[i].assign(t.numel(i), 0);
      for (int k = 0; k < 2; ++k)
        for (size_t e = 0; e < t.numel(i); ++e) acc[i][e] += t.recorded[(s - 1) * 2 + k][i][e];
      for (size_t e = 0; e < t.numel(i); ++e) ss += (acc[i][e] / 2) * (acc[i][e] / 2);
    }
    const double norm = std::sqrt(ss);
    const double coef = norm > 0.05 ? 0.05 / norm : 1.0;
    clipped_steps += norm > 0.05;
    const double lr = s <= 2 ? 0.05 * s / 2.0 : 0.005 + 0.045 * 0.5 * (1 + std::cos(pi * (s - 2) / 4.0));
    EXPECT(std::fabs(tr.history()[s - 1].lr - lr) < 1e-7 * lr, "lr of step %d: %g vs %g", s, tr.history()[s - 1].lr, lr);
    EXPECT(std::fabs(tr.history()[s - 1].grad_norm - norm) < 1e-6 * norm, "grad norm of step %d: %g vs %g", s, tr.history()[s - 1].grad_norm, norm);
    for (int i = 0; i < 4; ++i)
      for (size_t e = 0; e < t.numel(i); ++e) {
        const double g = acc[i][e] / 2 * coef;
        m[i][e] = 0.9 * m[i][e] + 0.1 * g;
        v[i][e] = 0.95 * v[i][e] + 0.05 * g * g;
        const double mh = m[i][e] / (1 - std::pow(0.9, s)), vh = v[i][e] / (1 - std::pow(0.95, s));
        p[i][e] -= lr * (mh / (std::sqrt(vh) + 1e-8) + (decays[i] ? 0.3 * p[i][e] : 0.0));
      }
  }
  EXPECT(clipped_steps == 6, "clipping active on every step (%g)", clipped_steps);
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> got = master_of(tr, i, t.numel(i));
    double worst = 0;
    // float32 arithmetic vs float64: |Δ| ≤ 1e-6 + 1e-5·|p| (a wrong rule is off by ~lr = 5e-2)
    for (size_t e = 0; e < got.size(); ++e) worst = std::max(worst, std::fabs(got[e] - p[i][e]) / (1e-6 + 1e-5 * std::fabs(p[i][e])));
    EXPECT(worst < 1, "master %s vs the float64 reference: worst error %g of the tolerance", t.names[i].c_str(), worst);
    // compute copy = bf16 / f32 of the master
    bool ok = true;
    for (size_t e = 0; e < got.size(); ++e) ok = ok && t.get(i, e) == (t.bf16[i] ? bf16_to_f32(f32_to_bf16(got[e])) : got[e]);
    EXPECT(ok, "compute copy of %s = its master rounded", t.names[i].c_str());
  }
  // the decay mask matters: without decay E would differ
  EXPECT(t.prep_runs == 6, "params_changed after each update (%d)", t.prep_runs);
  rm_rf(c.out);
}

void test_loss_falls_and_eval() {
  const std::string data = make_stream("fall.tok", 16, 20000, 2);
  const std::string ev = make_stream("fall.eval.tok", 16, 2000, 3);
  TokenFile f(data), e(ev);
  FakeTarget t(16);
  TrainConfig c = base_config(data, tmp("fall_out"));
  c.steps = 80;
  c.opt.lr = 0.1;
  c.opt.min_lr = 0.01;
  c.eval_every = 40;
  c.save_every = 0;
  FILE* js = std::tmpfile();
  Trainer tr(t, c, t.shapes, f, &e, host_factory(), devnull(), js);
  c.json = true;
  const EvalResult before = tr.evaluate();
  EXPECT(tr.run() == 0, "run: %s", tr.stop_message().c_str());
  const auto& h = tr.history();
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += h[i].loss / 5, last += h[h.size() - 1 - i].loss / 5;
  EXPECT(last < 0.6 * first, "loss falls: first %g, last %g", first, last);
  EXPECT(tr.evals().size() == 2, "evals at 40 and 80: %zu", tr.evals().size());
  EXPECT(tr.evals().back().loss < 0.7 * before.loss, "eval loss falls: %g → %g", before.loss, tr.evals().back().loss);
  EXPECT(tr.evals().back().accuracy > 0.6 && tr.evals().back().accuracy <= 1.0, "eval accuracy: %g (bigram rule holds 80%%)", tr.evals().back().accuracy);
  EXPECT(exists(c.out + "/step-80/model.safetensors") && read_text(c.out + "/latest") == "step-80\n", "final checkpoint");
  const std::string svg = read_text(c.out + "/loss.svg");
  EXPECT(svg.find("<svg") == 0 && svg.find("<polyline") != std::string::npos && svg.find(">step<") != std::string::npos &&
             svg.find("eval loss") != std::string::npos,
         "loss.svg: a chart with labelled axes and both curves");
  const std::string csv = read_text(c.out + "/loss.csv");
  EXPECT(csv.rfind("step,loss,lr,grad_norm,eval_loss,eval_accuracy\n", 0) == 0 && std::count(csv.begin(), csv.end(), '\n') == 81, "loss.csv: header + 80 rows");
  std::fclose(js);
  rm_rf(c.out);
}

// An uninterrupted run vs one that crashes after step 7 (checkpoint at 6) and is resumed.
void test_resume_bit_exact() {
  const std::string data = make_probe("resume.tok", 16, 9, 40, 4);  // 40 rows: epochs wrap every 10 steps
  TokenFile f(data);
  for (int accum : {1, 3}) {
    TrainConfig c = base_config(data, tmp("resume_a"));
    c.steps = 15;
    c.accum = accum;
    c.save_every = 3;
    FakeTarget ta(16);
    Trainer a(ta, c, ta.shapes, f, nullptr, host_factory(), devnull(), devnull());
    EXPECT(a.run() == 0, "uninterrupted run");

    c.out = tmp("resume_b");
    FakeTarget tb(16);
    tb.throw_at_call = 7 * accum + 1;  // crash inside step 8
    {
      Trainer b(tb, c, tb.shapes, f, nullptr, host_factory(), devnull(), devnull());
      bool threw = false;
      try {
        b.run();
      } catch (const Error&) {
        threw = true;
      }
      EXPECT(threw && read_text(c.out + "/latest") == "step-6\n", "crashed run left step-6 as latest");
    }
    FakeTarget tc(16);  // fresh weights: everything must come from the checkpoint
    tc.set(0, 3, 0.777f);
    Trainer r(tc, c, tc.shapes, f, nullptr, host_factory(), devnull(), devnull());
    r.resume(c.out);
    EXPECT(r.step() == 6, "resumed at step 6 (%lld)", static_cast<long long>(r.step()));
    EXPECT(r.run() == 0, "resumed run");
    bool same = a.history().size() == r.history().size();
    for (size_t i = 0; same && i < a.history().size(); ++i)
      same = std::memcmp(&a.history()[i].loss, &r.history()[i].loss, sizeof(double)) == 0 && a.history()[i].grad_norm == r.history()[i].grad_norm;
    EXPECT(same, "accum %d: the resumed loss trajectory equals the uninterrupted one bit for bit", accum);
    for (int i = 0; i < 4; ++i) {
      const std::vector<float> ma = master_of(a, i, ta.numel(i)), mr = master_of(r, i, tc.numel(i));
      EXPECT(std::memcmp(ma.data(), mr.data(), ma.size() * 4) == 0, "accum %d: masters of %s bit-identical", accum, ta.names[i].c_str());
      EXPECT(ta.compute[i] == tc.compute[i], "accum %d: compute copies of %s bit-identical", accum, ta.names[i].c_str());
    }
    // model.safetensors of both runs at step 15 are byte-identical
    EXPECT(read_text(tmp("resume_a/step-15/model.safetensors")) == read_text(tmp("resume_b/step-15/model.safetensors")), "identical final model files");
    rm_rf(tmp("resume_a"));
    rm_rf(tmp("resume_b"));
  }
}

// An evaluation with no supervised position (an eval file whose loss mask is all 0) has loss and
// accuracy NaN, stored as null in trainer.json: the checkpoint still resumes.
void test_resume_after_empty_eval() {
  const std::string data = make_stream("ee.tok", 16, 4000, 13);
  TokSpec s;
  s.vocab = 16;
  s.row = 9;
  for (int i = 0; i < 9 * 4; ++i) s.ids.push_back(static_cast<uint32_t>(i % 16)), s.mask.push_back(0);
  write_bytes(tmp("ee.eval.tok"), tok_bytes(s));
  TokenFile f(data), e(tmp("ee.eval.tok"));
  TrainConfig c = base_config(data, tmp("ee_out"));
  c.steps = 4;
  c.eval_every = 2;
  rm_rf(c.out);
  {
    FakeTarget t(16);
    Trainer tr(t, c, t.shapes, f, &e, host_factory(), devnull(), devnull());
    EXPECT(tr.run() == 0 && tr.evals().size() == 2 && std::isnan(tr.evals()[0].accuracy), "evals without supervised positions: accuracy NaN");
  }
  c.steps = 6;
  FakeTarget t(16);
  Trainer tr(t, c, t.shapes, f, &e, host_factory(), devnull(), devnull());
  try {
    tr.resume(c.out);
    EXPECT(tr.step() == 4 && tr.evals().size() == 2 && std::isnan(tr.evals()[1].accuracy) && std::isnan(tr.evals()[1].loss),
           "resumed with the NaN evaluations restored");
    EXPECT(tr.run() == 0 && tr.step() == 6, "and goes on");
  } catch (const std::exception& ex) {
    EXPECT(false, "resume after an evaluation with no supervised position: %s", ex.what());
  }
  rm_rf(c.out);
}

// An interrupt (Ctrl-C) after step 5 checkpoints step 5 and returns 130; resuming finishes the
// run with the uninterrupted losses.
void test_interrupt() {
  const std::string data = make_stream("int.tok", 16, 4000, 12);
  TokenFile f(data);
  TrainConfig c = base_config(data, tmp("int_a"));
  FakeTarget ta(16);
  Trainer a(ta, c, ta.shapes, f, nullptr, host_factory(), devnull(), devnull());
  a.run();
  c.out = tmp("int_b");
  volatile int flag = 0;
  struct Flagging : FakeTarget {
    volatile int* flag;
    Flagging(volatile int* f) : FakeTarget(16), flag(f) {}
    float train_step(const int32_t* a, const int32_t* b, const float* w, int B, int T) override {
      const float l = FakeTarget::train_step(a, b, w, B, T);
      if (calls == 5) *flag = 1;
      return l;
    }
  } tb(&flag);
  Trainer b(tb, c, tb.shapes, f, nullptr, host_factory(), devnull(), devnull());
  b.interrupt = &flag;
  EXPECT(b.run() == 130 && b.step() == 5 && read_text(c.out + "/latest") == "step-5\n", "interrupted at step 5 with a checkpoint");
  FakeTarget tc(16);
  Trainer r(tc, c, tc.shapes, f, nullptr, host_factory(), devnull(), devnull());
  r.resume(c.out);
  EXPECT(r.run() == 0, "resumed");
  bool same = a.history().size() == r.history().size();
  for (size_t i = 0; same && i < a.history().size(); ++i) same = a.history()[i].loss == r.history()[i].loss;
  EXPECT(same, "the interrupted + resumed losses equal the uninterrupted ones");
  rm_rf(tmp("int_a"));
  rm_rf(tmp("int_b"));
}

void test_nonfinite_stops() {
  const std::string data = make_stream("nan.tok", 16, 4000, 5);
  TokenFile f(data);
  for (int mode = 0; mode < 2; ++mode) {
    TrainConfig c = base_config(data, tmp("nan_out"));
    c.save_every = 5;
    // reference: the same run, crashed inside step 7 (after 6 good steps)
    TrainConfig c6 = c;
    c6.out = tmp("nan_ref");
    FakeTarget t6(16);
    t6.throw_at_call = 7;
    Trainer r6(t6, c6, t6.shapes, f, nullptr, host_factory(), devnull(), devnull());
    try {
      r6.run();
    } catch (const Error&) {
    }

    FakeTarget t(16);
    if (mode == 0) t.nan_grad_at_call = 7;
    else t.nan_loss_at_call = 7, t.nan_grad_at_call = 7, t.nan_grad_param = 3;
    FILE* log = std::tmpfile();
    Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), log, devnull());
    EXPECT(tr.run() == 1, "a non-finite %s stops the run with 1", mode ? "loss" : "gradient");
    const std::string msg = tr.stop_message();
    const char* who = mode ? "layers.0.mixer.A_log" : "layers.0.mixer.D";
    EXPECT(msg.find("step 7") != std::string::npos && msg.find(who) != std::string::npos, "message names step 7 and %s: %s", who, msg.c_str());
    std::rewind(log);
    char buf[4096] = {0};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, log);
    buf[n] = 0;
    EXPECT(std::strstr(buf, "step-5") != nullptr, "the report names the last good checkpoint: %s", buf);
    std::fclose(log);
    EXPECT(read_text(c.out + "/latest") == "step-5\n" && !exists(c.out + "/step-7"), "latest still names step-5");
    EXPECT(tr.step() == 6 && tr.history().size() == 6, "stopped after 6 applied steps");
    for (int i = 0; i < 4; ++i) {
      const std::vector<float> a = master_of(tr, i, t.numel(i)), b = master_of(r6, i, t6.numel(i));
      EXPECT(std::memcmp(a.data(), b.data(), a.size() * 4) == 0, "the bad update was not applied to %s", t.names[i].c_str());
    }
    rm_rf(c.out);
    rm_rf(c6.out);
  }
}

// A kill -9 at every point of a checkpoint write leaves `latest` on a loadable checkpoint.
void test_checkpoint_kill() {
  const std::string data = make_stream("kill.tok", 16, 4000, 6);
  TokenFile f(data);
  const std::string out = tmp("kill_out");
  const char* points[] = {"model.safetensors:written", "model.safetensors:renamed", "optimizer.safetensors:written", "optimizer.safetensors:renamed",
                          "trainer.json:written",      "trainer.json:renamed",      "loss.csv:renamed",              "loss.svg:renamed",
                          "latest:written",            "latest:renamed"};
  for (const char* point : points) {
    rm_rf(out);
    TrainConfig c = base_config(data, out);
    c.steps = 4;
    {
      FakeTarget t(16);
      Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
      tr.run();
    }
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      static std::string target;
      target = point;
      checkpoint_fault_hook = [](const char* p) {
        if (target == p) ::kill(::getpid(), SIGKILL);
      };
      c.steps = 8;
      FakeTarget t(16);
      Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
      tr.resume(out);
      tr.run();
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child killed at %s", point);
    const bool done = std::string(point) == "latest:renamed";
    try {
      LoadedCheckpoint ck = load_checkpoint(out);
      EXPECT(ck.step == (done ? 8 : 4), "killed at %s: latest is step %lld", point, static_cast<long long>(ck.step));
      TrainConfig c8 = c;
      c8.steps = 8;
      FakeTarget t(16);
      Trainer tr(t, c8, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
      tr.resume(out);
      SafetensorsFile model(ck.path + "/model.safetensors");
      std::vector<ExpectedTensor> want = {{"embedding.weight", DType::BF16, {16, 16}}, {"lm_head.bias", DType::F32, {16}},
                                          {"layers.0.mixer.D", DType::F32, {1, 16}},    {"layers.0.mixer.A_log", DType::F32, {1, 16}}};
      model.validate_against(want);
      EXPECT(true, "loadable");
    } catch (const std::exception& e) {
      EXPECT(false, "killed at %s: the checkpoint does not load: %s", point, e.what());
    }
  }
  // timed kills at random moments of repeated saves
  for (int trial = 0; trial < 6; ++trial) {
    rm_rf(out);
    TrainConfig c = base_config(data, out);
    c.steps = 2;
    {
      FakeTarget t(16);
      Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
      tr.run();
    }
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      c.steps = 100000;
      c.save_every = 1;
      FakeTarget t(16);
      Trainer tr(t, c, t.shapes, f, nullptr, host_factory(), devnull(), devnull());
      tr.resume(out);
      tr.run();
      _exit(0);
    }
    ::usleep(20000 + 7000 * trial);
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    try {
      LoadedCheckpoint ck = load_checkpoint(out);
      SafetensorsFile model(ck.path + "/model.safetensors");
      EXPECT(ck.step >= 2 && model.find("embedding.weight"), "timed kill %d: latest step-%lld loads", trial, static_cast<long long>(ck.step));
    } catch (const std::exception& e) {
      EXPECT(false, "timed kill %d: %s", trial, e.what());
    }
  }
  rm_rf(out);
}

void expect_tok_error(const std::string& name, const std::string& bytes, const std::string& needle) {
  write_bytes(tmp(name), bytes);
  try {
    TokenFile f(tmp(name));
    EXPECT(false, "%s: no error (wanted '%s')", name.c_str(), needle.c_str());
  } catch (const Error& e) {
    EXPECT(std::string(e.what()).find(needle) != std::string::npos && std::string(e.what()).find(tmp(name)) == 0, "%s: '%s' in: %s", name.c_str(),
           needle.c_str(), e.what());
  }
}

void test_token_files() {
  TokSpec s;
  s.ids = {1, 2, 3, 4, 5, 6};
  s.vocab = 8;
  const std::string good = tok_bytes(s);
  write_bytes(tmp("good.tok"), good);
  TokenFile f(tmp("good.tok"));
  EXPECT(f.count() == 6 && f.vocab() == 8 && f.row_length() == 0 && !f.has_mask() && f.id(5) == 6, "a good file reads");
  auto patch = [&](size_t at, uint32_t v) {
    std::string b = good;
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
    return b;
  };
  expect_tok_error("short.tok", good.substr(0, 40), "shorter than the 64-byte");
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  expect_tok_error("magic.tok", bad_magic, "magic");
  expect_tok_error("version.tok", patch(8, 2), "version 2 is not supported");
  expect_tok_error("idbytes.tok", patch(12, 3), "valid: 2 for uint16, 4 for uint32");
  expect_tok_error("vocab0.tok", patch(24, 0), "field 'vocab'");
  expect_tok_error("vocab16.tok", patch(24, 70000), "does not fit uint16");
  expect_tok_error("rows.tok", patch(28, 4), "not a whole number of rows of 4");
  expect_tok_error("eos.tok", patch(32, 9), "eos id 9 is outside the vocabulary [0, 8)");
  expect_tok_error("flags.tok", patch(36, 6), "unknown flags");
  std::string reserved = good;
  reserved[50] = 1;
  expect_tok_error("reserved.tok", reserved, "reserved header byte 50");
  expect_tok_error("trunc.tok", good.substr(0, good.size() - 1), "truncated");
  expect_tok_error("trail.tok", good + "x", "trailing bytes");
  TokSpec big = s;
  big.ids[2] = 8;
  expect_tok_error("id.tok", tok_bytes(big), "id 8 at position 2 is outside the vocabulary [0, 8)");
  TokSpec mk = s;
  mk.mask = {0, 1, 1, 2, 0, 1};
  expect_tok_error("mask.tok", tok_bytes(mk), "mask value 2 at position 3");
  try {
    TokenFile missing(tmp("missing.tok"));
    EXPECT(false, "missing file");
  } catch (const Error& e) {
    EXPECT(std::string(e.what()).find("cannot open") != std::string::npos, "missing file: %s", e.what());
  }

  // batches: the convention of compiler/data/batches.ts
  TokSpec p;
  p.vocab = 50;
  p.row = 5;
  p.ids = {10, 11, 12, 13, 14, 20, 21, 22, 23, 24};
  p.mask = {0, 0, 1, 0, 1, 0, 1, 1, 1, 1};
  write_bytes(tmp("probe.tok"), tok_bytes(p));
  TokenFile pf(tmp("probe.tok"));
  const uint64_t units[2] = {1, 0};
  int32_t tk[8], tg[8];
  float w[8];
  fill_units(pf, 4, units, 2, tk, tg, w);
  EXPECT(tk[0] == 20 && tg[0] == 21 && w[0] == 1 && tk[3] == 23 && tg[3] == 24 && tk[4] == 10 && tg[5] == 12 && w[5] == 1 && w[4] == 0,
         "probe rows: token t, target t+1, weight mask[t+1]");
  EXPECT(batch_units(pf, 4) == 2 && batch_units(f, 2) == 2, "units: rows / floor((count-1)/T)");
  const uint64_t su[2] = {1, 0};
  int32_t st[4], sg[4];
  float sw[4];
  fill_units(f, 2, su, 2, st, sg, sw);
  EXPECT(st[0] == 3 && sg[0] == 4 && st[1] == 4 && sg[1] == 5 && st[2] == 1 && sw[3] == 1, "stream windows u·T … u·T + T");
  bool threw = false;
  try {
    check_seq_for(pf, 5, "--data");
  } catch (const Error& e) {
    threw = std::string(e.what()).find("at most 4") != std::string::npos;
  }
  EXPECT(threw, "probe files: T ≤ rowLength − 1");
  // the sample order: a permutation per epoch, a pure function of (seed, sample)
  SampleOrder a(10, 3), b(10, 3), c(10, 4);
  std::vector<int> seen(10, 0);
  bool same = true, differs = false;
  for (uint64_t j = 0; j < 10; ++j) seen[a.unit(j)]++;
  for (uint64_t j = 35; j > 0; --j) same = same && a.unit(j) == b.unit(j);
  for (uint64_t j = 0; j < 10; ++j) differs = differs || a.unit(j) != c.unit(j);
  bool perm = true;
  for (int x : seen) perm = perm && x == 1;
  EXPECT(perm && same && differs, "seeded epoch permutations: deterministic, seed-dependent");
}

void test_plot() {
  std::vector<StepRecord> steps;
  for (int i = 1; i <= 10000; ++i) steps.push_back({i, 5.0 / std::sqrt(i), 1e-3, 1.0});
  std::vector<EvalRecord> evals = {{5000, 0.2, 0.5}, {10000, 0.1, 0.75}};
  const std::string svg = loss_svg(steps, evals, "a <title> & more");
  const size_t pl = svg.find("<polyline");
  const size_t pts = pl == std::string::npos ? 0 : std::count(svg.begin() + pl, svg.begin() + svg.find("/>", pl), ',');
  EXPECT(pts > 1000 && pts <= 2000, "10000 steps drawn with ≤ 2000 points (%zu)", pts);
  EXPECT(svg.find("&lt;title&gt; &amp; more") != std::string::npos && svg.find("loss (cross-entropy, nats)") != std::string::npos, "title escaped, y label");
  const std::string empty = loss_svg({}, {}, "empty");
  EXPECT(empty.find("</svg>") != std::string::npos && empty.find("=\"nan") == std::string::npos && empty.find(">nan") == std::string::npos, "an empty chart is still valid");
  const std::string csv = loss_csv({{1, 2.5, 1e-3, 0.5}}, {{1, 2.25, 0.5}, {2, 2.0, 0.75}});
  EXPECT(csv == "step,loss,lr,grad_norm,eval_loss,eval_accuracy\n1,2.5,0.001,0.5,2.25,0.5\n2,,,,2,0.75\n", "loss.csv rows: %s", csv.c_str());
}

// ---- the CLI -----------------------------------------------------------------------------------

struct CliResult {
  int code;
  std::string out, err;
};


CliResult run_cli(std::vector<std::string> args) {
  TrainBackend be;
  be.make_target = [](const Manifest&, const std::string& weights, uint64_t) {
    TrainModel m;
    FakeTarget* t = new FakeTarget(16);
    if (!weights.empty()) {
      SafetensorsFile w(weights);
      for (int i = 0; i < 4; ++i) std::memcpy(t->compute[i].data(), w.data(w.get(t->names[i])), t->compute[i].size());
    }
    t->keep_embedding = true;
    m.target.reset(t);
    return m;
  };
  be.make_optimizer = [](const std::vector<ParamSlot>& s, TrainTarget&, int accum) { return make_host_adamw(s, accum); };
  args.insert(args.begin(), {"model", "train"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(&a[0]);
  FILE* out = std::tmpfile();
  FILE* err = std::tmpfile();
  const int code = cli_train(static_cast<int>(argv.size()), argv.data(), tmp("manifest.json"), be, out, err);
  auto slurp = [](FILE* f) {
    std::string s;
    std::rewind(f);
    char b[4096];
    size_t n;
    while ((n = std::fread(b, 1, sizeof b, f)) > 0) s.append(b, n);
    std::fclose(f);
    return s;
  };
  return {code, slurp(out), slurp(err)};
}

void expect_usage(const std::vector<std::string>& args, const std::string& needle) {
  const CliResult r = run_cli(args);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT(r.code == 2 && r.err.find(needle) != std::string::npos, "train %s→ exit 2 with '%s'; got %d: %s", joined.c_str(), needle.c_str(), r.code,
         r.err.substr(0, 300).c_str());
}

void test_cli() {
  write_bytes(tmp("manifest.json"), R"({"name": "fake", "vocabSize": 16, "maxBatch": 8, "maxSeqlen": 32, "weights": [
    {"name": "embedding.weight", "dtype": "BF16", "shape": [16, 16]},
    {"name": "lm_head.bias", "dtype": "F32", "shape": [16]},
    {"name": "layers.0.mixer.D", "dtype": "F32", "shape": [1, 16]},
    {"name": "layers.0.mixer.A_log", "dtype": "F32", "shape": [1, 16]}]})");
  const std::string data = make_stream("cli.tok", 16, 6000, 8);
  const std::string ev = make_probe("cli.eval.tok", 16, 9, 12, 9);
  const std::string probe = make_probe("cli.probe.tok", 16, 9, 30, 10);
  const std::string big = make_stream("big.tok", 16, 100, 11);
  {  // a file whose vocabulary is larger than the model's
    TokSpec s;
    s.vocab = 40;
    s.ids = {1, 2, 3, 39, 4, 5, 6, 7, 8, 9};
    write_bytes(tmp("vocab40.tok"), tok_bytes(s));
  }
  const std::string out = tmp("cli_out");
  const std::vector<std::string> ok = {"--data", data, "--steps", "4", "--batch", "2", "--seq", "8", "--out", out};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = ok;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  expect_usage({"--steps", "4", "--batch", "2", "--seq", "8", "--out", out}, "needs --data");
  expect_usage({"--data", data, "--batch", "2", "--seq", "8", "--out", out}, "needs --steps");
  expect_usage({"--data", data, "--steps", "4", "--seq", "8", "--out", out}, "needs --batch");
  expect_usage({"--data", data, "--steps", "4", "--batch", "2", "--seq", "8"}, "needs --out");
  expect_usage({"--data", data, "--steps", "4", "--batch", "2", "--out", out}, "needs --seq T for the token stream");
  expect_usage(with({"--bogus", "1"}), "unknown option '--bogus'");
  expect_usage(with({"--steps", "5"}), "given more than once");
  expect_usage({"--data", data, "--steps", "4", "--batch", "0", "--seq", "8", "--out", out}, "--batch 0 is out of range");
  expect_usage({"--data", data, "--steps", "x", "--batch", "2", "--seq", "8", "--out", out}, "--steps: 'x' is not an integer");
  expect_usage(with({"--lr", "abc"}), "--lr: 'abc' is not a finite number");
  expect_usage(with({"--lr", "1e-3", "--min-lr", "1e-2"}), "--min-lr 0.01 must be in [0, --lr 0.001]");
  expect_usage(with({"--beta1", "1"}), "--beta1 1 must be in [0, 1)");
  expect_usage(with({"--beta2", "-0.1"}), "--beta2 -0.1 must be in [0, 1)");
  expect_usage(with({"--eps", "0"}), "--eps 0 must be > 0");
  expect_usage(with({"--clip", "-1"}), "--clip -1 must be ≥ 0");
  expect_usage(with({"--warmup", "10"}), "--warmup 10 is longer than --steps 4");
  expect_usage(with({"--accum", "0"}), "--accum 0 is out of range");
  expect_usage(with({"--seed", "-3"}), "--seed: '-3' is not a non-negative integer");
  expect_usage({"--data", tmp("nope.tok"), "--steps", "4", "--batch", "2", "--seq", "8", "--out", out}, "cannot open token file");
  expect_usage({"--data", tmp("magic.tok"), "--steps", "4", "--batch", "2", "--seq", "8", "--out", out}, "magic");
  expect_usage({"--data", probe, "--steps", "4", "--batch", "2", "--seq", "9", "--out", out}, "--seq can be at most 8 (rowLength − 1), got 9");
  expect_usage({"--data", big, "--steps", "4", "--batch", "2", "--seq", "100", "--out", out}, "fewer than one window");
  expect_usage({"--data", tmp("vocab40.tok"), "--steps", "4", "--batch", "2", "--seq", "4", "--out", out},
               "has vocabulary 40 but the model's is 16");
  expect_usage({"--data", data, "--steps", "4", "--batch", "2", "--seq", "33", "--out", out}, "longer than this model's maxSeqlen 32");
  expect_usage({"--data", data, "--steps", "4", "--batch", "16", "--seq", "32", "--out", out}, "at most 256");
  expect_usage(with({"--manifest", tmp("nomanifest.json")}), "nomanifest.json");
  expect_usage(with({"--weights", tmp("good.tok")}), "--weights:");
  expect_usage(with({"--resume", tmp("nothing_here")}), "no checkpoint to resume from");
  expect_usage(with({"--eval-data", tmp("nope.tok")}), "cannot open token file");
  expect_usage({"stray"}, "unexpected argument 'stray'");
  expect_usage(with({"--eval-every", "2"}), "--eval-every needs --eval-data");
  expect_usage(with({"--no-checkpoint"}), "--no-checkpoint writes nothing");
  {
    const CliResult nc = run_cli({"--data", data, "--steps", "3", "--batch", "2", "--seq", "8", "--no-checkpoint", "--json"});
    EXPECT(nc.code == 0 && nc.out.find("\"step\": 3,") != std::string::npos && nc.err.find("none (--no-checkpoint)") != std::string::npos,
           "--no-checkpoint trains and writes nothing: %s", nc.err.c_str());
  }
  {
    const CliResult h = run_cli({"--help"});
    EXPECT(h.code == 0 && h.out.find("989 TFLOP/s") != std::string::npos && h.out.find("--resume DIR") != std::string::npos, "--help: %s",
           h.out.substr(0, 200).c_str());
  }

  // an end-to-end run: probe data with a stream eval set? (probe eval rows of 9 → T = 8)
  rm_rf(out);
  const CliResult r = run_cli({"--data", data, "--eval-data", ev, "--steps", "10", "--batch", "4", "--seq", "8", "--accum", "2", "--lr", "0.05",
                               "--warmup", "2", "--eval-every", "5", "--save-every", "5", "--log-every", "2", "--seed", "3", "--out", out, "--json"});
  EXPECT(r.code == 0, "CLI run: %d %s", r.code, r.err.c_str());
  if (std::getenv("STRATA_TEST_VERBOSE")) std::fprintf(stderr, "%s%s", r.err.c_str(), r.out.c_str());
  int steps = 0, evals = 0;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    steps += line.find("\"tokens_per_s\"") != std::string::npos && line.find("\"mfu\"") != std::string::npos && line.find("\"grad_norm\"") != std::string::npos;
    evals += line.find("\"eval_loss\"") != std::string::npos && line.find("\"accuracy\"") != std::string::npos;
  }
  EXPECT(r.out.find("{\"final\": true, \"step\": 10, \"final_loss\": ") != std::string::npos, "--json final summary: %s", r.out.c_str());
  EXPECT(steps == 5 && evals == 2, "--json: 5 step lines (log every 2), 2 eval lines; got %d, %d:\n%s", steps, evals, r.out.c_str());
  EXPECT(r.err.find("step 10/10") != std::string::npos && r.err.find("MFU") != std::string::npos && r.err.find("ETA") != std::string::npos,
         "progress on stderr: %s", r.err.c_str());
  EXPECT(read_text(out + "/latest") == "step-10\n" && exists(out + "/step-5/optimizer.safetensors"), "checkpoints at 5 and 10");
  // model.safetensors loads against the manifest (what `model forward --weights` checks)
  try {
    const Manifest mf = load_manifest(tmp("manifest.json"));
    SafetensorsFile w(out + "/step-10/model.safetensors");
    std::vector<ExpectedTensor> expected;
    for (const auto& x : mf.weights) expected.push_back({x.name, x.dtype, x.shape});
    w.validate_against(expected);
    EXPECT(std::memcmp(w.data(w.get("embedding.weight")), g_last_embedding.data(), g_last_embedding.size()) == 0,
           "model.safetensors holds the trained compute copy");
    SafetensorsFile opt(out + "/step-10/optimizer.safetensors");
    EXPECT(opt.find("master.embedding.weight") && opt.find("m.layers.0.mixer.D") && opt.find("v.lm_head.bias") &&
               opt.get("master.embedding.weight").dtype == DType::F32,
           "optimizer.safetensors: f32 master./m./v.");
    // and it is a valid --weights to start a new run from
    const CliResult w2 = run_cli({"--data", data, "--steps", "1", "--batch", "2", "--seq", "8", "--out", tmp("cli_out2"), "--weights",
                                  out + "/step-10/model.safetensors"});
    EXPECT(w2.code == 0, "--weights from a checkpoint: %s", w2.err.c_str());
    // resuming that run does not need its --weights file any more (the masters are in the checkpoint)
    write_bytes(tmp("w_copy.safetensors"), read_text(out + "/step-10/model.safetensors"));
    const CliResult w3 = run_cli({"--data", data, "--steps", "2", "--batch", "2", "--seq", "8", "--out", tmp("cli_out3"), "--save-every", "1",
                                  "--weights", tmp("w_copy.safetensors")});
    std::remove(tmp("w_copy.safetensors").c_str());
    const CliResult w4 = run_cli({"--resume", tmp("cli_out3"), "--steps", "3"});
    EXPECT(w3.code == 0 && w4.code == 0, "resume after the --weights file is gone: %s", w4.err.c_str());
  } catch (const std::exception& e) {
    EXPECT(false, "checkpoint vs manifest: %s", e.what());
  }
  // resume through the CLI: flags that change the trajectory are refused, --steps extends
  expect_usage({"--resume", out, "--lr", "0.1"}, "--lr 0.1 differs from the checkpoint's 0.05");
  expect_usage({"--resume", out, "--batch", "3"}, "--batch 3 differs from the checkpoint's 4");
  expect_usage({"--resume", out, "--weights", out + "/step-10/model.safetensors"}, "not both");
  // a new run (or a resumed one writing elsewhere) never writes into a folder holding another run:
  // it would rewrite that run's step-N files in place, the one `latest` names included
  const std::string before = read_text(out + "/step-10/optimizer.safetensors");
  expect_usage({"--data", data, "--steps", "10", "--batch", "4", "--seq", "8", "--out", out}, "already holds a training run");
  expect_usage({"--resume", out, "--out", tmp("cli_out2"), "--steps", "12"}, "already holds a training run");
  EXPECT(read_text(out + "/latest") == "step-10\n" && read_text(out + "/step-10/optimizer.safetensors") == before,
         "the refused runs left the checkpoint untouched");
  const CliResult rr = run_cli({"--resume", out, "--steps", "14"});
  EXPECT(rr.code == 0 && rr.err.find("resumed from") != std::string::npos && read_text(out + "/latest") == "step-14\n", "CLI resume to 14: %s",
         rr.err.c_str());
  // the data file rewritten in place with other tokens of the same count: the resumed run would read other batches
  {
    const std::string orig = read_text(data);
    std::string changed = orig;
    changed[64] = static_cast<char>((changed[64] + 1) % 16);  // the first id (uint16, below the vocabulary of 16)
    write_bytes(data, changed);
    expect_usage({"--resume", out, "--steps", "16"}, "not the token file the checkpoint was trained on");
    write_bytes(data, orig);
  }
  // a probe file defaults T to rowLength − 1
  const CliResult pr = run_cli({"--data", probe, "--steps", "2", "--batch", "2", "--out", tmp("cli_probe")});
  EXPECT(pr.code == 0 && pr.err.find("× 8 tokens") != std::string::npos, "probe default --seq: %s", pr.err.c_str());
  // --keep: only the newest checkpoints stay
  const CliResult kr = run_cli({"--data", data, "--steps", "10", "--batch", "2", "--seq", "8", "--save-every", "2", "--keep", "2", "--out", tmp("cli_keep")});
  EXPECT(kr.code == 0 && exists(tmp("cli_keep/step-10")) && exists(tmp("cli_keep/step-8")) && !exists(tmp("cli_keep/step-6")) &&
             !exists(tmp("cli_keep/step-2")),
         "--keep 2 leaves step-8 and step-10: %s", kr.err.c_str());
  rm_rf(out);
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/strata_trainer_test.XXXXXX";
  if (!mkdtemp(tmpl)) return 2;
  g_tmp = tmpl;
  test_schedule_and_decay();
  test_token_files();
  test_plot();
  test_adamw_reference();
  test_loss_falls_and_eval();
  test_resume_bit_exact();
  test_resume_after_empty_eval();
  test_nonfinite_stops();
  test_interrupt();
  test_checkpoint_kill();
  test_cli();
  rm_rf(g_tmp);
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}

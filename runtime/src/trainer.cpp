// trainer.cpp — the training loop (trainer.h).
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "checkpoint.h"
#include "dtype.h"
#include "error.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char b[64];
  if (t >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", static_cast<long long>(t / 3600), static_cast<long long>(t / 60 % 60));
  else if (t >= 60) std::snprintf(b, sizeof b, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  else std::snprintf(b, sizeof b, "%llds", static_cast<long long>(t));
  return b;
}

// JSON numbers for --json lines (non-finite as null).
std::string jnum(double v) { return std::isfinite(v) ? fmt("%.9g", v) : "null"; }

const json::Value& need(const json::Value& v, const char* key, const std::string& what) {
  const json::Value* x = v.find(key);
  if (!x) throw Error(what + ": missing \"" + key + "\"", STRATA_ERR_FORMAT);
  return *x;
}

}  // namespace

json::Value config_to_json(const TrainConfig& c) {
  json::Value v = json::Value::object();
  v.set("data", c.data);
  v.set("eval_data", c.eval_data);
  v.set("steps", c.steps);
  v.set("batch", c.batch);
  v.set("seq", c.seq);
  v.set("accum", c.accum);
  v.set("lr", c.opt.lr);
  v.set("min_lr", c.opt.min_lr);
  v.set("warmup", c.opt.warmup);
  v.set("weight_decay", c.opt.weight_decay);
  v.set("beta1", c.opt.beta1);
  v.set("beta2", c.opt.beta2);
  v.set("eps", c.opt.eps);
  v.set("clip", c.opt.clip);
  v.set("seed", std::to_string(c.seed));  // a string: JSON numbers lose uint64 precision
  v.set("eval_every", c.eval_every);
  v.set("eval_batches", c.eval_batches);
  v.set("save_every", c.save_every);
  v.set("log_every", c.log_every);
  v.set("keep", c.keep);
  v.set("weights", c.weights);
  return v;
}

TrainConfig config_from_json(const json::Value& v, const std::string& what) {
  TrainConfig c;
  c.data = need(v, "data", what).as_string();
  c.eval_data = need(v, "eval_data", what).as_string();
  c.steps = need(v, "steps", what).as_int();
  c.batch = static_cast<int>(need(v, "batch", what).as_int());
  c.seq = static_cast<int>(need(v, "seq", what).as_int());
  c.accum = static_cast<int>(need(v, "accum", what).as_int());
  c.opt.lr = need(v, "lr", what).as_number();
  c.opt.min_lr = need(v, "min_lr", what).as_number();
  c.opt.warmup = need(v, "warmup", what).as_int();
  c.opt.weight_decay = need(v, "weight_decay", what).as_number();
  c.opt.beta1 = need(v, "beta1", what).as_number();
  c.opt.beta2 = need(v, "beta2", what).as_number();
  c.opt.eps = need(v, "eps", what).as_number();
  c.opt.clip = need(v, "clip", what).as_number();
  c.seed = std::stoull(need(v, "seed", what).as_string());
  c.eval_every = need(v, "eval_every", what).as_int();
  c.eval_batches = need(v, "eval_batches", what).as_int();
  c.save_every = need(v, "save_every", what).as_int();
  c.log_every = need(v, "log_every", what).as_int();
  if (const json::Value* k = v.find("keep")) c.keep = k->as_int();
  c.weights = need(v, "weights", what).as_string();
  return c;
}

Trainer::Trainer(TrainTarget& target, const TrainConfig& cfg, const std::vector<std::vector<int64_t>>& shapes, const TokenFile& train,
                 const TokenFile* eval, const OptimizerFactory& make_optimizer, FILE* progress, FILE* json_out)
    : t_(target), cfg_(cfg), train_(train), eval_(eval), order_(batch_units(train, cfg.seq), cfg.seed), progress_(progress), json_(json_out) {
  if (batch_units(train, cfg.seq) == 0)
    throw Error(train.path() + ": holds no example / window of --seq + 1 = " + std::to_string(cfg.seq + 1) + " tokens");
  const int n = t_.param_count();
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> shape = i < static_cast<int>(shapes.size()) ? shapes[i] : std::vector<int64_t>{};
    if (shape.empty()) shape = {static_cast<int64_t>(t_.param_numel(i))};
    if (shape_numel(shape, t_.param_name(i)) != t_.param_numel(i))
      throw Error("train: parameter '" + t_.param_name(i) + "' has " + std::to_string(t_.param_numel(i)) + " elements but its manifest shape " +
                      shape_str(shape) + " has " + std::to_string(shape_numel(shape, t_.param_name(i))),
                  STRATA_ERR_INTERNAL);
    shapes_.push_back(shape);
    ParamSlot s;
    s.name = t_.param_name(i);
    s.numel = t_.param_numel(i);
    s.bf16 = t_.param_bf16(i);
    s.decay = adamw_decays(s.name, shape);
    s.compute = t_.param_device(i);
    s.grad = t_.grad_device(i);
    slots_.push_back(s);
  }
  opt_ = make_optimizer(slots_, cfg_.accum);
  opt_->init_from_compute();
}

void Trainer::resume(const std::string& dir) {
  LoadedCheckpoint c = load_checkpoint(dir);
  const SafetensorsFile& f = *c.optimizer;
  std::vector<ExpectedTensor> expected;
  for (size_t i = 0; i < slots_.size(); ++i)
    for (const char* p : {"master.", "m.", "v."}) expected.push_back({p + slots_[i].name, DType::F32, shapes_[i]});
  f.validate_against(expected);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const OptTensor which[3] = {OptTensor::kMaster, OptTensor::kM, OptTensor::kV};
    const char* prefix[3] = {"master.", "m.", "v."};
    for (int k = 0; k < 3; ++k) {
      const TensorInfo& ti = f.get(prefix[k] + slots_[i].name);
      std::vector<float> host(slots_[i].numel);
      if (!host.empty()) std::memcpy(host.data(), f.data(ti), host.size() * sizeof(float));  // the mapping may be unaligned
      opt_->upload(static_cast<int>(i), which[k], host.data());
    }
  }
  opt_->write_compute();
  opt_->sync();
  t_.params_changed();
  step_ = c.step;
  saved_step_ = cfg_.out == dir ? c.step : -1;
  history_.clear();
  evals_.clear();
  const std::string what = c.path + "/trainer.json";
  for (const json::Value& h : need(c.trainer, "history", what).as_array()) {
    StepRecord r;
    r.step = need(h, "step", what).as_int();
    const json::Value& l = need(h, "loss", what);
    r.loss = l.is_null() ? NAN : l.as_number();
    r.lr = need(h, "lr", what).as_number();
    const json::Value& g = need(h, "grad_norm", what);
    r.grad_norm = g.is_null() ? NAN : g.as_number();
    history_.push_back(r);
  }
  for (const json::Value& h : need(c.trainer, "eval", what).as_array()) {
    EvalRecord r;
    r.step = need(h, "step", what).as_int();
    const json::Value& l = need(h, "eval_loss", what);
    r.loss = l.is_null() ? NAN : l.as_number();
    const json::Value& a = need(h, "accuracy", what);  // null: no supervised position (NaN, written as null)
    r.accuracy = a.is_null() ? NAN : a.as_number();
    evals_.push_back(r);
  }
  std::fprintf(progress_, "train: resumed from %s at step %lld of %lld\n", c.path.c_str(), static_cast<long long>(step_),
               static_cast<long long>(cfg_.steps));
}

std::string Trainer::save() {
  CheckpointFiles files;
  std::vector<std::vector<uint8_t>> compute(slots_.size());
  std::vector<std::vector<float>> state(3 * slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    compute[i].resize(slots_[i].numel * (slots_[i].bf16 ? 2 : 4));
    opt_->download_compute(static_cast<int>(i), compute[i].data());
    files.model.push_back({slots_[i].name, slots_[i].bf16 ? DType::BF16 : DType::F32, shapes_[i], compute[i].data()});
  }
  const OptTensor which[3] = {OptTensor::kMaster, OptTensor::kM, OptTensor::kV};
  const char* prefix[3] = {"master.", "m.", "v."};
  for (int k = 0; k < 3; ++k)
    for (size_t i = 0; i < slots_.size(); ++i) {
      std::vector<float>& h = state[k * slots_.size() + i];
      h.resize(slots_[i].numel);
      opt_->download(static_cast<int>(i), which[k], h.data());
      files.optimizer.push_back({prefix[k] + slots_[i].name, DType::F32, shapes_[i], h.data()});
    }
  json::Value tj = json::Value::object();
  tj.set("format", "strata-trainer-1");
  tj.set("step", step_);
  tj.set("seed", std::to_string(cfg_.seed));
  tj.set("config", config_to_json(cfg_));
  json::Value data = json::Value::object();
  data.set("path", train_.path());
  data.set("bytes", static_cast<uint64_t>(train_.file_bytes()));
  data.set("count", train_.count());
  data.set("vocab", static_cast<int64_t>(train_.vocab()));
  data.set("rowLength", static_cast<int64_t>(train_.row_length()));
  data.set("hash", std::to_string(train_.content_hash()));  // a string: JSON numbers lose uint64 precision
  tj.set("data", data);
  json::Value hist = json::Value::array();
  for (const StepRecord& r : history_) {
    json::Value h = json::Value::object();
    h.set("step", r.step);
    h.set("loss", r.loss);
    h.set("lr", r.lr);
    h.set("grad_norm", r.grad_norm);
    hist.push_back(h);
  }
  tj.set("history", hist);
  json::Value ev = json::Value::array();
  for (const EvalRecord& r : evals_) {
    json::Value h = json::Value::object();
    h.set("step", r.step);
    h.set("eval_loss", r.loss);
    h.set("accuracy", r.accuracy);
    ev.push_back(h);
  }
  tj.set("eval", ev);
  files.trainer = tj;
  files.loss_csv = loss_csv(history_, evals_);
  files.loss_svg = loss_svg(history_, evals_, "training loss — " + train_.path());
  const std::string sd = write_checkpoint(cfg_.out, step_, files);
  saved_step_ = step_;
  if (cfg_.keep > 0) prune_checkpoints(cfg_.out, static_cast<int>(cfg_.keep));
  return sd;
}

EvalResult Trainer::evaluate() {
  EvalResult r;
  if (!eval_) return r;
  const int T = eval_->row_length() > 0 ? static_cast<int>(eval_->row_length() - 1) : cfg_.seq;
  const uint64_t units = batch_units(*eval_, T);
  uint64_t batches = (units + cfg_.batch - 1) / cfg_.batch;
  if (cfg_.eval_batches > 0) batches = std::min<uint64_t>(batches, static_cast<uint64_t>(cfg_.eval_batches));
  const uint64_t n_units = std::min<uint64_t>(units, batches * cfg_.batch);
  const int64_t V = t_.vocab();
  // rows per forward call: the batch, fewer when the host logits would pass 2^26 floats (256 MiB)
  // rows per forward call: the batch, fewer when the host logits would pass 2^26 floats (256 MiB),
  // the call would pass the model's tokens per call, or its maxBatch
  int64_t cap = std::min<int64_t>(cfg_.batch, (int64_t(1) << 26) / (int64_t(T) * V));
  cap = std::min<int64_t>(cap, t_.max_tokens() / T);
  if (cfg_.eval_max_rows > 0) cap = std::min<int64_t>(cap, cfg_.eval_max_rows);
  const int rows = static_cast<int>(std::max<int64_t>(1, cap));
  std::vector<int32_t> tokens(static_cast<size_t>(rows) * T), targets(tokens.size());
  std::vector<float> weights(tokens.size()), logits(tokens.size() * V);
  std::vector<uint64_t> ids(rows);
  double wsum = 0, lsum = 0;
  int64_t correct = 0;
  for (uint64_t u = 0; u < n_units; u += rows) {
    const int n = static_cast<int>(std::min<uint64_t>(rows, n_units - u));
    for (int i = 0; i < n; ++i) ids[i] = u + i;
    fill_units(*eval_, T, ids.data(), n, tokens.data(), targets.data(), weights.data());
    t_.forward(tokens.data(), n, T, logits.data());
    for (size_t p = 0; p < static_cast<size_t>(n) * T; ++p) {
      if (weights[p] <= 0) continue;
      const float* l = logits.data() + p * V;
      int64_t best = 0;
      double mx = l[0];
      for (int64_t v = 1; v < V; ++v)
        if (l[v] > mx) mx = l[v], best = v;
      double se = 0;
      for (int64_t v = 0; v < V; ++v) se += std::exp(static_cast<double>(l[v]) - mx);
      const double ce = std::log(se) + mx - l[targets[p]];
      lsum += weights[p] * ce;
      wsum += weights[p];
      correct += best == targets[p];
      ++r.positions;
    }
  }
  r.loss = wsum > 0 ? lsum / wsum : NAN;
  r.accuracy = r.positions ? static_cast<double>(correct) / r.positions : NAN;
  return r;
}

void Trainer::log_step(const StepRecord& r, double tps, double eta) {
  const double mfu = tps * t_.flops_per_token(cfg_.seq) / kPeakFlops;
  std::fprintf(progress_, "step %lld/%lld  loss %.4f  lr %.3e  grad-norm %.3f  %.0f tok/s  MFU %.1f%%  ETA %s\n", static_cast<long long>(r.step),
               static_cast<long long>(cfg_.steps), r.loss, r.lr, r.grad_norm, tps, 100 * mfu, duration(eta).c_str());
  std::fflush(progress_);
  if (cfg_.json) {
    std::fprintf(json_, "{\"step\": %lld, \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, \"tokens_per_s\": %s, \"mfu\": %s}\n",
                 static_cast<long long>(r.step), jnum(r.loss).c_str(), jnum(r.lr).c_str(), jnum(r.grad_norm).c_str(), jnum(tps).c_str(),
                 jnum(mfu).c_str());
    std::fflush(json_);
  }
}

int Trainer::run() {
  const int B = cfg_.batch, T = cfg_.seq, K = cfg_.accum;
  const size_t bt = static_cast<size_t>(B) * T;
  std::vector<int32_t> tokens(bt), targets(bt);
  std::vector<float> weights(bt);
  std::vector<uint64_t> units(B);
  std::vector<double> sumsq;
  const int64_t first_step = step_;
  const auto t_start = Clock::now();
  double train_s = 0, window_s = 0;
  int64_t window_tokens = 0, window_steps = 0, total_tokens = 0;
  auto t_window = Clock::now();
  std::string last_dir;

  // STRATA_TRAIN_PHASES=1 (or STRATA_PROFILE): wait for the device after each phase of a step and
  // print where a step's time goes (host data, the train schedule, the optimizer's passes)
  const bool phases = std::getenv("STRATA_TRAIN_PHASES") || std::getenv("STRATA_PROFILE");
  const char* phase_names[] = {"host batch", "train schedule + loss", "accumulate", "grad sum of squares", "AdamW + prep"};
  double phase_s[5] = {0, 0, 0, 0, 0};
  int64_t phase_steps = 0;
  auto tp = Clock::now();
  const auto phase = [&](int i) {
    if (!phases) return;
    opt_->sync();
    const auto now = Clock::now();
    if (step_ > first_step || cfg_.steps - first_step == 1) phase_s[i] += std::chrono::duration<double>(now - tp).count();  // not the first step (allocation, warm-up)
    tp = now;
  };

  while (step_ < cfg_.steps) {
    const int64_t s = step_ + 1;
    const auto t0 = Clock::now();
    tp = t0;
    double loss_sum = 0;
    int used = 0;
    for (int k = 0; k < K; ++k) {
      const uint64_t first = (static_cast<uint64_t>(s - 1) * K + k) * B;
      for (int b = 0; b < B; ++b) units[b] = order_.unit(first + b);
      fill_units(train_, T, units.data(), B, tokens.data(), targets.data(), weights.data());
      double wsum = 0;
      for (float w : weights) wsum += w;
      if (wsum <= 0) continue;  // no supervised position: contributes nothing
      phase(0);
      const float loss = t_.train_step(tokens.data(), targets.data(), weights.data(), B, T);
      phase(1);
      for (int i = 0; i < static_cast<int>(slots_.size()); ++i) opt_->set_grad(i, t_.grad_device(i));
      opt_->accumulate(used == 0);
      phase(2);
      ++used;
      if (!std::isfinite(loss)) {
        opt_->grad_sumsq(sumsq);
        std::string who = "no parameter's gradient is non-finite";
        for (size_t i = 0; i < sumsq.size(); ++i)
          if (!std::isfinite(sumsq[i])) {
            who = "the first parameter with a non-finite gradient is '" + slots_[i].name + "'";
            break;
          }
        stop_ = "step " + std::to_string(s) + ": the loss of micro-batch " + std::to_string(k) + " is " + fmt("%g", loss) + "; " + who;
        break;
      }
      loss_sum += loss;
      total_tokens += static_cast<int64_t>(bt);
      window_tokens += static_cast<int64_t>(bt);
    }
    if (stop_.empty() && used > 0) {
      opt_->grad_sumsq(sumsq);
      phase(3);
      double total = 0;
      for (size_t i = 0; i < sumsq.size(); ++i) {
        if (!std::isfinite(sumsq[i])) {
          stop_ = "step " + std::to_string(s) + ": the gradient of '" + slots_[i].name + "' is not finite (loss " + fmt("%g", loss_sum / used) + ")";
          break;
        }
        total += sumsq[i];
      }
      if (stop_.empty()) {
        const double norm = std::sqrt(total) / used;
        const AdamWStep st = adamw_step_constants(cfg_.opt, s, cfg_.steps, norm, used);
        opt_->update(st);
        t_.params_changed();
        phase(4);
        if (step_ > first_step || cfg_.steps - first_step == 1) ++phase_steps;
        history_.push_back(StepRecord{s, loss_sum / used, adamw_lr(cfg_.opt, s, cfg_.steps), norm});
      }
    } else if (stop_.empty()) {
      std::fprintf(progress_, "step %lld: no supervised position in any of its %d micro-batches (all loss weights 0); no update\n",
                   static_cast<long long>(s), K);
    }
    if (!stop_.empty()) {
      const std::string last = saved_step_ >= 0 ? cfg_.out + "/step-" + std::to_string(saved_step_) : std::string();
      std::fprintf(progress_, "error: %s; training stopped before applying this update. %s\n", stop_.c_str(),
                   last.empty() ? "No checkpoint was written in this run." : ("The last good checkpoint is " + last + " (" + cfg_.out + "/latest).").c_str());
      if (cfg_.json) std::fprintf(json_, "{\"step\": %lld, \"error\": \"non-finite\"}\n", static_cast<long long>(s));
      std::fflush(progress_);
      return 1;
    }
    step_ = s;
    ++window_steps;
    const bool last = step_ == cfg_.steps;
    const bool do_log = (step_ % cfg_.log_every == 0 || last) && !history_.empty();
    if (do_log || last) opt_->sync();
    // training time only (not evaluation or checkpoints); the device work of a step that is not
    // synchronised here is waited for by the next step's train_step
    train_s += seconds_since(t0);
    if (do_log) {
      window_s = seconds_since(t_window);
      const double tps = window_s > 0 ? window_tokens / window_s : 0;
      const double eta = window_steps > 0 ? (cfg_.steps - step_) * (window_s / window_steps) : 0;
      log_step(history_.back(), tps, eta);
      t_window = Clock::now();
      window_tokens = 0;
      window_steps = 0;
    }
    const bool do_eval = eval_ && ((cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || last);
    const bool do_save = !cfg_.no_checkpoint && ((cfg_.save_every > 0 && step_ % cfg_.save_every == 0) || last);
    if (do_eval) {
      const EvalResult e = evaluate();
      evals_.push_back(EvalRecord{step_, e.loss, e.accuracy});
      std::fprintf(progress_, "eval at step %lld: loss %.4f  accuracy %.4f  (%lld positions)\n", static_cast<long long>(step_), e.loss, e.accuracy,
                   static_cast<long long>(e.positions));
      if (cfg_.json)
        std::fprintf(json_, "{\"step\": %lld, \"eval_loss\": %s, \"accuracy\": %s}\n", static_cast<long long>(step_), jnum(e.loss).c_str(),
                     jnum(e.accuracy).c_str());
      std::fflush(json_);
    }
    if (do_save) last_dir = save();
    if (interrupt && *interrupt && !last) {
      if (step_ != saved_step_ && !cfg_.no_checkpoint) last_dir = save();
      std::fprintf(progress_, "train: interrupted after step %lld; checkpoint %s; continue with --resume %s\n", static_cast<long long>(step_),
                   last_dir.c_str(), cfg_.out.c_str());
      std::fflush(progress_);
      return 130;
    }
    if (do_eval || do_save) t_window = Clock::now(), window_tokens = 0, window_steps = 0;  // the next window times training only
  }
  if (step_ != saved_step_ && !cfg_.no_checkpoint) last_dir = save();
  if (phases && phase_steps > 0) {
    std::fprintf(progress_, "train phases (mean ms per step over %lld steps after the first; the device waited for after each phase):", static_cast<long long>(phase_steps));
    for (int i = 0; i < 5; ++i) std::fprintf(progress_, "%s %s %.2f", i ? "," : "", phase_names[i], 1e3 * phase_s[i] / phase_steps);
    std::fprintf(progress_, "\n");
  }
  const double wall = seconds_since(t_start);
  const double tps = train_s > 0 ? total_tokens / train_s : 0, mfu = tps * t_.flops_per_token(cfg_.seq) / kPeakFlops;
  const std::string ck = cfg_.no_checkpoint ? "none (--no-checkpoint)" : last_dir.empty() ? cfg_.out + "/step-" + std::to_string(step_) : last_dir;
  const double final_loss = history_.empty() ? NAN : history_.back().loss;
  std::fprintf(progress_,
               "train: %lld steps (%lld → %lld) in %s (%s training); final loss %.4f; %.0f tok/s, MFU %.1f%% (of %.0f TFLOP/s); checkpoint %s\n",
               static_cast<long long>(step_ - first_step), static_cast<long long>(first_step), static_cast<long long>(step_), duration(wall).c_str(),
               duration(train_s).c_str(), final_loss, tps, 100 * mfu, kPeakFlops / 1e12, ck.c_str());
  if (cfg_.json) {
    std::fprintf(json_, "{\"final\": true, \"step\": %lld, \"final_loss\": %s, \"mean_tokens_per_s\": %s, \"mean_mfu\": %s, \"train_seconds\": %s, \"wall_seconds\": %s, \"checkpoint\": %s}\n",
                 static_cast<long long>(step_), jnum(final_loss).c_str(), jnum(tps).c_str(), jnum(mfu).c_str(), jnum(train_s).c_str(), jnum(wall).c_str(),
                 json::dump(json::Value(ck)).c_str());
    std::fflush(json_);
  }
  return 0;
}

}  // namespace strata

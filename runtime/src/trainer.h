// trainer.h — the training loop over a TrainTarget (train.h): batches from token files
// (train_data.h), gradient accumulation, the non-finite check, AdamW (adamw.h), evaluation,
// progress, and checkpoints with bit-exact resume (checkpoint.h).
//
// One step s (1-based) of K micro-batches:
//   for k < K: batch of the samples (s−1)·K·B + k·B … (train_data.h) → train_step → loss_k;
//              a non-finite loss_k stops training (below); accumulate the gradient
//              (micro-batches with no supervised position, Σw = 0, are skipped)
//   Σ acc² per parameter (float64, fixed order): a non-finite sum stops training, naming the first
//   parameter (manifest order) whose gradient is not finite; nothing is applied
//   ‖g‖ = sqrt(Σ) / K'; AdamW step s with clipping (adamw.h); params_changed()
//   loss(s) = mean of the K' micro-batch losses (K' = micro-batches with Σw > 0)
// A stop keeps the last good checkpoint (`latest` is not touched) and run() returns 1.
// Resume restores masters, moments and the step, recomputes the compute copies from the masters,
// and reads the same batches: the loss trajectory equals the uninterrupted run's bit for bit
// when train_step is deterministic.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adamw.h"
#include "json.h"
#include "loss_plot.h"
#include "train.h"
#include "train_data.h"

namespace strata {

// 989 TFLOP/s: H100/H200 SXM dense bf16 peak, the MFU denominator.
constexpr double kPeakFlops = 989e12;

struct TrainConfig {
  std::string data, eval_data, out, resume, weights, manifest;
  int64_t steps = 0;
  int batch = 0, seq = 0, accum = 1;
  AdamWConfig opt;
  uint64_t seed = 0;
  int64_t eval_every = 0;    // 0: only at the end when --eval-data is given
  int64_t eval_batches = 0;  // 0: the whole eval set
  int64_t save_every = 0;    // 0: only at the end
  int64_t log_every = 1;
  int64_t keep = 0;          // checkpoints kept in `out` (newest first); 0: all
  int eval_max_rows = 0;     // rows per forward() call in evaluation (the model's maxBatch); 0: --batch
  bool json = false;
  bool no_checkpoint = false;  // --no-checkpoint: write nothing (benchmarks); --out not needed
};

// The config as stored in trainer.json, and back.
json::Value config_to_json(const TrainConfig& c);
TrainConfig config_from_json(const json::Value& v, const std::string& what);

using OptimizerFactory = std::function<std::unique_ptr<OptimizerState>(const std::vector<ParamSlot>&, int accum)>;

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t positions = 0;  // supervised positions evaluated
};

class Trainer {
 public:
  // `shapes[i]`: parameter i's manifest shape (checkpoint tensors, the weight-decay rule); empty =
  // [numel]. `progress` gets the human-readable lines, `json_out` the --json records.
  Trainer(TrainTarget& target, const TrainConfig& cfg, const std::vector<std::vector<int64_t>>& shapes, const TokenFile& train,
          const TokenFile* eval, const OptimizerFactory& make_optimizer, FILE* progress = stderr, FILE* json_out = stdout);

  // Restores DIR/latest (masters, moments, step, history); call before run().
  void resume(const std::string& dir);
  // Trains up to cfg.steps. 0: done; 1: stopped at a non-finite loss or gradient; 130: stopped
  // by *interrupt (set from a signal handler) after finishing and checkpointing the current step.
  int run();
  // Checked after every step; cli_train points it at its SIGINT / SIGTERM flag.
  volatile int* interrupt = nullptr;

  EvalResult evaluate();
  int64_t step() const { return step_; }
  const std::vector<StepRecord>& history() const { return history_; }
  const std::vector<EvalRecord>& evals() const { return evals_; }
  OptimizerState& optimizer() { return *opt_; }
  const std::string& stop_message() const { return stop_; }
  // Writes the checkpoint of the current step into cfg.out.
  std::string save();

 private:
  void log_step(const StepRecord& r, double tokens_per_s, double eta_s);

  TrainTarget& t_;
  TrainConfig cfg_;
  std::vector<std::vector<int64_t>> shapes_;
  const TokenFile& train_;
  const TokenFile* eval_;
  std::unique_ptr<OptimizerState> opt_;
  std::vector<ParamSlot> slots_;
  SampleOrder order_;
  FILE* progress_;
  FILE* json_;
  int64_t step_ = 0, saved_step_ = -1;
  std::vector<StepRecord> history_;
  std::vector<EvalRecord> evals_;
  std::string stop_;
};

}  // namespace strata

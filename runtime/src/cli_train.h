// `bin/model train`: train the compiled model on a token file (trainer.h), with checkpoints and
// resume. The argument checking and the loop are here, over a TrainBackend; the real backend
// (the compiled Program's TrainTarget through make_program_train_target, the CUDA AdamW) is
// strata_cli_train in train_entry.cpp; the host tests pass a fake one.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adamw.h"
#include "train.h"

namespace strata {

struct Manifest;

struct TrainModel {
  std::shared_ptr<void> owner;          // keeps the model alive (destroyed after `target`)
  std::unique_ptr<TrainTarget> target;  // compute copies = the model's weights on return
};

struct TrainBackend {
  // The model with its initial weights: `weights` (a safetensors file already checked against the
  // manifest) or, when empty, the deterministic init with `init_seed`.
  std::function<TrainModel(const Manifest& mf, const std::string& weights, uint64_t init_seed)> make_target;
  std::function<std::unique_ptr<OptimizerState>(const std::vector<ParamSlot>&, TrainTarget&, int accum)> make_optimizer;
};

// argv[1] == "train". Exit codes: 0 success, 1 runtime failure or a non-finite loss / gradient,
// 2 usage error (bad flag, value, token file, or a combination the model cannot run).
int cli_train(int argc, char** argv, const std::string& default_manifest, const TrainBackend& backend, FILE* out = stdout,
              FILE* err = stderr);

// The usage text (`model train --help`).
const char* train_usage();

}  // namespace strata

// checkpoint.h — training checkpoints, written atomically.
//
//   DIR/step-<N>/model.safetensors      the parameters in their compute dtype (bf16 / f32) under their
//                                       manifest names and shapes: loads unchanged into
//                                       `bin/model forward|generate --weights`
//   DIR/step-<N>/optimizer.safetensors  f32 master.<name>, m.<name>, v.<name>; metadata step, format
//   DIR/step-<N>/trainer.json           step, config, seed, data files, loss and eval history
//   DIR/latest                          "step-<N>\n": the newest complete checkpoint
//   DIR/loss.csv, DIR/loss.svg          the curves so far (rewritten at each checkpoint)
//
// Every file is written to "<name>.tmp", fsync'ed, renamed over <name>, and its directory fsync'ed.
// `latest` is replaced last, so a step directory is complete only once `latest` names it; a
// process killed at any point leaves the previous `latest` and its directory intact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "json.h"
#include "safetensors.h"

namespace strata {

struct CheckpointFiles {
  std::vector<TensorWrite> model;      // model.safetensors
  std::vector<TensorWrite> optimizer;  // optimizer.safetensors
  json::Value trainer;                 // trainer.json
  std::string loss_csv, loss_svg;      // DIR/loss.csv, DIR/loss.svg ("" = not written)
};

// Writes DIR/step-<step>/… then DIR/loss.*, then replaces DIR/latest. Creates DIR if needed.
// Returns the step directory.
std::string write_checkpoint(const std::string& dir, int64_t step, const CheckpointFiles& files);

// The checkpoint DIR/latest names ("DIR/step-<N>"); throws a clear error when there is none.
std::string latest_checkpoint(const std::string& dir);

struct LoadedCheckpoint {
  std::string path;  // DIR/step-<N>
  int64_t step = 0;
  json::Value trainer;
  std::unique_ptr<SafetensorsFile> optimizer;
};
LoadedCheckpoint load_checkpoint(const std::string& dir);

// Removes all but the newest `keep` step-<N> directories of DIR (never the one `latest` names).
void prune_checkpoints(const std::string& dir, int keep);

// Atomic file replacement (temp + fsync + rename + fsync of the directory).
void write_file_atomic(const std::string& path, const std::string& bytes);

// Test hook: called at each named point of write_checkpoint ("<file>:written" after the temp file
// is complete and fsync'ed, "<file>:renamed" after the rename); null in production.
extern void (*checkpoint_fault_hook)(const char* point);

}  // namespace strata

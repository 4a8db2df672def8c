// train.h — the interface between the trainer (trainer.h, adamw.h, cli_train.h: the host side of
// training) and one compiled model's training entry (implemented over the compiled Program).
//
// Device pointers are on the target's device (CUDA), or host memory for the host tests' fake
// targets; the trainer never dereferences them itself: it hands them to an OptimizerState
// (adamw.h) made for the same kind of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "strata.h"

namespace strata {

class TrainTarget {  // one compiled model's training entry
 public:
  virtual ~TrainTarget() = default;
  virtual int param_count() const = 0;
  virtual const std::string& param_name(int i) const = 0;   // manifest / safetensors name
  virtual size_t param_numel(int i) const = 0;
  virtual bool param_bf16(int i) const = 0;                  // compute copy dtype: bf16, else f32
  virtual void* param_device(int i) = 0;                     // the compute copy the kernels read (device)
  virtual float* grad_device(int i) = 0;                     // f32 [numel], overwritten by each train_step (device)
  // tokens/targets/weights: host [batch, seqlen]; runs forward + loss + backward on the device,
  // leaves d loss/d param in grad_device(i); returns the loss (Σ w·CE / Σ w over the batch; NaN if Σw = 0).
  virtual float train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen) = 0;
  // forward only: logits host f32 [batch, seqlen, vocab]
  virtual void forward(const int32_t* tokens, int batch, int seqlen, float* logits) = 0;
  virtual void params_changed() = 0;  // after the compute copies change: re-runs parameter prep
  virtual int64_t vocab() const = 0;
  virtual int max_tokens() const = 0;   // batch·seqlen limit of one train_step
  // forward+backward training FLOPs per token at `seqlen` tokens per row (for MFU; attention's share grows with it)
  virtual double flops_per_token(int seqlen) const = 0;
  virtual void* stream() = 0;  // cudaStream_t the kernels run on
};

// Implemented by the lead over the compiled Program (program_model.cu). `program_model` is the
// strata_model* that cli_train created through the C ABI and loaded weights into (--weights, or
// the deterministic init with --seed); the target's compute copies start as those weights.
std::unique_ptr<TrainTarget> make_program_train_target(void* program_model);

}  // namespace strata

// `bin/model train` (cli_train.cpp, compiled into libmodel.so with the trainer): the one training
// symbol the library exports. The generated main.cpp dispatches `train` here. Exit codes as
// cli_main: 0 success, 1 runtime failure (incl. a non-finite loss / gradient), 2 usage error.
extern "C" STRATA_API int strata_cli_train(int argc, char** argv, const char* default_manifest);

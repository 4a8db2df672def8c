// loss_plot.h — the training curves as CSV and as a self-contained SVG line chart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct StepRecord {
  int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0;
};
struct EvalRecord {
  int64_t step = 0;
  double loss = 0, accuracy = 0;
};

// "step,loss,lr,grad_norm,eval_loss,eval_accuracy": one row per step (eval columns empty except
// at evaluated steps; an evaluation at a step with no training row gets its own row).
std::string loss_csv(const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals);
// Training loss (line) and eval loss (line with dots) against the step, labelled axes, a legend.
std::string loss_svg(const std::vector<StepRecord>& steps, const std::vector<EvalRecord>& evals, const std::string& title);

}  // namespace strata

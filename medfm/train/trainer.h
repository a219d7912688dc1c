// One optimisation step of a pre-training Objective, as DINO's / DINOv2's loops do it: lr and
// weight decay from precomputed schedules (each parameter group scales them by its multipliers),
// zero_grad, loss, backward, gradient clipping, the method's after_backward, AdamW step, the
// method's after_step. A non-finite loss stops the run with the step and the loss terms.
#pragma once
#include <torch/optim/adamw.h>

#include <memory>

#include "medfm/models/precision.h"
#include "medfm/train/distributed.h"
#include "medfm/train/objective.h"
#include "medfm/train/schedule.h"

namespace medfm::train {

struct TrainerOptions {
  Schedule lr, weight_decay;
  // clip_mode "per_param" (DINO: each parameter's gradient norm to at most clip_grad), "per_module"
  // (DINOv2: the norm over each child module of the trained one, e.g. backbone and head), "global"
  // (the norm over all parameters), "none".
  std::string clip_mode = "per_param";
  double clip_grad = 3.0;
  // bf16 / fp16 autocast around the method's forward passes and loss (fp32 weights, optimiser and
  // gradients); fp16 only on CUDA.
  models::Precision precision = models::Precision::FP32;
  c10::Device device = c10::Device(c10::kCPU);
  // Data parallel: gradients averaged over the ranks after backward (before clipping); the
  // reported loss and terms are the ranks' means. nullptr: one process.
  Dist* dist = nullptr;
  // The first steps train only the heads (the backbone's gradients are dropped, so AdamW leaves
  // it untouched: no update, no weight decay, no moments).
  int64_t freeze_backbone_steps = 0;
};

struct StepResult {
  int64_t step = 0;
  double loss = 0, lr = 0, weight_decay = 0;
  std::map<std::string, double> terms;
};

class Trainer {
 public:
  Trainer(Objective& objective, TrainerOptions options);
  StepResult step(const Views& views);  // throws Error on a non-finite loss
  // Gradient accumulation: one optimiser step over several micro-batches, each loss scaled by
  // 1 / n (the reported loss and terms are the means).
  StepResult step(const std::vector<Views>& micro_batches);
  int64_t steps_done() const { return step_; }
  void set_steps_done(int64_t step) { step_ = step; }  // after loading a checkpoint
  torch::optim::AdamW& optimizer() { return *opt_; }

 private:
  Objective& obj_;
  TrainerOptions o_;
  std::vector<ParamGroup> groups_;
  std::unique_ptr<torch::optim::AdamW> opt_;
  int64_t step_ = 0;
};

// DINO's clip_gradients: every parameter's gradient scaled to norm <= clip (coefficient
// clip / (norm + 1e-6)).
void clip_gradients_per_param(torch::nn::Module& m, double clip);

}  // namespace medfm::train

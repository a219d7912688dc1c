// The contract between the pre-training loop and a method (DINOv2's SSLMetaArch split): a method
// computes its loss from a batch of views and owns its heads, teacher and their schedules; the
// loop (trainer.h) owns the optimiser, the lr / weight-decay schedules, backward(), clipping and
// the step count.
#pragma once
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "medfm/train/optim.h"

namespace medfm::train {

// One batch of augmented views: crops[v] is view v of every image, [B,C,H,W]. Methods fix the
// order (DINO: the global crops first, then the local ones).
struct Views {
  std::vector<torch::Tensor> crops;
};

struct StepLoss {
  torch::Tensor loss;                    // scalar, differentiable
  std::map<std::string, double> terms;  // named parts for the log (e.g. dino, ibot, koleo)
};

class Objective {
 public:
  virtual ~Objective() = default;
  virtual std::string name() const = 0;
  // What the optimiser trains, split into weight-decay groups.
  virtual std::vector<ParamGroup> param_groups() = 0;
  // The module whose gradients the loop clips (the student).
  virtual torch::nn::Module& trained() = 0;
  virtual StepLoss loss(const Views& views, int64_t step) = 0;
  // After backward() and clipping, before the optimiser step (e.g. DINO drops its last layer's
  // gradients while it is frozen).
  virtual void after_backward(int64_t step) {}
  // After the optimiser step (e.g. the EMA teacher).
  virtual void after_step(int64_t step) {}
};

}  // namespace medfm::train

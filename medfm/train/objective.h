// The contract between the pre-training loop and a method (DINOv2's SSLMetaArch split): a method
// computes its loss from a batch of views and owns its heads, teacher and their schedules; the
// loop (trainer.h) owns the optimiser, the lr / weight-decay schedules, backward(), clipping and
// the step count.
#pragma once
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "medfm/models/vit.h"
#include "medfm/train/optim.h"

namespace medfm::train {

// One batch of augmented views: crops[v] is view v of every image, [B,C,H,W]. Methods fix the
// order (DINO: the global crops first, then the local ones).
struct Views {
  std::vector<torch::Tensor> crops;
  // Where these images sit in the step's global batch (all ranks, all micro-batches): per-image
  // randomness drawn for the global batch and sliced (MAE's masking) is then the same whatever the
  // number of processes. global_batch 0: the crops are the whole batch.
  int64_t first_slot = 0, global_batch = 0;
  // iBOT / DINOv2: which patches of each global crop the student sees masked, [n_global, B, h*w]
  // bool (undefined for other methods).
  torch::Tensor masks;
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
  // A factor on a group's scheduled learning rate at this step (DINOv2: 0 for the head's last
  // layer while it is frozen).
  virtual double lr_scale(const ParamGroup& group, int64_t step) const { return 1.0; }
  // Everything besides the optimiser that a checkpoint holds to resume bit-exactly: parameters and
  // buffers of every module the method owns (student, teacher, heads) and its running state (DINO's
  // centre), by name. load_state takes the same names back (Error naming a missing or mis-shaped one).
  virtual std::vector<std::pair<std::string, torch::Tensor>> state() = 0;
  virtual void load_state(const std::map<std::string, torch::Tensor>& state) = 0;
  // The backbone a run exports (DINO / iBOT / DINOv2: the teacher's, as their evaluations use;
  // MAE, SimCLR: the encoder).
  virtual models::Vit export_backbone() = 0;
  // The backbone being trained (the student's): frozen during a warm-up when continuing from
  // released weights (TrainerOptions::freeze_backbone_steps).
  virtual models::Vit trained_backbone() = 0;
};

// Appends a module's parameters and buffers as prefix + name.
void add_module_state(std::vector<std::pair<std::string, torch::Tensor>>& out, const std::string& prefix,
                      const torch::nn::Module& module);
// Copies prefix + name tensors of `state` into the module's parameters and buffers (no autograd).
void load_module_state(torch::nn::Module& module, const std::string& prefix,
                       const std::map<std::string, torch::Tensor>& state);

}  // namespace medfm::train

// Parameter groups and the optimiser of the pre-training loop. As DINO / DINOv2 / MAE: no weight
// decay on biases, norm weights, tokens and position embeddings (1-D parameters, names ending in
// ".bias", and the model's no_weight_decay() names); each group keeps a learning-rate and a
// weight-decay multiplier that the loop applies to the scheduled values every step.
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace medfm::train {

struct ParamGroup {
  std::string name;                  // "decay" | "no_decay" (or a caller's)
  std::vector<std::string> params;   // qualified names, in module order
  std::vector<torch::Tensor> tensors;
  double lr_multiplier = 1.0, wd_multiplier = 1.0;
};

// Trainable parameters (requires_grad) of `module` split into decay / no_decay groups; `prefix`
// is prepended to names (e.g. "student.backbone."). no_decay_names: names (without prefix) that
// never decay whatever their shape (ViT: cls_token, pos_embed, reg_token, mask_token).
std::vector<ParamGroup> weight_decay_groups(const torch::nn::Module& module, const std::set<std::string>& no_decay_names,
                                            const std::string& prefix = "");

// The key LibTorch's optimisers keep a parameter's state under: its TensorImpl's address written
// as text in LibTorch 1.x, the address itself in 2.x.
using OptimStateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
OptimStateMap::key_type optim_state_key(const torch::Tensor& p);

// torch::optim::AdamW with its update in one fused pass per parameter (models/cpu_kernels.h,
// adamw_update) when every parameter being stepped is a contiguous float32 CPU tensor with a dense
// float32 gradient and no group uses amsgrad; otherwise LibTorch's own step. Same state (exp_avg,
// exp_avg_sq, step), options and checkpoints as its base. The values equal the base's to float
// rounding (LibTorch's kernels contract some products into FMAs; test FusedAdamW.*).
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// AdamW over the groups (betas 0.9 / 0.999, eps 1e-8, as torch.optim.AdamW), one torch param
// group each, in order (a FusedAdamW).
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<ParamGroup>& groups, double betas1 = 0.9,
                                                double betas2 = 0.999);

// Sets each torch group's lr = lr * multiplier and weight_decay = wd * multiplier (groups as given
// to make_adamw).
void set_lr_wd(torch::optim::AdamW& opt, const std::vector<ParamGroup>& groups, double lr, double wd);

}  // namespace medfm::train

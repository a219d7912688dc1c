// DINOv2 (and iBOT) as a train::Objective, to dinov2/train/ssl_meta_arch.py's forward_backward:
// the student sees 2 global crops with block-masked patches (mask tokens; masks made by the loader,
// ibot.h) and the local crops; the EMA teacher sees the unmasked global crops.
//   dino   DINO's cls-token loss over (teacher global crop, other student crop) pairs, centred or
//          Sinkhorn-Knopp targets (the same pairs as DINOv2's swapped global chunks)
//   ibot   the masked patch tokens through the same head (DINOv2's default: no separate iBOT head),
//          iBOTPatchLoss with its own centre
//   koleo  koleo_weight x KoLeo of the student's global cls tokens (backbone output, before the
//          head), per global crop, over the global batch of every rank
// loss = dino_weight * dino + ibot_weight * ibot + koleo. "ibot" is this objective with koleo_weight
// 0. The head's last layer is trained with its norm (DINOv2's head has no norm_last_layer).
#pragma once
#include "medfm/models/vit.h"
#include "medfm/ssl/dino_objective.h"
#include "medfm/ssl/ibot.h"
#include "medfm/train/objective.h"

namespace medfm::ssl {

struct Dinov2Options {
  std::string name = "dinov2";  // or "ibot"
  DinoHeadOptions head;
  int n_local_crops = 8;
  train::Schedule teacher_temp, momentum;
  int64_t freeze_last_layer_steps = 0;
  double student_temp = 0.1, center_momentum = 0.9;
  double dino_weight = 1.0, ibot_weight = 1.0, koleo_weight = 0.1;
  double patch_embed_lr_mult = 0.2;  // DINOv2's optim.patch_embed_lr_mult
  std::string centering = "centering";  // centering | sinkhorn_knopp
  // Data parallel: sums over ranks, and a differentiable gather of rows (KoLeo's global batch).
  AllReduce all_reduce;
  std::function<torch::Tensor(const torch::Tensor&)> all_gather;
  int world_size = 1;
};

class Dinov2Objective : public train::Objective {
 public:
  // The backbone needs a mask token (registry override mask_token=true).
  Dinov2Objective(models::Vit backbone, Dinov2Options options);
  std::string name() const override { return o_.name; }
  // DINOv2's get_params_groups_with_decay: no weight decay on biases, norms and LayerScale gammas
  // (tokens and the mask token do decay), patch_embed at patch_embed_lr_mult, the head's last layer
  // in its own groups (lr 0 while frozen: its moments still accumulate, as in DINOv2).
  std::vector<train::ParamGroup> param_groups() override;
  double lr_scale(const train::ParamGroup& group, int64_t step) const override;
  torch::nn::Module& trained() override { return *student_; }
  // views.crops: 2 global then the local crops; views.masks [2, B, h*w] bool (empty: no masking).
  train::StepLoss loss(const train::Views& views, int64_t step) override;
  void after_step(int64_t step) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;  // student.*, teacher.*, dino.center, ibot.center
  void load_state(const std::map<std::string, torch::Tensor>& state) override;
  models::Vit export_backbone() override { return teacher_->backbone; }
  models::Vit trained_backbone() override { return student_->backbone; }
  DinoStudent& student() { return student_; }
  DinoStudent& teacher() { return teacher_; }

 private:
  Dinov2Options o_;
  DinoStudent student_{nullptr}, teacher_{nullptr};
  DinoLoss dino_;
  IbotPatchLoss ibot_;
};

}  // namespace medfm::ssl

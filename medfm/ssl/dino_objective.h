// DINO as a train::Objective (facebookresearch/dino's train_one_epoch semantics): a student
// (backbone + DinoHead) sees every crop, an EMA teacher (a copy, no gradients) sees the 2 global
// crops; crops of one resolution run through the backbone together (MultiCropWrapper), the
// backbone's pooled output (cls for DINO) goes to the head. The teacher follows the student with
// a momentum schedule; the last layer is frozen for the first freeze_last_layer_steps steps.
#pragma once
#include <memory>

#include "medfm/models/vit.h"
#include "medfm/ssl/dino.h"
#include "medfm/train/objective.h"

namespace medfm::ssl {

struct DinoOptions {
  DinoHeadOptions head;
  int n_global_crops = 2;
  int n_local_crops = 8;
  train::Schedule teacher_temp;   // per step
  train::Schedule momentum;       // teacher EMA momentum per step (DINO: cosine 0.996 -> 1)
  int64_t freeze_last_layer_steps = 0;
  double student_temp = 0.1, center_momentum = 0.9;
  AllReduce all_reduce;  // data parallel: the centre from the global batch
  int world_size = 1;
};

class DinoStudentImpl : public torch::nn::Cloneable<DinoStudentImpl> {
 public:
  DinoStudentImpl(models::Vit backbone, const DinoHeadOptions& head);
  void reset() override;
  // MultiCropWrapper: consecutive crops of one size share a backbone pass; [sum B_v, K].
  torch::Tensor forward(const std::vector<torch::Tensor>& crops);
  models::Vit backbone{nullptr};
  DinoHead head{nullptr};

 private:
  models::VitConfig cfg_;
  DinoHeadOptions head_opts_;
};
TORCH_MODULE(DinoStudent);

class DinoObjective : public train::Objective {
 public:
  // The backbone's weights are the starting point (random or released ones); the head is fresh.
  DinoObjective(models::Vit backbone, DinoOptions options);
  std::string name() const override { return "dino"; }
  std::vector<train::ParamGroup> param_groups() override;
  torch::nn::Module& trained() override { return *student_; }
  train::StepLoss loss(const train::Views& views, int64_t step) override;
  void after_backward(int64_t step) override;
  void after_step(int64_t step) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;  // student.*, teacher.*, dino.center
  void load_state(const std::map<std::string, torch::Tensor>& state) override;
  models::Vit export_backbone() override { return teacher_->backbone; }
  models::Vit trained_backbone() override { return student_->backbone; }
  DinoStudent& student() { return student_; }
  DinoStudent& teacher() { return teacher_; }
  DinoLoss& dino_loss() { return loss_; }

 private:
  DinoOptions o_;
  DinoStudent student_{nullptr}, teacher_{nullptr};
  DinoLoss loss_;
};

}  // namespace medfm::ssl

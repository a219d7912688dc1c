// SimCLR as a train::Objective: two views of each image through the encoder (its pooled
// embedding) and the projection head (simclr.h), NT-Xent over the global batch (negatives from
// every process when a gather is set).
#pragma once
#include "medfm/models/vit.h"
#include "medfm/ssl/simclr.h"
#include "medfm/train/objective.h"

namespace medfm::ssl {

struct SimclrOptions {
  SimclrHeadOptions head;
  double temperature = 0.1;
  Gather gather;  // data-parallel runs: all_gather over the processes
};

class SimclrModelImpl : public torch::nn::Cloneable<SimclrModelImpl> {
 public:
  SimclrModelImpl(models::Vit encoder, const SimclrHeadOptions& head);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,out_dim]
  models::Vit encoder{nullptr};
  SimclrHead head{nullptr};

 private:
  models::VitConfig cfg_;
  SimclrHeadOptions head_opts_;
};
TORCH_MODULE(SimclrModel);

class SimclrObjective : public train::Objective {
 public:
  SimclrObjective(models::Vit encoder, SimclrOptions options);
  std::string name() const override { return "simclr"; }
  std::vector<train::ParamGroup> param_groups() override;
  torch::nn::Module& trained() override { return *model_; }
  train::StepLoss loss(const train::Views& views, int64_t step) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;  // model.*
  void load_state(const std::map<std::string, torch::Tensor>& state) override;
  models::Vit export_backbone() override { return model_->encoder; }
  models::Vit trained_backbone() override { return model_->encoder; }

 private:
  SimclrOptions o_;
  SimclrModel model_{nullptr};
};

}  // namespace medfm::ssl

// MAE as a train::Objective (facebookresearch/mae's MaskedAutoencoderViT): the encoder (a medfm
// Vit: patch embedding + position embedding, then per-sample random masking of the patch tokens,
// then the prefix tokens and the blocks) sees the kept quarter of the patches; a light decoder
// (decoder_embed, a learnable mask token, fixed 2D sin-cos position embedding, transformer blocks,
// decoder_norm, decoder_pred to p*p*C pixels) reconstructs every patch; the loss is the
// normalised-pixel MSE on the removed patches (mae.h). One view per image. The masking noise comes
// from torch's generator (the loop seeds it per step).
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "medfm/models/vit.h"
#include "medfm/train/objective.h"

namespace medfm::ssl {

struct MaeOptions {
  double mask_ratio = 0.75;
  int decoder_dim = 512, decoder_depth = 8, decoder_heads = 16;
  bool norm_pix_loss = true;
};

// MAE's get_2d_sincos_pos_embed(dim, grid, cls_token): [n_prefix + grid*grid, dim], prefix rows 0.
torch::Tensor sincos_pos_embed_2d(int dim, int grid, int n_prefix);

class MaeModelImpl : public torch::nn::Cloneable<MaeModelImpl> {
 public:
  MaeModelImpl(models::Vit encoder, const MaeOptions& o);
  void reset() override;
  // imgs [B,C,H,W] at the encoder's img_size; noise [B,L] -> pred [B,L,p*p*C], mask [B,L] (1 = removed).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& imgs, const torch::Tensor& noise);
  models::Vit encoder{nullptr};
  torch::nn::Linear decoder_embed{nullptr}, decoder_pred{nullptr};
  torch::Tensor mask_token, decoder_pos_embed;
  torch::nn::ModuleList decoder_blocks{nullptr};
  torch::nn::LayerNorm decoder_norm{nullptr};

 private:
  void build_decoder();
  void init_decoder();
  models::VitConfig cfg_;
  MaeOptions o_;
};
TORCH_MODULE(MaeModel);

class MaeObjective : public train::Objective {
 public:
  MaeObjective(models::Vit encoder, MaeOptions options);
  std::string name() const override { return "mae"; }
  std::vector<train::ParamGroup> param_groups() override;
  torch::nn::Module& trained() override { return *model_; }
  train::StepLoss loss(const train::Views& views, int64_t step) override;
  std::vector<std::pair<std::string, torch::Tensor>> state() override;  // model.*
  void load_state(const std::map<std::string, torch::Tensor>& state) override;
  models::Vit export_backbone() override { return model_->encoder; }
  models::Vit trained_backbone() override { return model_->encoder; }
  MaeModel& model() { return model_; }

 private:
  MaeOptions o_;
  MaeModel model_{nullptr};
};

}  // namespace medfm::ssl

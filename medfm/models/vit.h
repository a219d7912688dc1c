// Vision Transformer, one implementation for every variant (timm semantics).
// Parameter names equal timm's VisionTransformer state_dict keys:
//   cls_token [1,1,D], reg_token [1,R,D], pos_embed [1,P,D], patch_embed.proj.{weight,bias},
//   blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}.*, norm.*
// Token order: [cls?, reg x R, patches]. pos_embed covers prefix tokens + patches
// (no_embed_class=false) or patches only (no_embed_class=true, as timm's DINOv2-with-registers).
// Input: float [B,C,H,W], already normalised; H and W multiples of patch_size. A grid other than
// the native one interpolates pos_embed bicubically (align_corners=false, antialias=true), as
// timm's resample_abs_pos_embed does.
// Layers are torch::nn modules (layers.h): clone() gives an independent copy (an EMA teacher),
// train()/eval() switch drop-path. Without autograd on CPU, attention runs per (image, head).
// Thread-safety: forward calls on one Vit may run concurrently in eval/no-grad mode.
#pragma once
#include "medfm/models/layers.h"

#include <string>
#include <vector>

namespace medfm::models {

enum class Pool { kCls, kMean, kClsMean };  // kMean averages patch tokens (no cls, no registers)

struct VitConfig {
  int img_size = 224;
  int patch_size = 16;
  int in_chans = 3;
  int embed_dim = 768;
  int depth = 12;
  int num_heads = 12;
  int mlp_hidden = 3072;         // fc1 output features; for SwiGLU the packed 2 x hidden
  bool swiglu = false;           // timm SwiGLUPacked: fc1 -> chunk(2) -> silu(a) * b -> fc2
  bool qkv_bias = true;
  bool class_token = true;
  int reg_tokens = 0;
  bool no_embed_class = false;
  double init_values = 0.0;      // > 0: LayerScale (ls1/ls2.gamma)
  double norm_eps = 1e-6;
  Pool pool = Pool::kCls;
  // Training options.
  int num_classes = 0;            // > 0: a linear head (timm's `head.*`) on the pooled embedding
  double drop_path_rate = 0.0;    // stochastic depth, rising linearly from 0 to this over the blocks
  bool mask_token = false;        // a learnable `mask_token` [1,D] for masked patches (iBOT, DINOv2)
  bool grad_checkpointing = false;  // recompute block activations in the backward pass

  int n_prefix() const { return (class_token ? 1 : 0) + reg_tokens; }
  int grid() const { return img_size / patch_size; }
  // Output embedding width after pooling.
  int out_dim() const { return pool == Pool::kClsMean ? 2 * embed_dim : embed_dim; }
};

// Resamples a pos_embed [1, n_prefix + g*g, D] to a gh x gw grid: bicubic, align_corners=false,
// antialias=true (timm's resample_abs_pos_embed). The n_prefix leading rows are kept as they are.
torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t n_prefix, int64_t gh, int64_t gw);

Pool parse_pool(const std::string& s);      // "cls" | "mean" | "cls+mean"; throws ConfigError
std::string pool_name(Pool p);

class VitImpl : public torch::nn::Cloneable<VitImpl> {
 public:
  // init=false skips timm's initialisation (slow for a billion parameters) when every parameter is
  // about to be loaded; the layers' own default initialisation still runs.
  explicit VitImpl(const VitConfig& cfg, bool init = true);
  // Re-creates the layers (called by clone(); weights are then copied in). Uninitialised values:
  // the constructor draws timm's initialisation once after it.
  void reset() override;
  const VitConfig& config() const { return cfg_; }

  // Patch embedding, optional mask token on masked patches (mask [B, h*w] bool, true = masked,
  // as DINOv2's iBOT masking), prefix tokens and position embedding: [B, n_prefix + h*w, D].
  torch::Tensor prepare_tokens(const torch::Tensor& x, const torch::Tensor& mask = {});
  // The blocks and the final norm on prepared tokens (any subset of them, e.g. MAE's kept tokens).
  torch::Tensor forward_tokens(torch::Tensor tokens);
  // forward_tokens(prepare_tokens(x)): all tokens after the final norm, [B, n_prefix + h*w, D].
  torch::Tensor forward_features(const torch::Tensor& x);
  // Pooled embedding from forward_features output: [B, out_dim].
  torch::Tensor pool(const torch::Tensor& tokens) const;
  // Pool, then the classification head when the model has one ([B, num_classes]); pre_logits
  // stops before the head.
  torch::Tensor forward_head(const torch::Tensor& tokens, bool pre_logits = false);
  // The embedding: pool(forward_features(x)), [B, out_dim] (no head). With class-token pooling and
  // the fast paths on, the last block runs for the class token only (BlockImpl::forward_first).
  torch::Tensor embed(const torch::Tensor& x);
  // forward_head(forward_features(x)): logits when num_classes > 0, else the embedding.
  torch::Tensor forward(const torch::Tensor& x);
  // Token sequences [B, T, D] after the chosen blocks (0-based; negative counts from the end),
  // optionally passed through the final norm. Stops after the last requested block.
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, std::vector<int> blocks,
                                                   bool apply_norm = false);

  // timm's forward_intermediates(output_fmt="NCHW"): the patch tokens after the chosen blocks as
  // feature maps [B, D, H / patch, W / patch] (class and register tokens dropped), optionally
  // through the final norm; for dense-prediction heads.
  std::vector<torch::Tensor> forward_feature_maps(const torch::Tensor& x, std::vector<int> blocks,
                                                  bool apply_norm = false);

  // pos_embed for a token grid of gh x gw (prefix part kept as is).
  torch::Tensor resampled_pos_embed(int64_t gh, int64_t gw) const;
  // Parameters timm exempts from weight decay by name (tokens, pos_embed); the training loop
  // also exempts every 1-D parameter (norms, biases, LayerScale).
  std::vector<std::string> no_weight_decay() const;
  // Switches the CPU inference fast paths (layers.h: attention, MLP, fused residuals) in every
  // block (on by default); off, every block runs the reference path.
  void set_fast_paths(bool on);
  BlockImpl& block(int i) { return *blocks->ptr<BlockImpl>(i); }

  torch::Tensor cls_token, reg_token, pos_embed, mask_token;  // undefined when absent
  PatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};  // when num_classes > 0

 private:
  void init_weights();
  torch::Tensor run_block(int i, const torch::Tensor& t);
  VitConfig cfg_;
};
TORCH_MODULE(Vit);

}  // namespace medfm::models

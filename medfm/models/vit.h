// Vision Transformer, one implementation for every variant (timm semantics).
// Parameter names equal timm's VisionTransformer state_dict keys:
//   cls_token [1,1,D], reg_token [1,R,D], pos_embed [1,P,D], patch_embed.proj.{weight,bias},
//   blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}.*, norm.*
// Token order: [cls?, reg x R, patches]. pos_embed covers prefix tokens + patches
// (no_embed_class=false) or patches only (no_embed_class=true, as timm's DINOv2-with-registers).
// Input: float [B,C,H,W], already normalised; H and W multiples of patch_size. A grid other than
// the native one interpolates pos_embed bicubically (align_corners=false, antialias=true), as
// timm's resample_abs_pos_embed does.
// Thread-safety: forward calls on one Vit may run concurrently in eval/no-grad mode.
#pragma once
#include <torch/nn/module.h>

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

class VitImpl : public torch::nn::Module {
 public:
  explicit VitImpl(const VitConfig& cfg);
  const VitConfig& config() const { return cfg_; }

  // All tokens after the final norm: [B, n_prefix + h*w, D].
  torch::Tensor forward_features(const torch::Tensor& x);
  // Pooled embedding from forward_features output: [B, out_dim].
  torch::Tensor pool(const torch::Tensor& tokens) const;
  // pool(forward_features(x)).
  torch::Tensor forward(const torch::Tensor& x);
  // Token sequences [B, T, D] after the chosen blocks (0-based; negative counts from the end),
  // optionally passed through the final norm. Stops after the last requested block.
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, std::vector<int> blocks,
                                                   bool apply_norm = false);

  // pos_embed for a token grid of gh x gw (prefix part kept as is).
  torch::Tensor resampled_pos_embed(int64_t gh, int64_t gw) const;

 private:
  torch::Tensor embed_tokens(const torch::Tensor& x);
  torch::Tensor block_forward(int i, torch::Tensor x) const;

  struct BlockParams {
    torch::Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, ls1, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w,
        fc2_b, ls2;
  };
  VitConfig cfg_;
  torch::Tensor cls_token_, reg_token_, pos_embed_, patch_w_, patch_b_, norm_w_, norm_b_;
  std::vector<BlockParams> blocks_;
};
TORCH_MODULE(Vit);

}  // namespace medfm::models

#include "medfm/models/vit.h"

#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::models {
namespace F = torch::nn::functional;

Pool parse_pool(const std::string& s) {
  if (s == "cls") return Pool::kCls;
  if (s == "mean") return Pool::kMean;
  if (s == "cls+mean") return Pool::kClsMean;
  throw ConfigError("vit: unknown pooling '" + s + "' (use cls, mean or cls+mean)");
}

std::string pool_name(Pool p) {
  switch (p) {
    case Pool::kCls: return "cls";
    case Pool::kMean: return "mean";
    case Pool::kClsMean: return "cls+mean";
  }
  return "?";
}

namespace {

torch::Tensor trunc_normal(std::vector<int64_t> shape, double std) {
  // Normal(0, std) truncated to +-2 std by resampling (LibTorch 1.13's C++ API has no trunc_normal_).
  auto t = torch::randn(shape) * std;
  for (auto out = t.abs() > 2.0 * std; out.any().item<bool>(); out = t.abs() > 2.0 * std)
    t = torch::where(out, torch::randn(shape) * std, t);
  return t;
}

}  // namespace

VitImpl::VitImpl(const VitConfig& cfg, bool init) : cfg_(cfg) {
  MEDFM_CHECK_T(ConfigError, cfg.embed_dim > 0 && cfg.num_heads > 0 && cfg.embed_dim % cfg.num_heads == 0,
                "vit: embed_dim ", cfg.embed_dim, " is not divisible by num_heads ", cfg.num_heads);
  MEDFM_CHECK_T(ConfigError, cfg.patch_size > 0 && cfg.img_size % cfg.patch_size == 0, "vit: img_size ",
                cfg.img_size, " is not a multiple of patch_size ", cfg.patch_size);
  MEDFM_CHECK_T(ConfigError, cfg.class_token || cfg.pool == Pool::kMean,
                "vit: pooling '", pool_name(cfg.pool), "' needs a class token");
  MEDFM_CHECK_T(ConfigError, cfg.depth > 0 && cfg.num_classes >= 0, "vit: depth ", cfg.depth, " and num_classes ",
                cfg.num_classes, " must be positive / non-negative");
  MEDFM_CHECK_T(ConfigError, cfg.drop_path_rate >= 0 && cfg.drop_path_rate < 1, "vit: drop_path_rate ",
                cfg.drop_path_rate, " is outside [0, 1)");
  reset();
  if (init) init_weights();
}

void VitImpl::reset() {
  const VitConfig& cfg = cfg_;
  const int D = cfg.embed_dim;
  if (cfg.class_token) cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  if (cfg.reg_tokens > 0) reg_token = register_parameter("reg_token", torch::zeros({1, cfg.reg_tokens, D}));
  const int n_pos = cfg.grid() * cfg.grid() + (cfg.no_embed_class ? 0 : cfg.n_prefix());
  pos_embed = register_parameter("pos_embed", torch::zeros({1, n_pos, D}));
  if (cfg.mask_token) mask_token = register_parameter("mask_token", torch::zeros({1, D}));
  patch_embed = register_module("patch_embed", PatchEmbed(cfg.in_chans, D, cfg.patch_size));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < cfg.depth; ++i) {
    BlockOptions o;
    o.dim = D, o.num_heads = cfg.num_heads, o.mlp_hidden = cfg.mlp_hidden;
    o.qkv_bias = cfg.qkv_bias, o.swiglu = cfg.swiglu, o.init_values = cfg.init_values, o.norm_eps = cfg.norm_eps;
    o.drop_path = cfg.depth > 1 ? cfg.drop_path_rate * i / (cfg.depth - 1) : 0.0;  // timm's linspace
    blocks->push_back(Block(o));
  }
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({D}).eps(cfg.norm_eps)));
  if (cfg.num_classes > 0) head = register_module("head", torch::nn::Linear(cfg.out_dim(), cfg.num_classes));
}

// timm's init: trunc_normal(0.02) for pos_embed, patch and linear weights, 1e-6 for tokens, zero
// biases, LayerNorm (1, 0), LayerScale init_values; the head zero-initialised as timm's head_init.
void VitImpl::init_weights() {
  torch::NoGradGuard no_grad;
  auto set = [](torch::Tensor& t, const torch::Tensor& v) { t.copy_(v); };
  const int D = cfg_.embed_dim;
  if (cls_token.defined()) set(cls_token, trunc_normal({1, 1, D}, 1e-6));
  if (reg_token.defined()) set(reg_token, trunc_normal({1, cfg_.reg_tokens, D}, 1e-6));
  set(pos_embed, trunc_normal(pos_embed.sizes().vec(), 0.02));
  set(patch_embed->proj->weight, trunc_normal(patch_embed->proj->weight.sizes().vec(), 0.02));
  patch_embed->proj->bias.zero_();
  if (mask_token.defined()) mask_token.zero_();
  for (int i = 0; i < cfg_.depth; ++i) {
    auto& b = block(i);
    for (auto* lin : {&b.attn->qkv, &b.attn->proj, &b.mlp->fc1, &b.mlp->fc2}) {
      set((*lin)->weight, trunc_normal((*lin)->weight.sizes().vec(), 0.02));
      if ((*lin)->bias.defined()) (*lin)->bias.zero_();
    }
    for (auto* n : {&b.norm1, &b.norm2}) {
      (*n)->weight.fill_(1.0);
      (*n)->bias.zero_();
    }
  }
  norm->weight.fill_(1.0);
  norm->bias.zero_();
  if (head) {
    head->weight.zero_();
    head->bias.zero_();
  }
}

std::vector<std::string> VitImpl::no_weight_decay() const {
  std::vector<std::string> out{"pos_embed"};
  if (cls_token.defined()) out.push_back("cls_token");
  if (reg_token.defined()) out.push_back("reg_token");
  if (mask_token.defined()) out.push_back("mask_token");
  return out;
}

void VitImpl::set_fast_paths(bool on) {
  for (int i = 0; i < cfg_.depth; ++i) {
    auto& b = block(i);
    b.fast_path = b.attn->fast_path = b.mlp->fast_path = on;
  }
}

torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t n_prefix, int64_t gh, int64_t gw) {
  const int64_t n_old = pos_embed.size(1) - n_prefix;
  const int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n_old))));
  MEDFM_CHECK(n_old > 0 && g * g == n_old, "vit: pos_embed with ", n_old, " grid positions is not a square grid");
  if (gh == g && gw == g) return pos_embed;
  const int64_t D = pos_embed.size(2);
  auto prefix = pos_embed.narrow(1, 0, n_prefix);
  auto grid = pos_embed.narrow(1, n_prefix, n_old).to(torch::kFloat);
  grid = grid.reshape({1, g, g, D}).permute({0, 3, 1, 2});  // [1,N,D] -> [1,D,g,g]
  grid = at::_upsample_bicubic2d_aa(grid, at::IntArrayRef({gh, gw}), /*align_corners=*/false,
                                      c10::optional<at::ArrayRef<double>>());
  grid = grid.permute({0, 2, 3, 1}).reshape({1, gh * gw, D}).to(pos_embed.scalar_type());  // -> [1,gh*gw,D]
  return torch::cat({prefix, grid}, 1);
}

torch::Tensor VitImpl::resampled_pos_embed(int64_t gh, int64_t gw) const {
  return resample_pos_embed(pos_embed, cfg_.no_embed_class ? 0 : cfg_.n_prefix(), gh, gw);
}

torch::Tensor VitImpl::prepare_tokens(const torch::Tensor& x, const torch::Tensor& mask) {
  MEDFM_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_chans, "vit: expected input [B,", cfg_.in_chans,
              ",H,W], got ", x.sizes());
  const int p = cfg_.patch_size;
  MEDFM_CHECK(x.size(2) % p == 0 && x.size(3) % p == 0, "vit: input ", x.size(2), "x", x.size(3),
              " is not a multiple of patch size ", p);
  const int64_t B = x.size(0), gh = x.size(2) / p, gw = x.size(3) / p;
  auto t = patch_embed->forward(x);  // [B,gh*gw,D]
  if (mask.defined()) {
    MEDFM_CHECK(mask_token.defined(), "vit: a patch mask needs a model built with mask_token");
    MEDFM_CHECK(mask.dim() == 2 && mask.size(0) == B && mask.size(1) == gh * gw, "vit: mask ", mask.sizes(),
                " does not match [", B, ",", gh * gw, "] patches");
    t = torch::where(mask.to(torch::kBool).unsqueeze(-1), mask_token.to(t.dtype()).unsqueeze(0), t);
  }
  auto pos = resampled_pos_embed(gh, gw);
  std::vector<torch::Tensor> prefix;
  if (cfg_.class_token) prefix.push_back(cls_token.expand({B, -1, -1}));
  if (cfg_.reg_tokens > 0) prefix.push_back(reg_token.expand({B, -1, -1}));
  if (cfg_.no_embed_class) {
    t = t + pos;
    if (prefix.empty()) return t;
    prefix.push_back(t);
    return torch::cat(prefix, 1);
  }
  prefix.push_back(t);
  return torch::cat(prefix, 1) + pos;
}

torch::Tensor VitImpl::run_block(int i, const torch::Tensor& t) {
  auto& b = block(i);
  return cfg_.grad_checkpointing && is_training() ? b.forward_checkpointed(t) : b.forward(t);
}

torch::Tensor VitImpl::forward_tokens(torch::Tensor t) {
  for (int i = 0; i < cfg_.depth; ++i) t = run_block(i, t);
  return norm->forward(t);
}

torch::Tensor VitImpl::forward_features(const torch::Tensor& x) { return forward_tokens(prepare_tokens(x)); }

torch::Tensor VitImpl::pool(const torch::Tensor& tokens) const {
  auto cls = [&] { return tokens.select(1, 0); };
  auto mean = [&] { return tokens.narrow(1, cfg_.n_prefix(), tokens.size(1) - cfg_.n_prefix()).mean(1); };
  switch (cfg_.pool) {
    case Pool::kCls: return cls();
    case Pool::kMean: return mean();
    case Pool::kClsMean: return torch::cat({cls(), mean()}, -1);
  }
  MEDFM_ASSERT(false, "unreachable pool");
}

torch::Tensor VitImpl::forward_head(const torch::Tensor& tokens, bool pre_logits) {
  auto pooled = pool(tokens);
  return pre_logits || !head ? pooled : linear(head, pooled);
}

torch::Tensor VitImpl::embed(const torch::Tensor& x) {
  // A class-token readout needs only the class token's row of the last block: its query, not the
  // others' (the fast paths' shortcut; with them off, every token runs through every block).
  if (cfg_.pool == Pool::kCls && cfg_.depth > 0 && block(cfg_.depth - 1).fast_path) {
    auto t = prepare_tokens(x);
    for (int i = 0; i + 1 < cfg_.depth; ++i) t = run_block(i, t);
    return norm->forward(block(cfg_.depth - 1).forward_first(t)).select(1, 0);
  }
  return pool(forward_features(x));
}

torch::Tensor VitImpl::forward(const torch::Tensor& x) { return head ? linear(head, embed(x)) : embed(x); }

std::vector<torch::Tensor> VitImpl::forward_intermediates(const torch::Tensor& x, std::vector<int> which,
                                                         bool apply_norm) {
  int last = -1;
  for (auto& b : which) {
    if (b < 0) b += cfg_.depth;
    MEDFM_CHECK(b >= 0 && b < cfg_.depth, "vit: block index out of range [0,", cfg_.depth, ")");
    last = std::max(last, b);
  }
  std::vector<torch::Tensor> by_block(cfg_.depth);
  auto t = prepare_tokens(x);
  for (int i = 0; i <= last; ++i) {
    t = run_block(i, t);
    by_block[i] = apply_norm ? norm->forward(t) : t;
  }
  std::vector<torch::Tensor> out;
  for (int b : which) out.push_back(by_block[b]);
  return out;
}

std::vector<torch::Tensor> VitImpl::forward_feature_maps(const torch::Tensor& x, std::vector<int> which,
                                                        bool apply_norm) {
  const int64_t B = x.size(0), gh = x.size(2) / cfg_.patch_size, gw = x.size(3) / cfg_.patch_size;
  auto seqs = forward_intermediates(x, std::move(which), apply_norm);
  for (auto& t : seqs)
    t = t.narrow(1, cfg_.n_prefix(), gh * gw).reshape({B, gh, gw, t.size(2)}).permute({0, 3, 1, 2}).contiguous();
  return seqs;
}

}  // namespace medfm::models

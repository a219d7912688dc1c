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

// A plain Module used only to give parameters their dotted timm names.
torch::nn::Module& child(torch::nn::Module& parent, const std::string& name) {
  return *parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::Tensor trunc_normal(std::vector<int64_t> shape, double std) {
  // Normal(0, std) truncated to +-2 std by resampling (LibTorch 1.13's C++ API has no trunc_normal_).
  auto t = torch::randn(shape) * std;
  for (auto out = t.abs() > 2.0 * std; out.any().item<bool>(); out = t.abs() > 2.0 * std)
    t = torch::where(out, torch::randn(shape) * std, t);
  return t;
}

struct LinearParams {
  torch::Tensor w, b;
};
LinearParams add_linear(torch::nn::Module& m, int in, int out, bool bias) {
  LinearParams p;
  p.w = m.register_parameter("weight", trunc_normal({out, in}, 0.02));
  if (bias) p.b = m.register_parameter("bias", torch::zeros({out}));
  return p;
}
LinearParams add_norm(torch::nn::Module& m, int dim) {
  return {m.register_parameter("weight", torch::ones({dim})), m.register_parameter("bias", torch::zeros({dim}))};
}

}  // namespace

VitImpl::VitImpl(const VitConfig& cfg) : cfg_(cfg) {
  MEDFM_CHECK_T(ConfigError, cfg.embed_dim > 0 && cfg.num_heads > 0 && cfg.embed_dim % cfg.num_heads == 0,
                "vit: embed_dim ", cfg.embed_dim, " is not divisible by num_heads ", cfg.num_heads);
  MEDFM_CHECK_T(ConfigError, cfg.patch_size > 0 && cfg.img_size % cfg.patch_size == 0, "vit: img_size ",
                cfg.img_size, " is not a multiple of patch_size ", cfg.patch_size);
  MEDFM_CHECK_T(ConfigError, cfg.class_token || cfg.pool == Pool::kMean,
                "vit: pooling '", pool_name(cfg.pool), "' needs a class token");
  MEDFM_CHECK_T(ConfigError, !cfg.swiglu || cfg.mlp_hidden % 2 == 0, "vit: SwiGLU needs an even mlp_hidden");
  const int D = cfg.embed_dim;
  if (cfg.class_token) cls_token_ = register_parameter("cls_token", trunc_normal({1, 1, D}, 1e-6));
  if (cfg.reg_tokens > 0) reg_token_ = register_parameter("reg_token", trunc_normal({1, cfg.reg_tokens, D}, 1e-6));
  const int n_pos = cfg.grid() * cfg.grid() + (cfg.no_embed_class ? 0 : cfg.n_prefix());
  pos_embed_ = register_parameter("pos_embed", trunc_normal({1, n_pos, D}, 0.02));
  {
    auto& proj = child(child(*this, "patch_embed"), "proj");
    patch_w_ = proj.register_parameter("weight", trunc_normal({D, cfg.in_chans, cfg.patch_size, cfg.patch_size}, 0.02));
    patch_b_ = proj.register_parameter("bias", torch::zeros({D}));
  }
  auto& blocks = child(*this, "blocks");
  const int fc2_in = cfg.swiglu ? cfg.mlp_hidden / 2 : cfg.mlp_hidden;
  for (int i = 0; i < cfg.depth; ++i) {
    auto& blk = child(blocks, std::to_string(i));
    BlockParams p;
    auto n1 = add_norm(child(blk, "norm1"), D);
    p.norm1_w = n1.w, p.norm1_b = n1.b;
    auto& attn = child(blk, "attn");
    auto qkv = add_linear(child(attn, "qkv"), D, 3 * D, cfg.qkv_bias);
    p.qkv_w = qkv.w, p.qkv_b = qkv.b;
    auto proj = add_linear(child(attn, "proj"), D, D, true);
    p.proj_w = proj.w, p.proj_b = proj.b;
    if (cfg.init_values > 0) p.ls1 = child(blk, "ls1").register_parameter("gamma", torch::full({D}, cfg.init_values));
    auto n2 = add_norm(child(blk, "norm2"), D);
    p.norm2_w = n2.w, p.norm2_b = n2.b;
    auto& mlp = child(blk, "mlp");
    auto fc1 = add_linear(child(mlp, "fc1"), D, cfg.mlp_hidden, true);
    auto fc2 = add_linear(child(mlp, "fc2"), fc2_in, D, true);
    p.fc1_w = fc1.w, p.fc1_b = fc1.b, p.fc2_w = fc2.w, p.fc2_b = fc2.b;
    if (cfg.init_values > 0) p.ls2 = child(blk, "ls2").register_parameter("gamma", torch::full({D}, cfg.init_values));
    blocks_.push_back(p);
  }
  auto n = add_norm(child(*this, "norm"), D);
  norm_w_ = n.w, norm_b_ = n.b;
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
  return resample_pos_embed(pos_embed_, cfg_.no_embed_class ? 0 : cfg_.n_prefix(), gh, gw);
}

torch::Tensor VitImpl::embed_tokens(const torch::Tensor& x) {
  MEDFM_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_chans, "vit: expected input [B,", cfg_.in_chans,
              ",H,W], got ", x.sizes());
  const int p = cfg_.patch_size;
  MEDFM_CHECK(x.size(2) % p == 0 && x.size(3) % p == 0, "vit: input ", x.size(2), "x", x.size(3),
              " is not a multiple of patch size ", p);
  const int64_t B = x.size(0), gh = x.size(2) / p, gw = x.size(3) / p;
  auto t = F::conv2d(x, patch_w_, F::Conv2dFuncOptions().bias(patch_b_).stride(p));
  t = t.flatten(2).transpose(1, 2);  // [B,D,gh,gw] -> [B,N,D]
  auto pos = resampled_pos_embed(gh, gw);
  std::vector<torch::Tensor> prefix;
  if (cfg_.class_token) prefix.push_back(cls_token_.expand({B, -1, -1}));
  if (cfg_.reg_tokens > 0) prefix.push_back(reg_token_.expand({B, -1, -1}));
  if (cfg_.no_embed_class) {
    t = t + pos;
    if (prefix.empty()) return t;
    prefix.push_back(t);
    return torch::cat(prefix, 1);
  }
  prefix.push_back(t);
  return torch::cat(prefix, 1) + pos;
}

// Softmax attention, one (image, head) pair per task: q k^T, softmax and (.) v for a pair stay in
// one core's cache, and each small GEMM runs single-threaded inside the parallel region. A batched
// bmm instead spends most of a ViT's time in per-matrix BLAS threading overhead (measured: 42% of
// an eager ViT-B forward for 4% of its FLOPs). Views into qkv, no q/k/v copies.
static torch::Tensor attention(const torch::Tensor& qkv, double scale) {
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
  auto out = at::empty({B, T, H, hd}, qkv.options());
  if (!qkv.is_cpu() || at::GradMode::is_enabled()) {
    auto q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2), v = qkv.select(2, 2).transpose(1, 2);
    auto a = at::softmax(at::matmul(q, k.transpose(-2, -1)) * scale, -1);  // [B,H,T,T]
    return at::matmul(a, v).transpose(1, 2).contiguous();                   // [B,H,T,hd] -> [B,T,H,hd]
  }
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H;
      auto pair = qkv.select(0, b).select(2, h);  // [T,3,hd]
      auto s = at::mm(pair.select(1, 0), pair.select(1, 1).t());
      s.mul_(scale);
      s = at::_softmax(s, -1, false);
      auto dst = out.select(0, b).select(1, h);  // [T,hd], row stride H*hd: BLAS writes it in place
      at::mm_out(dst, s, pair.select(1, 2));
    }
  });
  return out;
}

torch::Tensor VitImpl::block_forward(int i, torch::Tensor x) const {
  const auto& p = blocks_[i];
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), H = cfg_.num_heads, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  auto h = at::layer_norm(x, {D}, p.norm1_w, p.norm1_b, cfg_.norm_eps);
  auto qkv = at::linear(h, p.qkv_w, p.qkv_b).view({B, T, 3, H, hd});  // [B,T,3D] -> [B,T,3,H,hd]
  auto o = attention(qkv, scale);                                     // [B,T,H,hd]
  o = o.view({B, T, D});
  o = at::linear(o, p.proj_w, p.proj_b);
  x = p.ls1.defined() ? at::addcmul(x, o, p.ls1) : x + o;

  h = at::layer_norm(x, {D}, p.norm2_w, p.norm2_b, cfg_.norm_eps);
  h = at::linear(h, p.fc1_w, p.fc1_b);
  if (cfg_.swiglu) {
    auto ab = h.chunk(2, -1);
    h = at::silu(ab[0]) * ab[1];
  } else {
    h = at::gelu(h);
  }
  h = at::linear(h, p.fc2_w, p.fc2_b);
  return p.ls2.defined() ? at::addcmul(x, h, p.ls2) : x + h;
}

torch::Tensor VitImpl::forward_features(const torch::Tensor& x) {
  auto t = embed_tokens(x);
  for (int i = 0; i < cfg_.depth; ++i) t = block_forward(i, t);
  return at::layer_norm(t, {cfg_.embed_dim}, norm_w_, norm_b_, cfg_.norm_eps);
}

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

torch::Tensor VitImpl::forward(const torch::Tensor& x) { return pool(forward_features(x)); }

std::vector<torch::Tensor> VitImpl::forward_intermediates(const torch::Tensor& x, std::vector<int> blocks,
                                                         bool apply_norm) {
  int last = -1;
  for (auto& b : blocks) {
    if (b < 0) b += cfg_.depth;
    MEDFM_CHECK(b >= 0 && b < cfg_.depth, "vit: block index out of range [0,", cfg_.depth, ")");
    last = std::max(last, b);
  }
  std::vector<torch::Tensor> by_block(cfg_.depth);
  auto t = embed_tokens(x);
  for (int i = 0; i <= last; ++i) {
    t = block_forward(i, t);
    by_block[i] = apply_norm ? at::layer_norm(t, {cfg_.embed_dim}, norm_w_, norm_b_, cfg_.norm_eps) : t;
  }
  std::vector<torch::Tensor> out;
  for (int b : blocks) out.push_back(by_block[b]);
  return out;
}

}  // namespace medfm::models

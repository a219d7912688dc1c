#include "medfm/models/layers.h"
#include "medfm/models/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::models {

torch::Tensor attention_reference(const torch::Tensor& qkv, double scale) {
  auto q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2), v = qkv.select(2, 2).transpose(1, 2);
  // q scaled before the product, as timm does: [B,H,T,hd] multiplies, not [B,H,T,T] (bf16 ViT-S:
  // the scaling pass took 118 ms of a 1.1 s forward).
  auto a = at::softmax(at::matmul(q * scale, k.transpose(-2, -1)), -1);  // [B,H,T,T]
  return at::matmul(a, v).transpose(1, 2).contiguous();                   // [B,H,T,hd] -> [B,T,H,hd]
}

// One (image, head) pair per task: q k^T, softmax and (.) v for a pair stay in one core's cache,
// and each small GEMM runs single-threaded inside the parallel region. A batched bmm instead
// spends most of a ViT's time in per-matrix BLAS threading overhead (measured: 42% of an eager
// ViT-B forward for 4% of its FLOPs). Views into qkv, no q/k/v copies.
torch::Tensor attention_pairs(const torch::Tensor& qkv, double scale) {
  MEDFM_ASSERT(qkv.is_cpu() && !at::GradMode::is_enabled(), "attention_pairs is CPU inference only");
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
  auto out = at::empty({B, T, H, hd}, qkv.options());
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

// at::linear, not torch::nn::Linear::forward: the C++ frontend's functional linear is matmul and
// then an in-place bias add (a second pass over the output; with bf16 autocast a slow mixed-dtype
// add that cost 35% of a ViT-S forward), where at::linear fuses the bias into one GEMM for
// contiguous 3D input and is what autocast intercepts.
torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x) {
  auto y = at::linear(x, l->weight, l->bias);
  if (auto* lora = dynamic_cast<const LoraLinearImpl*>(l.get())) y = y + lora->delta(x);
  return y;
}

torch::Tensor drop_path(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  auto mask = at::empty(shape, x.options()).bernoulli_(keep);  // [B,1,...]
  return x * mask.div_(keep);
}

PatchEmbedImpl::PatchEmbedImpl(int in_chans, int embed_dim, int patch_size)
    : in_chans_(in_chans), embed_dim_(embed_dim), patch_size_(patch_size) {
  reset();
}

void PatchEmbedImpl::reset() {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans_, embed_dim_, patch_size_).stride(patch_size_)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj->forward(x).flatten(2).transpose(1, 2);  // [B,D,h,w] -> [B,h*w,D]
}

AttentionImpl::AttentionImpl(int dim, int num_heads, bool qkv_bias)
    : dim_(dim), num_heads_(num_heads), qkv_bias_(qkv_bias) {
  MEDFM_CHECK_T(ConfigError, dim > 0 && num_heads > 0 && dim % num_heads == 0, "vit: embed_dim ", dim,
                " is not divisible by num_heads ", num_heads);
  reset();
}

void AttentionImpl::reset() {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim_, 3 * dim_).bias(qkv_bias_)));
  proj = register_module("proj", torch::nn::Linear(dim_, dim_));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = num_heads_, hd = dim_ / num_heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto packed = linear(qkv, x).view({B, T, 3, H, hd});  // [B,T,3D] -> [B,T,3,H,hd]
  // The per-pair path is for float32; under bf16 autocast the batched products are faster (measured
  // in `medfm embed`, ViT-S, 2 cores: 1.1 s per batch of 32 against 1.9 s per pair).
  const bool pairs = fast_path && x.is_cpu() && !at::GradMode::is_enabled() && packed.scalar_type() == at::kFloat;
  auto o = pairs ? attention_pairs(packed, scale) : attention_reference(packed, scale);
  return linear(proj, o.view({B, T, dim_}));  // [B,T,H,hd] -> [B,T,D]
}

MlpImpl::MlpImpl(int dim, int hidden, bool swiglu) : dim_(dim), hidden_(hidden), swiglu_(swiglu) {
  MEDFM_CHECK_T(ConfigError, !swiglu || hidden % 2 == 0, "vit: SwiGLU needs an even mlp_hidden");
  reset();
}

void MlpImpl::reset() {
  fc1 = register_module("fc1", torch::nn::Linear(dim_, hidden_));
  fc2 = register_module("fc2", torch::nn::Linear(swiglu_ ? hidden_ / 2 : hidden_, dim_));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = linear(fc1, x);
  if (swiglu_) {
    auto ab = h.chunk(2, -1);
    h = at::silu(ab[0]) * ab[1];
  } else {
    h = at::gelu(h);
  }
  return linear(fc2, h);
}

LayerScaleImpl::LayerScaleImpl(int dim, double init_values) : dim_(dim), init_values_(init_values) { reset(); }

void LayerScaleImpl::reset() { gamma = register_parameter("gamma", torch::full({dim_}, init_values_)); }

BlockImpl::BlockImpl(const BlockOptions& o) : o_(o) { reset(); }

void BlockImpl::reset() {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o_.dim}).eps(o_.norm_eps)); };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", Attention(o_.dim, o_.num_heads, o_.qkv_bias));
  if (o_.init_values > 0) ls1 = register_module("ls1", LayerScale(o_.dim, o_.init_values));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp", Mlp(o_.dim, o_.mlp_hidden, o_.swiglu));
  if (o_.init_values > 0) ls2 = register_module("ls2", LayerScale(o_.dim, o_.init_values));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto a = attn->forward(norm1->forward(x));
  if (ls1) a = ls1->forward(a);
  auto y = x + drop_path(a, o_.drop_path, is_training());
  auto m = mlp->forward(norm2->forward(y));
  if (ls2) m = ls2->forward(m);
  return y + drop_path(m, o_.drop_path, is_training());
}

namespace {

// Reentrant activation checkpointing (as torch.utils.checkpoint with use_reentrant=True): the
// forward runs without autograd and keeps only its input and the CPU RNG state; backward replays
// the block with autograd on and differentiates it with respect to the input and the parameters.
struct CheckpointFn : torch::autograd::Function<CheckpointFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::TensorList params,
                               BlockImpl* block) {
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["rng"] = at::detail::getDefaultCPUGenerator().get_state();
    ctx->saved_data["n_params"] = static_cast<int64_t>(params.size());
    ctx->save_for_backward({x});
    return block->forward(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto* block = reinterpret_cast<BlockImpl*>(ctx->saved_data["block"].toInt());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto gen = at::detail::getDefaultCPUGenerator();
    auto now = gen.get_state();
    gen.set_state(ctx->saved_data["rng"].toTensor());
    torch::Tensor y;
    {
      torch::AutoGradMode on(true);
      y = block->forward(x);
    }
    gen.set_state(now);
    std::vector<torch::Tensor> inputs{x};
    for (auto& p : block->parameters()) inputs.push_back(p);
    auto grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    MEDFM_ASSERT(static_cast<int64_t>(grads.size()) == ctx->saved_data["n_params"].toInt() + 1);
    grads.push_back(torch::Tensor());  // the block pointer
    return grads;
  }
};

}  // namespace

torch::Tensor BlockImpl::forward_checkpointed(const torch::Tensor& x) {
  if (!at::GradMode::is_enabled()) return forward(x);
  auto params = parameters();
  return CheckpointFn::apply(x, torch::TensorList(params), this);
}

}  // namespace medfm::models

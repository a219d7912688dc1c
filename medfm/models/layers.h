// Transformer layers as torch::nn modules with timm's parameter names, so a model built from them
// loads timm state dicts by name, clones (an EMA teacher), trains and can be wrapped (LoRA):
//   PatchEmbed   proj.{weight,bias}                     [B,C,H,W] -> [B,h*w,D]
//   Attention    qkv.{weight,bias?}, proj.{weight,bias} [B,T,D] -> [B,T,D]
//   Mlp          fc1.*, fc2.* (GELU, or timm's packed SwiGLU: silu(first half) * second half)
//   LayerScale   gamma [D]
//   Block        norm1, attn, ls1?, norm2, mlp, ls2? (pre-norm residual, optional drop-path)
// Inference fast paths (eval mode, CPU, float32, no autograd, no autocast; each module's fast_path = false
// turns its own off): attention one (image, head) pair per task (attention_pairs) instead of
// batched matmuls (attention_reference); the MLP's fc1 bias and GELU in one vectorised pass after a
// bias-free GEMM; in a Block without LayerScale, each residual add fused into the GEMM before it
// (residual + bias first, then the product accumulated in place). Same values within float
// rounding (tests compare both paths).
// Training fast paths (training mode or autograd, CPU, float32, no autocast; the same fast_path
// switches): attention_train, and the MLP's hidden layer as one GEMM then bias + GELU in one pass,
// with its own backward (GELU's derivative and the bias gradient in one pass, then the GEMMs).
// Thread-safety: forward calls may run concurrently in eval mode without autograd.
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace medfm::models {

// Softmax attention from packed qkv [B,T,3,H,hd] -> [B,T,H,hd]. Reference: batched matmuls
// (differentiable, any device). Pairs: CPU only, inference only, same values.
torch::Tensor attention_reference(const torch::Tensor& qkv, double scale);
torch::Tensor attention_pairs(const torch::Tensor& qkv, double scale);
// Differentiable, for training: the per-pair kernels with a per-pair backward (CPU, float32,
// contiguous qkv, no autocast); anything else goes to attention_reference.
torch::Tensor attention_train(const torch::Tensor& qkv, double scale);

// y = x W^T + b through at::linear (one GEMM with the bias fused, autocast-aware), plus the
// low-rank update when the layer is a LoraLinear (lora.h).
torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x);

// timm's drop_path: zeroes whole samples of a residual branch with probability p, scales the
// kept ones by 1/(1-p). Identity when !training or p == 0. x [B,...].
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training);

class PatchEmbedImpl : public torch::nn::Cloneable<PatchEmbedImpl> {
 public:
  PatchEmbedImpl(int in_chans, int embed_dim, int patch_size);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,h*w,D], row-major grid
  torch::nn::Conv2d proj{nullptr};

 private:
  int in_chans_, embed_dim_, patch_size_;
};
TORCH_MODULE(PatchEmbed);

class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  AttentionImpl(int dim, int num_heads, bool qkv_bias);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // proj(context(x))
  torch::Tensor context(const torch::Tensor& x);  // attention's output before proj, [B,T,D]
  // forward(x) for the first token only, [B,1,D]: its query against every token's key and value
  // (the other tokens' queries are never formed).
  torch::Tensor forward_first(const torch::Tensor& x);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  // false forces attention_reference even where the fast path applies (tests, benchmarks).
  bool fast_path = true;

 private:
  int dim_, num_heads_;
  bool qkv_bias_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Cloneable<MlpImpl> {
 public:
  // hidden: fc1's output features (for SwiGLU the packed 2 x hidden).
  MlpImpl(int dim, int hidden, bool swiglu);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // fc2(hidden(x))
  torch::Tensor hidden(const torch::Tensor& x);   // the activation after fc1
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  bool fast_path = true;

 private:
  int dim_, hidden_;
  bool swiglu_;
};
TORCH_MODULE(Mlp);

class LayerScaleImpl : public torch::nn::Cloneable<LayerScaleImpl> {
 public:
  LayerScaleImpl(int dim, double init_values);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
  torch::Tensor gamma;

 private:
  int dim_;
  double init_values_;
};
TORCH_MODULE(LayerScale);

struct BlockOptions {
  int dim = 768, num_heads = 12, mlp_hidden = 3072;
  bool qkv_bias = true, swiglu = false;
  double init_values = 0.0;  // > 0: LayerScale
  double norm_eps = 1e-6;
  double drop_path = 0.0;    // this block's drop-path probability
};

class BlockImpl : public torch::nn::Cloneable<BlockImpl> {
 public:
  explicit BlockImpl(const BlockOptions& o);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  // forward() under gradient checkpointing: activations inside the block are recomputed in the
  // backward pass instead of being kept (the RNG state is replayed, so drop-path agrees).
  torch::Tensor forward_checkpointed(const torch::Tensor& x);
  // forward(x).narrow(1, 0, 1) without the rest: the first token's output, [B,1,D]. Keys and
  // values come from every token, but the other tokens' queries, projections and MLP are skipped:
  // all that a class-token readout needs from the last block (about 5/6 of its work saved).
  torch::Tensor forward_first(const torch::Tensor& x);
  const BlockOptions& options() const { return o_; }
  bool fast_path = true;  // the fused residuals (see the top of this file)

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  LayerScale ls1{nullptr}, ls2{nullptr};  // empty without LayerScale

 private:
  BlockOptions o_;
};
TORCH_MODULE(Block);

}  // namespace medfm::models

#include "medfm/models/layers.h"
#include "medfm/models/cpu_kernels.h"
#include "medfm/models/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::models {

torch::Tensor attention_reference(const torch::Tensor& qkv, double scale) {
  // unbind, as timm: its backward stacks the three gradients into one qkv gradient, where three
  // select()s would each zero-fill a qkv-sized gradient and add them.
  auto parts = qkv.permute({2, 0, 3, 1, 4}).unbind(0);  // [B,T,3,H,hd] -> 3 x [B,H,T,hd]
  const auto &q = parts[0], &k = parts[1], &v = parts[2];
  // q scaled before the product, as timm does: [B,H,T,hd] multiplies, not [B,H,T,T] (bf16 ViT-S:
  // the scaling pass took 118 ms of a 1.1 s forward).
  auto a = at::softmax(at::matmul(q * scale, k.transpose(-2, -1)), -1);  // [B,H,T,T]
  return at::matmul(a, v).transpose(1, 2).contiguous();                   // [B,H,T,hd] -> [B,T,H,hd]
}

#ifdef MEDFM_HAVE_FORTRAN_BLAS
extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);
#endif

namespace {

#ifdef MEDFM_HAVE_FORTRAN_BLAS
// Column-major C[m,n] = alpha op(A) op(B) + beta C, as BLAS defines it.
void sgemm(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
           float beta, float* c, int ldc) {
  sgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

// One (image, head) pair of a contiguous float qkv [B,T,3,H,hd] (row stride ld = 3 H hd), straight
// from its rows: S = scale q k^T into a T x T scratch, softmax in place, out = S v written into
// [B,T,H,hd] (row stride H hd). Row-major X is column-major X^T, so S^T = k q^T and out^T = v^T S^T.
void attention_pair_blas(const float* q, const float* k, const float* v, int T, int hd, int ld, float scale,
                         float* s, float* out, int ld_out) {
  sgemm('T', 'N', T, T, hd, scale, k, ld, q, ld, 0.0f, s, T);
  kernels::softmax_rows(s, T, T, T);
  sgemm('N', 'N', hd, T, T, 1.0f, v, ld, s, T, 0.0f, out, ld_out);
}

// Whether the BLAS pair kernels take this qkv: contiguous float32, row offsets within int.
bool blas_pairs_ok(const torch::Tensor& qkv) {
  return qkv.scalar_type() == at::kFloat && qkv.is_contiguous() && 3 * qkv.size(3) * qkv.size(4) * qkv.size(1) < (int64_t{1} << 31);
}

int to_int(int64_t v) { return static_cast<int>(v); }

// Every (image, head) pair of qkv [B,T,3,H,hd] (blas_pairs_ok) into out [B,T,H,hd], one pair per
// task. Pair i's softmax goes to probs + i T T when probs is given (training keeps it for the
// backward), else to a per-thread scratch.
void attention_pairs_blas(const torch::Tensor& qkv, double scale, float* probs, torch::Tensor& out) {
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
  const float* in = qkv.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const int64_t ld = 3 * H * hd, ld_out = H * hd;
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(probs ? 0 : static_cast<size_t>(T * T));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H;
      const float* q = in + b * T * ld + h * hd;
      attention_pair_blas(q, q + H * hd, q + 2 * H * hd, to_int(T), to_int(hd), to_int(ld), static_cast<float>(scale),
                          probs ? probs + i * T * T : scratch.data(), o + b * T * ld_out + h * hd, to_int(ld_out));
    }
  });
}

// Row-major C[m,n] = alpha op(A) op(B) + beta C (op = transpose where ta / tb): the column-major
// product C^T = op(B)^T op(A)^T, since a row-major matrix read column-major is its transpose.
void gemm_rows(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
               float beta, float* c, int ldc) {
  sgemm(tb ? 'T' : 'N', ta ? 'T' : 'N', n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}

// Attention for training on CPU in float32, per (image, head) pair as attention_pairs, with
// autograd. Forward keeps the softmax P [B,H,T,T] (the batched reference keeps it as well, with
// scaled q, k^T and v copies). Backward per pair, everything in qkv's own layout:
//   dV = P^T dO,  dP = dO V^T,  dS = scale P (dP - rowsum(dP P)),  dQ = dS K,  dK = dS^T Q,
// written straight into one [B,T,3,H,hd] gradient (the reference's backward makes the three
// head-major gradients and then permutes and stacks them back into that layout).
struct PairAttention : torch::autograd::Function<PairAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv, double scale) {
    const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
    auto p = at::empty({B, H, T, T}, qkv.options());
    auto out = at::empty({B, T, H, hd}, qkv.options());
    attention_pairs_blas(qkv, scale, p.data_ptr<float>(), out);
    ctx->save_for_backward({qkv, p});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& qkv = saved[0];
    const auto& p = saved[1];
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const auto go = grads[0].contiguous();  // [B,T,H,hd]
    const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
    auto g = at::empty_like(qkv);  // every element is written below
    const float* in = qkv.data_ptr<float>();
    const float* pp = p.data_ptr<float>();
    const float* gop = go.data_ptr<float>();
    float* gp = g.data_ptr<float>();
    const int ld = to_int(3 * H * hd), ld_out = to_int(H * hd), t = to_int(T), d = to_int(hd);
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> ds(static_cast<size_t>(T * T));
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / H, h = i % H, base = b * T * ld + h * hd;
        const float *q = in + base, *k = q + H * hd, *v = q + 2 * H * hd;
        const float* pr = pp + i * T * T;
        const float* dout = gop + b * T * ld_out + h * hd;
        float *dq = gp + base, *dk = dq + H * hd, *dv = dq + 2 * H * hd;
        gemm_rows(true, false, t, d, t, 1.0f, pr, t, dout, ld_out, 0.0f, dv, ld);      // dV = P^T dO
        gemm_rows(false, true, t, t, d, 1.0f, dout, ld_out, v, ld, 0.0f, ds.data(), t);  // dP = dO V^T
        for (int64_t r = 0; r < T; ++r) {  // softmax backward, times the scale of the scores
          const float* prow = pr + r * T;
          float* drow = ds.data() + r * T;
          float dot = 0;
          for (int64_t c = 0; c < T; ++c) dot += drow[c] * prow[c];
          for (int64_t c = 0; c < T; ++c) drow[c] = scale * prow[c] * (drow[c] - dot);
        }
        gemm_rows(false, false, t, d, t, 1.0f, ds.data(), t, k, ld, 0.0f, dq, ld);  // dQ = dS K
        gemm_rows(true, false, t, d, t, 1.0f, ds.data(), t, q, ld, 0.0f, dk, ld);   // dK = dS^T Q
      }
    });
    return {g, torch::Tensor()};
  }
};
#endif

}  // namespace

torch::Tensor attention_train(const torch::Tensor& qkv, double scale) {
#ifdef MEDFM_HAVE_FORTRAN_BLAS
  if (qkv.is_cpu() && !at::autocast::is_cpu_enabled() && blas_pairs_ok(qkv)) return PairAttention::apply(qkv, scale);
#endif
  return attention_reference(qkv, scale);
}

// One (image, head) pair per task: q k^T, softmax and (.) v for a pair stay in one core's cache,
// and each small GEMM runs single-threaded inside the parallel region (OpenBLAS does not start
// threads inside an OpenMP region). Batched matmuls instead spend most of attention's time in
// per-matrix BLAS threading and in copies between layouts. With the Fortran BLAS the pair reads
// q, k, v from qkv's rows and writes its output rows in place, with medfm's vectorised softmax
// between the products (ViT-B layer, batch 32, 2 threads: 45 ms, against 91 ms through at::mm per
// pair and 182 ms for the batched matmuls); otherwise at::mm on views.
torch::Tensor attention_pairs(const torch::Tensor& qkv, double scale) {
  MEDFM_ASSERT(qkv.is_cpu() && !at::GradMode::is_enabled(), "attention_pairs is CPU inference only");
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), hd = qkv.size(4);
  auto out = at::empty({B, T, H, hd}, qkv.options());
#ifdef MEDFM_HAVE_FORTRAN_BLAS
  if (blas_pairs_ok(qkv)) {
    attention_pairs_blas(qkv, scale, nullptr, out);
    return out;
  }
#endif
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

namespace {

bool cpu_float_inference(const torch::Tensor& x) {
  return x.is_cpu() && x.scalar_type() == at::kFloat && !at::GradMode::is_enabled() && !at::autocast::is_cpu_enabled();
}

// A float32 layer without a LoRA update: the fast path may run its GEMM itself.
bool plain(const torch::nn::Linear& l) {
  return dynamic_cast<const LoraLinearImpl*>(l.get()) == nullptr && l->weight.scalar_type() == at::kFloat;
}

bool plain_with_bias(const torch::nn::Linear& l) { return plain(l) && l->bias.defined(); }

// Reused per-thread output buffers for the fast path's largest intermediates (qkv, the MLP
// hidden): a fresh tensor of tens of MB comes from mmap, and its first write page-faults inside
// the GEMM (measured, 2 cores: 97-103 GFLOP/s into fresh memory against 135-138 reused, for a
// ViT-S fc1 / qkv product). A buffer is handed out again only once nothing else holds its
// storage, so a caller keeping a result never sees it overwritten.
enum Scratch { kQkvOut = 0, kHiddenOut = 1 };
torch::Tensor scratch(Scratch slot, at::IntArrayRef sizes) {
  thread_local torch::Tensor bufs[2];
  auto& b = bufs[slot];
  const int64_t n = c10::multiply_integers(sizes);
  // An inference tensor (made under InferenceMode) cannot be written outside it, nor the reverse
  // be cheap inside it: a buffer is reused only in the mode that made it.
  if (!b.defined() || b.numel() < n || b.storage().use_count() != 1 || b.is_inference() != c10::InferenceMode::is_enabled())
    b = at::empty({n}, at::kFloat);
  return b.narrow(0, 0, n).view(sizes);
}

// residual + (x W^T + b) as (residual + b) + x W^T: one pass writes residual + b into a new tensor
// (the caller's residual is kept), then the GEMM accumulates into it (beta = 1). at::linear followed
// by an add makes three passes: the bias broadcast into the output, the GEMM, the residual add.
torch::Tensor linear_residual(const torch::nn::Linear& l, const torch::Tensor& x, const torch::Tensor& residual) {
  auto y = at::add(residual, l->bias).contiguous();
  y.view({-1, y.size(-1)}).addmm_(x.reshape({-1, x.size(-1)}), l->weight.t());
  return y;
}

// The MLP's hidden layer gelu(x W^T + b) for training (CPU, float32), with its own backward: a
// bias-free GEMM, then one vectorised pass that adds the bias (keeping x W^T + b for the backward)
// and writes GELU of it; backward one pass for GELU's derivative that also sums the bias gradient,
// then the two GEMMs. Eager autograd makes two passes each way (the bias broadcast into addmm's
// output and GELU; gelu_backward and the bias gradient's sum). Measured on a ViT-Ti SimCLR shape
// (4736 x 768, 2 threads): forward 2.9 ms against 3.6 ms, backward 3.0 ms against 4.8 ms.
struct HiddenGelu : torch::autograd::Function<HiddenGelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
    auto pre = at::mm(x2, w.t());  // [N,hidden]
    auto out = at::empty_like(pre);
    auto bias = b.contiguous();
    float *pp = pre.data_ptr<float>(), *op = out.data_ptr<float>();
    const float* bp = bias.data_ptr<float>();
    const int64_t n = pre.size(1);
    at::parallel_for(0, pre.size(0), 64, [&](int64_t begin, int64_t end) {
      kernels::bias_gelu_train_rows(pp + begin * n, op + begin * n, end - begin, n, bp);
    });
    ctx->save_for_backward({x2, w, pre});
    auto sizes = x.sizes().vec();
    ctx->saved_data["x_sizes"] = sizes;
    sizes.back() = n;
    return out.view(sizes);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2 = saved[0], &w = saved[1], &pre = saved[2];
    const int64_t rows = pre.size(0), n = pre.size(1);
    const auto go = grads[0].reshape({rows, n}).contiguous();
    auto g = at::empty_like(pre);  // dL/d(x W^T + b)
    // One column-sum buffer per chunk of rows, added in chunk order: the same bias gradient for
    // the same thread count.
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows));
    auto partial = at::zeros({chunks, n}, pre.options());
    const float *gop = go.data_ptr<float>(), *pp = pre.data_ptr<float>();
    float *gp = g.data_ptr<float>(), *sp = partial.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
        kernels::gelu_backward_rows(gop + r0 * n, pp + r0 * n, gp + r0 * n, r1 - r0, n, sp + c * n);
      }
    });
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = at::mm(g, w).view(ctx->saved_data["x_sizes"].toIntVector());
    // x^T g, handed back transposed, as eager's addmm backward forms it: with the long token
    // dimension as the reduction, OpenBLAS ran this order 5-12% faster than g^T x on an AVX2 EPYC
    // (bench/RESULTS.md, session 15).
    if (ctx->needs_input_grad(1)) dw = at::mm(x2.t(), g).t();
    if (ctx->needs_input_grad(2)) db = partial.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

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

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) { return linear(proj, context(x)); }

torch::Tensor AttentionImpl::context(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = num_heads_, hd = dim_ / num_heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const bool inference = fast_path && !is_training() && cpu_float_inference(x);
  torch::Tensor packed;
  if (inference && plain(qkv)) {
    auto x2 = x.reshape({-1, dim_});
    auto out = scratch(kQkvOut, {x2.size(0), 3 * dim_});
    if (qkv->bias.defined()) at::addmm_out(out, qkv->bias, x2, qkv->weight.t());
    else at::mm_out(out, x2, qkv->weight.t());
    packed = out.view({B, T, 3, H, hd});
  } else {
    packed = linear(qkv, x).view({B, T, 3, H, hd});  // [B,T,3D] -> [B,T,3,H,hd]
  }
  // The per-pair path is for float32; under bf16 autocast the batched products are faster (measured
  // in `medfm embed`, ViT-S, 2 cores: 1.1 s per batch of 32 against 1.9 s per pair).
  // Eval mode only: a checkpointed block in training runs its forward without autograd and must
  // give what its recomputation with autograd gives.
  const bool pairs = inference && packed.scalar_type() == at::kFloat;
  // Training (or autograd) on CPU in float32: the per-pair kernels with their own backward. In
  // training mode also without autograd, so a checkpointed block's first forward gives exactly
  // what its recomputation gives.
  const bool train_pairs = fast_path && !pairs && (is_training() || at::GradMode::is_enabled());
  auto o = pairs         ? attention_pairs(packed, scale)
           : train_pairs ? attention_train(packed, scale)
                         : attention_reference(packed, scale);
  return o.view({B, T, dim_});  // [B,T,H,hd] -> [B,T,D]
}

torch::Tensor AttentionImpl::forward_first(const torch::Tensor& x) {
  if (!plain(qkv)) return forward(x).narrow(1, 0, 1);  // LoRA: its delta is on the packed qkv
  const int64_t B = x.size(0), T = x.size(1), H = num_heads_, hd = dim_ / num_heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const auto &w = qkv->weight, &b = qkv->bias;
  auto rows = [&](const torch::Tensor& in, int64_t from, int64_t n) {
    return at::linear(in, w.narrow(0, from, n), b.defined() ? b.narrow(0, from, n) : torch::Tensor());
  };
  auto q = rows(x.narrow(1, 0, 1), 0, dim_).view({B, H, 1, hd});                             // [B,H,1,hd]
  auto kv = rows(x, dim_, 2 * dim_).view({B, T, 2, H, hd}).permute({2, 0, 3, 1, 4}).unbind(0);  // 2 x [B,H,T,hd]
  auto a = at::softmax(at::matmul(q * scale, kv[0].transpose(-2, -1)), -1);                   // [B,H,1,T]
  return linear(proj, at::matmul(a, kv[1]).view({B, 1, dim_}));                               // [B,H,1,hd] -> [B,1,D]
}

MlpImpl::MlpImpl(int dim, int hidden, bool swiglu) : dim_(dim), hidden_(hidden), swiglu_(swiglu) {
  MEDFM_CHECK_T(ConfigError, !swiglu || hidden % 2 == 0, "vit: SwiGLU needs an even mlp_hidden");
  reset();
}

void MlpImpl::reset() {
  fc1 = register_module("fc1", torch::nn::Linear(dim_, hidden_));
  fc2 = register_module("fc2", torch::nn::Linear(swiglu_ ? hidden_ / 2 : hidden_, dim_));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return linear(fc2, hidden(x)); }

torch::Tensor MlpImpl::hidden(const torch::Tensor& x) {
  if (fast_path && !is_training() && !swiglu_ && cpu_float_inference(x) && plain_with_bias(fc1) && fc1->weight.is_contiguous()) {
    // A bias-free GEMM, then bias + GELU in one vectorised pass (at::linear broadcasts the bias into
    // the output before the GEMM, and at::gelu is another pass over it).
    auto x2 = x.reshape({-1, dim_});
    auto h = scratch(kHiddenOut, {x2.size(0), fc1->weight.size(0)});
    at::mm_out(h, x2, fc1->weight.t());  // [N,hidden], contiguous
    auto bias = fc1->bias.contiguous();
    float* hp = h.data_ptr<float>();
    const float* bp = bias.data_ptr<float>();
    const int64_t n = h.size(1);
    at::parallel_for(0, h.size(0), 64, [&](int64_t begin, int64_t end) {
      kernels::bias_gelu_rows(hp + begin * n, end - begin, n, bp);
    });
    auto sizes = x.sizes().vec();
    sizes.back() = n;
    return h.view(sizes);
  }
  // Training (or autograd) on CPU in float32: HiddenGelu. In training mode also without autograd,
  // so a checkpointed block's first forward gives exactly what its recomputation gives.
  if (fast_path && !swiglu_ && (is_training() || at::GradMode::is_enabled()) && x.is_cpu() &&
      x.scalar_type() == at::kFloat && !at::autocast::is_cpu_enabled() && plain_with_bias(fc1)) {
    return HiddenGelu::apply(x, fc1->weight, fc1->bias);
  }
  auto h = linear(fc1, x);
  if (swiglu_) {
    auto ab = h.chunk(2, -1);
    return at::silu(ab[0]) * ab[1];
  }
  return at::gelu(h);
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
  if (fast_path && !is_training() && !ls1 && !ls2 && cpu_float_inference(x) && plain_with_bias(attn->proj) &&
      plain_with_bias(mlp->fc2)) {
    auto y = linear_residual(attn->proj, attn->context(norm1->forward(x)), x);
    return linear_residual(mlp->fc2, mlp->hidden(norm2->forward(y)), y);
  }
  auto a = attn->forward(norm1->forward(x));
  if (ls1) a = ls1->forward(a);
  auto y = x + drop_path(a, o_.drop_path, is_training());
  auto m = mlp->forward(norm2->forward(y));
  if (ls2) m = ls2->forward(m);
  return y + drop_path(m, o_.drop_path, is_training());
}

torch::Tensor BlockImpl::forward_first(const torch::Tensor& x) {
  auto a = attn->forward_first(norm1->forward(x));
  if (ls1) a = ls1->forward(a);
  auto y = x.narrow(1, 0, 1) + drop_path(a, o_.drop_path, is_training());
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

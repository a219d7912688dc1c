// Training mode against the Python reference (scripts/golden/gen_train_golden.py): loss and every
// gradient of a tiny ViT with a head, SGD steps with momentum and weight decay, the DINOv2 mask
// token; and the properties training relies on: the inference fast path equals the differentiable
// path, a clone is independent, checkpointing gives the gradients of the plain backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "medfm/models/checkpoint.h"
#include "medfm/models/vit.h"
#include "tests/golden/golden_case.h"

namespace medfm::models {
namespace {

const std::string kDir = MEDFM_GOLDEN_DIR;

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a - b).abs().max().item<double>();
}

Vit load(const golden::Case& c) {
  Vit vit(c.cfg);
  auto report = load_vit_weights(vit, c.params, /*allow_partial=*/false, WeightsLayout::kTimm);
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_TRUE(report.ignored.empty()) << "head.* must load into a model with a head";
  return vit;
}

TEST(VitTrainGolden, LossGradientsAndSgdStepsMatchReference) {
  auto c = golden::load_case(kDir + "/train_sgd.safetensors");
  ASSERT_EQ(c.cfg.num_classes, 3);
  Vit vit = load(c);
  vit->train();
  auto x = c.file.get("input");
  auto y = c.file.get("labels").to(torch::kLong);
  auto expected = c.file.get("expected.losses");
  torch::optim::SGD opt(vit->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4));
  for (int step = 0; step < 4; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(vit->forward(x), y);
    EXPECT_NEAR(loss.item<double>(), expected[step].item<double>(), 1e-5) << "step " << step;
    if (step == 3) break;
    loss.backward();
    if (step == 0) {
      int checked = 0;
      for (const auto& kv : vit->named_parameters()) {
        auto g = c.file.get("g." + kv.key());
        ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
        const double scale = std::max(1.0, g.abs().max().item<double>());
        EXPECT_LT(max_abs(kv.value().grad(), g) / scale, 1e-4) << kv.key();
        ++checked;
      }
      EXPECT_EQ(checked, static_cast<int>(c.params.size()));
    }
    opt.step();
  }
}

TEST(VitTrainGolden, MaskTokenReplacesMaskedPatches) {
  auto c = golden::load_case(kDir + "/mask_token.safetensors");
  ASSERT_TRUE(c.cfg.mask_token);
  Vit vit = load(c);
  vit->eval();
  torch::NoGradGuard ng;
  auto x = c.file.get("input");
  auto mask = c.file.get("mask").to(torch::kBool);
  auto tokens = vit->forward_tokens(vit->prepare_tokens(x, mask));
  EXPECT_LT(max_abs(tokens, c.file.get("expected.tokens")), 1e-4);
  // No mask: the mask token plays no part.
  auto plain = vit->forward_features(x);
  EXPECT_GT(max_abs(plain, tokens), 1e-3);
  EXPECT_LT(max_abs(plain, vit->forward_tokens(vit->prepare_tokens(x, torch::zeros_like(mask)))), 1e-6);
}

TEST(VitTrainGolden, FastPathEqualsDifferentiablePath) {
  auto c = golden::load_case(kDir + "/train_sgd.safetensors");
  Vit vit = load(c);
  vit->eval();
  auto x = c.file.get("input");
  torch::Tensor fast, plain, with_grad;
  {
    torch::NoGradGuard ng;
    fast = vit->forward_features(x);
    vit->set_fast_paths(false);
    plain = vit->forward_features(x);
    vit->set_fast_paths(true);
  }
  with_grad = vit->forward_features(x);  // autograd on: the reference path
  EXPECT_TRUE(with_grad.requires_grad());
  EXPECT_LT(max_abs(fast, plain), 1e-5);
  EXPECT_LT(max_abs(fast, with_grad.detach()), 1e-5);
  // And the per-pair kernel alone on a packed qkv with uneven sizes.
  torch::NoGradGuard ng;
  auto qkv = torch::randn({3, 7, 3, 2, 5});
  EXPECT_LT(max_abs(attention_pairs(qkv, 0.3), attention_reference(qkv, 0.3)), 1e-5);
  auto strided = torch::randn({3, 7, 3, 2, 10}).narrow(4, 0, 5);  // not contiguous: the at::mm fallback
  EXPECT_LT(max_abs(attention_pairs(strided, 0.3), attention_reference(strided, 0.3)), 1e-5);
}

// The training attention (per-pair kernels with their own backward) against the batched reference:
// values and the gradient of qkv under a random upstream gradient, sizes that fill no vector.
TEST(VitTrainGolden, TrainingAttentionMatchesReferenceGradients) {
  torch::manual_seed(3);
  for (auto sizes : {std::vector<int64_t>{3, 7, 3, 2, 5}, std::vector<int64_t>{2, 17, 3, 3, 16}}) {
    auto base = torch::randn(sizes);
    auto a = base.clone().requires_grad_(true), b = base.clone().requires_grad_(true);
    auto fa = attention_train(a, 0.3), fb = attention_reference(b, 0.3);
    ASSERT_EQ(fa.sizes(), fb.sizes());
    EXPECT_LT(max_abs(fa.detach(), fb.detach()), 1e-5);
    auto up = torch::randn(fa.sizes());
    (fa * up).sum().backward();
    (fb * up).sum().backward();
    EXPECT_LT(max_abs(a.grad(), b.grad()), 1e-5);
    EXPECT_GT(a.grad().abs().max().item<double>(), 1e-2);  // a gradient of nothing would also "match"
  }
  // A ViT in training mode: the same loss and parameter gradients with the fast path on and off.
  auto c = golden::load_case(kDir + "/train_sgd.safetensors");
  Vit vit = load(c);
  vit->train();
  auto x = c.file.get("input");
  std::vector<torch::Tensor> losses;
  std::vector<std::map<std::string, torch::Tensor>> grads(2);
  for (bool on : {true, false}) {
    vit->set_fast_paths(on);
    vit->zero_grad();
    auto loss = vit->forward_features(x).pow(2).mean();
    loss.backward();
    losses.push_back(loss.detach());
    for (const auto& kv : vit->named_parameters())
      if (kv.value().grad().defined()) grads[on ? 0 : 1][kv.key()] = kv.value().grad().clone();
  }
  EXPECT_LT(max_abs(losses[0], losses[1]), 1e-5);
  EXPECT_EQ(grads[0].size(), grads[1].size());
  EXPECT_GT(grads[1].size(), 10u);
  for (const auto& [name, g] : grads[1])  // every parameter: attention and the MLP's hidden layer
    EXPECT_LT(max_abs(grads[0][name], g), 1e-5 * (1 + g.abs().max().item<double>())) << name;
}

// The training MLP hidden layer (one GEMM, then bias + GELU in one pass; its own backward with the
// bias gradient summed in the same pass) against at::linear + at::gelu: values and gradients of the
// input, fc1's weight and bias, at sizes that fill no vector, with and without autograd.
TEST(VitTrainGolden, TrainingMlpMatchesReferenceGradients) {
  torch::manual_seed(4);
  Mlp mlp(13, 37, false);
  mlp->train();
  auto base = torch::randn({3, 11, 13});
  std::vector<torch::Tensor> outs, gx, gw, gb;
  for (bool on : {true, false}) {
    mlp->fast_path = on;
    mlp->zero_grad();
    auto x = base.clone().requires_grad_(true);
    auto h = mlp->hidden(x);
    ASSERT_EQ(h.sizes(), (std::vector<int64_t>{3, 11, 37}));
    {
      torch::NoGradGuard ng;  // a checkpointed block's first forward
      EXPECT_LT(max_abs(mlp->hidden(base), h.detach()), 1e-7);
    }
    torch::manual_seed(5);  // the same upstream gradient both times
    auto up = torch::randn(h.sizes());
    (h * up).sum().backward();
    outs.push_back(h.detach());
    gx.push_back(x.grad());
    gw.push_back(mlp->fc1->weight.grad().clone());
    gb.push_back(mlp->fc1->bias.grad().clone());
  }
  EXPECT_LT(max_abs(outs[0], outs[1]), 1e-5);
  EXPECT_LT(max_abs(gx[0], gx[1]), 1e-5);
  EXPECT_LT(max_abs(gw[0], gw[1]), 1e-5);
  EXPECT_LT(max_abs(gb[0], gb[1]), 1e-5);
  EXPECT_GT(gb[1].abs().max().item<double>(), 1e-1);  // a gradient of nothing would also "match"
}

// A class-token embedding runs the last block for the class token only: the same embedding and
// the same gradient for every parameter as the full last block, in training (with stochastic depth,
// whose per-sample draws must line up), under autograd and in inference; with registers, LayerScale
// and no qkv bias too.
TEST(VitTrainGolden, ClassTokenReadoutEqualsTheFullLastBlock) {
  VitConfig cfg;
  cfg.img_size = 32, cfg.patch_size = 8, cfg.embed_dim = 24, cfg.depth = 3, cfg.num_heads = 3, cfg.mlp_hidden = 40;
  cfg.drop_path_rate = 0.5;
  for (int variant = 0; variant < 2; ++variant) {
    if (variant == 1) cfg.reg_tokens = 2, cfg.init_values = 0.3, cfg.qkv_bias = false;
    torch::manual_seed(6);
    Vit vit(cfg);
    auto x = torch::randn({5, 3, 32, 32});
    std::vector<torch::Tensor> out;
    std::vector<std::map<std::string, torch::Tensor>> grads(2);
    vit->train();
    for (bool on : {true, false}) {
      vit->set_fast_paths(on);
      vit->zero_grad();
      torch::manual_seed(7);  // the same drop-path draws
      auto e = vit->embed(x);
      ASSERT_EQ(e.sizes(), (std::vector<int64_t>{5, 24}));
      torch::manual_seed(8);
      (e * torch::randn(e.sizes())).sum().backward();
      out.push_back(e.detach());
      for (const auto& kv : vit->named_parameters())
        if (kv.value().grad().defined()) grads[on ? 0 : 1][kv.key()] = kv.value().grad().clone();
    }
    EXPECT_LT(max_abs(out[0], out[1]), 1e-5) << "variant " << variant;
    EXPECT_EQ(grads[0].size(), grads[1].size());
    const std::string q = "blocks.2.attn.qkv.weight";
    ASSERT_TRUE(grads[1].count(q));
    EXPECT_GT(grads[1][q].abs().max().item<double>(), 1e-3);  // the last block's keys and values learn
    for (const auto& [name, g] : grads[1])
      EXPECT_LT(max_abs(grads[0][name], g), 1e-5 * (1 + g.abs().max().item<double>())) << name << ", variant " << variant;
    // Inference: the class token of the full features.
    vit->eval();
    vit->set_fast_paths(true);
    torch::NoGradGuard ng;
    auto full = vit->forward_features(x).select(1, 0);
    EXPECT_LT(max_abs(vit->embed(x), full), 1e-5) << "variant " << variant;
  }
}

TEST(VitTrainGolden, CloneIsIndependent) {
  auto c = golden::load_case(kDir + "/train_sgd.safetensors");
  Vit vit = load(c);
  vit->eval();
  auto copy = std::dynamic_pointer_cast<VitImpl>(vit->clone());
  ASSERT_TRUE(copy);
  torch::NoGradGuard ng;
  auto x = c.file.get("input");
  auto before = vit->forward(x);
  EXPECT_LT(max_abs(copy->forward(x), before), 1e-6);
  auto mine = vit->named_parameters(), theirs = copy->named_parameters();
  ASSERT_EQ(mine.size(), theirs.size());
  for (const auto& kv : mine) EXPECT_NE(kv.value().data_ptr(), theirs[kv.key()].data_ptr()) << kv.key();
  for (auto& p : copy->parameters()) p.add_(0.5);
  EXPECT_LT(max_abs(vit->forward(x), before), 1e-7) << "changing the clone changed the original";
  EXPECT_GT(max_abs(copy->forward(x), before), 1e-3);
  EXPECT_TRUE(copy->block(1).attn->fast_path && copy->block(1).mlp->fast_path && copy->block(1).fast_path);
}

TEST(VitTrainGolden, CheckpointingGivesTheSameGradients) {
  auto c = golden::load_case(kDir + "/train_sgd.safetensors");
  auto cfg = c.cfg;
  cfg.drop_path_rate = 0.3;  // random masks must be replayed in the recomputation
  Vit plain(cfg);
  cfg.grad_checkpointing = true;
  Vit ckpt(cfg);
  load_vit_weights(plain, c.params, false, WeightsLayout::kTimm);
  load_vit_weights(ckpt, c.params, false, WeightsLayout::kTimm);
  plain->train();
  ckpt->train();
  auto x = c.file.get("input");
  auto y = c.file.get("labels").to(torch::kLong);
  torch::manual_seed(11);
  auto l1 = torch::nn::functional::cross_entropy(plain->forward(x), y);
  l1.backward();
  torch::manual_seed(11);
  auto l2 = torch::nn::functional::cross_entropy(ckpt->forward(x), y);
  l2.backward();
  EXPECT_NEAR(l1.item<double>(), l2.item<double>(), 1e-7);
  auto a = plain->named_parameters(), b = ckpt->named_parameters();
  for (const auto& kv : a) {
    ASSERT_TRUE(b[kv.key()].grad().defined()) << kv.key();
    EXPECT_LT(max_abs(kv.value().grad(), b[kv.key()].grad()), 1e-6) << kv.key();
  }
}

}  // namespace
}  // namespace medfm::models

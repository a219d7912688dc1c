// The registry (every entry builds and runs), architecture overrides, drop-path, weight-decay names.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>

#include "medfm/core/error.h"
#include "medfm/models/backbone.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/layers.h"
#include "medfm/core/safetensors.h"
#include "medfm/models/registry.h"
#include "medfm/models/vit.h"

namespace medfm::models {
namespace {

// Every row of the table: the full-width architecture with one block (the blocks are identical,
// so depth does not change what is exercised), one forward pass at two patches a side.
TEST(Registry, EveryEntryBuildsAndRuns) {
  ASSERT_GE(model_registry().size(), 20u);
  torch::NoGradGuard ng;
  for (const auto& e : model_registry()) {
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.family, "vit");
    auto m = create_model(e.name, {{"depth", "1"}});
    auto vit = std::dynamic_pointer_cast<VitImpl>(m);
    ASSERT_TRUE(vit);
    EXPECT_EQ(vit->config().embed_dim, e.vit.embed_dim);
    EXPECT_EQ(vit->config().depth, 1);
    vit->eval();
    const int64_t s = 2 * e.vit.patch_size;
    auto out = vit->forward(torch::randn({1, 3, s, s}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, e.vit.out_dim()}));
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  }
}

TEST(Registry, OverridesAreTypedAndNamed) {
  auto vit = create_vit("vit_tiny_patch16_224",
                        {{"depth", "2"}, {"num_classes", "5"}, {"drop_path_rate", "0.1"}, {"img_size", "64"}});
  EXPECT_EQ(vit->config().depth, 2);
  EXPECT_EQ(vit->config().img_size, 64);
  ASSERT_TRUE(vit->head);
  EXPECT_EQ(vit->head->weight.sizes(), (std::vector<int64_t>{5, 192}));
  EXPECT_EQ(vit->pos_embed.size(1), 1 + 16);
  torch::NoGradGuard ng;
  vit->eval();
  auto x = torch::randn({2, 3, 64, 64});
  EXPECT_EQ(vit->forward(x).sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(vit->embed(x).sizes(), (std::vector<int64_t>{2, 192}));
  EXPECT_EQ(vit->forward_head(vit->forward_features(x), /*pre_logits=*/true).sizes(), (std::vector<int64_t>{2, 192}));
  EXPECT_THROW(create_vit("vit_tiny_patch16_224", {{"dept", "2"}}), ConfigError);
  EXPECT_THROW(create_vit("vit_tiny_patch16_224", {{"depth", "two"}}), ConfigError);
  EXPECT_THROW(create_vit("vit_tiny_patch16_224", {{"mask_token", "maybe"}}), ConfigError);
  EXPECT_THROW(create_model("vit_nope"), ConfigError);
  EXPECT_EQ(parse_overrides({"a=1", "b=x=y"}).at("b"), "x=y");
  EXPECT_THROW(parse_overrides({"novalue"}), ConfigError);
}

TEST(Vit, NoWeightDecayNamesAreParameters) {
  auto vit = create_vit("dinov2_vits14_reg", {{"depth", "1"}, {"mask_token", "true"}});
  auto names = vit->no_weight_decay();
  EXPECT_EQ(names, (std::vector<std::string>{"pos_embed", "cls_token", "reg_token", "mask_token"}));
  auto params = vit->named_parameters();
  for (const auto& n : names) EXPECT_TRUE(params.contains(n)) << n;
  // timm's names on the layer modules.
  for (const char* k : {"patch_embed.proj.weight", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias",
                        "blocks.0.attn.proj.weight", "blocks.0.ls1.gamma", "blocks.0.mlp.fc2.bias", "norm.bias"})
    EXPECT_TRUE(params.contains(k)) << k;
}

TEST(Vit, DropPathDropsWholeSamplesOnlyInTraining) {
  torch::manual_seed(3);
  auto x = torch::ones({4000, 2, 3});
  EXPECT_TRUE(drop_path(x, 0.3, false).equal(x));
  EXPECT_TRUE(drop_path(x, 0.0, true).equal(x));
  auto y = drop_path(x, 0.3, true);
  auto per_sample = y.flatten(1);
  auto zero = (per_sample == 0).all(1), kept = (per_sample - 1.0 / 0.7).abs().lt(1e-6).all(1);
  EXPECT_TRUE((zero | kept).all().item<bool>()) << "each sample is dropped or scaled whole";
  EXPECT_NEAR(zero.to(torch::kFloat).mean().item<double>(), 0.3, 0.03);

  // A model with drop-path: eval gives the deterministic output, training differs per call.
  auto vit = create_vit("vit_tiny_patch16_224", {{"depth", "2"}, {"drop_path_rate", "0.9"}, {"img_size", "32"}});
  auto in = torch::randn({8, 3, 32, 32});
  torch::NoGradGuard ng;
  vit->eval();
  auto a = vit->forward(in), b = vit->forward(in);
  EXPECT_TRUE(a.equal(b));
  vit->train();
  auto c = vit->forward(in);
  EXPECT_GT((c - a).abs().max().item<double>(), 1e-4);
}

TEST(Backbone, LoadBackboneResolvesPreprocessingAndProvenance) {
  ModelSpec spec;
  spec.name = "rad_dino";
  spec.overrides = {"depth=1"};
  spec.crop = 224;
  spec.resize = 224;
  auto lb = load_backbone(spec);
  EXPECT_EQ(lb.preprocess.input_size, 224);
  EXPECT_NEAR(lb.preprocess.mean[0], 0.5307, 1e-9);
  EXPECT_EQ(lb.provenance.at("model"), "rad_dino");
  EXPECT_NE(lb.provenance.at("weights").find("random-init seed 0"), std::string::npos);
  EXPECT_FALSE(lb.warning.empty());
  ASSERT_NE(vit_of(*lb.backbone), nullptr);
  EXPECT_EQ((*vit_of(*lb.backbone))->config().depth, 1);
  spec.std = {0.2, 0.0, 0.2};
  EXPECT_THROW(load_backbone(spec), ConfigError);
  spec.std = {0.2, 0.2};
  EXPECT_THROW(load_backbone(spec), ConfigError);
}

TEST(Vit, SaveLoadForwardIsBitIdenticalWithHeadAndMaskToken) {
  const ModelOverrides o{{"depth", "2"}, {"num_classes", "4"}, {"mask_token", "true"}, {"img_size", "28"}};
  torch::manual_seed(1);
  auto a = create_vit("dinov2_vits14_reg", o);
  {
    torch::NoGradGuard ng;
    for (auto& p : a->parameters()) p.add_(torch::randn_like(p) * 0.1);  // the head is zero at init
  }
  char tmpl[] = "/tmp/medfm_vit_save.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string path = std::string(tmpl) + ".safetensors";
  save_vit_weights(a, path, {{"arch", "dinov2_vits14_reg"}});
  auto st = SafeTensors::open(path);
  EXPECT_EQ(st.metadata().at("arch"), "dinov2_vits14_reg");
  torch::manual_seed(2);
  auto b = create_vit("dinov2_vits14_reg", o);
  auto report = load_vit_weights(b, path);
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_TRUE(report.ignored.empty()) << "head.* and mask_token load into a model that has them";
  a->eval();
  b->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 3, 28, 28});
  auto mask = torch::rand({2, 4}) < 0.5;
  EXPECT_TRUE(a->forward(x).equal(b->forward(x)));
  EXPECT_TRUE(a->forward_tokens(a->prepare_tokens(x, mask)).equal(b->forward_tokens(b->prepare_tokens(x, mask))));
  // A model without a head takes the backbone and reports the head as ignored.
  auto c = create_vit("dinov2_vits14_reg", {{"depth", "2"}, {"img_size", "28"}});
  auto r2 = load_vit_weights(c, path);
  EXPECT_EQ(r2.ignored, (std::vector<std::string>{"head.bias", "head.weight", "mask_token"}));
  std::remove(path.c_str());
  std::remove(tmpl);
}

TEST(Vit, FastPathBuffersNeverOverwriteAHeldResult) {
  // The fast path reuses its large output buffers; a result the caller still holds must not be
  // reused, whatever mode (InferenceMode, NoGradGuard) each call runs in.
  torch::manual_seed(3);
  Mlp mlp(16, 64, false);
  mlp->eval();
  auto x1 = torch::randn({2, 5, 16}), x2 = torch::randn({2, 5, 16});
  torch::Tensor h1, h2, kept;
  {
    c10::InferenceMode im;
    h1 = mlp->hidden(x1);
    kept = h1.clone();
    h2 = mlp->hidden(x2);
    EXPECT_TRUE(torch::equal(h1, kept));
    EXPECT_FALSE(torch::equal(h1, h2));
  }
  torch::NoGradGuard ng;
  auto h3 = mlp->hidden(x1);  // outside InferenceMode: a buffer it may write
  EXPECT_TRUE(torch::allclose(h3, kept, 0, 0));
  mlp->fast_path = false;
  EXPECT_TRUE(torch::allclose(mlp->hidden(x1), kept, 1e-5, 1e-6));  // the reference path agrees
}

}  // namespace
}  // namespace medfm::models

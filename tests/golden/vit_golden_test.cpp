// ViT against the Python reference (scripts/golden/vit_ref.py, timm semantics): every
// architecture feature, each pooling, pos-embed interpolation, and each checkpoint key layout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/vit.h"
#include "tests/golden/golden_case.h"

namespace medfm::models {
namespace {

const std::string kDir = MEDFM_GOLDEN_DIR;

golden::Case load_case(const std::string& name) { return golden::load_case(kDir + "/vit_" + name + ".safetensors"); }

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a - b).abs().max().item<double>();
}

class VitGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(VitGolden, MatchesReference) {
  auto c = load_case(GetParam());
  Vit vit(c.cfg);
  vit->eval();
  auto report = load_vit_weights(vit, c.params, /*allow_partial=*/false, WeightsLayout::kTimm);
  EXPECT_TRUE(report.complete()) << report.summary();
  torch::NoGradGuard ng;
  auto x = c.file.get("input");
  auto tokens = vit->forward_features(x);
  EXPECT_LT(max_abs(tokens, c.file.get("expected.tokens")), 1e-4);
  EXPECT_LT(max_abs(vit->pool(tokens), c.file.get("expected.pooled")), 1e-4);
  EXPECT_EQ(vit->forward(x).size(1), c.cfg.out_dim());
  auto inter = vit->forward_intermediates(x, {0, -1});
  ASSERT_EQ(inter.size(), 2u);
  EXPECT_LT(max_abs(inter[0], c.file.get("expected.block0")), 1e-4);
  auto last_normed = vit->forward_intermediates(x, {-1}, /*apply_norm=*/true)[0];
  EXPECT_LT(max_abs(last_normed, tokens), 1e-5);
  auto maps = vit->forward_feature_maps(x, {0, -1}, /*apply_norm=*/false);
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_LT(max_abs(maps[0], c.file.get("expected.map0")), 1e-4);
  EXPECT_EQ(maps[1].size(1), c.cfg.embed_dim);
}

INSTANTIATE_TEST_SUITE_P(Cases, VitGolden,
                         ::testing::Values("basic", "noqkvbias_mean", "layerscale_reg_clsmean",
                                           "swiglu_reg_noembedclass", "patch16_interp", "layerscale_interp"));

struct LayoutCase {
  std::string base, layout;
  WeightsLayout expected;
};
void PrintTo(const LayoutCase& c, std::ostream* os) { *os << c.base << "." << c.layout; }
class VitLayouts : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(VitLayouts, SameFeaturesAsTimmLayout) {
  const auto& lc = GetParam();
  auto c = load_case(lc.base);
  const std::string path = kDir + "/vit_" + lc.base + "." + lc.layout + ".safetensors";
  auto sd = SafeTensors::open(path).load_all();
  EXPECT_EQ(detect_layout(sd), lc.expected);
  Vit vit(c.cfg);
  auto report = load_vit_weights(vit, path);  // auto-detected, no partial load allowed
  EXPECT_TRUE(report.complete()) << report.summary();
  EXPECT_FALSE(report.ignored.empty()) << "heads / mask_token should be reported as ignored";
  torch::NoGradGuard ng;
  auto x = c.file.get("input");
  EXPECT_LT(max_abs(vit->forward_features(x), c.file.get("expected.tokens")), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, VitLayouts,
    ::testing::Values(LayoutCase{"basic", "hf_vit", WeightsLayout::kHfVit},
                      LayoutCase{"basic", "torchvision", WeightsLayout::kTorchvision},
                      LayoutCase{"layerscale_interp", "hf_dinov2", WeightsLayout::kHfDinov2},
                      LayoutCase{"layerscale_interp", "dinov2", WeightsLayout::kDinov2},
                      LayoutCase{"swiglu_reg_noembedclass", "dinov2", WeightsLayout::kDinov2}),
    [](const auto& info) { return info.param.base + "_" + info.param.layout; });

TEST(VitLoad, RefusesPartialLoadAndNamesKeys) {
  auto c = load_case("basic");
  auto sd = c.params;
  sd.erase("blocks.1.mlp.fc2.weight");
  sd["blocks.0.attn.qkv.weight"] = torch::zeros({3, 3});
  sd["surprise.weight"] = torch::zeros({1});
  Vit vit(c.cfg);
  auto before = vit->named_parameters()["blocks.0.norm1.weight"].clone();
  try {
    load_vit_weights(vit, sd, false, WeightsLayout::kTimm);
    FAIL() << "partial load accepted";
  } catch (const medfm::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("blocks.1.mlp.fc2.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("surprise.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks.0.attn.qkv.weight: checkpoint [3, 3]"), std::string::npos) << msg;
  }
  EXPECT_TRUE(torch::equal(before, vit->named_parameters()["blocks.0.norm1.weight"])) << "model was modified";
  auto r = load_vit_weights(vit, sd, /*allow_partial=*/true, WeightsLayout::kTimm);
  EXPECT_EQ(r.missing, std::vector<std::string>{"blocks.1.mlp.fc2.weight"});  // stays as initialised
  EXPECT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"surprise.weight"});
  EXPECT_TRUE(torch::equal(vit->named_parameters()["blocks.0.norm1.weight"], c.params["blocks.0.norm1.weight"]));
}

TEST(VitLoad, ResamplesCheckpointPosEmbedToModelGrid) {
  auto c = load_case("basic");  // 4x4 grid
  VitConfig big = c.cfg;
  big.img_size = 48;  // 6x6 grid
  Vit vit(big);
  auto r = load_vit_weights(vit, c.params, false, WeightsLayout::kTimm);
  EXPECT_TRUE(r.complete()) << r.summary();
  EXPECT_EQ(vit->named_parameters()["pos_embed"].sizes(), (std::vector<int64_t>{1, 37, 32}));
  // The resampled table equals what the forward pass would interpolate on the fly.
  Vit small(c.cfg);
  load_vit_weights(small, c.params, false, WeightsLayout::kTimm);
  EXPECT_LT(max_abs(vit->named_parameters()["pos_embed"], small->resampled_pos_embed(6, 6)), 1e-6);
}

}  // namespace
}  // namespace medfm::models

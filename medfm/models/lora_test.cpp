// LoRA on a ViT: a fresh adapter changes nothing, training moves only the adapters, merged weights
// give the unmerged outputs, adapters round-trip through lora_state.
#include "medfm/models/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "medfm/core/error.h"
#include "medfm/models/registry.h"
#include "medfm/models/vit.h"

namespace medfm::models {
namespace {

std::shared_ptr<VitImpl> tiny() {
  torch::manual_seed(2);
  return create_vit("vit_tiny_patch16_224", {{"depth", "2"}, {"img_size", "32"}, {"embed_dim", "48"}, {"num_heads", "3"}}).ptr();
}

std::map<std::string, torch::Tensor> snapshot(VitImpl& v) {
  std::map<std::string, torch::Tensor> m;
  for (auto& p : v.named_parameters()) m[p.key()] = p.value().detach().clone();
  return m;
}

TEST(Lora, FreshAdapterIsTheBaseModelAndNamesAreKept) {
  auto vit = tiny();
  vit->eval();
  vit->set_fast_paths(false);  // the reference path on both sides, so a zero update is exactly nothing
  auto x = torch::randn({2, 3, 32, 32});
  torch::Tensor before;
  {
    torch::NoGradGuard ng;
    before = vit->embed(x);
  }
  auto names = apply_lora(*vit, {4, 8, 0, true});
  EXPECT_EQ(names.size(), 8u);  // 2 blocks x (qkv, proj, fc1, fc2)
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(vit->embed(x), before));
  auto params = vit->named_parameters();
  EXPECT_TRUE(params.contains("blocks.0.attn.qkv.weight"));
  EXPECT_TRUE(params.contains("blocks.1.mlp.fc2.lora_B"));
  for (auto& p : params) EXPECT_EQ(p.value().requires_grad(), p.key().find(".lora_") != std::string::npos) << p.key();
  EXPECT_THROW(apply_lora(*vit, {}), ConfigError);  // already wrapped
}

TEST(Lora, TrainingChangesOnlyAdaptersAndMergedEqualsUnmerged) {
  auto vit = tiny();
  apply_lora(*vit, {4, 8, 0, false});
  auto start = snapshot(*vit);
  std::vector<torch::Tensor> trainable;
  for (auto& p : vit->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::optim::AdamW opt(trainable, torch::optim::AdamWOptions(1e-2));
  vit->train();
  auto x = torch::randn({4, 3, 32, 32});
  for (int s = 0; s < 3; ++s) {
    opt.zero_grad();
    vit->embed(x).pow(2).mean().backward();
    opt.step();
  }
  int moved = 0;
  for (auto& p : vit->named_parameters()) {
    const bool same = torch::equal(p.value(), start.at(p.key()));
    if (p.key().find(".lora_") == std::string::npos) EXPECT_TRUE(same) << p.key();
    else moved += !same;
  }
  EXPECT_EQ(moved, 8);  // every A and B of 2 blocks x (qkv, proj)
  vit->eval();
  torch::NoGradGuard ng;
  auto unmerged = vit->embed(x);
  auto adapters = lora_state(*vit);
  EXPECT_EQ(adapters.size(), 8u);
  // Another model with the same base weights and the saved adapters gives the same outputs.
  auto other = tiny();
  apply_lora(*other, {4, 8, 0, false});
  load_lora_state(*other, adapters);
  other->eval();
  EXPECT_TRUE(torch::allclose(other->embed(x), unmerged, 1e-6, 1e-6));
  EXPECT_EQ(merge_lora(*vit), 4);
  EXPECT_TRUE(lora_state(*vit).empty());
  EXPECT_TRUE(torch::allclose(vit->embed(x), unmerged, 1e-5, 1e-5));
  EXPECT_FALSE(vit->named_parameters().contains("blocks.0.attn.qkv.lora_A"));
  // Adapters of another rank do not load.
  auto third = tiny();
  apply_lora(*third, {2, 8, 0, false});
  EXPECT_THROW(load_lora_state(*third, adapters), FormatError);
}

}  // namespace
}  // namespace medfm::models

// Parameter groups (what decays), the multipliers set_lr_wd applies, the trainer's non-finite stop.
#include "medfm/train/optim.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <set>

#include "medfm/core/error.h"
#include "medfm/models/vit.h"
#include "medfm/train/checkpoint.h"
#include "medfm/train/trainer.h"

namespace medfm::train {
namespace {

models::Vit tiny() {
  models::VitConfig c;
  c.img_size = 16;
  c.patch_size = 8;
  c.embed_dim = 16;
  c.depth = 1;
  c.num_heads = 2;
  c.mlp_hidden = 32;
  c.init_values = 0.1;
  return models::Vit(c);
}

TEST(ParamGroups, NoDecayOnBiasesNormsLayerScaleAndTokens) {
  auto vit = tiny();
  const auto nwd = vit->no_weight_decay();
  auto groups = weight_decay_groups(*vit, std::set<std::string>(nwd.begin(), nwd.end()), "s.");
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "decay");
  EXPECT_EQ(groups[1].wd_multiplier, 0.0);
  const std::set<std::string> decay(groups[0].params.begin(), groups[0].params.end());
  const std::set<std::string> no_decay(groups[1].params.begin(), groups[1].params.end());
  EXPECT_EQ(decay, (std::set<std::string>{"s.patch_embed.proj.weight", "s.blocks.0.attn.qkv.weight",
                                          "s.blocks.0.attn.proj.weight", "s.blocks.0.mlp.fc1.weight",
                                          "s.blocks.0.mlp.fc2.weight"}));
  for (const auto* n : {"s.cls_token", "s.pos_embed", "s.blocks.0.norm1.weight", "s.blocks.0.ls1.gamma",
                        "s.blocks.0.attn.qkv.bias", "s.norm.bias"})
    EXPECT_TRUE(no_decay.count(n)) << n;
  EXPECT_EQ(decay.size() + no_decay.size(), vit->parameters().size());
  // Frozen parameters are left out.
  vit->pos_embed.set_requires_grad(false);
  auto g2 = weight_decay_groups(*vit, {});
  EXPECT_EQ(g2[0].tensors.size() + g2[1].tensors.size(), vit->parameters().size() - 1);
}

TEST(ParamGroups, AdamWStepDecaysOnlyTheDecayGroup) {
  auto vit = tiny();
  const auto nwd = vit->no_weight_decay();
  auto groups = weight_decay_groups(*vit, std::set<std::string>(nwd.begin(), nwd.end()));
  auto opt = make_adamw(groups);
  set_lr_wd(*opt, groups, 0.1, 0.5);
  auto w = vit->block(0).mlp->fc1->weight;
  auto b = vit->block(0).mlp->fc1->bias;
  const auto w0 = w.detach().clone(), b0 = b.detach().clone();
  for (auto& p : vit->parameters()) p.mutable_grad() = torch::zeros_like(p);  // zero gradient: only decay moves
  opt->step();
  EXPECT_TRUE(torch::allclose(w, w0 * (1 - 0.1 * 0.5)));
  EXPECT_TRUE(torch::equal(b, b0));
}

// The fused AdamW against LibTorch's over several steps: two groups (one without weight decay, one
// at another learning rate), a tensor large enough to be split over threads with a ragged end,
// small ones, and a parameter that never gets a gradient (no state, not moved).
TEST(FusedAdamW, FollowsLibTorchAdamWOverSteps) {
  torch::manual_seed(5);
  const std::vector<std::vector<int64_t>> shapes{{70001}, {3, 5}, {129}, {64, 33}};
  std::vector<torch::Tensor> a, b;
  for (const auto& s : shapes) {
    a.push_back(torch::randn(s).requires_grad_(true));
    b.push_back(a.back().detach().clone().requires_grad_(true));
  }
  auto make = [](std::vector<torch::Tensor>& ps, bool fused) -> std::unique_ptr<torch::optim::AdamW> {
    std::vector<torch::optim::OptimizerParamGroup> pg;
    pg.emplace_back(std::vector<torch::Tensor>{ps[0], ps[1]}, std::make_unique<torch::optim::AdamWOptions>(2e-3));
    static_cast<torch::optim::AdamWOptions&>(pg.back().options()).weight_decay(0.05);
    pg.emplace_back(std::vector<torch::Tensor>{ps[2], ps[3]}, std::make_unique<torch::optim::AdamWOptions>(5e-3));
    static_cast<torch::optim::AdamWOptions&>(pg.back().options()).weight_decay(0.0);
    if (fused) return std::make_unique<FusedAdamW>(pg, torch::optim::AdamWOptions(0.0));
    return std::make_unique<torch::optim::AdamW>(pg, torch::optim::AdamWOptions(0.0));
  };
  auto fused = make(a, true), ref = make(b, false);
  const auto never0 = a[3].detach().clone();
  for (int step = 0; step < 6; ++step) {
    for (size_t i = 0; i + 1 < a.size(); ++i) {  // a[3] never gets a gradient
      auto g = torch::randn(a[i].sizes()) * (step + 1);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    fused->step();
    ref->step();
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6))
          << "step " << step << " tensor " << i << ": max diff " << (a[i] - b[i]).abs().max().item<float>();
  }
  EXPECT_FALSE(torch::equal(a[0], b[0].detach().clone().zero_()));
  EXPECT_TRUE(torch::equal(a[3], never0));
  // The same state as the base class keeps (what checkpoints save): step counts and moments.
  const auto& sa = fused->state();
  const auto& sb = ref->state();
  EXPECT_EQ(sa.size(), 3u);
  EXPECT_EQ(sb.size(), 3u);
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    auto& x = static_cast<torch::optim::AdamWParamState&>(*sa.at(optim_state_key(a[i])));
    auto& y = static_cast<torch::optim::AdamWParamState&>(*sb.at(optim_state_key(b[i])));
    EXPECT_EQ(x.step(), 6);
    EXPECT_EQ(y.step(), 6);
    EXPECT_TRUE(torch::allclose(x.exp_avg(), y.exp_avg(), 1e-5, 1e-7));
    EXPECT_TRUE(torch::allclose(x.exp_avg_sq(), y.exp_avg_sq(), 1e-5, 1e-9));
  }
}

// Parameters the fused pass does not take (double here) go through LibTorch's own step: the
// same bits as torch::optim::AdamW.
TEST(FusedAdamW, OtherTensorsTakeLibTorchsStep) {
  torch::manual_seed(6);
  auto a = torch::randn({10, 3}, torch::kDouble).requires_grad_(true);
  auto b = a.detach().clone().requires_grad_(true);
  FusedAdamW fused({a}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  torch::optim::AdamW ref({b}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1));
  for (int step = 0; step < 3; ++step) {
    auto g = torch::randn({10, 3}, torch::kDouble);
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    fused.step();
    ref.step();
  }
  EXPECT_TRUE(torch::equal(a, b));
}

class NanObjective : public Objective {
 public:
  NanObjective() : lin(2, 1) {}
  std::string name() const override { return "nan"; }
  std::vector<ParamGroup> param_groups() override { return weight_decay_groups(*lin, {}); }
  torch::nn::Module& trained() override { return *lin; }
  StepLoss loss(const Views& v, int64_t) override {
    auto l = lin->forward(v.crops[0]).sum() * std::numeric_limits<float>::quiet_NaN();
    return {l, {{"part", 1.5}}};
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() override { return {}; }
  void load_state(const std::map<std::string, torch::Tensor>&) override {}
  models::Vit export_backbone() override { return models::Vit(nullptr); }
  models::Vit trained_backbone() override { return models::Vit(nullptr); }
  torch::nn::Linear lin;
};

// Least squares on a linear layer: enough to check accumulation and checkpoints exactly.
class LinObjective : public Objective {
 public:
  LinObjective() : lin(4, 2) {}
  std::string name() const override { return "lin"; }
  std::vector<ParamGroup> param_groups() override { return weight_decay_groups(*lin, {}); }
  torch::nn::Module& trained() override { return *lin; }
  StepLoss loss(const Views& v, int64_t) override {
    auto l = (lin->forward(v.crops[0]) - v.crops[1]).pow(2).mean();
    return {l, {{"mse", l.item<double>()}}};
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    add_module_state(out, "lin.", *lin);
    return out;
  }
  void load_state(const std::map<std::string, torch::Tensor>& s) override { load_module_state(*lin, "lin.", s); }
  models::Vit export_backbone() override { return models::Vit(nullptr); }
  models::Vit trained_backbone() override { return models::Vit(nullptr); }
  torch::nn::Linear lin;
};

TrainerOptions lin_options() {
  TrainerOptions o;
  o.lr = Schedule::cosine(0.05, 0.001, 10, 2);
  o.weight_decay = Schedule::cosine(0.04, 0.4, 10);
  o.clip_mode = "global";
  o.clip_grad = 1.0;
  return o;
}

Views lin_batch(int64_t step) {
  torch::manual_seed(100 + static_cast<uint64_t>(step));
  auto x = torch::randn({8, 4});
  return Views{{x, x.matmul(torch::ones({4, 2})) + 0.1}};
}

TEST(Trainer, AccumulationEqualsTheWholeBatch) {
  torch::manual_seed(3);
  LinObjective a;
  LinObjective b;
  {
    torch::NoGradGuard ng;
    b.lin->weight.copy_(a.lin->weight);
    b.lin->bias.copy_(a.lin->bias);
  }
  Trainer ta(a, lin_options()), tb(b, lin_options());
  for (int64_t s = 0; s < 3; ++s) {
    auto v = lin_batch(s);
    ta.step(v);
    Views h1{{v.crops[0].narrow(0, 0, 4), v.crops[1].narrow(0, 0, 4)}};
    Views h2{{v.crops[0].narrow(0, 4, 4), v.crops[1].narrow(0, 4, 4)}};
    tb.step(std::vector<Views>{h1, h2});
  }
  EXPECT_LT((a.lin->weight - b.lin->weight).abs().max().item<double>(), 1e-6);
}

TEST(Trainer, CheckpointResumesBitExactly) {
  const std::string path = ::testing::TempDir() + "/medfm_lin_ckpt.safetensors";
  torch::manual_seed(5);
  LinObjective a;
  Trainer ta(a, lin_options());
  for (int64_t s = 0; s < 3; ++s) ta.step(lin_batch(s));
  save_train_checkpoint(path, a, ta, {{"note", "x"}});
  std::vector<double> want;
  for (int64_t s = 3; s < 6; ++s) want.push_back(ta.step(lin_batch(s)).loss);

  torch::manual_seed(99);  // other initial weights: the checkpoint must replace them
  LinObjective b;
  Trainer tb(b, lin_options());
  auto info = load_train_checkpoint(path, b, tb);
  EXPECT_EQ(info.step, 3);
  EXPECT_EQ(info.metadata["note"], "x");
  EXPECT_EQ(tb.steps_done(), 3);
  for (int64_t s = 3; s < 6; ++s) EXPECT_EQ(tb.step(lin_batch(s)).loss, want[static_cast<size_t>(s - 3)]) << s;
  EXPECT_TRUE(torch::equal(a.lin->weight, b.lin->weight));

  NanObjective other;
  Trainer to(other, lin_options());
  EXPECT_THROW(load_train_checkpoint(path, other, to), Error);  // another method's checkpoint
}

TEST(Trainer, NonFiniteLossStopsNamingStepAndTerms) {
  NanObjective obj;
  TrainerOptions o;
  o.lr = Schedule::constant(1e-3, 5);
  o.weight_decay = Schedule::constant(0.0, 5);
  Trainer t(obj, o);
  try {
    t.step(Views{{torch::ones({3, 2})}});
    FAIL() << "a NaN loss was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("at step 0"), std::string::npos) << m;
    EXPECT_NE(m.find("part=1.5"), std::string::npos) << m;
  }
  o.clip_mode = "sometimes";
  EXPECT_THROW(Trainer(obj, o), ConfigError);
}

}  // namespace
}  // namespace medfm::train

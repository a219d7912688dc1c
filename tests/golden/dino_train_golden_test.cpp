// Ten DINO training steps (the Objective, the Trainer, AdamW with parameter groups, schedules,
// per-parameter clipping, last-layer freezing, EMA teacher, centring) against the Python reference
// run (scripts/golden/gen_dino_train_golden.py, Debian's torch 1.13) on the same tiny ViT, heads
// and views: every step's loss and the final student and teacher weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "medfm/ssl/dino_objective.h"
#include "medfm/train/trainer.h"
#include "tests/golden/golden_case.h"

namespace medfm::ssl {
namespace {

using models::golden::max_rel;

void load_into(torch::nn::Module& m, const SafeTensors& st, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) p.value().copy_(st.get(prefix + p.key()));
}

void expect_schedule(const train::Schedule& s, const std::string& json) {
  std::vector<double> want = nlohmann::json::parse(json);
  ASSERT_EQ(s.size(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s[static_cast<int64_t>(i)], want[i], 1e-12) << i;
}

TEST(DinoTrainGolden, TenStepsMatchPython) {
  auto c = models::golden::load_case(std::string(MEDFM_GOLDEN_DIR) + "/dino_train.safetensors");
  const auto& st = c.file;
  models::Vit vit(c.cfg);
  ASSERT_TRUE(models::load_vit_weights(vit, c.params, false, models::WeightsLayout::kTimm).complete());
  const int64_t steps = 10;
  DinoOptions o;
  o.head.out_dim = 64;
  o.head.hidden_dim = 48;
  o.head.bottleneck_dim = 16;
  o.n_local_crops = 2;
  o.teacher_temp = train::Schedule::linear_warmup_then_constant(0.04, 0.07, 5, steps);
  o.momentum = train::Schedule::cosine(0.9, 1.0, steps);
  o.freeze_last_layer_steps = 2;
  train::TrainerOptions to;
  to.lr = train::Schedule::cosine(1e-3, 1e-5, steps, 3);
  to.weight_decay = train::Schedule::cosine(0.04, 0.4, steps);
  to.clip_mode = "per_param";
  to.clip_grad = 3.0;
  expect_schedule(to.lr, st.metadata().at("lr"));
  expect_schedule(to.weight_decay, st.metadata().at("wd"));
  expect_schedule(o.momentum, st.metadata().at("momentum"));
  expect_schedule(o.teacher_temp, st.metadata().at("teacher_temp"));

  DinoObjective dino(vit, o);
  EXPECT_FALSE(dino.teacher()->is_training());  // no stochastic depth in the teacher
  EXPECT_TRUE(dino.student()->is_training());
  load_into(*dino.student()->head, st, "h.");
  load_into(*dino.teacher()->head, st, "h.");
  train::Trainer trainer(dino, to);
  auto want = st.get("losses");
  for (int64_t it = 0; it < steps; ++it) {
    train::Views v;
    for (int k = 0; k < 4; ++k) v.crops.push_back(st.get("view." + std::to_string(it) + "." + std::to_string(k)));
    auto r = trainer.step(v);
    EXPECT_NEAR(r.loss, want[it].item<double>(), 2e-5 * std::abs(want[it].item<double>())) << "step " << it;
  }
  double lr_sum = 0;
  for (int64_t it = 0; it < steps; ++it) lr_sum += to.lr[it];
  auto expect_close = [&](const std::string& name, const torch::Tensor& got, const torch::Tensor& want) {
    models::golden::expect_trained_param(name, got, want, lr_sum);
  };
  for (auto& p : dino.student()->named_parameters())
    if (p.value().requires_grad()) expect_close(p.key(), p.value(), st.get("final.student." + p.key()));
  for (auto& p : dino.teacher()->backbone->named_parameters())
    expect_close(p.key(), p.value(), st.get("final.teacher.backbone." + p.key()));
}

}  // namespace
}  // namespace medfm::ssl

// DINOv2 / iBOT against Python written to facebookresearch/dinov2's semantics
// (scripts/golden/gen_dinov2_golden.py): the masked patch loss, its centre and gradient,
// Sinkhorn-Knopp targets, and ten training steps (masks from dinov2's generator, saved by the
// reference) with every loss term and the final student and teacher weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "medfm/ssl/dinov2_objective.h"
#include "medfm/ssl/ibot.h"
#include "medfm/train/trainer.h"
#include "tests/golden/golden_case.h"

namespace medfm::ssl {
namespace {

using models::golden::max_rel;

TEST(IbotGolden, PatchLossCentreAndSinkhorn) {
  auto st = SafeTensors::open(std::string(MEDFM_GOLDEN_DIR) + "/ibot.safetensors");
  auto masks = st.get("masks").to(torch::kBool);
  auto s = st.get("s").clone().requires_grad_(true);
  IbotPatchLoss loss(24);
  loss.set_center(st.get("center0"));
  auto probs = loss.teacher_probs(st.get("t_raw"), 0.05);
  EXPECT_LT(max_rel(loss.center(), st.get("center1")), 1e-5);
  auto l = loss(s, probs, masks);
  EXPECT_NEAR(l.item<double>(), st.get("loss").item<double>(), 1e-5 * std::abs(st.get("loss").item<double>()));
  l.backward();
  EXPECT_LT(max_rel(s.grad(), st.get("grad")), 1e-4);
  EXPECT_LT(max_rel(sinkhorn_knopp(st.get("sk_in"), 0.07, 8), st.get("sk_cls")), 1e-5);
  EXPECT_LT(max_rel(sinkhorn_knopp(st.get("sk_patch_in"), 0.05, masks.sum().item<int64_t>()), st.get("sk_patch")), 1e-5);
}

void load_into(torch::nn::Module& m, const SafeTensors& st, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) p.value().copy_(st.get(prefix + p.key()));
}

TEST(Dinov2TrainGolden, TenStepsMatchPython) {
  auto c = models::golden::load_case(std::string(MEDFM_GOLDEN_DIR) + "/dinov2_train.safetensors");
  const auto& st = c.file;
  auto cfg = c.cfg;
  cfg.mask_token = true;
  models::Vit vit(cfg);
  auto sd = c.params;
  sd["mask_token"] = st.get("p.mask_token");
  ASSERT_TRUE(models::load_vit_weights(vit, sd, false, models::WeightsLayout::kTimm).complete());
  const int64_t steps = 10;
  Dinov2Options o;
  o.head.out_dim = 64, o.head.hidden_dim = 48, o.head.bottleneck_dim = 16, o.head.norm_last_layer = false;
  o.n_local_crops = 2;
  o.teacher_temp = train::Schedule::linear_warmup_then_constant(0.04, 0.07, 5, steps);
  o.momentum = train::Schedule::cosine(0.9, 1.0, steps);
  o.freeze_last_layer_steps = 2;
  train::TrainerOptions to;
  to.lr = train::Schedule::cosine(1e-3, 1e-5, steps, 3);
  to.weight_decay = train::Schedule::cosine(0.04, 0.2, steps);
  to.clip_mode = "per_module";
  to.clip_grad = 3.0;
  Dinov2Objective obj(vit, o);
  load_into(*obj.student()->head, st, "h.");
  load_into(*obj.teacher()->head, st, "h.");
  train::Trainer trainer(obj, to);
  auto want = st.get("losses"), terms = st.get("terms");
  for (int64_t it = 0; it < steps; ++it) {
    train::Views v;
    for (int k = 0; k < 4; ++k) v.crops.push_back(st.get("view." + std::to_string(it) + "." + std::to_string(k)));
    v.masks = st.get("masks." + std::to_string(it)).to(torch::kBool).view({2, 4, -1});
    auto r = trainer.step(v);
    const double w = want[it].item<double>();
    EXPECT_NEAR(r.loss, w, 2e-5 * std::abs(w)) << "step " << it;
    EXPECT_NEAR(r.terms["dino"], terms[it][0].item<double>(), 2e-5 * std::abs(w)) << "dino, step " << it;
    EXPECT_NEAR(r.terms["koleo"], terms[it][1].item<double>(), 2e-5 * std::abs(w)) << "koleo, step " << it;
    EXPECT_NEAR(r.terms["ibot"], terms[it][2].item<double>(), 2e-5 * std::abs(w)) << "ibot, step " << it;
  }
  double lr_sum = 0;
  for (int64_t it = 0; it < steps; ++it) lr_sum += to.lr[it];
  auto expect_close = [&](const std::string& name, const torch::Tensor& got, const torch::Tensor& want) {
    models::golden::expect_trained_param(name, got, want, lr_sum);
  };
  for (auto& p : obj.student()->named_parameters()) expect_close(p.key(), p.value(), st.get("final.student." + p.key()));
  for (auto& p : obj.teacher()->backbone->named_parameters())
    expect_close(p.key(), p.value(), st.get("final.teacher.backbone." + p.key()));
}

}  // namespace
}  // namespace medfm::ssl

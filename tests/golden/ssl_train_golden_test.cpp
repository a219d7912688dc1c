// Ten MAE and ten SimCLR training steps (objective, trainer, AdamW groups, schedules, clipping)
// against Python written to facebookresearch/mae's and google-research/simclr's semantics
// (scripts/golden/gen_ssl_train_golden.py): every step's loss and the final weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "medfm/ssl/mae_objective.h"
#include "medfm/ssl/simclr_objective.h"
#include "medfm/train/trainer.h"
#include "tests/golden/golden_case.h"

namespace medfm::ssl {
namespace {

void load_params(torch::nn::Module& m, const SafeTensors& st, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) p.value().copy_(st.get(prefix + p.key()));
}

// Final weights (models::golden::expect_trained_param).
void expect_final(torch::nn::Module& m, const SafeTensors& st, const train::Schedule& lr) {
  double lr_sum = 0;
  for (int64_t i = 0; i < lr.size(); ++i) lr_sum += lr[i];
  for (auto& p : m.named_parameters())
    models::golden::expect_trained_param(p.key(), p.value(), st.get("final." + p.key()), lr_sum);
}

TEST(MaeTrainGolden, TenStepsMatchPython) {
  auto c = models::golden::load_case(std::string(MEDFM_GOLDEN_DIR) + "/mae_train.safetensors");
  const auto& st = c.file;
  MaeOptions o;
  o.decoder_dim = 16, o.decoder_depth = 1, o.decoder_heads = 2;
  auto cfg = c.cfg;
  cfg.mask_token = false;  // "p.mask_token" is the decoder's, not an encoder mask token
  MaeObjective mae(models::Vit(cfg), o);
  load_params(*mae.model(), st, "p.");
  // MAE's fixed 2D sin-cos decoder positions.
  EXPECT_LT((mae.model()->decoder_pos_embed - st.get("decoder_pos_embed")).abs().max().item<double>(), 1e-6);
  train::TrainerOptions to;
  to.lr = train::Schedule::cosine(1e-3, 1e-5, 10, 3);
  to.weight_decay = train::Schedule::cosine(0.05, 0.05, 10);
  to.clip_mode = "none";
  train::Trainer trainer(mae, to);
  auto want = st.get("losses");
  for (int64_t it = 0; it < 10; ++it) {
    torch::manual_seed(static_cast<uint64_t>(1000 + it));  // the reference's noise: torch.rand after this seed
    auto r = trainer.step(train::Views{{st.get("view." + std::to_string(it))}});
    EXPECT_NEAR(r.loss, want[it].item<double>(), 2e-5 * std::abs(want[it].item<double>())) << "step " << it;
  }
  expect_final(*mae.model(), st, to.lr);
}

TEST(SimclrTrainGolden, TenStepsMatchPython) {
  auto c = models::golden::load_case(std::string(MEDFM_GOLDEN_DIR) + "/simclr_train.safetensors");
  const auto& st = c.file;
  SimclrOptions o;
  o.head.hidden_dim = 48, o.head.out_dim = 16;
  o.temperature = 0.1;
  SimclrObjective simclr(models::Vit(c.cfg), o);
  load_params(simclr.trained(), st, "p.");
  train::TrainerOptions to;
  to.lr = train::Schedule::cosine(1e-3, 1e-5, 10, 3);
  to.weight_decay = train::Schedule::cosine(1e-4, 1e-4, 10);
  to.clip_mode = "global";
  to.clip_grad = 3.0;
  train::Trainer trainer(simclr, to);
  auto want = st.get("losses");
  for (int64_t it = 0; it < 10; ++it) {
    const auto k = std::to_string(it);
    auto r = trainer.step(train::Views{{st.get("view." + k + ".0"), st.get("view." + k + ".1")}});
    EXPECT_NEAR(r.loss, want[it].item<double>(), 2e-5 * std::abs(want[it].item<double>())) << "step " << it;
  }
  expect_final(simclr.trained(), st, to.lr);
}

}  // namespace
}  // namespace medfm::ssl

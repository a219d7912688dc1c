// DINO's collapse diagnostics: the target entropies DinoLoss reports and CollapseWatch's warnings.
#include "medfm/ssl/dino.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace medfm::ssl {
namespace {

train::Schedule constant_temp(double t, int64_t steps) {
  return train::Schedule::linear_warmup_then_constant(t, t, 0, steps);
}

TEST(DinoLoss, ReportsTheTargetsEntropies) {
  const int K = 64, B = 8;
  DinoLoss loss(K, 2, constant_temp(0.04, 10));
  // The same teacher output for every image, before any centre: every target is the same sharp
  // distribution (low entropy per sample and for the batch's mean alike).
  auto same = torch::randn({1, K}).repeat({2 * B, 1}) * 3;
  auto student = torch::randn({2 * B, K});
  loss(student, same, 0);
  auto p = torch::softmax(same[0] / 0.04, -1);
  const double h = -(p * p.log()).nan_to_num(0.0).sum().item<double>();
  EXPECT_NEAR(loss.target_stats().sample_entropy, h, 1e-4);
  EXPECT_NEAR(loss.target_stats().mean_entropy, h, 1e-4);
  EXPECT_LT(h, 0.5 * std::log(K));
  // A constant output: uniform targets, entropy ln K.
  DinoLoss flat(K, 2, constant_temp(0.04, 10));
  flat(student, torch::zeros({2 * B, K}), 0);
  EXPECT_NEAR(flat.target_stats().sample_entropy, std::log(K), 1e-5);
  // Each image sharply on its own prototype: low per sample, high for the batch's mean.
  DinoLoss spread(K, 2, constant_temp(0.04, 10));
  spread(student, torch::eye(K).narrow(0, 0, 2 * B) * 5, 0);
  EXPECT_LT(spread.target_stats().sample_entropy, 0.01);
  EXPECT_NEAR(spread.target_stats().mean_entropy, std::log(2 * B), 0.05);
}

TEST(CollapseWatch, WarnsOnceAfterThePatience) {
  const int K = 2048;
  const double lk = std::log(K);
  CollapseWatch w(K, 5);
  for (int s = 0; s < 4; ++s) EXPECT_EQ(w.update({0.995 * lk, 6.0}, s), "") << s;
  EXPECT_EQ(w.update({0.5 * lk, 6.0}, 4), "");  // a healthy step resets the count
  for (int s = 5; s < 9; ++s) EXPECT_EQ(w.update({0.995 * lk, 6.0}, s), "") << s;
  auto m = w.update({0.995 * lk, 6.0}, 9);
  EXPECT_NE(m.find("uniform"), std::string::npos) << m;
  EXPECT_EQ(w.update({0.995 * lk, 6.0}, 10), "");  // said once

  CollapseWatch one(K, 3);
  EXPECT_EQ(one.update({0.1, 0.2}, 0), "");
  EXPECT_EQ(one.update({0.1, 0.2}, 1), "");
  auto m2 = one.update({0.1, 0.2}, 2);
  EXPECT_NE(m2.find("same few prototypes"), std::string::npos) << m2;

  CollapseWatch healthy(K, 3);
  for (int s = 0; s < 50; ++s) EXPECT_EQ(healthy.update({0.6 * lk, 0.95 * lk}, s), "");
}

}  // namespace
}  // namespace medfm::ssl

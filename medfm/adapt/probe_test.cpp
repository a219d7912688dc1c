#include <torch/torch.h>

#include <gtest/gtest.h>

#include "medfm/adapt/knn.h"
#include "medfm/adapt/logistic.h"
#include "medfm/adapt/mlp_probe.h"
#include "medfm/adapt/simpleshot.h"
#include "medfm/core/error.h"

namespace medfm::adapt {
namespace {

TEST(Logistic, GridStandardiserAndSeparableData) {
  auto g = log_grid(1e-2, 1e2, 5);
  ASSERT_EQ(g.size(), 5u);
  EXPECT_NEAR(g[0], 1e-2, 1e-15);
  EXPECT_NEAR(g[2], 1.0, 1e-12);
  EXPECT_NEAR(g[4], 1e2, 1e-10);
  auto x = torch::tensor({{1.0f, 5.0f}, {3.0f, 5.0f}});
  auto s = Standardizer::fit(x);
  EXPECT_TRUE(torch::allclose(s.apply(x), torch::tensor({{-1.0f, 0.0f}, {1.0f, 0.0f}})));  // constant column: scale 1
  // Two Gaussian blobs: a strongly regularised fit shrinks towards uniform, a weak one separates.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto a = torch::randn({40, 3}, gen) + torch::tensor({2.0f, 0.0f, 0.0f});
  auto b = torch::randn({40, 3}, gen) - torch::tensor({2.0f, 0.0f, 0.0f});
  auto xs = torch::cat({a, b});
  std::vector<int> y(80, 0);
  std::fill(y.begin() + 40, y.end(), 1);
  LogisticRegression weak, strong;
  LogisticOptions o;
  weak.fit(xs, y, 2, 100.0, o);
  strong.fit(xs, y, 2, 1e-4, o);
  auto pw = weak.predict_proba(xs), ps = strong.predict_proba(xs);
  EXPECT_GT(pw.select(1, 0).slice(0, 0, 40).mean().item<float>(), 0.9);
  EXPECT_LT((ps - 0.5).abs().max().item<float>(), 0.05);
  EXPECT_GT(weak.iterations(), 0);
  EXPECT_THROW(weak.fit(xs, y, 2, 0.0, o), Error);
}

TEST(Logistic, ProbeChoosesCOnValidationRowsAndRefitsOnAll) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  auto x = torch::randn({60, 4}, gen);
  std::vector<int> y(60);
  for (int i = 0; i < 60; ++i) y[i] = x[i][0].item<float>() + 0.3f * x[i][1].item<float>() > 0;
  std::vector<int64_t> tr, va;
  for (int64_t i = 0; i < 60; ++i) (i % 4 == 0 ? va : tr).push_back(i);
  LogisticOptions o;
  o.c_grid = {1e-4, 1e-2, 1, 100};
  auto p = fit_logistic_probe(x, y, 2, tr, va, o);
  EXPECT_EQ(p.val_balanced_accuracy.size(), 4u);
  EXPECT_GT(p.c, 1e-4);  // the near-uniform model is not chosen
  EXPECT_THROW(fit_logistic_probe(x, y, 2, tr, {}, o), Error);
}

TEST(Knn, VotesWeightedByTemperature) {
  // One query; neighbours at cosine 1 (class 0) and 0 (class 1): votes exp(1/T) vs exp(0).
  auto train = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});
  auto q = torch::tensor({{2.0f, 0.0f}});
  KnnOptions o;
  o.k = 2;
  o.temperature = 0.5;
  auto p = knn_proba(train, {0, 1}, 2, q, o);
  const double w = std::exp(2.0);
  EXPECT_NEAR(p[0][0].item<float>(), w / (w + 1), 1e-6);
  o.k = 50;  // more than the rows: all of them
  EXPECT_TRUE(torch::allclose(knn_proba(train, {0, 1}, 2, q, o), p));
}

TEST(SimpleShot, EpisodesAreSeededPerShotAndClass) {
  std::vector<int> y = {0, 0, 0, 1, 1, 1, 1, 2};
  auto e = episode_support(y, 3, 2, 0, 1);
  EXPECT_EQ(e, episode_support(y, 3, 2, 0, 1));
  EXPECT_EQ(e.size(), 5u);  // 2 + 2 + the one row of class 2
  std::vector<int> per(3, 0);
  for (auto i : e) ++per[y[i]];
  EXPECT_EQ(per, (std::vector<int>{2, 2, 1}));
  bool differs = false;
  for (int ep = 1; ep < 10; ++ep) differs |= episode_support(y, 3, 2, ep, 1) != e;
  EXPECT_TRUE(differs);
}

TEST(MlpProbe, LearnsANonLinearRuleKeepsTheBestEpochAndIsSeeded) {
  // XOR of two signs: no linear probe separates it, one hidden layer does.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  auto x = torch::randn({400, 2}, gen);
  std::vector<int> y(400);
  for (int i = 0; i < 400; ++i) y[i] = (x[i][0].item<float>() > 0) != (x[i][1].item<float>() > 0);
  std::vector<int64_t> tr, va, te;
  for (int64_t i = 0; i < 400; ++i) (i % 5 == 0 ? va : i % 5 == 1 ? te : tr).push_back(i);
  MlpProbeOptions o;
  o.hidden = 32;
  o.max_epochs = 60;
  o.batch_size = 32;
  o.lr = 1e-2;
  auto m = fit_mlp_probe(x, y, 2, tr, va, o);
  auto p = m.predict_proba(x.index_select(0, torch::tensor(te)));
  int hit = 0;
  for (size_t i = 0; i < te.size(); ++i) hit += p[i].argmax().item<int64_t>() == y[te[i]];
  EXPECT_GT(hit, 0.85 * te.size());
  EXPECT_LE(m.best_epoch, m.epochs_run - 1);
  auto again = fit_mlp_probe(x, y, 2, tr, va, o);
  EXPECT_TRUE(torch::equal(again.w1, m.w1));
  EXPECT_THROW(fit_mlp_probe(x, y, 2, tr, {}, o), Error);
}

}  // namespace
}  // namespace medfm::adapt

#include "medfm/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::eval {
namespace {

TEST(Metrics, HandComputedValues) {
  // 3 classes; class 2 never predicted.
  std::vector<int> y = {0, 0, 1, 1, 2, 2}, p = {0, 1, 1, 1, 0, 1};
  EXPECT_DOUBLE_EQ(accuracy(y, p), 3.0 / 6);
  EXPECT_DOUBLE_EQ(balanced_accuracy(y, p, 3), (0.5 + 1.0 + 0.0) / 3);
  // F1: class 0: tp 1, support 2, predicted 2 -> 0.5; class 1: tp 2, support 2, predicted 4 -> 2/3; class 2: 0.
  EXPECT_NEAR(f1_weighted(y, p, 3), (0.5 * 2 + 2.0 / 3 * 2 + 0) / 6, 1e-15);
  EXPECT_EQ(confusion_matrix(y, p, 3), (std::vector<int64_t>{1, 1, 0, 0, 2, 0, 1, 1, 0}));
  // Perfect grading and a constant prediction.
  EXPECT_DOUBLE_EQ(kappa_quadratic({0, 1, 2, 3}, {0, 1, 2, 3}, 4), 1.0);
  EXPECT_TRUE(std::isnan(kappa_quadratic({1, 1}, {1, 1}, 4)));  // no expected disagreement: undefined
}

TEST(Metrics, AurocTiesAndUndefinedCases) {
  EXPECT_DOUBLE_EQ(auroc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}), 0.75);
  EXPECT_DOUBLE_EQ(auroc({0, 1}, {0.5, 0.5}), 0.5);  // a tie counts one half
  EXPECT_TRUE(std::isnan(auroc({1, 1}, {0.2, 0.3})));
  // Macro over present classes: class 2 absent from y_true.
  std::vector<int> y = {0, 0, 1, 1};
  std::vector<double> s = {0.8, 0.1, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1, 0.4, 0.5, 0.1};
  EXPECT_DOUBLE_EQ(auroc_macro(y, s, 3), 1.0);
  EXPECT_TRUE(std::isnan(auroc_macro({1, 1}, {0.2, 0.8, 0.3, 0.7}, 2)));
  auto r = roc_curve({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8});
  EXPECT_EQ(r.fpr, (std::vector<double>{0, 0, 0.5, 0.5, 1}));
  EXPECT_EQ(r.tpr, (std::vector<double>{0, 0.5, 0.5, 1, 1}));
}

TEST(Metrics, DiceAndBadInput) {
  EXPECT_DOUBLE_EQ(dice({1, 1, 0, 0}, {1, 0, 1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(dice({0, 0}, {0, 0}), 1.0);
  EXPECT_THROW(accuracy({0, 1}, {0}), Error);
  EXPECT_THROW(balanced_accuracy({0, 3}, {0, 1}, 3), Error);
  EXPECT_THROW(classification_metric("auc", {0}, {0}, {}, 2), ConfigError);
}

TEST(Bootstrap, SeededResamplesAndPercentiles) {
  auto a = bootstrap_resamples(50, 20, 3), b = bootstrap_resamples(50, 20, 3), c = bootstrap_resamples(50, 20, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const auto& r : a)
    for (auto i : r) EXPECT_TRUE(i >= 0 && i < 50);
  // The metric "mean of the drawn indices": its interval brackets the full-sample value 24.5.
  auto iv = bootstrap_interval(
      [](const std::vector<int64_t>& idx) {
        double s = 0;
        for (auto i : idx) s += static_cast<double>(i);
        return s / static_cast<double>(idx.size());
      },
      50, bootstrap_resamples(50, 500, 1));
  EXPECT_DOUBLE_EQ(iv.value, 24.5);
  EXPECT_LT(iv.low, 24.5);
  EXPECT_GT(iv.high, 24.5);
  EXPECT_EQ(iv.n_resamples, 500);
  auto ms = mean_std({1, 3, NAN});
  EXPECT_DOUBLE_EQ(ms.mean, 2);
  EXPECT_DOUBLE_EQ(ms.std, 1);
  EXPECT_EQ(ms.n, 2);
}

}  // namespace
}  // namespace medfm::eval

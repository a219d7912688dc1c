// Metrics, splits and probes against scikit-learn 1.2 and numpy references
// (scripts/golden/gen_probe_golden.py): metrics.safetensors (prediction cases + bootstrap
// resamples) and probe.safetensors (raw-pixel features of real Brodmann-area MRI patches).
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "medfm/adapt/knn.h"
#include "medfm/adapt/logistic.h"
#include "medfm/adapt/simpleshot.h"
#include "medfm/core/safetensors.h"
#include "medfm/eval/metrics.h"
#include "medfm/eval/splits.h"

namespace medfm {
namespace {

SafeTensors open_fixture(const std::string& name) {
  const std::string path = std::string(MEDFM_GOLDEN_DIR) + "/" + name;
  if (!std::filesystem::exists(path)) throw std::runtime_error("missing fixture " + path + ": run scripts/golden");
  return SafeTensors::open(path);
}

std::vector<int> ints(const torch::Tensor& t) {
  auto c = t.to(torch::kInt).contiguous();
  return std::vector<int>(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
}
std::vector<double> doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
std::vector<int64_t> longs(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(MetricsGolden, EqualScikitLearnWithBootstrapIntervals) {
  auto st = open_fixture("metrics.safetensors");
  auto cases = nlohmann::json::parse(st.metadata().at("cases"));
  for (const std::string name : cases) {
    SCOPED_TRACE(name);
    auto exp = nlohmann::json::parse(st.metadata().at(name));
    const int C = exp["n_classes"];
    auto y = ints(st.get(name + ".y_true")), p = ints(st.get(name + ".y_pred"));
    auto s = doubles(st.get(name + ".scores"));
    auto res_t = st.get(name + ".resamples");
    std::vector<std::vector<int64_t>> res;
    for (int64_t r = 0; r < res_t.size(0); ++r) res.push_back(longs(res_t[r]));
    for (const std::string m : {"accuracy", "balanced_accuracy", "f1_weighted", "kappa_quadratic", "auroc_macro"}) {
      SCOPED_TRACE(m);
      const double want = exp[m];
      EXPECT_NEAR(eval::classification_metric(m, y, p, s, C), want, 1e-12);
      auto iv = eval::bootstrap_interval([&](const std::vector<int64_t>& idx) { return eval::classification_metric(m, y, p, s, C, idx); },
                                         static_cast<int64_t>(y.size()), res);
      EXPECT_NEAR(iv.value, want, 1e-12);
      EXPECT_NEAR(iv.low, exp[m + "_ci"][0].get<double>(), 1e-12);
      EXPECT_NEAR(iv.high, exp[m + "_ci"][1].get<double>(), 1e-12);
      EXPECT_EQ(iv.n_resamples, exp[m + "_ci"][2].get<int>());
    }
  }
}

TEST(SplitsGolden, StratifiedGroupKFoldEqualsScikitLearnUnshuffled) {
  auto st = open_fixture("probe.safetensors");
  auto groups = nlohmann::json::parse(st.metadata().at("groups")).get<std::vector<std::string>>();
  auto y = ints(st.get("group_y"));
  auto want = ints(st.get("group_fold"));
  EXPECT_EQ(eval::stratified_group_kfold(y, groups, 5, std::nullopt), want);
}

struct ProbeData {
  torch::Tensor xtr, xte;
  std::vector<int> ytr, yte;
  int C;
  nlohmann::json meta;
  SafeTensors st;
};

ProbeData load_probe() {
  auto st = open_fixture("probe.safetensors");
  ProbeData d{st.get("x_train"), st.get("x_test"), ints(st.get("y_train")), ints(st.get("y_test")),
              std::stoi(st.metadata().at("n_classes")), {}, st};
  return d;
}

double acc(const torch::Tensor& proba, const std::vector<int>& y) {
  return eval::accuracy(y, ints(proba.argmax(1)));
}

TEST(ProbeGolden, LogisticRegressionSolutionEqualsScikitLearn) {
  auto d = load_probe();
  adapt::LogisticOptions o;
  o.c_grid = {std::stod(d.st.metadata().at("tight_c"))};
  o.tol = 1e-8;
  o.max_iter = 5000;
  std::vector<int64_t> all(d.ytr.size());
  std::iota(all.begin(), all.end(), 0);
  // The same convex problem solved in float64: an objective at least as low as sklearn's lbfgs
  // reaches (it stops near the optimum on its own criteria) and the same probabilities within 1e-3.
  auto x64 = d.xtr.to(torch::kDouble);
  auto probe = adapt::fit_logistic_probe(x64, d.ytr, d.C, all, {}, o);
  auto objective = [&](const torch::Tensor& w, const torch::Tensor& b) {
    auto z = torch::addmm(b, probe.scaler.apply(x64), w);
    auto t = torch::tensor(std::vector<int64_t>(d.ytr.begin(), d.ytr.end()));
    return (torch::nn::functional::cross_entropy(z, t) + w.pow(2).sum() / (2 * o.c_grid[0] * d.ytr.size())).item<double>();
  };
  const double ours = objective(probe.model.weight(), probe.model.bias());
  const double theirs = objective(d.st.get("tight_coef"), d.st.get("tight_intercept"));
  EXPECT_LE(ours, theirs + 1e-10);
  EXPECT_GT(ours, theirs - 1e-6);
  auto got = probe.predict_proba(d.xte.to(torch::kDouble));
  auto want = d.st.get("tight_proba");
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-3) << probe.model.iterations() << " iterations";
  // The float32 solve (what probes use) stays close.
  auto p32 = adapt::fit_logistic_probe(d.xtr, d.ytr, d.C, all, {}, o).predict_proba(d.xte).to(torch::kDouble);
  EXPECT_LT((p32 - want).abs().max().item<double>(), 2e-2);
  EXPECT_NEAR(acc(got, d.yte), std::stod(d.st.metadata().at("tight_test_accuracy")), 1.5 / d.yte.size());
}

TEST(ProbeGolden, LinearProbeWithinOnePointOfScikitLearnOnTheSameGrid) {
  auto d = load_probe();
  auto val_mask = d.st.get("val").to(torch::kBool);
  std::vector<int64_t> tr, va;
  for (int64_t i = 0; i < val_mask.size(0); ++i) (val_mask[i].item<bool>() ? va : tr).push_back(i);
  adapt::LogisticOptions o;
  o.c_grid = nlohmann::json::parse(d.st.metadata().at("grid")).get<std::vector<double>>();
  auto probe = adapt::fit_logistic_probe(d.xtr, d.ytr, d.C, tr, va, o);
  auto want_val = nlohmann::json::parse(d.st.metadata().at("val_balanced_accuracy")).get<std::vector<double>>();
  ASSERT_EQ(probe.val_balanced_accuracy.size(), want_val.size());
  for (size_t i = 0; i < want_val.size(); ++i) EXPECT_NEAR(probe.val_balanced_accuracy[i], want_val[i], 0.02) << "C " << o.c_grid[i];
  const double want = std::stod(d.st.metadata().at("test_accuracy"));
  EXPECT_NEAR(acc(probe.predict_proba(d.xte), d.yte), want, 0.01) << "C chosen " << probe.c << " (sklearn "
                                                                   << d.st.metadata().at("best_c") << ")";
}

TEST(ProbeGolden, KnnVotesEqualDinoReference) {
  auto d = load_probe();
  auto got = adapt::knn_proba(d.xtr.to(torch::kDouble), d.ytr, d.C, d.xte.to(torch::kDouble));
  auto want = d.st.get("knn_proba");
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-9);
  // float32 (what probes use): the same predictions.
  auto got32 = adapt::knn_proba(d.xtr, d.ytr, d.C, d.xte);
  EXPECT_EQ(ints(got32.argmax(1)), ints(want.argmax(1)));
  // Chunking does not change the answer: to 1e-12 in double; in float32 to rounding only, since the
  // kernel OpenBLAS picks for a 7-row product rounds differently from the one for all rows (on an AMD
  // EPYC the votes differed by up to 1e-6, beyond allclose's default tolerance for small values).
  adapt::KnnOptions small;
  small.chunk = 7;
  EXPECT_LT((adapt::knn_proba(d.xtr, d.ytr, d.C, d.xte, small) - got32).abs().max().item<float>(), 1e-5);
  EXPECT_LT((adapt::knn_proba(d.xtr.to(torch::kDouble), d.ytr, d.C, d.xte.to(torch::kDouble), small) - got).abs().max().item<double>(),
            1e-12);
}

TEST(ProbeGolden, SimpleShotEqualsNumpyReference) {
  auto d = load_probe();
  auto support = longs(d.st.get("support"));
  std::vector<int> ys;
  for (auto i : support) ys.push_back(d.ytr[i]);
  auto got = adapt::simpleshot_proba(d.xtr.index_select(0, torch::tensor(support)), ys, d.C, d.xte);
  EXPECT_EQ(ints(got.argmax(1)), ints(d.st.get("simpleshot_pred")));
  EXPECT_LT((got.sum(1) - 1).abs().max().item<float>(), 1e-5);
}

}  // namespace
}  // namespace medfm

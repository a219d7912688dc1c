// Classification metrics on class indices 0..C-1, each equal to scikit-learn's on the same input
// (golden test against Debian's python3-sklearn 1.2), and bootstrap confidence intervals.
//   y_true, y_pred: class index per sample; scores: [N*C] row-major per-class scores (probabilities
//   for auroc_macro's multiclass case, as sklearn requires).
// Documented differences from sklearn (where sklearn raises or compresses):
//   - auroc_macro averages one-vs-rest AUROC over the classes present in y_true (sklearn raises when a
//     class is absent); NaN when fewer than two classes are present.
//   - kappa_quadratic weighs disagreement by grade distance over all C grades (sklearn's
//     `cohen_kappa_score(weights="quadratic", labels=range(C))`).
//   - dice of two empty masks is 1.
// Pure functions; thread-safe. Sizes that disagree, or labels outside [0, C), throw Error.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace medfm::eval {

// The predicted class per row of row-major scores [N*C] (first maximum on ties).
std::vector<int> argmax_rows(const std::vector<double>& scores, int n_classes);

// counts[t * C + p]: samples of true class t predicted as p.
std::vector<int64_t> confusion_matrix(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes);

double accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred);
// Mean recall over the classes present in y_true (sklearn's balanced_accuracy_score).
double balanced_accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes);
// Per-class F1 (0 where undefined) weighted by true support (sklearn: average="weighted").
double f1_weighted(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes);
double kappa_quadratic(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes);
// Binary AUROC (ties count 1/2, as sklearn's roc_auc_score); NaN without both classes.
double auroc(const std::vector<uint8_t>& positive, const std::vector<double>& score);
double auroc_macro(const std::vector<int>& y_true, const std::vector<double>& scores, int n_classes);
// 2|A and B| / (|A| + |B|) over binary masks of one size.
double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

// ROC curve points (fpr, tpr) at each distinct threshold, from (0,0) to (1,1), as sklearn's
// roc_curve(drop_intermediate=False).
struct Roc {
  std::vector<double> fpr, tpr;
};
Roc roc_curve(const std::vector<uint8_t>& positive, const std::vector<double>& score);

// Percentile bootstrap. Resample r draws n indices with replacement from Rng({seed, r}).
std::vector<std::vector<int64_t>> bootstrap_resamples(int64_t n, int n_resamples, uint64_t seed);

struct Interval {
  double value = 0;              // the metric on all samples
  double low = 0, high = 0;      // percentile interval of the resampled values
  int n_resamples = 0;           // resamples with a finite value (others, e.g. one class only, are dropped)
};
// metric(indices) -> value on those samples. Percentiles with numpy's linear interpolation.
Interval bootstrap_interval(const std::function<double(const std::vector<int64_t>&)>& metric, int64_t n,
                            const std::vector<std::vector<int64_t>>& resamples, double level = 0.95);

// Mean and population standard deviation (numpy's np.std) over folds or seeds, finite values only.
struct MeanStd {
  double mean = 0, std = 0;
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& v);

// The names probe and report use, in report order.
inline const std::vector<std::string>& classification_metric_names() {
  static const std::vector<std::string> names = {"accuracy", "balanced_accuracy", "auroc_macro", "f1_weighted"};
  return names;
}
// Every classification metric by name on a subset (indices into the vectors; empty: all).
double classification_metric(const std::string& name, const std::vector<int>& y_true, const std::vector<int>& y_pred,
                             const std::vector<double>& scores, int n_classes, const std::vector<int64_t>& idx = {});

}  // namespace medfm::eval

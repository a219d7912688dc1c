#include "medfm/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "medfm/core/error.h"
#include "medfm/core/rng.h"

namespace medfm::eval {

namespace {

void check_pair(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes) {
  MEDFM_CHECK(y_true.size() == y_pred.size(), "metrics: ", y_true.size(), " labels but ", y_pred.size(), " predictions");
  MEDFM_CHECK(n_classes > 0, "metrics: no classes");
  for (size_t i = 0; i < y_true.size(); ++i)
    MEDFM_CHECK(y_true[i] >= 0 && y_true[i] < n_classes && y_pred[i] >= 0 && y_pred[i] < n_classes, "metrics: sample ", i,
                " has a class outside [0, ", n_classes, ")");
}

// Average ranks (1-based) with ties sharing their mean rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double r = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = r;
    i = j + 1;
  }
  return rank;
}

template <typename T>
std::vector<T> pick(const std::vector<T>& v, const std::vector<int64_t>& idx, size_t stride = 1) {
  std::vector<T> out;
  out.reserve(idx.size() * stride);
  for (int64_t i : idx) out.insert(out.end(), v.begin() + i * stride, v.begin() + (i + 1) * stride);
  return out;
}

}  // namespace

std::vector<int> argmax_rows(const std::vector<double>& p, int n_classes) {
  MEDFM_CHECK(n_classes > 0 && p.size() % static_cast<size_t>(n_classes) == 0, "metrics: ", p.size(), " scores for ", n_classes, " classes");
  std::vector<int> out(p.size() / n_classes);
  for (size_t i = 0; i < out.size(); ++i) {
    const auto row = p.begin() + static_cast<std::ptrdiff_t>(i * n_classes);
    out[i] = static_cast<int>(std::max_element(row, row + n_classes) - row);
  }
  return out;
}

std::vector<int64_t> confusion_matrix(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes) {
  check_pair(y_true, y_pred, n_classes);
  std::vector<int64_t> cm(static_cast<size_t>(n_classes) * n_classes, 0);
  for (size_t i = 0; i < y_true.size(); ++i) ++cm[static_cast<size_t>(y_true[i]) * n_classes + y_pred[i]];
  return cm;
}

double accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred) {
  MEDFM_CHECK(y_true.size() == y_pred.size(), "metrics: ", y_true.size(), " labels but ", y_pred.size(), " predictions");
  if (y_true.empty()) return NAN;
  int64_t hit = 0;
  for (size_t i = 0; i < y_true.size(); ++i) hit += y_true[i] == y_pred[i];
  return static_cast<double>(hit) / static_cast<double>(y_true.size());
}

double balanced_accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes) {
  auto cm = confusion_matrix(y_true, y_pred, n_classes);
  double sum = 0;
  int present = 0;
  for (int t = 0; t < n_classes; ++t) {
    int64_t support = 0;
    for (int p = 0; p < n_classes; ++p) support += cm[t * n_classes + p];
    if (!support) continue;
    sum += static_cast<double>(cm[t * n_classes + t]) / static_cast<double>(support);
    ++present;
  }
  return present ? sum / present : NAN;
}

double f1_weighted(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes) {
  auto cm = confusion_matrix(y_true, y_pred, n_classes);
  double sum = 0;
  int64_t total = 0;
  for (int c = 0; c < n_classes; ++c) {
    int64_t support = 0, predicted = 0;
    for (int k = 0; k < n_classes; ++k) {
      support += cm[c * n_classes + k];
      predicted += cm[k * n_classes + c];
    }
    const int64_t tp = cm[c * n_classes + c];
    // F1 = 2tp / (support + predicted); 0 when both are 0 (sklearn's zero_division).
    const double f1 = support + predicted ? 2.0 * static_cast<double>(tp) / static_cast<double>(support + predicted) : 0.0;
    sum += f1 * static_cast<double>(support);
    total += support;
  }
  return total ? sum / static_cast<double>(total) : NAN;
}

double kappa_quadratic(const std::vector<int>& y_true, const std::vector<int>& y_pred, int n_classes) {
  auto cm = confusion_matrix(y_true, y_pred, n_classes);
  const double n = static_cast<double>(y_true.size());
  if (n == 0) return NAN;
  std::vector<double> rows(n_classes, 0), cols(n_classes, 0);
  for (int t = 0; t < n_classes; ++t)
    for (int p = 0; p < n_classes; ++p) {
      rows[t] += static_cast<double>(cm[t * n_classes + p]);
      cols[p] += static_cast<double>(cm[t * n_classes + p]);
    }
  double observed = 0, expected = 0;
  for (int t = 0; t < n_classes; ++t)
    for (int p = 0; p < n_classes; ++p) {
      const double w = static_cast<double>((t - p) * (t - p));
      observed += w * static_cast<double>(cm[t * n_classes + p]);
      expected += w * rows[t] * cols[p] / n;
    }
  return expected > 0 ? 1.0 - observed / expected : NAN;
}

double auroc(const std::vector<uint8_t>& positive, const std::vector<double>& score) {
  MEDFM_CHECK(positive.size() == score.size(), "metrics: ", positive.size(), " labels but ", score.size(), " scores");
  auto rank = average_ranks(score);
  double n_pos = 0, rank_pos = 0;
  for (size_t i = 0; i < rank.size(); ++i)
    if (positive[i]) {
      n_pos += 1;
      rank_pos += rank[i];
    }
  const double n_neg = static_cast<double>(rank.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return NAN;
  // Mann-Whitney U / (n_pos n_neg): the area under the step ROC with ties as diagonal segments.
  return (rank_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

double auroc_macro(const std::vector<int>& y_true, const std::vector<double>& scores, int n_classes) {
  MEDFM_CHECK(scores.size() == y_true.size() * static_cast<size_t>(n_classes), "metrics: ", scores.size(),
              " scores for ", y_true.size(), " samples of ", n_classes, " classes");
  std::vector<int64_t> support(n_classes, 0);
  for (int y : y_true) {
    MEDFM_CHECK(y >= 0 && y < n_classes, "metrics: class ", y, " outside [0, ", n_classes, ")");
    ++support[y];
  }
  std::vector<uint8_t> pos(y_true.size());
  std::vector<double> s(y_true.size());
  if (n_classes == 2) {  // binary: the positive class's score alone (sklearn's binary case)
    for (size_t i = 0; i < y_true.size(); ++i) {
      pos[i] = y_true[i] == 1;
      s[i] = scores[i * 2 + 1];
    }
    return auroc(pos, s);
  }
  double sum = 0;
  int used = 0;
  for (int c = 0; c < n_classes; ++c) {
    if (!support[c] || support[c] == static_cast<int64_t>(y_true.size())) continue;
    for (size_t i = 0; i < y_true.size(); ++i) {
      pos[i] = y_true[i] == c;
      s[i] = scores[i * n_classes + c];
    }
    sum += auroc(pos, s);
    ++used;
  }
  return used ? sum / used : NAN;  // one class present: undefined
}

double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  MEDFM_CHECK(a.size() == b.size(), "metrics: masks of ", a.size(), " and ", b.size(), " elements");
  int64_t both = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    na += a[i] != 0;
    nb += b[i] != 0;
    both += a[i] && b[i];
  }
  return na + nb ? 2.0 * static_cast<double>(both) / static_cast<double>(na + nb) : 1.0;
}

Roc roc_curve(const std::vector<uint8_t>& positive, const std::vector<double>& score) {
  MEDFM_CHECK(positive.size() == score.size(), "metrics: ", positive.size(), " labels but ", score.size(), " scores");
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  double n_pos = 0;
  for (auto p : positive) n_pos += p != 0;
  const double n_neg = static_cast<double>(score.size()) - n_pos;
  Roc r{{0.0}, {0.0}};
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    (positive[order[i]] ? tp : fp) += 1;
    if (i + 1 < order.size() && score[order[i + 1]] == score[order[i]]) continue;
    r.fpr.push_back(n_neg ? fp / n_neg : NAN);
    r.tpr.push_back(n_pos ? tp / n_pos : NAN);
  }
  return r;
}

std::vector<std::vector<int64_t>> bootstrap_resamples(int64_t n, int n_resamples, uint64_t seed) {
  MEDFM_CHECK(n > 0 && n_resamples > 0, "bootstrap: ", n_resamples, " resamples of ", n, " samples");
  std::vector<std::vector<int64_t>> out(n_resamples, std::vector<int64_t>(n));
  for (int r = 0; r < n_resamples; ++r) {
    Rng rng({seed, static_cast<uint64_t>(r)});
    for (auto& i : out[r]) i = rng.below(n);
  }
  return out;
}

namespace {
// numpy.percentile(v, q) with the default linear interpolation; v sorted.
double percentile(const std::vector<double>& v, double q) {
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}
}  // namespace

Interval bootstrap_interval(const std::function<double(const std::vector<int64_t>&)>& metric, int64_t n,
                            const std::vector<std::vector<int64_t>>& resamples, double level) {
  MEDFM_CHECK(level > 0 && level < 1, "bootstrap: level ", level, " is not in (0, 1)");
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  Interval iv;
  iv.value = metric(all);
  std::vector<double> vals;
  vals.reserve(resamples.size());
  for (const auto& r : resamples) {
    const double v = metric(r);
    if (std::isfinite(v)) vals.push_back(v);
  }
  iv.n_resamples = static_cast<int>(vals.size());
  if (vals.empty()) {
    iv.low = iv.high = NAN;
    return iv;
  }
  std::sort(vals.begin(), vals.end());
  iv.low = percentile(vals, 50.0 * (1.0 - level));
  iv.high = percentile(vals, 100.0 - 50.0 * (1.0 - level));
  return iv;
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd m;
  double sum = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      sum += x;
      ++m.n;
    }
  if (!m.n) return {NAN, NAN, 0};
  m.mean = sum / m.n;
  double ss = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(ss / m.n);
  return m;
}

double classification_metric(const std::string& name, const std::vector<int>& y_true, const std::vector<int>& y_pred,
                             const std::vector<double>& scores, int n_classes, const std::vector<int64_t>& idx) {
  if (!idx.empty()) {
    return classification_metric(name, pick(y_true, idx), pick(y_pred, idx),
                                 scores.empty() ? scores : pick(scores, idx, n_classes), n_classes);
  }
  if (name == "accuracy") return accuracy(y_true, y_pred);
  if (name == "balanced_accuracy") return balanced_accuracy(y_true, y_pred, n_classes);
  if (name == "f1_weighted") return f1_weighted(y_true, y_pred, n_classes);
  if (name == "kappa_quadratic") return kappa_quadratic(y_true, y_pred, n_classes);
  if (name == "auroc_macro") return scores.empty() ? NAN : auroc_macro(y_true, scores, n_classes);
  throw ConfigError("metrics: unknown metric '" + name + "' (accuracy, balanced_accuracy, f1_weighted, kappa_quadratic, auroc_macro)");
}

}  // namespace medfm::eval

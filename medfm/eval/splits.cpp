#include "medfm/eval/splits.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <unordered_map>

#include "medfm/core/error.h"
#include "medfm/core/rng.h"

namespace medfm::eval {

namespace {

bool is_integer(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtoll(s.c_str(), &end, 10);
  return *end == '\0';
}

// Names sorted numerically when all are integers ("2" < "10"), else as strings.
void sort_class_names(std::vector<std::string>& names) {
  const bool numeric = std::all_of(names.begin(), names.end(), is_integer);
  if (numeric)
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  else
    std::sort(names.begin(), names.end());
}

const std::vector<std::string>& column(const std::map<std::string, std::vector<std::string>>& columns, const std::string& name,
                                       size_t n, const std::string& origin) {
  auto it = columns.find(name);
  if (it == columns.end()) {
    std::string have;
    for (const auto& [k, v] : columns) have += (have.empty() ? "" : ", ") + k;
    throw ConfigError(origin + ": no column '" + name + "' (has: " + (have.empty() ? "none" : have) + ")");
  }
  MEDFM_CHECK(it->second.size() == n, origin, ": column '", name, "' has ", it->second.size(), " values for ", n, " rows");
  return it->second;
}

}  // namespace

LabelSet make_label_set(const std::vector<std::string>& ids, const std::map<std::string, std::vector<std::string>>& columns,
                        const LabelColumns& names, const std::string& origin) {
  const size_t n = ids.size();
  const auto& label = column(columns, names.label, n, origin);
  const std::vector<std::string>* patient = names.patient.empty() ? nullptr : &column(columns, names.patient, n, origin);
  const std::vector<std::string>* split = names.split.empty() ? nullptr : &column(columns, names.split, n, origin);
  LabelSet s;
  std::vector<std::string> seen;
  for (size_t i = 0; i < n; ++i)
    if (!label[i].empty()) seen.push_back(label[i]);
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  sort_class_names(seen);
  s.classes = seen;
  MEDFM_CHECK(s.classes.size() >= 2, origin, ": column '", names.label, "' has ", s.classes.size(),
              " class(es); a probe needs at least two");
  std::unordered_map<std::string, int> index;
  for (size_t c = 0; c < s.classes.size(); ++c) index[s.classes[c]] = static_cast<int>(c);
  for (size_t i = 0; i < n; ++i) {
    if (label[i].empty()) {
      ++s.n_unlabelled;
      continue;
    }
    s.rows.push_back(static_cast<int64_t>(i));
    s.ids.push_back(ids[i]);
    s.y.push_back(index.at(label[i]));
    if (patient) {
      MEDFM_CHECK(!(*patient)[i].empty(), origin, ": row ", i, " (id '", ids[i], "') has an empty '", names.patient, "'");
      s.patient.push_back((*patient)[i]);
    } else {
      s.patient.push_back(ids[i]);
    }
    if (split) {
      const auto& v = (*split)[i];
      MEDFM_CHECK(v == "train" || v == "val" || v == "test", origin, ": row ", i, " (id '", ids[i], "') has split '", v,
                  "' (train, val or test)");
      s.split.push_back(v);
    }
  }
  return s;
}

void align_classes(const LabelSet& a, LabelSet& b, const std::string& origin_b) {
  std::unordered_map<std::string, int> index;
  for (size_t c = 0; c < a.classes.size(); ++c) index[a.classes[c]] = static_cast<int>(c);
  std::vector<int> map(b.classes.size());
  for (size_t c = 0; c < b.classes.size(); ++c) {
    auto it = index.find(b.classes[c]);
    MEDFM_CHECK(it != index.end(), origin_b, ": class '", b.classes[c], "' has no training samples");
    map[c] = it->second;
  }
  for (auto& y : b.y) y = map[y];
  b.classes = a.classes;
}

std::vector<int> stratified_group_kfold(const std::vector<int>& y, const std::vector<std::string>& groups, int k,
                                        std::optional<uint64_t> seed) {
  MEDFM_CHECK(y.size() == groups.size(), "splits: ", y.size(), " labels but ", groups.size(), " groups");
  MEDFM_CHECK(k >= 2, "splits: ", k, " folds (need at least 2)");
  const int n_classes = y.empty() ? 0 : *std::max_element(y.begin(), y.end()) + 1;
  // Groups in sorted order (as np.unique), class counts per group and overall.
  std::vector<std::string> names(groups);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  MEDFM_CHECK(static_cast<int>(names.size()) >= k, "splits: ", names.size(), " patients cannot fill ", k, " folds");
  std::unordered_map<std::string, size_t> gidx;
  for (size_t g = 0; g < names.size(); ++g) gidx[names[g]] = g;
  std::vector<std::vector<double>> counts(names.size(), std::vector<double>(n_classes, 0.0));
  std::vector<double> total(n_classes, 0.0);
  std::vector<size_t> of(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    of[i] = gidx.at(groups[i]);
    counts[of[i]][y[i]] += 1;
    total[y[i]] += 1;
  }
  // Classes absent from y (ids never used) would divide by zero: they take no part in the spread.
  std::vector<int> present;
  for (int c = 0; c < n_classes; ++c)
    if (total[c] > 0) present.push_back(c);
  std::vector<size_t> order(names.size());
  std::iota(order.begin(), order.end(), 0);
  if (seed) {
    Rng rng({*seed, 0x5eedf01dULL});
    rng.shuffle(order);
  }
  auto pop_std = [](const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size()));
  };
  std::vector<double> spread(names.size());
  for (size_t g = 0; g < names.size(); ++g) {
    std::vector<double> v;
    for (int c : present) v.push_back(counts[g][c]);
    spread[g] = pop_std(v);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return spread[a] > spread[b]; });
  std::vector<std::vector<double>> fold_counts(k, std::vector<double>(n_classes, 0.0));
  std::vector<int> group_fold(names.size(), 0);
  std::vector<double> share(k);
  for (size_t g : order) {
    int best = -1;
    double best_eval = INFINITY, best_size = INFINITY;
    for (int f = 0; f < k; ++f) {
      double eval = 0;
      for (int c : present) {
        for (int j = 0; j < k; ++j) share[j] = (fold_counts[j][c] + (j == f ? counts[g][c] : 0.0)) / total[c];
        eval += pop_std(share);
      }
      eval /= static_cast<double>(present.size());
      double size = 0;
      for (int c : present) size += fold_counts[f][c];
      // np.isclose(eval, best_eval): |a - b| <= 1e-8 + 1e-5 |b|
      const bool close = std::isfinite(best_eval) && std::abs(eval - best_eval) <= 1e-8 + 1e-5 * std::abs(best_eval);
      if (eval < best_eval || (close && size < best_size)) {
        best = f;
        best_eval = eval;
        best_size = size;
      }
    }
    group_fold[g] = best;
    for (int c = 0; c < n_classes; ++c) fold_counts[best][c] += counts[g][c];
  }
  std::vector<int> fold(y.size());
  for (size_t i = 0; i < y.size(); ++i) fold[i] = group_fold[of[i]];
  return fold;
}

void check_disjoint(const std::vector<int64_t>& a, const std::vector<int64_t>& b, const std::vector<std::string>& groups,
                    const std::vector<std::string>& ids, const std::string& what) {
  std::unordered_map<std::string, int64_t> first;
  for (int64_t i : a) first.emplace(groups.at(i), i);
  for (int64_t j : b) {
    auto it = first.find(groups.at(j));
    if (it == first.end()) continue;
    throw Error(what + ": patient '" + it->first + "' is on both sides (id '" + ids.at(it->second) + "' and id '" + ids.at(j) +
                "'); split by patient");
  }
}

}  // namespace medfm::eval

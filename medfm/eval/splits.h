// Labels and patient-grouped splits for evaluation.
//   LabelSet: one row per labelled sample: its row in the feature file, class index (classes sorted
//   by name, or numerically when every name is an integer), patient (the row's id when there is no
//   patient column) and optional fixed split (train | val | test).
//   stratified_group_kfold: scikit-learn's StratifiedGroupKFold algorithm (greedy: groups in order
//   of decreasing class-count spread go to the fold that keeps every class's share most even, ties
//   to the smaller fold). Without a seed the result equals sklearn's shuffle=False; with one the
//   groups are first put in an order drawn from Rng({seed}).
//   check_disjoint: a patient on two sides of a split is an Error naming the patient and rows.
// Pure functions; thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace medfm::eval {

struct LabelSet {
  std::vector<std::string> classes;   // class names; index = class id
  std::vector<int64_t> rows;          // row in the feature file
  std::vector<std::string> ids;       // sample id per row
  std::vector<int> y;                 // class id per row
  std::vector<std::string> patient;   // grouping key per row
  std::vector<std::string> split;     // per row, when a split column was given; else empty
  int64_t n_unlabelled = 0;           // feature rows without a label (left out)
  int n_classes() const { return static_cast<int>(classes.size()); }
  size_t size() const { return y.size(); }
};

// Columns by name, each one value per feature row (the feature file's meta/* columns, or a labels
// CSV joined by id). Rows with an empty label are left out and counted. `origin` names the source
// in errors. Throws ConfigError when a named column is missing, Error when fewer than two classes
// remain or a split value is not train/val/test.
struct LabelColumns {
  std::string label = "label", patient, split;
};
LabelSet make_label_set(const std::vector<std::string>& ids, const std::map<std::string, std::vector<std::string>>& columns,
                        const LabelColumns& names, const std::string& origin);

// Reorders `classes` of `b` to those of `a` (train and test files must share names). Throws
// Error naming the class and file when b has a class a lacks.
void align_classes(const LabelSet& a, LabelSet& b, const std::string& origin_b);

// v[idx[0]], v[idx[1]], ...
template <typename T>
std::vector<T> take(const std::vector<T>& v, const std::vector<int64_t>& idx) {
  std::vector<T> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(v.at(static_cast<size_t>(i)));
  return out;
}

// Fold per sample (0..k-1). Throws Error when k < 2 or there are fewer groups than folds.
std::vector<int> stratified_group_kfold(const std::vector<int>& y, const std::vector<std::string>& groups, int k,
                                        std::optional<uint64_t> seed);

// Throws Error when a group appears in both index sets: "<what>: patient 'P' is in both train
// (row 3) and test (row 17)".
void check_disjoint(const std::vector<int64_t>& a, const std::vector<int64_t>& b, const std::vector<std::string>& groups,
                    const std::vector<std::string>& ids, const std::string& what);

}  // namespace medfm::eval

// A classification report directory, shared by `medfm probe`, `medfm mil` and `medfm finetune`:
//   report.json      every number: metrics on the pooled test predictions with percentile-bootstrap
//                    95% CIs (and mean +- std over folds), the confusion matrix, per-fold entries,
//                    plus the caller's fields (inputs' hashes, resolved config, method details)
//   report.md        the same for people, with the figures
//   predictions.csv  id, patient, fold, label, predicted, p_<class>...
//   confusion.png, roc.png
// Files are written atomically; report.json last (its presence marks a finished report). Deterministic:
// the same input gives byte-identical files.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace medfm::eval {

struct ClassificationResults {
  std::string title;                    // e.g. "medfm probe linear"
  std::vector<std::string> classes;
  // Pooled test predictions, one per test row (each row tested once).
  std::vector<std::string> ids, patients;
  std::vector<int64_t> fold;
  std::vector<int> y_true;
  std::vector<double> scores;           // [n * C], rows sum to 1
  // Per evaluation: {"fold": k, ...the caller's details}; the report adds "metrics" on the rows of
  // fold k.
  nlohmann::json folds = nlohmann::json::array();
  bool cross_validation = false;        // report fold mean +- std
  int bootstrap = 1000;
  int64_t seed = 0;
  bool ordinal = false;                 // add quadratic-weighted kappa
};

// v with `digits` decimals; "n/a" when not finite.
std::string format_fixed(double v, int digits = 4);

// The metric names reported for these options, in order.
std::vector<std::string> report_metric_names(bool ordinal);

struct ReportText {
  nlohmann::json fields = nlohmann::json::object();  // merged into report.json's top level
  std::string md_head;                               // report.md after the title (protocol, sizes)
  std::string md_tail;                               // report.md after the metrics table
};

// Writes the directory; returns the metric values on the pooled predictions, in report order.
std::vector<std::pair<std::string, double>> write_classification_report(const std::string& dir, const ClassificationResults& r,
                                                                        const ReportText& text);

}  // namespace medfm::eval

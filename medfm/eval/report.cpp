#include "medfm/eval/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "medfm/core/atomic_file.h"
#include "medfm/core/error.h"
#include "medfm/eval/chart.h"
#include "medfm/eval/metrics.h"

namespace medfm::eval {

using nlohmann::json;

namespace {

// One-vs-rest ROC: the positive class alone for two classes; otherwise the macro mean TPR on a
// common FPR grid, with one curve per class up to 6 classes.
void draw_roc(const std::string& path, const std::string& title, const ClassificationResults& r, double auc) {
  const int C = static_cast<int>(r.classes.size());
  const size_t n = r.y_true.size();
  std::vector<Series> roc;
  auto curve = [&](int c) {
    std::vector<uint8_t> pos(n);
    std::vector<double> s(n);
    for (size_t i = 0; i < n; ++i) {
      pos[i] = r.y_true[i] == c;
      s[i] = r.scores[i * C + c];
    }
    return roc_curve(pos, s);
  };
  if (C == 2) {
    auto c = curve(1);
    if (std::isfinite(c.fpr.back()) && std::isfinite(c.tpr.back())) roc.push_back({r.classes[1] + " (AUC " + format_fixed(auc, 3) + ")", c.fpr, c.tpr});
  } else {
    std::vector<double> grid(101), mean_tpr(101, 0.0);
    int used = 0;
    for (int i = 0; i <= 100; ++i) grid[i] = i / 100.0;
    for (int c = 0; c < C; ++c) {
      auto k = curve(c);
      if (!std::isfinite(k.fpr.back()) || !std::isfinite(k.tpr.back())) continue;  // class absent or alone
      ++used;
      for (int g = 0; g <= 100; ++g) {
        size_t j = 0;
        while (j + 1 < k.fpr.size() && k.fpr[j + 1] <= grid[g]) ++j;
        mean_tpr[g] += k.tpr[j];
      }
      if (C <= 6) roc.push_back({r.classes[c], k.fpr, k.tpr});
    }
    if (used) {
      for (auto& t : mean_tpr) t /= used;
      roc.insert(roc.begin(), {"macro mean (AUC " + format_fixed(auc, 3) + ")", grid, mean_tpr});
    }
  }
  if (roc.empty()) return;
  ChartOptions o;
  o.title = title + ": ROC (one-vs-rest)";
  o.x_label = "false positive rate";
  o.y_label = "true positive rate";
  o.x_lo = o.y_lo = 0;
  o.x_hi = o.y_hi = 1;
  o.diagonal = true;
  o.legend_bottom = true;
  o.width = o.height = 560;
  write_line_chart(path, roc, o);
}

}  // namespace

std::string format_fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::vector<std::string> report_metric_names(bool ordinal) {
  auto names = classification_metric_names();
  if (ordinal) names.push_back("kappa_quadratic");
  return names;
}

std::vector<std::pair<std::string, double>> write_classification_report(const std::string& dir, const ClassificationResults& r,
                                                                        const ReportText& text) {
  const int C = static_cast<int>(r.classes.size());
  const int64_t n = static_cast<int64_t>(r.y_true.size());
  MEDFM_CHECK(C >= 2 && n > 0, "report: ", n, " test rows of ", C, " classes");
  MEDFM_CHECK(r.scores.size() == static_cast<size_t>(n) * C && r.ids.size() == static_cast<size_t>(n) &&
                  r.patients.size() == static_cast<size_t>(n) && r.fold.size() == static_cast<size_t>(n),
              "report: predictions of different lengths");
  const auto names = report_metric_names(r.ordinal);
  const auto y_pred = argmax_rows(r.scores, C);
  auto resamples = r.bootstrap > 0 ? bootstrap_resamples(n, r.bootstrap, static_cast<uint64_t>(r.seed)) : std::vector<std::vector<int64_t>>{};
  // Each evaluation's metrics on its own test rows (entries matched by "fold").
  json folds = r.folds;
  for (auto& entry : folds) {
    const int64_t k = entry.at("fold").get<int64_t>();
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i)
      if (r.fold[i] == k) rows.push_back(i);
    json fm = json::object();
    if (!rows.empty())
      for (const auto& m : names) fm[m] = classification_metric(m, r.y_true, y_pred, r.scores, C, rows);
    entry["metrics"] = fm;
  }
  std::vector<std::pair<std::string, double>> values;
  std::map<std::string, Interval> ci;
  std::map<std::string, MeanStd> fold_stats;
  json mj = json::object();
  for (const auto& m : names) {
    auto iv = bootstrap_interval(
        [&](const std::vector<int64_t>& idx) { return classification_metric(m, r.y_true, y_pred, r.scores, C, idx); }, n, resamples);
    ci[m] = iv;
    mj[m] = {{"value", iv.value}, {"ci_low", iv.low}, {"ci_high", iv.high}, {"n_resamples", iv.n_resamples}};
    if (r.cross_validation) {
      std::vector<double> v;
      for (const auto& f : folds) v.push_back(f["metrics"].value(m, NAN));
      fold_stats[m] = mean_std(v);
      mj[m]["fold_mean"] = fold_stats[m].mean;
      mj[m]["fold_std"] = fold_stats[m].std;
    }
    values.emplace_back(m, iv.value);
  }
  auto cm = confusion_matrix(r.y_true, y_pred, C);
  json cmj = json::array();
  for (int t = 0; t < C; ++t) cmj.push_back(std::vector<int64_t>(cm.begin() + t * C, cm.begin() + (t + 1) * C));
  json report = text.fields;
  report["classes"] = r.classes;
  report["n_test"] = n;
  report["metrics"] = mj;
  report["confidence"] = {{"level", 0.95}, {"method", "percentile bootstrap over test rows"}, {"resamples", r.bootstrap}, {"seed", r.seed}};
  report["folds"] = folds;
  report["confusion_matrix"] = cmj;

  std::filesystem::create_directories(dir);
  {
    std::ostringstream csv;
    csv << "id,patient,fold,label,predicted";
    for (const auto& c : r.classes) csv << ",p_" << c;
    csv << "\n";
    for (int64_t i = 0; i < n; ++i) {
      csv << r.ids[i] << "," << r.patients[i] << "," << r.fold[i] << "," << r.classes[r.y_true[i]] << "," << r.classes[y_pred[i]];
      for (int c = 0; c < C; ++c) csv << "," << format_fixed(r.scores[i * C + c], 6);
      csv << "\n";
    }
    write_text_atomic(dir + "/predictions.csv", csv.str());
  }
  write_confusion_matrix(dir + "/confusion.png", cm, r.classes, r.title + ": confusion matrix (" + std::to_string(n) + " test rows)");
  draw_roc(dir + "/roc.png", r.title, r, ci["auroc_macro"].value);
  {
    std::ostringstream md;
    md << "# " << r.title << "\n\n" << text.md_head;
    md << "| metric | value | 95% CI |" << (r.cross_validation ? " folds mean +- std |" : "") << "\n|---|---|---|"
       << (r.cross_validation ? "---|" : "") << "\n";
    for (const auto& m : names) {
      md << "| " << m << " | " << format_fixed(ci[m].value) << " | " << format_fixed(ci[m].low) << " - " << format_fixed(ci[m].high) << " |";
      if (r.cross_validation) md << " " << format_fixed(fold_stats[m].mean) << " +- " << format_fixed(fold_stats[m].std) << " |";
      md << "\n";
    }
    md << "\nCIs: percentile bootstrap over the " << n << " test rows, " << r.bootstrap << " resamples (seed " << r.seed << ").\n";
    md << text.md_tail;
    md << "\n![confusion matrix](confusion.png) ![ROC](roc.png)\n";
    if (report.contains("inputs")) {
      md << "\nInputs:\n";
      const auto& ins = report["inputs"];
      for (size_t i = 0; i < ins.size() && i < 10; ++i)
        md << "- `" << ins[i]["path"].get<std::string>() << "` sha256 " << ins[i]["sha256"].get<std::string>() << "\n";
      if (ins.size() > 10) md << "- ... and " << ins.size() - 10 << " more (report.json lists every file)\n";
    }
    write_text_atomic(dir + "/report.md", md.str());
  }
  write_text_atomic(dir + "/report.json", report.dump(2) + "\n");
  return values;
}

}  // namespace medfm::eval

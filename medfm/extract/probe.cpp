#include "medfm/extract/probe.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "medfm/adapt/knn.h"
#include "medfm/adapt/logistic.h"
#include "medfm/adapt/mlp_probe.h"
#include "medfm/adapt/simpleshot.h"
#include "medfm/core/error.h"
#include "medfm/core/hash.h"
#include "medfm/eval/chart.h"
#include "medfm/eval/metrics.h"
#include "medfm/eval/report.h"
#include "medfm/eval/splits.h"
#include "medfm/extract/h5_feature_store.h"
#include "medfm/extract/labels_csv.h"

namespace medfm::extract {

namespace fs = std::filesystem;
using nlohmann::json;

void ProbeJob::bind(Config& cfg) {
  cfg.bind("probe.train", train, "training features (HDF5 from medfm embed)");
  cfg.bind("probe.test", test, "test features (HDF5)");
  cfg.bind("probe.features", features, "one feature file for cross-validation or a split column");
  cfg.bind("probe.labels", labels, "labels CSV with an id column (default: the files' meta/ columns)");
  cfg.bind("probe.label_column", label_column, "column holding the class");
  cfg.bind("probe.patient_column", patient_column, "column grouping rows by patient (splits never divide a patient)");
  cfg.bind("probe.split_column", split_column, "column with train / val / test per row");
  cfg.bind("probe.method", method, "linear | knn | simpleshot | mlp");
  cfg.bind("probe.mlp_hidden", mlp_hidden, "mlp: hidden width");
  cfg.bind("probe.mlp_epochs", mlp_epochs, "mlp: most epochs (the best on the validation rows is kept)");
  cfg.bind("probe.folds", folds, "cross-validation folds (with probe.features)");
  cfg.bind("probe.seed", seed, "seed of splits, episodes and bootstrap");
  cfg.bind("probe.val_folds", val_folds, "validation = 1 of this many patient-grouped folds of the training rows");
  cfg.bind("probe.c_min", c_min, "linear: smallest inverse L2 strength C");
  cfg.bind("probe.c_max", c_max, "linear: largest C");
  cfg.bind("probe.c_steps", c_steps, "linear: log-spaced C values");
  cfg.bind("probe.max_iter", max_iter, "linear: L-BFGS iterations");
  cfg.bind("probe.k", k, "knn: neighbours");
  cfg.bind("probe.temperature", temperature, "knn: vote temperature");
  cfg.bind("probe.shots", shots, "simpleshot: support rows per class in few-shot episodes");
  cfg.bind("probe.episodes", episodes, "simpleshot: episodes per shot count");
  cfg.bind("probe.bootstrap", bootstrap, "bootstrap resamples for the 95% CIs");
  cfg.bind("probe.ordinal", ordinal, "classes are ordered grades: add quadratic-weighted kappa");
  cfg.bind("probe.out", out, "report directory");
}

namespace {

struct Part {
  std::string path;
  at::Tensor x;  // [n, D] labelled rows only
  eval::LabelSet labels;
};

Part load_part(const std::string& path, const LabelsCsv* csv, std::vector<bool>* used, const eval::LabelColumns& names) {
  auto f = read_features(path);
  MEDFM_CHECK(!f.ids.empty() || f.features.size(0) == 0, "probe: '", path, "' has no /ids (slide tile files hold tiles, not samples)");
  MEDFM_CHECK(f.features.size(0) > 0, "probe: '", path, "' has no rows");
  // NaN / Inf rows are named, not silently dropped.
  auto bad = (~torch::isfinite(f.features)).any(1).nonzero();
  if (bad.size(0) > 0) {
    std::ostringstream rows;
    for (int64_t i = 0; i < std::min<int64_t>(bad.size(0), 5); ++i) {
      const int64_t r = bad[i][0].item<int64_t>();
      rows << (i ? ", " : "") << r << " ('" << f.ids[r] << "')";
    }
    throw Error("probe: '" + path + "': " + std::to_string(bad.size(0)) + " row(s) with NaN or Inf features: " + rows.str() +
                (bad.size(0) > 5 ? ", ..." : ""));
  }
  std::vector<bool> used_here;
  auto columns = csv ? csv->columns_for(f.ids, used_here) : std::move(f.columns);
  if (csv)
    for (size_t r = 0; r < used_here.size(); ++r) (*used)[r] = (*used)[r] || used_here[r];
  Part p;
  p.path = path;
  p.labels = eval::make_label_set(f.ids, columns, names, "probe: '" + (csv ? path + "' joined with the labels CSV" : path + "'"));
  p.x = f.features.index_select(0, torch::tensor(p.labels.rows, torch::kLong));
  return p;
}

at::Tensor rows(const at::Tensor& x, const std::vector<int64_t>& idx) { return x.index_select(0, torch::tensor(idx, torch::kLong)); }

std::vector<double> to_vector(const at::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
// One fit and prediction: training rows (with their patients, for the validation fold), test rows.
struct Fit {
  std::vector<double> scores;  // [M*C]
  json detail;                 // method-specific (chosen C, grid ...)
};

// Which rows of the evaluation table train, validate (fixed validation rows from a split column;
// else empty) and test.
struct Split {
  std::vector<int64_t> train, val, test;
  std::vector<int64_t> train_and_val() const {
    std::vector<int64_t> all(train);
    all.insert(all.end(), val.begin(), val.end());
    return all;
  }
};

// Training rows and the rows that choose the probe's setting (C, the MLP's epoch): the split's
// fixed validation rows, else one of val_folds patient-grouped folds of the training rows.
std::pair<std::vector<int64_t>, std::vector<int64_t>> fit_and_validation(const ProbeJob& job, const eval::LabelSet& labels,
                                                                         const Split& sp, int64_t seed) {
  if (!sp.val.empty()) return {sp.train, sp.val};
  std::vector<int64_t> tr, va;
  auto fold = eval::stratified_group_kfold(eval::take(labels.y, sp.train), eval::take(labels.patient, sp.train), job.val_folds,
                                           static_cast<uint64_t>(seed));
  for (size_t i = 0; i < sp.train.size(); ++i) (fold[i] == 0 ? va : tr).push_back(sp.train[i]);
  return {tr, va};
}

Fit fit_predict(const ProbeJob& job, const at::Tensor& x, const eval::LabelSet& labels, const Split& sp, int64_t fold_seed) {
  const int C = labels.n_classes();
  Fit f;
  if (job.method == "linear" || job.method == "mlp") {
    adapt::LogisticOptions lo;
    lo.c_grid = adapt::log_grid(job.c_min, job.c_max, job.c_steps);
    lo.max_iter = job.max_iter;
    // One C needs no validation rows; the MLP always uses them to pick its epoch.
    auto [tr, va] = job.method == "linear" && lo.c_grid.size() == 1 ? std::make_pair(sp.train_and_val(), std::vector<int64_t>{})
                                                                      : fit_and_validation(job, labels, sp, fold_seed);
    if (job.method == "linear") {
      auto probe = adapt::fit_logistic_probe(x, labels.y, C, tr, va, lo);
      f.scores = to_vector(probe.predict_proba(rows(x, sp.test)));
      f.detail = {{"c", probe.c}, {"c_grid", probe.c_grid}, {"val_balanced_accuracy", probe.val_balanced_accuracy},
                  {"iterations", probe.model.iterations()}};
    } else {
      adapt::MlpProbeOptions o;
      o.hidden = job.mlp_hidden;
      o.max_epochs = job.mlp_epochs;
      o.seed = static_cast<uint64_t>(fold_seed);
      auto m = adapt::fit_mlp_probe(x, labels.y, C, tr, va, o);
      f.scores = to_vector(m.predict_proba(rows(x, sp.test)));
      f.detail = {{"hidden", o.hidden}, {"best_epoch", m.best_epoch}, {"epochs_run", m.epochs_run},
                  {"val_balanced_accuracy", m.best_val_balanced_accuracy}};
    }
    f.detail["n_fit"] = tr.size();
    f.detail["n_val"] = va.size();
  } else {
    const auto all = sp.train_and_val();
    if (job.method == "knn") {
      adapt::KnnOptions o;
      o.k = job.k;
      o.temperature = job.temperature;
      f.scores = to_vector(adapt::knn_proba(rows(x, all), eval::take(labels.y, all), C, rows(x, sp.test), o));
      f.detail = {{"k", job.k}, {"temperature", job.temperature}};
    } else {
      f.scores = to_vector(adapt::simpleshot_proba(rows(x, all), eval::take(labels.y, all), C, rows(x, sp.test)));
      f.detail = {{"support", "all training rows"}};
    }
  }
  return f;
}

}  // namespace

ProbeSummary run_probe(const ProbeJob& job, const std::string& resolved_config, const std::function<void(int64_t, int64_t)>& progress) {
  MEDFM_CHECK_T(ConfigError, job.method == "linear" || job.method == "knn" || job.method == "simpleshot" || job.method == "mlp",
                "probe: method '", job.method, "' is not linear, knn, simpleshot or mlp");
  MEDFM_CHECK_T(ConfigError, !job.out.empty(), "probe: no report directory (--out)");
  const bool pair = !job.train.empty() || !job.test.empty();
  MEDFM_CHECK_T(ConfigError, pair != !job.features.empty(), "probe: give --train and --test, or --features (not both)");
  if (pair) MEDFM_CHECK_T(ConfigError, !job.train.empty() && !job.test.empty(), "probe: --train needs --test and --test needs --train");
  MEDFM_CHECK_T(ConfigError, pair || job.folds > 1 || !job.split_column.empty(),
                "probe: with --features give --folds K (K >= 2) or a split column");
  MEDFM_CHECK_T(ConfigError, job.bootstrap >= 0 && job.episodes >= 1 && job.val_folds >= 2, "probe: bootstrap ", job.bootstrap,
                ", episodes ", job.episodes, ", val_folds ", job.val_folds);
  eval::LabelColumns names{job.label_column, job.patient_column, job.split_column};

  std::optional<LabelsCsv> csv;
  if (!job.labels.empty()) csv = read_labels_csv(job.labels);
  std::vector<bool> used(csv ? csv->rows.size() : 0, false);
  std::vector<Part> parts;
  for (const auto& path : pair ? std::vector<std::string>{job.train, job.test} : std::vector<std::string>{job.features})
    parts.push_back(load_part(path, csv ? &*csv : nullptr, &used, names));
  if (csv) csv->check_all_used(used, "feature file");

  // One table of rows for every protocol; index sets say which rows play which part.
  at::Tensor x;
  eval::LabelSet labels;
  Split base;
  std::vector<std::vector<int64_t>> fold_tests;  // folds protocol: test rows per fold
  std::string protocol;
  if (pair) {
    protocol = "train_test";
    auto& a = parts[0];
    auto& b = parts[1];
    MEDFM_CHECK(a.x.size(1) == b.x.size(1), "probe: '", a.path, "' has ", a.x.size(1), "-dim features but '", b.path, "' has ",
                b.x.size(1));
    eval::align_classes(a.labels, b.labels, "probe: '" + b.path + "'");
    x = torch::cat({a.x, b.x});
    labels = a.labels;
    auto append = [](auto& dst, const auto& src) { dst.insert(dst.end(), src.begin(), src.end()); };
    append(labels.ids, b.labels.ids);
    append(labels.y, b.labels.y);
    append(labels.patient, b.labels.patient);
    append(labels.rows, b.labels.rows);
    labels.n_unlabelled += b.labels.n_unlabelled;
    const int64_t na = static_cast<int64_t>(a.labels.size());
    for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) {
      if (i >= na) base.test.push_back(i);
      else if (!a.labels.split.empty() && a.labels.split[i] == "val") base.val.push_back(i);
      else base.train.push_back(i);
    }
    // Ids name rows within a file; only a patient column says who is the same person across files.
    if (!job.patient_column.empty())
      eval::check_disjoint(base.train, base.test, labels.patient, labels.ids,
                           "probe: '" + a.path + "' and '" + b.path + "' share a patient");
    labels.split.clear();
  } else {
    x = parts[0].x;
    labels = parts[0].labels;
    if (!job.split_column.empty() && job.folds <= 1) {
      protocol = "split";
      for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i)
        (labels.split[i] == "train" ? base.train : labels.split[i] == "val" ? base.val : base.test).push_back(i);
      MEDFM_CHECK(!base.train.empty() && !base.test.empty(), "probe: '", job.features, "': the split column has ", base.train.size(),
                  " train and ", base.test.size(), " test rows");
      eval::check_disjoint(base.train, base.test, labels.patient, labels.ids, "probe: '" + job.features + "' train/test");
      eval::check_disjoint(base.val, base.test, labels.patient, labels.ids, "probe: '" + job.features + "' val/test");
    } else {
      protocol = "folds";
      auto fold = eval::stratified_group_kfold(labels.y, labels.patient, job.folds, static_cast<uint64_t>(job.seed));
      fold_tests.resize(job.folds);
      for (size_t i = 0; i < fold.size(); ++i) fold_tests[fold[i]].push_back(static_cast<int64_t>(i));
    }
  }
  const int C = labels.n_classes();
  // A class with no training rows cannot be predicted.
  auto check_train_classes = [&](const std::vector<int64_t>& tr, const std::string& what) {
    std::vector<int64_t> n(C, 0);
    for (int64_t i : tr) ++n[labels.y[i]];
    for (int c = 0; c < C; ++c)
      MEDFM_CHECK(n[c] > 0, "probe: class '", labels.classes[c], "' has no training rows", what);
  };

  // Evaluations: one (train_test, split) or one per fold.
  std::vector<Split> runs;
  if (protocol == "folds") {
    for (int f = 0; f < job.folds; ++f) {
      Split sp;
      sp.test = fold_tests[f];
      for (int g = 0; g < job.folds; ++g)
        if (g != f) sp.train.insert(sp.train.end(), fold_tests[g].begin(), fold_tests[g].end());
      std::sort(sp.train.begin(), sp.train.end());
      eval::check_disjoint(sp.train, sp.test, labels.patient, labels.ids, "probe: fold " + std::to_string(f));
      check_train_classes(sp.train, " in fold " + std::to_string(f));
      runs.push_back(std::move(sp));
    }
  } else {
    check_train_classes(base.train_and_val(), "");
    runs.push_back(base);
  }

  const auto metrics = eval::report_metric_names(job.ordinal);
  const bool few_shot = job.method == "simpleshot";
  const int64_t total = static_cast<int64_t>(runs.size()) * (1 + (few_shot ? static_cast<int64_t>(job.shots.size()) * job.episodes : 0));
  int64_t done = 0;
  // Pooled test predictions (every test row once), in row order of `test_rows`.
  std::vector<int64_t> test_rows, test_fold;
  std::vector<double> scores;
  json folds_json = json::array();
  std::map<int64_t, std::map<std::string, std::vector<double>>> shot_values;
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto& sp = runs[r];
    auto fit = fit_predict(job, x, labels, sp, job.seed + static_cast<int64_t>(r) * 1000003);
    if (progress) progress(++done, total);
    folds_json.push_back({{"fold", r}, {"n_train", sp.train.size() + sp.val.size()}, {"n_test", sp.test.size()}, {job.method, fit.detail}});
    test_rows.insert(test_rows.end(), sp.test.begin(), sp.test.end());
    test_fold.insert(test_fold.end(), sp.test.size(), static_cast<int64_t>(r));
    scores.insert(scores.end(), fit.scores.begin(), fit.scores.end());
    if (few_shot) {
      const auto all = sp.train_and_val();
      const auto y_all = eval::take(labels.y, all), yt = eval::take(labels.y, sp.test);
      auto xq = rows(x, sp.test);
      for (int64_t shots : job.shots) {
        for (int e = 0; e < job.episodes; ++e) {
          auto sup = adapt::episode_support(y_all, C, static_cast<int>(shots), e, static_cast<uint64_t>(job.seed) + r);
          auto rows_sup = eval::take(all, sup);
          auto s = to_vector(adapt::simpleshot_proba(rows(x, rows_sup), eval::take(labels.y, rows_sup), C, xq));
          auto pred = eval::argmax_rows(s, C);
          for (const auto& m : metrics) shot_values[shots][m].push_back(eval::classification_metric(m, yt, pred, s, C));
          if (progress) progress(++done, total);
        }
      }
    }
  }

  // Few-shot summary per shot count: mean +- std over every (fold, episode), computed once.
  std::map<int64_t, std::map<std::string, eval::MeanStd>> shot_stats;
  json fsj = json::array();
  for (const auto& [shots, vals] : shot_values) {
    json row = {{"shots", shots}, {"episodes", job.episodes * static_cast<int>(runs.size())}};
    for (const auto& m : metrics) {
      auto ms = shot_stats[shots][m] = eval::mean_std(vals.at(m));
      row[m] = {{"mean", ms.mean}, {"std", ms.std}};
    }
    fsj.push_back(row);
  }
  // Inputs by hash: the report says exactly what it was computed from.
  json inputs = json::array();
  for (const auto& path : {job.train, job.test, job.features, job.labels})
    if (!path.empty()) inputs.push_back({{"path", path}, {"sha256", sha256_file(path)}});

  eval::ClassificationResults res;
  res.title = "medfm probe " + job.method;
  res.classes = labels.classes;
  for (size_t i = 0; i < test_rows.size(); ++i) {
    res.ids.push_back(labels.ids[test_rows[i]]);
    res.patients.push_back(labels.patient[test_rows[i]]);
    res.y_true.push_back(labels.y[test_rows[i]]);
  }
  res.fold = test_fold;
  res.scores = scores;
  res.folds = folds_json;
  res.cross_validation = protocol == "folds";
  res.bootstrap = job.bootstrap;
  res.seed = job.seed;
  res.ordinal = job.ordinal;

  ProbeSummary summary;
  summary.protocol = protocol;
  summary.n_test = static_cast<int64_t>(test_rows.size());
  summary.n_train = protocol == "folds" ? static_cast<int64_t>(labels.size()) : static_cast<int64_t>(base.train.size() + base.val.size());
  eval::ReportText text;
  text.fields = {{"method", job.method},
                 {"protocol", protocol},
                 {"n_train", summary.n_train},
                 {"n_unlabelled", labels.n_unlabelled},
                 {"patient_column", job.patient_column},
                 {"patients_disjoint_checked", !job.patient_column.empty()},
                 {"inputs", inputs},
                 {"config", resolved_config}};
  if (few_shot) text.fields["few_shot"] = fsj;
  std::ostringstream head, tail;
  head << "Protocol: **" << protocol << "**";
  if (protocol == "folds") head << " (" << job.folds << " patient-grouped stratified folds, seed " << job.seed << ")";
  head << "; " << summary.n_train << " training rows, " << summary.n_test << " test rows, " << C << " classes";
  if (labels.n_unlabelled) head << "; " << labels.n_unlabelled << " unlabelled rows left out";
  head << ".\n\n";
  if (job.patient_column.empty())
    head << "No patient column: every row counts as its own patient, so leakage of a patient across the split is not checked.\n\n";
  else
    head << "Splits grouped by `" << job.patient_column << "`: no patient is on both sides.\n\n";
  if (job.method == "linear") {
    tail << "\nL2 strength per evaluation (C chosen by validation balanced accuracy):";
    for (const auto& f : folds_json) tail << " " << f["linear"]["c"].get<double>();
    tail << "\n";
  }
  if (few_shot) {
    tail << "\n## Few-shot (SimpleShot)\n\n| shots | accuracy | balanced accuracy |\n|---|---|---|\n";
    for (const auto& [shots, st] : shot_stats) {
      const auto &a = st.at("accuracy"), &b = st.at("balanced_accuracy");
      tail << "| " << shots << " | " << eval::format_fixed(a.mean) << " +- " << eval::format_fixed(a.std) << " | " << eval::format_fixed(b.mean) << " +- " << eval::format_fixed(b.std) << " |\n";
    }
    tail << "\n![few-shot](fewshot.png)\n";
  }
  text.md_head = head.str();
  text.md_tail = tail.str();
  const std::string dir = job.out;
  if (few_shot && !shot_stats.empty()) {
    fs::create_directories(dir);
    eval::Series acc{"accuracy (mean)", {}, {}}, bal{"balanced accuracy (mean)", {}, {}};
    for (const auto& [shots, st] : shot_stats) {
      acc.x.push_back(static_cast<double>(shots));
      acc.y.push_back(st.at("accuracy").mean);
      bal.x.push_back(static_cast<double>(shots));
      bal.y.push_back(st.at("balanced_accuracy").mean);
    }
    eval::ChartOptions o;
    o.title = "SimpleShot: mean over " + std::to_string(job.episodes * static_cast<int>(runs.size())) + " episodes per shot count";
    o.x_label = "training rows per class";
    o.y_label = "score";
    o.legend_bottom = true;
    eval::write_line_chart(dir + "/fewshot.png", {acc, bal}, o);
  }
  summary.metrics = eval::write_classification_report(dir, res, text);
  summary.report_dir = dir;
  return summary;
}

}  // namespace medfm::extract

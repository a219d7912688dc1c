// Frozen-feature probes over `medfm embed` HDF5 files, writing a report directory.
// Protocols (every random choice seeded by probe.seed):
//   train/test  --train A.h5 --test B.h5: fit on A (C chosen on a patient-grouped validation fold
//               of A, or A's rows with split = val), score B. A patient in both files is an error.
//   folds       --features F.h5 --folds K: patient-grouped stratified K-fold; each fold scored once;
//               the pooled out-of-fold predictions get the CIs, the folds mean +- std.
//   split       --features F.h5 with a split column (train / val / test rows).
// Labels: the files' meta/<label column> (medfm embed keeps CSV columns), or a labels CSV with an
// `id` column joined to the files' ids (a labels id found in no file is an error).
// Methods: linear (adapt/logistic.h), knn (adapt/knn.h), simpleshot (adapt/simpleshot.h: all
// training rows as support, plus few-shot episodes per shot count), mlp (adapt/mlp_probe.h: the
// epoch chosen on the same validation rows as linear's C).
// Report directory (eval/report.h): report.json (every number, the resolved config, inputs'
// SHA-256), report.md, predictions.csv, confusion.png, roc.png, and fewshot.png for simpleshot. Bad input (unknown ids,
// NaN/Inf features, files of different dimension, a class without training rows, patient leakage)
// throws before anything is written; report.json is written last.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "medfm/core/config.h"

namespace medfm::extract {

struct ProbeJob {
  std::string train, test, features;  // train + test, or features (folds / split column)
  std::string labels;                 // optional labels CSV (id + columns)
  std::string label_column = "label", patient_column, split_column;
  std::string method = "linear";      // linear | knn | simpleshot | mlp
  int folds = 0;                      // > 1 with `features`: cross-validation
  int64_t seed = 0;
  int val_folds = 5;                  // validation = one of this many grouped folds of the training rows
  // linear
  double c_min = 1e-4, c_max = 1e4;
  int c_steps = 17, max_iter = 1000;
  // mlp
  int64_t mlp_hidden = 256;
  int mlp_epochs = 100;
  // knn
  int k = 20;
  double temperature = 0.07;
  // simpleshot
  std::vector<int64_t> shots = {1, 2, 4, 8, 16};
  int episodes = 50;
  // report
  int bootstrap = 1000;
  bool ordinal = false;  // classes are grades: report quadratic-weighted kappa too
  std::string out;

  void bind(Config& cfg);  // probe.* keys
};

struct ProbeSummary {
  std::string protocol;                       // train_test | folds | split
  int64_t n_train = 0, n_test = 0;
  std::vector<std::pair<std::string, double>> metrics;  // name -> value on the test predictions
  std::string report_dir;
};

// Runs the probe and writes the report. progress(done, total) after each fit, may be empty.
ProbeSummary run_probe(const ProbeJob& job, const std::string& resolved_config,
                       const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace medfm::extract

// Slide-level multiple-instance learning over per-slide feature files (`medfm embed --slides`,
// TRIDENT's layout: /features [N,D] beside /coords), with a report directory.
//   Bags: DIR/<slide>.h5; a labels CSV with a `slide` (or `id`) column naming the file stems, the
//   label column, optional patient and split columns. A labelled slide with no file is an error;
//   files without a label are left out and counted.
//   Streaming: each bag is read from disk when it is used (the next one prefetched on a thread),
//   so a cohort is never held in memory at once. Per-bag NaN/Inf, an empty bag and a feature
//   dimension that differs are errors naming the file, checked before training starts
//   (dimensions) or when read (values), before anything is written.
//   Protocol: patient-grouped stratified K folds (mil.folds), or the split column (val rows join
//   training). Per fold: a fresh head (adapt/mil.h) seeded by (seed, fold), AdamW, cross-entropy,
//   one bag per step, mil.epochs epochs in an order drawn from Rng({seed, fold, epoch}); training
//   bags above mil.max_tiles tiles are subsampled per epoch. Test bags use every tile.
//   Output: the classification report (eval/report.h) and, per test slide, attention/<slide>.h5
//   with /coords and /attention (the head's tile weights), for `medfm heatmap --dataset attention`.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "medfm/core/config.h"

namespace medfm::extract {

struct MilJob {
  std::string features;   // folder of per-slide .h5 files
  std::string labels;     // CSV: slide|id, label, [patient], [split]
  std::string label_column = "label", patient_column, split_column;
  std::string method = "abmil";  // mean | abmil | transmil
  int folds = 5;
  int64_t seed = 0;
  int epochs = 20;
  double lr = 2e-4, weight_decay = 1e-5, dropout = 0.25;
  int64_t hidden = 256, attention_dim = 128, max_tiles = 0;
  int layers = 2, heads = 4;
  int bootstrap = 1000;
  bool ordinal = false, attention = true;
  std::string out;

  void bind(Config& cfg);  // mil.* keys
};

struct MilSummary {
  std::string protocol;
  int64_t n_slides = 0, n_test = 0;
  std::vector<std::pair<std::string, double>> metrics;
  std::string report_dir;
};

// progress(epochs done, epochs in all, mean training loss of the last epoch).
MilSummary run_mil(const MilJob& job, const std::string& resolved_config,
                   const std::function<void(int64_t, int64_t, double)>& progress = {});

}  // namespace medfm::extract

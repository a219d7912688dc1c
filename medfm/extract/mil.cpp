#include "medfm/extract/mil.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "medfm/adapt/mil.h"
#include "medfm/core/error.h"
#include "medfm/core/hash.h"
#include "medfm/core/rng.h"
#include "medfm/eval/metrics.h"
#include "medfm/eval/report.h"
#include "medfm/eval/splits.h"
#include "medfm/extract/h5_coords.h"
#include "medfm/extract/h5_feature_store.h"
#include "medfm/extract/labels_csv.h"

namespace medfm::extract {

namespace fs = std::filesystem;
using nlohmann::json;

void MilJob::bind(Config& cfg) {
  cfg.bind("mil.features", features, "folder of per-slide feature files (medfm embed --slides)");
  cfg.bind("mil.labels", labels, "labels CSV: slide (or id), label, [patient], [split]");
  cfg.bind("mil.label_column", label_column, "column holding the class");
  cfg.bind("mil.patient_column", patient_column, "column grouping slides by patient");
  cfg.bind("mil.split_column", split_column, "column with train / val / test per slide (instead of folds)");
  cfg.bind("mil.method", method, "mean | abmil | transmil");
  cfg.bind("mil.folds", folds, "patient-grouped stratified folds");
  cfg.bind("mil.seed", seed, "seed of folds, initialisation, bag order and bootstrap");
  cfg.bind("mil.epochs", epochs, "passes over the training bags per fold");
  cfg.bind("mil.lr", lr, "AdamW learning rate");
  cfg.bind("mil.weight_decay", weight_decay, "AdamW weight decay");
  cfg.bind("mil.dropout", dropout, "dropout after the first layer");
  cfg.bind("mil.hidden", hidden, "width of the tile projection");
  cfg.bind("mil.attention_dim", attention_dim, "abmil: width of the gated attention");
  cfg.bind("mil.layers", layers, "transmil: transformer blocks");
  cfg.bind("mil.heads", heads, "transmil: attention heads");
  cfg.bind("mil.max_tiles", max_tiles, "training: subsample bags above this many tiles each epoch (0: all)");
  cfg.bind("mil.bootstrap", bootstrap, "bootstrap resamples for the 95% CIs");
  cfg.bind("mil.ordinal", ordinal, "classes are ordered grades: add quadratic-weighted kappa");
  cfg.bind("mil.attention", attention, "write attention/<slide>.h5 for each test slide");
  cfg.bind("mil.out", out, "report directory");
}

namespace {

struct Bag {
  at::Tensor x;                          // [N,D] float32
  std::vector<std::array<int64_t, 2>> coords;
};

Bag load_bag(const std::string& path) {
  auto f = read_features(path);
  MEDFM_CHECK(f.features.size(0) > 0, "mil: '", path, "' is an empty bag (no tiles)");
  auto bad = (~torch::isfinite(f.features)).any(1).nonzero();
  MEDFM_CHECK(bad.size(0) == 0, "mil: '", path, "': ", bad.size(0), " tile(s) with NaN or Inf features, first row ",
              bad.size(0) ? bad[0][0].item<int64_t>() : -1);
  return {f.features, f.coords};
}

}  // namespace

MilSummary run_mil(const MilJob& job, const std::string& resolved_config, const std::function<void(int64_t, int64_t, double)>& progress) {
  MEDFM_CHECK_T(ConfigError, !job.features.empty() && !job.labels.empty() && !job.out.empty(),
                "mil: give --features DIR, --labels CSV and --out DIR");
  MEDFM_CHECK_T(IoError, fs::is_directory(job.features), "mil: '", job.features, "' is not a folder of feature files");
  MEDFM_CHECK_T(ConfigError, job.epochs >= 1 && job.lr > 0 && job.bootstrap >= 0 && job.max_tiles >= 0, "mil: epochs ", job.epochs,
                ", lr ", job.lr, ", bootstrap ", job.bootstrap, ", max_tiles ", job.max_tiles);
  // Bags: every .h5 in the folder by stem.
  std::vector<std::string> stems;
  std::map<std::string, std::string> path_of;
  for (const auto& e : fs::directory_iterator(job.features)) {
    if (!e.is_regular_file() || e.path().extension() != ".h5") continue;
    stems.push_back(e.path().stem().string());
    path_of[stems.back()] = e.path().string();
  }
  std::sort(stems.begin(), stems.end());
  MEDFM_CHECK(!stems.empty(), "mil: '", job.features, "' holds no .h5 feature files");
  auto csv = read_labels_csv(job.labels, {"slide", "id"});
  std::vector<bool> used;
  auto cols = csv.columns_for(stems, used);
  csv.check_all_used(used, "feature file of '" + job.features + "'");
  auto labels = eval::make_label_set(stems, cols, {job.label_column, job.patient_column, job.split_column},
                                     "mil: '" + job.labels + "'");
  const int C = labels.n_classes();
  const size_t n = labels.size();
  std::vector<std::string> paths;
  for (const auto& id : labels.ids) paths.push_back(path_of.at(id));
  // Shapes first: an empty bag or another dimension stops the run before any training.
  int64_t dim = -1, tiles = 0;
  std::string dim_from;
  for (const auto& p : paths) {
    auto shape = feature_shape(p);
    tiles += shape[0];
    MEDFM_CHECK(shape[0] > 0, "mil: '", p, "' is an empty bag (no tiles)");
    if (dim < 0) dim = shape[1], dim_from = p;
    MEDFM_CHECK(shape[1] == dim, "mil: '", p, "' has ", shape[1], "-dim features but '", dim_from, "' has ", dim);
  }

  // Folds or the split column.
  std::vector<std::vector<int64_t>> train_sets, test_sets;
  std::string protocol;
  if (!job.split_column.empty()) {
    protocol = "split";
    std::vector<int64_t> tr, te;
    for (size_t i = 0; i < n; ++i) (labels.split[i] == "test" ? te : tr).push_back(static_cast<int64_t>(i));
    MEDFM_CHECK(!tr.empty() && !te.empty(), "mil: the split column has ", tr.size(), " train/val and ", te.size(), " test slides");
    train_sets.push_back(tr);
    test_sets.push_back(te);
  } else {
    protocol = "folds";
    auto fold = eval::stratified_group_kfold(labels.y, labels.patient, job.folds, static_cast<uint64_t>(job.seed));
    for (int f = 0; f < job.folds; ++f) {
      std::vector<int64_t> tr, te;
      for (size_t i = 0; i < n; ++i) (fold[i] == f ? te : tr).push_back(static_cast<int64_t>(i));
      train_sets.push_back(tr);
      test_sets.push_back(te);
    }
  }
  for (size_t f = 0; f < train_sets.size(); ++f) {
    eval::check_disjoint(train_sets[f], test_sets[f], labels.patient, labels.ids, "mil: fold " + std::to_string(f));
    std::vector<int> count(C, 0);
    for (auto i : train_sets[f]) ++count[labels.y[i]];
    for (int c = 0; c < C; ++c) MEDFM_CHECK(count[c] > 0, "mil: class '", labels.classes[c], "' has no training slides in fold ", f);
  }

  adapt::MilOptions mo;
  mo.method = job.method;
  mo.in_dim = dim;
  mo.hidden = job.hidden;
  mo.attention_dim = job.attention_dim;
  mo.n_classes = C;
  mo.dropout = job.dropout;
  mo.layers = job.layers;
  mo.heads = job.heads;
  adapt::make_mil_head(mo);  // option errors before any work
  // Small bags run many tiny ops per step, where OpenMP workers spin-waiting make 2 threads ~6x
  // slower than 1 (measured: 40 bags of 12 x 64 tiles); only bags with large products use them all.
  const double work = static_cast<double>(tiles) / static_cast<double>(n) * static_cast<double>(dim * job.hidden);
  const int threads_before = at::get_num_threads();
  if (work < 5e7) at::set_num_threads(1);
  struct Restore {
    int t;
    ~Restore() { at::set_num_threads(t); }
  } restore{threads_before};

  eval::ClassificationResults res;
  res.title = "medfm mil " + job.method;
  res.classes = labels.classes;
  res.cross_validation = protocol == "folds";
  res.bootstrap = job.bootstrap;
  res.seed = job.seed;
  res.ordinal = job.ordinal;
  const int64_t total_epochs = static_cast<int64_t>(train_sets.size()) * job.epochs;
  int64_t epochs_done = 0;
  std::map<std::string, std::vector<float>> attention;   // slide -> tile weights (test folds)
  for (size_t f = 0; f < train_sets.size(); ++f) {
    torch::manual_seed(static_cast<uint64_t>(job.seed) * 1000003ULL + f);
    auto head = adapt::make_mil_head(mo);
    torch::optim::AdamW opt(head->parameters(), torch::optim::AdamWOptions(job.lr).weight_decay(job.weight_decay));
    const auto& tr = train_sets[f];
    double last_loss = 0;
    for (int e = 0; e < job.epochs; ++e) {
      head->train();
      std::vector<int64_t> order(tr);
      Rng rng({static_cast<uint64_t>(job.seed), f, static_cast<uint64_t>(e)});
      rng.shuffle(order);
      auto next = std::async(std::launch::async, load_bag, paths[order[0]]);
      double sum = 0;
      for (size_t k = 0; k < order.size(); ++k) {
        auto bag = next.get();
        if (k + 1 < order.size()) next = std::async(std::launch::async, load_bag, paths[order[k + 1]]);
        auto x = bag.x;
        if (job.max_tiles > 0 && x.size(0) > job.max_tiles) {
          // A seeded subsample without replacement, in tile order.
          std::vector<int64_t> idx(x.size(0));
          std::iota(idx.begin(), idx.end(), 0);
          Rng pick({static_cast<uint64_t>(job.seed), f, static_cast<uint64_t>(e), static_cast<uint64_t>(order[k]), 7});
          pick.sample_front(idx, static_cast<size_t>(job.max_tiles));
          idx.resize(job.max_tiles);
          std::sort(idx.begin(), idx.end());
          x = x.index_select(0, torch::tensor(idx));
        }
        auto [logits, w] = head->forward(x);
        auto loss = torch::nn::functional::cross_entropy(logits.unsqueeze(0), torch::tensor({static_cast<int64_t>(labels.y[order[k]])}));
        opt.zero_grad();
        loss.backward();
        opt.step();
        sum += loss.item<double>();
      }
      last_loss = sum / static_cast<double>(order.size());
      MEDFM_CHECK(std::isfinite(last_loss), "mil: the training loss is not finite in fold ", f, " epoch ", e);
      if (progress) progress(++epochs_done, total_epochs, last_loss);
    }
    // Test bags: probabilities and tile weights.
    head->eval();
    torch::NoGradGuard ng;
    for (auto i : test_sets[f]) {
      auto bag = load_bag(paths[i]);
      auto [logits, w] = head->forward(bag.x);
      auto p = torch::softmax(logits.to(torch::kDouble), 0).contiguous();
      res.ids.push_back(labels.ids[i]);
      res.patients.push_back(labels.patient[i]);
      res.fold.push_back(static_cast<int64_t>(f));
      res.y_true.push_back(labels.y[i]);
      res.scores.insert(res.scores.end(), p.data_ptr<double>(), p.data_ptr<double>() + C);
      if (job.attention && !bag.coords.empty()) {
        auto wf = w.to(torch::kFloat).contiguous();
        attention[labels.ids[i]] = std::vector<float>(wf.data_ptr<float>(), wf.data_ptr<float>() + wf.numel());
      }
    }
    res.folds.push_back({{"fold", f}, {"n_train", tr.size()}, {"n_test", test_sets[f].size()}, {"final_train_loss", last_loss}});
  }

  // Attention files beside a copy of each slide's coords (grid attributes from the feature file).
  if (job.attention)
    for (const auto& [id, w] : attention) {
      fs::create_directories(fs::path(job.out) / "attention");
      auto grid = read_coords(path_of.at(id));
      write_coords((fs::path(job.out) / "attention" / (id + ".h5")).string(), grid, id,
                   {{"medfm_mil_method", job.method}, {"source_features", path_of.at(id)}}, {{"attention", w}});
    }

  json inputs = json::array();
  inputs.push_back({{"path", job.labels}, {"sha256", sha256_file(job.labels)}});
  for (const auto& p : paths) inputs.push_back({{"path", p}, {"sha256", sha256_file(p)}});
  eval::ReportText text;
  text.fields = {{"method", job.method},
                 {"protocol", protocol},
                 {"n_slides", n},
                 {"n_unlabelled", labels.n_unlabelled},
                 {"feature_dim", dim},
                 {"patient_column", job.patient_column},
                 {"training", {{"epochs", job.epochs}, {"lr", job.lr}, {"weight_decay", job.weight_decay}, {"max_tiles", job.max_tiles}}},
                 {"inputs", inputs},
                 {"config", resolved_config}};
  std::ostringstream head;
  head << "Protocol: **" << protocol << "**";
  if (protocol == "folds") head << " (" << job.folds << " patient-grouped stratified folds, seed " << job.seed << ")";
  head << "; " << n << " slides of " << dim << "-dim tile features, " << C << " classes";
  if (labels.n_unlabelled) head << "; " << labels.n_unlabelled << " unlabelled slides left out";
  head << ". " << job.method << " head, " << job.epochs << " epochs per fold (AdamW, lr " << job.lr << ").\n\n";
  if (job.attention && !attention.empty())
    head << "Tile attention of every test slide: `attention/<slide>.h5` (draw with `medfm heatmap SLIDE --scores "
            "attention/<slide>.h5 --dataset attention`).\n\n";
  text.md_head = head.str();
  MilSummary s;
  s.protocol = protocol;
  s.n_slides = static_cast<int64_t>(n);
  s.n_test = static_cast<int64_t>(res.y_true.size());
  s.metrics = eval::write_classification_report(job.out, res, text);
  s.report_dir = job.out;
  return s;
}

}  // namespace medfm::extract

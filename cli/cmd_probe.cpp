// `medfm probe --train A.h5 --test B.h5 [--labels L.csv] [--label-column label] --method linear|knn|simpleshot --out DIR`
// or `medfm probe --features F.h5 --folds 5 ...`: frozen-feature probes with a report directory.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/extract/probe.h"

namespace medfm::cli {

void add_probe_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    extract::ProbeJob job;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("probe", "linear / kNN / SimpleShot / MLP probes on embedded features, with a report (metrics, CIs, plots)");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  k.option("--train", "probe.train", "training features (HDF5 from medfm embed)");
  k.option("--test", "probe.test", "test features (HDF5)");
  k.option("--features", "probe.features", "one feature file, split by --folds or a split column");
  k.option("--folds", "probe.folds", "patient-grouped stratified cross-validation folds");
  k.option("--labels", "probe.labels", "labels CSV joined by id (default: the files' meta/ columns)");
  k.option("--label-column", "probe.label_column", "column with the class (default label)");
  k.option("--patient-column", "probe.patient_column", "column grouping rows by patient");
  k.option("--split-column", "probe.split_column", "column with train / val / test");
  k.option("--method", "probe.method", "linear | knn | simpleshot | mlp");
  k.option("--seed", "probe.seed", "seed of splits, episodes and bootstrap");
  k.option("--out", "probe.out", "report directory")->required();
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->job.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      ProgressBar bar("probe " + s->job.method, "fit");
      auto sum = extract::run_probe(s->job, cfg.to_toml(), [&](int64_t done, int64_t total) { bar.update(done, total); });
      bar.finish();
      print_report_result(s->rt.json, {{"protocol", sum.protocol}, {"n_train", sum.n_train}, {"n_test", sum.n_test}},
                          "probe " + s->job.method + " (" + sum.protocol + "): " + std::to_string(sum.n_train) + " training, " +
                              std::to_string(sum.n_test) + " test rows",
                          sum.metrics, sum.report_dir);
      return 0;
    });
  });
}

}  // namespace medfm::cli

// `medfm mil --features DIR --labels L.csv --method mean|abmil|transmil --out DIR`: slide-level MIL
// over per-slide feature files, with a report and per-slide attention.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/extract/mil.h"

namespace medfm::cli {

void add_mil_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    extract::MilJob job;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("mil", "multiple-instance learning on per-slide features (mean, ABMIL, TransMIL), with a report");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  k.option("--features", "mil.features", "folder of per-slide feature files (medfm embed --slides)")->required();
  k.option("--labels", "mil.labels", "labels CSV: slide (or id), label, [patient], [split]")->required();
  k.option("--label-column", "mil.label_column", "column with the class (default label)");
  k.option("--patient-column", "mil.patient_column", "column grouping slides by patient");
  k.option("--split-column", "mil.split_column", "column with train / val / test (instead of folds)");
  k.option("--method", "mil.method", "mean | abmil | transmil");
  k.option("--folds", "mil.folds", "patient-grouped stratified folds (default 5)");
  k.option("--epochs", "mil.epochs", "epochs per fold");
  k.option("--seed", "mil.seed", "seed");
  k.option("--out", "mil.out", "report directory")->required();
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->job.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      ProgressBar bar("mil " + s->job.method, "epoch");
      auto sum = extract::run_mil(s->job, cfg.to_toml(), [&](int64_t done, int64_t total, double loss) {
        bar.update(done, total, loss_note(loss));
      });
      bar.finish();
      print_report_result(s->rt.json, {{"protocol", sum.protocol}, {"n_slides", sum.n_slides}, {"n_test", sum.n_test}},
                          "mil " + s->job.method + " (" + sum.protocol + "): " + std::to_string(sum.n_slides) + " slides, " +
                              std::to_string(sum.n_test) + " tested",
                          sum.metrics, sum.report_dir);
      return 0;
    });
  });
}

}  // namespace medfm::cli

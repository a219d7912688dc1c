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
        std::ostringstream note;
        note << "loss " << std::fixed << std::setprecision(4) << loss;
        bar.update(done, total, note.str());
      });
      bar.finish();
      if (s->rt.json) {
        nlohmann::json j = {{"protocol", sum.protocol}, {"n_slides", sum.n_slides}, {"n_test", sum.n_test}, {"report", sum.report_dir}};
        for (const auto& [name, v] : sum.metrics) j["metrics"][name] = v;
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << "mil " << s->job.method << " (" << sum.protocol << "): " << sum.n_slides << " slides, " << sum.n_test << " tested\n";
        for (const auto& [name, v] : sum.metrics) std::cout << "  " << std::left << std::setw(18) << name << std::fixed << std::setprecision(4) << v << "\n";
        std::cout << "report: " << sum.report_dir << "/report.md\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

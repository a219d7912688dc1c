#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/embed.h"

namespace medfm::cli {

void add_embed_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    models::ModelSpec model;
    extract::EmbedJob job;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("embed", "embed images, DICOM files and volumes (per slice) into an HDF5 feature file");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_model_flags(k);
  add_read_flags(k);
  k.option("--input", "embed.input", "a file, a folder (mixed formats) or a CSV with a `path` column");
  k.option("--out", "embed.out", "output HDF5 file");
  k.option("--batch-size", "embed.batch_size", "samples per forward pass");
  k.option("--workers", "embed.workers", "decode threads");
  k.flag("--keep-going", "embed.keep_going", "record unreadable inputs in /skipped and go on");
  k.option("--plane", "embed.plane", "volumes: axial, coronal or sagittal slices");
  k.option("--slices", "embed.slices", "volumes: start:stop:step over slice indices (default all)");
  k.option("--window", "embed.window", "auto, minmax, percentile, zscore, a CT preset (brain, lung, abdomen, bone ...) or W/L");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->model.bind(cfg);
      s->job.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      auto model = models::load_backbone(s->model);
      log_model(s->model, model);
      ProgressBar bar("embed", "input");
      auto st = s->job.run(model, parse_device(s->rt.device), run_attrs(cfg),
                           [&](int64_t d, int64_t t, int64_t) { bar.update(d, t); });
      bar.finish();
      for (const auto& sk : st.skipped) spdlog::warn("skipped {}: {}", sk.path, sk.reason);
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->job.out},       {"n_inputs", st.n_inputs},  {"n_samples", st.n_samples},
                                    {"n_skipped", st.skipped.size()}, {"dim", st.dim}, {"seconds", st.seconds}}
                  << "\n";
      } else {
        std::cout << "wrote " << s->job.out << ": features [" << st.n_samples << ", " << st.dim << "] from "
                  << st.n_inputs << " inputs (" << st.skipped.size() << " skipped) in " << st.seconds << " s\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

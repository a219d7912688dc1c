#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/embed.h"

namespace medfm::cli {

void add_embed_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    models::ModelSpec model;
    extract::SampleOptions sample;
    std::string input, out;
    int batch_size = 32, workers = 2;
    bool keep_going = false;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("embed", "embed images, DICOM files and volumes (per slice) into an HDF5 feature file");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_model_flags(k);
  k.option("--input", "embed.input", "a file, a folder (mixed formats) or a CSV with a `path` column");
  k.option("--out", "embed.out", "output HDF5 file");
  k.option("--batch-size", "embed.batch_size", "samples per forward pass");
  k.option("--workers", "embed.workers", "decode threads");
  k.flag("--keep-going", "embed.keep_going", "record unreadable inputs in /skipped and go on");
  k.option("--plane", "embed.plane", "volumes: axial, coronal or sagittal slices");
  k.option("--slices", "embed.slices", "volumes: start:stop:step over slice indices (default all)");
  k.option("--window", "embed.window",
           "DICOM/NIfTI intensities: auto, minmax, percentile, zscore, a CT preset (brain, lung, abdomen, bone ...) "
           "or WIDTH/LEVEL");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->model.bind(cfg);
      cfg.bind("embed.input", s->input, "file, folder or CSV");
      cfg.bind("embed.out", s->out, "output HDF5 path");
      cfg.bind("embed.batch_size", s->batch_size, "samples per forward pass");
      cfg.bind("embed.workers", s->workers, "decode threads");
      cfg.bind("embed.keep_going", s->keep_going, "skip unreadable inputs");
      cfg.bind("embed.plane", s->sample.plane, "volume slice plane");
      cfg.bind("embed.slices", s->sample.slices, "volume slice range a:b:step");
      cfg.bind("embed.window", s->sample.intensity.window, "intensity window");
      cfg.bind("embed.percentile_lo", s->sample.intensity.percentile_lo, "window=percentile: low percentile");
      cfg.bind("embed.percentile_hi", s->sample.intensity.percentile_hi, "window=percentile: high percentile");
      cfg.bind("embed.square_pixels", s->sample.square_pixels, "resample anisotropic slices to square pixels");
      resolve_config(cfg, s->rt, *s->keys);
      MEDFM_CHECK_T(ConfigError, !s->input.empty(), "embed: an input is required (--input or embed.input)");
      MEDFM_CHECK_T(ConfigError, !s->out.empty(), "embed: an output is required (--out or embed.out)");
      auto inputs = extract::list_inputs(s->input);
      auto model = models::load_backbone(s->model);
      if (!model.warning.empty()) spdlog::warn("{}", model.warning);
      if (!s->model.weights.empty()) spdlog::info("loaded {}: {}", s->model.weights, model.report.summary());
      s->sample.preprocess = model.preprocess;
      extract::EmbedOptions opts;
      opts.out_path = s->out;
      opts.batch_size = s->batch_size;
      opts.workers = s->workers;
      opts.keep_going = s->keep_going;
      opts.device = parse_device(s->rt.device);
      opts.attrs = run_attrs(cfg);
      opts.attrs.insert(model.provenance.begin(), model.provenance.end());
      opts.attrs["input"] = s->input;
      const size_t n = inputs.size();
      auto source = extract::make_file_source(std::move(inputs), s->sample);
      spdlog::info("embedding {} inputs with {} on {}", n, model.backbone->describe(), s->rt.device);
      ProgressBar bar("embed", "input");
      auto stats = extract::embed_source(*model.backbone, *source, opts,
                                         [&](int64_t d, int64_t t, int64_t) { bar.update(d, t); });
      bar.finish();
      for (const auto& sk : stats.skipped) spdlog::warn("skipped {}: {}", sk.path, sk.reason);
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->out},
                                    {"n_inputs", stats.n_inputs},
                                    {"n_samples", stats.n_samples},
                                    {"n_skipped", stats.skipped.size()},
                                    {"dim", stats.dim},
                                    {"seconds", stats.seconds},
                                    {"samples_per_s", stats.samples_per_s()}}
                         .dump()
                  << "\n";
      } else {
        std::cout << "wrote " << s->out << ": features [" << stats.n_samples << ", " << stats.dim << "] from "
                  << stats.n_inputs << " inputs";
        if (!stats.skipped.empty()) std::cout << " (" << stats.skipped.size() << " skipped)";
        std::cout << " in " << stats.seconds << " s (" << stats.samples_per_s() << " samples/s)\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

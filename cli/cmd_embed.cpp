#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/data/tiling.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/embed.h"
#include "medfm/extract/embed_slides.h"

namespace medfm::cli {

namespace {

struct State {
  RuntimeOptions rt;
  std::unique_ptr<KeyFlags> keys;
  models::ModelSpec model;
  extract::EmbedJob job;
  extract::SlideEmbedJob slides;
};

// `--slides`: one HDF5 per slide in the output folder, a manifest line each.
int run_slides(State& s, models::LoadedBackbone& model, const Config& cfg) {
  ProgressBar bar("embed", "slide");
  auto results = s.slides.run(model, parse_device(s.rt.device), run_attrs(cfg),
                              [&](size_t d, size_t t, const extract::SlideEmbedResult&) { bar.update(d, t); });
  bar.finish();
  nlohmann::json js = nlohmann::json::array();
  for (const auto& r : results) {
    js.push_back({{"slide", r.slide}, {"name", r.name}, {"status", r.status}, {"tiles", r.n_tiles},
                  {"seconds", r.seconds}, {"error", r.error}});
    if (!r.error.empty()) spdlog::error("{}: {}", r.slide, r.error);
    else if (!s.rt.json)
      std::cout << r.name << ": " << r.status << ", " << r.n_tiles << " tiles, " << r.seconds << " s -> "
                << s.slides.out_dir << "/" << r.name << ".h5\n";
  }
  if (s.rt.json) std::cout << js.dump(2) << "\n";
  return 0;
}

}  // namespace

void add_embed_command(CLI::App& app, int* rc) {
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("embed", "embed images, DICOM files, volumes (per slice) and slides (per tile) into HDF5");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_model_flags(k);
  add_read_flags(k, "--slide-mpp");
  k.option("--input", "embed.input", "a file, a folder (mixed formats) or a CSV with a `path` column");
  k.option("--slides", "slides.paths", "whole-slide images, embedded tile by tile (comma-separated or repeated)")
      ->allow_extra_args()
      ->multi_option_policy(CLI::MultiOptionPolicy::Join)
      ->delimiter(',');
  k.option("--slide-list", "slides.list", "CSV with a `path` column of slides");
  k.option("--coords", "slides.coords", "slides: embed exactly the tiles of DIR/<name>.h5 (medfm tile, TRIDENT)");
  k.option("--shard", "slides.shard", "slides: i/n of the cohort (default RANK/WORLD_SIZE, else all)");
  k.option("--mpp", "tile.mpp", "slides: um/px of the tiles");
  k.option("--tile", "tile.size", "slides: tile side in pixels at --mpp");
  k.option("--min-tissue", "tile.min_tissue", "slides: fraction of a tile on tissue");
  k.option("--tissue-model", "tissue.model", "slides: TorchScript tissue segmentation model");
  k.option("--mem-budget", "slides.mem_budget", "slides: MiB for tiles read ahead of the model (0: four batches)");
  k.option("--stain-norm", "slides.stain", "slides: macenko or reinhard stain normalisation of each tile");
  k.option("--stain-reference", "slides.stain_reference", "slides: reference image for --stain-norm");
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
      s->slides.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      data::check_tiling_options(s->slides.tiling);  // --mpp -1 / nan: refused before any work
      s->slides.batch_size = s->job.batch_size;
      s->slides.workers = s->job.workers;
      s->slides.keep_going = s->slides.keep_going || s->job.keep_going;
      s->slides.out_dir = s->slides.out_dir.empty() ? s->job.out : s->slides.out_dir;
      s->slides.read = s->job.read;
      auto model = models::load_backbone(s->model);
      log_model(s->model, model);
      if (!s->slides.slides.empty() || !s->slides.slide_list.empty()) return run_slides(*s, model, cfg);
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

// `medfm tile SLIDE... --mpp 0.5 --tile 224 --out DIR`: tissue, tile grid, contours, thumbnail.
#include <spdlog/spdlog.h>

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/data/tiling.h"
#include "medfm/extract/tile_slides.h"

namespace medfm::cli {

void add_tile_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    extract::TileJob job;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("tile", "find tissue and tile slides at an exact um/px (TRIDENT-layout coords)");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_read_flags(k, "--slide-mpp");
  auto* slides = cmd->add_option("slides", s->job.slides, "slide files");
  k.option("--mpp", "tile.mpp", "um/px of the tiles (e.g. 0.5)");
  k.option("--tile", "tile.size", "tile side in pixels at --mpp");
  k.option("--overlap", "tile.overlap", "pixels shared by neighbouring tiles");
  k.option("--min-tissue", "tile.min_tissue", "fraction of a tile on tissue (0..1)");
  k.option("--roi", "tile.roi", "GeoJSON regions of interest, level-0 pixels");
  k.option("--tissue-method", "tissue.method", "hsv (saturation) or otsu (luminance)");
  k.option("--tissue-model", "tissue.model", "TorchScript tissue segmentation model (replaces --tissue-method)");
  k.option("--out", "tile.out", "output folder");
  k.flag("--keep-going", "tile.keep_going", "record a bad slide and go on");
  cmd->callback([s, slides, rc] {
    *rc = guarded([&] {
      const auto given = s->job.slides;  // positional: kept over a config file's tile.slides
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->job.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      data::check_tiling_options(s->job.tiling);  // --mpp -1 / nan: refused before any work
      if (slides->count()) s->job.slides = given;
      ProgressBar bar("tile", "slide");
      auto results = s->job.run(run_attrs(cfg), [&](size_t d, size_t t) { bar.update(d, t); });
      bar.finish();
      int failed = 0;
      nlohmann::json js = nlohmann::json::array();
      for (const auto& r : results) {
        failed += !r.error.empty();
        js.push_back({{"slide", r.slide}, {"name", r.name}, {"tiles", r.n_tiles}, {"candidates", r.n_candidates},
                      {"tissue_mm2", r.tissue_mm2}, {"level0_mpp", r.level0_mpp}, {"mpp_source", r.mpp_source},
                      {"seconds", r.seconds}, {"error", r.error}});
        if (!r.error.empty()) spdlog::error("{}: {}", r.slide, r.error);
      }
      if (s->rt.json) {
        std::cout << js.dump(2) << "\n";
      } else {
        for (const auto& r : results) {
          if (!r.error.empty()) continue;
          std::cout << r.name << ": " << r.n_tiles << " tiles of " << s->job.tiling.tile << " px at "
                    << s->job.tiling.target_mpp << " um/px (level-0 " << r.level0_mpp << " um/px, " << r.mpp_source
                    << "), tissue " << std::setprecision(4) << r.tissue_mm2 << " mm2, " << r.seconds << " s -> "
                    << s->job.out_dir << "/" << r.name << ".{h5,geojson,jpg}\n";
        }
      }
      return failed && !s->job.keep_going ? 1 : 0;
    });
  });
}

}  // namespace medfm::cli

// `medfm heatmap SLIDE --scores S.h5|S.csv --out H.png`: per-tile scores over a thumbnail.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/data/heatmap.h"
#include "medfm/extract/tile_scores.h"
#include "medfm/io/formats.h"
#include "medfm/io/image2d.h"

namespace medfm::cli {

void add_heatmap_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    io::ReadSpec read;
    std::string slide, scores, dataset, coords, out;
    double tile_level0 = 0, vmin = NAN, vmax = NAN;
    data::HeatmapOptions opts;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("heatmap", "draw per-tile scores (HDF5 beside coords, or CSV x,y,score) over a slide");
  cmd->add_option("slide", s->slide, "slide file")->required();
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, false);
  add_read_flags(k, "--slide-mpp");
  k.option("--scores", "heatmap.scores", "HDF5 with /coords and a score dataset, or CSV with x, y and a score column")->required();
  k.option("--dataset", "heatmap.dataset", "HDF5 dataset (NAME or NAME:COLUMN; default tissue) or CSV column (default score)");
  k.option("--coords", "heatmap.coords", "HDF5 with the /coords the scores follow (default: the scores file)");
  k.option("--tile-level0", "heatmap.tile_level0", "tile side in level-0 pixels (default: from coords, or the CSV grid)");
  k.option("--vmin", "heatmap.vmin", "low end of the colour range");
  k.option("--vmax", "heatmap.vmax", "high end of the colour range");
  k.option("--size", "heatmap.size", "thumbnail's longer side, px");
  k.option("--out", "heatmap.out", "output PNG")->required();
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->read.bind(cfg);
      cfg.bind("heatmap.scores", s->scores, "scores file");
      cfg.bind("heatmap.dataset", s->dataset, "score dataset or column");
      cfg.bind("heatmap.coords", s->coords, "coords file");
      cfg.bind("heatmap.tile_level0", s->tile_level0, "tile side, level-0 px");
      cfg.bind("heatmap.vmin", s->vmin, "colour range low (nan: the scores' min)");
      cfg.bind("heatmap.vmax", s->vmax, "colour range high (nan: the scores' max)");
      cfg.bind("heatmap.size", s->opts.size, "thumbnail size");
      cfg.bind("heatmap.alpha", s->opts.alpha, "tile colour opacity");
      cfg.bind("heatmap.out", s->out, "output PNG");
      resolve_config(cfg, s->rt, *s->keys);
      if (std::isfinite(s->vmin)) s->opts.vmin = s->vmin;
      if (std::isfinite(s->vmax)) s->opts.vmax = s->vmax;
      auto scores = extract::read_tile_scores(s->scores, s->dataset, s->coords, s->tile_level0);
      auto slide = io::open_slide(s->slide, s->read.options());
      io::write_png(s->out, data::render_heatmap(*slide, scores.coords, scores.scores, scores.tile_level0, s->opts));
      std::cout << "wrote " << s->out << ": " << scores.scores.size() << " tiles\n";
      return 0;
    });
  });
}

}  // namespace medfm::cli

// Per-tile scores drawn over a slide: a thumbnail (longer side `size`), each tile filled with its
// score's colour (viridis; NaN scores are not drawn) blended at `alpha`, and a colour bar with the
// value range on the right. What MIL attention, tile predictions or tissue fractions look like.
#pragma once
#include <ATen/Tensor.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "medfm/io/slide.h"

namespace medfm::data {

struct HeatmapOptions {
  int size = 1024;                // thumbnail's longer side, px
  double alpha = 0.5;             // tile colour over the tissue
  std::optional<double> vmin, vmax;  // colour range (default: the scores' min and max)
};

// coords: level-0 (x, y) of tile top-left corners; scores one per tile; tile_level0: tile side in
// level-0 pixels. Returns RGB uint8 [3, h, w + bar]. Throws ConfigError on mismatched lengths, an
// empty or constant-without-range score set, or bad options.
at::Tensor render_heatmap(const io::Slide& slide, const std::vector<std::array<int64_t, 2>>& coords,
                          const std::vector<double>& scores, double tile_level0, const HeatmapOptions& opts = {});

}  // namespace medfm::data

// Tiles at an exact physical resolution: `tile` pixels at `target_mpp` um/px cover
// tile * target_mpp um of tissue whatever the scanner's um/px (0.25 and 0.2631 give the same field
// of view; no rounding to "40x"). Coordinates are level-0 pixels of each tile's top-left corner,
// on a grid of step (tile - overlap) * target_mpp / level0_mpp from (0, 0), row-major. A tile is
// kept when the tissue mask covers at least min_tissue of its area (exact fractional overlap of
// the tile with mask pixels; any tissue at all when min_tissue is 0), and, with regions of
// interest, when its centre lies inside one of them.
// Thread-compatible.
#pragma once
#include <ATen/Tensor.h>

#include <array>
#include <string>
#include <vector>

#include "medfm/data/tissue.h"
#include "medfm/io/slide.h"

namespace medfm::data {

struct TilingOptions {
  double target_mpp = 0.5;  // um/px of the tiles the model sees
  int tile = 224;           // pixels at target_mpp
  int overlap = 0;          // pixels at target_mpp shared by neighbours
  double min_tissue = 0.25; // fraction of a tile's area on tissue
};

struct TileGrid {
  std::vector<std::array<int64_t, 2>> coords;  // level-0 (x, y) of each tile's top-left
  std::vector<float> tissue;                   // tissue fraction of each tile
  double level0_mpp = 0, target_mpp = 0;
  double tile_level0 = 0;                      // exact tile side in level-0 pixels
  int64_t patch_size_level0 = 0;               // tile_level0 rounded (TRIDENT's attribute)
  int tile = 0, overlap = 0;
  int64_t level0_width = 0, level0_height = 0;
  int64_t n_candidates = 0;                    // grid positions considered
};

// Throws ConfigError unless target_mpp is a positive finite um/px, tile > 0, 0 <= overlap < tile
// and min_tissue in [0, 1]; commands call it on their configuration before any work.
void check_tiling_options(const TilingOptions& o);

// Throws ConfigError for bad options or a slide without um/px.
TileGrid make_tile_grid(const io::Slide& slide, const TissueMask& tissue, const TilingOptions& opts,
                        const std::vector<TissueRegion>& roi = {});

// One tile as the model sees it: RGB uint8 [3, tile, tile] covering tile_level0 level-0 pixels from
// (x, y), read from the level at or finer than the target and resampled with an antialiased
// (area-averaging) filter. Outside the slide is white.
at::Tensor read_tile(const io::Slide& slide, int64_t x, int64_t y, double tile_level0, int tile);
// Tiles coords[first .. first+count) of one grid row read as a single region and cut: each equal
// to read_tile at its own coordinates. RGB uint8 [3, tile, tile] each.
std::vector<at::Tensor> read_tile_run(const io::Slide& slide, const std::vector<std::array<int64_t, 2>>& coords,
                                      size_t first, size_t count, double tile_level0, int tile);
// The pyramid level tiles of tile_level0 level-0 pixels shown at `tile` px are read from: the one
// at or finer than the target.
int tile_read_level(const io::Slide& slide, double tile_level0, int tile);
// Consecutive tiles of one row (start index, count), at most max_run each: the read units of a
// slide, fixed by the grid alone (so outputs do not depend on the number of threads).
constexpr size_t kMaxTileRun = 8;
std::vector<std::pair<size_t, size_t>> tile_runs(const TileGrid& grid, size_t max_run = kMaxTileRun);

// A thumbnail (longer side `size` px) with the tissue contours (green, holes red) and the tiles
// (blue outlines) drawn: RGB uint8 [3, h, w].
at::Tensor tiling_thumbnail(const io::Slide& slide, const TissueMask& tissue, const TileGrid& grid, int size = 1024);

}  // namespace medfm::data

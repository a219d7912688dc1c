// Tile coordinates in TRIDENT's layout, so its loaders (and h5py users) read medfm's files:
//   /coords  int64 [N, 2], level-0 (x, y) of each tile's top-left, row-major grid order
//   attributes on /coords: patch_size, patch_size_level0, overlap, level0_width, level0_height
//     (int64), level0_mpp, target_mpp, level0_magnification (= 10 / level0_mpp),
//     target_magnification (= 10 / target_mpp) (float64), name, savetodir (string)
//   /tissue  float32 [N]: the tissue fraction of each tile
//   root attributes: provenance strings (medfm version, config, slide path, tissue method ...)
// Written under a temporary name and renamed when complete.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "medfm/data/tiling.h"

namespace medfm::extract {

// `scores`: extra float32 [N] datasets beside /coords (e.g. MIL attention for medfm heatmap).
void write_coords(const std::string& path, const data::TileGrid& grid, const std::string& name,
                  const std::map<std::string, std::string>& root_attrs,
                  const std::map<std::string, std::vector<float>>& scores = {});

// Reads a coords file written by medfm or TRIDENT (its attributes; tissue fractions when present,
// else 1). Throws IoError / FormatError naming the file.
data::TileGrid read_coords(const std::string& path);

}  // namespace medfm::extract

// Per-tile scores to draw (`medfm heatmap`): from an HDF5 file holding /coords (medfm embed
// --slides, medfm tile, TRIDENT, MIL attention written beside coords) and a dataset aligned with
// it, or from a CSV with columns x, y (level-0 top-left) and a score column.
#pragma once
#include <array>
#include <string>
#include <vector>

namespace medfm::extract {

struct TileScores {
  std::vector<std::array<int64_t, 2>> coords;
  std::vector<double> scores;
  double tile_level0 = 0;  // from the coords attributes, the caller, or the CSV's x spacing
};

// dataset: HDF5 "name" (1-D [N]) or "name:k" (column k of [N,K]); CSV: the score column's name
// (default "score"). coords_path: another HDF5 file's /coords when the scores file has none.
// tile_level0 > 0 overrides. Throws IoError / FormatError naming the file and the dataset.
TileScores read_tile_scores(const std::string& path, const std::string& dataset, const std::string& coords_path = "",
                            double tile_level0 = 0);

}  // namespace medfm::extract

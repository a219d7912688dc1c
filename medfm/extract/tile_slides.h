// `medfm tile` as data: tissue detection and a tile grid at an exact um/px for each slide, written
// per slide as DIR/<name>.h5 (h5_coords.h), DIR/<name>.geojson (tissue contours, QuPath) and
// DIR/<name>.jpg (thumbnail with contours and tiles). <name> is the slide's file name without its
// extension. Each file appears complete or not at all.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "medfm/data/tiling.h"
#include "medfm/io/formats.h"

namespace medfm {
class Config;
}

namespace medfm::extract {

struct TileResult {
  std::string slide, name, error;  // error: empty when the slide was tiled
  int64_t n_tiles = 0, n_candidates = 0;
  double tissue_mm2 = 0, level0_mpp = 0, seconds = 0;
  std::string mpp_source;
};

struct TileJob {
  std::vector<std::string> slides;
  std::string out_dir;
  std::string roi;          // optional GeoJSON of regions of interest (applies to every slide)
  bool keep_going = false;  // record a bad slide and go on
  int thumbnail_px = 1024;
  data::TissueOptions tissue;
  data::TilingOptions tiling;
  io::ReadSpec read;

  void bind(Config& cfg);  // tile.*, tissue.*, read.* keys
  // One result per slide, in order. Without keep_going the first bad slide throws, naming it.
  std::vector<TileResult> run(const std::map<std::string, std::string>& attrs,
                              const std::function<void(size_t done, size_t total)>& progress = {});
};

// The tile.* (mpp, size, overlap, min_tissue) and tissue.* keys, shared by `medfm tile` and
// `medfm embed --slides`.
void bind_tiling(Config& cfg, data::TissueOptions& tissue, data::TilingOptions& tiling);

// The output name of a slide: its file name without the last extension.
std::string slide_name(const std::string& path);

// Creates out_dir and refuses two slides that would write the same <name>.h5 (ConfigError naming
// both; IoError when the folder cannot be made). `who` prefixes the messages ("tile", "slides").
void prepare_slide_outputs(const std::vector<std::string>& slides, const std::string& out_dir, const std::string& who);

}  // namespace medfm::extract

// Unlabelled images for pre-training, streamed from the files (never dumped to tiles first):
//   images   2D image files from folders or CSVs (list_inputs), decoded on demand and kept in an
//            LRU cache of data.image_cache_mb; DICOM or other measurement images are windowed (data.window);
//            image_patch > 0 cuts a random square patch of that many pixels centred on the field of view
//            (large fundus photographs, microscopy fields)
//   slides   tissue tiles at an exact um/px: the tile grid of `medfm tile` (DIR/<name>.h5 in
//            data.tiles_dir) when present, otherwise a saturation tissue mask and a grid made at
//            start; each draw takes a grid tile shifted by a random offset of up to half a tile
//   volumes  2D slices in the chosen planes of NIfTI / DICOM volumes, windowed to [0,1]
//            (data.volume_window), slices with at least volume_min_foreground of their pixels
//            above 0.05; volume_patch > 0 cuts a random square patch of that many pixels (square
//            pixels at the finest spacing) centred on foreground
//   a mixture of the non-empty ones with data.weights (default: proportional to their sizes)
// get(i, rng) is thread-safe and depends only on (i, rng): loader threads never change the data.
#pragma once
#include <ATen/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "medfm/core/rng.h"
#include "medfm/data/tiling.h"
#include "medfm/io/formats.h"

namespace medfm {
class Config;
}

namespace medfm::extract {

class PretrainSource {
 public:
  virtual ~PretrainSource() = default;
  virtual int64_t size() const = 0;  // images in one epoch
  // Image i of the epoch, float32 [1 or 3, H, W] in [0,1]. Throws naming the file.
  virtual at::Tensor get(int64_t i, Rng& rng) const = 0;
  virtual std::string describe() const = 0;  // e.g. "slides: 3 slides, 2,048 tissue tiles at 0.5 um/px"
};

struct PretrainData {
  std::vector<std::string> images, slides, volumes;  // files, folders or CSVs with a `path` column
  std::vector<double> weights;                        // per non-empty kind, in the order images, slides, volumes
  std::string window = "auto";                        // images that are not display images
  int64_t image_cache_mb = 1024;                      // decoded images kept in memory (least recently used out)
  int image_patch = 0;                                // random square patches of this side (0: whole images)
  // slides
  std::string tiles_dir;  // `medfm tile` output with <name>.h5 per slide (optional)
  double slide_mpp = 0.5;
  int slide_tile = 224;
  data::TissueOptions tissue;
  // volumes
  std::vector<std::string> volume_planes{"axial", "coronal", "sagittal"};
  std::string volume_window = "percentile";
  int volume_patch = 0;
  double volume_min_foreground = 0.1;
  io::ReadSpec read;

  void bind(Config& cfg);  // data.* keys
};

// The configured sources (their files listed and checked now: a missing file is an IoError here,
// not in the middle of a run). ConfigError when no source is given.
std::unique_ptr<PretrainSource> make_pretrain_source(const PretrainData& data);

}  // namespace medfm::extract

// `medfm embed --slides` as data: for each slide, tissue and a tile grid (or the coords file of a
// previous `medfm tile`), tiles read in row runs by the loader threads and embedded, written as
// DIR/<name>.h5 with `features` [N,D] float32 beside `coords` [N,2] (TRIDENT's layout) and
// provenance (model, weights SHA-256, preprocessing, slide path, size and fingerprint).
//
// Cohort runs survive anything: each output appears only when complete (temporary name, rename);
// DIR/manifest.jsonl gets one line per slide and run (status ok | skipped-complete | failed, tiles,
// seconds per stage, error); a re-run skips slides whose output verifies complete (readable,
// features and coords of one length, the model and tiling of this run) and redoes the rest.
// shard i/n keeps slides whose index % n == i (RANK / WORLD_SIZE from the environment, as torchrun
// and SLURM arrays set them, when not given).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "medfm/data/stain.h"
#include "medfm/data/tiling.h"
#include "medfm/extract/embed.h"
#include "medfm/io/formats.h"
#include "medfm/models/backbone.h"

namespace medfm {
class Config;
}

namespace medfm::extract {

struct SlideEmbedResult {
  std::string slide, name, status, error;  // status: ok | skipped-complete | failed
  int64_t n_tiles = 0;
  double tissue_seconds = 0, load_seconds = 0, model_seconds = 0, write_seconds = 0, seconds = 0;
  double peak_rss_mb = 0;  // of the process, after this slide
};

// Tiles the loader threads may hold ready ahead of the model within mem_budget_mb MiB: each worker
// holds one row run in flight (a region of up to 8 tiles at the level read, its uint8 tiles and
// their float copies), each waiting tile is a preprocessed float tensor, and the loop holds a batch
// being gathered and its stacked copy for the model. 0 MiB: four batches. Throws ConfigError when the budget cannot hold a batch,
// naming the smallest budget that can. The model's weights and activations are not counted.
size_t prefetch_tiles(double mem_budget_mb, const io::Slide& slide, const data::TileGrid& grid, int input_size,
                      int batch_size, int workers);

struct SlideEmbedJob {
  std::vector<std::string> slides;
  std::string slide_list;   // CSV with a `path` column (adds to slides)
  std::string out_dir;
  std::string coords_dir;   // embed exactly the tiles of DIR/<name>.h5 files instead of tiling
  std::string shard;        // "i/n"; empty: RANK / WORLD_SIZE from the environment, else all
  int batch_size = 32, workers = 2;
  double mem_budget_mb = 0;  // bounds the tiles between readers and model (prefetch_tiles); 0: four batches
  bool keep_going = false;
  // Stain normalisation of each tile before the model: "" (none), "macenko" (to stain_reference's
  // stains, else the usual H&E reference), "reinhard" (to stain_reference's CIELAB statistics).
  // A tile with too little stain for Macenko's fit is passed as it is. Recorded as attributes.
  std::string stain;
  std::string stain_reference;  // an image file
  data::TissueOptions tissue;
  data::TilingOptions tiling;
  io::ReadSpec read;

  void bind(Config& cfg);  // slides.*, tile.*, tissue.* keys (read.*, batch size, workers: the caller's)
  std::vector<std::string> slide_paths() const;  // slides + the list's, after the shard
  std::vector<SlideEmbedResult> run(models::LoadedBackbone& model, c10::Device device,
                                    const std::map<std::string, std::string>& attrs,
                                    const std::function<void(size_t done, size_t total, const SlideEmbedResult&)>& progress = {});
};

// The whole-slide part of `medfm demo`: `medfm tile` (coords, contours, thumbnail) into
// out_dir/tiles, the same tiles embedded into out_dir/<name>.h5, and a heatmap of the first
// feature over the slide in out_dir/<name>_heatmap.png.
struct SlideDemo {
  std::string coords, thumbnail, features, heatmap;
  int64_t n_tiles = 0;
  double seconds = 0;
};
SlideDemo slide_demo(models::LoadedBackbone& model, const std::string& slide, const std::string& out_dir,
                     c10::Device device, const std::map<std::string, std::string>& attrs);

// A cheap identity of a slide file: SHA-256 of its size and its first and last MiB.
std::string slide_fingerprint(const std::string& path);

}  // namespace medfm::extract

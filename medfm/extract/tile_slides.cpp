#include "medfm/extract/tile_slides.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "medfm/core/atomic_file.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/hash.h"
#include "medfm/extract/h5_coords.h"
#include "medfm/io/image2d.h"

namespace medfm::extract {

namespace fs = std::filesystem;

std::string slide_name(const std::string& path) { return fs::path(path).stem().string(); }

void prepare_slide_outputs(const std::vector<std::string>& slides, const std::string& out_dir, const std::string& who) {
  std::map<std::string, std::string> seen;
  for (const auto& s : slides) {
    const auto n = slide_name(s);
    MEDFM_CHECK_T(ConfigError, !seen.count(n), who, ": '", s, "' and '", seen[n], "' would both write ", n, ".h5");
    seen[n] = s;
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  MEDFM_CHECK_T(IoError, fs::is_directory(out_dir), who, ": cannot create the output folder '", out_dir, "'");
}

void bind_tiling(Config& cfg, data::TissueOptions& tissue, data::TilingOptions& tiling) {
  cfg.bind("tile.mpp", tiling.target_mpp, "um/px of the tiles");
  cfg.bind("tile.size", tiling.tile, "tile side in pixels at tile.mpp");
  cfg.bind("tile.overlap", tiling.overlap, "pixels shared by neighbouring tiles");
  cfg.bind("tile.min_tissue", tiling.min_tissue, "fraction of a tile on tissue");
  cfg.bind("tissue.method", tissue.method, "hsv | otsu");
  cfg.bind("tissue.mask_mpp", tissue.mask_mpp, "um/px of the tissue mask");
  cfg.bind("tissue.saturation_threshold", tissue.saturation_threshold, "hsv: fixed threshold 1..255 (default 8), 0 = Otsu");
  cfg.bind("tissue.median_um", tissue.median_um, "median blur window");
  cfg.bind("tissue.close_um", tissue.close_um, "morphological closing kernel");
  cfg.bind("tissue.min_tissue_mm2", tissue.min_tissue_mm2, "smallest tissue region kept");
  cfg.bind("tissue.min_hole_mm2", tissue.min_hole_mm2, "smallest hole kept");
  cfg.bind("tissue.max_holes", tissue.max_holes, "holes kept per region");
  cfg.bind("tissue.black_value", tissue.black_value, "HSV value below which a pixel is not tissue");
  cfg.bind("tissue.exclude_pen", tissue.exclude_pen, "pen ink is not tissue");
  cfg.bind("tissue.model", tissue.model, "TorchScript segmentation model, [1,3,H,W] RGB 0..1 -> [1,C,h,w] (replaces method)");
  cfg.bind("tissue.model_threshold", tissue.model_threshold, "one-channel model: tissue where output > this (0 logits, 0.5 probabilities)");
}

void TileJob::bind(Config& cfg) {
  cfg.bind("tile.slides", slides, "slide files");
  cfg.bind("tile.out", out_dir, "output folder");
  cfg.bind("tile.roi", roi, "GeoJSON regions of interest (level-0 pixels)");
  cfg.bind("tile.keep_going", keep_going, "record a bad slide and go on");
  cfg.bind("tile.thumbnail_px", thumbnail_px, "longer side of the thumbnail");
  bind_tiling(cfg, tissue, tiling);
  read.bind(cfg);
}

namespace {

TileResult tile_one(const TileJob& job, const std::string& path, const std::vector<data::TissueRegion>& roi,
                    const std::map<std::string, std::string>& attrs) {
  const auto t0 = std::chrono::steady_clock::now();
  TileResult r;
  r.slide = path;
  r.name = slide_name(path);
  auto slide = io::open_slide(path, job.read.options());
  r.mpp_source = slide->mpp_source();
  auto tissue = data::detect_tissue(*slide, job.tissue);
  auto grid = data::make_tile_grid(*slide, tissue, job.tiling, roi);
  for (const auto& reg : tissue.regions) r.tissue_mm2 += reg.area_mm2;
  r.n_tiles = static_cast<int64_t>(grid.coords.size());
  r.n_candidates = grid.n_candidates;
  r.level0_mpp = grid.level0_mpp;
  auto a = attrs;
  a["slide"] = path;
  a["slide_mpp_source"] = slide->mpp_source();
  a["tissue_method"] = job.tissue.effective_method();
  if (!job.tissue.model.empty()) {
    a["tissue_model"] = job.tissue.model;
    a["tissue_model_sha256"] = sha256_file(job.tissue.model);
  }
  a["tissue_mm2"] = std::to_string(r.tissue_mm2);
  const std::string base = (fs::path(job.out_dir) / r.name).string();
  write_coords(base + ".h5", grid, r.name, a);
  {
    AtomicFile gj(base + ".geojson");
    std::ofstream f(gj.temp_path());
    f << data::tissue_geojson(tissue, r.name);
    f.close();
    MEDFM_CHECK_T(IoError, f.good(), "tile: cannot write '", base, ".geojson'");
    gj.commit();
  }
  io::write_jpeg(base + ".jpg", data::tiling_thumbnail(*slide, tissue, grid, job.thumbnail_px), 85);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

std::vector<TileResult> TileJob::run(const std::map<std::string, std::string>& attrs,
                                     const std::function<void(size_t, size_t)>& progress) {
  MEDFM_CHECK_T(ConfigError, !slides.empty(), "tile: no slides given");
  MEDFM_CHECK_T(ConfigError, !out_dir.empty(), "tile: no output folder given (tile.out)");
  prepare_slide_outputs(slides, out_dir, "tile");
  std::vector<data::TissueRegion> roi_regions;
  if (!roi.empty()) roi_regions = data::read_geojson_regions(roi);
  std::vector<TileResult> out;
  for (size_t i = 0; i < slides.size(); ++i) {
    try {
      out.push_back(tile_one(*this, slides[i], roi_regions, attrs));
    } catch (const Error& e) {
      if (!keep_going) throw;
      TileResult r;
      r.slide = slides[i];
      r.name = slide_name(slides[i]);
      r.error = e.what();
      out.push_back(r);
    }
    if (progress) progress(i + 1, slides.size());
  }
  return out;
}

}  // namespace medfm::extract

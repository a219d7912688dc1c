#include "medfm/extract/pretrain_sources.h"

#include <torch/torch.h>

#include <filesystem>
#include <list>
#include <mutex>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/data/model_input.h"
#include "medfm/data/tissue.h"
#include "medfm/data/volume_transforms.h"
#include "medfm/extract/h5_coords.h"
#include "medfm/extract/source.h"
#include "medfm/extract/tile_slides.h"

namespace medfm::extract {

namespace fs = std::filesystem;

void PretrainData::bind(Config& cfg) {
  cfg.bind("data.images", images, "2D images: files, folders or CSVs with a `path` column");
  cfg.bind("data.slides", slides, "whole-slide images: files, folders or CSVs");
  cfg.bind("data.volumes", volumes, "NIfTI / DICOM volumes: files, folders (a DICOM series folder) or CSVs");
  cfg.bind("data.weights", weights, "mixture weights of the given kinds (images, slides, volumes order; empty: by size)");
  cfg.bind("data.image_cache_mb", image_cache_mb, "decoded data.images files kept in memory, MiB (0: decode every draw)");
  cfg.bind("data.image_patch", image_patch,
           "square patch side in pixels cut at random from each image, centred on its field of view (0: the whole image)");
  cfg.bind("data.window", window, "window for images that are not display images (DICOM)");
  cfg.bind("data.tiles_dir", tiles_dir, "`medfm tile` output (<name>.h5 tile grids); empty: a saturation mask at start");
  cfg.bind("data.slide_mpp", slide_mpp, "um/px of the slide tiles");
  cfg.bind("data.slide_tile", slide_tile, "slide tile side in pixels at slide_mpp");
  cfg.bind("data.tissue_method", tissue.method, "slides without a tile grid: hsv | otsu");
  cfg.bind("data.volume_planes", volume_planes, "planes slices are cut in: axial, coronal, sagittal");
  cfg.bind("data.volume_window", volume_window, "volume intensities -> [0,1] (percentile, minmax, a CT preset, W/L)");
  cfg.bind("data.volume_patch", volume_patch, "square patch side in pixels centred on foreground (0: the whole slice)");
  cfg.bind("data.volume_min_foreground", volume_min_foreground, "slices with less foreground are skipped");
  read.bind(cfg);
}

namespace {

std::vector<std::string> expand(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    auto in = list_inputs(e);
    out.insert(out.end(), in.paths.begin(), in.paths.end());
  }
  return out;
}

std::string count(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// A random p x p patch of x [C,H,W] in [0,1], centred on a pixel whose brightest channel is above 0.05
// (the field of view of a fundus photograph, the foreground of a slice; up to 20 tries, else anywhere).
// Smaller images are padded with background (0) first.
at::Tensor random_patch(at::Tensor x, int64_t p, Rng& rng) {
  const int64_t h = x.size(1), w = x.size(2);
  if (h < p || w < p) x = torch::constant_pad_nd(x, {0, std::max<int64_t>(0, p - w), 0, std::max<int64_t>(0, p - h)}, 0.0);
  x = x.contiguous();
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  auto px = x.accessor<float, 3>();  // only the tried centres are looked at, not a whole-image mask
  auto fg = [&](int64_t y, int64_t xx) {
    for (int64_t c = 0; c < C; ++c)
      if (px[c][y][xx] > 0.05f) return true;
    return false;
  };
  int64_t cy = rng.below(H), cx = rng.below(W);
  for (int t = 0; t < 20 && !fg(cy, cx); ++t) cy = rng.below(H), cx = rng.below(W);
  const int64_t top = std::clamp<int64_t>(cy - p / 2, 0, H - p), left = std::clamp<int64_t>(cx - p / 2, 0, W - p);
  return x.narrow(1, top, p).narrow(2, left, p).contiguous();
}

class ImageFiles : public PretrainSource {
 public:
  ImageFiles(std::vector<std::string> paths, const PretrainData& d)
      : paths_(std::move(paths)), read_(d.read.options()), patch_(d.image_patch) {
    intensity_.window = d.window;
    MEDFM_CHECK_T(ConfigError, d.image_patch >= 0, "data.image_patch: ", d.image_patch, " is negative");
    MEDFM_CHECK_T(ConfigError, d.image_cache_mb >= 0, "data.image_cache_mb: ", d.image_cache_mb, " is negative");
    cache_budget_ = static_cast<size_t>(d.image_cache_mb) << 20;
    for (const auto& p : paths_) {
      const io::Format* f = io::detect_format(p);
      MEDFM_CHECK_T(FormatError, f, "pretrain: ", p, " is not a format medfm reads");
      MEDFM_CHECK_T(ConfigError, f->kind != io::Kind::Slide, "pretrain: ", p, " is a whole-slide image: give it in data.slides");
    }
  }
  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  std::string describe() const override {
    return "images: " + count(size()) + " files" + (patch_ > 0 ? ", patches of " + std::to_string(patch_) + " px" : "");
  }
  at::Tensor get(int64_t i, Rng& rng) const override {
    const auto& p = paths_[static_cast<size_t>(i)];
    try {
      auto d = decoded(static_cast<size_t>(i));
      auto x = d->display ? data::display_to_rgb01(d->chw, d->stored_dtype)
                          : data::apply_intensity(d->chw.narrow(0, 0, 1), d->map);
      return patch_ > 0 ? random_patch(x, patch_, rng) : x;
    } catch (const Error& e) {
      throw Error("pretrain: " + p + ": " + e.what());
    }
  }

 private:
  // A decoded file: its stored pixels (not the float image, a quarter of the bytes for 8-bit files)
  // and how they map to [0,1].
  struct Decoded {
    at::Tensor chw;
    std::string stored_dtype;
    bool display = false;
    data::IntensityMap map;
    size_t bytes() const { return static_cast<size_t>(chw.nbytes()); }
  };

  std::shared_ptr<const Decoded> decode(const std::string& p) const {
    Image img = io::open_image(p, read_);
    MEDFM_CHECK_T(ConfigError, !(img.is_volume && img.pixels.dim() == 4 && img.pixels.size(1) > 1),
                  "a volume: give it in data.volumes");
    auto d = std::make_shared<Decoded>();
    d->chw = img.pixels.dim() == 4 ? img.pixels.select(1, 0).contiguous() : img.pixels;  // [C,1,Y,X] -> [C,Y,X]
    d->stored_dtype = img.stored_dtype;
    d->display = is_display_image(img);
    if (!d->display) {
      d->map = data::intensity_map(img, intensity_);
      MEDFM_CHECK_T(ConfigError, !d->map.zscore, "data.window: zscore gives no [0,1] image for the views");
    }
    return d;
  }

  // Small corpora (a few large fundus photographs, a folder of PNGs) are drawn from again and again:
  // decoded files are kept up to data.image_cache_mb, least recently used first out. Decoding is
  // deterministic, so the cache never changes what a draw returns.
  std::shared_ptr<const Decoded> decoded(size_t i) const {
    if (cache_budget_ == 0) return decode(paths_[i]);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(i);
      if (it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return it->second.first;
      }
    }
    auto d = decode(paths_[i]);  // outside the lock: loader threads decode different files at once
    if (d->bytes() > cache_budget_) return d;
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.count(i)) return d;  // another thread decoded it meanwhile
    while (cache_bytes_ + d->bytes() > cache_budget_ && !lru_.empty()) {
      auto victim = cache_.find(lru_.back());
      cache_bytes_ -= victim->second.first->bytes();
      cache_.erase(victim);
      lru_.pop_back();
    }
    lru_.push_front(i);
    cache_.emplace(i, std::make_pair(d, lru_.begin()));
    cache_bytes_ += d->bytes();
    return d;
  }

  std::vector<std::string> paths_;
  io::ReadOptions read_;
  int patch_;
  data::IntensitySpec intensity_;
  size_t cache_budget_ = 0;
  mutable std::mutex mu_;
  mutable std::list<size_t> lru_;
  mutable std::unordered_map<size_t, std::pair<std::shared_ptr<const Decoded>, std::list<size_t>::iterator>> cache_;
  mutable size_t cache_bytes_ = 0;
};

class SlideTiles : public PretrainSource {
 public:
  SlideTiles(const std::vector<std::string>& paths, const PretrainData& d) {
    const auto ro = d.read.options();
    data::TilingOptions to;
    to.target_mpp = d.slide_mpp;
    to.tile = d.slide_tile;
    for (const auto& p : paths) {
      auto slide = io::open_slide(p, ro);
      data::TileGrid grid;
      const std::string h5 = d.tiles_dir.empty() ? "" : (fs::path(d.tiles_dir) / (slide_name(p) + ".h5")).string();
      if (!h5.empty() && fs::exists(h5)) {
        grid = read_coords(h5);
      } else {
        grid = data::make_tile_grid(*slide, data::detect_tissue(*slide, d.tissue), to);
      }
      if (grid.coords.empty()) continue;  // no tissue: nothing to draw from this slide
      first_.push_back(total_);
      total_ += static_cast<int64_t>(grid.coords.size());
      slides_.push_back(std::move(slide));
      grids_.push_back(std::move(grid));
    }
    MEDFM_CHECK(total_ > 0, "pretrain: no tissue tiles in the ", paths.size(), " slides of data.slides");
    mpp_ = d.slide_mpp;
  }
  int64_t size() const override { return total_; }
  std::string describe() const override {
    std::ostringstream s;
    s << "slides: " << slides_.size() << " slides, " << count(total_) << " tissue tiles at " << mpp_ << " um/px";
    return s.str();
  }
  at::Tensor get(int64_t i, Rng& rng) const override {
    const size_t k = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), i) - first_.begin() - 1);
    const auto& g = grids_[k];
    auto xy = g.coords[static_cast<size_t>(i - first_[k])];
    const auto half = static_cast<int64_t>(g.tile_level0 / 2);
    const int64_t x = std::clamp<int64_t>(xy[0] + rng.below(2 * half + 1) - half, 0, std::max<int64_t>(0, g.level0_width - 1));
    const int64_t y = std::clamp<int64_t>(xy[1] + rng.below(2 * half + 1) - half, 0, std::max<int64_t>(0, g.level0_height - 1));
    try {
      return data::read_tile(*slides_[k], x, y, g.tile_level0, g.tile).to(torch::kFloat32).div_(255.0);
    } catch (const Error& e) {
      throw Error("pretrain: " + slides_[k]->path() + ": " + e.what());
    }
  }

 private:
  std::vector<std::unique_ptr<io::Slide>> slides_;
  std::vector<data::TileGrid> grids_;
  std::vector<int64_t> first_;
  int64_t total_ = 0;
  double mpp_ = 0;
};

class VolumeSlices : public PretrainSource {
 public:
  VolumeSlices(const std::vector<std::string>& paths, const PretrainData& d) : patch_(d.volume_patch) {
    MEDFM_CHECK_T(ConfigError, !d.volume_planes.empty(), "data.volume_planes: give at least one plane");
    MEDFM_CHECK_T(ConfigError, d.volume_patch >= 0, "data.volume_patch: ", d.volume_patch, " is negative");
    MEDFM_CHECK_T(ConfigError, d.volume_min_foreground >= 0 && d.volume_min_foreground <= 1,
                  "data.volume_min_foreground: ", d.volume_min_foreground, " is not a fraction");
    std::vector<data::Plane> planes;
    for (const auto& p : d.volume_planes) planes.push_back(data::parse_plane(p));
    data::IntensitySpec is;
    is.window = d.volume_window;
    const auto ro = d.read.options();
    for (const auto& p : paths) {
      Image img = io::open_volume(p, ro);
      MEDFM_CHECK_T(NotImplemented, !img.is_time_series() && img.channels() == 1, "pretrain: ", p, " has ",
                    img.channels(), " channels / ", img.n_timepoints, " time points (one 3D gray volume per input)");
      Image ras = data::reorient(img, "RAS");
      auto map = data::intensity_map(ras, is);
      MEDFM_CHECK_T(ConfigError, !map.zscore, "data.volume_window: zscore gives no [0,1] image for the views");
      ras.pixels = data::apply_intensity(ras.pixels, map);  // [1,Z,Y,X] float in [0,1]
      ras.stored_dtype = "float32";
      const size_t v = vols_.size();
      for (auto pl : planes) {
        const int64_t n = data::n_slices(ras, pl);
        for (int64_t k = 0; k < n; ++k) {
          auto sl = data::extract_slice(ras, pl, k);
          if ((sl.pixels > 0.05).to(torch::kFloat32).mean().item<double>() >= d.volume_min_foreground && sl.pixels.numel() > 0)
            items_.push_back({v, pl, k});
        }
      }
      vols_.push_back(std::move(ras));
    }
    MEDFM_CHECK(!items_.empty(), "pretrain: no slice of the ", paths.size(),
                " volumes in data.volumes has enough foreground (data.volume_min_foreground)");
  }
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  std::string describe() const override {
    return "volumes: " + std::to_string(vols_.size()) + " volumes, " + count(size()) + " slices" +
           (patch_ > 0 ? ", patches of " + std::to_string(patch_) + " px" : "");
  }
  at::Tensor get(int64_t i, Rng& rng) const override {
    const auto& it = items_[static_cast<size_t>(i)];
    auto sl = data::extract_slice(vols_[it.volume], it.plane, it.index);
    auto x = data::square_pixels(sl.pixels.to(torch::kFloat32), sl.row_mm, sl.col_mm);  // [1,H,W]
    return patch_ > 0 ? random_patch(x, patch_, rng) : x;
  }

 private:
  struct Item {
    size_t volume;
    data::Plane plane;
    int64_t index;
  };
  std::vector<Image> vols_;
  std::vector<Item> items_;
  int patch_;
};

class Mixture : public PretrainSource {
 public:
  Mixture(std::vector<std::unique_ptr<PretrainSource>> parts, std::vector<double> weights)
      : parts_(std::move(parts)), w_(std::move(weights)) {
    total_ = 0;
    for (auto& p : parts_) total_ += p->size();
    if (w_.empty())
      for (auto& p : parts_) w_.push_back(static_cast<double>(p->size()));
    MEDFM_CHECK_T(ConfigError, w_.size() == parts_.size(), "data.weights: ", w_.size(), " weights for ", parts_.size(),
                  " kinds of data");
    double sum = 0;
    for (double v : w_) {
      MEDFM_CHECK_T(ConfigError, v >= 0 && std::isfinite(v), "data.weights: ", v, " is not a weight");
      sum += v;
    }
    MEDFM_CHECK_T(ConfigError, sum > 0, "data.weights: all zero");
    for (double& v : w_) v /= sum;
  }
  int64_t size() const override { return total_; }
  std::string describe() const override {
    std::ostringstream s;
    for (size_t k = 0; k < parts_.size(); ++k) s << (k ? "; " : "") << parts_[k]->describe() << " (weight " << w_[k] << ")";
    return s.str();
  }
  at::Tensor get(int64_t, Rng& rng) const override {
    double u = rng.uniform();
    size_t k = 0;
    while (k + 1 < parts_.size() && u >= w_[k]) u -= w_[k++];
    return parts_[k]->get(rng.below(parts_[k]->size()), rng);
  }

 private:
  std::vector<std::unique_ptr<PretrainSource>> parts_;
  std::vector<double> w_;
  int64_t total_ = 0;
};

}  // namespace

std::unique_ptr<PretrainSource> make_pretrain_source(const PretrainData& d) {
  std::vector<std::unique_ptr<PretrainSource>> parts;
  if (!d.images.empty()) parts.push_back(std::make_unique<ImageFiles>(expand(d.images), d));
  if (!d.slides.empty()) parts.push_back(std::make_unique<SlideTiles>(expand(d.slides), d));
  if (!d.volumes.empty()) parts.push_back(std::make_unique<VolumeSlices>(expand(d.volumes), d));
  MEDFM_CHECK_T(ConfigError, !parts.empty(), "pretrain: no data: give data.images, data.slides or data.volumes");
  if (parts.size() == 1 && d.weights.size() <= 1) return std::move(parts[0]);
  return std::make_unique<Mixture>(std::move(parts), d.weights);
}

}  // namespace medfm::extract

#include "medfm/data/tiling.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::data {
namespace {

bool in_ring(const Ring& r, double x, double y) {  // even-odd rule
  bool in = false;
  for (size_t i = 0, j = r.size() - 1; i < r.size(); j = i++) {
    const auto& a = r[i];
    const auto& b = r[j];
    if ((a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0]) in = !in;
  }
  return in;
}

bool in_region(const TissueRegion& r, double x, double y) {
  if (!in_ring(r.outer, x, y)) return false;
  for (const auto& h : r.holes)
    if (in_ring(h, x, y)) return false;
  return true;
}

}  // namespace

void check_tiling_options(const TilingOptions& o) {
  MEDFM_CHECK_T(ConfigError, std::isfinite(o.target_mpp) && o.target_mpp > 0, "tiling: target um/px ", o.target_mpp,
                " must be positive");
  MEDFM_CHECK_T(ConfigError, o.tile > 0 && o.overlap >= 0 && o.overlap < o.tile, "tiling: tile ", o.tile,
                " px with overlap ", o.overlap, " (need tile > 0 and 0 <= overlap < tile)");
  MEDFM_CHECK_T(ConfigError, o.min_tissue >= 0 && o.min_tissue <= 1, "tiling: min_tissue ", o.min_tissue,
                " outside [0, 1]");
}

TileGrid make_tile_grid(const io::Slide& slide, const TissueMask& tissue, const TilingOptions& o,
                        const std::vector<TissueRegion>& roi) {
  check_tiling_options(o);
  const auto mpp = slide.mpp();
  MEDFM_CHECK_T(ConfigError, mpp.has_value(), "tiling: '", slide.path(), "' records no um/px (set it with read.mpp)");
  MEDFM_CHECK(tissue.mask.dim() == 2, "tiling: no tissue mask");
  TileGrid g;
  g.level0_mpp = (*mpp)[0];
  g.target_mpp = o.target_mpp;
  g.tile = o.tile;
  g.overlap = o.overlap;
  g.level0_width = slide.levels()[0].width;
  g.level0_height = slide.levels()[0].height;
  g.tile_level0 = o.tile * o.target_mpp / g.level0_mpp;
  g.patch_size_level0 = std::llround(g.tile_level0);
  MEDFM_CHECK_T(ConfigError, g.tile_level0 >= 1, "tiling: a tile would cover less than one level-0 pixel");
  const double step = (o.tile - o.overlap) * o.target_mpp / g.level0_mpp;

  // Summed-area table of the mask rows one grid row of tiles covers, [h+1, W+1] (a band, not the
  // whole mask: memory stays that of the mask whatever the slide's size).
  const int64_t Hm = tissue.mask.size(0), Wm = tissue.mask.size(1);
  at::Tensor sat;
  int64_t band0 = 0, band_h = 0;
  // Integral of the mask over [0,x] x [band0,y] at fractional mask coordinates: the summed-area
  // table interpolated bilinearly is exact for a piecewise-constant image. Outside the mask counts 0.
  auto integral = [&](double x, double y) {
    auto S = sat.accessor<int64_t, 2>();
    x = std::clamp(x, 0.0, static_cast<double>(Wm));
    y = std::clamp(y - static_cast<double>(band0), 0.0, static_cast<double>(band_h));
    const int64_t i = std::min<int64_t>(static_cast<int64_t>(x), Wm - 1);
    const int64_t j = std::min<int64_t>(static_cast<int64_t>(y), std::max<int64_t>(band_h - 1, 0));
    const double a = x - i, b = y - j;
    if (band_h == 0) return 0.0;
    return (1 - a) * (1 - b) * S[j][i] + a * (1 - b) * S[j][i + 1] + (1 - a) * b * S[j + 1][i] + a * b * S[j + 1][i + 1];
  };
  for (int64_t j = 0;; ++j) {
    const int64_t y = std::llround(j * step);
    if (y >= g.level0_height) break;
    band0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(y / tissue.scale_y)), 0, Hm);
    band_h = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((y + g.tile_level0) / tissue.scale_y)), 0, Hm) - band0;
    sat = torch::zeros({band_h + 1, Wm + 1}, at::kLong);
    if (band_h > 0)
      sat.narrow(0, 1, band_h).narrow(1, 1, Wm).copy_(tissue.mask.narrow(0, band0, band_h).to(at::kLong).cumsum(0).cumsum(1));
    for (int64_t i = 0;; ++i) {
      const int64_t x = std::llround(i * step);
      if (x >= g.level0_width) break;
      ++g.n_candidates;
      // The tile's exact footprint on the mask grid; area outside the slide counts as glass.
      const double mx0 = x / tissue.scale_x, my0 = y / tissue.scale_y;
      const double mx1 = (x + g.tile_level0) / tissue.scale_x, my1 = (y + g.tile_level0) / tissue.scale_y;
      const double covered = integral(mx1, my1) - integral(mx0, my1) - integral(mx1, my0) + integral(mx0, my0);
      const double frac = std::clamp(covered / ((mx1 - mx0) * (my1 - my0)), 0.0, 1.0);
      if (o.min_tissue > 0 ? frac < o.min_tissue : frac <= 0) continue;
      if (!roi.empty()) {
        const double cx = x + g.tile_level0 / 2, cy = y + g.tile_level0 / 2;
        bool inside = false;
        for (const auto& r : roi) inside = inside || in_region(r, cx, cy);
        if (!inside) continue;
      }
      g.coords.push_back({x, y});
      g.tissue.push_back(static_cast<float>(frac));
    }
  }
  return g;
}

int tile_read_level(const io::Slide& slide, double tile_level0, int tile) {
  return slide.best_level_for_downsample(std::max(1.0, tile_level0 / tile));
}

std::vector<at::Tensor> read_tile_run(const io::Slide& slide, const std::vector<std::array<int64_t, 2>>& coords,
                                      size_t first, size_t count, double tile_level0, int tile) {
  MEDFM_CHECK_T(ConfigError, tile > 0 && tile_level0 > 0, "tiling: bad tile size");
  MEDFM_ASSERT(count > 0 && first + count <= coords.size(), "tile run out of range");
  const int level = tile_read_level(slide, tile_level0, tile);
  const double lds = slide.levels()[level].downsample;
  const int64_t tw = std::max<int64_t>(1, std::llround(tile_level0 / lds));  // a tile at the level
  const int64_t x0 = coords[first][0], y0 = coords[first][1];
  std::vector<int64_t> ox(count);
  for (size_t k = 0; k < count; ++k) {
    MEDFM_ASSERT(coords[first + k][1] == y0 && coords[first + k][0] >= x0, "a tile run must lie on one row");
    ox[k] = std::llround((coords[first + k][0] - x0) / lds);
  }
  const int64_t w = ox.back() + tw;
  std::vector<uint8_t> buf(static_cast<size_t>(w * tw * 3));
  slide.read_region_rgb(x0, y0, level, w, tw, buf.data());
  cv::Mat region(static_cast<int>(tw), static_cast<int>(w), CV_8UC3, buf.data());
  std::vector<at::Tensor> out;
  for (size_t k = 0; k < count; ++k) {
    cv::Mat src = region(cv::Rect(static_cast<int>(ox[k]), 0, static_cast<int>(tw), static_cast<int>(tw))), dst;
    if (tw == tile) dst = src.clone();
    else cv::resize(src, dst, cv::Size(tile, tile), 0, 0, tw > tile ? cv::INTER_AREA : cv::INTER_LINEAR);
    out.push_back(torch::from_blob(dst.data, {tile, tile, 3}, at::kByte).permute({2, 0, 1}).contiguous());  // HWC -> CHW
  }
  return out;
}

at::Tensor read_tile(const io::Slide& slide, int64_t x, int64_t y, double tile_level0, int tile) {
  const std::vector<std::array<int64_t, 2>> one{std::array<int64_t, 2>{x, y}};
  return read_tile_run(slide, one, 0, 1, tile_level0, tile)[0];
}

std::vector<std::pair<size_t, size_t>> tile_runs(const TileGrid& g, size_t max_run) {
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < g.coords.size();) {
    size_t n = 1;
    while (i + n < g.coords.size() && n < max_run && g.coords[i + n][1] == g.coords[i][1] &&
           g.coords[i + n][0] - g.coords[i + n - 1][0] <= std::llround(g.tile_level0) + 1)
      ++n;
    runs.emplace_back(i, n);
    i += n;
  }
  return runs;
}

at::Tensor tiling_thumbnail(const io::Slide& slide, const TissueMask& tissue, const TileGrid& grid, int size) {
  double ds = 1;
  auto hwc = read_thumbnail(slide, size, &ds).permute({1, 2, 0}).contiguous();
  cv::Mat img(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  auto poly = [&](const Ring& r) {
    std::vector<cv::Point> p;
    for (const auto& q : r) p.emplace_back(static_cast<int>(std::lround(q[0] / ds)), static_cast<int>(std::lround(q[1] / ds)));
    return p;
  };
  const int side = std::max(1, static_cast<int>(std::lround(grid.tile_level0 / ds)));
  for (const auto& c : grid.coords) {
    const cv::Point a(static_cast<int>(std::lround(c[0] / ds)), static_cast<int>(std::lround(c[1] / ds)));
    cv::rectangle(img, a, a + cv::Point(side - 1, side - 1), cv::Scalar(40, 90, 230), 1);
  }
  for (const auto& r : tissue.regions) {
    cv::polylines(img, std::vector<std::vector<cv::Point>>{poly(r.outer)}, true, cv::Scalar(20, 180, 40), 2);
    for (const auto& h : r.holes) cv::polylines(img, std::vector<std::vector<cv::Point>>{poly(h)}, true, cv::Scalar(220, 30, 30), 1);
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

}  // namespace medfm::data

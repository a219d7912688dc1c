// Tissue detection and tiling on slides built from real tissue (scripts/make_test_slides.py):
// the tissue block found and the glass not, pen ink never tissue, the grid covering every tissue
// pixel, every tile meeting its threshold, the same physical field of view at any scanner um/px.
#if defined(MEDFM_HAVE_OPENCV) && defined(MEDFM_HAVE_OPENSLIDE)
#include "medfm/data/tiling.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"

namespace medfm::data {
namespace {

std::string data_dir() {
  const char* d = std::getenv("MEDFM_DATA");
  const char* home = std::getenv("HOME");
  return d ? std::string(d) : std::string(home ? home : ".") + "/.cache/medfm/data";
}
std::string slide_dir() { return data_dir() + "/slides/tiling"; }

std::unique_ptr<io::Slide> open(const std::string& name, std::optional<double> mpp = std::nullopt) {
  const std::string p = slide_dir() + "/" + name;
  EXPECT_TRUE(std::filesystem::exists(p)) << p << " missing: run scripts/fetch_data.sh";
  io::ReadOptions o;
  o.mpp = mpp;
  return io::open_slide(p, o);
}

// Tissue block of the test slides, level-0 pixels at 0.25 um/px: [200, 2248) x [120, 2168).
constexpr int64_t kX0 = 200, kY0 = 120, kX1 = 2248, kY1 = 2168;

TEST(Tissue, FindsTheTissueBlockAndNotTheGlass) {
  auto s = open("t025.tif");
  TissueOptions o;
  auto t = detect_tissue(*s, o);
  ASSERT_EQ(t.mask.dim(), 2);
  EXPECT_DOUBLE_EQ(t.mpp_x, 8.0);
  EXPECT_EQ(t.mask.size(1), static_cast<int64_t>(std::ceil(2560 / 32.0)));
  auto m = t.mask.to(torch::kFloat);
  // Inside the block (2 mask px margin): mostly tissue. Outside (2 px margin): none.
  const int64_t bx0 = kX0 / 32 + 2, by0 = kY0 / 32 + 2, bx1 = kX1 / 32 - 2, by1 = kY1 / 32 - 2;
  EXPECT_GT(m.slice(0, by0, by1).slice(1, bx0, bx1).mean().item<double>(), 0.8);
  auto outside = m.clone();
  outside.slice(0, kY0 / 32 - 2, kY1 / 32 + 3).slice(1, kX0 / 32 - 2, kX1 / 32 + 3).zero_();
  EXPECT_EQ(outside.sum().item<double>(), 0.0);
  ASSERT_FALSE(t.regions.empty());
  double area = 0;
  for (const auto& r : t.regions) area += r.area_mm2;
  EXPECT_GT(area, 0.5 * 0.512 * 0.512);  // the block is 2048 px x 0.25 um = 0.512 mm a side
  EXPECT_LT(area, 1.05 * 0.512 * 0.512);
  // Otsu on luminance finds the same block.
  o.method = "otsu";
  auto t2 = detect_tissue(*s, o);
  EXPECT_GT((t2.mask == t.mask).to(torch::kFloat).mean().item<double>(), 0.9);
  o.method = "magic";
  EXPECT_THROW(detect_tissue(*s, o), ConfigError);
}

TEST(Tissue, PenInkOnGlassIsNeverTissue) {
  auto s = open("pen.tif");
  std::ifstream f(slide_dir() + "/pen_strokes.json");
  ASSERT_TRUE(f.good());
  auto j = nlohmann::json::parse(f);
  auto t = detect_tissue(*s, TissueOptions{});
  // Every mask pixel outside the tissue block (2 px margin) must be empty although strokes cross it.
  auto m = t.mask.to(torch::kFloat).clone();
  m.slice(0, kY0 / 32 - 2, kY1 / 32 + 3).slice(1, kX0 / 32 - 2, kX1 / 32 + 3).zero_();
  EXPECT_EQ(m.sum().item<double>(), 0.0);
  // Pure ink colours are pen; the stain colours of the real tissue are not.
  auto ink = torch::tensor({30, 60, 200, 40, 160, 60, 200, 30, 40}, torch::kByte).view({3, 3}).t().contiguous().view({3, 1, 3});
  EXPECT_TRUE(pen_ink(ink).all().item<bool>());
  auto tissue_rgb = io::open_image(data_dir() + "/images/ihc.png");
  EXPECT_LT(pen_ink(tissue_rgb.pixels).to(torch::kFloat).mean().item<double>(), 0.001);
  // Without pen exclusion the strokes on glass are found: the test can fail.
  TissueOptions no_pen;
  no_pen.exclude_pen = false;
  auto t3 = detect_tissue(*s, no_pen);
  auto m3 = t3.mask.to(torch::kFloat).clone();
  m3.slice(0, kY0 / 32 - 2, kY1 / 32 + 3).slice(1, kX0 / 32 - 2, kX1 / 32 + 3).zero_();
  EXPECT_GT(m3.sum().item<double>(), 10.0);
}

TEST(Tiling, CoversEveryTissuePixelAndEachTileMeetsItsThreshold) {
  auto s = open("t025.tif");
  auto t = detect_tissue(*s, TissueOptions{});
  TilingOptions any;
  any.min_tissue = 0;
  any.tile = 64;
  auto g = make_tile_grid(*s, t, any);
  ASSERT_GT(g.coords.size(), 10u);
  EXPECT_DOUBLE_EQ(g.tile_level0, 128.0);
  // Coverage: paint every tile on the mask grid; every tissue pixel is painted.
  auto painted = torch::zeros_like(t.mask, torch::kBool);
  for (const auto& c : g.coords) {
    const int64_t x0 = c[0] / 32, y0 = c[1] / 32, x1 = (c[0] + 128 + 31) / 32, y1 = (c[1] + 128 + 31) / 32;
    painted.slice(0, y0, std::min(y1, painted.size(0))).slice(1, x0, std::min(x1, painted.size(1))).fill_(true);
  }
  EXPECT_TRUE((painted | (t.mask == 0)).all().item<bool>()) << "a tissue pixel lies under no tile";
  // Threshold: recompute each kept tile's fraction by brute force from the mask.
  TilingOptions half = any;
  half.min_tissue = 0.5;
  auto h = make_tile_grid(*s, t, half);
  EXPECT_LT(h.coords.size(), g.coords.size());
  // Brute force: each mask pixel weighted by the area it shares with the tile (level-0 pixels).
  auto overlap_fraction = [&](int64_t x, int64_t y) {
    auto m = t.mask.accessor<uint8_t, 2>();
    double covered = 0;
    for (int64_t j = 0; j < t.mask.size(0); ++j)
      for (int64_t i = 0; i < t.mask.size(1); ++i) {
        if (!m[j][i]) continue;
        const double ox = std::max(0.0, std::min<double>(x + 128, (i + 1) * 32.0) - std::max<double>(x, i * 32.0));
        const double oy = std::max(0.0, std::min<double>(y + 128, (j + 1) * 32.0) - std::max<double>(y, j * 32.0));
        covered += ox * oy;
      }
    return covered / (128.0 * 128.0);
  };
  for (size_t i = 0; i < h.coords.size(); ++i) {
    const auto& c = h.coords[i];
    const double want = overlap_fraction(c[0], c[1]);
    EXPECT_GE(want, 0.5 - 1e-9) << c[0] << "," << c[1];
    EXPECT_NEAR(h.tissue[i], want, 1e-6);
  }
  // And the tiles left out are below the threshold (a sample of the grid).
  std::set<std::pair<int64_t, int64_t>> kept;
  for (const auto& c : h.coords) kept.insert({c[0], c[1]});
  for (int64_t y = 0; y < 2400; y += 128 * 3)
    for (int64_t x = 0; x < 2560; x += 128)
      if (!kept.count({x, y})) EXPECT_LT(overlap_fraction(x, y), 0.5 + 1e-9) << x << "," << y;
  // Row-major order on the grid.
  for (size_t i = 1; i < g.coords.size(); ++i)
    EXPECT_TRUE(g.coords[i][1] > g.coords[i - 1][1] || (g.coords[i][1] == g.coords[i - 1][1] && g.coords[i][0] > g.coords[i - 1][0]));
}

TEST(Tiling, SameFieldOfViewAtAnyScannerResolution) {
  TilingOptions o;  // 64 px at 0.5 um/px = 32 um: a few hundred tiles
  o.tile = 64;
  std::vector<std::pair<std::string, double>> slides{{"t025.tif", 0.25}, {"t02631.tif", 0.2631}, {"t05.tif", 0.5}};
  std::vector<std::set<std::pair<int64_t, int64_t>>> cells;  // tile positions in 32 um grid units
  for (const auto& [name, mpp] : slides) {
    auto s = open(name);
    ASSERT_TRUE(s->mpp().has_value()) << name;
    EXPECT_NEAR((*s->mpp())[0], mpp, 1e-4) << name;
    auto g = make_tile_grid(*s, detect_tissue(*s, TissueOptions{}), o);
    EXPECT_NEAR(g.tile_level0 * g.level0_mpp, 32.0, 1e-6) << name;  // exact physical size, no "40x" rounding
    std::set<std::pair<int64_t, int64_t>> cell;
    for (const auto& c : g.coords) {  // on the 32 um grid, within a level-0 pixel
      for (int64_t v : {c[0], c[1]}) {
        const double um = v * g.level0_mpp;
        EXPECT_NEAR(um, std::round(um / 32.0) * 32.0, g.level0_mpp) << name;
      }
      cell.insert({std::llround(c[0] * g.level0_mpp / 32.0), std::llround(c[1] * g.level0_mpp / 32.0)});
    }
    EXPECT_GT(cell.size(), 200u) << name;
    cells.push_back(cell);
  }
  // The same physical tiles are chosen whatever the scanner's um/px (borderline tiles may differ).
  for (size_t k = 1; k < cells.size(); ++k) {
    size_t both = 0;
    for (const auto& c : cells[k]) both += cells[0].count(c);
    EXPECT_GT(static_cast<double>(both), 0.9 * std::max(cells[0].size(), cells[k].size())) << slides[k].first;
  }
}

// A level 0 wider than OpenCV's 32,767 px limit: t025's tissue placed at x = 35,840 (aligned with
// tiles, pyramid levels and JPEG blocks) gives t025's tiles shifted by exactly 35,840, read alike.
TEST(Tiling, LevelWiderThanOpenCvLimitsGivesTheShiftedTiles) {
  constexpr int64_t kShift = 35840;
  auto wide = open("wide.tif");
  auto ref = open("t025.tif");
  ASSERT_GT(wide->levels()[0].width, 32767);
  TilingOptions o;
  auto gw = make_tile_grid(*wide, detect_tissue(*wide, TissueOptions{}), o);
  auto gr = make_tile_grid(*ref, detect_tissue(*ref, TissueOptions{}), o);
  ASSERT_GT(gr.coords.size(), 10u);
  ASSERT_EQ(gw.coords.size(), gr.coords.size());
  for (size_t k = 0; k < gr.coords.size(); ++k) {
    EXPECT_EQ(gw.coords[k][0], gr.coords[k][0] + kShift) << k;
    EXPECT_EQ(gw.coords[k][1], gr.coords[k][1]) << k;
  }
  const auto& c = gr.coords[gr.coords.size() / 2];
  EXPECT_TRUE(read_tile(*wide, c[0] + kShift, c[1], gw.tile_level0, 224).equal(read_tile(*ref, c[0], c[1], gr.tile_level0, 224)));
  double ds = 0;
  auto thumb = read_thumbnail(*wide, 1024, &ds);
  EXPECT_EQ(thumb.size(2), 1024);
  EXPECT_NEAR(ds, 40.0, 1e-9);
}

TEST(Tiling, NeedsUmPerPixelAndHonoursRegionsOfInterest) {
  auto s = open("nompp.tif");
  EXPECT_FALSE(s->mpp().has_value());
  EXPECT_THROW(detect_tissue(*s, TissueOptions{}), ConfigError);
  auto s2 = open("nompp.tif", 0.25);
  auto t = detect_tissue(*s2, TissueOptions{});
  auto all = make_tile_grid(*s2, t, TilingOptions{});
  ASSERT_GT(all.coords.size(), 4u);
  TissueRegion roi;  // the top-left quarter of the tissue block
  roi.outer = {{200, 120}, {1224, 120}, {1224, 1144}, {200, 1144}, {200, 120}};
  auto some = make_tile_grid(*s2, t, TilingOptions{}, {roi});
  EXPECT_GT(some.coords.size(), 0u);
  EXPECT_LT(some.coords.size(), all.coords.size() / 2);
  for (const auto& c : some.coords) {
    EXPECT_LT(c[0] + some.tile_level0 / 2, 1224);
    EXPECT_LT(c[1] + some.tile_level0 / 2, 1144);
  }
  TilingOptions bad;
  bad.overlap = bad.tile;
  EXPECT_THROW(make_tile_grid(*s2, t, bad), ConfigError);
}

TEST(Tiling, ReadTileMatchesAreaResamplingOfLevelZero) {
  auto s = open("t025.tif");
  // 224 px at 0.5 um/px from level 0 at 0.25: a 448 px region averaged 2x2.
  // 224 px at 0.5 um/px from a 0.25 um/px slide: its 2x pyramid level is read as it is ...
  auto tile = read_tile(*s, 600, 700, 448.0, 224);
  EXPECT_TRUE(tile.equal(s->read_region(600, 700, 1, 224, 224)));
  // ... and shows what area-averaging level 0 shows: the level is its own JPEG (Q85) encoding, so a
  // mean difference of a few grey levels (measured 4.2) is the tolerance, 6 of 255.
  auto region = s->read_region(600, 700, 0, 448, 448).to(torch::kDouble).unsqueeze(0);
  auto ref = torch::avg_pool2d(region, 2).squeeze(0);
  EXPECT_LT((tile.to(torch::kDouble) - ref).abs().mean().item<double>(), 6.0);
  // 0.4 um/px is between levels: read from level 0 (finer) and area-resampled, 358.4 -> 224 px.
  // The reference is torch's adaptive area pooling (integer bins, where medfm weights exact areas):
  // a mean difference under 2.5 grey levels (measured 1.9) on this textured tissue.
  auto t4 = read_tile(*s, 600, 700, 358.4, 224).to(torch::kFloat).unsqueeze(0);
  auto r0 = s->read_region(600, 700, 0, 358, 358).to(torch::kFloat).unsqueeze(0);
  auto ref4 = torch::nn::functional::interpolate(r0, torch::nn::functional::InterpolateFuncOptions()
                                                          .size(std::vector<int64_t>{224, 224})
                                                          .mode(torch::kArea));
  EXPECT_LT((t4 - ref4).abs().mean().item<double>(), 2.5);
  EXPECT_LT((t4.mean() - ref4.mean()).abs().item<double>(), 0.5);  // no shift in brightness
}

}  // namespace
}  // namespace medfm::data
#endif  // MEDFM_HAVE_OPENCV && MEDFM_HAVE_OPENSLIDE

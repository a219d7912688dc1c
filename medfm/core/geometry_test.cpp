#include "medfm/core/geometry.h"

#include <gtest/gtest.h>

namespace medfm {
namespace {

TEST(Geometry, AffineRoundTripAndAxcodes) {
  Mat4 a = {-0.859375, 0, 0, 110.5, 0, -0.851606, 0.94864, 78.3, 0, 0.115292, 7.007145, -72.75, 0, 0, 0, 1};
  Geometry g = Geometry::from_affine(a);
  Mat4 b = g.affine();
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(a[i], b[i], 1e-12);
  EXPECT_NEAR(g.spacing[0], 0.859375, 1e-12);
  EXPECT_EQ(g.orientation_code(), "LPS");
  EXPECT_EQ(axcodes(mat4_identity()), "RAS");
  Mat4 sag = {0, 0, -1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(axcodes(sag), "ASL");
  auto w = g.voxel_to_world({1, 2, 3});
  EXPECT_NEAR(w[2], -72.75 + 2 * 0.115292 + 3 * 7.007145, 1e-9);
}

TEST(Geometry, ZeroColumnIsAFormatError) {
  Mat4 a = mat4_identity();
  a[5] = 0;
  EXPECT_ANY_THROW(Geometry::from_affine(a));
}

}  // namespace
}  // namespace medfm

#include "medfm/data/volume_transforms.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::data {
namespace {

// A small oblique, flipped volume whose voxel values encode their index.
Image test_volume() {
  Image img;
  img.is_volume = true;
  img.pixels = torch::arange(4 * 5 * 6, at::kFloat).view({1, 4, 5, 6});  // Z=4, Y=5, X=6
  Mat4 a = {0, 0, 2.0, 10,   // columns: i -> (0,-1.5,0) P, j -> (0,0,-3) I, k -> (2,0,0) R
            -1.5, 0, 0, 20,  //
            0, -3.0, 0, 30,  //
            0, 0, 0, 1};
  img.geometry = Geometry::from_affine(a);  // i -> P (y-), j -> I (z-), k -> R (x+): "PIR"
  return img;
}

// Value at the voxel nearest to world position w.
float value_at_world(const Image& img, const Vec3& w) {
  auto a = img.geometry.affine();
  auto A = torch::tensor(std::vector<double>(a.begin(), a.end())).view({4, 4});
  auto ijk = torch::linalg_solve(A, torch::tensor({w[0], w[1], w[2], 1.0}).view({4, 1})).flatten();
  int64_t i = std::llround(ijk[0].item<double>()), j = std::llround(ijk[1].item<double>()), k = std::llround(ijk[2].item<double>());
  return img.pixels.index({0, k, j, i}).item<float>();
}

TEST(Reorient, ReachesTheCodeAndKeepsEveryVoxelAtItsWorldPosition) {
  Image img = test_volume();
  EXPECT_EQ(img.geometry.orientation_code(), "PIR");
  for (const char* code : {"RAS", "LPS", "SAR"}) {
    Image r = reorient(img, code);
    EXPECT_EQ(r.geometry.orientation_code(), code);
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t j = 0; j < 5; ++j)
        for (int64_t i = 0; i < 6; ++i) {
          auto w = img.geometry.voxel_to_world({double(i), double(j), double(k)});
          ASSERT_EQ(value_at_world(r, w), img.pixels.index({0, k, j, i}).item<float>()) << code;
        }
  }
  EXPECT_THROW(reorient(img, "RAR"), ConfigError);
}

TEST(Resample, KeepsOriginAndExtentInsideTheInput) {
  Image img = test_volume();
  Image r = resample(img, {0.75, 1.0, 1.5}, "linear");
  auto s = r.size();
  EXPECT_EQ(s[0], 11);  // (6-1) * 1.5 / 0.75 + 1
  EXPECT_EQ(s[1], 13);  // (5-1) * 3 / 1 + 1
  EXPECT_EQ(s[2], 5);   // (4-1) * 2 / 1.5 + 1
  for (int a = 0; a < 3; ++a) EXPECT_DOUBLE_EQ(r.geometry.origin[a], img.geometry.origin[a]);
  // Linear interpolation of a function linear in the index is exact: value(i) = i + 6 j + 30 k.
  for (int64_t k = 0; k < s[2]; ++k)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t i = 0; i < s[0]; ++i) {
        double oi = i * 0.75 / 1.5, oj = j * 1.0 / 3.0, ok = k * 1.5 / 2.0;
        ASSERT_NEAR(r.pixels.index({0, k, j, i}).item<float>(), oi + 6 * oj + 30 * ok, 1e-4);
      }
}

TEST(Resample, NearestKeepsTheLabelSet) {
  Image img = test_volume();
  img.pixels = (img.pixels.to(at::kLong) % 7);
  Image r = resample(img, {0.6, 0.9, 1.1}, "nearest");
  EXPECT_EQ(r.pixels.scalar_type(), at::kLong);
  auto in = std::get<0>(at::_unique(img.pixels)), out = std::get<0>(at::_unique(r.pixels));
  EXPECT_TRUE(at::isin(out, in).all().item<bool>());
  EXPECT_GT(out.numel(), 3);  // a non-constant map stays non-constant
  // Every output voxel holds the label of the input voxel nearest to its world position.
  auto s = r.size();
  for (int64_t k = 0; k < s[2]; ++k)
    for (int64_t j = 0; j < s[1]; ++j)
      for (int64_t i = 0; i < s[0]; ++i) {
        const double i_in = i * 0.6 / 1.5, j_in = j * 0.9 / 3.0, k_in = k * 1.1 / 2.0;  // input index along each axis
        const double frac[3] = {i_in - std::floor(i_in), j_in - std::floor(j_in), k_in - std::floor(k_in)};
        if (std::abs(frac[0] - 0.5) < 1e-6 || std::abs(frac[1] - 0.5) < 1e-6 || std::abs(frac[2] - 0.5) < 1e-6)
          continue;  // halfway between two voxels: either is nearest
        const float want = value_at_world(img, r.geometry.voxel_to_world({double(i), double(j), double(k)}));
        ASSERT_EQ(r.pixels.index({0, k, j, i}).item<float>(), want) << i << "," << j << "," << k;
      }
}

TEST(Window, PresetsAndStacking) {
  Image ct;
  ct.is_volume = true;
  ct.pixels = torch::tensor({-1000.f, 0.f, 40.f, 80.f, 1000.f}).view({1, 1, 1, 5});
  auto w = apply_window(ct.pixels, window_preset("brain"));  // [0, 80]
  EXPECT_FLOAT_EQ(w.flatten()[0].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(w.flatten()[2].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(w.flatten()[4].item<float>(), 1.f);
  Image st = window_stack(ct, {"brain", "bone", "lung"});
  EXPECT_EQ(st.pixels.sizes(), (std::vector<int64_t>{3, 1, 1, 5}));
  // brain [0, 80]; bone (400, 1800) -> [-500, 1300]; lung (-600, 1500) -> [-1350, 150].
  auto want = torch::tensor({0.f, 0.f, 0.5f, 1.f, 1.f,                                  //
                             0.f, 500.f / 1800, 540.f / 1800, 580.f / 1800, 1500.f / 1800,  //
                             350.f / 1500, 1.f * 1350 / 1500, 1390.f / 1500, 1430.f / 1500, 1.f})
                  .view({3, 1, 1, 5});
  EXPECT_TRUE(torch::allclose(st.pixels, want, 1e-6, 1e-7)) << st.pixels;
  EXPECT_THROW(window_preset("nope"), ConfigError);
  EXPECT_THROW(file_window(ct), ConfigError);
  ct.meta["window_center"] = "40";
  ct.meta["window_width"] = "80";
  EXPECT_DOUBLE_EQ(file_window(ct).width, 80);
}

TEST(Normalize, ZscoreAndPercentiles) {
  Image mr;
  mr.is_volume = true;
  mr.pixels = torch::cat({torch::zeros({10}), torch::arange(1, 101, at::kFloat)}).view({1, 1, 1, 110});
  auto z = zscore(mr).pixels.flatten();
  auto fg = z.narrow(0, 10, 100);
  EXPECT_NEAR(fg.mean().item<float>(), 0, 1e-5);
  EXPECT_NEAR(fg.std(false).item<float>(), 1, 1e-5);
  EXPECT_EQ(z[0].item<float>(), 0);
  auto p = percentile_normalize(mr, 0, 100).pixels.flatten();
  EXPECT_FLOAT_EQ(p[10].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(p[109].item<float>(), 1.f);
}

TEST(ForegroundCrop, MovesTheOriginSoWorldPositionsHold) {
  Image img = test_volume();
  img.pixels.zero_();
  img.pixels.index_put_({0, 2, 1, 3}, 5.f);
  img.pixels.index_put_({0, 3, 2, 4}, 7.f);
  Image c = foreground_crop(img, 0.5, 0);
  EXPECT_EQ(c.pixels.sizes(), (std::vector<int64_t>{1, 2, 2, 2}));
  auto w = img.geometry.voxel_to_world({3, 1, 2});
  EXPECT_EQ(value_at_world(c, w), 5.f);
  w = img.geometry.voxel_to_world({4, 2, 3});
  EXPECT_EQ(value_at_world(c, w), 7.f);
}

TEST(FundusFov, CentresTheDisc) {
  Image img;
  auto yy = torch::arange(100, at::kFloat).view({100, 1}), xx = torch::arange(160, at::kFloat).view({1, 160});
  auto disc = ((yy - 50).pow(2) + (xx - 90).pow(2)) <= 40 * 40;
  img.pixels = torch::stack({disc.to(at::kFloat) * 200, disc.to(at::kFloat) * 100, disc.to(at::kFloat) * 50}).to(at::kByte);
  FundusFov f;
  Image c = fundus_fov_crop(img, 0.1, &f);
  EXPECT_NEAR(f.cx, 90, 0.5);
  EXPECT_NEAR(f.cy, 50, 0.5);
  EXPECT_NEAR(f.radius, 40.5, 0.6);
  EXPECT_EQ(c.pixels.size(1), c.pixels.size(2));
  // Centre pixel of the crop is inside the disc, corners are black.
  int64_t m = c.pixels.size(1) / 2;
  EXPECT_EQ(c.pixels.index({0, m, m}).item<uint8_t>(), 200);
  EXPECT_EQ(c.pixels.index({0, 0, 0}).item<uint8_t>(), 0);
}

}  // namespace
}  // namespace medfm::data

#include <cstdlib>
#include <filesystem>

#include "medfm/io/formats.h"

namespace medfm::data {
namespace {

TEST(FundusFov, RealFundusPhotograph) {
  const char* d = std::getenv("MEDFM_DATA");
  const char* home = std::getenv("HOME");
  std::string path = (d ? std::string(d) : std::string(home ? home : ".") + "/.cache/medfm/data") + "/images/retina.jpg";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/fetch_data.sh";
  Image img = io::open_image(path);  // 1411 x 1411 colour fundus photograph, disc on black
  FundusFov f;
  Image c = fundus_fov_crop(img, 0.1, &f);
  EXPECT_GT(f.radius, 0.4 * 1411);
  EXPECT_LT(f.radius, 0.52 * 1411);
  EXPECT_NEAR(f.cx, 705, 60);
  EXPECT_NEAR(f.cy, 705, 60);
  EXPECT_EQ(c.pixels.size(1), c.pixels.size(2));
  // The crop's corners are outside the disc (dark), its centre inside (bright red channel).
  int64_t m = c.pixels.size(1) / 2;
  EXPECT_LT(c.pixels.index({0, 2, 2}).item<int>(), 30);
  EXPECT_GT(c.pixels.index({0, m, m}).item<int>(), 60);
}

}  // namespace
}  // namespace medfm::data

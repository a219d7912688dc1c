// Intensity windows, slice ranges, slice orientation and positions, square pixels.
#include "medfm/data/model_input.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "medfm/core/error.h"
#include "medfm/data/transforms.h"

namespace medfm::data {
namespace {

Image ct_row(std::vector<float> v) {
  Image img;
  img.is_volume = true;
  img.pixels = torch::tensor(v).view({1, 1, 1, static_cast<int64_t>(v.size())});
  return img;
}

TEST(Intensity, PresetsWidthLevelMinMaxPercentileAndFileWindows) {
  Image ct = ct_row({-1000, 0, 40, 80, 1000});
  auto brain = intensity_map(ct, {"brain"});
  EXPECT_DOUBLE_EQ(brain.lo, 0);
  EXPECT_DOUBLE_EQ(brain.hi, 80);
  auto v = apply_intensity(ct.pixels, brain).flatten();
  EXPECT_TRUE(torch::allclose(v, torch::tensor({0.f, 0.f, 0.5f, 1.f, 1.f})));
  auto wl = intensity_map(ct, {"400/40"});
  EXPECT_DOUBLE_EQ(wl.lo, -160);
  EXPECT_DOUBLE_EQ(wl.hi, 240);
  EXPECT_EQ(wl.describe(), "window [-160, 240] (W/L)");
  auto mm = intensity_map(ct, {"minmax"});
  EXPECT_DOUBLE_EQ(mm.lo, -1000);
  EXPECT_DOUBLE_EQ(mm.hi, 1000);
  // Percentiles with linear interpolation (numpy's default): 25th of 5 values is the 2nd.
  IntensitySpec pct{"percentile", 25, 75};
  auto p = intensity_map(ct, pct);
  EXPECT_DOUBLE_EQ(p.lo, 0);
  EXPECT_DOUBLE_EQ(p.hi, 80);
  // auto: the file's own window, except for MONOCHROME1 (its window is in the inverted units).
  EXPECT_EQ(intensity_map(ct, {}).source, "minmax");
  ct.meta["window_center"] = "50";
  ct.meta["window_width"] = "350";
  EXPECT_EQ(intensity_map(ct, {}).describe(), "window [-125, 225] (file)");
  ct.meta["photometric"] = "MONOCHROME1";
  EXPECT_EQ(intensity_map(ct, {}).source, "minmax");
  EXPECT_THROW(intensity_map(ct, {"lungs"}), ConfigError);
  EXPECT_THROW(intensity_map(ct, {"0/40"}), ConfigError);
  EXPECT_THROW(intensity_map(ct, {"400/x"}), ConfigError);
  EXPECT_THROW(intensity_map(ct, {"percentile", 60, 40}), ConfigError);
}

TEST(Intensity, ZscoreOverForegroundAndNonFiniteValuesIgnored) {
  Image mr = ct_row({0, 0, 2, 4, 6, std::numeric_limits<float>::quiet_NaN()});
  auto z = intensity_map(mr, {"zscore"});
  EXPECT_TRUE(z.zscore);
  EXPECT_DOUBLE_EQ(z.mean, 4);
  EXPECT_NEAR(z.std, std::sqrt(8.0 / 3.0), 1e-6);
  EXPECT_DOUBLE_EQ(intensity_map(mr, {"minmax"}).hi, 6);
  EXPECT_THROW(intensity_map(ct_row({std::numeric_limits<float>::infinity()}), {"minmax"}), Error);
}

TEST(SliceRange, PythonSemantics) {
  auto idx = [](const std::string& s, int64_t n) { return slice_indices(n, parse_slice_range(s)); };
  EXPECT_EQ(idx("", 4), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(idx("1:3", 10), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(idx("::4", 10), (std::vector<int64_t>{0, 4, 8}));
  EXPECT_EQ(idx("-3:", 10), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(idx(":-8:3", 10), (std::vector<int64_t>{0}));
  EXPECT_EQ(idx("5:100", 7), (std::vector<int64_t>{5, 6}));
  EXPECT_TRUE(idx("8:2", 10).empty());
  for (const char* bad : {"5", "a:b", "1:2:0", "1:2:-1", "1:2:3:4"}) EXPECT_THROW(parse_slice_range(bad), ConfigError) << bad;
}

// A RAS volume (identity direction) whose voxel value is 100*z + 10*y + x.
Image ras_volume() {
  Image img;
  img.is_volume = true;
  auto z = torch::arange(3).view({3, 1, 1}), y = torch::arange(4).view({1, 4, 1}), x = torch::arange(5).view({1, 1, 5});
  img.pixels = (100 * z + 10 * y + x).unsqueeze(0).to(torch::kFloat);  // [1,Z=3,Y=4,X=5]
  img.geometry.spacing = {0.5, 0.75, 2.0};
  img.geometry.origin = {10, 20, 30};
  return img;
}

TEST(Slices, RadiologicalOrientationAndCentres) {
  Image v = ras_volume();
  EXPECT_EQ(n_slices(v, Plane::kAxial), 3);
  EXPECT_EQ(n_slices(v, Plane::kCoronal), 4);
  EXPECT_EQ(n_slices(v, Plane::kSagittal), 5);
  // Axial: rows anterior (y max) first, columns patient right (x max) first.
  auto a = extract_slice(v, Plane::kAxial, 1);
  EXPECT_EQ(a.pixels.sizes(), (std::vector<int64_t>{1, 4, 5}));
  EXPECT_EQ(a.pixels[0][0][0].item<float>(), 100 + 30 + 4);
  EXPECT_EQ(a.pixels[0][3][4].item<float>(), 100 + 0 + 0);
  EXPECT_DOUBLE_EQ(a.row_mm, 0.75);
  EXPECT_DOUBLE_EQ(a.col_mm, 0.5);
  EXPECT_EQ(a.center_ras, (Vec3{10 + 2 * 0.5, 20 + 1.5 * 0.75, 30 + 1 * 2.0}));
  // Coronal: rows superior (z max) first, columns right first.
  auto c = extract_slice(v, Plane::kCoronal, 2);
  EXPECT_EQ(c.pixels.sizes(), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(c.pixels[0][0][0].item<float>(), 200 + 20 + 4);
  EXPECT_DOUBLE_EQ(c.row_mm, 2.0);
  EXPECT_EQ(c.center_ras, (Vec3{11, 21.5, 32}));
  // Sagittal: rows superior first, columns anterior first.
  auto s = extract_slice(v, Plane::kSagittal, 4);
  EXPECT_EQ(s.pixels.sizes(), (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(s.pixels[0][0][0].item<float>(), 200 + 30 + 4);
  EXPECT_EQ(s.pixels[0][2][3].item<float>(), 0 + 0 + 4);
  EXPECT_EQ(s.center_ras, (Vec3{12, 21.125, 32}));
  EXPECT_THROW(extract_slice(v, Plane::kAxial, 3), ConfigError);
  EXPECT_THROW(parse_plane("oblique"), ConfigError);
}

TEST(Slices, SquarePixelsResampleOnlyWhenAnisotropic) {
  auto img = torch::rand({1, 2, 4});
  EXPECT_TRUE(square_pixels(img, 1.0, 1.0005).equal(img));
  auto sq = square_pixels(img, 2.0, 1.0);  // rows twice as far apart: twice as many rows
  EXPECT_EQ(sq.sizes(), (std::vector<int64_t>{1, 4, 4}));
  auto flat = torch::full({1, 3, 6}, 0.25);
  EXPECT_TRUE(torch::allclose(square_pixels(flat, 1.0, 3.0), torch::full({1, 3, 18}, 0.25)));  // columns 3x apart
}

TEST(DisplayValues, EightAndSixteenBitToUnitRgb) {
  auto g8 = torch::tensor({0, 51, 255}, torch::kByte).view({1, 1, 3});
  auto rgb = display_to_rgb01(g8, "uint8");
  EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_FLOAT_EQ(rgb[2][0][1].item<float>(), 0.2f);
  auto g16 = torch::tensor({65535}, torch::kInt).view({1, 1, 1});
  EXPECT_FLOAT_EQ(display_to_rgb01(g16, "uint16")[0][0][0].item<float>(), 1.f);
  auto rgba = torch::zeros({4, 1, 1}, torch::kByte);
  EXPECT_EQ(display_to_rgb01(rgba, "uint8").size(0), 3);
  EXPECT_THROW(display_to_rgb01(g16, "float32"), NotImplemented);
}

// torchvision's CenterCrop: offsets int(round((size_in - size) / 2)), Python's round-half-even.
TEST(CenterCrop, RoundsOffsetsAsTorchvision) {
  auto img = torch::arange(9).view({1, 1, 9}).expand({1, 9, 9}).contiguous();
  EXPECT_EQ(center_crop(img, 8)[0][0][0].item<int64_t>(), 0);  // (9-8)/2 = 0.5 -> 0
  EXPECT_EQ(center_crop(img, 6)[0][0][0].item<int64_t>(), 2);  // 1.5 -> 2
  EXPECT_EQ(center_crop(img, 4)[0][0][0].item<int64_t>(), 2);  // 2.5 -> 2
  EXPECT_EQ(center_crop(img, 2)[0][0][0].item<int64_t>(), 4);  // 3.5 -> 4
  EXPECT_EQ(center_crop(img, 3).sizes(), (std::vector<int64_t>{1, 3, 3}));
  EXPECT_THROW(center_crop(img, 10), Error);
}

// A large image is resized strip by strip (never converted to float whole) with the result of the
// whole-image call, exactly: the antialiased resize does the width first, row by row.
TEST(ResizeRows, StripsEqualTheWholeImageCall) {
  torch::manual_seed(3);
  for (const char* interp : {"bilinear", "bicubic"}) {
    for (auto shape : {std::vector<int64_t>{3, 301, 517}, std::vector<int64_t>{1, 611, 257}, std::vector<int64_t>{3, 97, 130}}) {
      auto src = torch::randint(0, 256, shape, torch::kByte);
      int calls = 0;
      int64_t most_rows = 0;
      RowsToFloat to_float = [&](const at::Tensor& rows) {
        ++calls;
        most_rows = std::max(most_rows, rows.size(1));
        return display_to_rgb01(rows, "uint8");
      };
      for (int size : {64, 224}) {
        calls = 0, most_rows = 0;
        auto whole = resize_shorter(display_to_rgb01(src, "uint8"), size, interp);
        auto strips = resize_shorter_rows(src, size, interp, to_float, /*strip_bytes=*/int64_t{40} * 12 * shape[2]);
        ASSERT_EQ(strips.sizes(), whole.sizes()) << interp << " " << shape[1] << "x" << shape[2] << " -> " << size;
        EXPECT_TRUE(torch::equal(strips, whole)) << interp << " " << shape[1] << "x" << shape[2] << " -> " << size
                                                 << ": max diff " << (strips - whole).abs().max().item<float>();
        if (shape[1] > 40 && std::min(shape[1], shape[2]) != size) {
          EXPECT_EQ(most_rows, 40);  // 40 rows of 3 float channels per strip
          EXPECT_EQ(calls, (shape[1] + 39) / 40);
        }
      }
    }
  }
  // Small images are converted whole, once.
  auto small = torch::randint(0, 256, {3, 20, 30}, torch::kByte);
  int calls = 0;
  auto r = resize_shorter_rows(small, 8, "bilinear", [&](const at::Tensor& rows) {
    ++calls;
    return display_to_rgb01(rows, "uint8");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(torch::equal(r, resize_shorter(display_to_rgb01(small, "uint8"), 8, "bilinear")));
}

}  // namespace
}  // namespace medfm::data

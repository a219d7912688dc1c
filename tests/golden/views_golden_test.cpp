// View operations against torchvision 0.14's functional transforms (scripts/golden/gen_views_golden.py)
// on a crop of a real fundus photograph.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/safetensors.h"
#include "medfm/data/views.h"

namespace medfm::data {
namespace {

class ViewsGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(MEDFM_GOLDEN_DIR) + "/views.safetensors";
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/golden";
    st_ = std::make_unique<SafeTensors>(SafeTensors::open(path));
    img_ = st_->get("img");
  }
  void expect(const at::Tensor& got, const std::string& key, double tol = 1e-5) {
    auto want = st_->get(key);
    ASSERT_EQ(got.sizes(), want.sizes()) << key;
    EXPECT_LE((got - want).abs().max().item<double>(), tol) << key;
  }
  std::unique_ptr<SafeTensors> st_;
  at::Tensor img_;
};

TEST_F(ViewsGolden, ResizedCrop) {
  expect(resized_crop(img_, 5, 7, 40, 50, 32, "bicubic"), "crop_bicubic");
  expect(resized_crop(img_, 0, 3, 64, 61, 96, "bilinear"), "crop_bilinear");
}

TEST_F(ViewsGolden, ColourOps) {
  expect(adjust_brightness(img_, 1.3), "brightness");
  expect(adjust_contrast(img_, 0.7), "contrast");
  expect(adjust_saturation(img_, 1.4), "saturation");
  expect(adjust_hue(img_, 0.08), "hue_pos");
  expect(adjust_hue(img_, -0.3), "hue_neg");
  expect(rgb_to_grayscale(img_), "gray");
}

TEST_F(ViewsGolden, BlurAndSolarize) {
  expect(gaussian_blur(img_, 9, 1.3), "blur");
  expect(solarize(img_, 128.0 / 255.0), "solarize", 0);
}

}  // namespace
}  // namespace medfm::data

// Stain tools against skimage 0.19 and numpy references (scripts/golden/gen_stain_golden.py) on
// real immunohistochemistry (a crop of skimage's ihc.png).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/data/stain.h"

namespace medfm::data {
namespace {

const std::string kPath = std::string(MEDFM_GOLDEN_DIR) + "/stain.safetensors";

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

class StainGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kPath)) << kPath << " missing: run scripts/golden";
    st_ = std::make_unique<SafeTensors>(SafeTensors::open(kPath));
    img_ = st_->get("input");
  }
  std::unique_ptr<SafeTensors> st_;
  torch::Tensor img_;
};

TEST_F(StainGolden, ColourDeconvolutionAsSkimage) {
  auto hed = rgb_to_hed(img_);
  EXPECT_LT(max_abs(hed, st_->get("hed")), 1e-5);
  EXPECT_LT(max_abs(hed_to_rgb(hed), st_->get("hed_rgb")), 1e-5);
  // Not an exact round trip: like skimage, negative stain amounts are clipped to 0.
  EXPECT_LT((hed_to_rgb(hed) - img_).abs().mean().item<double>(), 0.05);
  EXPECT_LT(max_abs(hed_adjust(img_, {1.1, 0.9, 1.05}, {0.01, -0.02, 0.0}), st_->get("hed_adjusted")), 1e-5);
}

TEST_F(StainGolden, HedJitterIsSeededAndBounded) {
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(7), g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto a = hed_jitter(img_, 0.05, 0.01, g1), b = hed_jitter(img_, 0.05, 0.01, g2);
  EXPECT_TRUE(a.equal(b));
  EXPECT_GT(max_abs(a, img_), 1e-3);
  EXPECT_LT(max_abs(a, img_), 0.3);
  EXPECT_LT(max_abs(hed_jitter(img_, 0.0, 0.0, g1), hed_to_rgb(rgb_to_hed(img_))), 1e-6);
}

TEST_F(StainGolden, LabAndReinhardAsSkimage) {
  auto lab = rgb_to_lab(img_);
  EXPECT_LT(max_abs(lab, st_->get("lab")), 1e-3);  // L in 0..100
  EXPECT_LT(max_abs(lab_to_rgb(lab), st_->get("lab_rgb")), 1e-5);
  auto t = st_->get("reinhard_target").to(torch::kDouble);
  LabStats target;
  for (int c = 0; c < 3; ++c) target.mean[c] = t[c].item<double>(), target.std[c] = t[3 + c].item<double>();
  auto ref_stats = lab_stats(st_->get("reference"));
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(ref_stats.mean[c], target.mean[c], 1e-3);
    EXPECT_NEAR(ref_stats.std[c], target.std[c], 1e-3);
  }
  EXPECT_LT(max_abs(reinhard(img_, target), st_->get("reinhard")), 1e-4);
}

TEST_F(StainGolden, MacenkoAsTheNumpyReference) {
  MacenkoReference own = macenko_fit(img_);
  auto he = st_->get("macenko_he").to(torch::kDouble), max_c = st_->get("macenko_max_c").to(torch::kDouble);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(own.stains[i], he.view({-1})[i].item<double>(), 1e-6) << i;
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(own.max_conc[i], max_c[i].item<double>(), 1e-6) << i;
  EXPECT_LT(max_abs(macenko(img_), st_->get("macenko")), 1e-5);
  // Normalising an image to its own stains and maxima gives it back (up to the +1 in the OD).
  EXPECT_LT((macenko(img_, own) - img_).abs().mean().item<double>(), 0.01);
  EXPECT_THROW(macenko(torch::ones({3, 8, 8})), Error);  // white: no tissue
}

}  // namespace
}  // namespace medfm::data

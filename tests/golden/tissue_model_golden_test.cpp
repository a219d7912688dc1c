// --tissue-model: TorchScript segmentation models scripted by Debian's torch
// (scripts/golden/gen_tissue_models.py) run on a slide built from real tissue; their masks equal
// the same rule computed here on the slide at the mask's um/px, the output's shape is checked.
#if defined(MEDFM_HAVE_OPENCV) && defined(MEDFM_HAVE_OPENSLIDE)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "medfm/core/error.h"
#include "medfm/data/tissue.h"
#include "medfm/io/formats.h"

namespace medfm::data {
namespace {

const std::string kGolden = MEDFM_GOLDEN_DIR;

std::unique_ptr<io::Slide> t025() {
  const char* d = std::getenv("MEDFM_DATA");
  const char* home = std::getenv("HOME");
  const std::string p = (d ? std::string(d) : std::string(home ? home : ".") + "/.cache/medfm/data") + "/slides/tiling/t025.tif";
  EXPECT_TRUE(std::filesystem::exists(p)) << p << " missing: run scripts/fetch_data.sh";
  return io::open_slide(p);
}

TissueOptions with_model(const std::string& name) {
  TissueOptions o;
  o.model = kGolden + "/" + name;
  o.min_tissue_mm2 = 0;  // keep every region and hole: the mask is the model's
  o.min_hole_mm2 = 0;
  o.max_holes = 1 << 20;
  return o;
}

double iou(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.gt(0), y = b.gt(0);
  return (x & y).sum().item<double>() / std::max(1.0, (x | y).sum().item<double>());
}

// The models' rule (max - min over RGB > 20/255) on the slide at 8 um/px (t025: 32x level 0).
torch::Tensor chroma_rule(const io::Slide& s) {
  auto rgb = read_downsampled(s, 32.0).to(torch::kFloat).div(255);
  return (std::get<0>(rgb.max(0)) - std::get<0>(rgb.min(0))).gt(20.0 / 255).to(torch::kByte);
}

TEST(TissueModel, TwoClassModelMaskIsTheModelsRule) {
  auto s = t025();
  auto t = detect_tissue(*s, with_model("tissue_chroma2.pt"));
  const auto want = chroma_rule(*s);
  ASSERT_EQ(t.mask.sizes(), want.sizes());
  EXPECT_GT(want.sum().item<int64_t>(), 1000);  // the tissue block is there
  EXPECT_GT(iou(t.mask, want), 0.99);
  EXPECT_FALSE(t.regions.empty());
  EXPECT_EQ(TissueOptions{}.effective_method(), "hsv");
  EXPECT_EQ(with_model("x.pt").effective_method(), "model");
}

TEST(TissueModel, HalfResolutionLogitsAreResizedToTheMaskGrid) {
  auto s = t025();
  auto half = detect_tissue(*s, with_model("tissue_chroma_half.pt"));
  // The rule on 2x2-averaged pixels, nearest-resized back to the mask grid (75 x 80 from 37 x 40).
  auto rgb = read_downsampled(*s, 32.0).to(torch::kFloat).div(255).unsqueeze(0);
  auto pooled = torch::avg_pool2d(rgb, 2)[0];
  auto rule = (std::get<0>(pooled.max(0)) - std::get<0>(pooled.min(0))).gt(20.0 / 255).to(torch::kFloat);
  auto want = torch::nn::functional::interpolate(rule.unsqueeze(0).unsqueeze(0),
                                                 torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{rgb.size(2), rgb.size(3)})
                                                     .mode(torch::kNearest))[0][0];
  ASSERT_EQ(half.mask.sizes(), want.sizes());
  EXPECT_GT(want.sum().item<double>(), 1000);
  EXPECT_GT(iou(half.mask, want), 0.99);
  // A threshold above every logit leaves no tissue.
  auto o = with_model("tissue_chroma_half.pt");
  o.model_threshold = 1e6;
  EXPECT_EQ(detect_tissue(*s, o).mask.sum().item<int64_t>(), 0);
}

TEST(TissueModel, BadModelsAreErrorsNamingTheFile) {
  auto s = t025();
  try {
    detect_tissue(*s, with_model("tissue_bad_shape.pt"));
    FAIL() << "a [H, W] output was accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tissue_bad_shape.pt' returned"), std::string::npos) << e.what();
  }
  EXPECT_THROW(detect_tissue(*s, with_model("no_such_model.pt")), IoError);
}

}  // namespace
}  // namespace medfm::data
#endif

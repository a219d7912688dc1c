// DINOv2's KoLeo loss against the Python reference (scripts/golden/gen_koleo_golden.py): value and
// gradient, with two embeddings pointing the same way (zero distance: the eps terms decide).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/safetensors.h"
#include "medfm/ssl/koleo.h"

namespace medfm::ssl {
namespace {

TEST(KoleoGolden, LossAndGradient) {
  const std::string path = std::string(MEDFM_GOLDEN_DIR) + "/koleo.safetensors";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/golden";
  auto st = SafeTensors::open(path);
  auto x = st.get("x").clone().requires_grad_(true);
  auto loss = koleo_loss(x);
  const double want = st.get("loss").item<double>();
  EXPECT_NEAR(loss.item<double>(), want, 1e-5 * std::abs(want));
  loss.backward();
  auto g = st.get("grad");
  EXPECT_LT(((x.grad() - g).abs().max() / g.abs().max()).item<double>(), 1e-4);
}

}  // namespace
}  // namespace medfm::ssl

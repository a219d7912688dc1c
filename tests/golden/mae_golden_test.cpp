// MAE's masking, patchify and normalised-pixel loss against the Python reference written to
// facebookresearch/mae's semantics (scripts/golden/gen_mae_golden.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/ssl/mae.h"

namespace medfm::ssl {
namespace {

TEST(MaeGolden, MaskingPatchifyAndLoss) {
  const std::string path = std::string(MEDFM_GOLDEN_DIR) + "/mae.safetensors";
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing: run scripts/golden";
  auto st = SafeTensors::open(path);
  auto m = random_masking(st.get("x"), 0.75, st.get("noise"));
  EXPECT_TRUE(m.kept.equal(st.get("kept")));
  EXPECT_TRUE(m.mask.equal(st.get("mask")));
  EXPECT_TRUE(m.ids_restore.equal(st.get("ids_restore")));
  EXPECT_EQ(m.mask.sum(1).min().item<float>(), 12.0f);  // 16 patches, 4 kept
  EXPECT_TRUE(patchify(st.get("imgs"), 8).equal(st.get("patches")));
  auto pred = st.get("pred").clone().requires_grad_(true);
  auto loss = mae_loss(st.get("imgs"), pred, m.mask, 8);
  EXPECT_NEAR(loss.item<double>(), st.get("loss").item<double>(), 1e-6 * st.get("loss").item<double>());
  loss.backward();
  EXPECT_LT((pred.grad() - st.get("grad_pred")).abs().max().item<double>(), 1e-7);
  EXPECT_THROW(random_masking(st.get("x"), 1.0, st.get("noise")), ConfigError);
}

}  // namespace
}  // namespace medfm::ssl

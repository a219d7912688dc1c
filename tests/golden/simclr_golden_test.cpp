// SimCLR's NT-Xent loss and head against the Python reference (scripts/golden/gen_simclr_golden.py):
// loss and gradients; and two "ranks" with half the batch each and a gather give the whole
// batch's loss (negatives from the global batch).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/safetensors.h"
#include "medfm/ssl/simclr.h"

namespace medfm::ssl {
namespace {

const std::string kPath = std::string(MEDFM_GOLDEN_DIR) + "/simclr.safetensors";

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

TEST(SimclrGolden, LossHeadAndGradients) {
  ASSERT_TRUE(std::filesystem::exists(kPath)) << kPath << " missing: run scripts/golden";
  auto st = SafeTensors::open(kPath);
  SimclrHead head(SimclrHeadOptions{24, 32, 16});
  {
    torch::NoGradGuard ng;
    for (auto& p : head->named_parameters()) p.value().copy_(st.get("p." + p.key()));
  }
  auto z1 = head->forward(st.get("h1")), z2 = head->forward(st.get("h2"));
  EXPECT_LT(max_rel(z1, st.get("z1")), 1e-6);
  z1.retain_grad();
  z2.retain_grad();
  auto loss = nt_xent(z1, z2, 0.5);
  EXPECT_NEAR(loss.item<double>(), st.get("loss").item<double>(), 1e-6);
  loss.backward();
  EXPECT_LT(max_rel(z1.grad(), st.get("grad_z1")), 1e-5);
  EXPECT_LT(max_rel(z2.grad(), st.get("grad_z2")), 1e-5);
  for (auto& p : head->named_parameters()) EXPECT_LT(max_rel(p.value().grad(), st.get("grad." + p.key())), 1e-5) << p.key();
}

TEST(SimclrGolden, TwoRanksWithAGatherGiveTheWholeBatchLoss) {
  torch::manual_seed(5);
  auto z1 = torch::randn({8, 16}), z2 = torch::randn({8, 16});
  const double whole = nt_xent(z1, z2, 0.2).item<double>();
  double sum = 0;
  for (int rank = 0; rank < 2; ++rank) {
    auto mine1 = z1.narrow(0, 4 * rank, 4), mine2 = z2.narrow(0, 4 * rank, 4);
    Gather g;
    g.rank = rank;
    int calls = 0;  // nt_xent gathers view 1, then view 2
    g.all_gather = [&](const torch::Tensor& local) {  // the other rank's rows around ours, as all_gather gives them
      auto all = torch::nn::functional::normalize(calls++ == 0 ? z1 : z2, torch::nn::functional::NormalizeFuncOptions().dim(1));
      return torch::cat({all.narrow(0, 0, 4 * rank), local, all.narrow(0, 4 * (rank + 1), 4 * (1 - rank))});
    };
    sum += nt_xent(mine1, mine2, 0.2, g).item<double>();
  }
  EXPECT_NEAR(sum / 2, whole, 1e-6);
}

}  // namespace
}  // namespace medfm::ssl

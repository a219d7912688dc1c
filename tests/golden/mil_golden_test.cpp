// MIL heads against PyTorch references with the same parameter names
// (scripts/golden/gen_mil_golden.py): logits, tile weights, loss and every gradient, float64.
#include <torch/torch.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "medfm/adapt/mil.h"
#include "medfm/core/safetensors.h"

namespace medfm::adapt {
namespace {

class MilGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(MilGolden, LogitsWeightsLossAndGradientsMatchReference) {
  const std::string path = std::string(MEDFM_GOLDEN_DIR) + "/mil_" + GetParam() + ".safetensors";
  if (!std::filesystem::exists(path)) throw std::runtime_error("missing fixture " + path + ": run scripts/golden");
  auto st = SafeTensors::open(path);
  MilOptions o;
  o.method = GetParam();
  o.in_dim = 24;
  o.hidden = 16;
  o.attention_dim = 8;
  o.n_classes = 3;
  o.dropout = 0;
  o.layers = 2;
  o.heads = 4;
  auto head = make_mil_head(o);
  head->to(torch::kDouble);
  head->eval();
  int loaded = 0;
  {
    torch::NoGradGuard ng;
    for (auto& p : head->named_parameters()) {
      ASSERT_TRUE(st.contains("p." + p.key())) << p.key();
      p.value().copy_(st.get("p." + p.key()));
      ++loaded;
    }
  }
  int n_ref = 0;
  for (const auto& e : st.entries()) n_ref += e.name.rfind("p.", 0) == 0;
  EXPECT_EQ(loaded, n_ref);  // every reference parameter has a medfm twin
  auto [logits, w] = head->forward(st.get("bag"));
  EXPECT_TRUE(torch::allclose(logits, st.get("logits"), 1e-10, 1e-12));
  EXPECT_TRUE(torch::allclose(w, st.get("weights"), 1e-10, 1e-12));
  EXPECT_NEAR(w.sum().item<double>(), 1.0, 1e-12);
  auto loss = torch::nn::functional::cross_entropy(logits.unsqueeze(0), torch::tensor({int64_t{1}}));
  EXPECT_NEAR(loss.item<double>(), st.get("loss").item<double>(), 1e-12);
  loss.backward();
  for (auto& p : head->named_parameters())
    EXPECT_TRUE(torch::allclose(p.value().grad(), st.get("g." + p.key()), 1e-8, 1e-11)) << p.key();
}

INSTANTIATE_TEST_SUITE_P(Heads, MilGolden, ::testing::Values("mean", "abmil", "transmil"));

}  // namespace
}  // namespace medfm::adapt

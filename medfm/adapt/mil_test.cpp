#include "medfm/adapt/mil.h"

#include <torch/torch.h>

#include <gtest/gtest.h>

#include "medfm/core/error.h"

namespace medfm::adapt {
namespace {

TEST(Mil, WeightsSumToOnePerBagOfAnySize) {
  for (const std::string m : {"mean", "abmil", "transmil"}) {
    MilOptions o;
    o.method = m;
    o.in_dim = 12;
    o.hidden = 8;
    o.attention_dim = 4;
    o.n_classes = 3;
    o.heads = 2;
    torch::manual_seed(1);
    auto head = make_mil_head(o);
    head->eval();
    for (int64_t n : {1, 2, 57}) {
      auto [logits, w] = head->forward(torch::randn({n, 12}));
      EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3})) << m;
      ASSERT_EQ(w.size(0), n) << m;
      EXPECT_NEAR(w.sum().item<float>(), 1.0f, 1e-5) << m << " n=" << n;
      EXPECT_GE(w.min().item<float>(), 0.0f);
    }
  }
}

TEST(Mil, SameSeedSameHeadAndBadOptions) {
  MilOptions o;
  o.in_dim = 6;
  o.hidden = 4;
  torch::manual_seed(3);
  auto a = make_mil_head(o);
  torch::manual_seed(3);
  auto b = make_mil_head(o);
  auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  o.method = "clam";
  EXPECT_THROW(make_mil_head(o), ConfigError);
  o.method = "transmil";
  o.heads = 3;  // 4 is not a multiple of 3
  EXPECT_THROW(make_mil_head(o), ConfigError);
}

}  // namespace
}  // namespace medfm::adapt

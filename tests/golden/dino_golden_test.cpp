// DINO's head, loss, centre, EMA and schedules against the Python reference written to
// facebookresearch/dino's semantics (scripts/golden/gen_dino_golden.py, Debian's torch 1.13).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/ssl/dino.h"
#include "medfm/train/schedule.h"

namespace medfm::ssl {
namespace {

const std::string kPath = std::string(MEDFM_GOLDEN_DIR) + "/dino.safetensors";

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

class DinoGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kPath)) << kPath << " missing: run scripts/golden";
    st_ = std::make_unique<SafeTensors>(SafeTensors::open(kPath));
    dims_ = nlohmann::json::parse(st_->metadata().at("dims"));
  }
  DinoHead head(const std::string& prefix) {
    DinoHeadOptions o;
    o.in_dim = dims_["in_dim"];
    o.out_dim = dims_["out_dim"];
    o.hidden_dim = dims_["hidden_dim"];
    o.bottleneck_dim = dims_["bottleneck_dim"];
    DinoHead h(o);
    torch::NoGradGuard ng;
    size_t n = 0;
    for (auto& p : h->named_parameters()) {
      p.value().copy_(st_->get(prefix + p.key()));
      ++n;
    }
    EXPECT_EQ(n, 8u);  // mlp.{0,2,4}.{weight,bias}, last_layer.weight_{g,v}
    return h;
  }
  train::Schedule teacher_temp() const {
    std::vector<double> v = nlohmann::json::parse(st_->metadata().at("teacher_temp"));
    return train::Schedule::linear_warmup_then_constant(v.front(), v.back(), 3, static_cast<int64_t>(v.size()));
  }
  std::unique_ptr<SafeTensors> st_;
  nlohmann::json dims_;
};

TEST_F(DinoGolden, HeadLossCentreAndGradients) {
  auto h = head("p.");
  EXPECT_FALSE(h->last_layer->weight_g.requires_grad());  // norm_last_layer: g frozen at 1
  const int ncrops = dims_["ncrops"];
  DinoLoss loss(dims_["out_dim"], ncrops, teacher_temp());
  auto out = h->forward(st_->get("input"));
  EXPECT_LT(max_rel(out, st_->get("head_out")), 1e-5);
  out.retain_grad();
  auto l1 = loss(out, st_->get("teacher_out"), 1);
  EXPECT_NEAR(l1.item<double>(), st_->get("loss1").item<double>(), 1e-5 * std::abs(st_->get("loss1").item<double>()));
  EXPECT_LT(max_rel(loss.center(), st_->get("center1")), 1e-6);
  l1.backward();
  EXPECT_LT(max_rel(out.grad(), st_->get("grad_student_out")), 1e-5);
  for (auto& p : h->named_parameters()) {
    if (!p.value().requires_grad()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_LT(max_rel(p.value().grad(), st_->get("grad." + p.key())), 1e-4) << p.key();
  }
  // The second step sees the moved centre and the step's teacher temperature.
  torch::NoGradGuard ng;
  auto l2 = loss(h->forward(st_->get("input")), st_->get("teacher_out") * 0.5, 5);
  EXPECT_NEAR(l2.item<double>(), st_->get("loss2").item<double>(), 1e-5 * std::abs(st_->get("loss2").item<double>()));
  EXPECT_LT(max_rel(loss.center(), st_->get("center2")), 1e-6);
  // Freezing the last layer drops its gradients only.
  cancel_last_layer_grads(h);
  EXPECT_FALSE(h->last_layer->weight_v.grad().defined());
  EXPECT_TRUE(h->mlp->named_parameters()[0].value().grad().defined());
}

TEST_F(DinoGolden, EmaUpdate) {
  auto student = head("p.");
  auto teacher = head("ema_teacher.");
  ema_update(*teacher, *student, 0.9);
  for (auto& p : teacher->named_parameters())
    EXPECT_LT(max_rel(p.value(), st_->get("ema_after." + p.key())), 1e-6) << p.key();
}

TEST_F(DinoGolden, SchedulesAsDinov2) {
  std::vector<double> want = nlohmann::json::parse(st_->metadata().at("cosine"));
  auto s = train::Schedule::cosine(5e-4, 1e-6, 50, 10, 1e-5, 3);
  ASSERT_EQ(s.size(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s[static_cast<int64_t>(i)], want[i], 1e-12) << i;
  EXPECT_DOUBLE_EQ(s[1000], 1e-6);  // past the end: the final value
  std::vector<double> tt = nlohmann::json::parse(st_->metadata().at("teacher_temp"));
  auto t = teacher_temp();
  for (size_t i = 0; i < tt.size(); ++i) EXPECT_NEAR(t[static_cast<int64_t>(i)], tt[i], 1e-12) << i;
  EXPECT_THROW(train::Schedule::cosine(1, 0, 5, 4, 0, 2), ConfigError);
}

}  // namespace
}  // namespace medfm::ssl

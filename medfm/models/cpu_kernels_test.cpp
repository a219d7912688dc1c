// The vectorised softmax against LibTorch's (and std::exp), on every instruction set this CPU
// has: row lengths around the vector widths, strided rows, large and tiny values, non-finite input.
#include "medfm/models/cpu_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

namespace medfm::models::kernels {
namespace {

std::vector<Isa> isas() {
  std::vector<Isa> out{Isa::kPortable};
  if (best_isa() >= Isa::kAvx2) out.push_back(Isa::kAvx2);
  if (best_isa() >= Isa::kAvx512) out.push_back(Isa::kAvx512);
  return out;
}

TEST(CpuKernels, SoftmaxMatchesLibTorchForEveryLengthAndIsa) {
  torch::manual_seed(0);
  for (Isa isa : isas()) {
    for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 197, 257}) {
      const int64_t rows = 5, ld = n + 3;  // strided rows: the padding must stay untouched
      auto x = torch::randn({rows, ld}) * 12.0;
      auto expected = at::_softmax(x.narrow(1, 0, n), 1, false);
      auto pad = x.narrow(1, n, 3).clone();
      softmax_rows_isa(isa, x.data_ptr<float>(), rows, n, ld);
      auto got = x.narrow(1, 0, n);
      SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n));
      EXPECT_LT((got - expected).abs().max().item<float>(), 1e-6);
      EXPECT_LT(((got - expected).abs() / expected.clamp_min(1e-30)).max().item<float>(), 1e-6);
      EXPECT_NEAR(got.sum(1).sub(1).abs().max().item<float>(), 0.0, 1e-6);
      EXPECT_TRUE(torch::equal(x.narrow(1, n, 3), pad));
    }
  }
}

TEST(CpuKernels, SoftmaxExpAcrossTheWholeRange) {
  // exp(x - max) for every x - max in [-100, 0]: relative error against std::exp below 1e-6
  // where the result is a normal float, exactly 0 far below.
  const int64_t n = 2001;
  for (Isa isa : isas()) {
    std::vector<float> x(n);
    for (int64_t j = 0; j < n; ++j) x[j] = -100.0f + 0.05f * static_cast<float>(j);  // max 0 at the end
    std::vector<double> ref(n);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (ref[j] = std::exp(static_cast<double>(x[j])));
    softmax_rows_isa(isa, x.data(), 1, n, n);
    SCOPED_TRACE(isa_name(isa));
    for (int64_t j = 0; j < n; ++j) {
      const double want = ref[j] / sum;
      if (want > 1e-37) {
        EXPECT_NEAR(x[j] / want, 1.0, 1e-6) << "at x=" << -100.0 + 0.05 * j;
      } else {
        EXPECT_LE(x[j], 2e-37);
      }
    }
  }
}

TEST(CpuKernels, SoftmaxNonFiniteRowsBehaveAsLibTorch) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : isas()) {
    for (int64_t n : {5, 16, 40}) {
      auto x = torch::randn({4, n});
      x[0][n / 2] = nan;           // NaN anywhere: the whole row NaN
      x[1][n - 1] = -inf;          // a masked position: exactly 0, the rest a normal softmax
      x[2].fill_(-inf);            // all masked: NaN, as 0/0
      x[3][1] = inf;               // +inf: NaN (inf - inf)
      auto expected = at::_softmax(x, 1, false);
      softmax_rows_isa(isa, x.data_ptr<float>(), 4, n, n);
      SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n));
      EXPECT_TRUE(x[0].isnan().all().item<bool>());
      EXPECT_EQ(x[1][n - 1].item<float>(), 0.0f);
      EXPECT_LT((x[1] - expected[1]).abs().max().item<float>(), 2e-7);
      EXPECT_TRUE(x[2].isnan().all().item<bool>());
      EXPECT_EQ(expected[2].isnan().all().item<bool>(), true);
      EXPECT_EQ(x[3].isnan().sum().item<int64_t>(), expected[3].isnan().sum().item<int64_t>());
    }
  }
}

TEST(CpuKernels, BiasGeluMatchesNnGelu) {
  torch::manual_seed(1);
  for (Isa isa : isas()) {
    for (int64_t n : {1, 7, 8, 17, 64, 1536}) {
      auto x = torch::randn({6, n}) * 4.0;
      auto bias = torch::randn({n});
      x[0][0] = 12.0f;   // erf saturates at +-1
      x[1][0] = -12.0f;
      x[2][0] = 0.0f;
      auto expected = at::gelu(x + bias);  // LibTorch's erf GELU
      auto ref = (x + bias).to(torch::kDouble);
      ref = ref * 0.5 * (1 + torch::erf(ref / std::sqrt(2.0)));  // exact, in double
      bias_gelu_rows_isa(isa, x.data_ptr<float>(), 6, n, bias.data_ptr<float>());
      SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n));
      EXPECT_LT((x.to(torch::kDouble) - ref).abs().max().item<double>(), 4e-6);
      EXPECT_LT((x - expected).abs().max().item<float>(), 4e-6);
    }
    float v[3] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 1.0f};
    float b[3] = {0, 0, std::numeric_limits<float>::quiet_NaN()};
    bias_gelu_rows_isa(isa, v, 1, 3, b);
    EXPECT_TRUE(std::isnan(v[0]));
    EXPECT_EQ(v[1], std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(v[2]));
  }
}

TEST(CpuKernels, TrainingGeluAndItsBackwardMatchLibTorch) {
  // bias_gelu_train_rows keeps x + bias and writes gelu of it; gelu_backward_rows multiplies the
  // gradient by gelu' (against at::gelu_backward), into another buffer or in place, and adds each
  // column's sum into colsum.
  torch::manual_seed(2);
  for (Isa isa : isas()) {
    for (int64_t n : {1, 7, 8, 17, 64, 771}) {
      const int64_t rows = 9;
      auto x = torch::randn({rows, n}) * 4.0;
      auto bias = torch::randn({n});
      x[0][0] = 12.0f;
      x[1][0] = -12.0f;
      x[2][0] = 0.0f;
      auto pre_expected = x + bias;
      auto out = torch::empty_like(x);
      bias_gelu_train_rows_isa(isa, x.data_ptr<float>(), out.data_ptr<float>(), rows, n, bias.data_ptr<float>());
      SCOPED_TRACE(std::string(isa_name(isa)) + " n=" + std::to_string(n));
      EXPECT_TRUE(torch::equal(x, pre_expected));
      EXPECT_LT((out - at::gelu(pre_expected)).abs().max().item<float>(), 4e-6);

      auto g = torch::randn({rows, n});
      auto g_expected = at::gelu_backward(g, pre_expected);
      auto colsum = torch::full({n}, 0.5f);  // added to, not overwritten
      auto d = torch::empty_like(g);
      auto g_before = g.clone();
      gelu_backward_rows_isa(isa, g.data_ptr<float>(), x.data_ptr<float>(), d.data_ptr<float>(), rows, n,
                             colsum.data_ptr<float>());
      EXPECT_TRUE(torch::equal(g, g_before));
      EXPECT_LT((d - g_expected).abs().max().item<float>(), 1e-5);
      EXPECT_LT((colsum - (g_expected.sum(0) + 0.5f)).abs().max().item<float>(), 1e-4);
      gelu_backward_rows_isa(isa, g.data_ptr<float>(), x.data_ptr<float>(), g.data_ptr<float>(), rows, n,
                             colsum.data_ptr<float>());  // in place
      EXPECT_TRUE(torch::equal(g, d));
    }
  }
}

// One AdamW step against LibTorch's sequence of tensor ops (torch::optim::AdamW's), for lengths
// around the vector width; every instruction set gives the same bits (the AVX2 loop and its scalar
// tail do the same operations in the same order).
TEST(CpuKernels, AdamwUpdateMatchesLibTorchAndIsBitIdenticalAcrossIsas) {
  torch::manual_seed(4);
  const double lr = 3e-3, wd = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const int64_t t = 3;
  const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
  const AdamwCoeffs c{static_cast<float>(1 - lr * wd), static_cast<float>(b1), static_cast<float>(1 - b1),
                      static_cast<float>(b2), static_cast<float>(1 - b2), static_cast<float>(lr / bc1),
                      static_cast<float>(std::sqrt(bc2)), static_cast<float>(eps)};
  for (int64_t n : {1, 7, 8, 9, 31, 1000, 1003}) {
    auto p = torch::randn({n}), g = torch::randn({n}) * 0.1, m = torch::randn({n}) * 0.01, v = torch::rand({n}) * 1e-3;
    // The reference: LibTorch's AdamW step written out.
    auto rp = p.clone(), rm = m.clone(), rv = v.clone();
    rp.mul_(1 - lr * wd);
    rm.mul_(b1).add_(g, 1 - b1);
    rv.mul_(b2).addcmul_(g, g, 1 - b2);
    rp.addcdiv_(rm, (rv.sqrt() / std::sqrt(bc2)).add_(eps), -lr / bc1);
    std::vector<torch::Tensor> first;
    for (Isa isa : isas()) {
      auto kp = p.clone(), km = m.clone(), kv = v.clone();
      adamw_update_isa(isa, kp.data_ptr<float>(), g.data_ptr<float>(), km.data_ptr<float>(), kv.data_ptr<float>(), n, c);
      EXPECT_TRUE(torch::allclose(km, rm, 1e-6, 1e-9)) << isa_name(isa) << " n=" << n;
      EXPECT_TRUE(torch::allclose(kv, rv, 1e-6, 1e-12)) << isa_name(isa) << " n=" << n;
      EXPECT_TRUE(torch::allclose(kp, rp, 1e-6, 1e-7)) << isa_name(isa) << " n=" << n
                                                         << " max diff " << (kp - rp).abs().max().item<float>();
      EXPECT_FALSE(torch::equal(kp, p)) << "the update moved nothing";
      if (first.empty()) first = {kp, km, kv};
      else
        for (int i = 0; i < 3; ++i)
          EXPECT_TRUE(torch::equal(first[i], std::vector<torch::Tensor>{kp, km, kv}[i])) << isa_name(isa) << " n=" << n;
    }
  }
}

TEST(CpuKernels, AskingForAnIsaThisCpuLacksThrows) {
  if (best_isa() == Isa::kAvx512) GTEST_SKIP() << "this CPU has every kernel's instruction set";
  float x[4] = {0, 1, 2, 3};
  EXPECT_THROW(softmax_rows_isa(Isa::kAvx512, x, 1, 4, 4), std::invalid_argument);
}

}  // namespace
}  // namespace medfm::models::kernels

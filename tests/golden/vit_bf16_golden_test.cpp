// bf16 autocast inference against torch.cpu.amp.autocast(bfloat16) on Debian's torch 1.13
// (scripts/golden/gen_bf16_golden.py): same products in bf16, same float32 norms; and within
// bf16's rounding of the float32 result.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include "medfm/core/error.h"
#include "medfm/models/precision.h"
#include "medfm/models/vit.h"
#include "tests/golden/golden_case.h"

namespace medfm::models {
namespace {

TEST(VitBf16, MatchesTorchAutocast) {
  auto c = golden::load_case(std::string(MEDFM_GOLDEN_DIR) + "/vit_bf16_autocast.safetensors");
  Vit vit(c.cfg);
  vit->eval();
  ASSERT_TRUE(load_vit_weights(vit, c.params, false, WeightsLayout::kTimm).complete());
  c10::InferenceMode guard;
  const auto x = c.file.get("input");
  const auto want = c.file.get("expected.pooled"), fp32_ref = c.file.get("fp32.pooled");
  const auto fp32 = vit->embed(x);
  at::Tensor bf16;
  {
    AutocastGuard ac(Precision::BF16, c10::Device(c10::kCPU));
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    bf16 = vit->embed(x).to(at::kFloat);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // restored
  EXPECT_LT((fp32 - fp32_ref).abs().max().item<double>(), 1e-4);
  const double vs_torch = (bf16 - want).abs().max().item<double>();
  const double vs_fp32 = (bf16 - fp32).abs().max().item<double>();
  // Autocast is on (bf16 differs from fp32 by its rounding, measured 1e-2 on values up to 3.2),
  // and medfm's bf16 is at least as close to torch's bf16 as bf16 is to fp32.
  EXPECT_GT(vs_fp32, 1e-4);
  EXPECT_LT(vs_fp32, 0.05);
  EXPECT_LT(vs_torch, 0.02) << "vs fp32 " << vs_fp32;
  EXPECT_GT(torch::nn::functional::cosine_similarity(bf16, fp32).min().item<double>(), 0.9999);
}

TEST(VitBf16, PrecisionNamesAndDevices) {
  EXPECT_EQ(parse_precision("bf16"), Precision::BF16);
  EXPECT_EQ(parse_precision("float32"), Precision::FP32);
  EXPECT_STREQ(precision_name(Precision::FP16), "fp16");
  EXPECT_THROW(parse_precision("int8"), ConfigError);
  EXPECT_THROW(AutocastGuard(Precision::FP16, c10::Device(c10::kCPU)), ConfigError);
  { AutocastGuard none(Precision::FP32, c10::Device(c10::kCPU)); EXPECT_FALSE(at::autocast::is_cpu_enabled()); }
}

}  // namespace
}  // namespace medfm::models

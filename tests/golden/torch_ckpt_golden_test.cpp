// Released-checkpoint containers (scripts/golden/gen_torch_ckpt_golden.py, written by Debian's
// torch 1.13): every layout loads to the golden case's parameters and features; pickles that
// would run code are refused and nothing runs; corrupt archives give one-line errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "medfm/core/error.h"
#include "medfm/core/pickle.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/vit.h"
#include "medfm/models/weights_file.h"
#include "tests/golden/golden_case.h"

namespace medfm::models {
namespace {

const std::string kDir = MEDFM_GOLDEN_DIR;
const std::string kCkpt = kDir + "/ckpt/";

struct Loaded {
  LoadReport report;
  Vit vit{nullptr};
};

Loaded load(const golden::Case& c, const std::string& file, const std::string& key = "") {
  Loaded l;
  l.vit = Vit(c.cfg);
  l.vit->eval();
  l.report = load_vit_weights(l.vit, kCkpt + file, /*allow_partial=*/false, WeightsLayout::kAuto, key);
  return l;
}

// Every parameter equals the case's after `cast` (the stored precision), exactly.
void expect_params(const Loaded& l, const golden::Case& c, at::ScalarType stored, double add = 0) {
  for (const auto& kv : l.vit->named_parameters()) {
    auto want = (c.params.at(kv.key()) + add).to(stored).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(kv.value(), want)) << kv.key();
  }
}

class TorchCkpt : public ::testing::Test {
 protected:
  void SetUp() override { c_ = std::make_unique<golden::Case>(golden::load_case(kDir + "/vit_basic.safetensors")); }
  std::unique_ptr<golden::Case> c_;
};

struct Fp32Case {
  std::string file, entry, container;
};
void PrintTo(const Fp32Case& c, std::ostream* os) { *os << c.file; }
class TorchCkptFp32 : public TorchCkpt, public ::testing::WithParamInterface<Fp32Case> {};

TEST_P(TorchCkptFp32, SameParametersAndFeaturesAsSafetensors) {
  const auto& p = GetParam();
  auto l = load(*c_, p.file);
  EXPECT_TRUE(l.report.complete()) << l.report.summary();
  EXPECT_EQ(l.report.entry, p.entry);
  EXPECT_EQ(l.report.container.rfind(p.container, 0), 0u) << l.report.container;
  expect_params(l, *c_, torch::kFloat);
  torch::NoGradGuard ng;
  EXPECT_LT((l.vit->forward_features(c_->file.get("input")) - c_->file.get("expected.tokens")).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, TorchCkptFp32,
    ::testing::Values(Fp32Case{"plain_zip.pth", "", "torch.save zip"}, Fp32Case{"plain_legacy.pth", "", "torch.save legacy"},
                      Fp32Case{"module_state.pth", "", "torch.save zip"}, Fp32Case{"retfound.pth", "model", "torch.save zip"},
                      Fp32Case{"dinov2_train.pth", "model", "torch.save zip"}, Fp32Case{"dino.pth", "teacher", "torch.save zip"},
                      Fp32Case{"hf", "", "torch.save zip"}, Fp32Case{"sharded_bin", "", "sharded (2 files)"},
                      Fp32Case{"sharded_bin/pytorch_model.bin.index.json", "", "sharded (2 files)"}),
    [](const auto& info) {
      std::string n = info.param.file;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST_F(TorchCkpt, HalfPrecisionFilesConvertOnLoad) {
  for (auto [file, dtype] : {std::pair{"fp16.pth", torch::kHalf}, {"bf16.pth", torch::kBFloat16}, {"bf16_legacy.pth", torch::kBFloat16}}) {
    SCOPED_TRACE(file);
    auto l = load(*c_, file);
    EXPECT_TRUE(l.report.complete()) << l.report.summary();
    expect_params(l, *c_, dtype);
  }
  // Sharded safetensors whose second shard is fp16: the first half exact, the second rounded.
  auto l = load(*c_, "sharded");
  EXPECT_TRUE(l.report.complete()) << l.report.summary();
  EXPECT_EQ(l.report.files.size(), 3u);  // index + 2 shards
  auto w = read_weights_file(kCkpt + "sharded/model.safetensors.index.json");
  for (const auto& kv : l.vit->named_parameters()) {
    const auto stored = w.tensors.at(kv.key()).scalar_type();
    EXPECT_TRUE(torch::equal(kv.value(), c_->params.at(kv.key()).to(stored).to(torch::kFloat))) << kv.key();
  }
}

TEST_F(TorchCkpt, NestedEntriesReportedAndSelectable) {
  auto l = load(*c_, "dinov2_train.pth");
  const std::string s = l.report.summary();
  EXPECT_NE(s.find("teacher"), std::string::npos) << s;
  EXPECT_NE(s.find("not read: optimizer, iteration"), std::string::npos) << s;
  // The student on request (DINO's student is the teacher + 1, under module.backbone.).
  auto st = load(*c_, "dino.pth", "student");
  EXPECT_EQ(st.report.entry, "student");
  expect_params(st, *c_, torch::kFloat, 1.0);
  // A prefix inside a flat state dict (DINOv2's student is the teacher + 0.5).
  auto sv = load(*c_, "dinov2_train.pth", "model/student");
  expect_params(sv, *c_, torch::kFloat, 0.5);
  try {
    load(*c_, "retfound.pth", "ema");
    FAIL() << "a missing key was accepted";
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no entry 'ema'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'model', 'optimizer', 'epoch', 'scaler', 'args'"), std::string::npos) << msg;
  }
}

TEST_F(TorchCkpt, CodeInPicklesIsRefusedAndNeverRuns) {
  const std::string marker = kCkpt + "PWNED";
  std::filesystem::remove(marker);
  for (auto [file, global] : {std::pair{"evil_reduce.pth", "posix.system"}, {"evil_eval.pth", "builtins.eval"},
                              {"evil_legacy.pth", "posix.system"}}) {
    SCOPED_TRACE(file);
    Vit vit(c_->cfg);
    try {
      load_vit_weights(vit, kCkpt + file);
      FAIL() << "accepted";
    } catch (const UnsafePickle& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("refusing to call " + std::string(global)), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(TorchCkpt, CorruptArchivesGiveOneLineErrors) {
  for (auto [file, says] : {std::pair{"truncated.pth", "unreadable zip archive"},
                            {"missing_storage.pth", "has no record data/1"},
                            {"short_storage.pth", "bytes but its record holds"},
                            {"script.pt", "--torchscript"}}) {
    SCOPED_TRACE(file);
    Vit vit(c_->cfg);
    try {
      load_vit_weights(vit, kCkpt + file);
      FAIL() << "accepted";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(says), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace medfm::models

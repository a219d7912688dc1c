// The embedding loop with synthetic sources: rows in input order for any worker count and any
// mix of sample counts, the first error (in input order) stops the run, --keep-going records it,
// and the output appears only when complete.
#ifdef MEDFM_HAVE_HDF5
#include "medfm/extract/embed.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "medfm/core/error.h"
#include "medfm/extract/h5_feature_store.h"
#include "tests/temp_dir.h"

namespace medfm::extract {
namespace {

namespace fs = std::filesystem;

// Input i yields counts[i] samples whose image is filled with 100*i + j; inputs listed in
// `bad` throw. Odd inputs sleep, so that workers finish out of order.
class FakeSource : public Source {
 public:
  FakeSource(std::vector<int> counts, std::set<size_t> bad = {}) : counts_(std::move(counts)), bad_(std::move(bad)) {}
  size_t size() const override { return counts_.size(); }
  std::string id(size_t i) const override { return "in" + std::to_string(i); }
  std::string path(size_t i) const override { return "/fake/" + id(i); }
  std::vector<Sample> load(size_t i) const override {
    if (i % 2) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if (bad_.count(i)) throw FormatError("fake: input " + std::to_string(i) + " is broken");
    std::vector<Sample> out;
    for (int j = 0; j < counts_[i]; ++j)
      out.push_back({torch::full({1, 2, 2}, 100.0 * i + j), id(i) + "#" + std::to_string(j), {{"n", std::to_string(j)}}});
    if (i == 0) out.front().meta["only_first"] = "yes";
    return out;
  }

 private:
  std::vector<int> counts_;
  std::set<size_t> bad_;
};

// Embedding = the mean of the image, twice: [B,2].
class MeanBackbone : public models::Backbone {
 public:
  void to(c10::Device) override {}
  std::string describe() const override { return "mean"; }

 protected:
  at::Tensor forward(const at::Tensor& x) override {
    auto m = x.flatten(1).mean(1, true);
    return torch::cat({m, -m}, 1);
  }
};

class EmbedLoop : public ::testing::Test {
 protected:
  EmbedOptions opts(int batch, int workers, bool keep_going = false) {
    EmbedOptions o;
    o.out_path = dir_ + "/f.h5";
    o.batch_size = batch;
    o.workers = workers;
    o.keep_going = keep_going;
    return o;
  }
  medfm::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
  MeanBackbone model_;
};

TEST_F(EmbedLoop, RowsFollowInputOrderForAnyWorkerCountAndBatchSize) {
  const std::vector<int> counts{3, 1, 0, 5, 2, 1, 7, 1};
  std::vector<float> want;
  for (size_t i = 0; i < counts.size(); ++i)
    for (int j = 0; j < counts[i]; ++j) want.push_back(100.f * i + j);
  for (int workers : {1, 2, 5}) {
    for (int batch : {1, 4, 64}) {
      SCOPED_TRACE("workers " + std::to_string(workers) + " batch " + std::to_string(batch));
      std::vector<int64_t> progress;
      auto st = embed_source(model_, FakeSource(counts), opts(batch, workers),
                             [&](int64_t done, int64_t total, int64_t) {
                               EXPECT_EQ(total, 8);
                               progress.push_back(done);
                             });
      EXPECT_EQ(st.n_inputs, 8);
      EXPECT_EQ(st.n_samples, static_cast<int64_t>(want.size()));
      EXPECT_EQ(progress, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
      auto f = read_features(dir_ + "/f.h5");
      ASSERT_EQ(f.features.size(0), static_cast<int64_t>(want.size()));
      for (size_t r = 0; r < want.size(); ++r) ASSERT_FLOAT_EQ(f.features[r][0].item<float>(), want[r]) << r;
      EXPECT_EQ(f.ids[3], "in1#0");
      EXPECT_EQ(f.attrs.at("n_skipped"), "0");
    }
  }
}

TEST_F(EmbedLoop, FirstErrorInInputOrderStopsTheRunWithoutOutput) {
  try {
    embed_source(model_, FakeSource({1, 1, 1, 1, 1}, {3, 1}), opts(2, 3));
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("input 1 is broken"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir_)) << "no output and no temporary file after an error";
}

TEST_F(EmbedLoop, KeepGoingRecordsSkippedInputs) {
  auto st = embed_source(model_, FakeSource({2, 1, 1, 3}, {1, 2}), opts(2, 2, true));
  EXPECT_EQ(st.n_inputs, 2);
  EXPECT_EQ(st.n_samples, 5);
  ASSERT_EQ(st.skipped.size(), 2u);
  EXPECT_EQ(st.skipped[0].path, "/fake/in1");
  EXPECT_NE(st.skipped[1].reason.find("input 2 is broken"), std::string::npos);
  auto f = read_features(dir_ + "/f.h5");
  EXPECT_EQ(f.features.size(0), 5);
  EXPECT_EQ(f.attrs.at("n_skipped"), "2");
  EXPECT_THROW(embed_source(model_, FakeSource({1, 1}, {0, 1}), opts(2, 2, true)), Error);  // nothing readable
}

TEST_F(EmbedLoop, BadOptionsAndNoInputs) {
  EXPECT_THROW(embed_source(model_, FakeSource({1}), opts(0, 1)), ConfigError);
  EXPECT_THROW(embed_source(model_, FakeSource({1}), opts(1, 0)), ConfigError);
  EXPECT_THROW(embed_source(model_, FakeSource({}), opts(1, 1)), Error);
}

}  // namespace
}  // namespace medfm::extract
#endif  // MEDFM_HAVE_HDF5

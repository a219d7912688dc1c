// Slides on the test pyramid built by scripts/fetch_data.sh (ihc.png tiled, 0.25 um/px in the TIFF
// resolution tags, which OpenSlide 3.4.1 does not turn into openslide.mpp-*).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"

namespace medfm::io {
namespace {

std::string slide_path() {
  const char* d = std::getenv("MEDFM_DATA");
  const char* home = std::getenv("HOME");
  return (d ? std::string(d) : std::string(home ? home : ".") + "/.cache/medfm/data") + "/slides/ihc_pyramid.tif";
}

TEST(Slide, MppSourcesAndLevels) {
  ASSERT_TRUE(std::filesystem::exists(slide_path())) << slide_path() << " missing: run scripts/fetch_data.sh";
  auto s = open_slide(slide_path());
  ASSERT_TRUE(s->mpp().has_value());
  EXPECT_NEAR((*s->mpp())[0], 0.25, 1e-9);
  EXPECT_EQ(s->mpp_source(), "tiff-resolution");
  EXPECT_EQ(s->vendor(), "generic-tiff");
  ASSERT_GE(s->levels().size(), 3u);
  EXPECT_EQ(s->levels()[1].width, s->levels()[0].width / 2);
  EXPECT_EQ(s->best_level_for_downsample(3.0), 1);
  ReadOptions o;
  o.mpp = 0.5;
  auto s2 = open_slide(slide_path(), o);
  EXPECT_EQ(s2->mpp_source(), "override");
  EXPECT_DOUBLE_EQ((*s2->mpp())[1], 0.5);
  EXPECT_THROW(open_image(slide_path()), FormatError);  // a slide is not opened as a 2D image
}

TEST(Slide, OutsideIsWhiteAndBadRequestsThrow) {
  ASSERT_TRUE(std::filesystem::exists(slide_path())) << slide_path() << " missing: run scripts/fetch_data.sh";
  auto s = open_slide(slide_path());
  auto r = s->read_region(-300, -300, 0, 64, 64);
  EXPECT_EQ(r.sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_TRUE(r.eq(255).all().item<bool>());
  EXPECT_THROW(s->read_region(0, 0, 99, 8, 8), ConfigError);
  EXPECT_THROW(s->read_region(0, 0, 0, 0, 8), ConfigError);
}

TEST(Slide, ManyThreadsReadWhatOneThreadReads) {
  ASSERT_TRUE(std::filesystem::exists(slide_path())) << slide_path() << " missing: run scripts/fetch_data.sh";
  auto s = open_slide(slide_path());
  const int n = 48;
  std::vector<at::Tensor> ref(n), got(n);
  auto pos = [&](int i) { return std::pair<int64_t, int64_t>{(i * 977) % 4000, (i * 613) % 3800}; };
  for (int i = 0; i < n; ++i) ref[i] = s->read_region(pos(i).first, pos(i).second, i % 3, 200, 150);
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int i = t; i < n; i += 4) got[i] = s->read_region(pos(i).first, pos(i).second, i % 3, 200, 150);
    });
  for (auto& t : pool) t.join();
  for (int i = 0; i < n; ++i) EXPECT_TRUE(torch::equal(ref[i], got[i])) << i;
}

}  // namespace
}  // namespace medfm::io

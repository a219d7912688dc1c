// 2D image files through the format table: pixels equal what was written, for every channel count,
// read again and again on several threads (a one-channel image once came back from freed memory).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <thread>

#include "medfm/io/formats.h"
#include "medfm/io/image2d.h"

namespace medfm::io {
namespace {

TEST(Image2d, PixelsEqualWhatWasWrittenOnAnyThread) {
  torch::manual_seed(1);
  const std::string dir = ::testing::TempDir();
  std::vector<at::Tensor> want{torch::randint(0, 256, {1, 97, 83}, torch::kUInt8),
                               torch::randint(0, 256, {3, 64, 70}, torch::kUInt8)};
  std::vector<std::string> paths{dir + "/medfm_gray.png", dir + "/medfm_rgb.png"};
  for (size_t k = 0; k < want.size(); ++k) write_png(paths[k], want[k]);
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int w = 0; w < 3; ++w)
    th.emplace_back([&, w] {
      for (int i = 0; i < 20; ++i) {
        const size_t k = static_cast<size_t>(w + i) % want.size();
        auto img = open_image(paths[k]);
        auto px = img.pixels.dim() == 4 ? img.pixels.select(1, 0) : img.pixels;
        if (img.stored_dtype != "uint8" || !torch::equal(px.to(torch::kUInt8), want[k])) ++bad;
      }
    });
  for (auto& t : th) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Image2d, GrayPixelsOutliveTheDecoder) {
  // Two gray images of one size: the second decode reuses the first one's freed buffer, so pixels
  // that still pointed into it would change.
  torch::manual_seed(2);
  const std::string dir = ::testing::TempDir();
  auto a = torch::randint(0, 256, {1, 50, 40}, torch::kUInt8), b = torch::randint(0, 256, {1, 50, 40}, torch::kUInt8);
  write_png(dir + "/medfm_gray_a.png", a);
  write_png(dir + "/medfm_gray_b.png", b);
  auto ia = open_image(dir + "/medfm_gray_a.png");
  auto ib = open_image(dir + "/medfm_gray_b.png");
  auto pa = ia.pixels.dim() == 4 ? ia.pixels.select(1, 0) : ia.pixels;
  auto pb = ib.pixels.dim() == 4 ? ib.pixels.select(1, 0) : ib.pixels;
  EXPECT_TRUE(torch::equal(pa.to(torch::kUInt8), a));
  EXPECT_TRUE(torch::equal(pb.to(torch::kUInt8), b));
}

}  // namespace
}  // namespace medfm::io

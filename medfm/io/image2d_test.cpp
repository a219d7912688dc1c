// 2D image files through the format table: pixels equal what was written, for every channel count,
// read again and again on several threads (a one-channel image once came back from freed memory).
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <atomic>
#include <thread>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
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

// The decoded size is read from the header (PNG, JPEG, TIFF, BMP) and checked against
// runtime.max_memory before the decoder allocates; 16-bit samples count as held twice, as int32.
TEST(Image2d, SizeCheckedFromTheHeaderBeforeDecoding) {
  const std::string dir = ::testing::TempDir();
  cv::Mat rgb(200, 300, CV_8UC3, cv::Scalar(10, 20, 30)), gray16(200, 300, CV_16UC1, cv::Scalar(40000));
  struct Case {
    std::string name;
    const cv::Mat* m;
    double bytes;  // what the check counts: 300 x 200 samples x (Mat + tensor)
  };
  const std::vector<Case> cases{{"rgb.png", &rgb, 60000.0 * 3 * 2}, {"rgb.jpg", &rgb, 60000.0 * 3 * 2},
                                {"rgb.tif", &rgb, 60000.0 * 3 * 2}, {"rgb.bmp", &rgb, 60000.0 * 3 * 2},
                                {"g16.png", &gray16, 60000.0 * 6},  {"g16.tif", &gray16, 60000.0 * 6}};
  for (const auto& c : cases) {
    const std::string path = dir + "/medfm_hdr_" + c.name;
    ASSERT_TRUE(cv::imwrite(path, *c.m)) << c.name;
    set_max_memory(static_cast<uint64_t>(c.bytes));  // just enough
    auto img = open_image(path);
    EXPECT_EQ(img.pixels.size(-1), 300) << c.name;
    EXPECT_EQ(img.pixels.size(-2), 200) << c.name;
    if (c.m == &gray16) {
      EXPECT_EQ(img.stored_dtype, "uint16") << c.name;
      EXPECT_EQ(img.pixels.max().item<int64_t>(), 40000) << c.name;
    } else {
      EXPECT_EQ(img.pixels.flatten(1).select(1, 0)[0].item<int64_t>(), 30) << c.name;  // BGR -> RGB
    }
    set_max_memory(static_cast<uint64_t>(c.bytes) - 1);
    try {
      open_image(path);
      ADD_FAILURE() << c.name << " was decoded over the budget";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("decoding the 300x200 image"), std::string::npos) << e.what();
    }
  }
  set_max_memory(0);
}

}  // namespace
}  // namespace medfm::io

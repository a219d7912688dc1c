#include "medfm/data/views.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "medfm/core/config.h"
#include "medfm/core/error.h"

namespace medfm::data {
namespace {

TEST(Views, CropBoxInsideImageAndAreaInRange) {
  Rng rng({1, 2, 3});
  for (int i = 0; i < 500; ++i) {
    const int64_t h = 20 + rng.below(300), w = 20 + rng.below(300);
    auto b = random_resized_crop_box(h, w, 0.2, 0.6, rng);
    ASSERT_GE(b[0], 0);
    ASSERT_GE(b[1], 0);
    ASSERT_LE(b[0] + b[2], h);
    ASSERT_LE(b[1] + b[3], w);
    const double frac = static_cast<double>(b[2] * b[3]) / (h * w);
    const double ratio = static_cast<double>(b[3]) / b[2];
    // Either a sampled box (area within the range up to rounding) or the centred fallback.
    const bool fallback = b[2] == h || b[3] == w;
    if (!fallback) {
      EXPECT_GT(frac, 0.2 * 0.8);
      EXPECT_LT(frac, 0.6 * 1.25);
      EXPECT_GT(ratio, 0.75 * 0.8);
      EXPECT_LT(ratio, 4.0 / 3.0 * 1.25);
    }
  }
}

TEST(Views, SameKeySameViewsOtherKeyOtherViews) {
  auto img = torch::rand({3, 120, 100});
  auto spec = view_preset("pathology");
  spec.n_local = 3;
  spec.global_size = 64;
  spec.local_size = 32;
  const std::array<double, 3> mean{0.5, 0.5, 0.5}, std{0.25, 0.25, 0.25};
  Rng a({7, 0, 11}), b({7, 0, 11}), c({7, 0, 12});
  auto va = make_views(img, spec, mean, std, a), vb = make_views(img, spec, mean, std, b), vc = make_views(img, spec, mean, std, c);
  ASSERT_EQ(va.size(), 5u);
  EXPECT_EQ(va[0].sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_EQ(va[4].sizes(), (std::vector<int64_t>{3, 32, 32}));
  for (size_t i = 0; i < va.size(); ++i) EXPECT_TRUE(torch::equal(va[i], vb[i])) << i;
  EXPECT_FALSE(torch::equal(va[0], vc[0]));
  // Normalised: (x - 0.5) / 0.25 of values in [0, 1].
  for (auto& v : va) {
    EXPECT_GE(v.min().item<double>(), -2.0 - 1e-5);
    EXPECT_LE(v.max().item<double>(), 2.0 + 1e-5);
  }
}

TEST(Views, GrayInputAndPresets) {
  auto img = torch::rand({1, 40, 50});
  for (const char* p : {"natural", "pathology", "radiology", "ophthalmology"}) {
    auto spec = view_preset(p);
    spec.validate();
    spec.global_size = 24;
    spec.local_size = 16;
    Rng rng({1});
    auto v = make_views(img, spec, {0, 0, 0}, {1, 1, 1}, rng);
    EXPECT_EQ(v.size(), static_cast<size_t>(spec.n_global + spec.n_local)) << p;
  }
  // Radiology views of a gray image stay gray (no hue / saturation).
  auto spec = view_preset("radiology");
  spec.global_size = 24;
  spec.n_local = 0;
  Rng rng({5});
  auto v = make_views(img, spec, {0, 0, 0}, {1, 1, 1}, rng);
  EXPECT_LT((v[0][0] - v[0][1]).abs().max().item<double>(), 1e-6);
  EXPECT_THROW(view_preset("x"), ConfigError);
}

TEST(Views, ValidateNamesTheKey) {
  ViewSpec s;
  s.global_scale = {0.5, 0.2};
  try {
    s.validate();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("views.global_scale"), std::string::npos) << e.what();
  }
  s = ViewSpec{};
  s.blur_p = {0.5};
  EXPECT_THROW(s.validate(), ConfigError);
}

TEST(Rng, KeyedAndUniform) {
  Rng a({1, 2}), b({1, 2}), c({2, 1});
  EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(Rng({1, 2}).next(), c.next());
  Rng r({9});
  double sum = 0;
  int64_t counts[3] = {0, 0, 0};
  for (int i = 0; i < 30000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    counts[r.below(3)]++;
  }
  EXPECT_NEAR(sum / 30000, 0.5, 0.01);
  for (auto n : counts) EXPECT_NEAR(n / 30000.0, 1.0 / 3, 0.015);
}

}  // namespace
}  // namespace medfm::data

namespace medfm::data {
namespace {

TEST(Views, SameOnAnyThread) {
  auto img = torch::rand({3, 150, 130});
  auto spec = view_preset("natural");
  spec.global_size = 96;
  spec.local_size = 48;
  spec.n_local = 4;
  const std::array<double, 3> mean{0.5, 0.5, 0.5}, std{0.25, 0.25, 0.25};
  std::vector<std::vector<at::Tensor>> want;
  for (uint64_t k = 0; k < 6; ++k) {
    Rng r({1, k});
    want.push_back(make_views(img, spec, mean, std, r));
  }
  std::vector<std::vector<at::Tensor>> got(6);
  std::vector<std::thread> th;
  for (int w = 0; w < 3; ++w)
    th.emplace_back([&, w] {
      for (uint64_t k = static_cast<uint64_t>(w); k < 6; k += 3) {
        Rng r({1, k});
        got[k] = make_views(img, spec, mean, std, r);
      }
    });
  for (auto& t : th) t.join();
  for (size_t k = 0; k < 6; ++k)
    for (size_t v = 0; v < want[k].size(); ++v)
      EXPECT_TRUE(torch::equal(want[k][v], got[k][v])) << k << " " << v << " " << (want[k][v] - got[k][v]).abs().max().item<double>();
}

}  // namespace
}  // namespace medfm::data

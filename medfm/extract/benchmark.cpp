#include "medfm/extract/benchmark.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "medfm/core/error.h"
#include "medfm/data/model_input.h"
#include "medfm/data/transforms.h"
#include "medfm/io/formats.h"

namespace medfm::extract {

at::Tensor random_crops(const InputList& images, const PreprocessSpec& pre, int n, uint64_t seed) {
  MEDFM_CHECK_T(ConfigError, n > 0, "benchmark: batch size must be positive");
  std::vector<at::Tensor> imgs;
  for (const auto& p : images.paths) {
    Image file = io::open_image(p);
    MEDFM_CHECK_T(ConfigError, !file.is_volume, "benchmark: '", p, "' is a volume; give 2D images");
    auto img = data::display_to_rgb01(file.pixels, file.stored_dtype);
    if (std::min(img.size(1), img.size(2)) < pre.input_size)
      img = data::resize_shorter(img, pre.input_size, pre.interpolation);
    imgs.push_back(img);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<at::Tensor> batch;
  for (int i = 0; i < n; ++i) {
    const auto& img = imgs[i % imgs.size()];
    const int64_t top = at::randint(img.size(1) - pre.input_size + 1, {1}, gen).item<int64_t>();
    const int64_t left = at::randint(img.size(2) - pre.input_size + 1, {1}, gen).item<int64_t>();
    auto crop = img.narrow(1, top, pre.input_size).narrow(2, left, pre.input_size);
    batch.push_back(data::normalize(crop, pre.mean, pre.std));
  }
  return torch::stack(batch);
}

std::vector<double> time_backbone(models::Backbone& backbone, const at::Tensor& batch, int repeats,
                                  c10::Device device) {
  c10::InferenceMode guard;
  backbone.to(device);
  auto x = batch.to(device);
  backbone.embed(x);  // warm-up
  std::vector<double> rates;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto f = backbone.embed(x);
    if (device.is_cuda()) f.cpu();  // waits for the device
    rates.push_back(x.size(0) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(rates.begin(), rates.end());
  return rates;
}

}  // namespace medfm::extract

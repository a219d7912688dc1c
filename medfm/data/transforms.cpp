#include "medfm/data/transforms.h"

#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"

namespace medfm::data {

at::Tensor resize_to(const at::Tensor& img, int64_t h, int64_t w, const std::string& interpolation) {
  MEDFM_CHECK(img.dim() == 3, "resize: expected [C,H,W], got ", img.sizes());
  if (img.size(1) == h && img.size(2) == w) return img;
  auto x = img.unsqueeze(0);
  std::vector<int64_t> out{h, w};
  if (interpolation == "bicubic") {
    x = at::_upsample_bicubic2d_aa(x, at::IntArrayRef(out), false, c10::optional<at::ArrayRef<double>>());
  } else if (interpolation == "bilinear") {
    x = at::_upsample_bilinear2d_aa(x, at::IntArrayRef(out), false, c10::optional<at::ArrayRef<double>>());
  } else {
    throw ConfigError("resize: unknown interpolation '" + interpolation + "' (bicubic or bilinear)");
  }
  return x.squeeze(0);
}

at::Tensor resize_shorter(const at::Tensor& img, int size, const std::string& interpolation) {
  MEDFM_CHECK(img.dim() == 3, "resize: expected [C,H,W], got ", img.sizes());
  const int64_t h = img.size(1), w = img.size(2);
  const int64_t s = std::min(h, w), l = std::max(h, w);
  if (s == size) return img;
  const int64_t new_l = static_cast<int64_t>(static_cast<double>(size) * l / s);
  if (const double b = 4.0 * static_cast<double>(img.size(0)) * (static_cast<double>(h) * w + static_cast<double>(size) * new_l);
      b > static_cast<double>(max_memory()))
    check_memory(b, "resizing a " + std::to_string(w) + "x" + std::to_string(h) + " image to shorter side " +
                        std::to_string(size) + " (" + std::to_string(h <= w ? new_l : size) + "x" +
                        std::to_string(h <= w ? size : new_l) + ", float32)");
  return resize_to(img, h <= w ? size : new_l, h <= w ? new_l : size, interpolation);
}

at::Tensor center_crop(const at::Tensor& img, int size) {
  const int64_t h = img.size(1), w = img.size(2);
  MEDFM_CHECK(h >= size && w >= size, "crop: image ", h, "x", w, " is smaller than the crop ", size);
  const int64_t top = static_cast<int64_t>(std::nearbyint((h - size) / 2.0));
  const int64_t left = static_cast<int64_t>(std::nearbyint((w - size) / 2.0));
  return img.narrow(1, top, size).narrow(2, left, size);
}

at::Tensor normalize(const at::Tensor& img, const std::array<double, 3>& mean, const std::array<double, 3>& std) {
  auto m = torch::tensor({mean[0], mean[1], mean[2]}, img.options()).view({3, 1, 1});
  auto s = torch::tensor({std[0], std[1], std[2]}, img.options()).view({3, 1, 1});
  return (img - m) / s;
}

at::Tensor preprocess(const at::Tensor& img, const PreprocessSpec& spec) {
  auto x = img;
  if (spec.resize_size > 0) x = resize_shorter(x, spec.resize_size, spec.interpolation);
  x = center_crop(x, spec.input_size);
  return normalize(x, spec.mean, spec.std).contiguous();
}

}  // namespace medfm::data

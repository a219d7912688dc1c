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

namespace {
struct ShorterSide {
  int64_t h, w;  // output size
};
ShorterSide shorter_side(int64_t h, int64_t w, int size) {
  const int64_t s = std::min(h, w), l = std::max(h, w);
  MEDFM_CHECK(s > 0, "resize: empty ", h, "x", w, " image");
  const int64_t new_l = static_cast<int64_t>(static_cast<double>(size) * l / s);
  return h <= w ? ShorterSide{size, new_l} : ShorterSide{new_l, size};
}
// (per sample in pre-training: the message is built only when over the budget)
void check_resize_budget(double bytes, int64_t h, int64_t w, int size, ShorterSide o) {
  if (bytes > static_cast<double>(max_memory()))
    check_memory(bytes, "resizing a " + std::to_string(w) + "x" + std::to_string(h) + " image to shorter side " +
                            std::to_string(size) + " (" + std::to_string(o.w) + "x" + std::to_string(o.h) + ", float32)");
}
}  // namespace

at::Tensor resize_shorter(const at::Tensor& img, int size, const std::string& interpolation) {
  MEDFM_CHECK(img.dim() == 3, "resize: expected [C,H,W], got ", img.sizes());
  const int64_t h = img.size(1), w = img.size(2);
  if (std::min(h, w) == size) return img;
  const auto o = shorter_side(h, w, size);
  check_resize_budget(4.0 * static_cast<double>(img.size(0)) * (static_cast<double>(h) * w + static_cast<double>(o.h) * o.w),
                      h, w, size, o);
  return resize_to(img, o.h, o.w, interpolation);
}

at::Tensor resize_shorter_rows(const at::Tensor& src, int size, const std::string& interpolation,
                               const RowsToFloat& to_float, int64_t strip_bytes) {
  MEDFM_CHECK(src.dim() == 3, "resize: expected [C,H,W], got ", src.sizes());
  const int64_t c = src.size(0), h = src.size(1), w = src.size(2);
  const double row_bytes = 4.0 * static_cast<double>(std::max<int64_t>(c, 3)) * static_cast<double>(w);
  if (std::min(h, w) == size || row_bytes * static_cast<double>(h) <= static_cast<double>(strip_bytes))
    return resize_shorter(to_float(src), size, interpolation);
  const auto o = shorter_side(h, w, size);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(strip_bytes) / row_bytes));
  // What is held at once: one float strip, its width-resized copy, the stacked strips, the output.
  check_resize_budget(row_bytes * static_cast<double>(rows) * 2 +
                          4.0 * std::max<int64_t>(c, 3) * (static_cast<double>(h) * o.w + static_cast<double>(o.h) * o.w),
                      h, w, size, o);
  at::Tensor stacked;  // [C', H, o.w] float32
  for (int64_t r = 0; r < h; r += rows) {
    const int64_t n = std::min(rows, h - r);
    at::Tensor f = to_float(src.narrow(1, r, n));
    MEDFM_CHECK(f.dim() == 3 && f.size(1) == n && f.size(2) == w && f.scalar_type() == at::kFloat,
                "resize: a strip converted to ", f.sizes(), " ", f.scalar_type(), ", expected float32 [C,", n, ",", w, "]");
    if (!stacked.defined()) stacked = at::empty({f.size(0), h, o.w}, f.options());
    stacked.narrow(1, r, n).copy_(resize_to(f, n, o.w, interpolation));
  }
  return resize_to(stacked, o.h, o.w, interpolation);
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

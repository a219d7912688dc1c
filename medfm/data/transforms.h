// Image transforms on float tensors [C,H,W], matching torchvision's tensor transforms.
#pragma once
#include <ATen/Tensor.h>

#include <functional>

#include "medfm/core/preprocess_spec.h"

namespace medfm::data {

// [C,H,W] -> [C,h,w], antialiased "bicubic" or "bilinear", align_corners=false, no clamping.
at::Tensor resize_to(const at::Tensor& img, int64_t h, int64_t w, const std::string& interpolation);
// Shorter side -> size (longer side int(size * long / short)), antialiased bicubic or bilinear,
// align_corners=false; no clamping (as torchvision.transforms.functional.resize on float tensors).
at::Tensor resize_shorter(const at::Tensor& img, int size, const std::string& interpolation);
// Maps a strip of source rows [C,h,W] (any dtype) to float32 [C',h,W] in model units.
using RowsToFloat = std::function<at::Tensor(const at::Tensor& rows)>;
// resize_shorter(to_float(src), ...) without converting the whole source: when its float copy
// would exceed strip_bytes, strips of rows are converted and resized along the width, and the
// stacked strips along the height. Equal to the whole-image call (the antialiased resize is
// separable and resizes the width first; tested). The budget is checked for what is allocated.
at::Tensor resize_shorter_rows(const at::Tensor& src, int size, const std::string& interpolation,
                               const RowsToFloat& to_float, int64_t strip_bytes = int64_t{64} << 20);
// Centred crop; offsets rounded half-to-even as torchvision's CenterCrop. Throws if too small.
at::Tensor center_crop(const at::Tensor& img, int size);
// (img - mean) / std per channel.
at::Tensor normalize(const at::Tensor& img, const std::array<double, 3>& mean, const std::array<double, 3>& std);
// resize_shorter -> center_crop -> normalize, as spec says: [3,H,W] in [0,1] -> [3,S,S].
at::Tensor preprocess(const at::Tensor& img, const PreprocessSpec& spec);

}  // namespace medfm::data

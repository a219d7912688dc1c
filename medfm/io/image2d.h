// 2D image files (PNG, JPEG, TIFF, BMP) are read through the format table (formats.h: open_image,
// row "image2d", OpenCV). This header keeps the writer.
#pragma once
#include <ATen/Tensor.h>

#include <string>

namespace medfm::io {
// Writes uint8 RGB [3,H,W] or gray [1,H,W] as PNG (atomically: temp file + rename). Throws IoError.
void write_png(const std::string& path, const at::Tensor& chw);
// Writes uint8 RGB [3,H,W] as JPEG at `quality` (1..100), atomically. Throws IoError.
void write_jpeg(const std::string& path, const at::Tensor& chw, int quality = 90);
}  // namespace medfm::io

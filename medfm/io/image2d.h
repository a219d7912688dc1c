// 2D image files (PNG, JPEG, TIFF; 8- or 16-bit; gray, RGB or RGBA) decoded with OpenCV.
#pragma once
#include <ATen/Tensor.h>

#include <string>

namespace medfm::io {

// True for the extensions read_image_rgb accepts (.png .jpg .jpeg .tif .tiff .bmp), any case.
bool is_image_2d_path(const std::string& path);

// Decodes to float32 RGB [3,H,W] in [0,1] (8-bit / 255, 16-bit / 65535; gray replicated, alpha
// dropped). Throws IoError if the file cannot be read, FormatError if it does not decode.
// Thread-safe.
at::Tensor read_image_rgb(const std::string& path);

}  // namespace medfm::io

namespace medfm::io {
// Writes uint8 RGB [3,H,W] or gray [1,H,W] as PNG (atomically: temp file + rename). Throws IoError.
void write_png(const std::string& path, const at::Tensor& chw);
}  // namespace medfm::io

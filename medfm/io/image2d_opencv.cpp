#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "medfm/core/error.h"
#include "medfm/io/image2d.h"

namespace medfm::io {

bool is_image_2d_path(const std::string& path) {
  auto dot = path.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "tif" || ext == "tiff" || ext == "bmp";
}

at::Tensor read_image_rgb(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  MEDFM_CHECK_T(IoError, probe.good(), "image: cannot open '", path, "'");
  probe.close();
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw FormatError("image: cannot decode '" + path + "': " + e.what());
  }
  MEDFM_CHECK_T(FormatError, !m.empty(), "image: cannot decode '", path, "' (corrupt or unsupported)");
  double scale;
  switch (m.depth()) {
    case CV_8U: scale = 1.0 / 255.0; break;
    case CV_16U: scale = 1.0 / 65535.0; break;
    default: throw FormatError("image: '" + path + "' has unsupported sample type (only 8/16-bit unsigned)");
  }
  cv::Mat rgb;
  switch (m.channels()) {
    case 1: cv::cvtColor(m, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(m, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(m, rgb, cv::COLOR_BGRA2RGB); break;
    default: throw FormatError("image: '" + path + "' has " + std::to_string(m.channels()) + " channels");
  }
  cv::Mat f;
  rgb.convertTo(f, CV_32FC3, scale);
  auto t = torch::from_blob(f.data, {f.rows, f.cols, 3}, torch::kFloat).permute({2, 0, 1}).contiguous();  // HWC -> CHW
  return t;
}

}  // namespace medfm::io

#include "medfm/data/heatmap.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "medfm/core/error.h"
#include "medfm/data/tissue.h"

namespace medfm::data {
namespace {

cv::Vec3b viridis(double t) {  // t in [0,1] -> RGB
  cv::Mat one(1, 1, CV_8U, cv::Scalar(static_cast<int>(std::lround(std::clamp(t, 0.0, 1.0) * 255)))), c;
  cv::applyColorMap(one, c, cv::COLORMAP_VIRIDIS);  // BGR
  const auto b = c.at<cv::Vec3b>(0, 0);
  return {b[2], b[1], b[0]};
}

std::string label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace

at::Tensor render_heatmap(const io::Slide& slide, const std::vector<std::array<int64_t, 2>>& coords,
                          const std::vector<double>& scores, double tile_level0, const HeatmapOptions& o) {
  MEDFM_CHECK_T(ConfigError, coords.size() == scores.size(), "heatmap: ", scores.size(), " scores for ", coords.size(),
                " tiles");
  MEDFM_CHECK_T(ConfigError, !coords.empty(), "heatmap: no tiles");
  MEDFM_CHECK_T(ConfigError, tile_level0 > 0 && o.size >= 64 && o.alpha >= 0 && o.alpha <= 1,
                "heatmap: bad tile size, image size or alpha");
  double lo = o.vmin.value_or(INFINITY), hi = o.vmax.value_or(-INFINITY);
  for (double s : scores) {
    if (!std::isfinite(s)) continue;
    if (!o.vmin) lo = std::min(lo, s);
    if (!o.vmax) hi = std::max(hi, s);
  }
  MEDFM_CHECK_T(ConfigError, std::isfinite(lo) && std::isfinite(hi), "heatmap: no finite score");
  if (hi <= lo) hi = lo + 1;  // constant scores: one colour
  double ds = 1;
  auto hwc = read_thumbnail(slide, o.size, &ds).permute({1, 2, 0}).contiguous();
  cv::Mat img(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  cv::Mat overlay = img.clone();
  const int side = std::max(1, static_cast<int>(std::lround(tile_level0 / ds)));
  for (size_t i = 0; i < coords.size(); ++i) {
    if (!std::isfinite(scores[i])) continue;
    const cv::Point a(static_cast<int>(std::lround(coords[i][0] / ds)), static_cast<int>(std::lround(coords[i][1] / ds)));
    const auto c = viridis((scores[i] - lo) / (hi - lo));
    cv::rectangle(overlay, a, a + cv::Point(side - 1, side - 1), cv::Scalar(c[0], c[1], c[2]), cv::FILLED);
  }
  cv::Mat blended;
  cv::addWeighted(overlay, o.alpha, img, 1 - o.alpha, 0, blended);
  // Colour bar: 24 px wide beside the image, high values at the top, with the range written.
  const int bar_w = 90, pad = 12, bh = std::max(40, blended.rows - 2 * pad);
  cv::Mat out(blended.rows, blended.cols + bar_w, CV_8UC3, cv::Scalar(255, 255, 255));
  blended.copyTo(out(cv::Rect(0, 0, blended.cols, blended.rows)));
  for (int y = 0; y < bh; ++y) {
    const auto c = viridis(1.0 - static_cast<double>(y) / (bh - 1));
    cv::line(out, {blended.cols + 10, pad + y}, {blended.cols + 34, pad + y}, cv::Scalar(c[0], c[1], c[2]));
  }
  cv::rectangle(out, {blended.cols + 10, pad}, {blended.cols + 34, pad + bh - 1}, cv::Scalar(0, 0, 0), 1);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  cv::putText(out, label(hi), {blended.cols + 38, pad + 10}, font, 0.4, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(out, label((lo + hi) / 2), {blended.cols + 38, pad + bh / 2 + 4}, font, 0.4, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(out, label(lo), {blended.cols + 38, pad + bh - 2}, font, 0.4, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  return torch::from_blob(out.data, {out.rows, out.cols, 3}, at::kByte).permute({2, 0, 1}).contiguous();  // HWC -> CHW
}

}  // namespace medfm::data

#include "medfm/eval/chart.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "medfm/core/error.h"
#include "medfm/io/image2d.h"

namespace medfm::eval {

namespace {

// Round tick values covering [lo, hi]: steps of 1, 2 or 5 x 10^k, about n of them.
std::vector<double> ticks(double lo, double hi, int n) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string label(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

const cv::Scalar kColours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}};

}  // namespace

void write_confusion_matrix(const std::string& path, const std::vector<int64_t>& counts, const std::vector<std::string>& classes,
                            const std::string& title) {
  const int C = static_cast<int>(classes.size());
  MEDFM_CHECK(C > 0 && counts.size() == static_cast<size_t>(C) * C, "chart: ", counts.size(), " counts for ", C, " classes");
  const int cell = std::clamp(640 / C, 14, 64), L = 130, T = 70, B = 110, R = 30;
  const int W = L + C * cell + R, H = T + C * cell + B;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar ink(40, 40, 40);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  auto short_name = [](std::string s) { return s.size() > 14 ? s.substr(0, 13) + "~" : s; };
  const double text_scale = std::min(0.45, cell / 70.0);
  for (int t = 0; t < C; ++t) {
    int64_t row = 0;
    for (int p = 0; p < C; ++p) row += counts[t * C + p];
    for (int p = 0; p < C; ++p) {
      const int64_t n = counts[t * C + p];
      const double rate = row ? static_cast<double>(n) / static_cast<double>(row) : 0.0;
      // White (0) to the chart blue (1): RGB triples, as in the line charts.
      const cv::Scalar c(255 - rate * (255 - 31), 255 - rate * (255 - 119), 255 - rate * (255 - 180));
      const cv::Point a(L + p * cell, T + t * cell), b(L + (p + 1) * cell - 1, T + (t + 1) * cell - 1);
      cv::rectangle(img, a, b, c, cv::FILLED);
      if (cell >= 22 && n > 0) {
        const std::string txt = std::to_string(n);
        int base = 0;
        auto sz = cv::getTextSize(txt, font, text_scale, 1, &base);
        cv::putText(img, txt, {a.x + (cell - sz.width) / 2, a.y + (cell + sz.height) / 2}, font, text_scale,
                    rate > 0.55 ? cv::Scalar(255, 255, 255) : ink, 1, cv::LINE_AA);
      }
    }
    const bool every = C <= 40 || t % (C / 40 + 1) == 0;
    if (every) cv::putText(img, short_name(classes[t]), {6, T + t * cell + cell / 2 + 4}, font, 0.38, ink, 1, cv::LINE_AA);
  }
  cv::rectangle(img, {L - 1, T - 1}, {L + C * cell, T + C * cell}, ink, 1);
  // Predicted-class names written downwards under the columns (rotated text via a transposed patch).
  for (int p = 0; p < C; ++p) {
    if (!(C <= 40 || p % (C / 40 + 1) == 0)) continue;
    cv::Mat patch(16, B - 30, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::putText(patch, short_name(classes[p]), {2, 12}, font, 0.38, ink, 1, cv::LINE_AA);
    cv::Mat rot;
    cv::rotate(patch, rot, cv::ROTATE_90_CLOCKWISE);
    const int x = L + p * cell + cell / 2 - 8;
    if (x >= 0 && x + rot.cols <= W) rot.copyTo(img(cv::Rect(x, T + C * cell + 4, rot.cols, rot.rows)));
  }
  cv::putText(img, title, {L, 24}, font, 0.6, ink, 1, cv::LINE_AA);
  cv::putText(img, "rows: true class, columns: predicted; shade: share of the row", {L, 48}, font, 0.4, ink, 1, cv::LINE_AA);
  auto hwc = torch::from_blob(img.data, {H, W, 3}, torch::kUInt8);
  io::write_png(path, hwc.permute({2, 0, 1}).contiguous());
}

std::vector<double> moving_average(const std::vector<double>& v, size_t w) {
  std::vector<double> out(v.size());
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    sum += v[i], ++n;
    if (n > w) sum -= v[i - w], --n;
    out[i] = sum / static_cast<double>(n);
  }
  return out;
}

void write_line_chart(const std::string& path, const std::vector<Series>& series, const ChartOptions& o) {
  auto ty = [&](double y) { return o.log_y ? (y > 0 ? std::log10(y) : NAN) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const double x = s.x[i], y = ty(s.y[i]);
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  MEDFM_CHECK(std::isfinite(x0) && std::isfinite(y0), "chart: nothing to draw for ", path);
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  if (std::isfinite(o.x_lo)) x0 = o.x_lo;
  if (std::isfinite(o.x_hi)) x1 = o.x_hi;
  if (std::isfinite(o.y_lo)) y0 = o.y_lo;
  if (std::isfinite(o.y_hi)) y1 = o.y_hi;
  const int W = o.width, H = o.height, L = 80, R = 20, T = 50, B = 60;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  auto px = [&](double x) { return L + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (W - L - R))); };
  auto py = [&](double y) { return H - B - static_cast<int>(std::lround((y - y0) / (y1 - y0) * (H - T - B))); };
  const cv::Scalar grid(225, 225, 225), ink(40, 40, 40);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  for (double t : ticks(x0, x1, 8)) {
    cv::line(img, {px(t), T}, {px(t), H - B}, grid, 1);
    cv::putText(img, label(t), {px(t) - 12, H - B + 18}, font, 0.4, ink, 1, cv::LINE_AA);
  }
  for (double t : ticks(y0, y1, 6)) {
    cv::line(img, {L, py(t)}, {W - R, py(t)}, grid, 1);
    cv::putText(img, label(o.log_y ? std::pow(10.0, t) : t), {4, py(t) + 4}, font, 0.4, ink, 1, cv::LINE_AA);
  }
  cv::rectangle(img, {L, T}, {W - R, H - B}, ink, 1);
  if (o.diagonal) {
    const double a = std::max(x0, y0), b = std::min(x1, y1);
    for (double t = a; t < b; t += (b - a) / 40) {
      const double u = std::min(b, t + (b - a) / 80);
      cv::line(img, {px(t), py(t)}, {px(u), py(u)}, {150, 150, 150}, 1, cv::LINE_AA);
    }
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const cv::Scalar c = kColours[k % 6];
    std::vector<cv::Point> pts;
    auto flush = [&] {
      if (pts.size() > 1) cv::polylines(img, pts, false, c, 2, cv::LINE_AA);
      else if (pts.size() == 1) cv::circle(img, pts[0], 3, c, cv::FILLED, cv::LINE_AA);
      pts.clear();
    };
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      const double y = ty(s.y[i]);
      if (!std::isfinite(s.x[i]) || !std::isfinite(y)) {
        flush();
        continue;
      }
      pts.emplace_back(px(s.x[i]), py(y));
    }
    flush();
    // Short series (few-shot points, schedules) get a marker at every point.
    if (s.x.size() <= 30)
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(ty(s.y[i]))) cv::circle(img, {px(s.x[i]), py(ty(s.y[i]))}, 3, c, cv::FILLED, cv::LINE_AA);
  }
  // Legend: inside the plot, top right (bottom right with legend_bottom), sized to its longest name.
  int text_w = 0;
  for (const auto& s : series) {
    int base = 0;
    text_w = std::max(text_w, cv::getTextSize(s.name, font, 0.45, 1, &base).width);
  }
  const int lx = W - R - text_w - 42, n_series = static_cast<int>(series.size());
  const int ly0 = o.legend_bottom ? H - B - 10 - 18 * n_series : T + 8;
  cv::rectangle(img, {lx - 6, ly0}, {W - R - 4, ly0 + 18 * n_series + 6}, {255, 255, 255}, cv::FILLED);
  for (int k = 0; k < n_series; ++k) {
    const int ly = ly0 + 18 + 18 * k;
    cv::line(img, {lx, ly - 4}, {lx + 25, ly - 4}, kColours[k % 6], 2, cv::LINE_AA);
    cv::putText(img, series[k].name, {lx + 30, ly}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  cv::putText(img, o.title, {L, 22}, font, 0.6, ink, 1, cv::LINE_AA);
  cv::putText(img, o.x_label, {L + (W - L - R) / 2 - 20, H - 18}, font, 0.5, ink, 1, cv::LINE_AA);
  cv::putText(img, o.y_label + (o.log_y ? " (log)" : ""), {L, T - 6}, font, 0.45, ink, 1, cv::LINE_AA);
  // The colours above are RGB triples and the Mat's channels are taken as R, G, B (no BGR here).
  auto hwc = torch::from_blob(img.data, {H, W, 3}, torch::kUInt8);
  io::write_png(path, hwc.permute({2, 0, 1}).contiguous());
}

}  // namespace medfm::eval

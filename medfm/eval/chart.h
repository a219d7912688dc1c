// Line charts as PNG (OpenCV drawing): series of (x, y) points on linear axes (y optionally
// log10), tick labels at round values, a legend. For training curves and, later, ROC curves.
// Non-finite points are skipped. Writes atomically (io::write_png).
#pragma once
#include <string>
#include <vector>

namespace medfm::eval {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 900, height = 540;
};

// Throws Error when no series has a finite point; IoError when the file cannot be written.
void write_line_chart(const std::string& path, const std::vector<Series>& series, const ChartOptions& opts);

// Moving average over a window of `w` points (the first ones over what exists so far).
std::vector<double> moving_average(const std::vector<double>& v, size_t w);

}  // namespace medfm::eval

// Line charts as PNG (OpenCV drawing): series of (x, y) points on linear axes (y optionally
// log10), tick labels at round values, a legend. For training curves, ROC curves and few-shot
// accuracy; confusion matrices as shaded grids.
// Non-finite points are skipped. Writes atomically (io::write_png).
#pragma once
#include <cmath>
#include <cstdint>
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
  double x_lo = NAN, x_hi = NAN, y_lo = NAN, y_hi = NAN;  // fixed axis ends (NaN: from the data)
  bool diagonal = false;                                  // a dashed y = x line (ROC charts)
  bool legend_bottom = false;                             // legend in the lower right corner
};

// Throws Error when no series has a finite point; IoError when the file cannot be written.
void write_line_chart(const std::string& path, const std::vector<Series>& series, const ChartOptions& opts);

// Confusion matrix as a grid of cells shaded by the row-normalised rate (recall per true class),
// counts written in cells while they fit; counts[t * C + p], classes.size() == C.
void write_confusion_matrix(const std::string& path, const std::vector<int64_t>& counts, const std::vector<std::string>& classes,
                            const std::string& title);

// Moving average over a window of `w` points (the first ones over what exists so far).
std::vector<double> moving_average(const std::vector<double>& v, size_t w);

}  // namespace medfm::eval

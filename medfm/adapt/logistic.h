// Linear probe: multinomial logistic regression on standardised features, as scikit-learn's
// StandardScaler + LogisticRegression(lbfgs, L2): W, b minimise
//   mean_i CE(x_i W + b, y_i) + ||W||^2 / (2 C N)       (sklearn's objective divided by N)
// solved with L-BFGS (strong-Wolfe line search, history 10). The intercept is not penalised.
// fit_logistic_probe picks C from a grid by balanced accuracy on a validation subset (ties: the
// smaller C), warm-starting each C from the previous, then refits on all training rows.
// Tensors: x [N,D] on any device, solved in float32 (float64 when x is float64, for reference
// comparisons); y class ids in [0, C).
// Not thread-safe per object.
#pragma once
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace medfm::adapt {

// Column mean and population std of training features; a constant column is scaled by 1.
struct Standardizer {
  at::Tensor mean, scale;  // [D] float32 (float64 for float64 input)
  static Standardizer fit(const at::Tensor& x);
  at::Tensor apply(const at::Tensor& x) const;
};

// n values log-spaced from lo to hi inclusive (numpy.logspace(log10 lo, log10 hi, n)).
std::vector<double> log_grid(double lo, double hi, int n);

struct LogisticOptions {
  std::vector<double> c_grid = log_grid(1e-4, 1e4, 17);
  int max_iter = 1000;
  double tol = 1e-5;  // stop when max |gradient| falls below this
};

class LogisticRegression {
 public:
  // Fits on x (already standardised). Keeps the current weights as the start when their shape fits.
  void fit(const at::Tensor& x, const std::vector<int>& y, int n_classes, double c, const LogisticOptions& opts);
  at::Tensor predict_proba(const at::Tensor& x) const;  // [N,C] in the fit's dtype, rows sum to 1
  int64_t iterations() const { return iterations_; }
  const at::Tensor& weight() const { return w_; }  // [D,C]
  const at::Tensor& bias() const { return b_; }    // [C]

 private:
  at::Tensor w_, b_;
  int64_t iterations_ = 0;
};

struct LogisticProbe {
  Standardizer scaler;
  LogisticRegression model;
  double c = 0;
  std::vector<double> c_grid, val_balanced_accuracy;  // the selection, one value per grid C
  at::Tensor predict_proba(const at::Tensor& x) const { return model.predict_proba(scaler.apply(x)); }
};

// train/val: row indices into x and y. With an empty val, the grid must hold one C.
LogisticProbe fit_logistic_probe(const at::Tensor& x, const std::vector<int>& y, int n_classes, const std::vector<int64_t>& train,
                                 const std::vector<int64_t>& val, const LogisticOptions& opts);

}  // namespace medfm::adapt

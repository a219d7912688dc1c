#include "medfm/train/schedule.h"

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::train {
namespace {

// np.linspace(a, b, n): n values, both ends included (one value: a).
void linspace(std::vector<double>& out, double a, double b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out.push_back(n == 1 ? a : a + (b - a) * static_cast<double>(i) / static_cast<double>(n - 1));
}

}  // namespace

Schedule Schedule::cosine(double base, double final_value, int64_t total, int64_t warmup, double start_warmup,
                          int64_t freeze) {
  MEDFM_CHECK_T(ConfigError, total >= 0 && warmup >= 0 && freeze >= 0 && total >= warmup + freeze, "schedule: ",
                total, " steps cannot hold ", freeze, " frozen and ", warmup, " warm-up steps");
  Schedule s;
  s.final_ = final_value;
  s.values_.assign(static_cast<size_t>(freeze), 0.0);
  linspace(s.values_, start_warmup, base, warmup);
  const int64_t n = total - warmup - freeze;
  for (int64_t i = 0; i < n; ++i)
    s.values_.push_back(final_value + 0.5 * (base - final_value) * (1 + std::cos(M_PI * static_cast<double>(i) / static_cast<double>(n))));
  return s;
}

Schedule Schedule::linear_warmup_then_constant(double start, double value, int64_t warmup, int64_t total) {
  MEDFM_CHECK_T(ConfigError, warmup >= 0 && total >= warmup, "schedule: ", total, " steps cannot hold ", warmup,
                " warm-up steps");
  Schedule s;
  s.final_ = value;
  linspace(s.values_, start, value, warmup);
  s.values_.resize(static_cast<size_t>(total), value);
  return s;
}

Schedule Schedule::constant(double value, int64_t total) {
  Schedule s;
  s.final_ = value;
  s.values_.assign(static_cast<size_t>(std::max<int64_t>(0, total)), value);
  return s;
}

double Schedule::operator[](int64_t step) const {
  MEDFM_CHECK(step >= 0, "schedule: negative step ", step);
  return step < size() ? values_[static_cast<size_t>(step)] : final_;
}

}  // namespace medfm::train

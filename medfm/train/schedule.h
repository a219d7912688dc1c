// Schedules as arrays precomputed once and indexed by step (DINO / DINOv2's CosineScheduler):
// `freeze` steps at 0, then a linear warm-up from `start_warmup` to `base` over `warmup` steps
// (np.linspace: both ends included), then a half cosine from `base` to `final` over the remaining
// steps; a step past the end gets `final`.
#pragma once
#include <cstdint>
#include <vector>

namespace medfm::train {

class Schedule {
 public:
  Schedule() = default;
  // Throws ConfigError when total < freeze + warmup or a count is negative.
  static Schedule cosine(double base, double final_value, int64_t total, int64_t warmup = 0,
                         double start_warmup = 0, int64_t freeze = 0);
  // DINO's teacher temperature: linear from `start` to `value` over `warmup` steps, then `value`.
  static Schedule linear_warmup_then_constant(double start, double value, int64_t warmup, int64_t total);
  static Schedule constant(double value, int64_t total);

  double operator[](int64_t step) const;
  int64_t size() const { return static_cast<int64_t>(values_.size()); }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<double> values_;
  double final_ = 0;
};

}  // namespace medfm::train

#include "medfm/models/precision.h"

#include <ATen/autocast_mode.h>

#include <fstream>
#include <string>

#include "medfm/core/error.h"

namespace medfm::models {

Precision parse_precision(const std::string& s) {
  if (s == "fp32" || s == "float32") return Precision::FP32;
  if (s == "bf16" || s == "bfloat16") return Precision::BF16;
  if (s == "fp16" || s == "float16") return Precision::FP16;
  throw ConfigError("model.precision: '" + s + "' is not fp32, bf16 or fp16");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::BF16: return "bf16";
    case Precision::FP16: return "fp16";
  }
  return "?";
}

bool cpu_has_native_bf16() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  }
  return false;
}

AutocastGuard::AutocastGuard(Precision p, c10::Device device) {
  if (p == Precision::FP32) return;
  const at::ScalarType dtype = p == Precision::BF16 ? at::kBFloat16 : at::kHalf;
  cuda_ = device.is_cuda();
  MEDFM_CHECK_T(ConfigError, cuda_ || p == Precision::BF16, "model.precision: fp16 needs a CUDA device (use bf16 on the CPU)");
  active_ = true;
  if (cuda_) {
    prev_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = static_cast<int>(at::autocast::get_autocast_gpu_dtype());
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    prev_enabled_ = at::autocast::is_cpu_enabled();
    prev_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(prev_enabled_);
    at::autocast::set_autocast_gpu_dtype(static_cast<at::ScalarType>(prev_dtype_));
  } else {
    at::autocast::set_cpu_enabled(prev_enabled_);
    at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(prev_dtype_));
  }
}

}  // namespace medfm::models

// Inference precision. "bf16" runs matrix products and convolutions in bfloat16 with float32
// accumulation, and keeps normalisation, softmax and the residual stream in float32, as
// torch.autocast(dtype=torch.bfloat16) does (CPU: oneDNN's AVX512-BF16 / AMX kernels; CUDA).
// "fp16" is CUDA only. Outputs are float32 whatever the precision.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace medfm::models {

enum class Precision { FP32, BF16, FP16 };

// "fp32" | "bf16" | "fp16"; throws ConfigError naming the key for anything else.
Precision parse_precision(const std::string& s);
const char* precision_name(Precision p);

// Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX); without them oneDNN
// emulates bf16 and it is slower than fp32.
bool cpu_has_native_bf16();

// Autocast on `device` for the guard's lifetime (a no-op for FP32); restores the previous state.
// Throws ConfigError for fp16 on the CPU.
class AutocastGuard {
 public:
  AutocastGuard(Precision p, c10::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cuda_ = false, prev_enabled_ = false;
  int prev_dtype_ = 0;
};

}  // namespace medfm::models

// Small CPU kernels for the fast paths (inference, and the training MLP), without LibTorch (cheap to compile). Each picks
// AVX-512, AVX2+FMA or portable code at run time from the CPU it runs on (GCC function
// multi-versioning), so one binary serves every x86-64 machine; other architectures get the
// portable code.
#pragma once
#include <cstdint>

namespace medfm::models::kernels {

// In-place softmax over each of `rows` rows of n floats (row i starts at x + i * ld):
// x <- exp(x - max) / sum. exp is a degree-6 polynomial after Cody-Waite range reduction
// (relative error < 2e-7 against std::exp), arguments below -87 give 0. Rows holding NaN give NaN.
void softmax_rows(float* x, int64_t rows, int64_t n, int64_t ld);

// In place x <- gelu(x + bias) over `rows` contiguous rows of n floats (bias [n]), GELU as
// nn.GELU() defines it (x/2 (1 + erf(x / sqrt 2))). The vector code uses the Abramowitz-Stegun
// erf (7.1.26, absolute error < 1.5e-7), as LibTorch's own vectorised GELU does; the portable code
// uses std::erf.
void bias_gelu_rows(float* x, int64_t rows, int64_t n, const float* bias);

// For training (the MLP's hidden layer with its own backward): in place pre <- pre + bias, and
// out <- gelu(pre), over `rows` contiguous rows of n floats. Same erf as bias_gelu_rows.
void bias_gelu_train_rows(float* pre, float* out, int64_t rows, int64_t n, const float* bias);
// GELU's backward over `rows` contiguous rows of n floats: out = grad * gelu'(pre), with
// gelu'(x) = (1 + erf(x / sqrt 2)) / 2 + x exp(-x^2 / 2) / sqrt(2 pi); each column's sum of out
// is added into colsum[n] (the bias gradient). out may be grad.
void gelu_backward_rows(const float* grad, const float* pre, float* out, int64_t rows, int64_t n, float* colsum);

// One AdamW step in place over n floats: torch.optim.AdamW's update (decoupled weight decay,
// no amsgrad) in one pass over memory, where LibTorch's AdamW makes eight passes and two
// temporaries per parameter:
//   p <- p decay;  m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
//   p <- p - step_size m / (sqrt(v) / sqrt_bc2 + eps)
// with decay = 1 - lr wd, step_size = lr / (1 - beta1^t), sqrt_bc2 = sqrt(1 - beta2^t).
struct AdamwCoeffs {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, sqrt_bc2, eps;
};
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoeffs& c);

// The instruction sets the kernels have code for; best_isa() is what softmax_rows uses here.
// softmax_rows_isa runs one explicitly (tests compare them); asking for one this CPU lacks throws.
enum class Isa { kPortable, kAvx2, kAvx512 };
Isa best_isa();
const char* isa_name(Isa isa);
void softmax_rows_isa(Isa isa, float* x, int64_t rows, int64_t n, int64_t ld);
void bias_gelu_rows_isa(Isa isa, float* x, int64_t rows, int64_t n, const float* bias);
void bias_gelu_train_rows_isa(Isa isa, float* pre, float* out, int64_t rows, int64_t n, const float* bias);
void gelu_backward_rows_isa(Isa isa, const float* grad, const float* pre, float* out, int64_t rows, int64_t n,
                            float* colsum);
void adamw_update_isa(Isa isa, float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoeffs& c);

}  // namespace medfm::models::kernels

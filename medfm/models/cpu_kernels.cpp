#include "medfm/models/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's _mm512_reduce_* start from an undefined vector and warn about it (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define MEDFM_X86_KERNELS 1
#endif

namespace medfm::models::kernels {
namespace {

// exp(x) for x <= 0 (softmax arguments after subtracting the row maximum): x = n ln2 + r with
// |r| <= ln2/2, e^r by its Taylor polynomial to degree 6 (Horner), 2^n built in the exponent bits.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;        // ln2 split so n * kLn2Hi is exact for |n| < 128
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kMinArg = -87.0f;             // e^-87 ~ 1.6e-38, just above FLT_MIN
constexpr float kC[7] = {1.0f, 1.0f, 0.5f, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720};

inline float exp_neg_scalar(float x) {
  if (!(x >= kMinArg)) return std::isnan(x) ? x : 0.0f;
  const float n = std::nearbyint(x * kLog2e);
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = kC[6];
  for (int i = 5; i >= 0; --i) p = p * r + kC[i];
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

void softmax_row_portable(float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  if (std::isnan(m) || std::isinf(m)) {  // NaN or +-inf anywhere: let std::exp decide, as at::softmax does
    float s = 0;
    for (int64_t j = 0; j < n; ++j) s += (x[j] = std::exp(x[j] - m));
    for (int64_t j = 0; j < n; ++j) x[j] /= s;
    return;
  }
  float s = 0;
  for (int64_t j = 0; j < n; ++j) s += (x[j] = exp_neg_scalar(x[j] - m));
  const float inv = 1.0f / s;
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

constexpr float kInvSqrt2 = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;

void bias_gelu_row_portable(float* x, int64_t n, const float* bias) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j] + bias[j];
    x[j] = 0.5f * v * (1.0f + std::erf(v * kInvSqrt2));
  }
}

void gelu_train_row_portable(float* pre, float* out, int64_t n, const float* bias) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = pre[j] += bias[j];
    out[j] = 0.5f * v * (1.0f + std::erf(v * kInvSqrt2));
  }
}

void gelu_backward_row_portable(const float* g, const float* pre, float* out, int64_t n, float* colsum) {
  for (int64_t j = 0; j < n; ++j) {
    const float x = pre[j];
    const float d = 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * std::exp(-0.5f * x * x) * kInvSqrt2Pi;
    colsum[j] += (out[j] = g[j] * d);
  }
}

// The AVX2 loop's tail and the portable code: the same operations in the same order, so a value
// does not depend on where it falls in the array. The order is LibTorch's (mul_ then add_'s fused
// multiply-add for m, addcmul_'s (value g) g for v, then div, add, addcdiv_).
__attribute__((noinline)) void adamw_portable(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoeffs& c) {
  for (int64_t j = 0; j < n; ++j) {
    const float gj = g[j];
    const float mj = std::fma(gj, c.one_minus_beta1, m[j] * c.beta1);
    const float vj = v[j] * c.beta2 + (c.one_minus_beta2 * gj) * gj;
    m[j] = mj;
    v[j] = vj;
    const float denom = std::sqrt(vj) / c.sqrt_bc2 + c.eps;
    p[j] = p[j] * c.decay - c.step_size * (mj / denom);
  }
}

// Abramowitz-Stegun 7.1.26: erf(a) = 1 - t (p1 + t (p2 + t (p3 + t (p4 + t p5)))) e^(-a^2), t = 1 / (1 + p a), a >= 0.
constexpr float kErfP = 0.3275911f;
constexpr float kErfA[5] = {0.254829592f, -0.284496736f, 1.421413741f, -1.453152027f, 1.061405429f};

#ifdef MEDFM_X86_KERNELS
__attribute__((target("avx512f"))) inline __m512 exp_neg16(__m512 x_in) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x_in, _mm512_set1_ps(kMinArg), _CMP_GE_OQ);  // below the range: 0
  const __m512 x = _mm512_max_ps(x_in, _mm512_set1_ps(kMinArg));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kC[6]);
  for (int i = 5; i >= 0; --i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC[i]));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
}

__attribute__((target("avx512f"))) bool softmax_row_avx512(float* x, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vm = ninf;
  __mmask16 nan = 0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    vm = _mm512_max_ps(vm, v);
  }
  if (j < n) {
    const __m512 v = _mm512_mask_loadu_ps(ninf, static_cast<__mmask16>((1u << (n - j)) - 1), x + j);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    vm = _mm512_max_ps(vm, v);
  }
  const float m = _mm512_reduce_max_ps(vm);
  if (nan || std::isinf(m)) return false;  // NaN or +-inf: the portable path, which keeps std::exp's answer
  const __m512 bm = _mm512_set1_ps(m);
  __m512 vs = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(x + j), bm));
    _mm512_storeu_ps(x + j, e);
    vs = _mm512_add_ps(vs, e);
  }
  if (j < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 e = exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), bm));
    _mm512_mask_storeu_ps(x + j, k, e);
    vs = _mm512_mask_add_ps(vs, k, vs, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), inv));
  if (j < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
    _mm512_mask_storeu_ps(x + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), inv));
  }
  return true;
}

// erf(v / sqrt 2), and in *e the Gaussian factor exp(-v^2 / 2) it computes on the way.
__attribute__((target("avx512f"))) inline __m512 erf16(__m512 v, __m512* e_out) {
  const __m512 u = _mm512_mul_ps(v, _mm512_set1_ps(kInvSqrt2));
  const __m512 a = _mm512_abs_ps(u);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(a, _mm512_set1_ps(kErfP), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(kErfA[4]);
  for (int i = 3; i >= 0; --i) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kErfA[i]));
  const __m512 e = exp_neg16(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
  *e_out = e;
  __m512 erf_abs = _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, _mm512_set1_ps(1.0f));
  // erf is odd: copy u's sign onto erf(|u|)
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32(static_cast<int32_t>(0x80000000u)));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
}

__attribute__((target("avx512f"))) inline __m512 gelu16(__m512 v) {
  __m512 e;
  const __m512 erf = erf16(v, &e);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// gelu'(v) = (1 + erf) / 2 + v e / sqrt(2 pi)
__attribute__((target("avx512f"))) inline __m512 gelu_grad16(__m512 v) {
  __m512 e;
  const __m512 erf = erf16(v, &e);
  const __m512 half = _mm512_set1_ps(0.5f);
  return _mm512_fmadd_ps(_mm512_mul_ps(v, e), _mm512_set1_ps(kInvSqrt2Pi), _mm512_fmadd_ps(half, erf, half));
}

__attribute__((target("avx512f"))) void gelu_train_row_avx512(float* pre, float* out, int64_t n, const float* bias) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_add_ps(_mm512_loadu_ps(pre + j), _mm512_loadu_ps(bias + j));
    _mm512_storeu_ps(pre + j, v);
    _mm512_storeu_ps(out + j, gelu16(v));
  }
  if (j < n) gelu_train_row_portable(pre + j, out + j, n - j, bias + j);
}

__attribute__((target("avx512f"))) void gelu_backward_row_avx512(const float* g, const float* pre, float* out, int64_t n,
                                                                 float* colsum) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(g + j), gelu_grad16(_mm512_loadu_ps(pre + j)));
    _mm512_storeu_ps(out + j, d);
    _mm512_storeu_ps(colsum + j, _mm512_add_ps(_mm512_loadu_ps(colsum + j), d));
  }
  if (j < n) gelu_backward_row_portable(g + j, pre + j, out + j, n - j, colsum + j);
}

__attribute__((target("avx512f"))) void bias_gelu_row_avx512(float* x, int64_t n, const float* bias) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    _mm512_storeu_ps(x + j, gelu16(_mm512_add_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(bias + j))));
  if (j < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
    _mm512_mask_storeu_ps(x + j, k, gelu16(_mm512_add_ps(_mm512_maskz_loadu_ps(k, x + j), _mm512_maskz_loadu_ps(k, bias + j))));
  }
}

__attribute__((target("avx2,fma"))) inline __m256 exp_neg8(__m256 x_in) {
  const __m256 keep = _mm256_cmp_ps(x_in, _mm256_set1_ps(kMinArg), _CMP_GE_OQ);  // below the range: 0
  const __m256 x = _mm256_max_ps(x_in, _mm256_set1_ps(kMinArg));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC[6]);
  for (int i = 5; i >= 0; --i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC[i]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(keep, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx2,fma"))) inline __m256 erf8(__m256 v, __m256* e_out) {  // as erf16
  const __m256 u = _mm256_mul_ps(v, _mm256_set1_ps(kInvSqrt2));
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_andnot_ps(sign_mask, u);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(a, _mm256_set1_ps(kErfP), _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(kErfA[4]);
  for (int i = 3; i >= 0; --i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfA[i]));
  const __m256 e = exp_neg8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), a));
  *e_out = e;
  const __m256 erf_abs = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(erf_abs, _mm256_and_ps(sign_mask, u));
}

__attribute__((target("avx2,fma"))) inline __m256 gelu8(__m256 v) {
  __m256 e;
  const __m256 erf = erf8(v, &e);
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

__attribute__((target("avx2,fma"))) inline __m256 gelu_grad8(__m256 v) {  // as gelu_grad16
  __m256 e;
  const __m256 erf = erf8(v, &e);
  const __m256 half = _mm256_set1_ps(0.5f);
  return _mm256_fmadd_ps(_mm256_mul_ps(v, e), _mm256_set1_ps(kInvSqrt2Pi), _mm256_fmadd_ps(half, erf, half));
}

__attribute__((target("avx2,fma"))) void gelu_train_row_avx2(float* pre, float* out, int64_t n, const float* bias) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_add_ps(_mm256_loadu_ps(pre + j), _mm256_loadu_ps(bias + j));
    _mm256_storeu_ps(pre + j, v);
    _mm256_storeu_ps(out + j, gelu8(v));
  }
  if (j < n) gelu_train_row_portable(pre + j, out + j, n - j, bias + j);
}

__attribute__((target("avx2,fma"))) void gelu_backward_row_avx2(const float* g, const float* pre, float* out, int64_t n,
                                                               float* colsum) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(g + j), gelu_grad8(_mm256_loadu_ps(pre + j)));
    _mm256_storeu_ps(out + j, d);
    _mm256_storeu_ps(colsum + j, _mm256_add_ps(_mm256_loadu_ps(colsum + j), d));
  }
  if (j < n) gelu_backward_row_portable(g + j, pre + j, out + j, n - j, colsum + j);
}

__attribute__((target("avx2,fma"))) void bias_gelu_row_avx2(float* x, int64_t n, const float* bias) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(x + j, gelu8(_mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(bias + j))));
  if (j < n) bias_gelu_row_portable(x + j, n - j, bias + j);
}

__attribute__((target("avx2,fma"))) float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) bool softmax_row_avx2(float* x, int64_t n) {
  __m256 vm = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int nan = 0;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    nan |= _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    vm = _mm256_max_ps(vm, v);
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float m = _mm_cvtss_f32(h);
  for (; j < n; ++j) {
    nan |= std::isnan(x[j]);
    m = std::max(m, x[j]);
  }
  if (nan || std::isinf(m)) return false;
  const __m256 bm = _mm256_set1_ps(m);
  __m256 vs = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp_neg8(_mm256_sub_ps(_mm256_loadu_ps(x + j), bm));
    _mm256_storeu_ps(x + j, e);
    vs = _mm256_add_ps(vs, e);
  }
  float s = hsum8(vs);
  for (; j < n; ++j) s += (x[j] = exp_neg_scalar(x[j] - m));
  const __m256 inv = _mm256_set1_ps(1.0f / s);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), inv));
  for (; j < n; ++j) x[j] *= 1.0f / s;
  return true;
}

// AdamW is bound by memory, so AVX2 serves the AVX-512 machines as well. Only m's update is an FMA
// (as adamw_portable's std::fma); the other products and sums round separately, so GCC must not
// contract them into FMAs here (fp-contract=off).
__attribute__((target("avx2,fma"), optimize("fp-contract=off"))) void adamw_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                                                const AdamwCoeffs& c) {
  const __m256 b1 = _mm256_set1_ps(c.beta1), ob1 = _mm256_set1_ps(c.one_minus_beta1), b2 = _mm256_set1_ps(c.beta2),
               ob2 = _mm256_set1_ps(c.one_minus_beta2), ss = _mm256_set1_ps(c.step_size),
               bc2 = _mm256_set1_ps(c.sqrt_bc2), eps = _mm256_set1_ps(c.eps), decay = _mm256_set1_ps(c.decay);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 gj = _mm256_loadu_ps(g + j);
    const __m256 mj = _mm256_fmadd_ps(gj, ob1, _mm256_mul_ps(_mm256_loadu_ps(m + j), b1));
    const __m256 vj = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + j), b2), _mm256_mul_ps(_mm256_mul_ps(ob2, gj), gj));
    _mm256_storeu_ps(m + j, mj);
    _mm256_storeu_ps(v + j, vj);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vj), bc2), eps);
    const __m256 pj = _mm256_mul_ps(_mm256_loadu_ps(p + j), decay);
    _mm256_storeu_ps(p + j, _mm256_sub_ps(pj, _mm256_mul_ps(ss, _mm256_div_ps(mj, denom))));
  }
  adamw_portable(p + j, g + j, m + j, v + j, n - j, c);
}

#endif

Isa detect() {
#ifdef MEDFM_X86_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kPortable;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

namespace {
void check_isa(Isa isa, const char* what) {
  if (static_cast<int>(isa) > static_cast<int>(best_isa()))
    throw std::invalid_argument(std::string(what) + ": this CPU cannot run the " + isa_name(isa) + " kernel");
}
}  // namespace

void softmax_rows_isa(Isa isa, float* x, int64_t rows, int64_t n, int64_t ld) {
  check_isa(isa, "softmax_rows");
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * ld;
    bool done = false;
#ifdef MEDFM_X86_KERNELS
    if (isa == Isa::kAvx512) done = softmax_row_avx512(row, n);
    else if (isa == Isa::kAvx2) done = softmax_row_avx2(row, n);
#endif
    if (!done) softmax_row_portable(row, n);
  }
}

void softmax_rows(float* x, int64_t rows, int64_t n, int64_t ld) { softmax_rows_isa(best_isa(), x, rows, n, ld); }

void bias_gelu_rows_isa(Isa isa, float* x, int64_t rows, int64_t n, const float* bias) {
  check_isa(isa, "bias_gelu_rows");
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * n;
#ifdef MEDFM_X86_KERNELS
    if (isa == Isa::kAvx512) {
      bias_gelu_row_avx512(row, n, bias);
      continue;
    }
    if (isa == Isa::kAvx2) {
      bias_gelu_row_avx2(row, n, bias);
      continue;
    }
#endif
    bias_gelu_row_portable(row, n, bias);
  }
}

void bias_gelu_rows(float* x, int64_t rows, int64_t n, const float* bias) {
  bias_gelu_rows_isa(best_isa(), x, rows, n, bias);
}

void bias_gelu_train_rows_isa(Isa isa, float* pre, float* out, int64_t rows, int64_t n, const float* bias) {
  check_isa(isa, "bias_gelu_train_rows");
  for (int64_t i = 0; i < rows; ++i) {
    float *p = pre + i * n, *o = out + i * n;
#ifdef MEDFM_X86_KERNELS
    if (isa == Isa::kAvx512) {
      gelu_train_row_avx512(p, o, n, bias);
      continue;
    }
    if (isa == Isa::kAvx2) {
      gelu_train_row_avx2(p, o, n, bias);
      continue;
    }
#endif
    gelu_train_row_portable(p, o, n, bias);
  }
}

void bias_gelu_train_rows(float* pre, float* out, int64_t rows, int64_t n, const float* bias) {
  bias_gelu_train_rows_isa(best_isa(), pre, out, rows, n, bias);
}

void gelu_backward_rows_isa(Isa isa, const float* grad, const float* pre, float* out, int64_t rows, int64_t n,
                            float* colsum) {
  check_isa(isa, "gelu_backward_rows");
  for (int64_t i = 0; i < rows; ++i) {
    const float *g = grad + i * n, *p = pre + i * n;
    float* o = out + i * n;
#ifdef MEDFM_X86_KERNELS
    if (isa == Isa::kAvx512) {
      gelu_backward_row_avx512(g, p, o, n, colsum);
      continue;
    }
    if (isa == Isa::kAvx2) {
      gelu_backward_row_avx2(g, p, o, n, colsum);
      continue;
    }
#endif
    gelu_backward_row_portable(g, p, o, n, colsum);
  }
}

void gelu_backward_rows(const float* grad, const float* pre, float* out, int64_t rows, int64_t n, float* colsum) {
  gelu_backward_rows_isa(best_isa(), grad, pre, out, rows, n, colsum);
}

void adamw_update_isa(Isa isa, float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoeffs& c) {
  check_isa(isa, "adamw_update");
#ifdef MEDFM_X86_KERNELS
  if (isa != Isa::kPortable) return adamw_avx2(p, g, m, v, n, c);
#endif
  adamw_portable(p, g, m, v, n, c);
}

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamwCoeffs& c) {
  adamw_update_isa(best_isa(), p, g, m, v, n, c);
}

}  // namespace medfm::models::kernels

// Stain tools for histology RGB tiles (float32 [3,H,W] in [0,1]):
//   rgb_to_hed / hed_to_rgb   colour deconvolution with Ruifrok & Johnston's H, E, DAB vectors,
//                             as skimage.color.rgb2hed / hed2rgb (0.19)
//   hed_jitter                HED augmentation (Tellez et al. 2018): each stain scaled by
//                             U(1-sigma, 1+sigma) and shifted by U(-bias, bias)
//   reinhard                  Reinhard et al. 2001: per-channel mean/std of CIELAB matched to a
//                             reference (skimage.color.rgb2lab semantics, D65)
//   macenko                   Macenko et al. 2009: stain vectors from the optical-density plane of
//                             the tissue pixels, concentrations rescaled to a reference. The plane's
//                             eigenvectors are signed to have a positive sum (optical densities are
//                             positive), which makes the result independent of the eigen solver.
// Each matches a Python reference in a golden test (scripts/golden/gen_stain_golden.py).
// Thread-compatible; hed_jitter draws from the generator given.
#pragma once
#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <array>

namespace medfm::data {

at::Tensor rgb_to_hed(const at::Tensor& rgb);  // [3,H,W] -> stains [3,H,W] (>= 0)
at::Tensor hed_to_rgb(const at::Tensor& hed);  // stains -> [3,H,W] in [0,1]
// stains * scale + shift per stain (H, E, DAB), back to RGB: the deterministic core of hed_jitter.
at::Tensor hed_adjust(const at::Tensor& rgb, const std::array<double, 3>& scale, const std::array<double, 3>& shift);
at::Tensor hed_jitter(const at::Tensor& rgb, double sigma, double bias, at::Generator gen);

at::Tensor rgb_to_lab(const at::Tensor& rgb);  // [3,H,W] in [0,1] -> L*a*b* (L 0..100)
at::Tensor lab_to_rgb(const at::Tensor& lab);

struct LabStats {
  std::array<double, 3> mean{}, std{};
};
LabStats lab_stats(const at::Tensor& rgb);   // of a reference image
at::Tensor reinhard(const at::Tensor& rgb, const LabStats& target);

struct MacenkoReference {
  // Stain matrix (columns H, E in optical density) and the 99th-percentile concentrations of the
  // reference; defaults are the values commonly used with Macenko's method for H&E.
  std::array<double, 6> stains{0.5626, 0.2159, 0.7201, 0.8012, 0.4062, 0.5581};  // row-major 3x2
  std::array<double, 2> max_conc{1.9705, 1.0308};
};
struct MacenkoOptions {
  double io = 240;      // transmitted light intensity
  double alpha = 1;     // percentile of the stain-vector angles
  double beta = 0.15;   // optical density below which a pixel is background
};
// The image's own stain matrix and concentration maxima (for a reference image).
MacenkoReference macenko_fit(const at::Tensor& rgb, const MacenkoOptions& opts = {});
at::Tensor macenko(const at::Tensor& rgb, const MacenkoReference& ref = {}, const MacenkoOptions& opts = {});

}  // namespace medfm::data

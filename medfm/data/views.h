// Augmented views for self-supervised pre-training, on float32 RGB [3,H,W] in [0,1].
//
// The deterministic operations equal torchvision 0.14's functional ones on tensors (golden test
// scripts/golden/gen_views_golden.py): resized_crop (antialiased; the result clamped to [0,1] as a
// PIL image is), adjust_brightness / contrast / saturation / hue, rgb_to_grayscale, gaussian_blur
// (reflect padding), solarize. make_views draws their parameters as DINO / DINOv2's
// DataAugmentationDINO does (RandomResizedCrop's 10 tries then a centre crop, ColorJitter in a
// random order), from an Rng keyed by (seed, epoch, index): a sample's views never depend on the
// thread that made them.
//
// Presets (view_preset): "natural" (DINOv2's), "pathology" (vertical flips and 90-degree
// rotations, HED stain jitter, mild colour jitter, no solarisation or grayscale), "radiology"
// (brightness / contrast only, which shift the intensity window; no hue, saturation or
// solarisation), "ophthalmology" (mild colour jitter, rotations, no solarisation). Thread-compatible.
#pragma once
#include <ATen/Tensor.h>

#include <array>
#include <string>
#include <vector>

#include "medfm/core/rng.h"

namespace medfm {
class Config;
}

namespace medfm::data {

// Crop rows [top, top+h) and columns [left, left+w), resize to size x size, clamp to [0,1].
at::Tensor resized_crop(const at::Tensor& img, int64_t top, int64_t left, int64_t h, int64_t w, int size,
                        const std::string& interpolation);
at::Tensor adjust_brightness(const at::Tensor& img, double factor);
at::Tensor adjust_contrast(const at::Tensor& img, double factor);
at::Tensor adjust_saturation(const at::Tensor& img, double factor);
at::Tensor adjust_hue(const at::Tensor& img, double shift);  // shift in [-0.5, 0.5]
at::Tensor rgb_to_grayscale(const at::Tensor& img);           // [3,H,W] -> [3,H,W] (replicated)
at::Tensor gaussian_blur(const at::Tensor& img, int kernel, double sigma);
at::Tensor solarize(const at::Tensor& img, double threshold);

// torchvision RandomResizedCrop.get_params: {top, left, h, w} of an image of height x width.
std::array<int64_t, 4> random_resized_crop_box(int64_t height, int64_t width, double scale_lo, double scale_hi,
                                               Rng& rng, double ratio_lo = 3.0 / 4.0, double ratio_hi = 4.0 / 3.0);

struct ViewSpec {
  std::string preset = "natural";
  int n_global = 2, global_size = 224;
  std::vector<double> global_scale{0.32, 1.0};
  int n_local = 8, local_size = 96;
  std::vector<double> local_scale{0.05, 0.32};
  std::string interpolation = "bicubic";
  double flip_h = 0.5, flip_v = 0.0;
  bool rot90 = false;
  double jitter_p = 0.8, brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
  double grayscale_p = 0.2;
  // Probabilities for [first global, other globals, locals], as DINO's.
  std::vector<double> blur_p{1.0, 0.1, 0.5};
  std::vector<double> solarize_p{0.0, 0.2, 0.0};
  std::vector<double> blur_sigma{0.1, 2.0};
  int blur_kernel = 9;
  double hed_p = 0.0, hed_sigma = 0.05, hed_bias = 0.01;

  void bind(Config& cfg);  // views.* keys
  void validate() const;   // ConfigError naming the key
};

// The preset's spec ("natural", "pathology", "radiology", "ophthalmology"); ConfigError otherwise.
ViewSpec view_preset(const std::string& name);

// n_global crops of global_size, then n_local of local_size, each normalised with mean / std:
// float32 [3,S,S]. img: [1 or 3, H, W] in [0,1].
std::vector<at::Tensor> make_views(const at::Tensor& img, const ViewSpec& spec, const std::array<double, 3>& mean,
                                   const std::array<double, 3>& std, Rng& rng);

}  // namespace medfm::data

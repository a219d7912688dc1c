// Geometry-aware preprocessing of volumes and 2D medical images. Every function returns a new
// Image whose geometry still maps each voxel to the same world position (property-tested).
//   Volumes: pixels [C, Z, Y, X]; index (i, j, k) = (x, y, z); geometry RAS+ mm (core/image.h).
// Throws ConfigError for bad arguments. Thread-compatible (no shared state).
#pragma once
#include <string>
#include <vector>

#include "medfm/core/image.h"

namespace medfm::data {

// Permutes and flips the voxel axes so that the orientation code becomes `code` (e.g. "RAS",
// "LPS"), as nibabel's as_closest_canonical does for "RAS". No interpolation; exact.
Image reorient(const Image& img, const std::string& code = "RAS");

// Resamples a volume to `spacing` (mm) on the same origin and direction; size along each axis is
// floor((n - 1) * old / new) + 1 so that no sample lies outside the input. "linear" for images
// (float32 result), "nearest" for label maps (keeps the type and the label set).
Image resample(const Image& img, const Vec3& spacing, const std::string& interpolation = "linear");

// CT windows (centre, width in HU). Presets: brain (40, 80), subdural (80, 200), stroke (40, 40),
// lung (-600, 1500), mediastinum (50, 350), soft_tissue (50, 400), abdomen (50, 400), liver (60, 160),
// bone (400, 1800).
struct Window {
  double center, width;
};
Window window_preset(const std::string& name);  // ConfigError names the known presets
// The window stored in the DICOM file (first WindowCenter / WindowWidth); ConfigError when absent.
Window file_window(const Image& img);
// (v - (c - w/2)) / w clamped to [0, 1], float32.
at::Tensor apply_window(const at::Tensor& hu, const Window& w);
// One output channel per window ([C=n, Z, Y, X] from a single-channel volume), geometry kept.
Image window_stack(const Image& ct, const std::vector<std::string>& presets);

// MR intensity normalisation, float32, per channel. z-score over voxels > 0 when nonzero_only.
Image zscore(const Image& mr, bool nonzero_only = true);
// Maps the [lo, hi] percentiles (over voxels > 0 when nonzero_only) to [0, 1], clamped.
Image percentile_normalize(const Image& mr, double lo = 1.0, double hi = 99.0, bool nonzero_only = true);

// Crops a volume or 2D image to the bounding box of voxels > threshold (any channel), plus
// `margin` voxels each side (clamped); the origin moves so world positions are unchanged.
Image foreground_crop(const Image& img, double threshold, int64_t margin = 0);

// Fundus photographs: finds the circular field of view (pixels brighter than `threshold` times
// the image maximum in the red channel), crops a square centred on it and pads with black so the
// disc is centred. pixels [3, H, W] (uint8 or float). Reports the disc in input pixels.
struct FundusFov {
  double cx = 0, cy = 0, radius = 0;
};
Image fundus_fov_crop(const Image& rgb, double threshold = 0.1, FundusFov* fov = nullptr);

}  // namespace medfm::data

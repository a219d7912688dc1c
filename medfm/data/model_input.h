// Medical pixels -> a model's [0,1] RGB input: intensity windows for DICOM/NIfTI values, 2D slices
// of volumes along an anatomical plane, square pixels. What `medfm embed` feeds a backbone before
// the model's own resize / crop / normalisation (transforms.h).
//
// Slices are cut from a volume reoriented to RAS (reorient.h) and shown as radiologists look at
// them: axial rows anterior -> posterior, columns patient right -> left; coronal rows superior ->
// inferior, columns right -> left; sagittal rows superior -> inferior, columns anterior ->
// posterior. Slice index k counts along the plane's normal from the RAS origin side (axial 0 is
// the most inferior slice). Thread-compatible.
#pragma once
#include <ATen/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "medfm/core/image.h"

namespace medfm::data {

// How stored intensities map to [0,1]:
//   "auto"          the file's own window (DICOM WindowCenter/Width) when stored (not for
//                   MONOCHROME1, whose window is in the inverted units), else "minmax"
//   "minmax"        [min, max] of the image or volume
//   "percentile"    [p_lo, p_hi] percentiles of the image or volume (percentile_lo/hi)
//   a CT preset     brain, subdural, stroke, lung, mediastinum, soft_tissue, liver, bone
//   "W/L"           width / level in stored units, e.g. "400/40"
//   "zscore"        (v - mean) / std over voxels > 0: the result is the model's input as is (the
//                   model's mean/std normalisation is not applied on top)
struct IntensitySpec {
  std::string window = "auto";  // (empty in SampleOptions: the model's PreprocessSpec::intensity)
  double percentile_lo = 0.5, percentile_hi = 99.5;
};

struct IntensityMap {
  bool zscore = false;
  double lo = 0, hi = 1;       // linear: (v - lo) / (hi - lo), clamped to [0, 1]
  double mean = 0, std = 1;    // zscore
  std::string describe() const;  // "window [lo, hi] (source)" or "zscore mean m std s"
  std::string source;            // "file", "minmax", "percentile", "preset:<name>", "W/L"
};

// Computes the map over all of img's values (float volumes: non-finite values are ignored).
// Throws ConfigError for an unknown window, Error for an image without any finite value.
IntensityMap intensity_map(const Image& img, const IntensitySpec& spec);
// Applies the map: float32, same shape.
at::Tensor apply_intensity(const at::Tensor& values, const IntensityMap& map);

// A 2D image whose values are display values (PNG/JPEG/TIFF/BMP, RGB DICOM): float32 [3,H,W] in
// [0,1], divided by the stored type's maximum (255, 65535); gray replicated, alpha dropped.
at::Tensor display_to_rgb01(const at::Tensor& chw, const std::string& stored_dtype);

enum class Plane { kAxial, kCoronal, kSagittal };
Plane parse_plane(const std::string& s);  // "axial" | "coronal" | "sagittal"; ConfigError otherwise
std::string plane_name(Plane p);
int64_t n_slices(const Image& ras, Plane p);

// Python-style slice "a:b:step" over slice indices (each part optional; a and b may be negative;
// step > 0). Empty string: every slice.
struct SliceRange {
  std::optional<int64_t> start, stop;
  int64_t step = 1;
};
SliceRange parse_slice_range(const std::string& s);  // ConfigError on bad syntax
std::vector<int64_t> slice_indices(int64_t n, const SliceRange& r);

struct Slice {
  at::Tensor pixels;  // [C, rows, cols], the volume's dtype
  int64_t index = 0;
  Vec3 center_ras{};  // world position (RAS mm) of the slice's centre
  double row_mm = 1, col_mm = 1;  // pixel spacing along rows (vertical) and columns (horizontal)
};
// Slice `index` of a RAS-oriented volume (reorient(img, "RAS")); throws ConfigError out of range.
Slice extract_slice(const Image& ras, Plane plane, int64_t index);

// Resamples [C,H,W] (float) so pixels are square at the finer of the two spacings (bilinear,
// antialiased when shrinking); unchanged when they already are (within 0.1%).
at::Tensor square_pixels(const at::Tensor& chw, double row_mm, double col_mm);

}  // namespace medfm::data

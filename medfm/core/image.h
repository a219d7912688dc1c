// The one image model: pixels plus the geometry and metadata that travel with them.
//   Volume (NIfTI, DICOM file or series; is_volume): pixels [L, Z, Y, X]; index (i, j, k) = (x, y, z);
//     `geometry` maps (i, j, k) to RAS+ mm.
//   2D image (PNG, JPEG, TIFF, BMP; !is_volume): pixels [L, Y, X], geometry default (1 mm, identity).
//   The leading axis L holds n_timepoints x channels(): colour channels (1 gray, 3 RGB, 4 RGBA) of
//   one time point, or, for a 4D NIfTI, its time points (n_timepoints = L, one channel each).
// Pixel values are the stored values after the modality rescale (NIfTI scl_slope/inter, DICOM
// RescaleSlope/Intercept): float32 when a rescale applies, otherwise the stored integer type
// (uint16 / uint32 widen to int32 / int64 because LibTorch 1.13 has no unsigned 16/32-bit type).
// Metadata never holds patient-identifying DICOM attributes unless a reader was asked for them.
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <string>

#include "medfm/core/geometry.h"

namespace medfm {

struct Image {
  at::Tensor pixels;
  Geometry geometry;
  bool is_volume = false;          // [C,Z,Y,X] when true, [C,Y,X] otherwise
  std::string format;              // "nifti1", "dicom", "dicom-series", "png" ...
  std::string stored_dtype;        // type in the file: "uint8", "int16", "uint16", "float32" ...
  std::string modality;            // DICOM Modality ("CT", "MR" ...), empty when unknown
  int64_t n_timepoints = 1;        // time points along the leading axis (4D NIfTI), else 1
  std::map<std::string, std::string> meta;  // format-specific, non-identifying ("transfer_syntax" ...)
  std::map<std::string, std::string> phi;   // identifying attributes, filled only on request

  // Spatial size (nx, ny, nz); nz == 1 for 2D images.
  std::array<int64_t, 3> size() const;
  int64_t leading() const;          // pixels.size(0): n_timepoints * channels()
  int64_t channels() const;         // colour channels of one time point
  bool is_time_series() const { return n_timepoints > 1; }
  // Asserts the layout above (dims, leading axis divisible by n_timepoints).
  void check_layout() const;
};

// Samples read as the signed type of the same width (uint16 in a kShort tensor, uint32 in kInt)
// widened to their values: uint16 -> int32, uint32 -> int64 (LibTorch 1.13 has no unsigned
// 16/32-bit types). Other stored types are returned unchanged. stored_dtype: "uint16", "uint32" ...
at::Tensor widen_unsigned(const at::Tensor& raw, const std::string& stored_dtype);

}  // namespace medfm

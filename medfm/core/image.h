// The one image model: pixels plus the geometry and metadata that travel with them.
//   Volume (NIfTI, DICOM file or series): pixels [C, Z, Y, X]; index (i, j, k) = (x, y, z);
//     C is 1, 3 (RGB) or the time points of a 4D NIfTI. `geometry` maps (i, j, k) to RAS+ mm.
//   2D image (PNG, JPEG, TIFF): pixels [C, Y, X], `geometry` default (1 mm, identity) unless known.
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
  int64_t n_timepoints = 1;        // 4D NIfTI: time points (== C)
  std::map<std::string, std::string> meta;  // format-specific, non-identifying ("transfer_syntax" ...)
  std::map<std::string, std::string> phi;   // identifying attributes, filled only on request

  // Spatial size (nx, ny, nz); nz == 1 for 2D images.
  std::array<int64_t, 3> size() const;
  int64_t channels() const;
};

}  // namespace medfm

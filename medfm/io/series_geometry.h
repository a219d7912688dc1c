// DICOM series -> volume geometry, independent of any DICOM library (unit-tested and fuzzed on
// its own): sorts slices along the normal of ImageOrientationPatient by ImagePositionPatient,
// checks consistency and builds the affine. Throws FormatError naming the problem and the files.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "medfm/core/geometry.h"
#include "medfm/io/formats.h"

namespace medfm::io {

struct SliceHeader {
  std::string file;
  bool has_position = false, has_orientation = false, has_spacing = false;
  Vec3 position{};                        // ImagePositionPatient, LPS mm
  std::array<double, 6> orientation{};    // ImageOrientationPatient: row direction, column direction
  std::array<double, 2> pixel_spacing{};  // PixelSpacing: between rows (y), between columns (x)
  int64_t rows = 0, cols = 0, frames = 1;
  double slice_thickness = 0;             // 0 when absent
};

// Output slice k is source slice `a` blended with `b`: (1 - w) * a + w * b (w == 0: a copy).
struct PlannedSlice {
  size_t a = 0, b = 0;
  double w = 0;
};

struct SeriesPlan {
  std::vector<PlannedSlice> slices;  // in output order (k increases along the normal)
  Mat4 affine{};                     // RAS+, voxel (i=column, j=row, k) -> mm
  double slice_step = 0;             // mm between output slices along the normal
  std::vector<std::string> repairs;  // what was repaired, for logs and metadata
};

// `where` names the series in messages (e.g. the directory).
// Slice steps within 5% of the median are uniform (positions are often rounded); a step that is
// a whole multiple of the median is a gap. Repairing gaps interpolates at most as many slices as
// the series has.
SeriesPlan plan_series(const std::vector<SliceHeader>& slices, const SeriesRepair& repair, const std::string& where,
                       SliceSpacing spacing = SliceSpacing::Mean);

}  // namespace medfm::io

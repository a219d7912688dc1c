// Physical geometry of a volume: voxel index (i, j, k) -> world millimetres in RAS+ (the NIfTI /
// nibabel convention; DICOM's LPS is converted by negating x and y at the reader).
//   world = origin + direction * diag(spacing) * (i, j, k)
// `direction` columns are unit vectors (row-major 3x3 storage); a sheared affine (gantry tilt
// kept on request) is stored as a general `affine` whose columns need not be orthogonal.
// Value type; no allocation; thread-compatible.
#pragma once
#include <array>
#include <string>

namespace medfm {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<double, 9>;   // row-major
using Mat4 = std::array<double, 16>;  // row-major; last row 0 0 0 1

struct Geometry {
  Vec3 spacing{1, 1, 1};              // mm per voxel along i, j, k (column norms of the affine)
  Vec3 origin{0, 0, 0};               // world position of voxel (0, 0, 0), mm, RAS+
  Mat3 direction{1, 0, 0, 0, 1, 0, 0, 0, 1};  // columns: unit world direction of i, j, k

  Mat4 affine() const;
  // Decomposes any affine with non-zero column norms (columns need not be orthogonal).
  static Geometry from_affine(const Mat4& a);

  // Axis codes of the i, j, k axes, like nibabel's aff2axcodes: "RAS", "LPS", "LIP" ...
  std::string orientation_code() const;
  Vec3 voxel_to_world(const Vec3& ijk) const;
};

Mat4 mat4_mul(const Mat4& a, const Mat4& b);
Mat4 mat4_identity();
// Axis codes of an affine (each voxel axis gets the world axis it is closest to, one per world axis).
std::string axcodes(const Mat4& a);

}  // namespace medfm

#include "medfm/core/geometry.h"

#include <algorithm>
#include <cmath>

#include "medfm/core/error.h"

namespace medfm {

Mat4 mat4_identity() { return {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}; }

Mat4 mat4_mul(const Mat4& a, const Mat4& b) {
  Mat4 c{};
  for (int r = 0; r < 4; ++r)
    for (int col = 0; col < 4; ++col) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += a[r * 4 + k] * b[k * 4 + col];
      c[r * 4 + col] = s;
    }
  return c;
}

Mat4 Geometry::affine() const {
  Mat4 a = mat4_identity();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) a[r * 4 + c] = direction[r * 3 + c] * spacing[c];
    a[r * 4 + 3] = origin[r];
  }
  return a;
}

Geometry Geometry::from_affine(const Mat4& a) {
  Geometry g;
  for (int c = 0; c < 3; ++c) {
    double n = std::sqrt(a[c] * a[c] + a[4 + c] * a[4 + c] + a[8 + c] * a[8 + c]);
    MEDFM_CHECK_T(FormatError, n > 0 && std::isfinite(n), "geometry: affine column ", c, " has zero or non-finite length");
    g.spacing[c] = n;
    for (int r = 0; r < 3; ++r) g.direction[r * 3 + c] = a[r * 4 + c] / n;
  }
  for (int r = 0; r < 3; ++r) g.origin[r] = a[r * 4 + 3];
  return g;
}

Vec3 Geometry::voxel_to_world(const Vec3& ijk) const {
  auto a = affine();
  Vec3 w{};
  for (int r = 0; r < 3; ++r) w[r] = a[r * 4] * ijk[0] + a[r * 4 + 1] * ijk[1] + a[r * 4 + 2] * ijk[2] + a[r * 4 + 3];
  return w;
}

std::string axcodes(const Mat4& a) {
  // As nibabel's io_orientation: for each voxel axis in order of decreasing dominance, take the
  // world axis with the largest absolute component not yet used.
  static const char pos[3] = {'R', 'A', 'S'}, neg[3] = {'L', 'P', 'I'};
  double m[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r][c] = a[r * 4 + c];
  std::string code(3, '?');
  bool used_world[3] = {false, false, false}, used_vox[3] = {false, false, false};
  for (int step = 0; step < 3; ++step) {
    int br = -1, bc = -1;
    double best = -1;
    for (int r = 0; r < 3; ++r) {
      if (used_world[r]) continue;
      for (int c = 0; c < 3; ++c) {
        if (used_vox[c]) continue;
        if (std::abs(m[r][c]) > best) best = std::abs(m[r][c]), br = r, bc = c;
      }
    }
    used_world[br] = used_vox[bc] = true;
    code[bc] = m[br][bc] >= 0 ? pos[br] : neg[br];
  }
  return code;
}

std::string Geometry::orientation_code() const { return axcodes(affine()); }

}  // namespace medfm

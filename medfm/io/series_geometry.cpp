#include "medfm/io/series_geometry.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::io {
namespace {

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }

std::string base(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Scanner coordinates lie within metres of the isocentre; anything beyond 1000 km is corrupt, and
// the bound keeps every distance below (and its square within double range).
constexpr double kMaxPositionMm = 1e9;

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

}  // namespace

SeriesPlan plan_series(const std::vector<SliceHeader>& in, const SeriesRepair& repair, const std::string& where,
                       SliceSpacing spacing) {
  MEDFM_CHECK_T(FormatError, !in.empty(), "dicom: no slices in series (", where, ")");
  const SliceHeader& s0 = in.front();
  for (const auto& s : in) {
    MEDFM_CHECK_T(FormatError, s.has_orientation, "dicom: missing ImageOrientationPatient (", s.file, ")");
    MEDFM_CHECK_T(FormatError, s.has_position, "dicom: missing ImagePositionPatient (", s.file, ")");
    MEDFM_CHECK_T(FormatError, s.frames == 1, "dicom: multi-frame file inside a series is not supported (", s.file, ")");
    MEDFM_CHECK_T(FormatError, s.rows == s0.rows && s.cols == s0.cols, "dicom: mixed image sizes in series (", s0.cols,
                  "x", s0.rows, " in ", base(s0.file), ", ", s.cols, "x", s.rows, " in ", base(s.file), ") in ", where);
    for (int i = 0; i < 6; ++i)
      MEDFM_CHECK_T(FormatError, std::abs(s.orientation[i] - s0.orientation[i]) < 1e-4,
                    "dicom: mixed orientations in series (", base(s0.file), " vs ", base(s.file), ") in ", where);
    for (int i = 0; i < 2; ++i)
      MEDFM_CHECK_T(FormatError, std::abs(s.pixel_spacing[i] - s0.pixel_spacing[i]) < 1e-4,
                    "dicom: mixed pixel spacing in series (", base(s0.file), " vs ", base(s.file), ") in ", where);
    for (double v : s.position)
      MEDFM_CHECK_T(FormatError, std::isfinite(v) && std::abs(v) <= kMaxPositionMm, "dicom: ImagePositionPatient ",
                    fmt(v), " mm is not finite or beyond ", fmt(kMaxPositionMm), " mm (", s.file, ")");
  }
  Vec3 row{s0.orientation[0], s0.orientation[1], s0.orientation[2]};
  Vec3 col{s0.orientation[3], s0.orientation[4], s0.orientation[5]};
  double nr = norm(row), nc = norm(col);
  MEDFM_CHECK_T(FormatError, std::isfinite(nr) && std::isfinite(nc) && nr > 0.5 && nc > 0.5 && std::abs(dot(row, col)) < 1e-3 * nr * nc,
                "dicom: ImageOrientationPatient is not two orthogonal unit vectors (", s0.file, ")");
  for (auto& v : row) v /= nr;
  for (auto& v : col) v /= nc;
  Vec3 normal = cross(row, col);
  double sx = s0.has_spacing ? s0.pixel_spacing[1] : 1.0, sy = s0.has_spacing ? s0.pixel_spacing[0] : 1.0;
  MEDFM_CHECK_T(FormatError, sx > 0 && sy > 0 && std::isfinite(sx) && std::isfinite(sy), "dicom: PixelSpacing must be positive (", s0.file, ")");

  const size_t n = in.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = dot(in[i].position, normal);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (d[a] != d[b]) return d[a] < d[b];
    return in[a].file < in[b].file;
  });

  SeriesPlan plan;
  const double dup_tol = 1e-3 * std::min(sx, sy) + 1e-4;
  std::vector<size_t> kept;
  for (size_t idx : order) {
    if (!kept.empty() && std::abs(d[idx] - d[kept.back()]) < dup_tol) {
      MEDFM_CHECK_T(FormatError, repair.drop_duplicates, "dicom: duplicate slice position ", fmt(d[idx]), " mm in ",
                    base(in[kept.back()].file), " and ", base(in[idx].file), " (", where,
                    "; repair 'duplicates' (read.repair) keeps the first)");
      plan.repairs.push_back("dropped duplicate " + base(in[idx].file));
      continue;
    }
    kept.push_back(idx);
  }
  const size_t m = kept.size();
  if (m == 1) {
    double t = s0.slice_thickness > 0 && std::isfinite(s0.slice_thickness) ? s0.slice_thickness : 1.0;
    plan.slices.push_back({kept[0], kept[0], 0});
    plan.slice_step = t;
    Vec3 c2 = normal;
    for (auto& v : c2) v *= t;
    Mat4 a = mat4_identity();
    for (int r = 0; r < 3; ++r) {
      a[r * 4 + 0] = row[r] * sx, a[r * 4 + 1] = col[r] * sy, a[r * 4 + 2] = c2[r], a[r * 4 + 3] = in[kept[0]].position[r];
    }
    for (int c = 0; c < 4; ++c) a[c] = -a[c], a[4 + c] = -a[4 + c];  // LPS -> RAS
    plan.affine = a;
    return plan;
  }

  // Spacing: steps near the median are uniform; larger ones must be whole multiples (gaps).
  std::vector<double> steps(m - 1);
  for (size_t i = 0; i + 1 < m; ++i) steps[i] = d[kept[i + 1]] - d[kept[i]];
  std::vector<double> sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  double step = sorted[sorted.size() / 2];
  const double tol = std::max(0.05 * step, 1e-3);
  std::vector<size_t> mult(m - 1, 1);
  size_t missing = 0;  // slices interpolated so far; never more than the real ones
  for (size_t i = 0; i + 1 < m; ++i) {
    if (std::abs(steps[i] - step) <= tol) continue;
    double q = steps[i] / step;
    size_t k = static_cast<size_t>(std::llround(q));
    bool whole = k >= 2 && std::abs(q - static_cast<double>(k)) * step <= tol * static_cast<double>(k);
    MEDFM_CHECK_T(FormatError, whole, "dicom: non-uniform slice spacing (", fmt(step), " mm, but ", fmt(steps[i]),
                  " mm between ", base(in[kept[i]].file), " and ", base(in[kept[i + 1]].file), ") in ", where);
    MEDFM_CHECK_T(FormatError, repair.allow_gaps, "dicom: gap in series: ", k - 1, " missing slice(s) between ",
                  base(in[kept[i]].file), " and ", base(in[kept[i + 1]].file), " (", fmt(steps[i]), " mm, step ",
                  fmt(step), " mm) in ", where, "; repair 'gaps' (read.repair) interpolates them");
    MEDFM_CHECK_T(FormatError, k - 1 <= m - missing, "dicom: gap too large to interpolate: ", k - 1,
                  " missing slice(s) between ", base(in[kept[i]].file), " and ", base(in[kept[i + 1]].file), " (",
                  fmt(steps[i]), " mm, step ", fmt(step), " mm) in ", where, "; a repaired series may have at most as many",
                  " interpolated slices as real ones (", m, ")");
    missing += k - 1;
    mult[i] = k;
    plan.repairs.push_back("interpolated " + std::to_string(k - 1) + " slice(s) after " + base(in[kept[i]].file));
  }
  // Uniform step after repairs: total extent over the number of output steps.
  size_t n_out_steps = std::accumulate(mult.begin(), mult.end(), size_t{0});
  step = (d[kept.back()] - d[kept.front()]) / static_cast<double>(n_out_steps);

  // Gantry tilt: positions move off the normal.
  Vec3 v{};
  for (int r = 0; r < 3; ++r) v[r] = (in[kept.back()].position[r] - in[kept.front()].position[r]) / static_cast<double>(n_out_steps);
  double cosang = std::min(1.0, std::abs(dot(v, normal)) / norm(v));
  double tilt_deg = std::acos(cosang) * 180.0 / M_PI;
  if (spacing == SliceSpacing::FirstPair) {
    Vec3 p01{};
    for (int r = 0; r < 3; ++r) p01[r] = in[kept[1]].position[r] - in[kept[0]].position[r];
    step = norm(p01) / static_cast<double>(mult[0]);
  }
  Vec3 c2 = normal;
  for (auto& x : c2) x *= step;
  // Positions are rounded (often to 0.1 mm): over a short span that alone tilts the end-to-end
  // direction by degrees. A tilt counts only when the last slice also lies off the normal by more
  // than a quarter of a pixel (what ignoring it would misplace).
  Vec3 span{};
  for (int r = 0; r < 3; ++r) span[r] = in[kept.back()].position[r] - in[kept.front()].position[r];
  const double along = dot(span, normal);
  Vec3 off{};
  for (int r = 0; r < 3; ++r) off[r] = span[r] - along * normal[r];
  const bool off_normal = norm(off) > 0.25 * std::min(sx, sy);
  if (tilt_deg > 0.05 && off_normal) {
    MEDFM_CHECK_T(FormatError, repair.allow_tilt, "dicom: gantry tilt of ", fmt(tilt_deg),
                  " degrees (slice positions are not along the slice normal) in ", where,
                  "; repair 'tilt' (read.repair) keeps a sheared affine");
    c2 = v;
    plan.repairs.push_back("kept gantry tilt of " + fmt(tilt_deg) + " degrees as a sheared affine");
  }
  for (size_t i = 0; i + 1 < m; ++i) {
    plan.slices.push_back({kept[i], kept[i], 0});
    for (size_t j = 1; j < mult[i]; ++j)
      plan.slices.push_back({kept[i], kept[i + 1], static_cast<double>(j) / static_cast<double>(mult[i])});
  }
  plan.slices.push_back({kept.back(), kept.back(), 0});
  plan.slice_step = step;
  Mat4 a = mat4_identity();
  const Vec3& o = in[kept.front()].position;
  for (int r = 0; r < 3; ++r) a[r * 4 + 0] = row[r] * sx, a[r * 4 + 1] = col[r] * sy, a[r * 4 + 2] = c2[r], a[r * 4 + 3] = o[r];
  for (int c = 0; c < 4; ++c) a[c] = -a[c], a[4 + c] = -a[4 + c];  // LPS -> RAS
  plan.affine = a;
  return plan;
}

}  // namespace medfm::io

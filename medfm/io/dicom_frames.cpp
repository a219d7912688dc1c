// Where the frames of one multi-frame DICOM file go: planes of a volume (enhanced objects placed by
// their per-frame functional groups, RT dose by GridFrameOffsetVector, legacy NM tomography along
// the normal), time points (cine), or frames of a kind medfm does not place (stacked as time
// points, and `frame_axis` says so rather than inventing a slice spacing).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/io/dicom_internal.h"

namespace medfm::io::detail {
namespace {

constexpr uint32_t kFrameTime = 0x00181063, kFrameTimeVector = 0x00181065, kTimeSlotVector = 0x00540070,
                   kSliceVector = 0x00540080, kGridFrameOffsetVector = 0x3004000C;

std::string tag_text(uint32_t t) {
  char b[16];
  std::snprintf(b, sizeof b, "(%04X,%04X)", t >> 16, t & 0xFFFF);
  return b;
}

Vec3 normal_of(const std::array<double, 6>& o) {
  return {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
}

FramePlacement single(const Header& h, size_t frames, std::string axis) {
  FramePlacement fp;
  fp.axis = std::move(axis);
  fp.plan.affine = single_file_affine(h);
  fp.plan.slices.push_back({0, 0, 0});
  fp.groups.emplace_back();
  for (size_t f = 0; f < frames; ++f) fp.groups[0].push_back(f);
  return fp;
}

// Enhanced objects: frames grouped by position (the same position within 1e-3 mm); every group
// must hold the same number of frames (time points, echoes, segments ... of one volume).
FramePlacement place_enhanced(const Header& h, const SeriesRepair& repair, SliceSpacing spacing, const std::string& path) {
  const auto& pl = h.frame_planes;
  FramePlacement fp;
  std::vector<SliceHeader> reps;
  for (size_t f = 0; f < pl.size(); ++f) {
    size_t g = 0;
    for (; g < reps.size(); ++g) {
      double d2 = 0;
      for (int r = 0; r < 3; ++r) d2 += (pl[f].position[r] - reps[g].position[r]) * (pl[f].position[r] - reps[g].position[r]);
      if (d2 < 1e-6) break;
    }
    if (g == reps.size()) reps.push_back(pl[f]), fp.groups.emplace_back();
    fp.groups[g].push_back(f);
  }
  const size_t t = fp.groups[0].size();
  for (size_t g = 0; g < fp.groups.size(); ++g)
    MEDFM_CHECK_T(FormatError, fp.groups[g].size() == t, "dicom: ", pl.size(), " frames at ", reps.size(),
                  " positions, ", t, " at frame ", fp.groups[0][0] + 1, "'s but ", fp.groups[g].size(), " at frame ",
                  fp.groups[g][0] + 1, "'s: not one volume in '", path, "'");
  fp.plan = plan_series(reps, repair, path, spacing);
  fp.axis = t > 1 ? "space+time" : "space";
  return fp;
}

// RT dose (PS3.3 C.8.8.3.2): frame k lies GridFrameOffsetVector[k] along the normal. The vector is
// relative to ImagePositionPatient when its first value is 0, else absolute (the first value is
// the first plane's coordinate): either way frame k sits (o[k] - o[0]) from the first plane.
FramePlacement place_grid(const Header& h, const SeriesRepair& repair, SliceSpacing spacing, const std::string& path) {
  const auto& o = h.grid_frame_offsets;
  const auto& s0 = h.slice;
  MEDFM_CHECK_T(FormatError, s0.has_position && s0.has_orientation, "dicom: RT dose without ImagePositionPatient or ",
                "ImageOrientationPatient cannot place its frames (", path, ")");
  const Vec3 n = normal_of(s0.orientation);
  std::vector<SliceHeader> planes(o.size(), s0);
  FramePlacement fp;
  for (size_t k = 0; k < o.size(); ++k) {
    planes[k].frames = 1;
    planes[k].file = path + " frame " + std::to_string(k + 1);
    for (int r = 0; r < 3; ++r) planes[k].position[r] = s0.position[r] + (o[k] - o[0]) * n[r];
    fp.groups.push_back({k});
  }
  fp.plan = plan_series(planes, repair, path, spacing);
  fp.axis = "space";
  return fp;
}

}  // namespace

Mat4 single_file_affine(const Header& h) {
  const SliceHeader& s = h.slice;
  double sx = s.has_spacing ? s.pixel_spacing[1] : 1.0, sy = s.has_spacing ? s.pixel_spacing[0] : 1.0;
  double sz = s.slice_thickness > 0 ? s.slice_thickness : (h.spacing_between_slices > 0 ? h.spacing_between_slices : 1.0);
  Vec3 row{1, 0, 0}, col{0, 1, 0};
  if (s.has_orientation) {
    row = {s.orientation[0], s.orientation[1], s.orientation[2]};
    col = {s.orientation[3], s.orientation[4], s.orientation[5]};
  }
  Vec3 nrm{row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2], row[0] * col[1] - row[1] * col[0]};
  Mat4 a = mat4_identity();
  for (int r = 0; r < 3; ++r) {
    a[r * 4 + 0] = row[r] * sx, a[r * 4 + 1] = col[r] * sy, a[r * 4 + 2] = nrm[r] * sz;
    a[r * 4 + 3] = s.has_position ? s.position[r] : 0.0;
  }
  for (int c = 0; c < 4; ++c) a[c] = -a[c], a[4 + c] = -a[4 + c];  // LPS -> RAS
  return a;
}

FramePlacement place_frames(const Header& h, const SeriesRepair& repair, SliceSpacing spacing, const std::string& path) {
  const size_t frames = static_cast<size_t>(std::max<int64_t>(h.slice.frames, 1));
  if (frames == 1) return single(h, 1, "space");
  const bool planes = !h.frame_planes.empty() && std::all_of(h.frame_planes.begin(), h.frame_planes.end(), [](const SliceHeader& s) {
    return s.has_position && s.has_orientation;
  });
  if (planes) return place_enhanced(h, repair, spacing, path);
  const uint32_t fip = h.frame_increment_pointer;
  if (!h.grid_frame_offsets.empty() && (fip == 0 || fip == kGridFrameOffsetVector)) {
    MEDFM_CHECK_T(FormatError, h.grid_frame_offsets.size() == frames, "dicom: GridFrameOffsetVector has ",
                  h.grid_frame_offsets.size(), " values for ", frames, " frames in '", path, "'");
    return place_grid(h, repair, spacing, path);
  }
  if (fip == kSliceVector) {  // NM tomography: frames are slices along the normal, SpacingBetweenSlices apart
    Header stack = h;
    if (h.spacing_between_slices > 0) stack.slice.slice_thickness = h.spacing_between_slices;
    FramePlacement fp;
    fp.axis = "space";
    fp.plan.affine = single_file_affine(stack);
    for (size_t f = 0; f < frames; ++f) fp.groups.push_back({f}), fp.plan.slices.push_back({f, f, 0});
    return fp;
  }
  std::string axis = (fip == kFrameTime || fip == kFrameTimeVector || fip == kTimeSlotVector) ? "time"
                     : fip ? "frames by " + tag_text(fip) + ", not spatial"
                           : "frames without a FrameIncrementPointer or positions, not spatial";
  FramePlacement fp = single(h, frames, axis);
  fp.spatial = false;
  return fp;
}

void place_pixels(Image& img, const Decoded& d, const FramePlacement& fp) {
  const Header& h = d.header;
  at::Tensor px = d.pixels;  // [C, F, Y, X] stored values
  const int64_t c = px.size(0), y = px.size(2), x = px.size(3);
  if (!h.frame_slope.empty()) {
    auto s = torch::tensor(h.frame_slope, at::kDouble).view({1, -1, 1, 1});
    auto i = torch::tensor(h.frame_intercept, at::kDouble).view({1, -1, 1, 1});
    px = (px.to(at::kDouble) * s + i).to(at::kFloat);
    img.meta["rescale"] = "per frame";
  } else {
    px = rescaled(px, d.slope, d.intercept);
  }
  img.meta["frame_axis"] = fp.axis;
  if (!fp.spatial) {
    const int64_t f = px.size(1);
    img.pixels = px.permute({1, 0, 2, 3}).reshape({f * c, 1, y, x}).contiguous();
    img.n_timepoints = f;
    img.geometry = Geometry::from_affine(fp.plan.affine);
    return;
  }
  const int64_t t = static_cast<int64_t>(fp.groups[0].size()), z = static_cast<int64_t>(fp.plan.slices.size());
  const bool blend = std::any_of(fp.plan.slices.begin(), fp.plan.slices.end(), [](const PlannedSlice& p) { return p.w != 0; });
  const bool identity = t == 1 && !blend && z == px.size(1) && [&] {
    for (int64_t k = 0; k < z; ++k)
      if (fp.groups[fp.plan.slices[k].a][0] != static_cast<size_t>(k)) return false;
    return true;
  }();
  if (identity) {
    img.pixels = px;
  } else {
    at::Tensor out = torch::empty({t * c, z, y, x}, blend ? at::kFloat : px.scalar_type());
    for (int64_t ti = 0; ti < t; ++ti)
      for (int64_t k = 0; k < z; ++k) {
        const PlannedSlice& p = fp.plan.slices[k];
        auto dst = out.slice(0, ti * c, (ti + 1) * c).select(1, k);
        auto a = px.select(1, static_cast<int64_t>(fp.groups[p.a][ti]));
        if (p.w == 0) {
          dst.copy_(a);
        } else {
          auto b = px.select(1, static_cast<int64_t>(fp.groups[p.b][ti]));
          dst.copy_(a.to(at::kFloat) * static_cast<float>(1 - p.w) + b.to(at::kFloat) * static_cast<float>(p.w));
        }
      }
    img.pixels = out;
  }
  img.n_timepoints = t;
  img.geometry = Geometry::from_affine(fp.plan.affine);
  if (!fp.plan.repairs.empty()) {
    std::string r;
    for (const auto& rep : fp.plan.repairs) r += (r.empty() ? "" : "; ") + rep;
    img.meta["repairs"] = r;
  }
}

}  // namespace medfm::io::detail

#include "medfm/data/model_input.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/data/volume_transforms.h"

namespace medfm::data {
namespace {

// Finite values of t as float32, flattened; a deterministic stride sample when there are more
// than 2^24 of them (at::quantile's limit), which moves a percentile by far less than a grey level.
at::Tensor finite_sample(const at::Tensor& t) {
  auto v = t.reshape({-1});
  if (v.is_floating_point()) v = v.masked_select(at::isfinite(v));
  const int64_t kMax = int64_t{1} << 24;
  if (v.numel() > kMax) v = v.slice(0, 0, v.numel(), (v.numel() + kMax - 1) / kMax);
  return v.to(at::kFloat);
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

std::string IntensityMap::describe() const {
  if (zscore) return "zscore mean " + num(mean) + " std " + num(std);
  return "window [" + num(lo) + ", " + num(hi) + "] (" + source + ")";
}

IntensityMap intensity_map(const Image& img, const IntensitySpec& spec) {
  IntensityMap m;
  const std::string& w = spec.window;
  auto from_window = [&](const Window& win, std::string source) {
    m.lo = win.center - win.width / 2;
    m.hi = win.center + win.width / 2;
    m.source = std::move(source);
  };
  // A MONOCHROME1 file's stored window is in its original (inverted) units: not used as is.
  const bool inverted = img.meta.count("photometric") && img.meta.at("photometric") == "MONOCHROME1";
  if (w == "auto" && !inverted && img.meta.count("window_center") && img.meta.count("window_width")) {
    from_window(file_window(img), "file");
    return m;
  }
  if (w == "auto" || w == "minmax" || w == "percentile" || w == "zscore") {
    auto v = finite_sample(img.pixels);
    MEDFM_CHECK(v.numel() > 0, "intensity: the image has no finite value");
    if (w == "zscore") {
      auto fg = v.masked_select(v > 0);
      if (fg.numel() < 2) fg = v;
      m.zscore = true;
      m.mean = fg.mean().item<double>();
      m.std = fg.std(/*unbiased=*/false).item<double>();
      MEDFM_CHECK(m.std > 0, "intensity: zscore of a constant image");
      m.source = "zscore";
      return m;
    }
    if (w == "percentile") {
      MEDFM_CHECK_T(ConfigError, spec.percentile_lo >= 0 && spec.percentile_lo < spec.percentile_hi &&
                                     spec.percentile_hi <= 100,
                    "intensity: percentiles ", spec.percentile_lo, ", ", spec.percentile_hi, " are not 0 <= lo < hi <= 100");
      auto q = at::quantile(v, torch::tensor({spec.percentile_lo / 100, spec.percentile_hi / 100}));
      m.lo = q[0].item<double>();
      m.hi = q[1].item<double>();
      m.source = "percentile";
    } else {
      m.lo = v.min().item<double>();
      m.hi = v.max().item<double>();
      m.source = "minmax";
    }
    if (m.hi <= m.lo) m.hi = m.lo + 1;  // constant image: maps to 0
    return m;
  }
  auto slash = w.find('/');
  if (slash != std::string::npos) {
    double width = 0, level = 0;
    std::istringstream a(w.substr(0, slash)), b(w.substr(slash + 1));
    a >> width;
    b >> level;
    MEDFM_CHECK_T(ConfigError, !a.fail() && !b.fail() && a.eof() && b.eof() && width > 0 && std::isfinite(level),
                  "intensity: window '", w, "' is not WIDTH/LEVEL with a positive width (e.g. 400/40)");
    from_window({level, width}, "W/L");
    return m;
  }
  from_window(window_preset(w), "preset:" + w);  // ConfigError names the presets
  return m;
}

at::Tensor apply_intensity(const at::Tensor& values, const IntensityMap& m) {
  // (per sample in pre-training: the message is built only when over the budget)
  if (const double b = 4.0 * static_cast<double>(values.numel()); b > static_cast<double>(max_memory()))
    check_memory(b, "the intensity window on a " + c10::str(values.sizes()) + " image (float32)");
  auto v = values.to(at::kFloat);
  if (m.zscore) return (v - m.mean) / m.std;
  return ((v - m.lo) / (m.hi - m.lo)).clamp(0, 1);
}

at::Tensor display_to_rgb01(const at::Tensor& chw, const std::string& stored_dtype) {
  MEDFM_CHECK(chw.dim() == 3 && chw.size(0) >= 1 && chw.size(0) <= 4, "image: expected [1..4,H,W], got ",
              chw.sizes());
  double scale = 255.0;
  if (stored_dtype == "uint16" || stored_dtype == "int16") scale = 65535.0;
  else if (stored_dtype != "uint8" && stored_dtype != "int8")
    throw NotImplemented("image: display values of type " + stored_dtype + " (only 8/16-bit) cannot be scaled");
  if (const double b = 4.0 * static_cast<double>(chw.numel()); b > static_cast<double>(max_memory()))
    check_memory(b, "a " + c10::str(chw.sizes()) + " image as float32");
  auto x = chw.to(at::kFloat).div_(scale);
  if (x.size(0) == 1 || x.size(0) == 2) return x.narrow(0, 0, 1).expand({3, -1, -1}).contiguous();
  return x.narrow(0, 0, 3).contiguous();
}

Plane parse_plane(const std::string& s) {
  if (s == "axial") return Plane::kAxial;
  if (s == "coronal") return Plane::kCoronal;
  if (s == "sagittal") return Plane::kSagittal;
  throw ConfigError("slices: unknown plane '" + s + "' (axial, coronal or sagittal)");
}

std::string plane_name(Plane p) {
  switch (p) {
    case Plane::kAxial: return "axial";
    case Plane::kCoronal: return "coronal";
    case Plane::kSagittal: return "sagittal";
  }
  return "?";
}

// pixels [C, Z(S), Y(A), X(R)]: the plane's normal is the voxel axis 3 - dim.
static int plane_dim(Plane p) { return p == Plane::kAxial ? 1 : (p == Plane::kCoronal ? 2 : 3); }

int64_t n_slices(const Image& ras, Plane p) {
  MEDFM_CHECK(ras.is_volume && ras.pixels.dim() == 4, "slices: not a volume");
  return ras.pixels.size(plane_dim(p));
}

SliceRange parse_slice_range(const std::string& s) {
  SliceRange r;
  if (s.empty()) return r;
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  if (!s.empty() && s.back() == ':') parts.push_back("");
  MEDFM_CHECK_T(ConfigError, parts.size() >= 2 && parts.size() <= 3, "slices: '", s, "' is not start:stop[:step]");
  auto parse = [&](const std::string& p) -> std::optional<int64_t> {
    if (p.empty()) return std::nullopt;
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(p, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MEDFM_CHECK_T(ConfigError, used == p.size() && used > 0, "slices: '", p, "' in '", s, "' is not an integer");
    return v;
  };
  r.start = parse(parts[0]);
  r.stop = parse(parts[1]);
  if (parts.size() == 3 && !parts[2].empty()) r.step = *parse(parts[2]);
  MEDFM_CHECK_T(ConfigError, r.step > 0, "slices: step must be positive in '", s, "'");
  return r;
}

std::vector<int64_t> slice_indices(int64_t n, const SliceRange& r) {
  auto clampi = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + n : *v;
    return std::clamp<int64_t>(x, 0, n);
  };
  std::vector<int64_t> out;
  for (int64_t i = clampi(r.start, 0), e = clampi(r.stop, n); i < e; i += r.step) out.push_back(i);
  return out;
}

Slice extract_slice(const Image& ras, Plane plane, int64_t index) {
  const int64_t n = n_slices(ras, plane);
  MEDFM_CHECK_T(ConfigError, index >= 0 && index < n, "slices: index ", index, " outside [0, ", n, ") of the ",
                plane_name(plane), " plane");
  const auto& px = ras.pixels;  // [C,Z,Y,X]
  const auto& sp = ras.geometry.spacing;
  const int64_t nx = px.size(3), ny = px.size(2), nz = px.size(1);
  Slice s;
  s.index = index;
  Vec3 c{(nx - 1) / 2.0, (ny - 1) / 2.0, (nz - 1) / 2.0};
  switch (plane) {
    case Plane::kAxial:  // [C,Y,X] -> rows A->P, columns R->L
      s.pixels = px.select(1, index).flip({1, 2});
      s.row_mm = sp[1], s.col_mm = sp[0], c[2] = static_cast<double>(index);
      break;
    case Plane::kCoronal:  // [C,Z,X] -> rows S->I, columns R->L
      s.pixels = px.select(2, index).flip({1, 2});
      s.row_mm = sp[2], s.col_mm = sp[0], c[1] = static_cast<double>(index);
      break;
    case Plane::kSagittal:  // [C,Z,Y] -> rows S->I, columns A->P
      s.pixels = px.select(3, index).flip({1, 2});
      s.row_mm = sp[2], s.col_mm = sp[1], c[0] = static_cast<double>(index);
      break;
  }
  s.pixels = s.pixels.contiguous();
  s.center_ras = ras.geometry.voxel_to_world(c);
  return s;
}

at::Tensor square_pixels(const at::Tensor& chw, double row_mm, double col_mm) {
  MEDFM_CHECK(row_mm > 0 && col_mm > 0, "slices: pixel spacing must be positive");
  const double fine = std::min(row_mm, col_mm);
  if (std::abs(row_mm - col_mm) <= 1e-3 * fine) return chw;
  const int64_t h = chw.size(1), w = chw.size(2);
  const int64_t nh = std::max<int64_t>(1, std::llround(h * row_mm / fine));
  const int64_t nw = std::max<int64_t>(1, std::llround(w * col_mm / fine));
  auto x = chw.to(at::kFloat).unsqueeze(0);
  std::vector<int64_t> size{nh, nw};
  x = at::_upsample_bilinear2d_aa(x, at::IntArrayRef(size), false, c10::optional<at::ArrayRef<double>>());
  return x.squeeze(0);
}

}  // namespace medfm::data

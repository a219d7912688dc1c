#include "medfm/data/volume_transforms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "medfm/core/error.h"

namespace medfm::data {
namespace {

// Voxel axis a (0 = i/x, 1 = j/y, 2 = k/z) lives in tensor dim dim_of(a, img).
int64_t dim_of(int a, const Image& img) { return img.is_volume ? 3 - a : 2 - a; }
int n_axes(const Image& img) { return img.is_volume ? 3 : 2; }

int world_axis_of(char c, bool* positive) {
  switch (c) {
    case 'R': *positive = true; return 0;
    case 'L': *positive = false; return 0;
    case 'A': *positive = true; return 1;
    case 'P': *positive = false; return 1;
    case 'S': *positive = true; return 2;
    case 'I': *positive = false; return 2;
  }
  return -1;
}

// Linear or nearest interpolation along one tensor dim at positions src (input index units).
at::Tensor interp_axis(const at::Tensor& x, int64_t dim, const std::vector<double>& src, bool nearest) {
  const int64_t n = x.size(dim);
  std::vector<int64_t> i0(src.size()), i1(src.size());
  std::vector<float> w(src.size());
  for (size_t k = 0; k < src.size(); ++k) {
    double s = std::min(std::max(src[k], 0.0), static_cast<double>(n - 1));
    if (nearest) {
      i0[k] = i1[k] = std::min<int64_t>(n - 1, static_cast<int64_t>(std::floor(s + 0.5)));
      w[k] = 0;
    } else {
      i0[k] = static_cast<int64_t>(std::floor(s));
      i1[k] = std::min<int64_t>(n - 1, i0[k] + 1);
      w[k] = static_cast<float>(s - static_cast<double>(i0[k]));
    }
  }
  auto t0 = torch::tensor(i0, at::kLong), t1 = torch::tensor(i1, at::kLong);
  auto a = x.index_select(dim, t0);
  if (nearest) return a;
  auto b = x.index_select(dim, t1);
  std::vector<int64_t> shape(x.dim(), 1);
  shape[dim] = static_cast<int64_t>(src.size());
  auto wt = torch::tensor(w, at::kFloat).view(shape);
  return a + (b - a) * wt;
}

}  // namespace

Image reorient(const Image& img, const std::string& code) {
  const int na = n_axes(img);
  MEDFM_CHECK_T(ConfigError, static_cast<int>(code.size()) == 3, "reorient: code must have 3 letters (e.g. RAS), got '", code, "'");
  int tgt_world[3];
  bool tgt_pos[3];
  bool seen[3] = {false, false, false};
  for (int t = 0; t < 3; ++t) {
    tgt_world[t] = world_axis_of(static_cast<char>(std::toupper(code[t])), &tgt_pos[t]);
    MEDFM_CHECK_T(ConfigError, tgt_world[t] >= 0 && !seen[tgt_world[t]], "reorient: bad orientation code '", code, "'");
    seen[tgt_world[t]] = true;
  }
  const std::string cur = img.geometry.orientation_code();
  int src_of[3];
  bool flip[3];
  for (int t = 0; t < 3; ++t) {
    for (int v = 0; v < 3; ++v) {
      bool pos;
      if (world_axis_of(cur[v], &pos) == tgt_world[t]) src_of[t] = v, flip[t] = pos != tgt_pos[t];
    }
  }
  auto size = img.size();
  // T maps new voxel index -> old voxel index.
  Mat4 T{};
  T[15] = 1;
  for (int t = 0; t < 3; ++t) {
    int v = src_of[t];
    T[v * 4 + t] = flip[t] ? -1.0 : 1.0;
    T[v * 4 + 3] = flip[t] ? static_cast<double>(size[v] - 1) : 0.0;
  }
  if (!img.is_volume)  // 2D: only i/j can move; k stays
    MEDFM_CHECK_T(ConfigError, src_of[2] == 2, "reorient: a 2D image cannot swap its slice axis");
  Image out = img;
  std::vector<int64_t> perm(img.pixels.dim());
  perm[0] = 0;
  for (int t = 0; t < na; ++t) perm[dim_of(t, img)] = dim_of(src_of[t], img);
  auto px = img.pixels.permute(perm);
  std::vector<int64_t> fl;
  for (int t = 0; t < na; ++t)
    if (flip[t]) fl.push_back(dim_of(t, img));
  if (!fl.empty()) px = px.flip(fl);
  out.pixels = px.contiguous();
  out.geometry = Geometry::from_affine(mat4_mul(img.geometry.affine(), T));
  return out;
}

Image resample(const Image& img, const Vec3& spacing, const std::string& interpolation) {
  MEDFM_CHECK_T(ConfigError, interpolation == "linear" || interpolation == "nearest", "resample: interpolation must be linear or nearest, got '",
                interpolation, "'");
  for (double s : spacing) MEDFM_CHECK_T(ConfigError, s > 0 && std::isfinite(s), "resample: spacing must be positive");
  const bool nearest = interpolation == "nearest";
  Image out = img;
  at::Tensor x = nearest ? img.pixels : img.pixels.to(at::kFloat);
  auto size = img.size();
  for (int a = 0; a < n_axes(img); ++a) {
    const double ratio = spacing[a] / img.geometry.spacing[a];
    const int64_t n_out = static_cast<int64_t>(std::floor(static_cast<double>(size[a] - 1) / ratio + 1e-9)) + 1;
    std::vector<double> src(static_cast<size_t>(n_out));
    for (int64_t k = 0; k < n_out; ++k) src[k] = static_cast<double>(k) * ratio;
    x = interp_axis(x, dim_of(a, img), src, nearest);
    out.geometry.spacing[a] = spacing[a];
  }
  out.pixels = x.contiguous();
  return out;
}

Window window_preset(const std::string& name) {
  static const std::map<std::string, Window> presets = {
      {"abdomen", {50, 400}},     {"brain", {40, 80}},        {"subdural", {80, 200}},   {"stroke", {40, 40}},   {"lung", {-600, 1500}},
      {"mediastinum", {50, 350}}, {"soft_tissue", {50, 400}}, {"liver", {60, 160}}, {"bone", {400, 1800}}};
  auto it = presets.find(name);
  if (it == presets.end()) {
    std::string names;
    for (const auto& [k, v] : presets) names += (names.empty() ? "" : ", ") + k;
    throw ConfigError("window: unknown preset '" + name + "' (known: " + names + ")");
  }
  return it->second;
}

Window file_window(const Image& img) {
  auto c = img.meta.find("window_center"), w = img.meta.find("window_width");
  MEDFM_CHECK_T(ConfigError, c != img.meta.end() && w != img.meta.end(), "window: the image has no stored window (WindowCenter/Width)");
  Window win{std::stod(c->second), std::stod(w->second)};
  MEDFM_CHECK_T(ConfigError, win.width > 0, "window: the stored window width is ", win.width, " (not usable)");
  return win;
}

at::Tensor apply_window(const at::Tensor& hu, const Window& w) {
  MEDFM_CHECK_T(ConfigError, w.width > 0, "window: width must be positive");
  return ((hu.to(at::kFloat) - static_cast<float>(w.center - w.width / 2)) / static_cast<float>(w.width)).clamp(0, 1);
}

Image window_stack(const Image& ct, const std::vector<std::string>& presets) {
  MEDFM_CHECK_T(ConfigError, ct.leading() == 1, "window: expected a single-channel CT, got ", ct.leading(), " channels");
  MEDFM_CHECK_T(ConfigError, !presets.empty(), "window: no presets given");
  std::vector<at::Tensor> ch;
  for (const auto& p : presets) ch.push_back(apply_window(ct.pixels[0], window_preset(p)));
  Image out = ct;
  out.pixels = torch::stack(ch);
  out.n_timepoints = 1;
  return out;
}

namespace {
at::Tensor fg_values(const at::Tensor& c, bool nonzero_only) {
  auto f = c.to(at::kFloat).flatten();
  if (!nonzero_only) return f;
  auto v = f.masked_select(f > 0);
  return v.numel() > 0 ? v : f;
}
}  // namespace

Image zscore(const Image& mr, bool nonzero_only) {
  Image out = mr;
  std::vector<at::Tensor> ch;
  for (int64_t c = 0; c < mr.leading(); ++c) {
    auto x = mr.pixels[c].to(at::kFloat);
    auto v = fg_values(x, nonzero_only);
    double m = v.mean().item<double>(), s = v.std(false).item<double>();
    auto y = (x - static_cast<float>(m)) / static_cast<float>(s > 0 ? s : 1.0);
    if (nonzero_only) y = at::where(x > 0, y, torch::zeros_like(y));
    ch.push_back(y);
  }
  out.pixels = torch::stack(ch);
  return out;
}

Image percentile_normalize(const Image& mr, double lo, double hi, bool nonzero_only) {
  MEDFM_CHECK_T(ConfigError, 0 <= lo && lo < hi && hi <= 100, "normalize: need 0 <= lo < hi <= 100");
  Image out = mr;
  std::vector<at::Tensor> ch;
  for (int64_t c = 0; c < mr.leading(); ++c) {
    auto x = mr.pixels[c].to(at::kFloat);
    auto v = std::get<0>(fg_values(x, nonzero_only).sort());
    auto q = [&](double p) {  // linear interpolation between order statistics (numpy's default)
      double pos = p / 100.0 * static_cast<double>(v.numel() - 1);
      int64_t a = static_cast<int64_t>(std::floor(pos)), b = std::min<int64_t>(a + 1, v.numel() - 1);
      double va = v[a].item<double>(), vb = v[b].item<double>();
      return va + (vb - va) * (pos - static_cast<double>(a));
    };
    double l = q(lo), h = q(hi);
    ch.push_back(((x - static_cast<float>(l)) / static_cast<float>(h > l ? h - l : 1.0)).clamp(0, 1));
  }
  out.pixels = torch::stack(ch);
  return out;
}

Image foreground_crop(const Image& img, double threshold, int64_t margin) {
  MEDFM_CHECK_T(ConfigError, margin >= 0, "crop: margin must be >= 0");
  auto mask = (img.pixels.to(at::kFloat) > static_cast<float>(threshold)).any(0);  // [(Z,) Y, X]
  MEDFM_CHECK_T(Error, mask.any().item<bool>(), "crop: no voxel above ", threshold);
  Image out = img;
  auto px = img.pixels;
  Vec3 shift{0, 0, 0};
  for (int a = 0; a < n_axes(img); ++a) {
    int64_t d = dim_of(a, img) - 1;  // in mask (no channel dim)
    auto any = mask;
    for (int64_t k = mask.dim() - 1; k >= 0; --k)
      if (k != d) any = any.any(k);
    auto idx = any.nonzero().flatten();
    int64_t lo = std::max<int64_t>(0, idx.min().item<int64_t>() - margin);
    int64_t hi = std::min<int64_t>(mask.size(d) - 1, idx.max().item<int64_t>() + margin);
    px = px.narrow(d + 1, lo, hi - lo + 1);
    shift[a] = static_cast<double>(lo);
  }
  out.pixels = px.contiguous();
  out.geometry.origin = img.geometry.voxel_to_world(shift);
  return out;
}

Image fundus_fov_crop(const Image& rgb, double threshold, FundusFov* fov) {
  MEDFM_CHECK_T(ConfigError, !rgb.is_volume && rgb.channels() >= 3, "fundus: expected an RGB 2D image");
  auto red = rgb.pixels[0].to(at::kFloat);
  auto mask = red > static_cast<float>(threshold) * red.max().item<float>();
  MEDFM_CHECK_T(Error, mask.any().item<bool>(), "fundus: no field of view found");
  // Disc from the mask's row / column extents (robust to a clipped top or bottom) and its area.
  auto rows = mask.any(1).nonzero().flatten(), cols = mask.any(0).nonzero().flatten();
  double y0 = rows.min().item<double>(), y1 = rows.max().item<double>();
  double x0 = cols.min().item<double>(), x1 = cols.max().item<double>();
  FundusFov f;
  f.cx = (x0 + x1) / 2, f.cy = (y0 + y1) / 2;
  f.radius = std::max(x1 - x0, y1 - y0) / 2 + 0.5;
  if (fov) *fov = f;
  const int64_t side = static_cast<int64_t>(std::ceil(2 * f.radius));
  const int64_t left = static_cast<int64_t>(std::llround(f.cx - (side - 1) / 2.0));
  const int64_t top = static_cast<int64_t>(std::llround(f.cy - (side - 1) / 2.0));
  const int64_t H = rgb.pixels.size(1), W = rgb.pixels.size(2);
  auto out_px = torch::zeros({rgb.pixels.size(0), side, side}, rgb.pixels.options());
  int64_t sy0 = std::max<int64_t>(0, top), sy1 = std::min<int64_t>(H, top + side);
  int64_t sx0 = std::max<int64_t>(0, left), sx1 = std::min<int64_t>(W, left + side);
  out_px.narrow(1, sy0 - top, sy1 - sy0).narrow(2, sx0 - left, sx1 - sx0)
      .copy_(rgb.pixels.narrow(1, sy0, sy1 - sy0).narrow(2, sx0, sx1 - sx0));
  Image out = rgb;
  out.pixels = out_px;
  out.geometry.origin = rgb.geometry.voxel_to_world({static_cast<double>(left), static_cast<double>(top), 0});
  return out;
}

}  // namespace medfm::data

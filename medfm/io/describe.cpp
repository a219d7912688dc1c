#include "medfm/io/describe.h"

#include <torch/torch.h>

#include <functional>
#include <iomanip>
#include <limits>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::io {

namespace {

constexpr int64_t kChunk = int64_t{1} << 22;  // values converted to float64 at a time

// Runs fn on consecutive chunks of t's values as float64, non-finite values removed (counted).
void for_finite_chunks(const at::Tensor& t, int64_t* nan, int64_t* inf, const std::function<void(const at::Tensor&)>& fn) {
  const auto flat = t.reshape(-1);  // a view unless t is not contiguous
  const bool is_float = at::isFloatingType(t.scalar_type());
  for (int64_t i = 0; i < flat.numel(); i += kChunk) {
    auto d = flat.slice(0, i, std::min(i + kChunk, flat.numel())).to(at::kDouble);
    if (is_float) {
      auto fin = d.isfinite();
      if (!fin.all().item<bool>()) {
        if (nan) *nan += d.isnan().sum().item<int64_t>();
        if (inf) *inf += d.isinf().sum().item<int64_t>();
        d = d.masked_select(fin);
      }
    }
    if (d.numel()) fn(d);
  }
}

}  // namespace

nlohmann::json pixel_stats(const at::Tensor& t) {
  int64_t n = 0, nan = 0, inf = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  for_finite_chunks(t, &nan, &inf, [&](const at::Tensor& d) {
    lo = std::min(lo, d.min().item<double>());
    hi = std::max(hi, d.max().item<double>());
    sum += d.sum().item<double>();
    n += d.numel();
  });
  nlohmann::json j;
  if (n == 0) {
    j = {{"min", nullptr}, {"max", nullptr}, {"mean", nullptr}, {"std", nullptr}};
  } else {
    const double mean = sum / static_cast<double>(n);
    double ss = 0;
    for_finite_chunks(t, nullptr, nullptr, [&](const at::Tensor& d) { ss += (d - mean).pow(2).sum().item<double>(); });
    j = {{"min", lo}, {"max", hi}, {"mean", mean}, {"std", std::sqrt(ss / static_cast<double>(n))}};
  }
  if (at::isFloatingType(t.scalar_type())) j["nan_count"] = nan, j["inf_count"] = inf;
  return j;
}

namespace {

// The centroid given the minimum of the finite values (the stats pass already found it).
std::optional<Vec3> centroid_above(const Image& img, const nlohmann::json& stats) {
  MEDFM_ASSERT(img.is_volume, "centroid of a 2D image");
  if (stats["min"].is_null()) return std::nullopt;
  const double lo = stats["min"].get<double>();
  // One z slab at a time: weights = value - minimum, summed over the leading axis; non-finite 0.
  const int64_t nz = img.pixels.size(1), ny = img.pixels.size(2), nx = img.pixels.size(3);
  const auto iy = torch::arange(ny, at::kDouble), ix = torch::arange(nx, at::kDouble);
  double total = 0, mz = 0, my = 0, mx = 0;
  for (int64_t z = 0; z < nz; ++z) {
    auto v = img.pixels.select(1, z).to(at::kDouble);
    auto w = at::where(v.isfinite(), v - lo, at::zeros({}, v.options())).sum(0);  // [Y, X]
    const double tz = w.sum().item<double>();
    total += tz;
    mz += tz * static_cast<double>(z);
    my += (w.sum(1) * iy).sum().item<double>();
    mx += (w.sum(0) * ix).sum().item<double>();
  }
  if (!(total > 0)) return std::nullopt;
  return img.geometry.voxel_to_world(Vec3{mx / total, my / total, mz / total});
}

}  // namespace

std::optional<Vec3> world_centroid(const Image& img) { return centroid_above(img, pixel_stats(img.pixels)); }

nlohmann::json describe_image(const Image& img, const DescribeOptions& opts) {
  nlohmann::json j;
  j["format"] = img.format;
  j["kind"] = img.is_volume ? "volume" : "image";
  auto sz = img.size();
  j["channels"] = img.channels();
  j["dtype"] = img.stored_dtype;
  if (img.is_volume) {
    std::vector<int64_t> size{sz[0], sz[1], sz[2]};
    if (img.n_timepoints > 1) size.push_back(img.n_timepoints);
    j["size"] = size;
    const auto& g = img.geometry;
    j["spacing"] = {g.spacing[0], g.spacing[1], g.spacing[2]};
    auto a = g.affine();
    nlohmann::json rows = nlohmann::json::array();
    for (auto& v : a) v += 0.0;  // -0 -> 0
    for (int r = 0; r < 4; ++r) rows.push_back({a[r * 4], a[r * 4 + 1], a[r * 4 + 2], a[r * 4 + 3]});
    j["affine"] = rows;
    j["orientation"] = g.orientation_code();
    if (!img.modality.empty()) j["modality"] = img.modality;
  } else {
    j["size"] = {sz[0], sz[1]};
  }
  if (!img.meta.empty()) j["meta"] = img.meta;
  if (opts.show_phi && !img.phi.empty()) j["phi"] = img.phi;
  if (opts.stats) {
    j["stats"] = pixel_stats(img.pixels);
    if (img.is_volume) {
      if (auto c = centroid_above(img, j["stats"])) j["stats"]["centroid"] = {(*c)[0], (*c)[1], (*c)[2]};
      else j["stats"]["centroid"] = nullptr;
    }
  }
  return j;
}

nlohmann::json describe_slide(const Slide& s, const DescribeOptions& opts) {
  nlohmann::json j;
  j["format"] = "slide";
  j["kind"] = "slide";
  j["vendor"] = s.vendor();
  const auto& lv = s.levels();
  j["size"] = {lv[0].width, lv[0].height};
  j["channels"] = 3;
  j["dtype"] = "uint8";
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& l : lv) levels.push_back({{"size", {l.width, l.height}}, {"downsample", l.downsample}});
  j["levels"] = levels;
  if (auto m = s.mpp()) j["mpp"] = {(*m)[0], (*m)[1]};
  else j["mpp"] = nullptr;
  j["mpp_source"] = s.mpp_source();
  j["associated_images"] = s.associated_images();
  auto it = s.properties().find("openslide.objective-power");
  if (it != s.properties().end()) j["objective_power"] = it->second;
  return j;
}

namespace {

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << (v == 0 ? 0.0 : v);  // no "-0"
  return os.str();
}

std::string join(const nlohmann::json& arr, const char* sep, bool as_num = true) {
  std::string s;
  for (size_t i = 0; i < arr.size(); ++i) {
    if (i) s += sep;
    s += arr[i].is_number() ? num(arr[i].get<double>()) : arr[i].dump();
  }
  return s;
}

}  // namespace

std::string describe_text(const nlohmann::json& j) {
  std::ostringstream os;
  os << j["path"].get<std::string>() << "\n";
  auto row = [&](const char* k, const std::string& v) { os << "  " << std::left << std::setw(18) << k << " " << v << "\n"; };
  row("format", j["format"].get<std::string>() + " (" + j["kind"].get<std::string>() + ")");
  row("size", join(j["size"], " x ") + "   " + j["dtype"].get<std::string>() + ", " +
                  std::to_string(j["channels"].get<int64_t>()) + " channel(s)");
  if (j.contains("spacing")) row("spacing", join(j["spacing"], " x ") + " mm");
  if (j.contains("orientation")) row("orientation", j["orientation"].get<std::string>());
  if (j.contains("affine"))
    for (int r = 0; r < 3; ++r) row(r == 0 ? "affine" : "", "[" + join(j["affine"][r], ", ") + "]");
  if (j.contains("modality")) row("modality", j["modality"].get<std::string>());
  if (j["kind"] == "slide") {
    row("vendor", j["vendor"].get<std::string>());
    row("um/px", j["mpp"].is_null() ? "unknown (set read.mpp)" : join(j["mpp"], " x ") + "  (" + j["mpp_source"].get<std::string>() + ")");
    for (size_t l = 0; l < j["levels"].size(); ++l) {
      const auto& lv = j["levels"][l];
      row(l == 0 ? "levels" : "", std::to_string(l) + ": " + join(lv["size"], " x ") + "  downsample " + num(lv["downsample"].get<double>()));
    }
    if (!j["associated_images"].empty()) row("associated", join(j["associated_images"], ", "));
  }
  if (j.contains("meta"))
    for (auto& [k, v] : j["meta"].items()) row(k.c_str(), v.get<std::string>());
  if (j.contains("stats")) {
    const auto& s = j["stats"];
    row("stats", "min " + num(s["min"].get<double>()) + "  max " + num(s["max"].get<double>()) + "  mean " +
                     num(s["mean"].get<double>()) + "  std " + num(s["std"].get<double>()));
  }
  if (j.contains("phi"))
    for (auto& [k, v] : j["phi"].items()) row(k.c_str(), v.get<std::string>() + "  [PHI]");
  return os.str();
}

}  // namespace medfm::io

#include "medfm/data/tissue.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::data {
namespace {

int odd_px(double um, double mpp, int minimum) {
  int k = static_cast<int>(std::lround(um / mpp));
  k = std::max(k, minimum);
  return k % 2 ? k : k + 1;
}

// The slide at the mask's resolution, block by block: each block read from `level`, area-averaged
// to the mask grid and handed to fn(rgb, r0, c0) (RGB uint8 h x w x 3, interleaved; (r0, c0) its
// top-left on the grid).
void for_each_block(const io::Slide& slide, int level, double ds_level0, int64_t W, int64_t H,
                    const std::function<void(const cv::Mat&, int, int)>& fn) {
  const double f = ds_level0 / slide.levels()[level].downsample;  // level pixels per mask pixel
  const auto& lv = slide.levels()[level];
  const int64_t block = std::max<int64_t>(16, static_cast<int64_t>(2048 / std::max(1.0, std::ceil(f))));
  std::vector<uint8_t> buf;
  cv::Mat dst;
  for (int64_t r0 = 0; r0 < H; r0 += block) {
    const int64_t r1 = std::min(H, r0 + block);
    for (int64_t c0 = 0; c0 < W; c0 += block) {
      const int64_t c1 = std::min(W, c0 + block);
      const int64_t lx0 = static_cast<int64_t>(std::floor(c0 * f)), ly0 = static_cast<int64_t>(std::floor(r0 * f));
      const int64_t lx1 = std::max(lx0 + 1, std::min<int64_t>(lv.width, static_cast<int64_t>(std::ceil(c1 * f))));
      const int64_t ly1 = std::max(ly0 + 1, std::min<int64_t>(lv.height, static_cast<int64_t>(std::ceil(r1 * f))));
      const int64_t w = lx1 - lx0, h = ly1 - ly0;
      buf.resize(static_cast<size_t>(w * h * 3));
      // read_region takes level-0 coordinates.
      slide.read_region_rgb(static_cast<int64_t>(std::llround(lx0 * lv.downsample)),
                            static_cast<int64_t>(std::llround(ly0 * lv.downsample)), level, w, h, buf.data());
      cv::Mat src(static_cast<int>(h), static_cast<int>(w), CV_8UC3, buf.data());
      cv::resize(src, dst, cv::Size(static_cast<int>(c1 - c0), static_cast<int>(r1 - r0)), 0, 0, cv::INTER_AREA);
      fn(dst, static_cast<int>(r0), static_cast<int>(c0));
    }
  }
}

cv::Mat read_downsampled(const io::Slide& slide, int level, double ds_level0, int64_t W, int64_t H) {
  cv::Mat out(static_cast<int>(H), static_cast<int>(W), CV_8UC3);
  for_each_block(slide, level, ds_level0, W, H,
                 [&](const cv::Mat& b, int r0, int c0) { b.copyTo(out(cv::Rect(c0, r0, b.cols, b.rows))); });
  return out;
}

// Pen marker ink: hues and dominance no H&E / IHC stain reaches (measured on skimage's ihc.png:
// blue minus red stays under 50 on 99.9% of its tissue).
cv::Mat pen_mask(const cv::Mat& rgb) {
  cv::Mat m(rgb.size(), CV_8U);
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<cv::Vec3b>(y);
    auto* o = m.ptr<uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const int r = p[x][0], g = p[x][1], b = p[x][2];
      const bool green = g > r + 25 && g > b + 10;
      const bool blue = b > r + 70 && b > g + 40;
      const bool red = r > g + 110 && r > b + 90;
      o[x] = (green || blue || red) ? 255 : 0;
    }
  }
  return m;
}

Ring to_level0(const std::vector<cv::Point>& c, double sx, double sy) {
  Ring r;
  r.reserve(c.size() + 1);
  for (const auto& p : c) r.push_back({(p.x + 0.5) * sx, (p.y + 0.5) * sy});
  if (!r.empty()) r.push_back(r.front());  // GeoJSON rings are closed
  return r;
}

// CLAM-style colour rules (hsv / otsu) on the slide at the mask's resolution: uint8 0/255. The
// per-pixel planes are computed block by block as the slide is read (no full-size RGB or HSV
// copy: memory ~5 bytes per mask pixel, so a 5x larger slide costs little more).
cv::Mat colour_mask(const io::Slide& slide, int level, double ds, int64_t W, int64_t H, const TissueOptions& o, double mpp) {
  cv::Mat signal(static_cast<int>(H), static_cast<int>(W), CV_8U);    // larger = more tissue-like
  cv::Mat excluded(static_cast<int>(H), static_cast<int>(W), CV_8U);  // black (and later pen ink)
  cv::Mat pen = o.exclude_pen ? cv::Mat(static_cast<int>(H), static_cast<int>(W), CV_8U) : cv::Mat();
  for_each_block(slide, level, ds, W, H, [&](const cv::Mat& rgb, int r0, int c0) {
    const cv::Rect roi(c0, r0, rgb.cols, rgb.rows);
    cv::Mat hsv;
    cv::cvtColor(rgb, hsv, cv::COLOR_RGB2HSV);
    std::vector<cv::Mat> ch;
    cv::split(hsv, ch);
    cv::Mat ex = ch[2] < o.black_value;
    ex.copyTo(excluded(roi));
    if (o.method == "hsv") {
      ch[1].copyTo(signal(roi));
    } else {
      cv::Mat gray;
      cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
      cv::Mat inv = 255 - gray;
      inv.copyTo(signal(roi));
    }
    if (o.exclude_pen) pen_mask(rgb).copyTo(pen(roi));
  });
  if (o.exclude_pen) {
    // Ink and its halo (ink blended with glass by the scanner's JPEG and by the downsampling is
    // paler than ink but still saturated): the ink grown by ~16 um.
    const int k = odd_px(16.0, mpp, 3);
    cv::dilate(pen, pen, cv::Mat::ones(k, k, CV_8U));
    excluded |= pen;
    pen.release();
  }
  signal.setTo(0, excluded);
  cv::medianBlur(signal, signal, odd_px(o.median_um, mpp, 3));
  cv::Mat bin;
  if (o.method == "hsv" && o.saturation_threshold > 0) {
    cv::threshold(signal, bin, o.saturation_threshold, 255, cv::THRESH_BINARY);
  } else {
    const double otsu = cv::threshold(signal, bin, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
    if (o.method == "hsv" && otsu < 8) cv::threshold(signal, bin, 8, 255, cv::THRESH_BINARY);
  }
  bin.setTo(0, excluded);
  if (o.close_um > 0) {
    const int k = odd_px(o.close_um, mpp, 1);
    cv::morphologyEx(bin, bin, cv::MORPH_CLOSE, cv::Mat::ones(k, k, CV_8U));
  }
  return bin;
}

// The tissue model's mask on the mask grid (uint8 0/255), from the slide at mask_mpp.
cv::Mat model_mask(const cv::Mat& rgb, const TissueOptions& o) {
  torch::jit::script::Module m;
  try {
    m = torch::jit::load(o.model, torch::kCPU);
  } catch (const c10::Error& e) {
    throw IoError("tissue: cannot load the TorchScript model '" + o.model + "': " + e.what_without_backtrace());
  }
  m.eval();
  c10::InferenceMode guard;
  auto x = torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, at::kByte).permute({0, 3, 1, 2}).to(at::kFloat).div(255);
  c10::IValue out;
  const std::string failed = "tissue: the model '" + o.model + "' failed on a [1, 3, " + std::to_string(rgb.rows) +
                             ", " + std::to_string(rgb.cols) + "] input: ";
  try {
    out = m.forward({x});
  } catch (const c10::Error& e) {
    throw FormatError(failed + e.what_without_backtrace());
  } catch (const std::exception& e) {  // torch::jit::JITException: a `raise` in the scripted model
    throw FormatError(failed + e.what());
  }
  MEDFM_CHECK_T(FormatError, out.isTensor(), "tissue: the model '", o.model, "' does not return a tensor");
  const at::Tensor y = out.toTensor().to(at::kFloat);
  MEDFM_CHECK_T(FormatError, y.dim() == 4 && y.size(0) == 1 && y.size(1) >= 1, "tissue: the model '", o.model,
                "' returned ", y.sizes(), ", not [1, C, h, w]");
  auto tissue = (y.size(1) == 1 ? y[0][0].gt(o.model_threshold) : y[0].argmax(0).ne(0)).to(at::kByte).mul(255);
  if (tissue.size(0) != rgb.rows || tissue.size(1) != rgb.cols)
    tissue = torch::nn::functional::interpolate(
                 tissue.view({1, 1, tissue.size(0), tissue.size(1)}).to(at::kFloat),
                 torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{rgb.rows, rgb.cols}).mode(torch::kNearest))
                 .to(at::kByte)[0][0];
  tissue = tissue.contiguous();
  return cv::Mat(rgb.rows, rgb.cols, CV_8U, tissue.data_ptr<uint8_t>()).clone();
}

}  // namespace

at::Tensor read_downsampled(const io::Slide& slide, double downsample) {
  MEDFM_CHECK_T(ConfigError, std::isfinite(downsample) && downsample >= 1, "slide: downsample ", downsample, " must be >= 1");
  const auto& l0 = slide.levels()[0];
  const int64_t W = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(l0.width / downsample)));
  const int64_t H = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(l0.height / downsample)));
  cv::Mat m = read_downsampled(slide, slide.best_level_for_downsample(downsample), downsample, W, H);
  return torch::from_blob(m.data, {m.rows, m.cols, 3}, at::kByte).permute({2, 0, 1}).contiguous();  // HWC -> CHW
}

at::Tensor read_thumbnail(const io::Slide& slide, int size, double* downsample) {
  MEDFM_CHECK_T(ConfigError, size > 0, "slide: thumbnail size must be positive");
  const auto& l0 = slide.levels()[0];
  *downsample = std::max(1.0, static_cast<double>(std::max(l0.width, l0.height)) / size);
  return read_downsampled(slide, *downsample);
}

double TissueMask::tissue_fraction() const {
  return mask.numel() ? mask.to(at::kDouble).mean().item<double>() : 0.0;
}

at::Tensor pen_ink(const at::Tensor& rgb) {
  MEDFM_CHECK(rgb.dim() == 3 && rgb.size(0) == 3 && rgb.scalar_type() == at::kByte, "tissue: expected uint8 [3,H,W]");
  auto hwc = rgb.permute({1, 2, 0}).contiguous();
  cv::Mat m(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  cv::Mat pen = pen_mask(m);
  return torch::from_blob(pen.data, {pen.rows, pen.cols}, at::kByte).clone().gt(0);
}

TissueMask detect_tissue(const io::Slide& slide, const TissueOptions& o) {
  MEDFM_CHECK_T(ConfigError, !o.model.empty() || o.method == "hsv" || o.method == "otsu", "tissue: unknown method '",
                o.method, "' (hsv or otsu, or a model)");
  MEDFM_CHECK_T(ConfigError, std::isfinite(o.mask_mpp) && o.mask_mpp > 0, "tissue: mask um/px must be positive");
  MEDFM_CHECK_T(ConfigError, o.saturation_threshold >= 0 && o.saturation_threshold <= 255,
                "tissue: saturation threshold ", o.saturation_threshold, " outside 0..255");
  MEDFM_CHECK_T(ConfigError, o.min_tissue_mm2 >= 0 && o.min_hole_mm2 >= 0 && o.max_holes >= 0,
                "tissue: area limits and max_holes must not be negative");
  const auto mpp = slide.mpp();
  MEDFM_CHECK_T(ConfigError, mpp.has_value(), "tissue: '", slide.path(),
                "' records no um/px (set the slide's um/px with read.mpp)");
  const auto& l0 = slide.levels()[0];
  TissueMask t;
  // Mask grid: mask_mpp in x; y keeps the slide's aspect (mpp_y / mpp_x).
  const double ds = o.mask_mpp / (*mpp)[0];
  MEDFM_CHECK_T(ConfigError, ds >= 1.0, "tissue: mask um/px ", o.mask_mpp, " is finer than the slide's ", (*mpp)[0]);
  const int64_t W = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(l0.width / ds)));
  const int64_t H = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(l0.height / ds)));
  // A level up to 10% coarser than the mask is read and upsampled: a 0.2631 um/px scanner's 32x
  // level (8.4 um/px) serves an 8 um/px mask instead of its 16x level (4x the pixels to decode).
  t.level = slide.best_level_for_downsample(ds * 1.1);
  t.scale_x = t.scale_y = ds;
  t.mpp_x = ds * (*mpp)[0];
  t.mpp_y = ds * (*mpp)[1];
  cv::Mat bin = o.model.empty() ? colour_mask(slide, t.level, ds, W, H, o, t.mpp_x)
                                : model_mask(read_downsampled(slide, t.level, ds, W, H), o);

  std::vector<std::vector<cv::Point>> contours;
  std::vector<cv::Vec4i> hier;
  cv::findContours(bin, contours, hier, cv::RETR_CCOMP, cv::CHAIN_APPROX_NONE);
  const double px_mm2 = t.mpp_x * t.mpp_y * 1e-6;
  cv::Mat kept = cv::Mat::zeros(bin.size(), CV_8U);
  for (size_t i = 0; i < contours.size(); ++i) {
    if (hier[i][3] != -1) continue;  // a hole; handled with its parent
    std::vector<std::pair<double, int>> holes;  // (area, index)
    for (int c = hier[i][2]; c >= 0; c = hier[c][0]) holes.emplace_back(cv::contourArea(contours[c]), c);
    std::sort(holes.begin(), holes.end(), std::greater<>());
    std::vector<int> kept_holes;  // the largest max_holes of at least min_hole_mm2
    double hole_area = 0;
    for (const auto& h : holes) {
      if (static_cast<int>(kept_holes.size()) >= o.max_holes || h.first * px_mm2 < o.min_hole_mm2) break;
      kept_holes.push_back(h.second);
      hole_area += h.first;
    }
    const double area_mm2 = (cv::contourArea(contours[i]) - hole_area) * px_mm2;
    if (area_mm2 < o.min_tissue_mm2 || area_mm2 <= 0) continue;
    TissueRegion r;
    r.outer = to_level0(contours[i], t.scale_x, t.scale_y);
    r.area_mm2 = area_mm2;
    cv::drawContours(kept, contours, static_cast<int>(i), cv::Scalar(1), cv::FILLED);
    for (int h : kept_holes) {
      r.holes.push_back(to_level0(contours[h], t.scale_x, t.scale_y));
      cv::drawContours(kept, contours, h, cv::Scalar(0), cv::FILLED);
    }
    t.regions.push_back(std::move(r));
  }
  t.mask = torch::from_blob(kept.data, {kept.rows, kept.cols}, at::kByte).clone();
  return t;
}

std::string tissue_geojson(const TissueMask& t, const std::string& slide_name) {
  nlohmann::json features = nlohmann::json::array();
  for (size_t i = 0; i < t.regions.size(); ++i) {
    const auto& r = t.regions[i];
    nlohmann::json rings = nlohmann::json::array({r.outer});
    for (const auto& h : r.holes) rings.push_back(h);
    features.push_back({{"type", "Feature"},
                        {"geometry", {{"type", "Polygon"}, {"coordinates", rings}}},
                        {"properties",
                         {{"objectType", "annotation"},
                          {"classification", {{"name", "Tissue"}}},
                          {"tissue_id", i},
                          {"area_mm2", r.area_mm2}}}});
  }
  return nlohmann::json{{"type", "FeatureCollection"}, {"name", slide_name}, {"features", features}}.dump();
}

std::vector<TissueRegion> read_geojson_regions(const std::string& path) {
  std::ifstream f(path);
  MEDFM_CHECK_T(IoError, f.good(), "geojson: cannot open '", path, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("geojson: '" + path + "' is not JSON: " + e.what());
  }
  auto ring = [&](const nlohmann::json& a) {
    Ring r;
    MEDFM_CHECK_T(FormatError, a.is_array() && a.size() >= 3, "geojson: '", path, "': a ring needs 3 or more points");
    for (const auto& p : a) {
      MEDFM_CHECK_T(FormatError, p.is_array() && p.size() >= 2 && p[0].is_number() && p[1].is_number(),
                    "geojson: '", path, "': a point is not [x, y]");
      r.push_back({p[0].get<double>(), p[1].get<double>()});
    }
    return r;
  };
  auto polygon = [&](const nlohmann::json& rings) {
    MEDFM_CHECK_T(FormatError, rings.is_array() && !rings.empty(), "geojson: '", path, "': an empty polygon");
    TissueRegion r;
    r.outer = ring(rings[0]);
    for (size_t k = 1; k < rings.size(); ++k) r.holes.push_back(ring(rings[k]));
    return r;
  };
  std::vector<nlohmann::json> geoms;
  if (j.value("type", "") == "FeatureCollection" && j.contains("features")) {
    for (const auto& f : j["features"])
      if (f.contains("geometry") && !f["geometry"].is_null()) geoms.push_back(f["geometry"]);
  } else if (j.value("type", "") == "Feature") {
    geoms.push_back(j["geometry"]);
  } else {
    geoms.push_back(j);
  }
  std::vector<TissueRegion> out;
  for (const auto& g : geoms) {
    const std::string type = g.value("type", "");
    if (type == "Polygon") out.push_back(polygon(g["coordinates"]));
    else if (type == "MultiPolygon")
      for (const auto& p : g["coordinates"]) out.push_back(polygon(p));
    else
      throw FormatError("geojson: '" + path + "': geometry type '" + type + "' is not Polygon or MultiPolygon");
  }
  MEDFM_CHECK_T(FormatError, !out.empty(), "geojson: '", path, "' holds no polygon");
  return out;
}

}  // namespace medfm::data

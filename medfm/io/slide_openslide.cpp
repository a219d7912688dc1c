// Whole-slide images through OpenSlide 3.4. The handle is owned by a unique_ptr and never leaves
// this file; OpenSlide's sticky error state is checked after every call. OpenSlide is safe to
// call from many threads on one handle, so read_region needs no lock.
#include <openslide/openslide.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "medfm/core/error.h"
#include "medfm/io/readers.h"

namespace medfm::io::detail {
namespace {

struct OsrClose {
  void operator()(openslide_t* p) const { openslide_close(p); }
};

std::optional<double> parse_positive(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v) || v <= 0) return std::nullopt;
  return v;
}

class OpenSlideSlide final : public Slide {
 public:
  OpenSlideSlide(std::string path, const ReadOptions& opts) : path_(std::move(path)) {
    const char* v = openslide_detect_vendor(path_.c_str());
    MEDFM_CHECK_T(FormatError, v, "slide: '", path_, "' is not a format OpenSlide reads");
    vendor_ = v;
    osr_.reset(openslide_open(path_.c_str()));
    MEDFM_CHECK_T(FormatError, osr_, "slide: OpenSlide cannot open '", path_, "'");
    check("open");
    int32_t n = openslide_get_level_count(osr_.get());
    check("level count");
    MEDFM_CHECK_T(FormatError, n >= 1, "slide: no levels in '", path_, "'");
    for (int32_t l = 0; l < n; ++l) {
      SlideLevel lv;
      openslide_get_level_dimensions(osr_.get(), l, &lv.width, &lv.height);
      lv.downsample = openslide_get_level_downsample(osr_.get(), l);
      check("level dimensions");
      levels_.push_back(lv);
    }
    for (const char* const* p = openslide_get_property_names(osr_.get()); p && *p; ++p) {
      const char* val = openslide_get_property_value(osr_.get(), *p);
      props_[*p] = val ? val : "";
    }
    for (const char* const* p = openslide_get_associated_image_names(osr_.get()); p && *p; ++p) assoc_.push_back(*p);
    check("properties");
    resolve_mpp(opts.mpp);
  }

  const std::string& path() const override { return path_; }
  const std::string& vendor() const override { return vendor_; }
  const std::vector<SlideLevel>& levels() const override { return levels_; }
  const std::map<std::string, std::string>& properties() const override { return props_; }
  std::vector<std::string> associated_images() const override { return assoc_; }
  std::optional<std::array<double, 2>> mpp() const override { return mpp_; }
  const std::string& mpp_source() const override { return mpp_source_; }

  int best_level_for_downsample(double ds) const override {
    int best = 0;
    for (size_t l = 0; l < levels_.size(); ++l)
      if (levels_[l].downsample <= ds * (1 + 1e-9)) best = static_cast<int>(l);
    return best;
  }

  // Before anything is allocated; w * h is never formed unchecked (it could overflow).
  void check_region(int level, int64_t w, int64_t h) const {
    MEDFM_CHECK_T(ConfigError, level >= 0 && level < static_cast<int>(levels_.size()), "slide: level ", level,
                  " out of range 0..", levels_.size() - 1, " for '", path_, "'");
    MEDFM_CHECK_T(ConfigError, w > 0 && h > 0 && w <= (int64_t{1} << 28) / h, "slide: region size ", w, "x", h,
                  " must be positive and at most 2^28 pixels");
  }

  void read_region_rgb(int64_t x, int64_t y, int level, int64_t w, int64_t h, uint8_t* out) const override {
    check_region(level, w, h);
    // Tile-sized requests reuse a per-thread buffer (a fresh 256 KiB+ one is an mmap plus page
    // faults per call); large ones get their own, so a thread never keeps a huge buffer.
    thread_local std::vector<uint32_t> reused;
    std::vector<uint32_t> own;
    std::vector<uint32_t>& argb = w * h <= (int64_t{1} << 20) ? reused : own;
    argb.resize(static_cast<size_t>(w * h));
    openslide_read_region(osr_.get(), argb.data(), x, y, level, w, h);
    check("read_region");
    // Premultiplied ARGB over white: c + (255 - a); fully transparent -> 255.
    const int64_t n = w * h;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t p = argb[i];
      uint32_t a = p >> 24, bg = 255 - a;
      out[3 * i + 0] = static_cast<uint8_t>(std::min<uint32_t>(255, ((p >> 16) & 0xFF) + bg));
      out[3 * i + 1] = static_cast<uint8_t>(std::min<uint32_t>(255, ((p >> 8) & 0xFF) + bg));
      out[3 * i + 2] = static_cast<uint8_t>(std::min<uint32_t>(255, (p & 0xFF) + bg));
    }
  }

  at::Tensor read_region(int64_t x, int64_t y, int level, int64_t w, int64_t h) const override {
    check_region(level, w, h);
    auto hwc = torch::empty({h, w, 3}, at::kByte);
    read_region_rgb(x, y, level, w, h, hwc.data_ptr<uint8_t>());
    return hwc.permute({2, 0, 1}).contiguous();  // [h,w,3] -> [3,h,w]
  }

 private:
  void check(const char* what) const {
    const char* e = openslide_get_error(osr_.get());
    MEDFM_CHECK_T(FormatError, !e, "slide: ", what, " failed for '", path_, "': ", e ? e : "");
  }
  std::string prop(const std::string& k) const {
    auto it = props_.find(k);
    return it == props_.end() ? std::string() : it->second;
  }

  // um/px: a user override wins (recorded as such); else openslide.mpp-*, else the TIFF
  // resolution tags (centimetre or inch; 72/96/300 dpi defaults rejected), else vendor fields.
  void resolve_mpp(std::optional<double> override_mpp) {
    if (override_mpp) {
      MEDFM_CHECK_T(ConfigError, *override_mpp > 0 && std::isfinite(*override_mpp), "slide: the um/px override (read.mpp) must be positive");
      mpp_ = std::array<double, 2>{*override_mpp, *override_mpp};
      mpp_source_ = "override";
      return;
    }
    auto mx = parse_positive(prop("openslide.mpp-x")), my = parse_positive(prop("openslide.mpp-y"));
    if (mx && my) {
      mpp_ = std::array<double, 2>{*mx, *my};
      mpp_source_ = "openslide";
      return;
    }
    auto rx = parse_positive(prop("tiff.XResolution")), ry = parse_positive(prop("tiff.YResolution"));
    std::string unit = prop("tiff.ResolutionUnit");
    if (rx && ry && (unit == "centimeter" || unit == "inch")) {
      double um = unit == "centimeter" ? 1e4 : 25400.0;
      // Image writers' default resolutions (72 / 96 / 300 dpi, in either unit; vips writes 72 dpi
      // as 28.3465 px/cm) say nothing about the scanner.
      const double dpi = unit == "inch" ? *rx : *rx * 2.54;
      bool default_dpi = false;
      for (double d : {72.0, 96.0, 300.0}) default_dpi = default_dpi || std::abs(dpi - d) < 0.005 * d;
      double x = um / *rx, y = um / *ry;
      if (!default_dpi && x > 0.01 && x < 1000 && y > 0.01 && y < 1000) {
        mpp_ = std::array<double, 2>{x, y};
        mpp_source_ = "tiff-resolution";
        return;
      }
    }
    if (auto a = parse_positive(prop("aperio.MPP"))) {
      mpp_ = std::array<double, 2>{*a, *a};
      mpp_source_ = "vendor:aperio.MPP";
      return;
    }
    std::string ph = prop("philips.DICOM_PIXEL_SPACING");  // "\"0.000243\" \"0.000243\"" in mm
    if (!ph.empty()) {
      std::string cleaned;
      for (char c : ph) cleaned += c == '"' ? ' ' : c;
      char* end = nullptr;
      double a = std::strtod(cleaned.c_str(), &end);
      double b = std::strtod(end, nullptr);
      if (a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b)) {
        mpp_ = std::array<double, 2>{b * 1000, a * 1000};  // (row, column) spacing -> (x, y)
        mpp_source_ = "vendor:philips.DICOM_PIXEL_SPACING";
        return;
      }
    }
    mpp_source_ = "none";
  }

  std::string path_, vendor_;
  std::unique_ptr<openslide_t, OsrClose> osr_;
  std::vector<SlideLevel> levels_;
  std::map<std::string, std::string> props_;
  std::vector<std::string> assoc_;
  std::optional<std::array<double, 2>> mpp_;
  std::string mpp_source_ = "none";
};

}  // namespace

bool slide_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (is_dir) return false;
  std::string e = lower_ext(path);
  static const char* exts[] = {".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif"};
  bool ext_ok = false;
  for (const char* x : exts) ext_ok = ext_ok || e == x;
  if (!ext_ok) return false;
  return openslide_detect_vendor(path.c_str()) != nullptr;  // a tiled TIFF is a slide; a strip TIFF is a 2D image
}

std::unique_ptr<Slide> slide_open(const std::string& path, const ReadOptions& opts) {
  return std::make_unique<OpenSlideSlide>(path, opts);
}

}  // namespace medfm::io::detail

// The format table. Order matters: the first row whose can_read accepts a path opens it
// (a tiled TIFF is a slide before it is a 2D image; a directory is a DICOM series).
#include "medfm/io/formats.h"

#include <ATen/ATen.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/io/readers.h"

namespace medfm::io {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Image2D: return "image";
    case Kind::Volume: return "volume";
    case Kind::Slide: return "slide";
  }
  return "?";
}

const std::vector<Format>& formats() {
  static const std::vector<Format> table = [] {
    std::vector<Format> t;
#ifdef MEDFM_HAVE_NIFTI
    t.push_back({"nifti", Kind::Volume, detail::nifti_can_read, detail::nifti_read, nullptr});
#endif
#ifdef MEDFM_HAVE_GDCM
    t.push_back({"dicom", Kind::Volume, detail::dicom_can_read, detail::dicom_read, nullptr});
    t.push_back({"dicom-series", Kind::Volume, detail::dicom_series_can_read, detail::dicom_series_read, nullptr});
#endif
#ifdef MEDFM_HAVE_OPENSLIDE
    t.push_back({"slide", Kind::Slide, detail::slide_can_read, nullptr, detail::slide_open});
#endif
#ifdef MEDFM_HAVE_OPENCV
    t.push_back({"image2d", Kind::Image2D, detail::image2d_can_read, detail::image2d_read, nullptr});
#endif
    return t;
  }();
  return table;
}

std::string read_head(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::string b(n, '\0');
  f.read(b.data(), static_cast<std::streamsize>(n));
  b.resize(static_cast<size_t>(f.gcount()));
  return b;
}

std::string lower_ext(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  auto dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return {};
  std::string e = name.substr(dot);
  if (e == ".gz" && dot > 0) {
    auto d2 = name.rfind('.', dot - 1);
    if (d2 != std::string::npos && d2 > 0) return name.substr(d2);
  }
  return e;
}

const Format* detect_format(const std::string& path) {
  struct stat st {};
  MEDFM_CHECK_T(IoError, ::stat(path.c_str(), &st) == 0, "cannot open '", path, "': no such file or directory");
  bool is_dir = S_ISDIR(st.st_mode);
  // Only regular files and folders: a FIFO would block the read and a device (/dev/zero) never ends.
  MEDFM_CHECK_T(IoError, is_dir || S_ISREG(st.st_mode), "cannot read '", path,
                "': not a regular file or folder (a FIFO, socket or device)");
  std::string head;
  if (!is_dir) {
    std::ifstream f(path, std::ios::binary);
    MEDFM_CHECK_T(IoError, f.good(), "cannot open '", path, "': permission denied or unreadable");
    head = read_head(path, 1024);
  }
  for (const auto& f : formats())
    if (f.can_read(path, head, is_dir)) return &f;
  return nullptr;
}

namespace {
std::string a_kind(Kind k) { return k == Kind::Image2D ? "a 2D image" : std::string("a ") + kind_name(k); }

const Format& require_format(const std::string& path) {
  const Format* f = detect_format(path);
  std::error_code ec;
  MEDFM_CHECK_T(FormatError, !std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > 0,
                "'", path, "' is empty (0 bytes)");
  if (!f) {
    std::string names;
    for (const auto& r : formats()) names += (names.empty() ? "" : ", ") + std::string(r.name);
    throw FormatError("unsupported format: '" + path + "' is none of the formats this build reads (" + names + ")");
  }
  return *f;
}
}  // namespace

namespace {

void apply_nonfinite(Image& img, ReadOptions::NonFinite policy, const std::string& path) {
  if (policy == ReadOptions::NonFinite::Keep || !at::isFloatingType(img.pixels.scalar_type())) return;
  auto bad = img.pixels.isfinite().logical_not_();
  const int64_t n = bad.sum().item<int64_t>();
  if (n == 0) return;
  MEDFM_CHECK_T(FormatError, policy != ReadOptions::NonFinite::Error, "'", path, "' holds ", n,
                " NaN or infinite value(s) of ", img.pixels.numel(),
                "; read.nonfinite=zero replaces them with 0 (or mask them first)");
  img.pixels = img.pixels.masked_fill(bad, 0);
  img.meta["nonfinite_replaced"] = std::to_string(n);
}

}  // namespace

Image open_image(const std::string& path, const ReadOptions& opts) {
  const Format& f = require_format(path);
  MEDFM_CHECK_T(FormatError, f.kind != Kind::Slide, "'", path, "' is a whole-slide image; open it with open_slide");
  Image img = f.read(path, opts);
  img.check_layout();
  apply_nonfinite(img, opts.nonfinite, path);
  return img;
}

Image open_volume(const std::string& path, const ReadOptions& opts) {
  const Format& f = require_format(path);
  MEDFM_CHECK_T(FormatError, f.kind == Kind::Volume, "'", path, "' is ", a_kind(f.kind), ", not a volume");
  Image img = f.read(path, opts);
  img.check_layout();
  apply_nonfinite(img, opts.nonfinite, path);
  return img;
}

std::unique_ptr<Slide> open_slide(const std::string& path, const ReadOptions& opts) {
  const Format* found = detect_format(path);
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && (!found || found->kind != Kind::Slide)) {
    // A whole-slide name (any vendor's, TIFF-based or not) that OpenSlide cannot open: damaged or cut short.
    const std::string e = lower_ext(path);
    for (const char* x : {".svs", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif"})
      MEDFM_CHECK_T(FormatError, e != x, "'", path, "' has a whole-slide image's name but OpenSlide cannot open it ",
                    "(damaged, truncated, or missing its companion files)");
  }
  const Format& f = require_format(path);
  if (f.kind != Kind::Slide) {
#ifdef MEDFM_HAVE_OPENSLIDE
    const std::string head = read_head(path, 4);
    // OpenSlide recognises no vendor in it; for a TIFF that means damaged, truncated or untiled.
    MEDFM_CHECK_T(FormatError, f.kind != Kind::Image2D || (head != std::string("II*\0", 4) && head != std::string("MM\0*", 4) &&
                                   head != std::string("II+\0", 4) && head != std::string("MM\0+", 4)),
                  "'", path, "' is a TIFF that OpenSlide cannot open as a whole-slide image (damaged, truncated, or "
                  "a plain untiled TIFF: read it as an image)");
#endif
    throw FormatError("'" + path + "' is " + a_kind(f.kind) + ", not a whole-slide image");
  }
  return f.open(path, opts);
}

void ReadSpec::bind(Config& cfg) {
  cfg.bind("read.series", series, "DICOM directory: which series (SeriesNumber, #index or SeriesInstanceUID)");
  cfg.bind("read.repair", repair, "DICOM series repairs to allow: duplicates, gaps, tilt");
  cfg.bind("read.slice_spacing", slice_spacing, "DICOM series slice step: mean | first-pair");
  cfg.bind("read.mpp", mpp, "slides: um/px instead of the file's (0: the file's)");
  cfg.bind("read.show_phi", show_phi, "read patient-identifying DICOM attributes");
  cfg.bind("read.nonfinite", nonfinite,
           "NaN / Inf in float images: error | zero (replaced by 0 before any preprocessing) | keep");
  cfg.bind("read.isolate_codecs", isolate_codecs,
           "decode compressed DICOM in a child process (a codec crash fails that file, not the run)");
}

ReadOptions ReadSpec::options() const {
  ReadOptions o;
  o.include_phi = show_phi;
  o.isolate_codecs = isolate_codecs;
  if (nonfinite == "error") o.nonfinite = ReadOptions::NonFinite::Error;
  else if (nonfinite == "zero") o.nonfinite = ReadOptions::NonFinite::Zero;
  else if (nonfinite == "keep") o.nonfinite = ReadOptions::NonFinite::Keep;
  else throw ConfigError("read.nonfinite: '" + nonfinite + "' is not error, zero or keep");
  o.series_uid = series;
  for (const auto& r : repair) {
    if (r == "duplicates") o.repair.drop_duplicates = true;
    else if (r == "gaps") o.repair.allow_gaps = true;
    else if (r == "tilt") o.repair.allow_tilt = true;
    else throw ConfigError("read: unknown repair '" + r + "' (duplicates, gaps, tilt)");
  }
  MEDFM_CHECK_T(ConfigError, std::isfinite(mpp) && mpp >= 0, "read: um/px ", mpp, " must be positive (0: the file's)");
  if (mpp > 0) o.mpp = mpp;
  MEDFM_CHECK_T(ConfigError, slice_spacing == "mean" || slice_spacing == "first-pair", "read: slice spacing '",
                slice_spacing, "' is not mean or first-pair");
  o.slice_spacing = slice_spacing == "first-pair" ? SliceSpacing::FirstPair : SliceSpacing::Mean;
  return o;
}

}  // namespace medfm::io

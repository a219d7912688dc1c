// The format table (OpenSlide-style): each row has a cheap `can_read` (extension + magic bytes,
// no decoding) and an `open`. open_image / open_volume / open_slide pick the first row that
// accepts the path. Rows exist only for the optional parts compiled in (MEDFM_HAVE_*).
// Errors: IoError (missing/unreadable), FormatError (bytes that break the format, naming the file
// and the problem), NotImplemented (valid file medfm cannot serve), ConfigError (bad options).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "medfm/core/image.h"
#include "medfm/io/slide.h"

namespace medfm {
class Config;
}

namespace medfm::io {

enum class Kind { Image2D, Volume, Slide };
const char* kind_name(Kind k);

// What a DICOM series may repair instead of failing; each is opt-in and logged.
struct SeriesRepair {
  bool drop_duplicates = false;  // identical positions: keep the first file (by name) at each position
  bool allow_gaps = false;       // non-uniform slice spacing: keep the mean spacing, warn
  bool allow_tilt = false;       // gantry tilt: keep a sheared affine (k axis = actual slice step)
};

// How a DICOM series' slice step is measured. Mean: the extent between the first and last slice
// over the number of steps (robust to positions rounded to 0.1 mm). FirstPair: the distance between
// the first two slices, as dcm2niix does.
enum class SliceSpacing { Mean, FirstPair };

struct ReadOptions {
  bool include_phi = false;         // DICOM: copy identifying attributes into Image::phi
  std::string series_uid;           // DICOM directory: which series (required when there are several)
  SeriesRepair repair;
  SliceSpacing slice_spacing = SliceSpacing::Mean;
  std::optional<double> mpp;        // slides: override um/px (x = y)
  bool dicom_fast_native = true;    // uncompressed DICOM read directly; false forces GDCM (tests compare)
  bool isolate_codecs = true;       // compressed DICOM decoded in a child process (core/isolate.h)
  // NaN / +-Inf in float pixels: kept as they are (what `info` reports), an error naming how many,
  // or replaced by 0 (what preprocessing that cannot take them is given).
  enum class NonFinite { Keep, Error, Zero } nonfinite = NonFinite::Keep;
};

// ReadOptions as config keys (read.*), so every command reads files the same way:
//   read.series, read.repair ["duplicates", "gaps", "tilt"], read.slice_spacing mean|first-pair,
//   read.mpp (0: the file's), read.show_phi, read.isolate_codecs, read.nonfinite error|zero|keep.
struct ReadSpec {
  std::string series;
  std::vector<std::string> repair;
  std::string slice_spacing = "mean";
  double mpp = 0;
  bool show_phi = false;
  bool isolate_codecs = true;
  std::string nonfinite = "error";  // error | zero | keep
  void bind(Config& cfg);
  ReadOptions options() const;  // ConfigError for an unknown repair / slice spacing or a bad um/px
};

struct Format {
  const char* name;  // "nifti", "dicom", "dicom-series", "slide", "image2d"
  Kind kind;
  // Cheap: extension and the first bytes (`head`, up to 1024, empty for directories).
  bool (*can_read)(const std::string& path, const std::string& head, bool is_dir);
  Image (*read)(const std::string& path, const ReadOptions& opts);                     // Image2D/Volume
  std::unique_ptr<Slide> (*open)(const std::string& path, const ReadOptions& opts);   // Slide
};

const std::vector<Format>& formats();
// First row that accepts `path`; nullptr when none does. Throws IoError when it does not exist.
const Format* detect_format(const std::string& path);

// Any non-slide file (2D image or volume) or a DICOM directory.
Image open_image(const std::string& path, const ReadOptions& opts = {});
// Volumes only (NIfTI, DICOM file or series); throws FormatError for other kinds.
Image open_volume(const std::string& path, const ReadOptions& opts = {});
std::unique_ptr<Slide> open_slide(const std::string& path, const ReadOptions& opts = {});

// Helpers shared by the readers.
std::string read_head(const std::string& path, size_t n = 1024);  // first n bytes ("" if unreadable)
std::string lower_ext(const std::string& path);                   // ".nii.gz", ".dcm", ".png" ...

}  // namespace medfm::io

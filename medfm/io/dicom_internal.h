// Internal to the DICOM reader files (dicom_gdcm.cpp, dicom_native.cpp, dicom_series.cpp).
#pragma once
#include <ATen/Tensor.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "medfm/core/image.h"
#include "medfm/io/series_geometry.h"

namespace medfm::io::detail {

struct Header {
  SliceHeader slice;
  std::string series_uid, series_number, modality;
  // Pixel module, for the native fast path (binary values are native-endian once GDCM has read them).
  std::string ts_uid, photometric;
  int64_t bits_allocated = 0, bits_stored = 0, pixel_rep = 0, spp = 1, planar_config = 0;
  double rescale_slope = 1, rescale_intercept = 0;
  double spacing_between_slices = 0;
  std::vector<double> window_center, window_width;
  std::map<std::string, std::string> phi;
  // Multi-frame placement (dicom_frames.cpp). Enhanced objects (PS3.3 C.7.6.16): each frame's plane
  // from the per-frame functional groups, else the shared ones (empty when the object has none), and
  // each frame's rescale when frames differ (empty when one rescale applies: rescale_slope above).
  std::vector<SliceHeader> frame_planes;
  std::vector<double> frame_slope, frame_intercept;
  std::vector<double> grid_frame_offsets;  // RT dose GridFrameOffsetVector (3004,000C), mm
  uint32_t frame_increment_pointer = 0;    // FrameIncrementPointer as (group << 16 | element); 0: absent
};

struct Decoded {
  Header header;
  at::Tensor pixels;  // [C, F, Y, X] stored values (MONOCHROME1 inverted, colour -> RGB), before rescale
  double slope = 1, intercept = 0;
  std::string stored_dtype, transfer_syntax, photometric;
};

// GDCM: header only (stops at the pixel data); FormatError when unparsable.
Header read_header_only(const std::string& path, bool include_phi);
// GDCM: full decode (every transfer syntax GDCM supports); compressed pixel data decoded in a child
// process when `isolate` (core/isolate.h), whose messages go to the debug log.
Decoded decode_file(const std::string& path, bool include_phi, bool isolate);

// Native fast path (dicom_native.cpp), see there. nullopt: not the simple case, use GDCM.
bool native_eligible(const Header& h);
// Tensor type of the stored samples (unsigned 16/32-bit widen: LibTorch 1.13 has no such types) and
// the Decoded fields that follow from the header alone (no pixels).
at::ScalarType native_stored_type(const Header& h);
Decoded native_metadata(const Header& h);
// The PixelData value of a native (uncompressed, not deflated) file: the element header with value
// length `vl` found in the file's tail, its bytes in a per-thread buffer (valid until the next call
// on this thread) and how many the file really holds (fewer when truncated). nullopt: not found.
struct PixelValue {
  const char* data;
  uint64_t available;
};
std::optional<PixelValue> find_pixel_value(const std::string& path, uint64_t vl, bool implicit, bool big_endian);
std::optional<Decoded> decode_native_fast(const std::string& path, const Header& h);
// Decodes one single-frame file straight into dst [1, Y, X] (its type: the stored type widened, or
// float32 when rescale), applying MONOCHROME1 inversion and, when rescale, slope / intercept.
// false: not the simple case (nothing written that matters), use GDCM.
bool decode_native_into(const std::string& path, const Header& h, bool rescale, at::Tensor dst);

// Where the frames of one file go. Spatial: frames are planes of one volume, grouped by position
// (several frames at each position, in file order, are time points of a 4D volume); `plan` orders
// and checks the positions like a series and gives the affine. Otherwise frames are time points
// (cine) or of an unknown kind, and `axis` says which.
struct FramePlacement {
  bool spatial = true;
  std::string axis;                          // meta frame_axis: "space", "space+time", "time", ...
  SeriesPlan plan;                           // spatial: slices index `groups`
  std::vector<std::vector<size_t>> groups;   // spatial: frame indices at each distinct position
};
FramePlacement place_frames(const Header& h, const SeriesRepair& repair, SliceSpacing spacing, const std::string& path);
// The affine of a single plane (or a legacy stack along the normal) from the top-level attributes.
Mat4 single_file_affine(const Header& h);
// [C, F, Y, X] decoded frames -> the image's pixels, geometry, n_timepoints and meta (frame_axis,
// repairs), rescaled (per frame when the frames differ).
void place_pixels(Image& img, const Decoded& d, const FramePlacement& fp);

void fill_common(Image& img, const Decoded& d);
// Stored values -> rescaled (float32) values; unchanged when slope 1 and intercept 0.
at::Tensor rescaled(const at::Tensor& px, double slope, double intercept);

// Runs fn(i) for i in [0, n) on up to at::get_num_threads() std::threads; rethrows the first error.
void parallel_files(size_t n, const std::function<void(size_t)>& fn);

}  // namespace medfm::io::detail

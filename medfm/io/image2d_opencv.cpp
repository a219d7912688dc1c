#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <optional>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/io/image2d.h"

namespace medfm::io {

namespace {
// The file's own samples (8/16-bit, 1/3/4 channels, BGR order); FormatError naming it otherwise.
cv::Mat imread_unchanged(const std::string& path) {
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH | cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw FormatError("image: cannot decode '" + path + "': " + e.what());
  }
  MEDFM_CHECK_T(FormatError, !m.empty(), "image: cannot decode '", path, "' (truncated, corrupt or unsupported)");
  return m;
}

// What the header says the decoded image will be, read without decoding (nullopt when the header
// cannot be parsed: the decoder then reports the damage itself).
struct HeaderDims {
  uint64_t width = 0, height = 0, channels = 0, bytes_per_sample = 1;
};

uint64_t be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::optional<HeaderDims> png_dims(std::istream& f) {
  unsigned char b[26];
  if (!f.read(reinterpret_cast<char*>(b), 26) || std::memcmp(b + 12, "IHDR", 4) != 0) return std::nullopt;
  const unsigned type = b[25];
  // gray, -, RGB, palette (3 or 4 with transparency), gray+alpha (decoded as 4), RGBA
  static const uint64_t kChannels[7] = {1, 0, 3, 4, 4, 0, 4};
  if (type > 6 || kChannels[type] == 0) return std::nullopt;
  return HeaderDims{be(b + 16, 4), be(b + 20, 4), kChannels[type], b[24] == 16 ? 2u : 1u};
}

// The first start-of-frame segment (SOF0..SOF15 but DHT, JPG, DAC), found by skipping segments.
std::optional<HeaderDims> jpeg_dims(std::istream& f) {
  f.seekg(2);
  for (int segments = 0; segments < 4096; ++segments) {
    int c = f.get();
    if (c != 0xFF) return std::nullopt;
    while (c == 0xFF) c = f.get();  // fill bytes
    if (c == EOF) return std::nullopt;
    if (c == 0x01 || (c >= 0xD0 && c <= 0xD9)) continue;  // standalone markers
    unsigned char len[2];
    if (!f.read(reinterpret_cast<char*>(len), 2)) return std::nullopt;
    const uint64_t n = be(len, 2);
    if (n < 2) return std::nullopt;
    if (c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC) {
      unsigned char sof[6];
      if (n < 8 || !f.read(reinterpret_cast<char*>(sof), 6)) return std::nullopt;
      if (be(sof + 1, 2) == 0) return std::nullopt;  // height given later (DNL)
      return HeaderDims{be(sof + 3, 2), be(sof + 1, 2), sof[5] == 1 ? 1u : 3u, sof[0] > 8 ? 2u : 1u};
    }
    f.seekg(static_cast<std::streamoff>(n - 2), std::ios::cur);
  }
  return std::nullopt;
}

std::optional<HeaderDims> bmp_dims(std::istream& f) {
  unsigned char b[30];
  if (!f.read(reinterpret_cast<char*>(b), 30)) return std::nullopt;
  const auto w = static_cast<int32_t>(le(b + 18, 4)), h = static_cast<int32_t>(le(b + 22, 4));
  const uint64_t bpp = le(b + 28, 2);
  if (w <= 0 || h == 0 || h == INT32_MIN) return std::nullopt;
  return HeaderDims{static_cast<uint64_t>(w), static_cast<uint64_t>(h < 0 ? -static_cast<int64_t>(h) : h),
                    bpp == 32 ? 4u : 3u, 1};
}

// The first IFD of a classic TIFF: ImageWidth, ImageLength, SamplesPerPixel, BitsPerSample.
std::optional<HeaderDims> tiff_dims(std::istream& f) {
  unsigned char h[8];
  if (!f.read(reinterpret_cast<char*>(h), 8)) return std::nullopt;
  const bool little = h[0] == 'I';
  auto num = [&](const unsigned char* p, int n) { return little ? le(p, n) : be(p, n); };
  f.seekg(static_cast<std::streamoff>(num(h + 4, 4)));
  unsigned char cnt[2];
  if (!f.read(reinterpret_cast<char*>(cnt), 2)) return std::nullopt;
  HeaderDims d{0, 0, 1, 1};
  uint64_t bits = 8, bits_at = 0;  // BitsPerSample inline, or the offset of several values
  for (uint64_t i = 0, n = num(cnt, 2); i < n; ++i) {
    unsigned char e[12];
    if (!f.read(reinterpret_cast<char*>(e), 12)) return std::nullopt;
    const uint64_t tag = num(e, 2), type = num(e + 2, 2), count = num(e + 4, 4);
    const uint64_t value = type == 3 ? num(e + 8, 2) : num(e + 8, 4);  // SHORT or LONG, first value
    if (tag == 256) d.width = value;
    if (tag == 257) d.height = value;
    if (tag == 277) d.channels = value;
    if (tag == 258) (count * 2 <= 4 ? bits : bits_at) = value;
  }
  if (bits_at) {  // the first of several values (equal in what OpenCV decodes)
    unsigned char b[2];
    f.seekg(static_cast<std::streamoff>(bits_at));
    if (!f.read(reinterpret_cast<char*>(b), 2)) return std::nullopt;
    bits = num(b, 2);
  }
  d.bytes_per_sample = bits > 8 ? 2 : 1;
  if (d.width == 0 || d.height == 0 || d.channels == 0) return std::nullopt;
  return d;
}

std::optional<HeaderDims> header_dims(const std::string& path, const std::string& fmt) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  if (fmt == "png") return png_dims(f);
  if (fmt == "jpeg") return jpeg_dims(f);
  if (fmt == "bmp") return bmp_dims(f);
  if (fmt == "tiff") return tiff_dims(f);
  return std::nullopt;
}
}  // namespace

}  // namespace medfm::io

// ---- format-table row: native pixels and type ------------------------------------------------
#include "medfm/io/readers.h"

namespace medfm::io::detail {

namespace {
std::string magic_format(const std::string& head) {
  auto starts = [&](const char* m, size_t n) { return head.size() >= n && std::memcmp(head.data(), m, n) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "png";
  if (starts("\xFF\xD8\xFF", 3)) return "jpeg";
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return "tiff";
  if (starts("BM", 2)) return "bmp";
  return {};
}
}  // namespace

bool image2d_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (is_dir) return false;
  return !magic_format(head).empty();
}

Image image2d_read(const std::string& path, const ReadOptions&) {
  std::string fmt = magic_format(read_head(path, 16));
  MEDFM_CHECK_T(FormatError, !fmt.empty(), "image: '", path, "' is not PNG, JPEG, TIFF or BMP");
  // Held at once: the decoded Mat and the tensor (16-bit: widened to int32 for the unsigned values).
  if (auto d = header_dims(path, fmt)) {
    const double samples = static_cast<double>(d->width) * static_cast<double>(d->height) * static_cast<double>(d->channels);
    check_memory(samples * (d->bytes_per_sample == 2 ? 2 + 4 : 1 + 1),
                 "decoding the " + std::to_string(d->width) + "x" + std::to_string(d->height) + " image '" + path + "'");
  }
  cv::Mat m = imread_unchanged(path);
  Image img;
  img.format = fmt;
  at::ScalarType st;
  switch (m.depth()) {
    case CV_8U: st = at::kByte, img.stored_dtype = "uint8"; break;
    case CV_16U: st = at::kShort, img.stored_dtype = "uint16"; break;
    default: throw NotImplemented("image: '" + path + "' has a sample type other than 8/16-bit unsigned");
  }
  const int ch = m.channels();
  MEDFM_CHECK_T(FormatError, ch == 1 || ch == 3 || ch == 4, "image: '", path, "' has ", ch, " channels");
  if (!m.isContinuous()) m = m.clone();
  // HWC BGR(A) -> CHW RGB(A), one channel at a time into the final tensor (no intermediate copy).
  auto hwc = torch::from_blob(m.data, {m.rows, m.cols, ch}, st);
  auto t = at::empty({ch, m.rows, m.cols}, at::TensorOptions(st == at::kShort ? at::kInt : at::kByte));
  static const int kFromBgr[4] = {2, 1, 0, 3};
  for (int c = 0; c < ch; ++c) t[c].copy_(hwc.select(2, ch == 1 ? 0 : kFromBgr[c]));
  if (st == at::kShort) t.bitwise_and_(0xFFFF);  // int16 bits -> the unsigned value
  img.pixels = t;
  return img;
}

}  // namespace medfm::io::detail

#include "medfm/core/atomic_file.h"

namespace medfm::io {

namespace {
void write_encoded(const std::string& path, const at::Tensor& chw, const char* ext, const std::vector<int>& params) {
  MEDFM_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3) && chw.scalar_type() == at::kByte,
              "image: expected uint8 [1|3,H,W] to write '", path, "'");
  auto hwc = chw.permute({1, 2, 0}).contiguous();  // [C,H,W] -> [H,W,C]
  cv::Mat m(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), hwc.size(2) == 3 ? CV_8UC3 : CV_8UC1,
            hwc.data_ptr<uint8_t>());
  cv::Mat bgr;
  if (hwc.size(2) == 3) cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  else bgr = m;
  std::vector<uchar> buf;
  MEDFM_CHECK_T(IoError, cv::imencode(ext, bgr, buf, params), "image: cannot encode '", path, "'");
  AtomicFile out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary);
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    MEDFM_CHECK_T(IoError, f.good(), "image: cannot write '", path, "'");
  }
  out.commit();
}
}  // namespace

void write_png(const std::string& path, const at::Tensor& chw) { write_encoded(path, chw, ".png", {}); }

void write_jpeg(const std::string& path, const at::Tensor& chw, int quality) {
  MEDFM_CHECK_T(ConfigError, quality >= 1 && quality <= 100, "jpeg: quality ", quality, " outside 1..100");
  write_encoded(path, chw, ".jpg", {cv::IMWRITE_JPEG_QUALITY, quality});
}

}  // namespace medfm::io

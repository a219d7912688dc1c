#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

#include "medfm/core/error.h"
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
  cv::Mat m = imread_unchanged(path);
  Image img;
  img.format = fmt;
  at::ScalarType st;
  switch (m.depth()) {
    case CV_8U: st = at::kByte, img.stored_dtype = "uint8"; break;
    case CV_16U: st = at::kShort, img.stored_dtype = "uint16"; break;
    default: throw NotImplemented("image: '" + path + "' has a sample type other than 8/16-bit unsigned");
  }
  cv::Mat c;
  switch (m.channels()) {
    case 1: c = m; break;
    case 3: cv::cvtColor(m, c, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(m, c, cv::COLOR_BGRA2RGBA); break;
    default: throw FormatError("image: '" + path + "' has " + std::to_string(m.channels()) + " channels");
  }
  if (!c.isContinuous()) c = c.clone();
  // HWC -> CHW, always copied out of the Mat: for one channel the permuted view already counts as
  // contiguous, and contiguous() would return a tensor over the Mat's memory, freed on return.
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, st).permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);
  t = widen_unsigned(t, img.stored_dtype);
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

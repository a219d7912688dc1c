#include <torch/torch.h>

#include <cstdio>

#include "medfm/core/error.h"
#include "medfm/data/transforms.h"
#include "medfm/data/volume_transforms.h"
#include "medfm/extract/source.h"
#include "medfm/io/formats.h"

namespace medfm::extract {
namespace {

std::string fmt3(const Vec3& v) {
  char b[96];
  std::snprintf(b, sizeof b, "%.4f,%.4f,%.4f", v[0], v[1], v[2]);
  return b;
}
std::string fmt2(double a, double b) {
  char s[64];
  std::snprintf(s, sizeof s, "%.4f,%.4f", a, b);
  return s;
}


class FileSource : public Source {
 public:
  FileSource(InputList inputs, SampleOptions o)
      : in_(std::move(inputs)), o_(std::move(o)), plane_(data::parse_plane(o_.plane)),
        range_(data::parse_slice_range(o_.slices)) {
    if (o_.intensity.window.empty()) o_.intensity.window = o_.preprocess.intensity;
  }

  size_t size() const override { return in_.size(); }
  std::string id(size_t i) const override { return in_.ids[i]; }
  std::string path(size_t i) const override { return in_.paths[i]; }

  std::vector<Sample> load(size_t i) const override {
    const std::string& p = in_.paths[i];
    try {
      return load_checked(i);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.find(p) != std::string::npos) throw;
      rethrow_with(e, p + ": " + what);
    }
  }

 private:
  [[noreturn]] static void rethrow_with(const Error& e, const std::string& msg) {
    if (dynamic_cast<const IoError*>(&e)) throw IoError(msg);
    if (dynamic_cast<const FormatError*>(&e)) throw FormatError(msg);
    if (dynamic_cast<const ConfigError*>(&e)) throw ConfigError(msg);
    if (dynamic_cast<const NotImplemented*>(&e)) throw NotImplemented(msg);
    throw Error(msg);
  }

  std::map<std::string, std::string> base_meta(size_t i) const {
    std::map<std::string, std::string> m{{"path", in_.paths[i]}};
    for (size_t c = 0; c < in_.extra_names.size(); ++c) m[in_.extra_names[c]] = in_.extra[c][i];
    return m;
  }

  // [C,H,W] float in model units -> the backbone's input (resize, crop; normalise unless z-scored).
  at::Tensor finish(at::Tensor chw, bool normalised) const {
    if (chw.size(0) == 1) chw = chw.expand({3, -1, -1});
    auto x = chw;
    const auto& pre = o_.preprocess;
    if (pre.resize_size > 0) x = data::resize_shorter(x, pre.resize_size, pre.interpolation);
    x = data::center_crop(x, pre.input_size);
    if (!normalised) x = data::normalize(x, pre.mean, pre.std);
    return x.contiguous();
  }

  // A 2D source in its stored dtype -> the backbone's input: converted to float strip by strip
  // while resizing (a large image is never held whole as float), or cropped before converting.
  at::Tensor finish_rows(const at::Tensor& src, const data::RowsToFloat& to_float, bool normalised) const {
    const auto& pre = o_.preprocess;
    return finish(pre.resize_size > 0 ? data::resize_shorter_rows(src, pre.resize_size, pre.interpolation, to_float)
                                      : to_float(data::center_crop(src, pre.input_size)),
                  normalised);
  }

  std::vector<Sample> load_checked(size_t i) const {
    const std::string& p = in_.paths[i];
    const io::Format* f = io::detect_format(p);
    MEDFM_CHECK_T(FormatError, f, "not a format medfm reads");
    if (f->kind == io::Kind::Slide)
      throw NotImplemented(
          "a whole-slide image: slides are embedded tile by tile by the whole-slide pipeline, never decoded "
          "whole (give embed 2D images, DICOM files or volumes)");
    Image img = io::open_image(p, o_.read);
    const bool volume = img.is_volume && img.pixels.dim() == 4 && img.pixels.size(1) > 1;
    if (!volume) return {load_2d(i, img)};
    return load_volume(i, img);
  }

  Sample load_2d(size_t i, const Image& img) const {
    at::Tensor chw = img.pixels.dim() == 4 ? img.pixels.select(1, 0) : img.pixels;  // [C,1,Y,X] -> [C,Y,X]
    Sample s{{}, in_.ids[i], base_meta(i)};
    if (is_display_image(img)) {
      const std::string& dtype = img.stored_dtype;
      s.image = finish_rows(chw, [&](const at::Tensor& rows) { return data::display_to_rgb01(rows, dtype); }, false);
      return s;
    }
    auto map = data::intensity_map(img, o_.intensity);
    s.meta["intensity"] = map.describe();
    s.image = finish_rows(chw.narrow(0, 0, 1), [&](const at::Tensor& rows) { return data::apply_intensity(rows, map); },
                          map.zscore);
    return s;
  }

  std::vector<Sample> load_volume(size_t i, const Image& img) const {
    MEDFM_CHECK_T(NotImplemented, !img.is_time_series() && (img.channels() == 1 || img.channels() == 3),
                  "a volume with ", img.channels(), " channels / ", img.n_timepoints,
                  " time points (embed takes one 3D volume per input)");
    Image ras = data::reorient(img, "RAS");
    const bool colour = ras.channels() == 3;
    data::IntensityMap map;
    if (!colour) map = data::intensity_map(ras, o_.intensity);
    const auto idx = data::slice_indices(data::n_slices(ras, plane_), range_);
    MEDFM_CHECK_T(ConfigError, !idx.empty(), "slices '", o_.slices, "' select none of the ",
                  data::n_slices(ras, plane_), " ", data::plane_name(plane_), " slices");
    std::vector<Sample> out;
    out.reserve(idx.size());
    for (int64_t k : idx) {
      auto sl = data::extract_slice(ras, plane_, k);
      at::Tensor v = colour ? data::display_to_rgb01(sl.pixels, ras.stored_dtype) : data::apply_intensity(sl.pixels, map);
      if (o_.square_pixels) v = data::square_pixels(v, sl.row_mm, sl.col_mm);
      Sample s{finish(v, map.zscore), in_.ids[i] + "@" + data::plane_name(plane_) + ":" + std::to_string(k),
               base_meta(i)};
      s.meta["source_id"] = in_.ids[i];
      s.meta["plane"] = data::plane_name(plane_);
      s.meta["slice_index"] = std::to_string(k);
      s.meta["slice_position_ras"] = fmt3(sl.center_ras);
      s.meta["pixel_spacing_mm"] = fmt2(sl.row_mm, sl.col_mm);
      if (!colour) s.meta["intensity"] = map.describe();
      out.push_back(std::move(s));
    }
    return out;
  }

  InputList in_;
  SampleOptions o_;
  data::Plane plane_;
  data::SliceRange range_;
};

}  // namespace

bool is_display_image(const Image& img) {
  return img.format == "png" || img.format == "jpeg" || img.format == "tiff" || img.format == "bmp" ||
         img.channels() >= 3;
}

std::unique_ptr<Source> make_file_source(InputList inputs, SampleOptions options) {
  return std::make_unique<FileSource>(std::move(inputs), std::move(options));
}

}  // namespace medfm::extract

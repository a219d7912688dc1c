// A whole-slide image (pyramid). Coordinates are in the level-0 frame; `level` 0 is full
// resolution. Implementations must be safe to call from many threads at once.
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace medfm::io {

struct SlideLevel {
  int64_t width = 0, height = 0;
  double downsample = 1.0;
};

class Slide {
 public:
  virtual ~Slide() = default;
  virtual const std::string& path() const = 0;
  virtual const std::string& vendor() const = 0;        // "aperio", "generic-tiff" ...
  virtual const std::vector<SlideLevel>& levels() const = 0;
  virtual const std::map<std::string, std::string>& properties() const = 0;
  virtual std::vector<std::string> associated_images() const = 0;
  // Micrometres per pixel at level 0 (x, y) and where it came from: "openslide" (openslide.mpp-*),
  // "tiff-resolution", "vendor:<field>", "override"; nullopt / "none" when unknown.
  virtual std::optional<std::array<double, 2>> mpp() const = 0;
  virtual const std::string& mpp_source() const = 0;
  // RGB uint8 [3, h, w] of the w x h region whose top-left is (x, y) in level-0 coordinates, read
  // at `level`. Transparent pixels (outside the scanned area) come back white. Thread-safe.
  virtual at::Tensor read_region(int64_t x, int64_t y, int level, int64_t w, int64_t h) const = 0;
  // Same into a caller buffer of h*w*3 bytes, interleaved RGB (HWC); avoids the tensor.
  virtual void read_region_rgb(int64_t x, int64_t y, int level, int64_t w, int64_t h, uint8_t* out) const = 0;
  // Level whose downsample is the largest not above `downsample` (OpenSlide's rule).
  virtual int best_level_for_downsample(double downsample) const = 0;
};

}  // namespace medfm::io

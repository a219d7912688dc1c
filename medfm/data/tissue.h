// Tissue detection on a whole-slide image, at a physical resolution (um/px), never on a whole
// level decoded at once: the level at or finer than `mask_mpp` (or up to 10% coarser) is read in
// blocks, each block area-averaged to the mask grid and turned into the per-pixel planes the
// method needs, so slides of any size (beyond OpenCV's 32,767-pixel limits) cost ~5 bytes per
// mask pixel.
//
// Methods (CLAM-style unless noted):
//   "hsv"   saturation (HSV) median-blurred, thresholded (a fixed value, CLAM's 8 by default:
//           faint stroma counts; or Otsu, which keeps only strongly stained tissue), closed
//           morphologically; white background has no saturation.
//   "otsu"  Otsu on luminance (tissue darker than the background).
//   a TorchScript segmentation model (`model`, for users who have one): called on the slide at
//           mask_mpp as float32 [1, 3, H, W] RGB in [0, 1]; it returns [1, 1, h, w] (tissue where
//           the output > model_threshold: 0 for logits, 0.5 for probabilities) or [1, C, h, w]
//           (tissue where the argmax is not class 0), resized to H x W (nearest) when h x w differ.
//           The model replaces the colour rules, blur and closing; contours and area filters stay.
// The two colour methods first exclude black pixels (value < black_value: slide edges, black pen) and pen ink (pure
// green, blue or red marker colours, which no H&E or IHC stain produces), then find contours with
// holes and keep those whose area (minus holes) is at least min_tissue_mm2; holes of at least
// min_hole_mm2 are kept (the largest max_holes). The mask is redrawn from the kept contours.
// Thread-compatible; reads through Slide, which is thread-safe.
#pragma once
#include <ATen/Tensor.h>

#include <array>
#include <string>
#include <vector>

#include "medfm/io/slide.h"

namespace medfm::data {

struct TissueOptions {
  std::string method = "hsv";     // hsv | otsu
  double mask_mpp = 8.0;          // um/px of the mask
  int saturation_threshold = 8;   // hsv: a fixed threshold 1..255 (CLAM's default 8), or 0 = Otsu
  double median_um = 56;          // median blur window (odd pixels at mask_mpp, at least 3)
  double close_um = 32;           // morphological closing kernel (0: none)
  double min_tissue_mm2 = 0.05;   // smallest tissue region kept (area minus its holes)
  double min_hole_mm2 = 0.01;     // smallest hole kept
  int max_holes = 16;             // per region, the largest ones
  int black_value = 50;           // HSV value below this is not tissue
  bool exclude_pen = true;
  std::string model;              // TorchScript segmentation model (replaces method when set)
  double model_threshold = 0;     // one-channel models: tissue where the output > this
  std::string effective_method() const { return model.empty() ? method : "model"; }
};

using Ring = std::vector<std::array<double, 2>>;  // closed ring, level-0 pixel coordinates (x, y)
struct TissueRegion {
  Ring outer;
  std::vector<Ring> holes;
  double area_mm2 = 0;  // outer minus holes
};

struct TissueMask {
  at::Tensor mask;             // uint8 [H, W], 1 = tissue, on the mask grid
  double scale_x = 1, scale_y = 1;  // level-0 pixels per mask pixel
  double mpp_x = 0, mpp_y = 0;      // um per mask pixel
  int level = 0;               // pyramid level read
  std::vector<TissueRegion> regions;
  double tissue_fraction() const;  // of the mask
};

// Throws ConfigError (bad options; a slide without um/px: give read.mpp), IoError / FormatError
// (the slide's own errors).
TissueMask detect_tissue(const io::Slide& slide, const TissueOptions& opts);

// The whole slide at level-0 / downsample (>= 1): RGB uint8 [3, ceil(H0/ds), ceil(W0/ds)], read
// block by block from the level at or finer than that and area-averaged (for masks, thumbnails,
// heatmaps). Memory: the output plus one block.
at::Tensor read_downsampled(const io::Slide& slide, double downsample);
// read_downsampled with the longer side at most `size` px; *downsample receives the factor used.
at::Tensor read_thumbnail(const io::Slide& slide, int size, double* downsample);

// Pixel classes used by detect_tissue, exposed for tests: RGB uint8 [3,H,W] -> bool [H,W].
at::Tensor pen_ink(const at::Tensor& rgb);

// The regions as a GeoJSON FeatureCollection (level-0 pixel coordinates; one Polygon per region,
// holes as inner rings; QuPath imports it as annotations classified "Tissue").
std::string tissue_geojson(const TissueMask& t, const std::string& slide_name);

// Regions of interest from a GeoJSON file (Polygon / MultiPolygon features, level-0 pixels, as
// QuPath exports them). Throws FormatError naming the file.
std::vector<TissueRegion> read_geojson_regions(const std::string& path);

}  // namespace medfm::data

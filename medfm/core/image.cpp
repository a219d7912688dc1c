#include "medfm/core/image.h"

#include "medfm/core/error.h"

namespace medfm {

std::array<int64_t, 3> Image::size() const {
  MEDFM_ASSERT(pixels.defined(), "image without pixels");
  if (is_volume) {
    MEDFM_ASSERT(pixels.dim() == 4, "volume pixels must be [C,Z,Y,X]");
    return {pixels.size(3), pixels.size(2), pixels.size(1)};
  }
  MEDFM_ASSERT(pixels.dim() == 3, "image pixels must be [C,Y,X]");
  return {pixels.size(2), pixels.size(1), 1};
}

int64_t Image::leading() const { return pixels.size(0); }

int64_t Image::channels() const { return pixels.size(0) / n_timepoints; }

void Image::check_layout() const {
  MEDFM_ASSERT(pixels.defined(), "image without pixels");
  MEDFM_ASSERT(pixels.dim() == (is_volume ? 4 : 3), "pixels ", pixels.sizes(), " do not match is_volume=", is_volume);
  MEDFM_ASSERT(n_timepoints >= 1 && pixels.size(0) % n_timepoints == 0, "leading axis ", pixels.size(0),
               " is not a multiple of ", n_timepoints, " time points");
}

at::Tensor widen_unsigned(const at::Tensor& raw, const std::string& stored_dtype) {
  if (stored_dtype == "uint16") {
    MEDFM_ASSERT(raw.scalar_type() == at::kShort, "uint16 samples must come as int16");
    return raw.to(at::kInt).bitwise_and(0xFFFF);
  }
  if (stored_dtype == "uint32") {
    MEDFM_ASSERT(raw.scalar_type() == at::kInt, "uint32 samples must come as int32");
    return raw.to(at::kLong).bitwise_and(int64_t{0xFFFFFFFF});
  }
  return raw;
}

}  // namespace medfm

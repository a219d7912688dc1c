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

int64_t Image::channels() const { return pixels.size(0); }

}  // namespace medfm

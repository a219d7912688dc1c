// What `medfm info` reports, as JSON (schema: tests/cases/README.md). Library code so that tests
// and other front ends get exactly what the CLI prints.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "medfm/core/image.h"
#include "medfm/io/slide.h"

namespace medfm::io {

struct DescribeOptions {
  bool stats = false;     // min / max / mean / std of all pixel values (float64)
  bool show_phi = false;  // include identifying DICOM attributes (only if the reader kept them)
};

nlohmann::json describe_image(const Image& img, const DescribeOptions& opts);
nlohmann::json describe_slide(const Slide& slide, const DescribeOptions& opts);
// The human-readable form of a describe_* result (with "path" set): one "key  value" row a line.
std::string describe_text(const nlohmann::json& j);
// {min, max, mean, std (population)} over every finite element, computed in float64 a chunk at a
// time (never the whole array as float64); float tensors add nan_count and inf_count. All four are
// null when no value is finite.
nlohmann::json pixel_stats(const at::Tensor& t);
// World position (RAS mm) of the volume's centre of mass, weights = value - global minimum summed
// over channels (non-finite values weigh 0), one z slab at a time; nullopt when the volume is constant. Checks voxel order and affine together.
std::optional<Vec3> world_centroid(const Image& img);

}  // namespace medfm::io

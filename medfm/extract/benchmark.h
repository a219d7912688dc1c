// Backbone throughput, as `medfm demo` reports it: a fixed batch of real-image crops, one warm-up
// pass, then timed passes. Not thread-safe (uses the global RNG for crops).
#pragma once
#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/extract/source.h"
#include "medfm/models/backbone.h"

namespace medfm::extract {

// n crops of pre.input_size px from the images (display values; images smaller than the crop are
// resized up first), normalised with pre's mean/std, cycling through the images: [n,3,S,S].
at::Tensor random_crops(const InputList& images, const PreprocessSpec& pre, int n, uint64_t seed);

// Images per second of each timed pass (after one warm-up pass), sorted ascending.
std::vector<double> time_backbone(models::Backbone& backbone, const at::Tensor& batch, int repeats, c10::Device device);

}  // namespace medfm::extract

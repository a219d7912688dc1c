// Image set -> embeddings -> HDF5 feature store. Decoding and preprocessing run on `workers`
// threads that stay ahead of the model (a bounded window of 4 batches), so the backbone never
// waits on a decode when workers keep up. Output rows follow the input order.
#pragma once
#include <functional>
#include <map>
#include <string>

#include <c10/core/Device.h>

#include "medfm/core/preprocess_spec.h"
#include "medfm/extract/image_list.h"
#include "medfm/models/backbone.h"

namespace medfm::extract {

struct EmbedOptions {
  std::string out_path;
  int batch_size = 32;
  int workers = 2;
  c10::Device device = c10::Device(c10::kCPU);
  std::map<std::string, std::string> attrs;  // provenance written as HDF5 root attributes
};

struct EmbedStats {
  int64_t n_images = 0;
  int64_t dim = 0;
  double seconds = 0;
  double images_per_s() const { return seconds > 0 ? n_images / seconds : 0; }
};

// progress(done, total) is called after every batch, on the calling thread.
EmbedStats embed_images(models::Backbone& backbone, const ImageList& images, const PreprocessSpec& pre,
                        const EmbedOptions& opts, const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace medfm::extract

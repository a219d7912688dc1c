// Source -> embeddings -> HDF5 feature store. Inputs are loaded (decoded, windowed, sliced,
// resized) on `workers` threads that stay ahead of the model by a bounded number of samples, so
// the backbone never waits on a decode when workers keep up. Batches span inputs; output rows
// follow the input order (a volume's slices in slice order).
#pragma once
#include <c10/core/Device.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "medfm/data/tiling.h"
#include "medfm/extract/source.h"
#include "medfm/models/backbone.h"

namespace medfm {
class Config;
}

namespace medfm::extract {

struct EmbedOptions {
  std::string out_path;
  int batch_size = 32;
  int workers = 2;
  // Samples the loader threads may hold ready ahead of the model (0: four batches).
  size_t prefetch_samples = 0;
  bool keep_going = false;  // record unreadable inputs in /skipped and go on (else the first stops the run)
  c10::Device device = c10::Device(c10::kCPU);
  std::map<std::string, std::string> attrs;  // provenance written as HDF5 root attributes
  // Slides: the tile grid whose rows the source yields, written as /coords (no /ids).
  std::optional<data::TileGrid> coords;
  std::string coords_name;
};

struct Skipped {
  std::string id, path, reason;
};

struct EmbedStats {
  int64_t n_inputs = 0;   // inputs embedded
  int64_t n_samples = 0;  // rows written (slices count one each)
  int64_t dim = 0;
  double seconds = 0;
  double load_seconds = 0;   // summed over workers: read, decode, window, resize
  double model_seconds = 0;  // forward passes
  double write_seconds = 0;  // HDF5 appends and commit
  std::vector<Skipped> skipped;
  double samples_per_s() const { return seconds > 0 ? n_samples / seconds : 0; }
};

// progress(inputs_done, inputs_total, samples_done) after every batch, on the calling thread.
// Throws the first input's error (naming the file) unless keep_going; Error when nothing could be
// embedded. The output is written atomically: no file unless the run completes.
EmbedStats embed_source(models::Backbone& backbone, const Source& source, const EmbedOptions& opts,
                        const std::function<void(int64_t, int64_t, int64_t)>& progress = {});

// `medfm embed` as data: what to read, how, and where to write; bind() exposes it as embed.* and
// read.* config keys. run() loads the inputs, embeds them with `model` (its preprocessing) and
// writes `out` with the given provenance attributes.
struct EmbedJob {
  std::string input, out;
  int batch_size = 32, workers = 2;
  bool keep_going = false;
  SampleOptions sample;
  io::ReadSpec read;

  void bind(Config& cfg);
  EmbedStats run(models::LoadedBackbone& model, c10::Device device, std::map<std::string, std::string> attrs,
                 const std::function<void(int64_t, int64_t, int64_t)>& progress = {});
};

}  // namespace medfm::extract

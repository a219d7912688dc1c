// Model choice shared by `embed` and `demo`: registry name or TorchScript file, weights, layout,
// preprocessing overrides; bound to config keys model.* and preprocess.*.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "medfm/core/config.h"
#include "medfm/core/preprocess_spec.h"
#include "medfm/models/backbone.h"

namespace medfm::cli {

struct ModelOptions {
  std::string name = "vit_small_patch16_224";
  std::string weights;
  std::string torchscript;
  std::string layout = "auto";
  bool allow_partial = false;
  int seed = 0;
  // Preprocessing overrides; unset values (-1 / empty) keep the registry's.
  int resize = -1, crop = -1;
  std::string interpolation;
  std::vector<double> mean, std;
};

void add_model_options(CLI::App& app, ModelOptions& m);
void bind_model(Config& cfg, ModelOptions& m);
// Re-applies the model flags given on the command line over config values.
void reapply_model_flags(CLI::App& app, ModelOptions& m, const ModelOptions& typed);

struct PreparedModel {
  std::unique_ptr<models::Backbone> backbone;
  PreprocessSpec preprocess;
  std::map<std::string, std::string> provenance;  // model, weights, sha256, layout, load report
};
PreparedModel prepare_model(const ModelOptions& m);

}  // namespace medfm::cli

// Named models: architecture + preprocessing + the checkpoint layout their released weights use,
// so `medfm embed --model NAME --weights FILE` needs nothing else. One table in registry.cpp.
#pragma once
#include <string>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/models/vit.h"

namespace medfm::models {

struct ModelEntry {
  std::string name;
  std::string description;      // which published model, which release
  std::string weights_layout;   // layout of the released weights (see checkpoint.h)
  VitConfig vit;
  PreprocessSpec preprocess;
};

const std::vector<ModelEntry>& model_registry();
// Throws ConfigError naming the unknown model and listing the known ones.
const ModelEntry& find_model(const std::string& name);

}  // namespace medfm::models

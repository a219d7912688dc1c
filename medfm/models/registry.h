// Named models: architecture + preprocessing + the checkpoint layout their released weights use,
// so `medfm embed --model NAME --weights FILE` needs nothing else. One table in registry.cpp.
// create_model builds any entry, with architecture overrides ("depth" -> "2", "num_classes" -> "5").
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/models/vit.h"

namespace medfm::models {

struct ModelEntry {
  std::string name;
  std::string description;      // which published model, which release
  std::string family;           // architecture family: "vit" (the `vit` field describes it)
  std::string weights_layout;   // layout of the released weights (see checkpoint.h)
  VitConfig vit;
  PreprocessSpec preprocess;
};

const std::vector<ModelEntry>& model_registry();
// Throws ConfigError naming the unknown model and listing the known ones.
const ModelEntry& find_model(const std::string& name);

// A registry row as JSON (name, description, family, weights_layout, arch, embedding_dim, pool,
// preprocess), as `medfm models --json` lists it.
nlohmann::json describe_entry(const ModelEntry& e);

// Architecture overrides by key, values as text. ViT keys: img_size, patch_size, in_chans,
// embed_dim, depth, num_heads, mlp_hidden, qkv_bias, reg_tokens, no_embed_class, init_values,
// norm_eps, pool, num_classes, drop_path_rate, mask_token, grad_checkpointing. Unknown keys and
// unparsable values throw ConfigError naming them.
using ModelOverrides = std::map<std::string, std::string>;
VitConfig apply_vit_overrides(VitConfig cfg, const ModelOverrides& overrides);
// Parses "key=value" items (config lists) into overrides; throws ConfigError on a malformed item.
ModelOverrides parse_overrides(const std::vector<std::string>& items);

// Builds entry `name` (seeded random init from the global generator). The module's concrete type
// follows the family: a VitImpl for "vit" (see create_vit).
std::shared_ptr<torch::nn::Module> create_model(const std::string& name, const ModelOverrides& overrides = {});
// init=false: see VitImpl (for a model whose weights are all loaded next).
Vit create_vit(const std::string& name, const ModelOverrides& overrides = {}, bool init = true);

}  // namespace medfm::models

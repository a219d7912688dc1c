// Loading the ViT golden fixtures written by scripts/golden/*.py: config (safetensors metadata,
// JSON) and parameters under the "p." prefix. Throws when a fixture is missing, so a test never
// passes without its reference.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "medfm/core/safetensors.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/vit.h"

namespace medfm::models::golden {

struct Case {
  VitConfig cfg;
  StateDict params;
  SafeTensors file;
};

inline Case load_case(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("missing fixture " + path + ": run scripts/golden");
  auto st = SafeTensors::open(path);
  auto j = nlohmann::json::parse(st.metadata().at("config"));
  VitConfig c;
  c.img_size = j["img_size"];
  c.patch_size = j["patch_size"];
  c.embed_dim = j["embed_dim"];
  c.depth = j["depth"];
  c.num_heads = j["num_heads"];
  c.mlp_hidden = j["mlp_hidden"];
  c.qkv_bias = j["qkv_bias"];
  c.class_token = j["class_token"];
  c.reg_tokens = j["reg_tokens"];
  c.no_embed_class = j["no_embed_class"];
  c.init_values = j["init_values"];
  c.swiglu = j["swiglu"];
  c.norm_eps = j["norm_eps"];
  c.pool = parse_pool(j["pool"]);
  c.num_classes = j.value("num_classes", 0);
  StateDict p;
  for (const auto& e : st.entries())
    if (e.name.rfind("p.", 0) == 0) p[e.name.substr(2)] = st.get(e.name);
  c.mask_token = p.count("mask_token") > 0;
  return {c, p, st};
}

}  // namespace medfm::models::golden

// Loading the ViT golden fixtures written by scripts/golden/*.py: config (safetensors metadata,
// JSON) and parameters under the "p." prefix. Throws when a fixture is missing, so a test never
// passes without its reference.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

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

// Largest difference relative to the reference's largest magnitude.
inline double max_rel(const torch::Tensor& got, const torch::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item<double>();
}

// A trained parameter against the reference run's: within 1e-4 relative. The key third of a qkv
// bias gets no gradient (softmax ignores a shift shared by all keys): what it receives is rounding
// noise, which Adam scales to lr-sized steps in either direction, so there it is only bounded by
// twice the learning rates summed over the run.
inline void expect_trained_param(const std::string& name, const torch::Tensor& got, const torch::Tensor& want,
                                 double lr_sum) {
  if (name.find("attn.qkv.bias") == std::string::npos) {
    EXPECT_LT(max_rel(got, want), 1e-4) << name;
    return;
  }
  const int64_t d = got.size(0) / 3;
  EXPECT_LT(max_rel(got.narrow(0, 0, d), want.narrow(0, 0, d)), 1e-4) << name << " (q)";
  EXPECT_LT(max_rel(got.narrow(0, 2 * d, d), want.narrow(0, 2 * d, d)), 1e-4) << name << " (v)";
  EXPECT_LE((got.narrow(0, d, d) - want.narrow(0, d, d)).abs().max().item<double>(), 2 * lr_sum) << name << " (k)";
}

}  // namespace medfm::models::golden

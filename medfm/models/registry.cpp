#include "medfm/models/registry.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::models {
namespace {

VitConfig vit(int patch, int dim, int depth, int heads, int mlp_hidden, int img = 224) {
  VitConfig c;
  c.patch_size = patch;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  c.mlp_hidden = mlp_hidden;
  c.img_size = img;
  return c;
}
VitConfig with(VitConfig c, double init_values, int reg = 0, bool no_embed_class = false, Pool pool = Pool::kCls) {
  c.init_values = init_values;
  c.reg_tokens = reg;
  c.no_embed_class = no_embed_class;
  c.pool = pool;
  return c;
}
VitConfig swiglu(VitConfig c) {
  c.swiglu = true;
  return c;
}
VitConfig eps(VitConfig c, double e) {
  c.norm_eps = e;
  return c;
}
PreprocessSpec pre(int resize, int crop, std::array<double, 3> mean = {0.485, 0.456, 0.406},
                   std::array<double, 3> std = {0.229, 0.224, 0.225}) {
  PreprocessSpec p;
  p.resize_size = resize;
  p.input_size = crop;
  p.mean = mean;
  p.std = std;
  return p;
}

std::vector<ModelEntry> build() {
  const PreprocessSpec imagenet = pre(224, 224);
  const PreprocessSpec dino_eval = pre(256, 224);  // DINOv2 / Prov-GigaPath: resize 256, crop 224
  const VitConfig giant14 = swiglu(vit(14, 1536, 40, 24, 8192));
  std::vector<ModelEntry> t = {
      // Plain timm architectures (random init or any timm checkpoint).
      {"vit_tiny_patch16_224", "ViT-Ti/16 (timm)", "vit", "timm", vit(16, 192, 12, 3, 768), imagenet},
      {"vit_small_patch16_224", "ViT-S/16 (timm)", "vit", "timm", vit(16, 384, 12, 6, 1536), imagenet},
      {"vit_base_patch16_224", "ViT-B/16 (timm; torchvision vit_b_16 weights load too)", "vit", "timm",
       vit(16, 768, 12, 12, 3072), imagenet},
      {"vit_large_patch16_224", "ViT-L/16 (timm)", "vit", "timm", vit(16, 1024, 24, 16, 4096), imagenet},
      {"vit_huge_patch14_224", "ViT-H/14 (timm)", "vit", "timm", vit(14, 1280, 32, 16, 5120), imagenet},
      // Pathology foundation models.
      {"uni", "UNI (MahmoodLab/UNI): ViT-L/16, LayerScale", "vit", "timm",
       with(vit(16, 1024, 24, 16, 4096), 1e-5), imagenet},
      {"uni2_h", "UNI2-h (MahmoodLab/UNI2-h): ViT-H/14-style 1536x24, SwiGLU, 8 registers", "vit", "timm",
       with(swiglu(vit(14, 1536, 24, 24, 8192)), 1e-5, 8, true), imagenet},
      {"virchow", "Virchow (paige-ai/Virchow): ViT-H/14, SwiGLU, cls+mean embedding", "vit", "timm",
       with(swiglu(vit(14, 1280, 32, 16, 6832)), 1e-5, 0, false, Pool::kClsMean), imagenet},
      {"virchow2", "Virchow2 (paige-ai/Virchow2): ViT-H/14, SwiGLU, 4 registers, cls+mean embedding", "vit", "timm",
       with(swiglu(vit(14, 1280, 32, 16, 6832)), 1e-5, 4, false, Pool::kClsMean), imagenet},
      {"phikon", "Phikon (owkin/phikon): HF ViTModel ViT-B/16", "vit", "hf_vit", eps(vit(16, 768, 12, 12, 3072), 1e-12),
       imagenet},
      {"phikon_v2", "Phikon-v2 (owkin/phikon-v2): HF Dinov2Model ViT-L/16", "vit", "hf_dinov2",
       with(vit(16, 1024, 24, 16, 4096), 1e-5), imagenet},
      {"h_optimus_0", "H-optimus-0 (bioptimus): ViT-g/14, SwiGLU, 4 registers", "vit", "timm",
       with(giant14, 1e-5, 4, true),
       pre(224, 224, {0.707223, 0.578729, 0.703617}, {0.211883, 0.230117, 0.177517})},
      {"prov_gigapath", "Prov-GigaPath tile encoder: ViT-g/16, SwiGLU", "vit", "timm",
       with(swiglu(vit(16, 1536, 40, 24, 8192)), 1e-5), dino_eval},
      // General-purpose DINOv2 (native 518 px grid; any input multiple of 14 works).
      {"dinov2_vits14", "DINOv2 ViT-S/14", "vit", "dinov2", with(vit(14, 384, 12, 6, 1536, 518), 1e-5), dino_eval},
      {"dinov2_vitb14", "DINOv2 ViT-B/14", "vit", "dinov2", with(vit(14, 768, 12, 12, 3072, 518), 1e-5), dino_eval},
      {"dinov2_vitl14", "DINOv2 ViT-L/14", "vit", "dinov2", with(vit(14, 1024, 24, 16, 4096, 518), 1e-5), dino_eval},
      {"dinov2_vitg14", "DINOv2 ViT-g/14 (SwiGLU)", "vit", "dinov2", with(swiglu(vit(14, 1536, 40, 24, 8192, 518)), 1e-5),
       dino_eval},
      {"dinov2_vits14_reg", "DINOv2 ViT-S/14 with 4 registers", "vit", "dinov2",
       with(vit(14, 384, 12, 6, 1536, 518), 1e-5, 4, true), dino_eval},
      {"dinov2_vitb14_reg", "DINOv2 ViT-B/14 with 4 registers", "vit", "dinov2",
       with(vit(14, 768, 12, 12, 3072, 518), 1e-5, 4, true), dino_eval},
      {"dinov2_vitl14_reg", "DINOv2 ViT-L/14 with 4 registers", "vit", "dinov2",
       with(vit(14, 1024, 24, 16, 4096, 518), 1e-5, 4, true), dino_eval},
      {"dinov2_vitg14_reg", "DINOv2 ViT-g/14 with 4 registers (SwiGLU)", "vit", "dinov2",
       with(swiglu(vit(14, 1536, 40, 24, 8192, 518)), 1e-5, 4, true), dino_eval},
      // Radiology and ophthalmology.
      {"rad_dino", "RAD-DINO (microsoft/rad-dino): HF Dinov2Model ViT-B/14, chest X-ray", "vit", "hf_dinov2",
       with(vit(14, 768, 12, 12, 3072, 518), 1e-5), pre(518, 518, {0.5307, 0.5307, 0.5307}, {0.2583, 0.2583, 0.2583})},
      {"retfound", "RETFound (MAE ViT-L/16), mean of patch tokens", "vit", "timm",
       with(vit(16, 1024, 24, 16, 4096), 0.0, 0, false, Pool::kMean), imagenet},
  };
  return t;
}

template <typename T>
T parse_as(const std::string& key, const std::string& v) {
  std::istringstream is(v);
  T out{};
  is >> out;
  MEDFM_CHECK_T(ConfigError, !is.fail() && is.eof(), "models: override ", key, "=", v, " is not a valid ",
                std::is_same_v<T, int> ? "integer" : "number");
  return out;
}
bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw ConfigError("models: override " + key + "=" + v + " is not true or false");
}

}  // namespace

nlohmann::json describe_entry(const ModelEntry& e) {
  const auto& v = e.vit;
  const auto& p = e.preprocess;
  return {{"name", e.name},
          {"description", e.description},
          {"family", e.family},
          {"weights_layout", e.weights_layout},
          {"arch",
           {{"img_size", v.img_size}, {"patch_size", v.patch_size}, {"embed_dim", v.embed_dim}, {"depth", v.depth},
            {"num_heads", v.num_heads}, {"mlp_hidden", v.mlp_hidden}, {"swiglu", v.swiglu},
            {"qkv_bias", v.qkv_bias}, {"reg_tokens", v.reg_tokens}, {"no_embed_class", v.no_embed_class},
            {"init_values", v.init_values}, {"norm_eps", v.norm_eps}}},
          {"embedding_dim", v.out_dim()},
          {"pool", pool_name(v.pool)},
          {"preprocess",
           {{"resize", p.resize_size}, {"crop", p.input_size}, {"interpolation", p.interpolation}, {"mean", p.mean},
            {"std", p.std}, {"intensity", p.intensity}}}};
}

VitConfig apply_vit_overrides(VitConfig c, const ModelOverrides& overrides) {
  for (const auto& [k, v] : overrides) {
    if (k == "img_size") c.img_size = parse_as<int>(k, v);
    else if (k == "patch_size") c.patch_size = parse_as<int>(k, v);
    else if (k == "in_chans") c.in_chans = parse_as<int>(k, v);
    else if (k == "embed_dim") c.embed_dim = parse_as<int>(k, v);
    else if (k == "depth") c.depth = parse_as<int>(k, v);
    else if (k == "num_heads") c.num_heads = parse_as<int>(k, v);
    else if (k == "mlp_hidden") c.mlp_hidden = parse_as<int>(k, v);
    else if (k == "qkv_bias") c.qkv_bias = parse_bool(k, v);
    else if (k == "reg_tokens") c.reg_tokens = parse_as<int>(k, v);
    else if (k == "no_embed_class") c.no_embed_class = parse_bool(k, v);
    else if (k == "init_values") c.init_values = parse_as<double>(k, v);
    else if (k == "norm_eps") c.norm_eps = parse_as<double>(k, v);
    else if (k == "pool") c.pool = parse_pool(v);
    else if (k == "num_classes") c.num_classes = parse_as<int>(k, v);
    else if (k == "drop_path_rate") c.drop_path_rate = parse_as<double>(k, v);
    else if (k == "mask_token") c.mask_token = parse_bool(k, v);
    else if (k == "grad_checkpointing") c.grad_checkpointing = parse_bool(k, v);
    else
      throw ConfigError("models: unknown override '" + k +
                        "' (img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_hidden, qkv_bias, "
                        "reg_tokens, no_embed_class, init_values, norm_eps, pool, num_classes, drop_path_rate, "
                        "mask_token, grad_checkpointing)");
  }
  return c;
}

ModelOverrides parse_overrides(const std::vector<std::string>& items) {
  ModelOverrides out;
  for (const auto& it : items) {
    auto eq = it.find('=');
    MEDFM_CHECK_T(ConfigError, eq != std::string::npos && eq > 0, "models: override '", it,
                  "' is not key=value");
    out[it.substr(0, eq)] = it.substr(eq + 1);
  }
  return out;
}

std::shared_ptr<torch::nn::Module> create_model(const std::string& name, const ModelOverrides& overrides) {
  const auto& e = find_model(name);
  MEDFM_ASSERT(e.family == "vit", "unknown family ", e.family);
  return create_vit(name, overrides).ptr();
}

Vit create_vit(const std::string& name, const ModelOverrides& overrides, bool init) {
  const auto& e = find_model(name);
  MEDFM_CHECK_T(ConfigError, e.family == "vit", "models: '", name, "' is not a ViT");
  return Vit(apply_vit_overrides(e.vit, overrides), init);
}

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> table = build();
  return table;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry())
    if (e.name == name) return e;
  std::string known;
  for (const auto& e : model_registry()) known += (known.empty() ? "" : ", ") + e.name;
  throw ConfigError("models: unknown model '" + name + "'; known: " + known);
}

}  // namespace medfm::models

#include "medfm/models/checkpoint.h"
#include "medfm/models/registry.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/core/mapped_file.h"
#include "medfm/core/safetensors.h"
#include "medfm/models/weights_file.h"

namespace medfm::models {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool any_key(const StateDict& sd, const std::string& needle) {
  for (const auto& kv : sd)
    if (kv.first.find(needle) != std::string::npos) return true;
  return false;
}

bool is_ignorable(const std::string& k) {
  static const char* kPrefixes[] = {"head.", "heads.", "pooler.", "classifier.", "fc_norm.", "decoder",
                                    "mask_token", "embeddings.mask_token", "dino_head.", "ibot_head."};
  for (const char* p : kPrefixes)
    if (starts_with(k, p)) return true;
  return false;
}

// Strips a wrapper prefix shared by every key that is not ignorable.
StateDict strip_wrappers(StateDict sd) {
  static const char* kWrappers[] = {"module.", "backbone.", "model.", "trunk.", "dinov2.", "vit."};
  bool changed = true;
  while (changed) {
    changed = false;
    for (const char* w : kWrappers) {
      bool all = !sd.empty();
      for (const auto& kv : sd) all = all && starts_with(kv.first, w);
      if (!all) continue;
      StateDict out;
      for (auto& kv : sd) out[kv.first.substr(std::string(w).size())] = kv.second;
      sd = std::move(out);
      changed = true;
    }
  }
  // HF classification models keep "classifier.*" beside "vit.*"/"dinov2.*"; DINO / DINOv2 training
  // checkpoints keep their heads beside "backbone.*".
  for (const char* w : {"backbone.", "dinov2.", "vit."}) {
    bool all = true;
    for (const auto& kv : sd) all = all && (starts_with(kv.first, w) || is_ignorable(kv.first));
    if (!all) continue;
    StateDict out;
    for (auto& kv : sd) out[starts_with(kv.first, w) ? kv.first.substr(std::string(w).size()) : kv.first] = kv.second;
    sd = std::move(out);
  }
  return sd;
}

// Folds original-DINOv2 register layout (pos_embed covers cls only) into timm's no_embed_class.
void fold_registers(StateDict& out, const VitConfig& cfg) {
  if (!cfg.no_embed_class || !out.count("reg_token") || !out.count("pos_embed") || !out.count("cls_token")) return;
  auto pos = out["pos_embed"];
  const int64_t n_grid = static_cast<int64_t>(cfg.grid()) * cfg.grid();
  const int64_t g = static_cast<int64_t>(std::llround(std::sqrt(double(pos.size(1) - 1))));
  if (pos.size(1) == n_grid || g * g != pos.size(1) - 1) return;  // already patch-only
  out["cls_token"] = out["cls_token"] + pos.narrow(1, 0, 1);
  out["pos_embed"] = pos.narrow(1, 1, pos.size(1) - 1).contiguous();
}

StateDict from_hf(const StateDict& sd, bool vit, std::vector<std::string>* ignored) {
  static const std::regex kLayer(R"(^encoder\.layer\.(\d+)\.(.+)$)");
  StateDict out;
  std::map<std::string, std::map<std::string, at::Tensor>> qkv;  // "blocks.i.attn.qkv.weight" -> q/k/v
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (k == "embeddings.cls_token") out["cls_token"] = v;
    else if (k == "embeddings.register_tokens") out["reg_token"] = v;
    else if (k == "embeddings.position_embeddings") out["pos_embed"] = v;
    else if (starts_with(k, "embeddings.patch_embeddings.projection."))
      out["patch_embed.proj." + k.substr(std::string("embeddings.patch_embeddings.projection.").size())] = v;
    else if (starts_with(k, "layernorm.")) out["norm." + k.substr(10)] = v;
    else if (std::regex_match(k, m, kLayer)) {
      const std::string b = "blocks." + m[1].str() + ".";
      std::string rest = m[2].str();
      auto suffix = rest.substr(rest.rfind('.') + 1);  // weight | bias | lambda1
      auto stem = rest.substr(0, rest.rfind('.'));
      static const std::map<std::string, std::string> kDino = {
          {"norm1", "norm1"}, {"norm2", "norm2"}, {"attention.output.dense", "attn.proj"},
          {"mlp.fc1", "mlp.fc1"}, {"mlp.fc2", "mlp.fc2"}, {"mlp.weights_in", "mlp.fc1"},
          {"mlp.weights_out", "mlp.fc2"}, {"layer_scale1", "ls1"}, {"layer_scale2", "ls2"}};
      static const std::map<std::string, std::string> kVit = {
          {"layernorm_before", "norm1"}, {"layernorm_after", "norm2"}, {"attention.output.dense", "attn.proj"},
          {"intermediate.dense", "mlp.fc1"}, {"output.dense", "mlp.fc2"}};
      const auto& table = vit ? kVit : kDino;
      if (stem == "attention.attention.query" || stem == "attention.attention.key" ||
          stem == "attention.attention.value") {
        qkv[b + "attn.qkv." + suffix][stem.substr(stem.rfind('.') + 1)] = v;
      } else if (auto it = table.find(stem); it != table.end()) {
        out[b + it->second + "." + (suffix == "lambda1" ? "gamma" : suffix)] = v;
      } else {
        out[k] = v;  // left for the unexpected-key report
      }
    } else if (is_ignorable(k)) {
      ignored->push_back(k);
    } else {
      out[k] = v;
    }
  }
  for (auto& [name, parts] : qkv) {
    MEDFM_CHECK(parts.size() == 3, "checkpoint: ", name, " is missing one of query/key/value");
    out[name] = torch::cat({parts["query"], parts["key"], parts["value"]}, 0);
  }
  return out;
}

StateDict from_torchvision(const StateDict& sd, std::vector<std::string>* ignored) {
  static const std::regex kLayer(R"(^encoder\.layers\.encoder_layer_(\d+)\.(.+)$)");
  static const std::map<std::string, std::string> kMap = {
      {"ln_1", "norm1"}, {"ln_2", "norm2"}, {"self_attention.out_proj", "attn.proj"},
      {"mlp.0", "mlp.fc1"}, {"mlp.3", "mlp.fc2"}, {"mlp.linear_1", "mlp.fc1"}, {"mlp.linear_2", "mlp.fc2"}};
  StateDict out;
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (k == "class_token") out["cls_token"] = v;
    else if (k == "encoder.pos_embedding") out["pos_embed"] = v;
    else if (starts_with(k, "conv_proj.")) out["patch_embed.proj." + k.substr(10)] = v;
    else if (starts_with(k, "encoder.ln.")) out["norm." + k.substr(11)] = v;
    else if (std::regex_match(k, m, kLayer)) {
      const std::string b = "blocks." + m[1].str() + ".";
      const std::string rest = m[2].str();
      if (rest == "self_attention.in_proj_weight") out[b + "attn.qkv.weight"] = v;
      else if (rest == "self_attention.in_proj_bias") out[b + "attn.qkv.bias"] = v;
      else {
        auto stem = rest.substr(0, rest.rfind('.'));
        auto it = kMap.find(stem);
        out[it == kMap.end() ? k : b + it->second + rest.substr(rest.rfind('.'))] = v;
      }
    } else if (is_ignorable(k)) {
      ignored->push_back(k);
    } else {
      out[k] = v;
    }
  }
  return out;
}

StateDict from_dinov2(const StateDict& sd, const VitConfig& cfg, std::vector<std::string>* ignored,
                      const std::set<std::string>& keep) {
  static const std::regex kChunked(R"(^blocks\.\d+\.(\d+)\.(.+)$)");
  static const std::regex kSwiGlu(R"(^(blocks\.\d+\.mlp\.)(w12|w3)\.(weight|bias)$)");
  StateDict out;
  for (const auto& [key, v] : sd) {
    std::string k = key;
    std::smatch m;
    if (std::regex_match(k, m, kChunked)) k = "blocks." + m[1].str() + "." + m[2].str();
    if (std::regex_match(k, m, kSwiGlu)) k = m[1].str() + (m[2].str() == "w12" ? "fc1." : "fc2.") + m[3].str();
    if (k == "register_tokens") k = "reg_token";
    if (is_ignorable(k) && !keep.count(k)) {
      ignored->push_back(key);
      continue;
    }
    out[k] = v;
  }
  fold_registers(out, cfg);
  return out;
}

}  // namespace

WeightsLayout parse_layout(const std::string& s) {
  if (s == "auto") return WeightsLayout::kAuto;
  if (s == "timm") return WeightsLayout::kTimm;
  if (s == "dinov2") return WeightsLayout::kDinov2;
  if (s == "hf_dinov2") return WeightsLayout::kHfDinov2;
  if (s == "hf_vit") return WeightsLayout::kHfVit;
  if (s == "torchvision") return WeightsLayout::kTorchvision;
  throw ConfigError("checkpoint: unknown weights layout '" + s +
                    "' (auto, timm, dinov2, hf_dinov2, hf_vit, torchvision)");
}

std::string layout_name(WeightsLayout l) {
  switch (l) {
    case WeightsLayout::kAuto: return "auto";
    case WeightsLayout::kTimm: return "timm";
    case WeightsLayout::kDinov2: return "dinov2";
    case WeightsLayout::kHfDinov2: return "hf_dinov2";
    case WeightsLayout::kHfVit: return "hf_vit";
    case WeightsLayout::kTorchvision: return "torchvision";
  }
  return "?";
}

WeightsLayout detect_layout(const StateDict& raw) {
  auto sd = strip_wrappers(raw);
  if (any_key(sd, "encoder.layers.encoder_layer_")) return WeightsLayout::kTorchvision;
  if (any_key(sd, "embeddings.patch_embeddings.")) {
    return any_key(sd, "layernorm_before") ? WeightsLayout::kHfVit : WeightsLayout::kHfDinov2;
  }
  static const std::regex kChunked(R"(^blocks\.\d+\.\d+\..+$)");
  for (const auto& kv : sd) {
    if (kv.first == "register_tokens" || kv.first == "mask_token" || std::regex_match(kv.first, kChunked) ||
        kv.first.find(".mlp.w12.") != std::string::npos)
      return WeightsLayout::kDinov2;
  }
  return WeightsLayout::kTimm;
}

StateDict to_timm_layout(StateDict sd, WeightsLayout layout, const VitConfig& cfg, std::vector<std::string>* ignored,
                         const std::set<std::string>& keep) {
  if (layout == WeightsLayout::kAuto) layout = detect_layout(sd);
  sd = strip_wrappers(std::move(sd));
  StateDict out;
  switch (layout) {
    case WeightsLayout::kHfDinov2: out = from_hf(sd, false, ignored); fold_registers(out, cfg); break;
    case WeightsLayout::kHfVit: out = from_hf(sd, true, ignored); break;
    case WeightsLayout::kTorchvision: out = from_torchvision(sd, ignored); break;
    case WeightsLayout::kDinov2: out = from_dinov2(sd, cfg, ignored, keep); break;
    case WeightsLayout::kTimm:
    case WeightsLayout::kAuto:
      for (auto& [k, v] : sd) {
        if (is_ignorable(k) && !keep.count(k)) ignored->push_back(k);
        else out[k] = v;
      }
      break;
  }
  return out;
}

std::string LoadReport::summary() const {
  std::ostringstream os;
  if (!container.empty()) os << container << (entry.empty() ? "" : " entry '" + entry + "'") << ", ";
  os << "layout " << layout_name(layout) << ": " << missing.size() << " missing, " << unexpected.size()
     << " unexpected, " << mismatched.size() << " mis-shaped, " << ignored.size() << " ignored";
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << "\n  " << what << ":";
    for (size_t i = 0; i < v.size() && i < 20; ++i) os << "\n    " << v[i];
    if (v.size() > 20) os << "\n    ... and " << v.size() - 20 << " more";
  };
  for (const auto& n : notes) os << "\n  " << n;
  list("missing", missing);
  list("unexpected", unexpected);
  list("mis-shaped", mismatched);
  return os.str();
}

namespace {

LoadReport load_into(Vit& model, StateDict sd, bool allow_partial, WeightsLayout layout, const std::string& origin) {
  LoadReport r;
  r.layout = layout == WeightsLayout::kAuto ? detect_layout(sd) : layout;
  const VitConfig& cfg = model->config();
  auto params = model->named_parameters(/*recurse=*/true);
  std::set<std::string> own;
  for (auto& item : params) own.insert(item.key());
  auto remapped = to_timm_layout(std::move(sd), r.layout, cfg, &r.ignored, own);
  std::set<std::string> seen;
  struct Copy {
    std::string name;
    torch::Tensor dst, src;
  };
  std::vector<Copy> copies;
  for (auto& item : params) {
    const std::string& name = item.key();
    auto it = remapped.find(name);
    if (it == remapped.end()) {
      r.missing.push_back(name);
      continue;
    }
    seen.insert(name);
    auto v = it->second;
    if (name == "pos_embed" && v.dim() == 3 && v.sizes() != item.value().sizes() &&
        v.size(2) == item.value().size(2)) {
      const int64_t n_pre = cfg.no_embed_class ? 0 : cfg.n_prefix();
      const int64_t n_grid = v.size(1) - n_pre;
      const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(n_grid, 0)))));
      if (n_grid > 0 && g * g == n_grid) v = resample_pos_embed(v, n_pre, cfg.grid(), cfg.grid());
      // otherwise not a square grid: reported as mis-shaped below
    }
    if (v.sizes() != item.value().sizes()) {
      std::ostringstream os;
      os << name << ": checkpoint " << v.sizes() << " vs model " << item.value().sizes();
      r.mismatched.push_back(os.str());
      continue;
    }
    // Integer and bool tensors are not weights a float model can take: a cast would silently
    // give nonsense (a quantised or corrupted file).
    const auto st = v.scalar_type();
    MEDFM_CHECK_T(FormatError, st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                  "checkpoint", origin, ": ", name, " is stored as ", c10::toString(st),
                  ", not a floating-point type; refusing to cast it");
    copies.push_back({name, item.value(), v});
  }
  for (const auto& kv : remapped)
    if (!seen.count(kv.first)) r.unexpected.push_back(kv.first);
  if (!allow_partial && !r.complete()) {
    throw Error("checkpoint: refusing a partial load" + origin + " (model.allow_partial = true accepts it): " +
                r.summary());
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, dst, src] : copies) {
    dst.copy_(src);  // converts fp16 / bf16 / fp64 to the model's dtype
    release_mapped_pages(src);  // one copy of the weights resident at a time, not two
    // NaN or Inf in a weight makes every feature NaN; say which tensor (fp64 values beyond the
    // float range become Inf here too).
    if (!torch::isfinite(dst).all().item<bool>()) {
      const int64_t bad = (~torch::isfinite(dst)).sum().item<int64_t>();
      throw FormatError(detail::concat("checkpoint", origin, ": ", name, " holds ", bad,
                                       " NaN or infinite value(s) (after conversion to ", c10::toString(dst.scalar_type()),
                                       "); the file is damaged"));
    }
  }
  return r;
}

}  // namespace

LoadReport load_vit_weights(Vit& model, StateDict sd, bool allow_partial, WeightsLayout layout) {
  return load_into(model, std::move(sd), allow_partial, layout, "");
}

LoadReport load_vit_weights(Vit& model, const std::string& path, bool allow_partial, WeightsLayout layout,
                            const std::string& weights_key) {
  auto file = read_weights_file(path, weights_key);
  auto r = load_into(model, std::move(file.tensors), allow_partial, layout, " of " + path);
  r.container = file.container;
  r.entry = file.entry;
  r.notes = file.notes;
  r.files = file.files;
  return r;
}

void save_vit_weights(const Vit& model, const std::string& path, const std::map<std::string, std::string>& metadata,
                      const std::set<std::string>& skip) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& kv : model->named_parameters(/*recurse=*/true))
    if (!skip.count(kv.key())) tensors.emplace_back(kv.key(), kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  save_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> export_metadata(const std::string& model, const std::vector<std::string>& overrides,
                                                   const PreprocessSpec& p) {
  std::vector<std::string> kept;
  for (const auto& o : parse_overrides(overrides))
    if (o.first != "mask_token") kept.push_back(o.first + "=" + o.second);
  return {{"format", "pt"},
          {"medfm.model", model},
          {"medfm.overrides", nlohmann::json(kept).dump()},
          {"medfm.preprocess", nlohmann::json{{"resize", p.resize_size}, {"crop", p.input_size}, {"interpolation", p.interpolation},
                                              {"mean", p.mean}, {"std", p.std}, {"intensity", p.intensity}}
                                   .dump()}};
}

}  // namespace medfm::models

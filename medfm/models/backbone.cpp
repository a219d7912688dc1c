#include "medfm/models/backbone.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/hash.h"
#include "medfm/core/safetensors.h"

namespace medfm::models {
namespace {

class VitBackbone : public Backbone {
 public:
  VitBackbone(std::string name, Vit vit) : name_(std::move(name)), vit_(std::move(vit)) { vit_->eval(); }
  at::Tensor forward(const at::Tensor& images) override { return vit_->embed(images); }
  void to(c10::Device device) override { vit_->to(device); }
  std::string describe() const override { return "medfm ViT '" + name_ + "'"; }
  Vit& vit() { return vit_; }

 private:
  std::string name_;
  Vit vit_;
};

class ScriptBackbone : public Backbone {
 public:
  ScriptBackbone(torch::jit::Module m, std::string path) : m_(std::move(m)), path_(std::move(path)) { m_.eval(); }
  at::Tensor forward(const at::Tensor& images) override {
    auto out = m_.forward({images});
    MEDFM_CHECK(out.isTensor(), "torchscript: ", path_, ": forward returned ", out.tagKind(), ", not a Tensor");
    auto t = out.toTensor();
    MEDFM_CHECK(t.dim() == 2 && t.size(0) == images.size(0), "torchscript: ", path_, ": forward returned shape ",
                t.sizes(), ", expected [B,D]");
    return t;
  }
  void to(c10::Device device) override { m_.to(device); }
  std::string describe() const override { return "TorchScript '" + path_ + "'"; }

 private:
  torch::jit::Module m_;
  std::string path_;
};

}  // namespace

at::Tensor Backbone::embed(const at::Tensor& images) {
  AutocastGuard guard(precision_, images.device());
  return forward(images).to(at::kFloat);
}

Vit* vit_of(Backbone& backbone) {
  auto* v = dynamic_cast<VitBackbone*>(&backbone);
  return v ? &v->vit() : nullptr;
}

std::unique_ptr<Backbone> load_torchscript_backbone(const std::string& path) {
  try {
    return std::make_unique<ScriptBackbone>(torch::jit::load(path), path);
  } catch (const c10::Error& e) {
    throw FormatError("torchscript: cannot load '" + path + "': " + e.what_without_backtrace());
  }
}

void ModelSpec::bind(Config& cfg) {
  cfg.bind("model.name", name, "registry model name");
  cfg.bind("model.weights", weights, "weights file");
  cfg.bind("model.weights_key", weights_key, "entry of a training checkpoint holding the weights (model, teacher, ...)");
  cfg.bind("model.torchscript", torchscript, "TorchScript backbone file");
  cfg.bind("model.layout", layout, "weights layout");
  cfg.bind("model.allow_partial", allow_partial, "accept partial loads");
  cfg.bind("model.seed", seed, "random-init seed");
  cfg.bind("model.overrides", overrides, "architecture overrides, \"key=value\" items");
  cfg.bind("model.precision", precision, "fp32 | bf16 (autocast: bf16 matmuls, fp32 norms and residuals) | fp16 (CUDA)");
  cfg.bind("preprocess.resize", resize, "shorter side before the crop (-1: model default)");
  cfg.bind("preprocess.crop", crop, "centre crop size (-1: model default)");
  cfg.bind("preprocess.interpolation", interpolation, "bicubic | bilinear (empty: model default)");
  cfg.bind("preprocess.mean", mean, "per-channel mean (empty: model default)");
  cfg.bind("preprocess.std", std, "per-channel std (empty: model default)");
  cfg.bind("preprocess.intensity", intensity, "DICOM/NIfTI window: auto, minmax, percentile, zscore, preset, W/L (empty: model default)");
}

PreprocessSpec resolve_preprocess(const PreprocessSpec& base, const ModelSpec& spec) {
  PreprocessSpec p = base;
  if (spec.resize >= 0) p.resize_size = spec.resize;
  if (spec.crop > 0) p.input_size = spec.crop;
  if (!spec.interpolation.empty()) {
    MEDFM_CHECK_T(ConfigError, spec.interpolation == "bicubic" || spec.interpolation == "bilinear",
                  "preprocess: interpolation '", spec.interpolation, "' is not bicubic or bilinear");
    p.interpolation = spec.interpolation;
  }
  auto triple = [](const std::vector<double>& v, const char* what) {
    MEDFM_CHECK_T(ConfigError, v.size() == 3, "preprocess: ", what, " needs 3 values, got ", v.size());
    return std::array<double, 3>{v[0], v[1], v[2]};
  };
  if (!spec.intensity.empty()) p.intensity = spec.intensity;
  if (!spec.mean.empty()) p.mean = triple(spec.mean, "mean");
  if (!spec.std.empty()) p.std = triple(spec.std, "std");
  for (double s : p.std)
    MEDFM_CHECK_T(ConfigError, std::isfinite(s) && s > 0, "preprocess: std ", s, " must be positive and finite");
  for (double m : p.mean) MEDFM_CHECK_T(ConfigError, std::isfinite(m), "preprocess: mean ", m, " is not finite");
  return p;
}

namespace {

// model.name left empty: the architecture and preprocessing a medfm export recorded in the weights'
// __metadata__ (medfm.model, medfm.overrides, medfm.preprocess), else the default model.
ModelSpec resolve_model_name(const ModelSpec& spec, std::optional<PreprocessSpec>* recorded) {
  ModelSpec s = spec;
  if (!s.name.empty()) return s;
  const auto& w = s.weights;
  if (s.torchscript.empty() && w.size() > 12 && w.compare(w.size() - 12, 12, ".safetensors") == 0 &&
      std::filesystem::is_regular_file(w)) {
    const auto meta = SafeTensors::open(w).metadata();
    auto it = meta.find("medfm.model");
    if (it != meta.end()) {
      s.name = it->second;
      std::vector<std::string> ov;
      if (meta.count("medfm.overrides")) ov = nlohmann::json::parse(meta.at("medfm.overrides")).get<std::vector<std::string>>();
      ov.insert(ov.end(), spec.overrides.begin(), spec.overrides.end());  // the user's come last and win
      s.overrides = ov;
      if (meta.count("medfm.preprocess")) {
        const auto j = nlohmann::json::parse(meta.at("medfm.preprocess"));
        PreprocessSpec p = find_model(s.name).preprocess;
        p.resize_size = j.at("resize").get<int>();
        p.input_size = j.at("crop").get<int>();
        p.interpolation = j.at("interpolation").get<std::string>();
        p.mean = j.at("mean").get<std::array<double, 3>>();
        p.std = j.at("std").get<std::array<double, 3>>();
        p.intensity = j.at("intensity").get<std::string>();
        *recorded = p;
      }
    }
  }
  if (s.name.empty()) s.name = kDefaultModel;
  return s;
}

}  // namespace

LoadedBackbone load_backbone(const ModelSpec& given) {
  LoadedBackbone out;
  std::optional<PreprocessSpec> recorded;
  const ModelSpec spec = resolve_model_name(given, &recorded);
  const auto& entry = find_model(spec.name);
  out.preprocess = resolve_preprocess(recorded ? *recorded : entry.preprocess, spec);
  auto& prov = out.provenance;
  if (!spec.torchscript.empty()) {
    out.backbone = load_torchscript_backbone(spec.torchscript);
    prov["model"] = "torchscript";
    prov["weights"] = spec.torchscript;
    prov["weights_sha256"] = sha256_file(spec.torchscript);
  } else {
    const auto layout = parse_layout(spec.layout);
    torch::manual_seed(static_cast<uint64_t>(spec.seed));
    // A complete load overwrites every parameter: timm's initialisation (a minute for ViT-g) is skipped.
    auto vit = create_vit(spec.name, parse_overrides(spec.overrides), /*init=*/spec.weights.empty() || spec.allow_partial);
    prov["model"] = entry.name;
    if (!spec.overrides.empty()) prov["model_overrides"] = nlohmann::json(spec.overrides).dump();
    if (spec.weights.empty()) {
      out.warning = "no weights given: " + entry.name + " runs with random initialisation (seed " +
                    std::to_string(spec.seed) + ")";
      prov["weights"] = "random-init seed " + std::to_string(spec.seed);
    } else {
      out.report = load_vit_weights(vit, spec.weights, spec.allow_partial, layout, spec.weights_key);
      prov["weights"] = spec.weights;
      if (out.report.files.size() == 1) {
        prov["weights_sha256"] = sha256_file(out.report.files[0]);
      } else {
        nlohmann::json shas = nlohmann::json::object();
        for (const auto& f : out.report.files) shas[std::filesystem::path(f).filename().string()] = sha256_file(f);
        prov["weights_sha256"] = shas.dump();
      }
      if (!out.report.entry.empty()) prov["weights_entry"] = out.report.entry;
      prov["weights_layout"] = layout_name(out.report.layout);
      prov["weights_load_report"] = out.report.summary();
    }
    prov["pool"] = pool_name(vit->config().pool);
    out.backbone = std::make_unique<VitBackbone>(entry.name, std::move(vit));
  }
  const Precision precision = parse_precision(spec.precision);
  out.backbone->set_precision(precision);
  prov["precision"] = precision_name(precision);
  if (precision == Precision::BF16 && !cpu_has_native_bf16())
    out.warning += std::string(out.warning.empty() ? "" : "; ") +
                   "bf16 on a CPU without AVX512-BF16 or AMX is emulated and slower than fp32 (a CUDA device is not affected)";
  const auto& p = out.preprocess;
  prov["preprocess"] = nlohmann::json{{"resize", p.resize_size},
                                      {"crop", p.input_size},
                                      {"interpolation", p.interpolation},
                                      {"mean", p.mean},
                                      {"std", p.std},
                                      {"intensity", p.intensity}}
                           .dump();
  return out;
}

}  // namespace medfm::models

#include "cli/model_setup.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "medfm/core/error.h"
#include "medfm/core/hash.h"

namespace medfm::cli {

void add_model_options(CLI::App& app, ModelOptions& m) {
  app.add_option("--model", m.name, "registry model name (see `medfm models`)");
  app.add_option("--weights", m.weights, "weights (.safetensors: timm, HF, DINOv2 or torchvision layout)");
  app.add_option("--torchscript", m.torchscript, "use a TorchScript module as the backbone instead");
  app.add_option("--layout", m.layout, "weights layout: auto, timm, dinov2, hf_dinov2, hf_vit, torchvision");
  app.add_flag("--allow-partial", m.allow_partial, "accept a checkpoint with missing/unexpected keys");
  app.add_option("--seed", m.seed, "seed for random initialisation when no weights are given");
}

void bind_model(Config& cfg, ModelOptions& m) {
  cfg.bind("model.name", m.name, "registry model name");
  cfg.bind("model.weights", m.weights, "weights file");
  cfg.bind("model.torchscript", m.torchscript, "TorchScript backbone file");
  cfg.bind("model.layout", m.layout, "weights layout");
  cfg.bind("model.allow_partial", m.allow_partial, "accept partial loads");
  cfg.bind("model.seed", m.seed, "random-init seed");
  cfg.bind("preprocess.resize", m.resize, "shorter side before the crop (-1: model default)");
  cfg.bind("preprocess.crop", m.crop, "centre crop size (-1: model default)");
  cfg.bind("preprocess.interpolation", m.interpolation, "bicubic | bilinear (empty: model default)");
  cfg.bind("preprocess.mean", m.mean, "per-channel mean (empty: model default)");
  cfg.bind("preprocess.std", m.std, "per-channel std (empty: model default)");
}

void reapply_model_flags(CLI::App& app, ModelOptions& m, const ModelOptions& typed) {
  if (app.count("--model")) m.name = typed.name;
  if (app.count("--weights")) m.weights = typed.weights;
  if (app.count("--torchscript")) m.torchscript = typed.torchscript;
  if (app.count("--layout")) m.layout = typed.layout;
  if (app.count("--allow-partial")) m.allow_partial = typed.allow_partial;
  if (app.count("--seed")) m.seed = typed.seed;
}

PreparedModel prepare_model(const ModelOptions& m) {
  PreparedModel out;
  const auto& entry = models::find_model(m.name);
  out.preprocess = entry.preprocess;
  if (m.resize >= 0) out.preprocess.resize_size = m.resize;
  if (m.crop > 0) out.preprocess.input_size = m.crop;
  if (!m.interpolation.empty()) out.preprocess.interpolation = m.interpolation;
  auto triple = [](const std::vector<double>& v, const char* what) {
    MEDFM_CHECK_T(ConfigError, v.size() == 3, "config: preprocess.", what, " needs 3 values, got ", v.size());
    return std::array<double, 3>{v[0], v[1], v[2]};
  };
  if (!m.mean.empty()) out.preprocess.mean = triple(m.mean, "mean");
  if (!m.std.empty()) out.preprocess.std = triple(m.std, "std");

  if (!m.torchscript.empty()) {
    out.backbone = models::load_torchscript_backbone(m.torchscript);
    out.provenance["model"] = "torchscript";
    out.provenance["weights"] = m.torchscript;
    out.provenance["weights_sha256"] = sha256_file(m.torchscript);
  } else {
    torch::manual_seed(static_cast<uint64_t>(m.seed));
    models::LoadReport report;
    auto layout = models::parse_layout(m.layout);
    out.backbone = models::make_vit_backbone(entry, m.weights, m.allow_partial, layout, &report);
    out.provenance["model"] = entry.name;
    if (m.weights.empty()) {
      spdlog::warn("no --weights given: {} runs with random initialisation (seed {})", entry.name, m.seed);
      out.provenance["weights"] = "random-init seed " + std::to_string(m.seed);
    } else {
      out.provenance["weights"] = m.weights;
      out.provenance["weights_sha256"] = sha256_file(m.weights);
      out.provenance["weights_layout"] = models::layout_name(report.layout);
      out.provenance["weights_load_report"] = report.summary();
      spdlog::info("loaded {}: {}", m.weights, report.summary());
    }
    out.provenance["pool"] = models::pool_name(entry.vit.pool);
  }
  const auto& p = out.preprocess;
  out.provenance["preprocess"] = nlohmann::json{{"resize", p.resize_size},
                                                {"crop", p.input_size},
                                                {"interpolation", p.interpolation},
                                                {"mean", p.mean},
                                                {"std", p.std}}
                                     .dump();
  return out;
}

}  // namespace medfm::cli

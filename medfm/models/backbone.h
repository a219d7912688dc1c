// A Backbone turns a normalised image batch [B,C,H,W] (float32) into embeddings [B,D] (float32),
// at its precision (precision.h: fp32, or bf16 / fp16 autocast).
// Implementations: medfm's ViT (any registry entry, with loaded weights) and any TorchScript module
// whose forward(Tensor) returns [B,D]. Calls are made under inference mode by the caller.
//
// load_backbone(ModelSpec) is the one way every command gets a model: registry entry (+ overrides)
// or TorchScript file, weights loaded and reported, preprocessing resolved, provenance recorded.
#pragma once
#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/precision.h"
#include "medfm/models/registry.h"

namespace medfm {
class Config;
}

namespace medfm::models {

class Backbone {
 public:
  virtual ~Backbone() = default;
  // forward() under the backbone's precision, returned as float32.
  at::Tensor embed(const at::Tensor& images);
  virtual void to(c10::Device device) = 0;
  virtual std::string describe() const = 0;
  void set_precision(Precision p) { precision_ = p; }
  Precision precision() const { return precision_; }

 protected:
  virtual at::Tensor forward(const at::Tensor& images) = 0;

 private:
  Precision precision_ = Precision::FP32;
};

// The Vit inside a registry backbone (nullptr for TorchScript ones).
Vit* vit_of(Backbone& backbone);

// Loads a TorchScript module (torch.jit.save). Throws IoError / FormatError.
std::unique_ptr<Backbone> load_torchscript_backbone(const std::string& path);

// What to load. Defaults are the library's; bind() exposes every field as a config key
// (model.*, preprocess.*), so a config file, --set and command-line flags all reach it.
inline constexpr const char* kDefaultModel = "vit_small_patch16_224";

struct ModelSpec {
  // Registry entry. Empty: the one a medfm export recorded in the weights' metadata (with its
  // overrides and preprocessing), else kDefaultModel.
  std::string name;
  std::string weights;                          // weights_file.h: .safetensors, .pth, .bin, index, folder; empty: seeded random init
  std::string weights_key;                      // nested checkpoint entry ("model", "teacher", ...); empty: detected
  std::string torchscript;                      // a TorchScript backbone instead of a registry model
  std::string layout = "auto";                  // weights layout (checkpoint.h)
  bool allow_partial = false;                   // accept missing / unexpected / mis-shaped keys
  int64_t seed = 0;                             // random-init seed
  std::vector<std::string> overrides;           // architecture overrides "key=value" (registry.h)
  // Preprocessing overrides; unset values (-1 / empty) keep the registry's.
  int resize = -1, crop = -1;
  std::string interpolation;
  std::vector<double> mean, std;
  std::string intensity;  // DICOM/NIfTI intensity window (empty: model default)
  std::string precision = "fp32";  // fp32 | bf16 | fp16 (precision.h)

  void bind(Config& cfg);
};

struct LoadedBackbone {
  std::unique_ptr<Backbone> backbone;
  PreprocessSpec preprocess;
  LoadReport report;                               // empty without weights
  // model, weights, weights_sha256, weights_layout, weights_load_report, pool, preprocess (JSON)
  std::map<std::string, std::string> provenance;
  std::string warning;                             // e.g. "random initialisation", for the caller to log
};

// Throws ConfigError (unknown model, bad override or preprocessing), IoError / FormatError
// (weights), Error (a partial load without allow_partial, with the report).
LoadedBackbone load_backbone(const ModelSpec& spec);

// The model's preprocessing with the spec's overrides applied (validated: 3 means, 3 positive stds).
PreprocessSpec resolve_preprocess(const PreprocessSpec& base, const ModelSpec& spec);

}  // namespace medfm::models

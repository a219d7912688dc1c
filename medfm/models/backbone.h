// A Backbone turns a normalised image batch [B,3,H,W] (float32) into embeddings [B,D].
// Implementations: medfm's ViT (any registry entry, with loaded weights) and any TorchScript module
// whose forward(Tensor) returns [B,D]. Calls are made under inference mode by the caller.
#pragma once
#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "medfm/models/checkpoint.h"
#include "medfm/models/registry.h"

namespace medfm::models {

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual at::Tensor embed(const at::Tensor& images) = 0;
  virtual void to(c10::Device device) = 0;
  virtual std::string describe() const = 0;
};

// Builds the registry model; loads weights when weights_path is non-empty (.safetensors),
// else keeps the (seeded) random initialisation. *report receives the load report if given.
std::unique_ptr<Backbone> make_vit_backbone(const ModelEntry& entry, const std::string& weights_path,
                                            bool allow_partial, WeightsLayout layout, LoadReport* report);
// The Vit inside a backbone made by make_vit_backbone (nullptr for other kinds).
Vit* vit_of(Backbone& backbone);

// Loads a TorchScript module (torch.jit.save). Throws IoError / FormatError.
std::unique_ptr<Backbone> load_torchscript_backbone(const std::string& path);

}  // namespace medfm::models

#include "medfm/models/backbone.h"

#include <torch/script.h>
#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::models {
namespace {

class VitBackbone : public Backbone {
 public:
  VitBackbone(const ModelEntry& e) : name_(e.name), vit_(e.vit) { vit_->eval(); }
  at::Tensor embed(const at::Tensor& images) override { return vit_->forward(images); }
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
  at::Tensor embed(const at::Tensor& images) override {
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

std::unique_ptr<Backbone> make_vit_backbone(const ModelEntry& entry, const std::string& weights_path,
                                            bool allow_partial, WeightsLayout layout, LoadReport* report) {
  auto b = std::make_unique<VitBackbone>(entry);
  if (!weights_path.empty()) {
    auto r = load_vit_weights(b->vit(), weights_path, allow_partial, layout);
    if (report) *report = r;
  }
  return b;
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

}  // namespace medfm::models

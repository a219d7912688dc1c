#include "medfm/models/lora.h"

#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"
#include "medfm/models/layers.h"
#include "medfm/models/vit.h"

namespace medfm::models {

LoraLinearImpl::LoraLinearImpl(const torch::nn::Linear& base, const LoraOptions& o)
    : torch::nn::LinearImpl(base->options), scale(o.alpha / o.rank), dropout(o.dropout) {
  MEDFM_CHECK_T(ConfigError, o.rank >= 1 && o.alpha > 0 && o.dropout >= 0 && o.dropout < 1, "lora: rank ", o.rank, ", alpha ",
                o.alpha, ", dropout ", o.dropout);
  // LinearImpl's constructor registered fresh weight/bias: point them at the base layer's storage
  // (same names, so state dicts are unchanged).
  torch::NoGradGuard ng;
  weight.set_data(base->weight.data());
  weight.set_requires_grad(base->weight.requires_grad());
  if (base->bias.defined()) {
    bias.set_data(base->bias.data());
    bias.set_requires_grad(base->bias.requires_grad());
  }
  const int64_t in = base->weight.size(1), out = base->weight.size(0);
  auto opts = base->weight.options();
  // A as nn.Linear's default init (Kaiming-uniform, a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)); B = 0.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  lora_A = register_parameter("lora_A", torch::empty({o.rank, in}, opts).uniform_(-bound, bound));
  lora_B = register_parameter("lora_B", torch::zeros({out, o.rank}, opts));
}

torch::Tensor LoraLinearImpl::delta(const torch::Tensor& x) const {
  auto h = dropout > 0 && is_training() ? torch::dropout(x, dropout, true) : x;
  return at::linear(at::linear(h, lora_A), lora_B) * scale;  // [...,in] -> [...,r] -> [...,out]
}

namespace {

// (name, owner module, child name) of every layer LoRA may wrap.
struct Site {
  std::string name;
  torch::nn::Module* owner;
  torch::nn::Linear* layer;
  std::string child;
};

std::vector<Site> sites(VitImpl& vit, bool mlp) {
  std::vector<Site> out;
  for (int i = 0; i < static_cast<int>(vit.blocks->size()); ++i) {
    auto& b = vit.block(i);
    const std::string p = "blocks." + std::to_string(i) + ".";
    out.push_back({p + "attn.qkv", b.attn.get(), &b.attn->qkv, "qkv"});
    out.push_back({p + "attn.proj", b.attn.get(), &b.attn->proj, "proj"});
    if (mlp) {
      out.push_back({p + "mlp.fc1", b.mlp.get(), &b.mlp->fc1, "fc1"});
      out.push_back({p + "mlp.fc2", b.mlp.get(), &b.mlp->fc2, "fc2"});
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> apply_lora(VitImpl& vit, const LoraOptions& o) {
  for (auto& p : vit.parameters()) p.set_requires_grad(false);
  std::vector<std::string> names;
  for (auto& s : sites(vit, o.mlp)) {
    MEDFM_CHECK_T(ConfigError, !dynamic_cast<LoraLinearImpl*>(s.layer->get()), "lora: ", s.name, " is already wrapped");
    auto wrapped = std::make_shared<LoraLinearImpl>(*s.layer, o);
    *s.layer = torch::nn::Linear(std::static_pointer_cast<torch::nn::LinearImpl>(wrapped));
    s.owner->replace_module(s.child, *s.layer);
    names.push_back(s.name);
  }
  return names;
}

int merge_lora(VitImpl& vit) {
  torch::NoGradGuard ng;
  int n = 0;
  for (auto& s : sites(vit, true)) {
    auto* lo = dynamic_cast<LoraLinearImpl*>(s.layer->get());
    if (!lo) continue;
    lo->weight.add_(torch::mm(lo->lora_B, lo->lora_A) * lo->scale);
    torch::nn::Linear plain(lo->options);
    plain->weight.set_data(lo->weight.data());
    if (lo->bias.defined()) plain->bias.set_data(lo->bias.data());
    *s.layer = plain;
    s.owner->replace_module(s.child, plain);
    ++n;
  }
  return n;
}

std::map<std::string, torch::Tensor> lora_state(VitImpl& vit) {
  std::map<std::string, torch::Tensor> out;
  for (auto& s : sites(vit, true))
    if (auto* lo = dynamic_cast<LoraLinearImpl*>(s.layer->get())) {
      out[s.name + ".lora_A"] = lo->lora_A.detach();
      out[s.name + ".lora_B"] = lo->lora_B.detach();
    }
  return out;
}

void load_lora_state(VitImpl& vit, const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard ng;
  size_t used = 0;
  for (auto& s : sites(vit, true))
    if (auto* lo = dynamic_cast<LoraLinearImpl*>(s.layer->get()))
      for (auto [suffix, dst] : {std::pair<const char*, torch::Tensor*>{".lora_A", &lo->lora_A}, {".lora_B", &lo->lora_B}}) {
        auto it = state.find(s.name + suffix);
        MEDFM_CHECK_T(FormatError, it != state.end(), "lora: the adapter file has no ", s.name, suffix);
        MEDFM_CHECK_T(FormatError, it->second.sizes() == dst->sizes(), "lora: ", s.name, suffix, " is ", it->second.sizes(),
                      ", the model's is ", dst->sizes());
        dst->copy_(it->second);
        ++used;
      }
  MEDFM_CHECK_T(FormatError, used == state.size(), "lora: the adapter file has ", state.size() - used,
                " tensor(s) for layers that are not wrapped (other rank or mlp setting?)");
}

}  // namespace medfm::models

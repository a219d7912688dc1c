#include "medfm/train/optim.h"

#include "medfm/core/error.h"

namespace medfm::train {

std::vector<ParamGroup> weight_decay_groups(const torch::nn::Module& module, const std::set<std::string>& no_decay_names,
                                            const std::string& prefix) {
  ParamGroup decay{"decay", {}, {}, 1.0, 1.0}, no_decay{"no_decay", {}, {}, 1.0, 0.0};
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const std::string& n = item.key();
    const bool ends_bias = n.size() >= 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
    const bool skip = item.value().dim() <= 1 || ends_bias || no_decay_names.count(n) > 0;
    auto& g = skip ? no_decay : decay;
    g.params.push_back(prefix + n);
    g.tensors.push_back(item.value());
  }
  std::vector<ParamGroup> out;
  for (auto* g : {&decay, &no_decay})
    if (!g->tensors.empty()) out.push_back(std::move(*g));
  return out;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<ParamGroup>& groups, double betas1, double betas2) {
  MEDFM_CHECK(!groups.empty(), "optimiser: no trainable parameters");
  std::vector<torch::optim::OptimizerParamGroup> pg;
  for (const auto& g : groups) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(0.0);
    o->betas(std::make_tuple(betas1, betas2)).eps(1e-8).weight_decay(0.0);
    pg.emplace_back(g.tensors, std::move(o));
  }
  return std::make_unique<torch::optim::AdamW>(pg, torch::optim::AdamWOptions(0.0));
}

void set_lr_wd(torch::optim::AdamW& opt, const std::vector<ParamGroup>& groups, double lr, double wd) {
  auto& pg = opt.param_groups();
  MEDFM_CHECK(pg.size() == groups.size(), "optimiser: ", pg.size(), " torch groups for ", groups.size(), " groups");
  for (size_t i = 0; i < pg.size(); ++i) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(pg[i].options());
    o.lr(lr * groups[i].lr_multiplier);
    o.weight_decay(wd * groups[i].wd_multiplier);
  }
}

}  // namespace medfm::train

#include "medfm/ssl/simclr_objective.h"

#include <torch/torch.h>

#include <set>

#include "medfm/core/error.h"

namespace medfm::ssl {

SimclrModelImpl::SimclrModelImpl(models::Vit e, const SimclrHeadOptions& head_opts)
    : encoder(std::move(e)), cfg_(encoder->config()), head_opts_(head_opts) {
  head_opts_.in_dim = cfg_.out_dim();
  register_module("encoder", encoder);
  head = register_module("head", SimclrHead(head_opts_));
}

void SimclrModelImpl::reset() {
  encoder = register_module("encoder", models::Vit(cfg_));
  head = register_module("head", SimclrHead(head_opts_));
}

torch::Tensor SimclrModelImpl::forward(const torch::Tensor& x) { return head->forward(encoder->embed(x)); }

SimclrObjective::SimclrObjective(models::Vit encoder, SimclrOptions options) : o_(std::move(options)) {
  MEDFM_CHECK_T(ConfigError, o_.temperature > 0, "simclr: temperature ", o_.temperature, " must be positive");
  model_ = SimclrModel(std::move(encoder), o_.head);
}

std::vector<train::ParamGroup> SimclrObjective::param_groups() {
  std::set<std::string> no_decay;
  for (const auto& n : model_->encoder->no_weight_decay()) no_decay.insert("encoder." + n);
  return train::weight_decay_groups(*model_, no_decay);
}

train::StepLoss SimclrObjective::loss(const train::Views& views, int64_t) {
  MEDFM_CHECK(views.crops.size() >= 2, "simclr: needs 2 views, got ", views.crops.size());
  const int64_t n = views.crops[0].size(0);
  auto z = model_->forward(torch::cat({views.crops[0], views.crops[1]})).to(torch::kFloat32);  // [2n, K]
  auto l = nt_xent(z.narrow(0, 0, n), z.narrow(0, n, n), o_.temperature, o_.gather);
  return {l, {{"nt_xent", l.item<double>()}}};
}

std::vector<std::pair<std::string, torch::Tensor>> SimclrObjective::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  train::add_module_state(out, "model.", *model_);
  return out;
}

void SimclrObjective::load_state(const std::map<std::string, torch::Tensor>& state) {
  train::load_module_state(*model_, "model.", state);
}

}  // namespace medfm::ssl

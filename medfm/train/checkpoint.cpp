#include "medfm/train/checkpoint.h"

#include <torch/torch.h>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/train/optim.h"

namespace medfm::train {

void add_module_state(std::vector<std::pair<std::string, torch::Tensor>>& out, const std::string& prefix,
                      const torch::nn::Module& module) {
  for (const auto& kv : module.named_parameters(true)) out.emplace_back(prefix + kv.key(), kv.value());
  for (const auto& kv : module.named_buffers(true)) out.emplace_back(prefix + kv.key(), kv.value());
}

void load_module_state(torch::nn::Module& module, const std::string& prefix,
                       const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard ng;
  auto copy = [&](const std::string& name, torch::Tensor& t) {
    auto it = state.find(prefix + name);
    MEDFM_CHECK(it != state.end(), "checkpoint: no tensor '", prefix + name, "' (a checkpoint of another model or method?)");
    MEDFM_CHECK(it->second.sizes() == t.sizes(), "checkpoint: '", prefix + name, "' is ", it->second.sizes(), ", the model has ",
                t.sizes());
    t.copy_(it->second);
  };
  for (auto& kv : module.named_parameters(true)) copy(kv.key(), kv.value());
  for (auto& kv : module.named_buffers(true)) copy(kv.key(), kv.value());
}

namespace {

std::string optim_name(size_t g, size_t i, const char* what) {
  return "optim." + std::to_string(g) + "." + std::to_string(i) + "." + what;
}

}  // namespace

void save_train_checkpoint(const std::string& path, Objective& objective, Trainer& trainer,
                           std::map<std::string, std::string> metadata) {
  auto tensors = objective.state();
  for (auto& [name, t] : tensors) name = "state." + name;
  auto& opt = trainer.optimizer();
  auto& st = opt.state();
  const auto& groups = opt.param_groups();
  std::vector<int64_t> steps;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& params = groups[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = st.find(optim_state_key(params[i]));
      if (it == st.end()) continue;  // never stepped (no gradient yet)
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      tensors.emplace_back(optim_name(g, i, "exp_avg"), s.exp_avg());
      tensors.emplace_back(optim_name(g, i, "exp_avg_sq"), s.exp_avg_sq());
      tensors.emplace_back(optim_name(g, i, "step"), torch::tensor({s.step()}, torch::kInt64));
    }
  }
  metadata["step"] = std::to_string(trainer.steps_done());
  metadata["objective"] = objective.name();
  save_safetensors(path, tensors, metadata);  // atomic: temporary name, then rename
}

namespace {

CheckpointInfo info_of(const SafeTensors& st, const std::string& path) {
  CheckpointInfo info;
  info.metadata = st.metadata();
  auto it = info.metadata.find("step");
  MEDFM_CHECK_T(FormatError, it != info.metadata.end(), "checkpoint: ", path, " has no step (not a medfm training checkpoint)");
  info.step = std::stoll(it->second);
  return info;
}

// Checks the method, loads its state; the optimiser's tensors go to *optim when given.
CheckpointInfo load_state_from(const std::string& path, Objective& objective, std::map<std::string, torch::Tensor>* optim) {
  auto st = SafeTensors::open(path);
  CheckpointInfo info = info_of(st, path);
  MEDFM_CHECK(info.metadata["objective"] == objective.name(), "checkpoint: ", path, " is a ", info.metadata["objective"],
              " checkpoint, the run is ", objective.name());
  std::map<std::string, torch::Tensor> state;
  for (auto& [name, t] : st.load_all()) {
    if (name.rfind("state.", 0) == 0) state[name.substr(6)] = t;
    else if (optim && name.rfind("optim.", 0) == 0) (*optim)[name] = t;
  }
  objective.load_state(state);
  return info;
}

}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& path) { return info_of(SafeTensors::open(path), path); }

CheckpointInfo load_objective_state(const std::string& path, Objective& objective) {
  return load_state_from(path, objective, nullptr);
}

CheckpointInfo load_train_checkpoint(const std::string& path, Objective& objective, Trainer& trainer) {
  std::map<std::string, torch::Tensor> optim;
  CheckpointInfo info = load_state_from(path, objective, &optim);
  auto& opt = trainer.optimizer();
  auto& ost = opt.state();
  const auto& groups = opt.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& params = groups[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      auto a = optim.find(optim_name(g, i, "exp_avg"));
      if (a == optim.end()) continue;
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      MEDFM_CHECK(a->second.sizes() == params[i].sizes(), "checkpoint: optimiser state ", a->first, " is ", a->second.sizes(),
                  ", the parameter is ", params[i].sizes());
      s->exp_avg(a->second.clone());
      s->exp_avg_sq(optim.at(optim_name(g, i, "exp_avg_sq")).clone());
      s->step(optim.at(optim_name(g, i, "step")).item<int64_t>());
      ost[optim_state_key(params[i])] = std::move(s);
    }
  }
  trainer.set_steps_done(info.step);
  return info;
}

}  // namespace medfm::train

#include "medfm/ssl/dino_objective.h"

#include <torch/torch.h>

#include <set>

#include "medfm/core/error.h"

namespace medfm::ssl {

DinoStudentImpl::DinoStudentImpl(models::Vit b, const DinoHeadOptions& head_opts)
    : backbone(std::move(b)), cfg_(backbone->config()), head_opts_(head_opts) {
  head_opts_.in_dim = static_cast<int>(cfg_.out_dim());
  register_module("backbone", backbone);
  head = register_module("head", DinoHead(head_opts_));
}

void DinoStudentImpl::reset() {
  // clone(): fresh modules of the same shapes; Cloneable copies the values in afterwards.
  backbone = register_module("backbone", models::Vit(cfg_));
  head = register_module("head", DinoHead(head_opts_));
}

torch::Tensor DinoStudentImpl::forward(const std::vector<torch::Tensor>& crops) {
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < crops.size();) {
    size_t j = i + 1;
    while (j < crops.size() && crops[j].sizes().slice(1) == crops[i].sizes().slice(1)) ++j;
    std::vector<torch::Tensor> same(crops.begin() + static_cast<long>(i), crops.begin() + static_cast<long>(j));
    outs.push_back(backbone->embed(torch::cat(same)));
    i = j;
  }
  return head->forward(torch::cat(outs));
}

DinoObjective::DinoObjective(models::Vit backbone, DinoOptions options)
    : o_(std::move(options)),
      loss_(o_.head.out_dim, o_.n_global_crops + o_.n_local_crops, o_.teacher_temp, o_.student_temp,
            o_.center_momentum) {
  MEDFM_CHECK_T(ConfigError, o_.n_global_crops == 2, "dino: needs 2 global crops, got ", o_.n_global_crops);
  MEDFM_CHECK_T(ConfigError, o_.momentum.size() > 0 && o_.teacher_temp.size() > 0,
                "dino: momentum and teacher-temperature schedules are empty");
  student_ = DinoStudent(std::move(backbone), o_.head);
  teacher_ = std::dynamic_pointer_cast<DinoStudentImpl>(student_->clone());
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  teacher_->eval();  // no stochastic depth in the teacher (DINO builds it with drop_path_rate 0)
}

std::vector<train::ParamGroup> DinoObjective::param_groups() {
  std::set<std::string> no_decay;
  for (const auto& n : student_->backbone->no_weight_decay()) no_decay.insert("backbone." + n);
  return train::weight_decay_groups(*student_, no_decay);
}

train::StepLoss DinoObjective::loss(const train::Views& views, int64_t step) {
  const size_t n = static_cast<size_t>(o_.n_global_crops + o_.n_local_crops);
  MEDFM_CHECK(views.crops.size() == n, "dino: ", views.crops.size(), " views, expected ", n, " (2 global + ",
              o_.n_local_crops, " local)");
  torch::Tensor teacher_out;
  {
    torch::NoGradGuard ng;
    teacher_out = teacher_->forward({views.crops[0], views.crops[1]});
  }
  auto student_out = student_->forward(views.crops);
  auto l = loss_(student_out, teacher_out, step, o_.all_reduce, o_.world_size);
  const auto& st = loss_.target_stats();
  return {l,
          {{"dino", l.item<double>()},
           {"teacher_temp", o_.teacher_temp[step]},
           {"teacher_entropy", st.sample_entropy},
           {"teacher_mean_entropy", st.mean_entropy}}};
}

void DinoObjective::after_backward(int64_t step) {
  if (step < o_.freeze_last_layer_steps) cancel_last_layer_grads(student_->head);
}

void DinoObjective::after_step(int64_t step) { ema_update(*teacher_, *student_, o_.momentum[step]); }

std::vector<std::pair<std::string, torch::Tensor>> DinoObjective::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  train::add_module_state(out, "student.", *student_);
  train::add_module_state(out, "teacher.", *teacher_);
  out.emplace_back("dino.center", loss_.center());
  return out;
}

void DinoObjective::load_state(const std::map<std::string, torch::Tensor>& state) {
  train::load_module_state(*student_, "student.", state);
  train::load_module_state(*teacher_, "teacher.", state);
  auto it = state.find("dino.center");
  MEDFM_CHECK(it != state.end() && it->second.sizes() == loss_.center().sizes(),
              "checkpoint: no DINO centre of the head's size (", loss_.center().sizes(), ")");
  loss_.set_center(it->second);
}

}  // namespace medfm::ssl

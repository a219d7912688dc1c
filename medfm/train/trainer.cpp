#include "medfm/train/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::train {

void clip_gradients_per_param(torch::nn::Module& m, double clip) {
  torch::NoGradGuard ng;
  for (auto& p : m.parameters()) {
    if (!p.grad().defined()) continue;
    const double norm = p.grad().norm(2).item<double>();
    const double coef = clip / (norm + 1e-6);
    if (coef < 1) p.mutable_grad().mul_(coef);
  }
}

Trainer::Trainer(Objective& objective, TrainerOptions options) : obj_(objective), o_(std::move(options)) {
  MEDFM_CHECK_T(ConfigError,
                o_.clip_mode == "per_param" || o_.clip_mode == "per_module" || o_.clip_mode == "global" || o_.clip_mode == "none",
                "train.clip_mode: '", o_.clip_mode, "' is not per_param, per_module, global or none");
  groups_ = obj_.param_groups();
  opt_ = make_adamw(groups_);
}

StepResult Trainer::step(const Views& views) { return step(std::vector<Views>{views}); }

StepResult Trainer::step(const std::vector<Views>& micro) {
  MEDFM_CHECK(!micro.empty(), "train: a step needs at least one batch");
  StepResult r;
  r.step = step_;
  r.lr = o_.lr[step_];
  r.weight_decay = o_.weight_decay[step_];
  set_lr_wd(*opt_, groups_, r.lr, r.weight_decay);
  for (size_t i = 0; i < groups_.size(); ++i) {
    const double k = obj_.lr_scale(groups_[i], step_);
    if (k == 1.0) continue;
    auto& o = static_cast<torch::optim::AdamWOptions&>(opt_->param_groups()[i].options());
    o.lr(o.lr() * k);
  }
  opt_->zero_grad();
  const double scale = 1.0 / static_cast<double>(micro.size());
  for (const auto& views : micro) {
    StepLoss out;
    {
      models::AutocastGuard autocast(o_.precision, o_.device);
      out = obj_.loss(views, step_);
    }
    const double value = out.loss.item<double>();
    if (!std::isfinite(value)) {
      std::ostringstream ss;
      for (const auto& [k, v] : out.terms) ss << " " << k << "=" << v;
      throw Error("train: " + obj_.name() + " loss is " + std::to_string(value) + " at step " + std::to_string(step_) +
                  " (terms:" + ss.str() + "); lower the learning rate or check the data");
    }
    r.loss += value * scale;
    for (const auto& [k, v] : out.terms) r.terms[k] += v * scale;
    (micro.size() == 1 ? out.loss : out.loss * scale).backward();
  }
  if (step_ < o_.freeze_backbone_steps) {
    auto bb = obj_.trained_backbone();
    MEDFM_CHECK(bb, "train: ", obj_.name(), " has no backbone to freeze");
    for (auto& p : bb->parameters())
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
  if (o_.dist && o_.dist->active()) {
    o_.dist->average_gradients(obj_.trained());
    r.loss = o_.dist->mean(r.loss);
    for (auto& [k, v] : r.terms) v = o_.dist->mean(v);
  }
  if (o_.clip_mode == "per_param") clip_gradients_per_param(obj_.trained(), o_.clip_grad);
  else if (o_.clip_mode == "global") torch::nn::utils::clip_grad_norm_(obj_.trained().parameters(), o_.clip_grad);
  else if (o_.clip_mode == "per_module")
    for (auto& child : obj_.trained().children()) torch::nn::utils::clip_grad_norm_(child->parameters(), o_.clip_grad);
  obj_.after_backward(step_);
  opt_->step();
  obj_.after_step(step_);
  ++step_;
  return r;
}

}  // namespace medfm::train

#include "medfm/ssl/dino.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "medfm/core/error.h"

namespace medfm::ssl {

WeightNormLinearImpl::WeightNormLinearImpl(int in_dim, int out_dim, bool train_g)
    : in_(in_dim), out_(out_dim), train_g_(train_g) {
  reset();
}

void WeightNormLinearImpl::reset() {
  torch::nn::Linear init(torch::nn::LinearOptions(in_, out_).bias(false));  // V starts as a Linear's default
  weight_v = register_parameter("weight_v", init->weight.detach().clone());
  weight_g = register_parameter("weight_g", torch::ones({out_, 1}), train_g_);  // DINO fills g with 1
}

torch::Tensor WeightNormLinearImpl::forward(const torch::Tensor& x) {
  return at::linear(x, weight_v * (weight_g / weight_v.norm(2, {1}, /*keepdim=*/true)));  // rows of V scaled to g
}

DinoHeadImpl::DinoHeadImpl(const DinoHeadOptions& o) : o_(o) { reset(); }

void DinoHeadImpl::reset() {
  MEDFM_CHECK_T(ConfigError, o_.in_dim > 0 && o_.out_dim > 0 && o_.bottleneck_dim > 0 && o_.hidden_dim > 0,
                "dino head: dimensions must be positive");
  const int n = std::max(1, o_.nlayers);
  torch::nn::Sequential s;
  auto lin = [](int i, int o) {
    torch::nn::Linear l(i, o);
    torch::NoGradGuard ng;  // DINO's _init_weights: trunc_normal_(std=0.02), bias 0
    // (its bounds are +-2 absolute, 100 standard deviations: a plain normal draw is the same law)
    l->weight.normal_(0.0, 0.02);
    torch::nn::init::zeros_(l->bias);
    return l;
  };
  if (n == 1) {
    s->push_back(lin(o_.in_dim, o_.bottleneck_dim));
  } else {
    s->push_back(lin(o_.in_dim, o_.hidden_dim));
    s->push_back(torch::nn::GELU());
    for (int k = 0; k < n - 2; ++k) {
      s->push_back(lin(o_.hidden_dim, o_.hidden_dim));
      s->push_back(torch::nn::GELU());
    }
    s->push_back(lin(o_.hidden_dim, o_.bottleneck_dim));
  }
  mlp = register_module("mlp", s);
  last_layer = register_module("last_layer", WeightNormLinear(o_.bottleneck_dim, o_.out_dim, !o_.norm_last_layer));
}

torch::Tensor DinoHeadImpl::forward(const torch::Tensor& x) {
  return last_layer->forward(
      torch::nn::functional::normalize(mlp->forward(x), torch::nn::functional::NormalizeFuncOptions().dim(-1).p(2)));
}

void cancel_last_layer_grads(DinoHead& head) {
  for (auto* p : {&head->last_layer->weight_v, &head->last_layer->weight_g})
    if (p->grad().defined()) p->mutable_grad() = torch::Tensor();
}

DinoLoss::DinoLoss(int out_dim, int n_crops, train::Schedule teacher_temp, double student_temp, double center_momentum)
    : n_crops_(n_crops),
      teacher_temp_(std::move(teacher_temp)),
      student_temp_(student_temp),
      center_momentum_(center_momentum),
      center_(torch::zeros({1, out_dim})) {
  MEDFM_CHECK_T(ConfigError, n_crops >= 2, "dino: needs at least the 2 global crops, got ", n_crops);
}

torch::Tensor DinoLoss::operator()(const torch::Tensor& student, const torch::Tensor& teacher, int64_t step,
                                   const AllReduce& all_reduce, int world_size) {
  MEDFM_CHECK(student.dim() == 2 && teacher.dim() == 2 && student.size(1) == teacher.size(1) &&
                  student.size(0) % n_crops_ == 0 && teacher.size(0) * n_crops_ == student.size(0) * 2,
              "dino loss: student ", student.sizes(), " and teacher ", teacher.sizes(), " for ", n_crops_, " crops");
  if (center_.device() != teacher.device()) center_ = center_.to(teacher.device());
  // log_softmax once per crop (DINO's loop recomputes it for every pair; the values are the same)
  auto s = torch::log_softmax(student / student_temp_, -1).chunk(n_crops_);
  const double temp = teacher_temp_[step];
  const auto targets = sinkhorn_ ? sinkhorn_knopp(teacher.detach(), temp, teacher.size(0) * world_size, all_reduce)
                                 : torch::softmax((teacher - center_) / temp, -1).detach();
  auto t = targets.chunk(2);
  torch::Tensor total;
  int n_terms = 0;
  for (int iq = 0; iq < 2; ++iq) {
    for (int v = 0; v < n_crops_; ++v) {
      if (v == iq) continue;
      auto l = torch::sum(-t[iq] * s[v], -1).mean();
      total = total.defined() ? total + l : l;
      ++n_terms;
    }
  }
  total = total / n_terms;
  {
    torch::NoGradGuard ng;
    auto tt = targets.to(torch::kFloat32);
    auto plogp = [](const torch::Tensor& p) { return torch::special::xlogy(p, p); };  // 0 log 0 = 0
    stats_.sample_entropy = -plogp(tt).sum(-1).mean().item<double>();
    stats_.mean_entropy = -plogp(tt.mean(0)).sum().item<double>();
  }
  if (!sinkhorn_) {  // centre update, after the loss (as DINO)
    torch::NoGradGuard ng;
    auto batch_center = teacher.detach().sum(0, true);
    if (all_reduce) all_reduce(batch_center);
    batch_center = batch_center / (teacher.size(0) * world_size);
    center_ = center_ * center_momentum_ + batch_center * (1 - center_momentum_);
  }
  return total;
}

CollapseWatch::CollapseWatch(int out_dim, int64_t patience)
    : log_k_(std::log(static_cast<double>(out_dim))), patience_(patience) {}

std::string CollapseWatch::update(const DinoLoss::TargetStats& s, int64_t step) {
  uniform_run_ = s.sample_entropy > 0.99 * log_k_ ? uniform_run_ + 1 : 0;
  single_run_ = s.mean_entropy < 1.0 ? single_run_ + 1 : 0;
  if (said_ || (uniform_run_ < patience_ && single_run_ < patience_)) return "";
  said_ = true;
  std::ostringstream m;
  m.precision(3);
  if (uniform_run_ >= patience_) {
    m << "the teacher's targets have been uniform for " << patience_ << " steps (step " << step
      << ": entropy " << s.sample_entropy << " of ln K = " << log_k_
      << "): collapse, the loss stays at ln K and the features stop improving. Try a lower teacher "
         "temperature, a smaller dino.out_dim, a higher dino.momentum_teacher or more varied data";
  } else {
    m << "the teacher puts every image on the same few prototypes for " << patience_ << " steps (step " << step
      << ": entropy of the batch's mean target " << s.mean_entropy
      << "): collapse. Check the centring (dino.center_momentum) or use ibot.centering = sinkhorn_knopp";
  }
  return m.str();
}

torch::Tensor sinkhorn_knopp(const torch::Tensor& teacher, double temp, int64_t n_total, const AllReduce& all_reduce,
                             int iterations) {
  torch::NoGradGuard ng;
  auto q = torch::exp(teacher.to(torch::kFloat32) / temp).t();  // [K,B]
  const double K = static_cast<double>(q.size(0)), B = static_cast<double>(n_total);
  auto sum = q.sum();
  if (all_reduce) all_reduce(sum);
  q = q / sum;
  for (int it = 0; it < iterations; ++it) {
    auto rows = q.sum(1, true);
    if (all_reduce) all_reduce(rows);
    q = q / rows / K;
    q = q / q.sum(0, true) / B;
  }
  return (q * B).t();
}

void ema_update(torch::nn::Module& teacher, const torch::nn::Module& student, double momentum) {
  torch::NoGradGuard ng;
  auto sp = student.named_parameters(true);
  for (auto& item : teacher.named_parameters(true)) {
    const auto* q = sp.find(item.key());
    MEDFM_CHECK(q, "ema: the student has no parameter '", item.key(), "'");
    item.value().mul_(momentum).add_(*q, 1 - momentum);
  }
}

}  // namespace medfm::ssl

#include "medfm/train/optim.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/models/cpu_kernels.h"

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
  return std::make_unique<FusedAdamW>(pg, torch::optim::AdamWOptions(0.0));
}

namespace {
// A template, so that only the branch for this LibTorch's key type is compiled.
template <class Key>
Key state_key_as(void* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;  // as c10::guts::to_string writes a pointer
    s << impl;
    return s.str();
  } else {
    return impl;
  }
}
}  // namespace

OptimStateMap::key_type optim_state_key(const torch::Tensor& p) {
  return state_key_as<OptimStateMap::key_type>(p.unsafeGetTensorImpl());
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::Tensor loss;  // the closure first, as LibTorch's step: it may make the gradients
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  auto fallback = [&] {
    torch::optim::AdamW::step();
    return loss;
  };
  // One look-up per parameter: what this step would update, and whether all of it fits the fused
  // pass (contiguous float32 on the CPU, existing moments too); if not, LibTorch's own step.
  auto plain = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided && t.is_contiguous();
  };
  struct Item {
    torch::Tensor p;
    torch::optim::AdamWParamState* state;  // null until its first step
  };
  std::vector<std::vector<Item>> work(param_groups().size());
  for (size_t gi = 0; gi < param_groups().size(); ++gi) {
    auto& group = param_groups()[gi];
    if (static_cast<torch::optim::AdamWOptions&>(group.options()).amsgrad()) return fallback();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!plain(p) || !plain(p.grad())) return fallback();
      auto it = state_.find(optim_state_key(p));
      auto* s = it == state_.end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
      if (s && (!plain(s->exp_avg()) || !plain(s->exp_avg_sq()))) return fallback();
      work[gi].push_back({p, s});
    }
  }
  torch::NoGradGuard no_grad;
  for (size_t gi = 0; gi < work.size(); ++gi) {
    const auto& o = static_cast<torch::optim::AdamWOptions&>(param_groups()[gi].options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& [p, state] : work[gi]) {
      if (!state) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        state = fresh.get();
        state_[optim_state_key(p)] = std::move(fresh);
      }
      auto& s = *state;
      s.step(s.step() + 1);
      // The scalars as LibTorch's AdamW forms them (in double, then float for a float tensor).
      const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
      const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
      const models::kernels::AdamwCoeffs c{static_cast<float>(o.weight_decay() != 0 ? 1 - o.lr() * o.weight_decay() : 1.0),
                                           static_cast<float>(beta1),
                                           static_cast<float>(1 - beta1),
                                           static_cast<float>(beta2),
                                           static_cast<float>(1 - beta2),
                                           static_cast<float>(o.lr() / bc1),
                                           static_cast<float>(std::sqrt(bc2)),
                                           static_cast<float>(o.eps())};
      float* pp = p.data_ptr<float>();
      const float* gp = p.grad().data_ptr<float>();
      float* mp = s.exp_avg().data_ptr<float>();
      float* vp = s.exp_avg_sq().data_ptr<float>();
      // Large tensors split over the threads; the many small ones (biases, norms) run inline.
      at::parallel_for(0, p.numel(), int64_t{1} << 16, [&](int64_t b, int64_t e) {
        models::kernels::adamw_update(pp + b, gp + b, mp + b, vp + b, e - b, c);
      });
    }
  }
  return loss;
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

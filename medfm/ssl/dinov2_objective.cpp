#include "medfm/ssl/dinov2_objective.h"

#include <torch/torch.h>

#include <set>

#include "medfm/core/error.h"
#include "medfm/ssl/koleo.h"

namespace medfm::ssl {

Dinov2Objective::Dinov2Objective(models::Vit backbone, Dinov2Options options)
    : o_(std::move(options)),
      dino_(o_.head.out_dim, 2 + o_.n_local_crops, o_.teacher_temp, o_.student_temp, o_.center_momentum),
      ibot_(o_.head.out_dim, o_.student_temp, o_.center_momentum) {
  MEDFM_CHECK_T(ConfigError, backbone->mask_token.defined(), o_.name,
                ": the backbone needs a mask token (model override mask_token=true)");
  MEDFM_CHECK_T(ConfigError, o_.centering == "centering" || o_.centering == "sinkhorn_knopp", o_.name, ".centering: '",
                o_.centering, "' is not centering or sinkhorn_knopp");
  MEDFM_CHECK_T(ConfigError, o_.momentum.size() > 0 && o_.teacher_temp.size() > 0,
                o_.name, ": momentum and teacher-temperature schedules are empty");
  dino_.use_sinkhorn_knopp(o_.centering == "sinkhorn_knopp");
  student_ = DinoStudent(std::move(backbone), o_.head);
  teacher_ = std::dynamic_pointer_cast<DinoStudentImpl>(student_->clone());
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  teacher_->eval();
}

std::vector<train::ParamGroup> Dinov2Objective::param_groups() {
  std::vector<train::ParamGroup> groups;
  std::map<std::string, size_t> index;
  for (const auto& kv : student_->named_parameters(true)) {
    if (!kv.value().requires_grad()) continue;
    const std::string& n = kv.key();
    const bool decay = !(n.size() >= 5 && n.compare(n.size() - 5, 5, ".bias") == 0) && n.find("norm") == std::string::npos &&
                       n.find("gamma") == std::string::npos;
    const bool patch = n.find("patch_embed") != std::string::npos;
    const bool last = n.find("last_layer") != std::string::npos;
    const std::string name = std::string(last ? "last_layer." : patch ? "patch_embed." : "") + (decay ? "decay" : "no_decay");
    auto it = index.find(name);
    if (it == index.end()) {
      it = index.emplace(name, groups.size()).first;
      train::ParamGroup g;
      g.name = name;
      g.wd_multiplier = decay ? 1.0 : 0.0;
      g.lr_multiplier = patch ? o_.patch_embed_lr_mult : 1.0;
      groups.push_back(std::move(g));
    }
    groups[it->second].params.push_back(n);
    groups[it->second].tensors.push_back(kv.value());
  }
  return groups;
}

double Dinov2Objective::lr_scale(const train::ParamGroup& group, int64_t step) const {
  return step < o_.freeze_last_layer_steps && group.name.rfind("last_layer.", 0) == 0 ? 0.0 : 1.0;
}

train::StepLoss Dinov2Objective::loss(const train::Views& views, int64_t step) {
  const size_t n_views = static_cast<size_t>(2 + o_.n_local_crops);
  MEDFM_CHECK(views.crops.size() == n_views, o_.name, ": ", views.crops.size(), " views, expected ", n_views);
  auto& sb = student_->backbone;
  const int64_t P = sb->config().n_prefix();
  auto global = torch::cat({views.crops[0], views.crops[1]});  // [2B,C,H,W]: crop 0 of every image, then crop 1
  const int64_t B2 = global.size(0);
  const int64_t N = (global.size(2) / sb->config().patch_size) * (global.size(3) / sb->config().patch_size);
  torch::Tensor masks = views.masks.defined() ? views.masks.reshape({B2, -1}).to(global.device())
                                              : torch::zeros({B2, N}, torch::TensorOptions().dtype(torch::kBool).device(global.device()));
  MEDFM_CHECK(masks.size(1) == N, o_.name, ": masks of ", masks.size(1), " patches for ", N, " patches per global crop");
  const double temp = o_.teacher_temp[step];
  // Always taken when iBOT is on, even with no masked patch here: under data parallelism every rank
  // must make the same collective calls.
  const bool ibot = o_.ibot_weight > 0;

  // Teacher: unmasked global crops; cls tokens and the masked positions' patch tokens through its head.
  torch::Tensor t_cls_head, t_patch_probs;
  {
    torch::NoGradGuard ng;
    auto tt = teacher_->backbone->forward_features(global);  // [2B, P+N, D]
    auto cls = tt.select(1, 0);
    if (ibot) {
      auto patch = tt.narrow(1, P, N).reshape({-1, tt.size(2)}).index({masks.flatten()});  // [n_masked, D]
      auto out = teacher_->head->forward(torch::cat({cls, patch}));
      t_cls_head = out.narrow(0, 0, B2);
      auto t_patch = out.narrow(0, B2, patch.size(0));
      if (o_.centering == "sinkhorn_knopp") {
        auto n_total = torch::tensor({static_cast<double>(patch.size(0))}, torch::kFloat64);
        if (o_.all_reduce) o_.all_reduce(n_total);
        t_patch_probs = sinkhorn_knopp(t_patch, temp, static_cast<int64_t>(n_total.item<double>()), o_.all_reduce);
      } else {
        t_patch_probs = ibot_.teacher_probs(t_patch, temp, o_.all_reduce, o_.world_size);
      }
    } else {
      t_cls_head = teacher_->head->forward(cls);
    }
  }

  // Student: masked global crops (all tokens), local crops (cls), one pass through the head.
  auto sg = sb->forward_tokens(sb->prepare_tokens(global, masks));  // [2B, P+N, D]
  auto s_cls = sg.select(1, 0);
  std::vector<torch::Tensor> head_in{s_cls};
  for (size_t i = 2; i < n_views;) {  // local crops of one size together
    size_t j = i + 1;
    while (j < n_views && views.crops[j].sizes().slice(1) == views.crops[i].sizes().slice(1)) ++j;
    std::vector<torch::Tensor> same(views.crops.begin() + static_cast<long>(i), views.crops.begin() + static_cast<long>(j));
    head_in.push_back(sb->forward_features(torch::cat(same)).select(1, 0));
    i = j;
  }
  torch::Tensor s_patch;
  if (ibot) {
    s_patch = sg.narrow(1, P, N).reshape({-1, sg.size(2)}).index({masks.flatten()});
    head_in.push_back(s_patch);
  }
  auto out = student_->head->forward(torch::cat(head_in));
  const int64_t n_cls = B2 + (views.crops.size() > 2 ? views.crops[2].size(0) * o_.n_local_crops : 0);
  auto s_cls_head = out.narrow(0, 0, n_cls);

  auto dino = dino_(s_cls_head, t_cls_head, step, o_.all_reduce, o_.world_size);
  auto total = o_.dino_weight * dino;
  train::StepLoss r;
  r.terms["dino"] = dino.item<double>();
  r.terms["teacher_temp"] = temp;
  r.terms["teacher_entropy"] = dino_.target_stats().sample_entropy;  // the cls targets (dino.h)
  r.terms["teacher_mean_entropy"] = dino_.target_stats().mean_entropy;
  if (o_.koleo_weight > 0) {
    torch::Tensor koleo;
    for (auto& c : s_cls.chunk(2)) {  // never between the two crops of one image
      auto k = koleo_loss(o_.all_gather ? o_.all_gather(c) : c);
      koleo = koleo.defined() ? koleo + k : k;
    }
    koleo = o_.koleo_weight * koleo;
    total = total + koleo;
    r.terms["koleo"] = koleo.item<double>();
  }
  if (ibot) {
    auto l = ibot_(out.narrow(0, n_cls, s_patch.size(0)), t_patch_probs, masks);
    total = total + o_.ibot_weight * l;
    r.terms["ibot"] = l.item<double>();
  }
  r.loss = total;
  return r;
}

void Dinov2Objective::after_step(int64_t step) { ema_update(*teacher_, *student_, o_.momentum[step]); }

std::vector<std::pair<std::string, torch::Tensor>> Dinov2Objective::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  train::add_module_state(out, "student.", *student_);
  train::add_module_state(out, "teacher.", *teacher_);
  out.emplace_back("dino.center", dino_.center());
  out.emplace_back("ibot.center", ibot_.center());
  return out;
}

void Dinov2Objective::load_state(const std::map<std::string, torch::Tensor>& state) {
  train::load_module_state(*student_, "student.", state);
  train::load_module_state(*teacher_, "teacher.", state);
  for (const char* k : {"dino.center", "ibot.center"})
    MEDFM_CHECK(state.count(k) && state.at(k).sizes() == dino_.center().sizes(), "checkpoint: no ", k, " of the head's size");
  dino_.set_center(state.at("dino.center"));
  ibot_.set_center(state.at("ibot.center"));
}

}  // namespace medfm::ssl

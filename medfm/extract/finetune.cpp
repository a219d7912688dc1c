#include "medfm/extract/finetune.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <cmath>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "medfm/core/atomic_file.h"
#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/core/hash.h"
#include "medfm/core/rng.h"
#include "medfm/core/safetensors.h"
#include "medfm/eval/metrics.h"
#include "medfm/eval/report.h"
#include "medfm/eval/splits.h"
#include "medfm/extract/pretrain_sources.h"
#include "medfm/extract/source.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/lora.h"
#include "medfm/models/vit.h"
#include "medfm/train/schedule.h"

namespace medfm::extract {

namespace fs = std::filesystem;
using nlohmann::json;

void FinetuneJob::bind(Config& cfg) {
  model.bind(cfg);
  cfg.bind("finetune.train", train, "training images: CSV with path and label columns");
  cfg.bind("finetune.val", val, "validation images: CSV with path and label columns");
  cfg.bind("finetune.label_column", label_column, "column holding the class");
  cfg.bind("finetune.mode", mode, "full | lora");
  cfg.bind("finetune.lora_rank", lora_rank, "LoRA rank r");
  cfg.bind("finetune.lora_alpha", lora_alpha, "LoRA alpha (the update is scaled by alpha / r)");
  cfg.bind("finetune.lora_dropout", lora_dropout, "dropout on the LoRA input");
  cfg.bind("finetune.lora_mlp", lora_mlp, "also adapt the MLP layers");
  cfg.bind("finetune.epochs", epochs, "passes over the training images");
  cfg.bind("finetune.batch_size", batch_size, "images per step");
  cfg.bind("finetune.warmup_epochs", warmup_epochs, "linear lr warm-up, epochs");
  cfg.bind("finetune.lr", lr, "peak learning rate (classifier and last block)");
  cfg.bind("finetune.weight_decay", weight_decay, "AdamW weight decay (not on norms, biases, tokens)");
  cfg.bind("finetune.layer_decay", layer_decay, "full: lr factor per block towards the input (MAE's layer-wise decay)");
  cfg.bind("finetune.crop_scale", crop_scale, "smallest area share of the random resized crop");
  cfg.bind("finetune.views", views, "augmentation preset: natural | pathology | radiology | ophthalmology");
  cfg.bind("finetune.seed", seed, "seed of initialisation, order and augmentation");
  cfg.bind("finetune.bootstrap", bootstrap, "bootstrap resamples for the 95% CIs");
  cfg.bind("finetune.out", out, "output directory");
}

namespace {

struct Labelled {
  InputList inputs;
  eval::LabelSet labels;
};

Labelled read_labelled(const std::string& csv, const std::string& label_column) {
  MEDFM_CHECK_T(ConfigError, !csv.empty(), "finetune: give --train and --val CSVs");
  Labelled l;
  l.inputs = list_inputs(csv);
  std::map<std::string, std::vector<std::string>> cols;
  for (size_t c = 0; c < l.inputs.extra_names.size(); ++c) cols[l.inputs.extra_names[c]] = l.inputs.extra[c];
  l.labels = eval::make_label_set(l.inputs.ids, cols, {label_column, "", ""}, "finetune: '" + csv + "'");
  return l;
}

// MAE's layer id: embeddings 0, block i -> i + 1, the rest (final norm) depth + 1.
int layer_id(const std::string& name, int depth) {
  if (name.rfind("blocks.", 0) == 0) return std::stoi(name.substr(7, name.find('.', 7) - 7)) + 1;
  if (name == "cls_token" || name == "pos_embed" || name == "reg_token" || name == "mask_token" || name.rfind("patch_embed.", 0) == 0)
    return 0;
  return depth + 1;
}

}  // namespace

FinetuneSummary run_finetune(const FinetuneJob& job, const std::string& resolved_config,
                             const std::function<void(int64_t, int64_t, double)>& progress) {
  MEDFM_CHECK_T(ConfigError, job.mode == "full" || job.mode == "lora", "finetune: mode '", job.mode, "' is not full or lora");
  MEDFM_CHECK_T(ConfigError, !job.out.empty(), "finetune: no output directory (--out)");
  MEDFM_CHECK_T(ConfigError, job.epochs >= 1 && job.batch_size >= 1 && job.lr > 0 && job.warmup_epochs >= 0 &&
                                 job.layer_decay > 0 && job.layer_decay <= 1 && job.crop_scale > 0 && job.crop_scale <= 1,
                "finetune: epochs ", job.epochs, ", batch_size ", job.batch_size, ", lr ", job.lr, ", layer_decay ", job.layer_decay,
                ", crop_scale ", job.crop_scale);
  retain_freed_memory();  // each step's activations reuse the last step's memory (runtime.h)
  auto tr = read_labelled(job.train, job.label_column);
  auto va = read_labelled(job.val, job.label_column);
  eval::align_classes(tr.labels, va.labels, "finetune: '" + job.val + "'");
  const int C = tr.labels.n_classes();

  torch::manual_seed(static_cast<uint64_t>(job.seed));
  auto lb = models::load_backbone(job.model);
  models::Vit* vp = models::vit_of(*lb.backbone);
  MEDFM_CHECK_T(ConfigError, vp, "finetune: ", lb.backbone->describe(), " is not a registry ViT (TorchScript models cannot train)");
  auto& vit = *vp;
  const int depth = vit->config().depth;
  torch::nn::Linear head(vit->config().out_dim(), C);
  {
    torch::NoGradGuard ng;  // timm's classifier init: small weights, zero bias
    head->weight.normal_(0, 0.02);
    head->bias.zero_();
  }
  std::vector<std::string> wrapped;
  if (job.mode == "lora") wrapped = models::apply_lora(*vit, {job.lora_rank, job.lora_alpha, job.lora_dropout, job.lora_mlp});

  // Parameter groups: (lr scale, weight decay) per (layer, decayed or not).
  const auto nwd_list = vit->no_weight_decay();
  const std::set<std::string> no_wd(nwd_list.begin(), nwd_list.end());
  std::map<std::pair<int, bool>, std::vector<torch::Tensor>> by_group;
  int64_t n_trainable = 0;
  for (auto& p : vit->named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const bool lora_param = p.key().find(".lora_") != std::string::npos;
    const int id = job.mode == "lora" ? depth + 1 : layer_id(p.key(), depth);
    const bool decay = lora_param || !no_wd.count(p.key());
    by_group[{id, decay}].push_back(p.value());
    n_trainable += p.value().numel();
  }
  by_group[{depth + 1, true}].push_back(head->weight);
  by_group[{depth + 1, false}].push_back(head->bias);
  n_trainable += head->weight.numel() + head->bias.numel();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> group_scale;
  for (auto& [key, params] : by_group) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(job.lr);
    o->weight_decay(key.second ? job.weight_decay : 0.0);
    groups.emplace_back(params, std::move(o));
    group_scale.push_back(std::pow(job.layer_decay, depth + 1 - key.first));
  }
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(job.lr));

  // Data: training views from the raw images (pretrain image source: the CSV's rows, in order),
  // validation through the model's preprocessing.
  PretrainData pd;
  pd.images = {job.train};
  auto train_images = make_pretrain_source(pd);
  MEDFM_ASSERT(train_images->size() == static_cast<int64_t>(tr.inputs.size()), "finetune: image source and CSV differ");
  SampleOptions so;
  so.preprocess = lb.preprocess;
  auto val_source = make_file_source(va.inputs, so);
  auto views = data::view_preset(job.views);
  views.n_global = 1;
  views.n_local = 0;
  views.global_size = lb.preprocess.input_size;
  views.global_scale = {job.crop_scale, 1.0};
  views.blur_p = {0, 0, 0};
  views.solarize_p = {0, 0, 0};
  views.grayscale_p = 0;
  views.interpolation = lb.preprocess.interpolation;
  views.validate();

  const int64_t n_train = static_cast<int64_t>(tr.labels.size()), n_val = static_cast<int64_t>(va.labels.size());
  const int64_t steps_per_epoch = (n_train + job.batch_size - 1) / job.batch_size;
  const int64_t total = steps_per_epoch * job.epochs;
  auto sched = train::Schedule::cosine(job.lr, 0.0, total, std::min<int64_t>(total, steps_per_epoch * job.warmup_epochs));

  auto evaluate = [&](std::vector<double>& scores) {
    vit->eval();
    head->eval();
    torch::NoGradGuard ng;
    scores.clear();
    for (int64_t s = 0; s < n_val; s += job.batch_size) {
      std::vector<at::Tensor> xs;
      for (int64_t i = s; i < std::min(n_val, s + job.batch_size); ++i) {
        auto samples = val_source->load(static_cast<size_t>(va.labels.rows[i]));
        MEDFM_CHECK(samples.size() == 1, "finetune: '", va.inputs.paths[va.labels.rows[i]], "' gives ", samples.size(),
                    " images (volumes: embed slices to files first)");
        xs.push_back(samples[0].image);
      }
      auto p = torch::softmax(head(vit->embed(torch::stack(xs))), 1).to(torch::kDouble).contiguous();
      scores.insert(scores.end(), p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
    }
  };

  fs::create_directories(job.out);
  std::ostringstream metrics_log;
  int64_t step = 0;
  double last_loss = 0;
  std::vector<double> val_scores;
  for (int e = 0; e < job.epochs; ++e) {
    std::vector<int64_t> order(n_train);
    std::iota(order.begin(), order.end(), 0);
    Rng orng({static_cast<uint64_t>(job.seed), static_cast<uint64_t>(e), 0x0f1eULL});
    orng.shuffle(order);
    double sum = 0;
    for (int64_t s = 0; s < n_train; s += job.batch_size) {
      const int64_t b = std::min<int64_t>(job.batch_size, n_train - s);
      // Views on threads, each keyed by (seed, epoch, row): the batch does not depend on threading.
      std::vector<std::future<at::Tensor>> fut;
      std::vector<int64_t> ys;
      for (int64_t k = 0; k < b; ++k) {
        const int64_t r = order[s + k];
        ys.push_back(tr.labels.y[r]);
        fut.push_back(std::async(std::launch::async, [&, r] {
          Rng rng({static_cast<uint64_t>(job.seed), static_cast<uint64_t>(e), static_cast<uint64_t>(r)});
          auto img = train_images->get(tr.labels.rows[r], rng);
          return data::make_views(img, views, lb.preprocess.mean, lb.preprocess.std, rng).at(0);
        }));
      }
      std::vector<at::Tensor> xs;
      for (auto& f : fut) xs.push_back(f.get());
      vit->train();
      head->train();
      for (size_t g = 0; g < opt.param_groups().size(); ++g)
        static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options()).lr(sched[step] * group_scale[g]);
      auto feats = vit->forward_head(vit->forward_features(torch::stack(xs)), /*pre_logits=*/true);
      auto loss = torch::nn::functional::cross_entropy(head(feats), torch::tensor(ys));
      opt.zero_grad();
      loss.backward();
      opt.step();
      last_loss = loss.item<double>();
      MEDFM_CHECK(std::isfinite(last_loss), "finetune: non-finite loss at step ", step, " (epoch ", e, ")");
      sum += last_loss * static_cast<double>(b);
      ++step;
      if (progress) progress(step, total, last_loss);
    }
    evaluate(val_scores);
    metrics_log << json{{"epoch", e}, {"train_loss", sum / static_cast<double>(n_train)},
                        {"val_accuracy", eval::accuracy(va.labels.y, eval::argmax_rows(val_scores, C))}}.dump()
                << "\n";
  }

  // Weights: the classifier, the adapters alone, and the backbone (adapters merged) in timm layout.
  std::map<std::string, std::string> meta = {{"medfm.classes", json(tr.labels.classes).dump()}, {"medfm.mode", job.mode}};
  save_safetensors(job.out + "/classifier.safetensors", {{"weight", head->weight.detach()}, {"bias", head->bias.detach()}}, meta);
  if (job.mode == "lora") {
    std::vector<std::pair<std::string, at::Tensor>> adapters;
    for (auto& [k, v] : models::lora_state(*vit)) adapters.emplace_back(k, v);
    save_safetensors(job.out + "/lora.safetensors", adapters,
                     {{"medfm.lora_rank", std::to_string(job.lora_rank)}, {"medfm.lora_alpha", std::to_string(job.lora_alpha)},
                      {"medfm.lora_mlp", job.lora_mlp ? "true" : "false"}});
    models::merge_lora(*vit);
  }
  auto bmeta = models::export_metadata(lb.provenance.at("model"), job.model.overrides, lb.preprocess);
  bmeta["medfm.finetune"] = job.mode;
  models::save_vit_weights(vit, job.out + "/backbone.safetensors", bmeta, {"mask_token"});
  write_text_atomic(job.out + "/metrics.jsonl", metrics_log.str());

  eval::ClassificationResults res;
  res.title = "medfm finetune " + job.mode;
  res.classes = tr.labels.classes;
  res.ids = va.labels.ids;
  res.patients = va.labels.patient;
  res.fold.assign(n_val, 0);
  res.y_true = va.labels.y;
  res.scores = val_scores;
  res.folds.push_back({{"fold", 0}, {"n_train", n_train}, {"n_test", n_val}, {"final_train_loss", last_loss}});
  res.bootstrap = job.bootstrap;
  res.seed = job.seed;
  eval::ReportText text;
  text.fields = {{"method", "finetune"}, {"mode", job.mode}, {"n_train", n_train}, {"trainable_parameters", n_trainable},
                 {"lora_layers", wrapped}, {"steps", step}, {"config", resolved_config},
                 {"inputs", json::array({{{"path", job.train}, {"sha256", sha256_file(job.train)}},
                                         {{"path", job.val}, {"sha256", sha256_file(job.val)}}})}};
  if (!job.model.weights.empty()) text.fields["weights_sha256"] = lb.provenance.count("weights_sha256") ? lb.provenance.at("weights_sha256") : "";
  std::ostringstream head_md;
  head_md << "Fine-tuning (" << job.mode << ") of " << lb.backbone->describe() << " on " << n_train << " images, " << job.epochs
          << " epochs, " << step << " steps; " << n_trainable << " trainable parameters. Validation: " << n_val
          << " images (the last epoch).\n\n";
  text.md_head = head_md.str();
  FinetuneSummary out;
  out.n_train = n_train;
  out.n_val = n_val;
  out.steps = step;
  out.last_loss = last_loss;
  out.metrics = eval::write_classification_report(job.out, res, text);
  out.report_dir = job.out;
  return out;
}

}  // namespace medfm::extract

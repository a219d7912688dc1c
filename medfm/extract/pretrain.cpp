#include "medfm/extract/pretrain.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>

#include "medfm/core/atomic_file.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/core/safetensors.h"
#include "medfm/eval/chart.h"
#include "medfm/io/image2d.h"
#include "medfm/models/checkpoint.h"
#include "medfm/ssl/dino.h"
#include "medfm/ssl/dino_objective.h"
#include "medfm/ssl/dinov2_objective.h"
#include "medfm/ssl/ibot.h"
#include "medfm/ssl/simclr_objective.h"
#include "medfm/train/checkpoint.h"
#include "medfm/train/distributed.h"
#include "medfm/train/trainer.h"

namespace medfm::extract {

namespace fs = std::filesystem;

PretrainJob PretrainJob::defaults(const std::string& method, const std::string& preset) {
  PretrainJob j;
  j.method = method;
  j.views = data::view_preset(preset);
  if (method == "dino") return j;  // DINO's: 2 global + 8 local crops, per-parameter clipping
  if (method == "ibot" || method == "dinov2") {  // DINOv2's: its head trains the last layer's norm,
    j.dino.norm_last_layer = false;               // gradients clipped per module (backbone, head)
    j.train.clip_mode = "per_module";
    if (method == "ibot") j.ibot.koleo_weight = 0;
    return j;
  }
  if (method == "mae") {           // MAE's: one crop (scale 0.2-1), flips, no colour; AdamW 0.05, no clipping
    j.views.n_global = 1, j.views.n_local = 0;
    j.views.global_scale = {0.2, 1.0};
    j.views.jitter_p = 0, j.views.grayscale_p = 0, j.views.hed_p = 0;
    j.views.blur_p = {0, 0, 0}, j.views.solarize_p = {0, 0, 0};
    j.train.blr = 1.5e-4;
    j.train.weight_decay = j.train.weight_decay_end = 0.05;
    j.train.clip_mode = "none";
    return j;
  }
  if (method == "simclr") {  // SimCLR's: two views, strong colour jitter, blur, no local crops
    j.views.n_global = 2, j.views.n_local = 0;
    j.views.global_scale = {0.08, 1.0};
    if (preset == "natural") j.views.brightness = j.views.contrast = j.views.saturation = 0.8, j.views.hue = 0.2;
    j.views.blur_p = {0.5, 0.5, 0.5}, j.views.solarize_p = {0, 0, 0};
    j.train.blr = 3e-4;
    j.train.weight_decay = j.train.weight_decay_end = 1e-4;
    j.train.clip_mode = "global";
    return j;
  }
  throw ConfigError("method: '" + method + "' is not dino, ibot, dinov2, mae or simclr");
}

void PretrainJob::bind(Config& cfg) {
  cfg.bind("method", method, "dino | ibot | dinov2 | mae | simclr");
  cfg.bind("out", out, "run directory");
  model.bind(cfg);
  cfg.bind("model.img_size", img_size, "the encoder's native input size (0: views.global_size)");
  data.bind(cfg);
  views.bind(cfg);
  auto& t = train;
  cfg.bind("train.max_steps", t.max_steps, "optimiser steps: the schedules' length");
  cfg.bind("train.max_minutes", t.max_minutes, "> 0: stop after this many minutes (checkpoint written)");
  cfg.bind("train.stop_after", t.stop_after, "> 0: stop after this many steps of the schedule (resume later)");
  cfg.bind("train.batch_size", t.batch_size, "images per step, all processes together");
  cfg.bind("train.accumulate", t.accumulate, "micro-batches per step (gradient accumulation)");
  cfg.bind("train.blr", t.blr, "base learning rate per 256 images (lr = blr * batch_size / 256)");
  cfg.bind("train.min_lr", t.min_lr, "learning rate at the end of the cosine");
  cfg.bind("train.warmup_steps", t.warmup_steps, "linear learning-rate warm-up steps");
  cfg.bind("train.weight_decay", t.weight_decay, "weight decay at the start (cosine to weight_decay_end)");
  cfg.bind("train.weight_decay_end", t.weight_decay_end, "weight decay at the end");
  cfg.bind("train.clip_mode", t.clip_mode, "per_param | global | none");
  cfg.bind("train.clip_grad", t.clip_grad, "gradient norm limit");
  cfg.bind("train.precision", t.precision, "fp32 | bf16 (autocast; fp32 weights and optimiser)");
  cfg.bind("train.seed", t.seed, "data order, augmentations, per-step torch seeds");
  cfg.bind("train.workers", t.workers, "loader threads");
  cfg.bind("train.checkpoint_every", t.checkpoint_every, "steps between checkpoints (and one at the end)");
  cfg.bind("train.keep_checkpoints", t.keep_checkpoints, "checkpoints kept (the newest)");
  cfg.bind("train.freeze_backbone_steps", t.freeze_backbone_steps,
           "steps that train the heads only (continued pre-training from released weights)");
  cfg.bind("dino.out_dim", dino.out_dim, "prototypes (DINO head output)");
  cfg.bind("dino.hidden_dim", dino.hidden_dim, "head MLP width");
  cfg.bind("dino.bottleneck_dim", dino.bottleneck_dim, "head bottleneck");
  cfg.bind("dino.norm_last_layer", dino.norm_last_layer, "fix the last layer's weight norm to 1");
  cfg.bind("dino.teacher_temp", dino.teacher_temp, "teacher temperature after warm-up");
  cfg.bind("dino.warmup_teacher_temp", dino.warmup_teacher_temp, "teacher temperature at step 0");
  cfg.bind("dino.teacher_temp_warmup_steps", dino.teacher_temp_warmup_steps, "teacher temperature warm-up steps");
  cfg.bind("dino.momentum_teacher", dino.momentum_teacher, "teacher EMA momentum at the start (cosine to 1)");
  cfg.bind("dino.freeze_last_layer_steps", dino.freeze_last_layer_steps, "steps the head's last layer stays frozen");
  cfg.bind("dino.student_temp", dino.student_temp, "student temperature");
  cfg.bind("dino.center_momentum", dino.center_momentum, "centre EMA momentum");
  cfg.bind("ibot.mask_ratio_min", ibot.mask_ratio_min, "masked fraction of a masked global crop: low end");
  cfg.bind("ibot.mask_ratio_max", ibot.mask_ratio_max, "masked fraction of a masked global crop: high end");
  cfg.bind("ibot.mask_probability", ibot.mask_probability, "fraction of global crops masked");
  cfg.bind("ibot.loss_weight", ibot.loss_weight, "weight of the masked patch loss");
  cfg.bind("ibot.koleo_weight", ibot.koleo_weight, "weight of KoLeo on the student cls tokens (dinov2)");
  cfg.bind("ibot.centering", ibot.centering, "teacher targets: centering | sinkhorn_knopp");
  cfg.bind("mae.mask_ratio", mae.mask_ratio, "fraction of patches removed");
  cfg.bind("mae.decoder_dim", mae.decoder_dim, "decoder width");
  cfg.bind("mae.decoder_depth", mae.decoder_depth, "decoder blocks");
  cfg.bind("mae.decoder_heads", mae.decoder_heads, "decoder attention heads");
  cfg.bind("mae.norm_pix_loss", mae.norm_pix_loss, "normalise each target patch");
  cfg.bind("simclr.hidden_dim", simclr.hidden_dim, "projection MLP width");
  cfg.bind("simclr.out_dim", simclr.out_dim, "projection output");
  cfg.bind("simclr.temperature", simclr.temperature, "NT-Xent temperature");
}

models::ModelSpec PretrainJob::trained_model_spec() const {
  models::ModelSpec spec = model;
  spec.overrides.push_back("img_size=" + std::to_string(trained_img_size()));
  return spec;
}

std::unique_ptr<train::Objective> make_objective(const PretrainJob& job, models::Vit backbone, train::Dist* dist) {
  const bool dp = dist && dist->active();
  const auto& t = job.train;
  if (job.method == "dino") {
    ssl::DinoOptions o;
    o.head.out_dim = job.dino.out_dim, o.head.hidden_dim = job.dino.hidden_dim;
    o.head.bottleneck_dim = job.dino.bottleneck_dim, o.head.norm_last_layer = job.dino.norm_last_layer;
    o.n_global_crops = job.views.n_global, o.n_local_crops = job.views.n_local;
    o.teacher_temp = train::Schedule::linear_warmup_then_constant(job.dino.warmup_teacher_temp, job.dino.teacher_temp,
                                                                 job.dino.teacher_temp_warmup_steps, t.max_steps);
    o.momentum = train::Schedule::cosine(job.dino.momentum_teacher, 1.0, t.max_steps);
    o.freeze_last_layer_steps = job.dino.freeze_last_layer_steps;
    o.student_temp = job.dino.student_temp, o.center_momentum = job.dino.center_momentum;
    if (dp) {
      o.all_reduce = [dist](torch::Tensor& t) { dist->all_reduce_sum(t); };
      o.world_size = dist->world();
    }
    return std::make_unique<ssl::DinoObjective>(std::move(backbone), o);
  }
  if (job.uses_masks()) {
    ssl::Dinov2Options o;
    o.name = job.method;
    o.head.out_dim = job.dino.out_dim, o.head.hidden_dim = job.dino.hidden_dim;
    o.head.bottleneck_dim = job.dino.bottleneck_dim, o.head.norm_last_layer = job.dino.norm_last_layer;
    o.n_local_crops = job.views.n_local;
    o.teacher_temp = train::Schedule::linear_warmup_then_constant(job.dino.warmup_teacher_temp, job.dino.teacher_temp,
                                                                 job.dino.teacher_temp_warmup_steps, t.max_steps);
    o.momentum = train::Schedule::cosine(job.dino.momentum_teacher, 1.0, t.max_steps);
    o.freeze_last_layer_steps = job.dino.freeze_last_layer_steps;
    o.student_temp = job.dino.student_temp, o.center_momentum = job.dino.center_momentum;
    o.ibot_weight = job.ibot.loss_weight;
    o.koleo_weight = job.method == "ibot" ? 0.0 : job.ibot.koleo_weight;
    o.centering = job.ibot.centering;
    if (dp) {
      o.all_reduce = [dist](torch::Tensor& x) { dist->all_reduce_sum(x); };
      o.all_gather = [dist](const torch::Tensor& x) { return dist->all_gather(x); };
      o.world_size = dist->world();
    }
    return std::make_unique<ssl::Dinov2Objective>(std::move(backbone), o);
  }
  if (job.method == "mae") return std::make_unique<ssl::MaeObjective>(std::move(backbone), job.mae);
  if (job.method == "simclr") {
    ssl::SimclrOptions o;
    o.head.hidden_dim = job.simclr.hidden_dim, o.head.out_dim = job.simclr.out_dim;
    o.temperature = job.simclr.temperature;
    if (dp) o.gather = {[dist](const torch::Tensor& t) { return dist->all_gather(t); }, dist->rank()};
    return std::make_unique<ssl::SimclrObjective>(std::move(backbone), o);
  }
  throw ConfigError("method: '" + job.method + "' is not dino, ibot, dinov2, mae or simclr");
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::string best;
  int64_t best_step = -1;
  if (!fs::is_directory(dir)) return "";
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step_", 0) != 0 || e.path().extension() != ".safetensors") continue;
    const int64_t s = std::atoll(n.substr(5).c_str());
    if (s > best_step) best_step = s, best = e.path().string();
  }
  return best;
}

namespace {

void validate(const PretrainJob& j) {
  const auto& t = j.train;
  MEDFM_CHECK_T(ConfigError, !j.out.empty(), "pretrain: no run directory (out / --out)");
  MEDFM_CHECK_T(ConfigError, t.max_steps > 0, "train.max_steps: ", t.max_steps, " must be positive");
  MEDFM_CHECK_T(ConfigError, t.max_minutes >= 0 && std::isfinite(t.max_minutes), "train.max_minutes: ", t.max_minutes,
                " is not a duration");
  MEDFM_CHECK_T(ConfigError, t.stop_after >= 0, "train.stop_after: ", t.stop_after, " is negative");
  MEDFM_CHECK_T(ConfigError, t.batch_size >= 2, "train.batch_size: ", t.batch_size, " (at least 2)");
  MEDFM_CHECK_T(ConfigError, t.accumulate >= 1 && t.batch_size % t.accumulate == 0 && t.batch_size / t.accumulate >= 2,
                "train.accumulate: ", t.accumulate, " must divide train.batch_size ", t.batch_size,
                " into micro-batches of at least 2");
  MEDFM_CHECK_T(ConfigError, t.blr > 0 && t.min_lr >= 0 && t.warmup_steps >= 0 && t.warmup_steps <= t.max_steps,
                "train: needs blr > 0, min_lr >= 0 and 0 <= warmup_steps <= max_steps");
  MEDFM_CHECK_T(ConfigError, t.weight_decay >= 0 && t.weight_decay_end >= 0, "train: weight decay must be >= 0");
  MEDFM_CHECK_T(ConfigError, t.workers >= 1 && t.workers <= 256, "train.workers: ", t.workers, " (1 to 256)");
  MEDFM_CHECK_T(ConfigError, t.freeze_backbone_steps >= 0, "train.freeze_backbone_steps: ", t.freeze_backbone_steps,
                " is negative");
  MEDFM_CHECK_T(ConfigError, t.checkpoint_every >= 0 && t.keep_checkpoints >= 1,
                "train: checkpoint_every >= 0 and keep_checkpoints >= 1");
  MEDFM_CHECK_T(ConfigError, t.precision == "fp32" || t.precision == "bf16",
                "train.precision: '", t.precision, "' (fp32 or bf16; fp16 training needs loss scaling, not built)");
  j.views.validate();
  if (j.method == "dino" || j.uses_masks())
    MEDFM_CHECK_T(ConfigError, j.views.n_global == 2, "views.n_global: ", j.method, " needs 2 global crops, got ",
                  j.views.n_global);
  if (j.method == "simclr")
    MEDFM_CHECK_T(ConfigError, j.views.n_global == 2, "views.n_global: SimCLR needs 2 views, got ", j.views.n_global);
}

// Batches of views in step order, made ahead on loader threads.
class ViewLoader {
 public:
  // batch: this rank's images per step, slots [rank * batch, (rank + 1) * batch) of global_batch.
  // masks: iBOT's block masks for the global crops (grid 0: none), drawn for the whole global
  // batch from (seed, step) and sliced, so they do not depend on the number of ranks.
  struct Masks {
    int grid = 0;
    double ratio_min = 0, ratio_max = 0, probability = 0;
  };
  ViewLoader(const PretrainSource& src, const data::ViewSpec& spec, const PreprocessSpec& pre, int64_t seed, int batch,
             int64_t global_batch, int rank, int workers, int64_t first_step, Masks masks)
      : src_(src), spec_(spec), pre_(pre), seed_(seed), batch_(batch), global_(global_batch), rank_(rank), workers_(workers),
        next_(first_step), masks_(masks) {
    for (int i = 0; i < kAhead; ++i) ahead_.push_back(launch(next_ + i));
  }
  ~ViewLoader() {
    for (auto& f : ahead_)
      if (f.valid()) f.wait();
  }
  train::Views next() {
    auto f = std::move(ahead_.front());
    ahead_.pop_front();
    ahead_.push_back(launch(next_ + kAhead));
    ++next_;
    return f.get();
  }

 private:
  static constexpr int kAhead = 2;

  // The epoch's order (a Fisher-Yates shuffle keyed by (seed, epoch)); a few recent ones cached,
  // shared so that evicting one never pulls it from under a thread still reading it.
  std::shared_ptr<const std::vector<int64_t>> perm(int64_t epoch) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = perms_.find(epoch);
    if (it != perms_.end()) return it->second;
    if (perms_.size() > 8) perms_.erase(perms_.begin());
    auto p = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(src_.size()));
    std::iota(p->begin(), p->end(), 0);
    Rng rng({static_cast<uint64_t>(seed_), 0x7065726dULL, static_cast<uint64_t>(epoch)});
    rng.shuffle(*p);
    perms_.emplace(epoch, p);
    return p;
  }

  std::vector<at::Tensor> sample(int64_t g) {
    const int64_t n = src_.size(), epoch = g / n;
    const int64_t index = (*perm(epoch))[static_cast<size_t>(g % n)];
    Rng rng({static_cast<uint64_t>(seed_), static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)});
    return data::make_views(src_.get(index, rng), spec_, pre_.mean, pre_.std, rng);
  }

  std::future<train::Views> launch(int64_t step) {
    return std::async(std::launch::async, [this, step] {
      std::vector<std::vector<at::Tensor>> per(static_cast<size_t>(batch_));
      std::vector<std::thread> threads;
      std::exception_ptr err;
      std::mutex err_mu;
      for (int w = 0; w < workers_; ++w)
        threads.emplace_back([&, w] {
          try {
            for (int j = w; j < batch_; j += workers_) per[static_cast<size_t>(j)] = sample(step * global_ + rank_ * batch_ + j);
          } catch (...) {
            std::lock_guard<std::mutex> l(err_mu);
            if (!err) err = std::current_exception();
          }
        });
      for (auto& t : threads) t.join();
      if (err) std::rethrow_exception(err);
      train::Views v;
      v.first_slot = rank_ * batch_;
      v.global_batch = global_;
      for (size_t k = 0; k < per[0].size(); ++k) {
        std::vector<at::Tensor> col;
        for (auto& s : per) col.push_back(s[k]);
        v.crops.push_back(torch::stack(col));
      }
      if (masks_.grid > 0) {
        Rng rng({static_cast<uint64_t>(seed_), 0x6d61736bULL, static_cast<uint64_t>(step)});
        const int n_global = spec_.n_global;
        auto all = ssl::batch_masks(n_global * static_cast<int>(global_), masks_.grid, masks_.grid, masks_.ratio_min,
                                    masks_.ratio_max, masks_.probability, rng);  // crop-major, as DINOv2 collates
        v.masks = all.view({n_global, global_, -1}).narrow(1, rank_ * batch_, batch_).contiguous();
      }
      return v;
    });
  }

  const PretrainSource& src_;
  data::ViewSpec spec_;
  PreprocessSpec pre_;
  int64_t seed_;
  int batch_;
  int64_t global_;
  int rank_, workers_;
  int64_t next_;
  std::deque<std::future<train::Views>> ahead_;
  std::mutex mu_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> perms_;
  Masks masks_;
};

std::vector<train::Views> split_micro(const train::Views& v, int n) {
  if (n == 1) return {v};
  std::vector<train::Views> out(static_cast<size_t>(n));
  for (const auto& c : v.crops) {
    auto parts = c.chunk(n, 0);
    for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)].crops.push_back(parts[static_cast<size_t>(i)]);
  }
  const int64_t part = v.crops[0].size(0) / n;
  for (int i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)].first_slot = v.first_slot + i * part;
    out[static_cast<size_t>(i)].global_batch = v.global_batch;
    if (v.masks.defined()) out[static_cast<size_t>(i)].masks = v.masks.narrow(1, i * part, part);
  }
  return out;
}

// metrics.jsonl lines of steps before `step` (a resume rewrites the file without the rest).
std::vector<nlohmann::json> read_metrics(const std::string& path, int64_t before_step) {
  std::vector<nlohmann::json> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t{-1}) < before_step) rows.push_back(std::move(j));
    } catch (const nlohmann::json::exception&) {
      break;  // a line cut by a crash: what follows is not trusted
    }
  }
  return rows;
}

void draw_loss(const std::string& path, const std::vector<nlohmann::json>& rows, const std::string& method) {
  eval::Series raw{"loss", {}, {}}, smooth{"moving average", {}, {}};
  for (const auto& r : rows) {
    raw.x.push_back(r.value("step", 0.0));
    raw.y.push_back(r.value("loss", NAN));
  }
  if (raw.x.empty()) return;
  smooth.x = raw.x;
  smooth.y = eval::moving_average(raw.y, std::max<size_t>(1, raw.y.size() / 20));
  eval::write_line_chart(path, {raw, smooth}, {method + " pre-training loss", "step", "loss", false, 900, 540});
}

// The first step's views as the model sees them (normalisation undone), one row per image (up to
// 8): global crops, then local crops, each in a cell of the global size with a gap; masked patches
// of iBOT / DINOv2 darkened. What the augmentations do to this data, before any time is spent.
void draw_views(const std::string& path, const train::Views& v, const PreprocessSpec& pre, int patch) {
  if (v.crops.empty()) return;
  const int64_t rows = std::min<int64_t>(8, v.crops[0].size(0)), cell = v.crops[0].size(2), gap = 4;
  const int64_t cols = static_cast<int64_t>(v.crops.size());
  auto canvas = torch::full({3, rows * (cell + gap) + gap, cols * (cell + gap) + gap}, 1.0f);
  auto mean = torch::tensor(std::vector<float>(pre.mean.begin(), pre.mean.end())).view({-1, 1, 1});
  auto stdv = torch::tensor(std::vector<float>(pre.std.begin(), pre.std.end())).view({-1, 1, 1});
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < rows; ++r) {
      // [3,h,w] also for a gray crop: the 3-channel mean and std broadcast over it
      auto img = (v.crops[static_cast<size_t>(c)][r].to(torch::kFloat32) * stdv + mean).clamp(0, 1);
      if (v.masks.defined() && c < v.masks.size(0) && patch > 0) {  // darken the student's masked patches
        const int64_t g = img.size(1) / patch;
        auto m = v.masks[c][r].view({1, g, g}).to(torch::kFloat32);
        m = m.repeat_interleave(patch, 1).repeat_interleave(patch, 2);
        img = img * (1 - 0.6 * m);
      }
      canvas.narrow(1, gap + r * (cell + gap), img.size(1)).narrow(2, gap + c * (cell + gap), img.size(2)).copy_(img);
    }
  }
  io::write_png(path, canvas.mul(255).round().to(torch::kUInt8));
}

}  // namespace

PretrainResult run_pretrain(const PretrainJob& job, const std::string& resolved_toml,
                            const std::function<void(const PretrainProgress&)>& progress,
                            const std::function<void(const std::string&)>& log) {
  validate(job);
  retain_freed_memory();  // each step's activations reuse the last step's memory (runtime.h)
  auto dist = train::Dist::from_env();
  const bool lead = dist->rank() == 0;  // only rank 0 writes the run directory and reports
  auto say = [&](const std::string& s) {
    if (log && lead) log(s);
  };
  if (dist->active()) {
    say("data parallel: " + std::to_string(dist->world()) + " processes (" + dist->describe() + ")");
    MEDFM_CHECK_T(ConfigError, job.train.batch_size % (dist->world() * job.train.accumulate) == 0, "train.batch_size ",
                  job.train.batch_size, " must split evenly over ", dist->world(), " processes x ", job.train.accumulate,
                  " micro-batches");
  }
  const fs::path run(job.out);
  const std::string ckpt_dir = (run / "checkpoints").string();
  const std::string resume_from = job.resume ? latest_checkpoint(job.out) : "";
  if (job.resume) {
    MEDFM_CHECK_T(ConfigError, !resume_from.empty(), "pretrain: --resume: no checkpoint in ", ckpt_dir);
  } else {
    MEDFM_CHECK_T(ConfigError, !fs::exists(run / "metrics.jsonl") && latest_checkpoint(job.out).empty(), "pretrain: ",
                  job.out, " holds a run already: give --resume to continue it, or another --out");
  }
  // Model: the registry entry at the views' size, random or released weights.
  models::ModelSpec spec = job.trained_model_spec();
  const int img = job.trained_img_size();
  spec.precision = "fp32";
  auto loaded = models::load_backbone(spec);
  if (!loaded.warning.empty()) say(loaded.warning);
  if (!spec.weights.empty()) say("weights: " + loaded.report.summary());
  models::Vit* vit = models::vit_of(*loaded.backbone);
  MEDFM_CHECK_T(ConfigError, vit, "pretrain: model.torchscript cannot be trained (give a registry model.name)");
  models::Vit backbone = *vit;
  if (job.uses_masks() && !backbone->mask_token.defined()) {
    // iBOT / DINOv2 need a mask token; released weights rarely carry one (timm's never, DINOv2's
    // own .pth do): the loaded weights go into a model that has one, kept from the file when there.
    auto cfg = backbone->config();
    cfg.mask_token = true;
    models::Vit with(cfg);
    torch::NoGradGuard ng;
    auto dst = with->named_parameters(true);
    for (const auto& kv : backbone->named_parameters(true)) dst[kv.key()].copy_(kv.value());
    const auto& w = spec.weights;
    if (w.size() > 12 && w.compare(w.size() - 12, 12, ".safetensors") == 0) {
      auto st = SafeTensors::open(w);
      if (st.contains("mask_token") && st.get("mask_token").numel() == with->mask_token.numel())
        with->mask_token.copy_(st.get("mask_token").view_as(with->mask_token));
    }
    backbone = with;
  }
  backbone->train();

  if (job.method == "mae")
    MEDFM_CHECK_T(ConfigError, img == job.views.global_size, "mae: model.img_size ", img,
                  " must equal views.global_size ", job.views.global_size, " (the encoder sees whole views)");
  auto source = make_pretrain_source(job.data);
  say("data: " + source->describe());

  // The run directory is written only once the model and the data have been found: a run that
  // fails on them leaves nothing behind.
  dist->barrier();  // every rank has looked at the directory before rank 0 writes to it
  std::error_code ec;
  if (lead) {
    fs::create_directories(ckpt_dir, ec);
    MEDFM_CHECK_T(IoError, !ec && fs::is_directory(ckpt_dir), "pretrain: cannot create ", ckpt_dir, ": ", ec.message());
    write_text_atomic((run / "config.toml").string(), resolved_toml);
  }

  const auto& t = job.train;
  const double lr = t.blr * t.batch_size / 256.0;
  train::TrainerOptions to;
  to.lr = train::Schedule::cosine(lr, t.min_lr, t.max_steps, t.warmup_steps);
  to.weight_decay = train::Schedule::cosine(t.weight_decay, t.weight_decay_end, t.max_steps);
  to.clip_mode = t.clip_mode;
  to.clip_grad = t.clip_grad;
  to.precision = models::parse_precision(t.precision);
  to.dist = dist.get();
  to.freeze_backbone_steps = t.freeze_backbone_steps;
  torch::manual_seed(static_cast<uint64_t>(t.seed));  // the heads' initialisation
  auto objective = make_objective(job, backbone, dist.get());
  dist->broadcast_module(objective->trained());  // identical by seeding already; made certain
  train::Trainer trainer(*objective, to);

  int64_t first = 0;
  if (!resume_from.empty()) {
    first = train::load_train_checkpoint(resume_from, *objective, trainer).step;
    say("resumed from " + resume_from + " at step " + std::to_string(first));
  }
  const std::string metrics_path = (run / "metrics.jsonl").string();
  auto rows = read_metrics(metrics_path, first);
  std::ofstream metrics;
  if (lead) {
    std::string text;
    for (const auto& r : rows) text += r.dump() + "\n";
    write_text_atomic(metrics_path, text);
    metrics.open(metrics_path, std::ios::app);
    MEDFM_CHECK_T(IoError, metrics.good(), "pretrain: cannot append to ", metrics_path);
  }

  const int64_t end = t.stop_after > 0 ? std::min(t.max_steps, t.stop_after) : t.max_steps;
  const int local_batch = t.batch_size / dist->world();
  ViewLoader::Masks masks;
  if (job.uses_masks()) {
    const int patch = backbone->config().patch_size;
    MEDFM_CHECK_T(ConfigError, job.views.global_size % patch == 0, "views.global_size ", job.views.global_size,
                  " is not a multiple of the patch size ", patch, " (", job.method, " masks patches)");
    masks = {job.views.global_size / patch, job.ibot.mask_ratio_min, job.ibot.mask_ratio_max, job.ibot.mask_probability};
  }
  ViewLoader loader(*source, job.views, loaded.preprocess, t.seed, local_batch, t.batch_size, dist->rank(), t.workers, first,
                    masks);
  PretrainResult res;
  res.rank = dist->rank();
  res.world = dist->world();
  res.first_step = first;
  res.data_description = source->describe();
  res.stopped_by = t.stop_after > 0 && t.stop_after < t.max_steps ? "stop_after" : "max_steps";
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int64_t last_ckpt = -1;
  auto checkpoint = [&](int64_t step) {
    last_ckpt = step;
    if (!lead) return;
    const std::string path = ckpt_dir + "/step_" + std::string(8 - std::min<size_t>(8, std::to_string(step).size()), '0') +
                             std::to_string(step) + ".safetensors";
    train::save_train_checkpoint(path, *objective, trainer, {{"method", job.method}});
    res.checkpoint = path;
    // Keep the newest keep_checkpoints.
    std::vector<std::string> all;
    for (const auto& e : fs::directory_iterator(ckpt_dir))
      if (e.path().filename().string().rfind("step_", 0) == 0 && e.path().extension() == ".safetensors")
        all.push_back(e.path().string());
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i + static_cast<size_t>(t.keep_checkpoints) < all.size(); ++i) fs::remove(all[i], ec);
    draw_loss((run / "loss.png").string(), rows, job.method);
  };
  double seconds_in_steps = 0;
  ssl::CollapseWatch collapse(job.dino.out_dim);  // the DINO family's targets (dino.h)
  std::string collapse_warning;
  int64_t step = first;
  while (step < end) {
    const auto s0 = std::chrono::steady_clock::now();
    auto views = loader.next();
    if (lead && step == first && first == 0) {
      try {
        draw_views((run / "views.png").string(), views, loaded.preprocess, masks.grid > 0 ? backbone->config().patch_size : 0);
      } catch (const Error& e) {
        spdlog::warn("pretrain: views.png not written: {}", e.what());
      }
    }
    torch::manual_seed(Rng({static_cast<uint64_t>(t.seed), 0x73746570ULL, static_cast<uint64_t>(step)}).seed());
    auto r = trainer.step(split_micro(views, t.accumulate));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    seconds_in_steps += dt;
    ++step;
    nlohmann::json row{{"step", r.step}, {"loss", r.loss}, {"lr", r.lr}, {"wd", r.weight_decay},
                       {"images_per_s", t.batch_size / std::max(dt, 1e-9)}, {"seconds", dt}, {"elapsed", elapsed()}};
    for (const auto& [k, v] : r.terms) row[k] = v;
    if (r.terms.count("teacher_entropy") && r.terms.count("teacher_mean_entropy")) {
      auto w = collapse.update({r.terms["teacher_entropy"], r.terms["teacher_mean_entropy"]}, r.step);
      if (!w.empty() && lead) spdlog::warn("pretrain: {}", w);
      if (!w.empty()) collapse_warning = w;
    }
    if (lead) {
      metrics << row.dump() << "\n";
      metrics.flush();
    }
    rows.push_back(row);
    res.last_loss = r.loss;
    if (progress && lead) progress({step, t.max_steps, r.loss, (step - first) * t.batch_size / std::max(seconds_in_steps, 1e-9)});
    if (t.checkpoint_every > 0 && step % t.checkpoint_every == 0 && step < end) checkpoint(step);
    // Time is up when it is up for any rank (all ranks stop at the same step).
    if (t.max_minutes > 0 && step < end && dist->mean(elapsed() >= t.max_minutes * 60 ? 1.0 : 0.0) > 0) {
      res.stopped_by = "max_minutes";
      break;
    }
  }
  if (last_ckpt != step) checkpoint(step);
  res.steps_done = step;
  res.seconds = elapsed();
  res.images_per_s = step > first ? (step - first) * t.batch_size / std::max(seconds_in_steps, 1e-9) : 0;
  nlohmann::json summary{{"method", job.method},
                         {"steps_done", step},
                         {"max_steps", t.max_steps},
                         {"finished", step >= t.max_steps},
                         {"stopped_by", res.stopped_by},
                         {"seconds", res.seconds},
                         {"images_per_s", res.images_per_s},
                         {"last_loss", res.last_loss},
                         {"checkpoint", res.checkpoint},
                         {"data", res.data_description},
                         {"model", loaded.provenance},
                         {"processes", dist->world()}};
  if (!collapse_warning.empty()) summary["collapse"] = collapse_warning;
  if (lead) write_text_atomic((run / "run.json").string(), summary.dump(2) + "\n");
  return res;
}

PretrainJob load_pretrain_job(const std::string& toml_path, const std::function<void(Config&)>& bind_extra) {
  PretrainJob probe;
  {
    Config c;
    probe.bind(c);
    if (bind_extra) bind_extra(c);
    c.apply_file(toml_path);
  }
  PretrainJob job = PretrainJob::defaults(probe.method, probe.views.preset);
  Config c;
  job.bind(c);
  if (bind_extra) bind_extra(c);
  c.apply_file(toml_path);
  return job;
}

std::string export_backbone(const std::string& run_dir, const std::string& out, const std::string& checkpoint,
                            const std::function<void(Config&)>& bind_extra) {
  const std::string cfg_path = (fs::path(run_dir) / "config.toml").string();
  MEDFM_CHECK_T(IoError, fs::exists(cfg_path), "export: ", run_dir, " is not a pretrain run (no config.toml)");
  const std::string ckpt = checkpoint.empty() ? latest_checkpoint(run_dir) : checkpoint;
  MEDFM_CHECK_T(IoError, !ckpt.empty(), "export: no checkpoint in ", run_dir, "/checkpoints");
  const PretrainJob job = load_pretrain_job(cfg_path, bind_extra);
  models::ModelSpec spec = job.trained_model_spec();
  const int img = job.trained_img_size();
  spec.weights.clear();  // the checkpoint replaces them
  if (job.uses_masks()) spec.overrides.push_back("mask_token=true");
  auto loaded = models::load_backbone(spec);
  auto objective = make_objective(job, *models::vit_of(*loaded.backbone));
  const auto info = train::load_objective_state(ckpt, *objective);
  auto out_vit = objective->export_backbone();
  PreprocessSpec p = loaded.preprocess;  // the normalisation the views used, at the trained size
  p.resize_size = img, p.input_size = img;
  // The mask token is a training-time parameter timm's ViT does not have: left out, so timm
  // loads the file strictly, and so is its override.
  auto meta = models::export_metadata(loaded.provenance.at("model"), spec.overrides, p);
  meta["medfm.method"] = job.method;
  meta["medfm.checkpoint_step"] = std::to_string(info.step);
  models::save_vit_weights(out_vit, out, meta, {"mask_token"});
  return ckpt;
}

}  // namespace medfm::extract

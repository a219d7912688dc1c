// `medfm pretrain` as data: a self-supervised method (dino | ibot | dinov2 | mae | simclr) trains a registry ViT
// (random or released weights through model.weights) on images streamed from data.* sources, with
// views made on loader threads. The run directory holds:
//   config.toml      the resolved configuration (a resume reads it back)
//   metrics.jsonl    one JSON line per step: step, loss, the method's terms, lr, wd, images/s, time
//   loss.png         the loss curve (raw and smoothed), redrawn at every checkpoint
//   checkpoints/step_<n>.safetensors   training state (train/checkpoint.h), the last keep_checkpoints
//   run.json         summary: method, steps, images/s, data, model provenance, finished or not
// Determinism: the image drawn at global position g of the run (step * global batch + slot) is
// index perm_epoch[g % N] with its augmentation keyed by (seed, epoch, index); torch's generator
// is re-seeded from (seed, step) before each step (drop path, MAE masking). So the batches do not
// depend on the loader thread count, and a resume from step k computes the same losses as a run
// never stopped.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "medfm/data/views.h"
#include "medfm/extract/pretrain_sources.h"
#include "medfm/models/backbone.h"
#include "medfm/ssl/mae_objective.h"

namespace medfm {
class Config;
}

namespace medfm::train {
class Objective;
class Dist;
}

namespace medfm::extract {

struct PretrainTrain {
  int64_t max_steps = 1000;     // the schedules' length
  double max_minutes = 0;       // > 0: stop (with a checkpoint) after this much wall time
  int64_t stop_after = 0;       // > 0: stop after this many steps of the schedule (resumable)
  int batch_size = 64;          // images per optimiser step (all processes together)
  int accumulate = 1;           // micro-batches per step (batch_size / accumulate each)
  double blr = 5e-4;            // base learning rate per 256 images: lr = blr * batch_size / 256
  double min_lr = 1e-6;
  int64_t warmup_steps = 100;
  double weight_decay = 0.04, weight_decay_end = 0.4;
  std::string clip_mode = "per_param";  // per_param | per_module | global | none
  double clip_grad = 3.0;
  std::string precision = "fp32";  // fp32 | bf16 (autocast)
  int64_t seed = 0;
  int workers = 2;                 // loader threads
  int64_t checkpoint_every = 500;  // steps (a checkpoint is also written at the end)
  int keep_checkpoints = 2;
  int64_t freeze_backbone_steps = 0;  // continued pre-training: heads only for the first steps
};

struct PretrainDino {
  int out_dim = 65536, hidden_dim = 2048, bottleneck_dim = 256;
  bool norm_last_layer = true;
  double teacher_temp = 0.04, warmup_teacher_temp = 0.04;
  int64_t teacher_temp_warmup_steps = 0;
  double momentum_teacher = 0.996;  // cosine to 1 over the run
  int64_t freeze_last_layer_steps = 0;
  double student_temp = 0.1, center_momentum = 0.9;
};

struct PretrainIbot {  // iBOT's masked patch loss (methods ibot and dinov2)
  double mask_ratio_min = 0.1, mask_ratio_max = 0.5, mask_probability = 0.5;
  double loss_weight = 1.0;
  double koleo_weight = 0.1;            // dinov2 only (ibot: 0)
  std::string centering = "centering";  // centering | sinkhorn_knopp (both the cls and patch targets)
};

struct PretrainSimclr {
  int hidden_dim = 2048, out_dim = 128;
  double temperature = 0.1;
};

struct PretrainJob {
  std::string method = "dino";  // dino | ibot | dinov2 | mae | simclr
  std::string out;              // run directory
  bool resume = false;
  models::ModelSpec model;
  int img_size = 0;  // model.img_size: the encoder's native size (0: views.global_size)
  PretrainData data;
  data::ViewSpec views;
  PretrainTrain train;
  PretrainDino dino;
  PretrainIbot ibot;
  ssl::MaeOptions mae;
  PretrainSimclr simclr;

  // The defaults for a method and a view preset (the keys a config does not set keep these).
  static PretrainJob defaults(const std::string& method, const std::string& preset);
  void bind(Config& cfg);  // method, out, model.*, data.*, views.*, train.*, dino.*, ibot.*, mae.*, simclr.*
  bool uses_masks() const { return method == "ibot" || method == "dinov2"; }
  int trained_img_size() const { return img_size > 0 ? img_size : views.global_size; }
  // model.* with the trained size as an architecture override.
  models::ModelSpec trained_model_spec() const;
};

struct PretrainProgress {
  int64_t step = 0, total = 0;  // steps done, schedule length
  double loss = 0, images_per_s = 0;
};

struct PretrainResult {
  int64_t first_step = 0, steps_done = 0;  // steps_done counts from 0 (a resume starts at first_step)
  double seconds = 0, images_per_s = 0, last_loss = 0;
  std::string stopped_by;  // "max_steps", "max_minutes", "stop_after"
  std::string checkpoint;  // the last one written
  std::string data_description;
  int rank = 0, world = 1;  // data parallel: this process (only rank 0 writes the run directory)
};

// Throws ConfigError for bad keys or an out directory that holds another run (without resume),
// Error for a non-finite loss (naming the step). resolved_toml is written as config.toml.
// Under torchrun / `medfm launch` variables (train/distributed.h) the processes share the global
// batch: rank r makes slots [r*B/W, (r+1)*B/W) of each step; only rank 0 writes files and reports
// progress; every rank returns the same losses.
PretrainResult run_pretrain(const PretrainJob& job, const std::string& resolved_toml,
                            const std::function<void(const PretrainProgress&)>& progress = {},
                            const std::function<void(const std::string&)>& log = {});

// The method's objective with the job's options, over a backbone (used by run and export).
// dist (optional): the methods' global-batch statistics over its ranks.
std::unique_ptr<train::Objective> make_objective(const PretrainJob& job, models::Vit backbone, train::Dist* dist = nullptr);

// The newest checkpoint in RUN/checkpoints ("" when none).
std::string latest_checkpoint(const std::string& run_dir);

// `medfm export`: the backbone of RUN's newest checkpoint (or `checkpoint`) in timm key layout,
// with __metadata__ medfm.model, medfm.overrides (JSON list) and medfm.preprocess (JSON) so
// `medfm embed --weights FILE` needs no --model. Returns the checkpoint used.
// bind_extra binds keys the caller added to the saved config (the CLI's runtime.*).
std::string export_backbone(const std::string& run_dir, const std::string& out, const std::string& checkpoint = "",
                            const std::function<void(Config&)>& bind_extra = {});

// A run's config.toml read back as a job (the method's and preset's defaults under it).
PretrainJob load_pretrain_job(const std::string& toml_path, const std::function<void(Config&)>& bind_extra = {});

}  // namespace medfm::extract

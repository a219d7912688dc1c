// Fine-tuning a ViT backbone with a linear classifier on labelled images (CSV: path, label, [id],
// [patient]), evaluated on a validation CSV with the classification report (eval/report.h).
//   full   every parameter trains; AdamW with MAE / RETFound's layer-wise lr decay: embeddings get
//          lr * decay^(depth + 1), block i lr * decay^(depth - i), the final norm and the classifier
//          lr; no weight decay on norms, biases and tokens
//   lora   LoRA adapters (models/lora.h) on attention qkv and proj (and the MLP with
//          finetune.lora_mlp); the backbone is frozen, the adapters and the classifier train
// Training images pass through one random view per step (data/views.h, the preset's flips,
// rotations and colour / stain jitter; a random resized crop of scale finetune.crop_scale..1; no blur
// or solarisation) keyed by (seed, epoch, index); validation images use the model's preprocessing.
// lr: linear warm-up over finetune.warmup_epochs, then cosine to 0, per step.
// Output directory: the report of the last epoch, classifier.safetensors, backbone.safetensors
// (timm layout, LoRA merged, loads with `medfm embed --weights`), lora.safetensors (the adapters
// alone, with rank / alpha / mlp in its metadata) for lora, and metrics.jsonl (per epoch: loss,
// validation accuracy).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "medfm/core/config.h"
#include "medfm/data/views.h"
#include "medfm/models/backbone.h"

namespace medfm::extract {

struct FinetuneJob {
  models::ModelSpec model;
  std::string train, val;  // CSVs: path, label, [id], [patient]
  std::string label_column = "label";
  std::string mode = "full";  // full | lora
  int lora_rank = 8;
  double lora_alpha = 16, lora_dropout = 0.0;
  bool lora_mlp = false;
  int epochs = 10, batch_size = 16, warmup_epochs = 1;
  double lr = 1e-4, weight_decay = 0.05, layer_decay = 0.75;
  double crop_scale = 0.5;
  std::string views = "natural";  // view preset for the training augmentation
  int64_t seed = 0;
  int bootstrap = 1000;
  std::string out;

  void bind(Config& cfg);  // finetune.* and model.* keys
};

struct FinetuneSummary {
  int64_t n_train = 0, n_val = 0, steps = 0;
  double last_loss = 0;
  std::vector<std::pair<std::string, double>> metrics;
  std::string report_dir;
};

// progress(step, total steps, loss).
FinetuneSummary run_finetune(const FinetuneJob& job, const std::string& resolved_config,
                             const std::function<void(int64_t, int64_t, double)>& progress = {});

}  // namespace medfm::extract

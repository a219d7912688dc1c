// MLP probe: standardised features -> Linear(D, hidden) -> ReLU -> Dropout -> Linear(hidden, C),
// AdamW with cross-entropy on shuffled mini-batches; after each epoch the balanced accuracy on the
// validation rows is measured and the best epoch's weights are kept (early stopping after
// `patience` epochs without improvement). Seeded: the same inputs and seed give the same weights.
// Tensors: x [N,D] (float32), y class ids. Not thread-safe per object.
#pragma once
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "medfm/adapt/logistic.h"

namespace medfm::adapt {

struct MlpProbeOptions {
  int64_t hidden = 256;
  double dropout = 0.1, lr = 1e-3, weight_decay = 1e-4;
  int batch_size = 256, max_epochs = 100, patience = 10;
  uint64_t seed = 0;
};

struct MlpProbe {
  Standardizer scaler;
  at::Tensor w1, b1, w2, b2;  // [hidden,D], [hidden], [C,hidden], [C]
  int best_epoch = 0, epochs_run = 0;
  double best_val_balanced_accuracy = 0;
  at::Tensor predict_proba(const at::Tensor& x) const;  // [N,C] float32 (eval mode: no dropout)
};

// train / val: row indices into x and y; val must not be empty (it picks the epoch).
MlpProbe fit_mlp_probe(const at::Tensor& x, const std::vector<int>& y, int n_classes, const std::vector<int64_t>& train,
                       const std::vector<int64_t>& val, const MlpProbeOptions& opts);

}  // namespace medfm::adapt

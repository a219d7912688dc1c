// kNN probe as DINO's eval_knn: L2-normalised features, cosine similarity to every training row,
// the k nearest vote with weight exp(similarity / T) for their class. Returns the normalised votes
// [M,C] (float32, rows sum to 1), so that argmax is DINO's prediction and AUROC can use them.
// Similarities are computed in chunks of test rows (memory O(chunk x N)). Thread-safe.
#pragma once
#include <ATen/Tensor.h>

#include <vector>

namespace medfm::adapt {

struct KnnOptions {
  int k = 20;
  double temperature = 0.07;
  int64_t chunk = 1024;  // test rows per similarity block
};

at::Tensor knn_proba(const at::Tensor& train_x, const std::vector<int>& train_y, int n_classes, const at::Tensor& test_x,
                     const KnnOptions& opts = {});

}  // namespace medfm::adapt

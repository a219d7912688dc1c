// SimpleShot (Wang et al. 2019, "CL2N"), as UNI evaluates few-shot: support and query features are
// centred by the support mean and L2-normalised; each class's prototype is the mean of its
// normalised support rows; a query takes the nearest prototype (Euclidean). Scores are the softmax
// of negative distances (for AUROC; argmax is the nearest prototype).
// Episodes: `shots` rows per class drawn without replacement from Rng({seed, shots, episode}); a
// class with fewer rows uses all of them. Thread-safe.
#pragma once
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace medfm::adapt {

// support_x [S,D] with class ids support_y; query_x [M,D] -> scores [M,C] float32.
at::Tensor simpleshot_proba(const at::Tensor& support_x, const std::vector<int>& support_y, int n_classes, const at::Tensor& query_x);

// Row indices (into y) of one episode's support set, sorted.
std::vector<int64_t> episode_support(const std::vector<int>& y, int n_classes, int shots, int episode, uint64_t seed);

}  // namespace medfm::adapt

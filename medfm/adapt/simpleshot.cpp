#include "medfm/adapt/simpleshot.h"

#include <torch/torch.h>

#include <algorithm>

#include "medfm/core/error.h"
#include "medfm/core/rng.h"

namespace medfm::adapt {

at::Tensor simpleshot_proba(const at::Tensor& support_x, const std::vector<int>& support_y, int n_classes, const at::Tensor& query_x) {
  torch::NoGradGuard ng;
  MEDFM_CHECK(support_x.dim() == 2 && query_x.dim() == 2 && support_x.size(1) == query_x.size(1), "simpleshot: features of ",
              support_x.size(1), " and ", query_x.size(1), " dimensions");
  MEDFM_CHECK(support_x.size(0) == static_cast<int64_t>(support_y.size()) && !support_y.empty(), "simpleshot: ",
              support_x.size(0), " support rows for ", support_y.size(), " labels");
  auto norm = torch::nn::functional::NormalizeFuncOptions().dim(1);
  auto s = support_x.to(torch::kFloat);
  auto centre = s.mean(0, true);
  s = torch::nn::functional::normalize(s - centre, norm);
  auto q = torch::nn::functional::normalize(query_x.to(torch::kFloat).to(s.device()) - centre, norm);
  auto labels = torch::tensor(std::vector<int64_t>(support_y.begin(), support_y.end()), torch::kLong).to(s.device());
  auto sums = torch::zeros({n_classes, s.size(1)}, s.options()).index_add_(0, labels, s);
  auto counts = torch::bincount(labels, {}, n_classes).to(torch::kFloat).unsqueeze(1);
  // A class without support rows can never be nearest: its prototype is at infinite distance.
  auto dist = torch::cdist(q, sums / counts.clamp_min(1));  // [M,C]
  dist = torch::where(counts.t() > 0, dist, torch::full_like(dist, INFINITY));
  return torch::softmax(-dist, 1);
}

std::vector<int64_t> episode_support(const std::vector<int>& y, int n_classes, int shots, int episode, uint64_t seed) {
  MEDFM_CHECK(shots >= 1, "simpleshot: ", shots, " shots");
  Rng rng({seed, static_cast<uint64_t>(shots), static_cast<uint64_t>(episode)});
  std::vector<std::vector<int64_t>> by_class(n_classes);
  for (size_t i = 0; i < y.size(); ++i) by_class.at(y[i]).push_back(static_cast<int64_t>(i));
  std::vector<int64_t> out;
  for (auto& rows : by_class) {
    const size_t take = std::min(rows.size(), static_cast<size_t>(shots));
    rng.sample_front(rows, take);
    out.insert(out.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(take));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace medfm::adapt

#include "medfm/adapt/knn.h"

#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::adapt {

at::Tensor knn_proba(const at::Tensor& train_x, const std::vector<int>& train_y, int n_classes, const at::Tensor& test_x,
                     const KnnOptions& opts) {
  torch::NoGradGuard ng;
  MEDFM_CHECK(train_x.dim() == 2 && test_x.dim() == 2 && train_x.size(1) == test_x.size(1), "knn: features of ",
              train_x.size(1), " and ", test_x.size(1), " dimensions");
  MEDFM_CHECK(train_x.size(0) == static_cast<int64_t>(train_y.size()) && train_x.size(0) > 0, "knn: ", train_x.size(0),
              " training rows for ", train_y.size(), " labels");
  MEDFM_CHECK(opts.k >= 1 && opts.temperature > 0 && opts.chunk >= 1, "knn: k = ", opts.k, ", T = ", opts.temperature);
  const int64_t k = std::min<int64_t>(opts.k, train_x.size(0));
  const auto dtype = train_x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto a = torch::nn::functional::normalize(train_x.to(dtype), torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto labels = torch::tensor(std::vector<int64_t>(train_y.begin(), train_y.end()), torch::kLong).to(a.device());
  auto out = torch::empty({test_x.size(0), n_classes}, a.options());
  for (int64_t s = 0; s < test_x.size(0); s += opts.chunk) {
    const int64_t e = std::min(test_x.size(0), s + opts.chunk);
    auto b = torch::nn::functional::normalize(test_x.slice(0, s, e).to(a.options()),
                                              torch::nn::functional::NormalizeFuncOptions().dim(1));
    auto sim = torch::mm(b, a.t());  // [m,D] x [D,N] -> [m,N]
    auto top = sim.topk(k, 1, true, true);
    auto w = (std::get<0>(top) / opts.temperature).exp();  // [m,k]
    auto cls = labels.index_select(0, std::get<1>(top).reshape(-1)).reshape({e - s, k});
    auto votes = torch::zeros({e - s, n_classes}, w.options()).scatter_add_(1, cls, w);
    out.slice(0, s, e).copy_(votes / votes.sum(1, true));
  }
  return out;
}

}  // namespace medfm::adapt

#include "medfm/ssl/simclr.h"

#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::ssl {

SimclrHeadImpl::SimclrHeadImpl(const SimclrHeadOptions& o) : o_(o) { reset(); }

void SimclrHeadImpl::reset() {
  MEDFM_CHECK_T(ConfigError, o_.in_dim > 0 && o_.hidden_dim > 0 && o_.out_dim > 0, "simclr head: dimensions must be positive");
  mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(o_.in_dim, o_.hidden_dim), torch::nn::ReLU(),
                                                     torch::nn::Linear(o_.hidden_dim, o_.out_dim)));
}

torch::Tensor SimclrHeadImpl::forward(const torch::Tensor& x) { return mlp->forward(x); }

torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature, const Gather& gather) {
  MEDFM_CHECK(z1.dim() == 2 && z1.sizes() == z2.sizes(), "nt_xent: views ", z1.sizes(), " and ", z2.sizes());
  MEDFM_CHECK_T(ConfigError, temperature > 0, "simclr: temperature must be positive");
  namespace F = torch::nn::functional;
  const auto norm = F::NormalizeFuncOptions().dim(1).p(2);
  auto a1 = F::normalize(z1, norm), a2 = F::normalize(z2, norm);  // this rank's anchors
  const int64_t n = z1.size(0);
  auto g1 = gather.all_gather ? gather.all_gather(a1) : a1;       // [N,K], N = world * n
  auto g2 = gather.all_gather ? gather.all_gather(a2) : a2;
  const int64_t N = g1.size(0), off = gather.all_gather ? gather.rank * n : 0;
  auto keys = torch::cat({g1, g2});                                // [2N,K]: view 1 then view 2
  auto anchors = torch::cat({a1, a2});                             // [2n,K]
  auto logits = anchors.matmul(keys.t()) / temperature;            // [2n,2N]
  auto rows = torch::arange(n, torch::kLong);
  auto self = torch::cat({rows + off, rows + off + N});            // each anchor's own column
  auto pos = torch::cat({rows + off + N, rows + off});             // its other view
  logits = logits.index_put({torch::arange(2 * n, torch::kLong), self},
                            torch::full({2 * n}, -std::numeric_limits<float>::infinity(), logits.options()));
  return F::cross_entropy(logits, pos);
}

}  // namespace medfm::ssl

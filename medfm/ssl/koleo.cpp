#include "medfm/ssl/koleo.h"

#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::ssl {

at::Tensor koleo_loss(const at::Tensor& x_in, double eps) {
  MEDFM_CHECK(x_in.dim() == 2 && x_in.size(0) >= 2, "koleo: needs [B>=2, D], got ", x_in.sizes());
  namespace F = torch::nn::functional;
  auto x = F::normalize(x_in.to(at::kFloat), F::NormalizeFuncOptions().p(2).dim(-1).eps(eps));
  at::Tensor nn_idx;
  {
    torch::NoGradGuard ng;  // the neighbour search carries no gradient (as DINOv2)
    auto dots = x.matmul(x.t());
    dots.fill_diagonal_(-1);
    nn_idx = std::get<1>(dots.max(1));  // [B]
  }
  auto d = F::pairwise_distance(x, x.index_select(0, nn_idx), F::PairwiseDistanceFuncOptions().p(2).eps(1e-8));
  return -(d + eps).log().mean();
}

}  // namespace medfm::ssl

// DINOv2's KoLeo regulariser (Kozachenko-Leonenko entropy estimator, dinov2/loss/koleo_loss.py
// semantics): embeddings L2-normalised, each one's nearest other embedding by inner product, loss =
// -mean(log(||x_i - x_nn(i)|| + eps)) with the pairwise distance of torch.nn.PairwiseDistance
// (p=2, eps=1e-8 added to the difference) and eps = 1e-8. Spreads the batch's embeddings apart.
#pragma once
#include <ATen/Tensor.h>

namespace medfm::ssl {

// x [B,D], B >= 2 (computed in float32 as DINOv2 does under autocast).
at::Tensor koleo_loss(const at::Tensor& x, double eps = 1e-8);

}  // namespace medfm::ssl

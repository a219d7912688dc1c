// SimCLR's parts (google-research/simclr semantics, v1 head): a projection MLP
// (Linear D->hidden, ReLU, Linear hidden->out) and the NT-Xent loss over two views: embeddings L2
// normalised, cosine similarities / temperature, each sample's positive is its other view and
// every other sample of both views (of the global batch, when a gather is given) a negative;
// cross-entropy averaged over the 2N anchors.
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>

#include <functional>

namespace medfm::ssl {

struct SimclrHeadOptions {
  int in_dim = 384, hidden_dim = 2048, out_dim = 128;
};

class SimclrHeadImpl : public torch::nn::Cloneable<SimclrHeadImpl> {
 public:
  explicit SimclrHeadImpl(const SimclrHeadOptions& o);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [N,in] -> [N,out]
  torch::nn::Sequential mlp{nullptr};             // mlp.0 (Linear), mlp.1 (ReLU), mlp.2 (Linear)

 private:
  SimclrHeadOptions o_;
};
TORCH_MODULE(SimclrHead);

// Gathers [n,K] from every process into [world*n,K] in rank order, keeping this rank's rows
// differentiable; `rank` is this process's index. Identity on one process.
struct Gather {
  std::function<torch::Tensor(const torch::Tensor&)> all_gather;
  int rank = 0;
};

// NT-Xent of view embeddings z1, z2 [n,K] (row i of each: the same image). With a gather, the
// negatives come from the global batch and the loss is this rank's anchors' mean.
torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature, const Gather& gather = {});

}  // namespace medfm::ssl

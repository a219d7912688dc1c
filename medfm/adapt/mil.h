// Multiple-instance learning heads over one bag of tile embeddings x [N,D] -> class logits [C] and a
// per-tile weight [N] (what a heatmap draws):
//   mean     h = ReLU(fc(x)); z = mean_i h_i; logits = classifier(z); weights 1/N
//   abmil    gated attention (Ilse et al. 2018, as CLAM's Attn_Net_Gated):
//            a_i = attention_c(tanh(attention_a(h_i)) * sigmoid(attention_b(h_i))), w = softmax_i(a),
//            z = sum_i w_i h_i
//   transmil TransMIL-style: a class token and `layers` pre-norm transformer blocks (full softmax
//            attention, O(N^2) memory) over h; logits from the normed class token; weights = the
//            last block's class-token attention to the tiles, mean over heads, renormalised
// Parameter names (fc.*, attention_{a,b,c}.*, classifier.*, cls_token, blocks.K.*, norm.*) are fixed:
// the golden test loads a PyTorch reference's state_dict by name. Dropout after fc (p = dropout).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <memory>
#include <string>
#include <utility>

namespace medfm::adapt {

struct MilOptions {
  std::string method = "abmil";  // mean | abmil | transmil
  int64_t in_dim = 0, hidden = 256, attention_dim = 128;
  int n_classes = 2;
  double dropout = 0.25;
  int layers = 2, heads = 4;     // transmil
};

class MilHead : public torch::nn::Module {
 public:
  // bag [N,D] -> (logits [C], weights [N] summing to 1).
  virtual std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& bag) = 0;
};

// Throws ConfigError for an unknown method or bad sizes.
std::shared_ptr<MilHead> make_mil_head(const MilOptions& o);

}  // namespace medfm::adapt

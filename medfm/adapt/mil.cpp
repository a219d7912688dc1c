#include "medfm/adapt/mil.h"

#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::adapt {

namespace {

namespace nn = torch::nn;

class MeanMil : public MilHead {
 public:
  explicit MeanMil(const MilOptions& o)
      : fc_(register_module("fc", nn::Linear(o.in_dim, o.hidden))),
        drop_(register_module("drop", nn::Dropout(o.dropout))),
        classifier_(register_module("classifier", nn::Linear(o.hidden, o.n_classes))) {}
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& bag) override {
    auto h = drop_(torch::relu(fc_(bag)));  // [N,D] -> [N,H]
    return {classifier_(h.mean(0)), torch::full({bag.size(0)}, 1.0 / static_cast<double>(bag.size(0)), h.options())};
  }

 private:
  nn::Linear fc_;
  nn::Dropout drop_;
  nn::Linear classifier_;
};

class AbMil : public MilHead {
 public:
  explicit AbMil(const MilOptions& o)
      : fc_(register_module("fc", nn::Linear(o.in_dim, o.hidden))),
        drop_(register_module("drop", nn::Dropout(o.dropout))),
        a_(register_module("attention_a", nn::Linear(o.hidden, o.attention_dim))),
        b_(register_module("attention_b", nn::Linear(o.hidden, o.attention_dim))),
        c_(register_module("attention_c", nn::Linear(o.attention_dim, 1))),
        classifier_(register_module("classifier", nn::Linear(o.hidden, o.n_classes))) {}
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& bag) override {
    auto h = drop_(torch::relu(fc_(bag)));                                        // [N,H]
    auto score = c_(torch::tanh(a_(h)) * torch::sigmoid(b_(h))).squeeze(1);    // [N,A] -> [N]
    auto w = torch::softmax(score, 0);
    auto z = torch::mv(h.t(), w);                                                // [H]
    return {classifier_(z), w};
  }

 private:
  nn::Linear fc_;
  nn::Dropout drop_;
  nn::Linear a_, b_, c_, classifier_;
};

// Pre-norm transformer block; keeps the last attention map's class-token row.
class Block : public nn::Module {
 public:
  Block(int64_t dim, int heads)
      : heads_(heads),
        norm1_(register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({dim})))),
        qkv_(register_module("qkv", nn::Linear(dim, 3 * dim))),
        proj_(register_module("proj", nn::Linear(dim, dim))),
        norm2_(register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({dim})))),
        fc1_(register_module("fc1", nn::Linear(dim, 2 * dim))),
        fc2_(register_module("fc2", nn::Linear(2 * dim, dim))) {}
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cls_attention) {
    const int64_t n = x.size(0), d = x.size(1), hd = d / heads_;
    auto qkv = qkv_(norm1_(x)).reshape({n, 3, heads_, hd}).permute({1, 2, 0, 3});  // [n,3D] -> [3,h,n,hd]
    auto q = qkv[0], k = qkv[1], v = qkv[2];
    auto attn = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(hd)), -1);  // [h,n,n]
    if (cls_attention) *cls_attention = attn.select(1, 0).mean(0);  // [n]: the class token's row
    auto o = torch::matmul(attn, v).permute({1, 0, 2}).reshape({n, d});  // [h,n,hd] -> [n,D]
    auto y = x + proj_(o);
    return y + fc2_(torch::gelu(fc1_(norm2_(y))));
  }

 private:
  int heads_;
  nn::LayerNorm norm1_;
  nn::Linear qkv_, proj_;
  nn::LayerNorm norm2_;
  nn::Linear fc1_, fc2_;
};

class TransMil : public MilHead {
 public:
  explicit TransMil(const MilOptions& o)
      : fc_(register_module("fc", nn::Linear(o.in_dim, o.hidden))),
        drop_(register_module("drop", nn::Dropout(o.dropout))),
        cls_(register_parameter("cls_token", torch::randn({1, o.hidden}) * 0.02)),
        blocks_(register_module("blocks", nn::ModuleList())),
        norm_(register_module("norm", nn::LayerNorm(nn::LayerNormOptions({o.hidden})))),
        classifier_(register_module("classifier", nn::Linear(o.hidden, o.n_classes))) {
    MEDFM_CHECK_T(ConfigError, o.heads >= 1 && o.hidden % o.heads == 0, "mil: hidden ", o.hidden, " is not a multiple of ", o.heads,
                  " heads");
    MEDFM_CHECK_T(ConfigError, o.layers >= 1, "mil: transmil needs at least one layer");
    for (int i = 0; i < o.layers; ++i) {
      auto b = std::make_shared<Block>(o.hidden, o.heads);
      blocks_->push_back(b);
      list_.push_back(b);
    }
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& bag) override {
    auto x = torch::cat({cls_, drop_(torch::relu(fc_(bag)))});  // [1+N,H]
    torch::Tensor att;
    for (size_t i = 0; i < list_.size(); ++i) x = list_[i]->forward(x, i + 1 == list_.size() ? &att : nullptr);
    auto w = att.slice(0, 1);  // the class token's attention to the tiles
    return {classifier_(norm_(x[0])), w / w.sum()};
  }

 private:
  nn::Linear fc_;
  nn::Dropout drop_;
  torch::Tensor cls_;
  nn::ModuleList blocks_;
  std::vector<std::shared_ptr<Block>> list_;
  nn::LayerNorm norm_;
  nn::Linear classifier_;
};

}  // namespace

std::shared_ptr<MilHead> make_mil_head(const MilOptions& o) {
  MEDFM_CHECK_T(ConfigError, o.in_dim > 0 && o.hidden > 0 && o.attention_dim > 0 && o.n_classes >= 2, "mil: in_dim ", o.in_dim,
                ", hidden ", o.hidden, ", attention_dim ", o.attention_dim, ", classes ", o.n_classes);
  MEDFM_CHECK_T(ConfigError, o.dropout >= 0 && o.dropout < 1, "mil: dropout ", o.dropout, " is not in [0, 1)");
  if (o.method == "mean") return std::make_shared<MeanMil>(o);
  if (o.method == "abmil") return std::make_shared<AbMil>(o);
  if (o.method == "transmil") return std::make_shared<TransMil>(o);
  throw ConfigError("mil: method '" + o.method + "' is not mean, abmil or transmil");
}

}  // namespace medfm::adapt

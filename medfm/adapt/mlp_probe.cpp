#include "medfm/adapt/mlp_probe.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <numeric>

#include "medfm/core/error.h"
#include "medfm/core/rng.h"
#include "medfm/eval/metrics.h"

namespace medfm::adapt {

namespace {
at::Tensor forward(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
                   double dropout, bool train) {
  auto h = torch::relu(torch::addmm(b1, x, w1.t()));  // [N,D] -> [N,H]
  if (train && dropout > 0) h = torch::dropout(h, dropout, true);
  return torch::addmm(b2, h, w2.t());  // [N,H] -> [N,C]
}
}  // namespace

at::Tensor MlpProbe::predict_proba(const at::Tensor& x) const {
  torch::NoGradGuard ng;
  return torch::softmax(forward(scaler.apply(x), w1, b1, w2, b2, 0, false), 1);
}

MlpProbe fit_mlp_probe(const at::Tensor& x, const std::vector<int>& y, int n_classes, const std::vector<int64_t>& train,
                       const std::vector<int64_t>& val, const MlpProbeOptions& o) {
  MEDFM_CHECK(!train.empty() && !val.empty(), "probe: the MLP needs training and validation rows");
  MEDFM_CHECK_T(ConfigError, o.hidden >= 1 && o.batch_size >= 1 && o.max_epochs >= 1 && o.patience >= 1 && o.lr > 0 && o.dropout >= 0 &&
                                 o.dropout < 1,
                "probe: MLP hidden ", o.hidden, ", batch ", o.batch_size, ", epochs ", o.max_epochs, ", lr ", o.lr);
  auto idx = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
  MlpProbe p;
  p.scaler = Standardizer::fit(x.index_select(0, idx(train)).to(torch::kFloat));
  auto xt = p.scaler.apply(x.index_select(0, idx(train))).to(torch::kFloat);
  auto xv = p.scaler.apply(x.index_select(0, idx(val))).to(torch::kFloat);
  std::vector<int64_t> yt_v;
  for (auto i : train) yt_v.push_back(y.at(i));
  std::vector<int> yv;
  for (auto i : val) yv.push_back(y.at(i));
  auto yt = torch::tensor(yt_v, torch::kLong);
  // nn.Linear's default initialisation, from a generator seeded by the probe's seed.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const int64_t d = x.size(1);
  auto uni = [&](std::vector<int64_t> shape, int64_t fan_in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return torch::empty(shape).uniform_(-b, b, gen).requires_grad_(true);
  };
  auto w1 = uni({o.hidden, d}, d), b1 = uni({o.hidden}, d), w2 = uni({n_classes, o.hidden}, o.hidden), b2 = uni({n_classes}, o.hidden);
  torch::optim::AdamW opt({w1, b1, w2, b2}, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  const int64_t n = xt.size(0);
  double best = -1;
  int since = 0;
  for (int e = 0; e < o.max_epochs; ++e) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    Rng rng({o.seed, static_cast<uint64_t>(e), 0x31ULL});
    rng.shuffle(order);
    auto perm = torch::tensor(order, torch::kLong);
    torch::manual_seed(o.seed * 1000003ULL + static_cast<uint64_t>(e));  // dropout masks
    for (int64_t s = 0; s < n; s += o.batch_size) {
      auto b = perm.slice(0, s, std::min(n, s + o.batch_size));
      auto loss = torch::nn::functional::cross_entropy(forward(xt.index_select(0, b), w1, b1, w2, b2, o.dropout, true), yt.index_select(0, b));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    ++p.epochs_run;
    torch::NoGradGuard ng;
    auto pred = forward(xv, w1, b1, w2, b2, 0, false).argmax(1).to(torch::kInt).contiguous();
    const double v = eval::balanced_accuracy(yv, std::vector<int>(pred.data_ptr<int>(), pred.data_ptr<int>() + pred.numel()), n_classes);
    if (v > best + 1e-12) {
      best = v;
      since = 0;
      p.best_epoch = e;
      p.w1 = w1.detach().clone(), p.b1 = b1.detach().clone(), p.w2 = w2.detach().clone(), p.b2 = b2.detach().clone();
    } else if (++since >= o.patience) {
      break;
    }
  }
  p.best_val_balanced_accuracy = best;
  return p;
}

}  // namespace medfm::adapt

#include "medfm/adapt/logistic.h"

#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"
#include "medfm/eval/metrics.h"
#include "medfm/eval/splits.h"

namespace medfm::adapt {

namespace {

at::Tensor labels_tensor(const std::vector<int>& y, const at::Device& device) {
  std::vector<int64_t> v(y.begin(), y.end());
  return torch::tensor(v, torch::kLong).to(device);
}

at::Tensor rows(const at::Tensor& x, const std::vector<int64_t>& idx) {
  return x.index_select(0, torch::tensor(idx, torch::kLong).to(x.device()));
}

std::vector<int> argmax_rows(const at::Tensor& p) {
  auto a = p.argmax(1).to(torch::kCPU).to(torch::kInt).contiguous();
  return std::vector<int>(a.data_ptr<int>(), a.data_ptr<int>() + a.numel());
}

// float64 inputs are solved in float64 (reference comparisons); everything else in float32.
at::ScalarType work_dtype(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

}  // namespace

Standardizer Standardizer::fit(const at::Tensor& x) {
  MEDFM_CHECK(x.dim() == 2 && x.size(0) > 0, "probe: features must be [N,D] with N > 0");
  auto xf = x.to(work_dtype(x));
  auto mean = xf.mean(0);
  auto scale = xf.std(0, /*unbiased=*/false);
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  return {mean, scale};
}

at::Tensor Standardizer::apply(const at::Tensor& x) const { return (x.to(mean.scalar_type()) - mean) / scale; }

std::vector<double> log_grid(double lo, double hi, int n) {
  MEDFM_CHECK(lo > 0 && hi >= lo && n >= 1, "probe: grid ", lo, "..", hi, " of ", n, " values");
  std::vector<double> g(n);
  const double a = std::log10(lo), b = std::log10(hi);
  for (int i = 0; i < n; ++i) g[i] = std::pow(10.0, n == 1 ? a : a + (b - a) * i / (n - 1));
  return g;
}

void LogisticRegression::fit(const at::Tensor& x, const std::vector<int>& y, int n_classes, double c, const LogisticOptions& opts) {
  torch::NoGradGuard outer;
  MEDFM_CHECK(x.dim() == 2 && x.size(0) == static_cast<int64_t>(y.size()) && x.size(0) > 0, "probe: ", x.size(0), " rows for ",
              y.size(), " labels");
  MEDFM_CHECK(c > 0, "probe: C = ", c, " (must be > 0)");
  const int64_t n = x.size(0), d = x.size(1);
  auto xf = x.to(work_dtype(x)).contiguous();
  auto target = labels_tensor(y, x.device());
  auto fo = torch::TensorOptions().dtype(xf.scalar_type()).device(x.device());
  if (!w_.defined() || w_.size(0) != d || w_.size(1) != n_classes || w_.scalar_type() != fo.dtype() || w_.device() != x.device()) {
    w_ = torch::zeros({d, n_classes}, fo);
    b_ = torch::zeros({n_classes}, fo);
  }
  auto w = w_.clone().requires_grad_(true), b = b_.clone().requires_grad_(true);
  const double l2 = 1.0 / (2.0 * c * static_cast<double>(n));
  torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0)
                                      .max_iter(opts.max_iter)
                                      .max_eval(opts.max_iter * 5 / 4 + 25)
                                      .tolerance_grad(opts.tol)
                                      .tolerance_change(1e-12)
                                      .history_size(10)
                                      .line_search_fn("strong_wolfe"));
  auto closure = [&] {
    torch::AutoGradMode on(true);
    opt.zero_grad();
    auto logits = torch::addmm(b, xf, w);  // [N,D] x [D,C] + [C] -> [N,C]
    auto loss = torch::nn::functional::cross_entropy(logits, target) + l2 * w.pow(2).sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
  w_ = w.detach();
  b_ = b.detach();
  MEDFM_CHECK(torch::isfinite(w_).all().item<bool>() && torch::isfinite(b_).all().item<bool>(),
              "probe: logistic regression diverged at C = ", c, " (non-finite weights)");
  const auto& state = static_cast<const torch::optim::LBFGSParamState&>(*opt.state().begin()->second);
  iterations_ = state.n_iter();
}

at::Tensor LogisticRegression::predict_proba(const at::Tensor& x) const {
  MEDFM_CHECK(w_.defined(), "probe: predict before fit");
  torch::NoGradGuard ng;
  return torch::softmax(torch::addmm(b_, x.to(w_.options()), w_), 1);
}

LogisticProbe fit_logistic_probe(const at::Tensor& x, const std::vector<int>& y, int n_classes, const std::vector<int64_t>& train,
                                 const std::vector<int64_t>& val, const LogisticOptions& opts) {
  MEDFM_CHECK(!opts.c_grid.empty(), "probe: empty C grid");
  MEDFM_CHECK(!train.empty(), "probe: no training rows");
  LogisticProbe p;
  p.c_grid = opts.c_grid;
  std::sort(p.c_grid.begin(), p.c_grid.end());  // warm starts go from strong to weak regularisation
  p.c = p.c_grid.front();
  if (p.c_grid.size() > 1) {
    MEDFM_CHECK(!val.empty(), "probe: choosing C from ", p.c_grid.size(), " values needs validation rows");
    auto scaler = Standardizer::fit(rows(x, train));
    auto xt = scaler.apply(rows(x, train)), xv = scaler.apply(rows(x, val));
    auto yt = eval::take(y, train), yv = eval::take(y, val);
    LogisticRegression m;
    double best = -1;
    for (double c : p.c_grid) {
      m.fit(xt, yt, n_classes, c, opts);
      const double v = eval::balanced_accuracy(yv, argmax_rows(m.predict_proba(xv)), n_classes);
      p.val_balanced_accuracy.push_back(v);
      if (v > best + 1e-12) {
        best = v;
        p.c = c;
      }
    }
  }
  std::vector<int64_t> all(train);
  all.insert(all.end(), val.begin(), val.end());
  std::sort(all.begin(), all.end());
  p.scaler = Standardizer::fit(rows(x, all));
  p.model.fit(p.scaler.apply(rows(x, all)), eval::take(y, all), n_classes, p.c, opts);
  return p;
}

}  // namespace medfm::adapt

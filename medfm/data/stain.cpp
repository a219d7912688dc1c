#include "medfm/data/stain.h"

#include <torch/torch.h>

#include <cmath>

#include "medfm/core/error.h"

namespace medfm::data {
namespace {

// skimage.color: rgb_from_hed rows are the H, E and DAB optical-density vectors.
at::Tensor rgb_from_hed() {
  return torch::tensor({0.65, 0.70, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78}, torch::kDouble).view({3, 3});
}
at::Tensor xyz_from_rgb() {
  return torch::tensor({0.412453, 0.357580, 0.180423, 0.212671, 0.715160, 0.072169, 0.019334, 0.119193, 0.950227},
                       torch::kDouble)
      .view({3, 3});
}
const double kWhite[3] = {0.95047, 1.0, 1.08883};  // D65, 2 degrees

at::Tensor pixels(const at::Tensor& chw) {  // [3,H,W] -> [H*W,3] double
  MEDFM_CHECK(chw.dim() == 3 && chw.size(0) == 3, "stain: expected [3,H,W], got ", chw.sizes());
  return chw.to(torch::kDouble).reshape({3, -1}).t();
}
at::Tensor image(const at::Tensor& px, const at::Tensor& like) {  // [H*W,3] -> [3,H,W] float
  return px.t().reshape({3, like.size(1), like.size(2)}).to(torch::kFloat).contiguous();
}

}  // namespace

at::Tensor rgb_to_hed(const at::Tensor& rgb) {
  auto x = pixels(rgb).clamp_min(1e-6);
  auto stains = torch::matmul(torch::log(x) / std::log(1e-6), torch::inverse(rgb_from_hed()));
  return image(stains.clamp_min(0), rgb);
}

at::Tensor hed_to_rgb(const at::Tensor& hed) {
  auto log_rgb = -torch::matmul(pixels(hed) * -std::log(1e-6), rgb_from_hed());
  return image(torch::exp(log_rgb).clamp(0, 1), hed);
}

at::Tensor hed_adjust(const at::Tensor& rgb, const std::array<double, 3>& scale, const std::array<double, 3>& shift) {
  auto s = pixels(rgb_to_hed(rgb));
  s = s * torch::tensor({scale[0], scale[1], scale[2]}, torch::kDouble) +
      torch::tensor({shift[0], shift[1], shift[2]}, torch::kDouble);
  return hed_to_rgb(image(s, rgb));
}

at::Tensor hed_jitter(const at::Tensor& rgb, double sigma, double bias, at::Generator gen) {
  MEDFM_CHECK_T(ConfigError, sigma >= 0 && sigma < 1 && bias >= 0, "stain: HED jitter needs 0 <= sigma < 1, bias >= 0");
  auto a = at::empty({3}, torch::kDouble).uniform_(1 - sigma, 1 + sigma, gen);
  auto b = at::empty({3}, torch::kDouble).uniform_(-bias, bias, gen);
  return hed_adjust(rgb, {a[0].item<double>(), a[1].item<double>(), a[2].item<double>()},
                    {b[0].item<double>(), b[1].item<double>(), b[2].item<double>()});
}

at::Tensor rgb_to_lab(const at::Tensor& rgb) {
  auto x = pixels(rgb);
  x = torch::where(x > 0.04045, torch::pow((x + 0.055) / 1.055, 2.4), x / 12.92);
  auto xyz = torch::matmul(x, xyz_from_rgb().t()) / torch::tensor({kWhite[0], kWhite[1], kWhite[2]}, torch::kDouble);
  auto f = torch::where(xyz > 0.008856, torch::pow(xyz, 1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0);
  auto fx = f.select(1, 0), fy = f.select(1, 1), fz = f.select(1, 2);
  return image(torch::stack({116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)}, 1), rgb);
}

at::Tensor lab_to_rgb(const at::Tensor& lab) {
  auto l = pixels(lab);
  auto fy = (l.select(1, 0) + 16) / 116;
  auto fx = l.select(1, 1) / 500 + fy;
  auto fz = (fy - l.select(1, 2) / 200).clamp_min(0);
  auto f = torch::stack({fx, fy, fz}, 1);
  auto xyz = torch::where(f > 0.2068966, torch::pow(f, 3), (f - 16.0 / 116.0) / 7.787) *
             torch::tensor({kWhite[0], kWhite[1], kWhite[2]}, torch::kDouble);
  auto x = torch::matmul(xyz, torch::inverse(xyz_from_rgb()).t());
  x = torch::where(x > 0.0031308, 1.055 * torch::pow(x.clamp_min(0), 1 / 2.4) - 0.055, x * 12.92);
  return image(x.clamp(0, 1), lab);
}

LabStats lab_stats(const at::Tensor& rgb) {
  auto l = pixels(rgb_to_lab(rgb));
  LabStats s;
  for (int c = 0; c < 3; ++c) {
    s.mean[c] = l.select(1, c).mean().item<double>();
    s.std[c] = l.select(1, c).std(/*unbiased=*/false).item<double>();
  }
  return s;
}

at::Tensor reinhard(const at::Tensor& rgb, const LabStats& t) {
  const LabStats s = lab_stats(rgb);
  auto l = pixels(rgb_to_lab(rgb));
  for (int c = 0; c < 3; ++c) {
    MEDFM_CHECK_T(ConfigError, t.std[c] > 0, "stain: Reinhard target std must be positive");
    auto ch = l.select(1, c);
    ch.sub_(s.mean[c]).div_(std::max(s.std[c], 1e-12)).mul_(t.std[c]).add_(t.mean[c]);
  }
  return lab_to_rgb(image(l, rgb));
}

namespace {

struct Fit {
  at::Tensor he;      // [3,2] optical-density stain vectors (columns H, E)
  at::Tensor conc;    // [2,N] concentrations of every pixel
  at::Tensor max_c;   // [2] 99th percentiles
};

Fit fit(const at::Tensor& rgb, const MacenkoOptions& o) {
  auto I = pixels(rgb) * 255.0;                       // [N,3]
  auto od = -torch::log((I + 1) / o.io);              // [N,3]
  auto tissue = od.masked_select((od >= o.beta).all(1, true).expand_as(od)).view({-1, 3});
  MEDFM_CHECK(tissue.size(0) >= 10, "stain: Macenko needs tissue (", tissue.size(0), " pixels above the optical density ",
              o.beta, ")");
  auto cov = torch::cov(tissue.t());
  auto eig = torch::linalg_eigh(cov);                 // ascending eigenvalues
  auto vecs = std::get<1>(eig).narrow(1, 1, 2).clone();  // [3,2]: the plane of the two largest
  for (int k = 0; k < 2; ++k)
    if (vecs.select(1, k).sum().item<double>() < 0) vecs.select(1, k).neg_();
  auto proj = torch::matmul(tissue, vecs);            // [M,2]
  auto phi = torch::atan2(proj.select(1, 1), proj.select(1, 0));
  auto q = torch::quantile(phi, torch::tensor({o.alpha / 100, 1 - o.alpha / 100}, torch::kDouble));
  auto dir = [&](double a) { return torch::matmul(vecs, torch::tensor({std::cos(a), std::sin(a)}, torch::kDouble)); };
  auto v_min = dir(q[0].item<double>()), v_max = dir(q[1].item<double>());
  Fit f;
  f.he = v_min[0].item<double>() > v_max[0].item<double>() ? torch::stack({v_min, v_max}, 1) : torch::stack({v_max, v_min}, 1);
  f.conc = std::get<0>(torch::linalg_lstsq(f.he, od.t()));  // [2,N]
  f.max_c = torch::stack({torch::quantile(f.conc[0], 0.99), torch::quantile(f.conc[1], 0.99)});
  return f;
}

}  // namespace

MacenkoReference macenko_fit(const at::Tensor& rgb, const MacenkoOptions& o) {
  auto f = fit(rgb, o);
  MacenkoReference r;
  auto he = f.he.contiguous();
  for (int i = 0; i < 6; ++i) r.stains[i] = he.view({-1})[i].item<double>();
  r.max_conc = {f.max_c[0].item<double>(), f.max_c[1].item<double>()};
  return r;
}

at::Tensor macenko(const at::Tensor& rgb, const MacenkoReference& ref, const MacenkoOptions& o) {
  auto f = fit(rgb, o);
  auto he_ref = torch::tensor(std::vector<double>(ref.stains.begin(), ref.stains.end()), torch::kDouble).view({3, 2});
  auto max_ref = torch::tensor({ref.max_conc[0], ref.max_conc[1]}, torch::kDouble);
  auto c = f.conc / f.max_c.unsqueeze(1) * max_ref.unsqueeze(1);
  auto I = (o.io * torch::exp(-torch::matmul(he_ref, c))).clamp(0, 255) / 255.0;  // [3,N]
  return I.reshape({3, rgb.size(1), rgb.size(2)}).to(torch::kFloat).contiguous();
}

}  // namespace medfm::data

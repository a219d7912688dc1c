#include "medfm/ssl/ibot.h"

#include <algorithm>
#include <cmath>

#include "medfm/core/error.h"

namespace medfm::ssl {

namespace {

// MaskingGenerator._mask: one rectangle; returns the patches newly masked.
int mask_once(torch::TensorAccessor<bool, 2> m, int h, int w, int max_mask, int min_patches, double lo, double hi,
              Rng& rng) {
  int delta = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = rng.uniform(min_patches, max_mask);
    const double aspect = std::exp(rng.uniform(lo, hi));
    const int bh = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int bw = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (bw < w && bh < h) {
      const int top = static_cast<int>(rng.below(h - bh + 1)), left = static_cast<int>(rng.below(w - bw + 1));
      int masked = 0;
      for (int i = top; i < top + bh; ++i)
        for (int j = left; j < left + bw; ++j) masked += m[i][j];
      if (bh * bw - masked > 0 && bh * bw - masked <= max_mask) {
        for (int i = top; i < top + bh; ++i)
          for (int j = left; j < left + bw; ++j)
            if (!m[i][j]) m[i][j] = true, ++delta;
      }
      if (delta > 0) break;
    }
  }
  return delta;
}

}  // namespace

torch::Tensor block_mask(int h, int w, int n_mask, int max_patches, Rng& rng, int min_patches, double min_aspect) {
  auto mask = torch::zeros({h, w}, torch::kBool);
  auto m = mask.accessor<bool, 2>();
  const double lo = std::log(min_aspect), hi = std::log(1.0 / min_aspect);
  int count = 0;
  while (count < n_mask) {
    const int max_mask = std::min(n_mask - count, max_patches);
    const int delta = mask_once(m, h, w, max_mask, min_patches, lo, hi, rng);
    if (delta == 0) break;
    count += delta;
  }
  return mask;
}

torch::Tensor batch_masks(int n_crops, int h, int w, double ratio_min, double ratio_max, double mask_probability, Rng& rng) {
  MEDFM_CHECK_T(ConfigError, 0 <= ratio_min && ratio_min <= ratio_max && ratio_max <= 1 && mask_probability >= 0 &&
                                 mask_probability <= 1,
                "ibot: needs 0 <= mask ratio min <= max <= 1 and a mask probability in [0, 1]");
  const int n = h * w, n_masked = static_cast<int>(n_crops * mask_probability);
  const int max_patches = static_cast<int>(0.5 * n);
  std::vector<torch::Tensor> masks;
  for (int i = 0; i < n_masked; ++i) {
    const double p0 = ratio_min + (ratio_max - ratio_min) * i / n_masked;
    const double p1 = ratio_min + (ratio_max - ratio_min) * (i + 1) / n_masked;
    masks.push_back(block_mask(h, w, static_cast<int>(n * rng.uniform(p0, p1)), max_patches, rng).flatten());
  }
  for (int i = n_masked; i < n_crops; ++i) masks.push_back(torch::zeros({n}, torch::kBool));
  for (size_t i = masks.size(); i > 1; --i) std::swap(masks[i - 1], masks[static_cast<size_t>(rng.below(static_cast<int64_t>(i)))]);
  return torch::stack(masks);
}

torch::Tensor mask_weights(const torch::Tensor& masks) {
  auto w = (1.0 / masks.sum(-1).clamp_min(1).to(torch::kFloat32)).unsqueeze(-1).expand(masks.sizes());
  return w.masked_select(masks);
}

IbotPatchLoss::IbotPatchLoss(int out_dim, double student_temp, double center_momentum)
    : student_temp_(student_temp), center_momentum_(center_momentum), center_(torch::zeros({1, out_dim})) {}

torch::Tensor IbotPatchLoss::teacher_probs(const torch::Tensor& teacher, double temp, const AllReduce& all_reduce,
                                           int world_size) {
  torch::NoGradGuard ng;
  if (center_.device() != teacher.device()) center_ = center_.to(teacher.device());
  auto t = teacher.to(torch::kFloat32);
  auto probs = torch::softmax((t - center_) / temp, -1);
  // DINOv2 applies this update lazily at the next call: the same order of use. The mean is over
  // the masked patches of every rank (DINOv2 averages the ranks' means, which weighs a patch by
  // its rank's count; the global mean keeps N processes equal to one).
  auto sum_count = torch::cat({t.sum(0), torch::full({1}, static_cast<double>(t.size(0)), t.options())}).unsqueeze(0);
  if (all_reduce) all_reduce(sum_count);
  const double n = sum_count[0][-1].item<double>();
  if (n > 0) center_ = center_ * center_momentum_ + sum_count.narrow(1, 0, t.size(1)) / n * (1 - center_momentum_);
  (void)world_size;
  return probs;
}

torch::Tensor IbotPatchLoss::operator()(const torch::Tensor& student, const torch::Tensor& teacher_probs,
                                        const torch::Tensor& masks) const {
  MEDFM_CHECK(student.dim() == 2 && student.sizes() == teacher_probs.sizes() && masks.dim() == 2 &&
                  masks.sum().item<int64_t>() == student.size(0),
              "ibot loss: student ", student.sizes(), ", teacher ", teacher_probs.sizes(), ", ", masks.sum().item<int64_t>(),
              " masked patches");
  auto per = torch::sum(teacher_probs * torch::log_softmax(student.to(torch::kFloat32) / student_temp_, -1), -1);
  return -(per * mask_weights(masks).to(per.device())).sum() / masks.size(0);
}

}  // namespace medfm::ssl

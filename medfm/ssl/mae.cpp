#include "medfm/ssl/mae.h"

#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::ssl {

MaskedTokens random_masking(const at::Tensor& x, double mask_ratio, const at::Tensor& noise) {
  MEDFM_CHECK(x.dim() == 3 && noise.dim() == 2 && noise.size(0) == x.size(0) && noise.size(1) == x.size(1),
              "mae: tokens ", x.sizes(), " and noise ", noise.sizes());
  MEDFM_CHECK_T(ConfigError, mask_ratio >= 0 && mask_ratio < 1, "mae: mask_ratio ", mask_ratio, " outside [0, 1)");
  const int64_t N = x.size(0), L = x.size(1), D = x.size(2);
  const auto len_keep = static_cast<int64_t>(static_cast<double>(L) * (1 - mask_ratio));
  auto ids_shuffle = noise.argsort(/*dim=*/int64_t{1});  // ascending: small noise is kept
  auto ids_restore = ids_shuffle.argsort(/*dim=*/int64_t{1});
  auto ids_keep = ids_shuffle.narrow(1, 0, len_keep);
  auto kept = x.gather(1, ids_keep.unsqueeze(-1).expand({N, len_keep, D}));
  auto mask = torch::ones({N, L}, x.options());
  mask.narrow(1, 0, len_keep).zero_();
  mask = mask.gather(1, ids_restore);  // back to the original order
  return MaskedTokens{kept, mask, ids_restore};
}

at::Tensor patchify(const at::Tensor& imgs, int64_t p) {
  MEDFM_CHECK(imgs.dim() == 4 && imgs.size(2) % p == 0 && imgs.size(3) % p == 0, "mae: images ", imgs.sizes(),
              " are not a multiple of the patch size ", p);
  const int64_t N = imgs.size(0), C = imgs.size(1), h = imgs.size(2) / p, w = imgs.size(3) / p;
  auto x = imgs.reshape({N, C, h, p, w, p});
  x = x.permute({0, 2, 4, 3, 5, 1});  // nchpwq -> nhwpqc
  return x.reshape({N, h * w, p * p * C});
}

at::Tensor mae_loss(const at::Tensor& imgs, const at::Tensor& pred, const at::Tensor& mask, int64_t p, bool norm_pix) {
  auto target = patchify(imgs, p);
  MEDFM_CHECK(pred.sizes() == target.sizes() && mask.dim() == 2 && mask.size(1) == target.size(1),
              "mae: prediction ", pred.sizes(), ", target ", target.sizes(), ", mask ", mask.sizes());
  if (norm_pix) {
    auto mean = target.mean(-1, true);
    auto var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
    target = (target - mean) / (var + 1e-6).sqrt();
  }
  auto loss = (pred - target).pow(2).mean(-1);  // [N,L], per patch
  return (loss * mask).sum() / mask.sum();
}

}  // namespace medfm::ssl

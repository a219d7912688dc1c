// MAE's parts (facebookresearch/mae semantics): per-sample random masking by argsort of noise
// (the first len_keep of the shuffled order kept; mask 1 = removed, in the original order;
// ids_restore unshuffles), patchify in MAE's pixel order (p, p, c within a patch), and the
// reconstruction loss: mean squared error per patch against the pixels (normalised per patch
// with norm_pix: (x - mean) / sqrt(var + 1e-6), var unbiased as torch.var), averaged over the
// removed patches only.
#pragma once
#include <ATen/Tensor.h>

namespace medfm::ssl {

struct MaskedTokens {
  at::Tensor kept;         // [N, len_keep, D]
  at::Tensor mask;         // [N, L] float, 1 = removed
  at::Tensor ids_restore;  // [N, L] int64
};

// x [N,L,D] patch tokens; noise [N,L] uniform (the caller's generator: MAE uses torch.rand);
// len_keep = int(L * (1 - mask_ratio)).
MaskedTokens random_masking(const at::Tensor& x, double mask_ratio, const at::Tensor& noise);

// imgs [N,C,H,W] -> [N, (H/p)*(W/p), p*p*C]; H and W multiples of p.
at::Tensor patchify(const at::Tensor& imgs, int64_t p);

// pred [N,L,p*p*C] against patchify(imgs); mask [N,L] (1 = removed).
at::Tensor mae_loss(const at::Tensor& imgs, const at::Tensor& pred, const at::Tensor& mask, int64_t p, bool norm_pix = true);

}  // namespace medfm::ssl

// iBOT's parts as DINOv2 has them (dinov2/data/masking.py, collate.py, loss/ibot_patch_loss.py):
//   block_mask      BEiT's block-wise masking: rectangles of 4.. patches, aspect 0.3..3.3, added
//                   until the target count (or no rectangle fits in 10 tries)
//   batch_masks     DINOv2's collate: int(n * mask_probability) of the n global crops get a mask,
//                   their ratios drawn from consecutive strata of linspace(ratio_min, ratio_max),
//                   the rest none, shuffled
//   IbotPatchLoss   cross-entropy between the teacher's centred, sharpened patch distributions and
//                   the student's on masked patches, each image's patches weighted 1 / its masked
//                   count, summed and divided by the number of crops; centre = EMA of the mean
//                   masked teacher patch output (global over ranks)
// Randomness comes from the caller's Rng (Python's `random` in the reference): the algorithm is
// the reference's, the draws are not.
#pragma once
#include <torch/torch.h>

#include "medfm/core/rng.h"
#include "medfm/ssl/dino.h"

namespace medfm::ssl {

// [h, w] bool with about n_mask patches set (at most max_patches per rectangle).
torch::Tensor block_mask(int h, int w, int n_mask, int max_patches, Rng& rng, int min_patches = 4,
                         double min_aspect = 0.3);

// [n_crops, h*w] bool, as DINOv2's collate_data_and_cast (max_patches = 0.5 * h * w).
torch::Tensor batch_masks(int n_crops, int h, int w, double ratio_min, double ratio_max, double mask_probability, Rng& rng);

// Per masked patch, 1 / (masked patches of its crop): [n_masked] in row-major mask order.
torch::Tensor mask_weights(const torch::Tensor& masks);

class IbotPatchLoss {
 public:
  IbotPatchLoss(int out_dim, double student_temp = 0.1, double center_momentum = 0.9);
  // Teacher patch outputs [n,K] -> softmax((t - centre) / temp); then the centre moves towards
  // their mean (all_reduce over ranks when given).
  torch::Tensor teacher_probs(const torch::Tensor& teacher, double temp, const AllReduce& all_reduce = {},
                              int world_size = 1);
  // student [n,K] logits of the masked patches, teacher_probs [n,K], masks [M, N] bool.
  torch::Tensor operator()(const torch::Tensor& student, const torch::Tensor& teacher_probs, const torch::Tensor& masks) const;
  const torch::Tensor& center() const { return center_; }
  void set_center(const torch::Tensor& c) { center_ = c.clone(); }

 private:
  double student_temp_, center_momentum_;
  torch::Tensor center_;  // [1,K]
};

}  // namespace medfm::ssl

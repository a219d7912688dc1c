// DINO's parts (facebookresearch/dino semantics), used by DINO and DINOv2:
//   DinoHead  MLP (nlayers Linear + GELU, hidden, bottleneck), L2 normalisation, then a
//             weight-normalised last layer without bias: W = g * V / ||V|| per output row, g
//             initialised to 1 and frozen when norm_last_layer (DINO's default). Parameter names
//             as DINO's: mlp.{0,2,4}.{weight,bias}, last_layer.weight_g [K,1], last_layer.weight_v [K,B].
//   DinoLoss  cross-entropy between the teacher's centred, sharpened softmax over the 2 global crops
//             and the student's softmax (temperature 0.1) over every crop, same-view pairs
//             excluded, averaged over pairs; the centre follows the teacher's batch mean (global
//             batch when a process group is given) with momentum.
//   ema_update  teacher = m * teacher + (1 - m) * student, parameter by parameter.
#pragma once
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <string>

#include "medfm/train/schedule.h"

namespace medfm::ssl {

// nn.utils.weight_norm(nn.Linear(in, out, bias=False)): W = g * V / ||V|| row by row.
class WeightNormLinearImpl : public torch::nn::Cloneable<WeightNormLinearImpl> {
 public:
  WeightNormLinearImpl(int in_dim, int out_dim, bool train_g);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [N,in] -> [N,out]
  torch::Tensor weight_g, weight_v;                // [out,1], [out,in]

 private:
  int in_, out_;
  bool train_g_;
};
TORCH_MODULE(WeightNormLinear);

struct DinoHeadOptions {
  int in_dim = 384, out_dim = 65536, hidden_dim = 2048, bottleneck_dim = 256, nlayers = 3;
  bool norm_last_layer = true;
};

class DinoHeadImpl : public torch::nn::Cloneable<DinoHeadImpl> {
 public:
  explicit DinoHeadImpl(const DinoHeadOptions& o);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [N,in_dim] -> [N,out_dim]
  torch::nn::Sequential mlp{nullptr};
  WeightNormLinear last_layer{nullptr};
  const DinoHeadOptions& options() const { return o_; }

 private:
  DinoHeadOptions o_;
};
TORCH_MODULE(DinoHead);

// Zeroes the last layer's gradients (DINO freezes it during the first epoch(s): "freeze_last_layer").
void cancel_last_layer_grads(DinoHead& head);

// Sums a tensor over the processes of a data-parallel run (identity on one process).
using AllReduce = std::function<void(torch::Tensor&)>;

class DinoLoss {
 public:
  // teacher_temp: per-step schedule (DINO warms it up from 0.04 to 0.04-0.07).
  DinoLoss(int out_dim, int n_crops, train::Schedule teacher_temp, double student_temp = 0.1,
           double center_momentum = 0.9);
  // student [n_crops*B, K] (global crops first), teacher [2*B, K]; returns the mean loss over the
  // (teacher crop, other student crop) pairs and then updates the centre from `teacher`.
  torch::Tensor operator()(const torch::Tensor& student, const torch::Tensor& teacher, int64_t step,
                           const AllReduce& all_reduce = {}, int world_size = 1);
  const torch::Tensor& center() const { return center_; }
  void set_center(const torch::Tensor& c) { center_ = c.clone(); }
  // DINOv2's alternative to centring: the teacher's targets from Sinkhorn-Knopp (no centre kept).
  void use_sinkhorn_knopp(bool on) { sinkhorn_ = on; }
  // The last call's teacher targets (this process's), in nats, at most ln K: the mean entropy of
  // one sample's target, and the entropy of the batch's mean target. Healthy training: the first
  // well below ln K, the second high. Collapse to uniform targets: the first near ln K; collapse
  // onto one prototype: the second near 0.
  struct TargetStats {
    double sample_entropy = 0, mean_entropy = 0;
  };
  const TargetStats& target_stats() const { return stats_; }

 private:
  TargetStats stats_;
  bool sinkhorn_ = false;
  int n_crops_;
  train::Schedule teacher_temp_;
  double student_temp_, center_momentum_;
  torch::Tensor center_;  // [1,K]
};

// The two collapse modes of DINO (its paper, section 5.3) seen in a run's targets: says so, once,
// after `patience` consecutive steps in one of them. Uniform: a sample's target entropy above 99%
// of ln K (the loss then sits at ln K, as DINO users report for small or uniform data); one
// prototype: the batch's mean target below 1 nat (fewer than ~3 prototypes in use).
class CollapseWatch {
 public:
  explicit CollapseWatch(int out_dim, int64_t patience = 100);
  // The warning the first time a collapse has lasted `patience` steps, else "".
  std::string update(const DinoLoss::TargetStats& s, int64_t step);

 private:
  double log_k_;
  int64_t patience_, uniform_run_ = 0, single_run_ = 0;
  bool said_ = false;
};

// DINOv2's sinkhorn_knopp_teacher: teacher logits [B,K] -> soft assignments [B,K] (each row sums
// to 1, prototypes used equally over the n_total samples of every rank), 3 iterations.
torch::Tensor sinkhorn_knopp(const torch::Tensor& teacher, double temp, int64_t n_total, const AllReduce& all_reduce = {},
                             int iterations = 3);

// teacher <- m * teacher + (1 - m) * student for parameters matched by name (same module layout);
// no autograd.
void ema_update(torch::nn::Module& teacher, const torch::nn::Module& student, double momentum);

}  // namespace medfm::ssl

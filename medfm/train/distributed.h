// Data parallelism on PyTorch's c10d: a process group initialised as torchrun initialises one,
// from MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK (a TCPStore on rank 0), over Gloo
// (CPU tensors; a LibTorch built without Gloo refuses WORLD_SIZE > 1 with a clear error). One
// process per rank; each reads its own slots of the global batch, gradients are averaged after
// backward, and the methods' global-batch statistics (DINO's centre, SimCLR's negatives, KoLeo)
// use all_reduce / all_gather. With WORLD_SIZE unset (or 1) every call is the identity.
// Collective calls must be made by every rank in the same order. Not thread-safe.
#pragma once
#include <torch/nn/module.h>

#include <memory>
#include <string>

namespace medfm::train {

class Dist {
 public:
  // World of one: no process group.
  Dist();
  ~Dist();
  // From the torchrun environment variables; ConfigError naming the variable when one is missing
  // or malformed (WORLD_SIZE > 1 needs all of them), Error when the group cannot be formed within
  // timeout_s (a rank that never started).
  static std::shared_ptr<Dist> from_env(double timeout_s = 300);

  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }
  bool active() const { return world_ > 1; }
  std::string describe() const;  // "rank 0 of 2 (gloo, 127.0.0.1:29500)"

  void all_reduce_sum(torch::Tensor& t);  // in place, no autograd
  // [n,...] from every rank -> [world*n,...] in rank order. Differentiable: the backward pass sums
  // the gradient over the ranks and returns this rank's rows (SimCLR's cross-replica negatives).
  torch::Tensor all_gather(const torch::Tensor& t);
  void broadcast(torch::Tensor& t, int root = 0);
  // Every rank gets rank 0's values of the module's parameters and buffers.
  void broadcast_module(torch::nn::Module& m);
  // Gradients averaged over the ranks (one flattened buffer per dtype).
  void average_gradients(torch::nn::Module& m);
  double mean(double v);  // a scalar averaged over the ranks
  void barrier();

 private:
  struct Group;
  std::unique_ptr<Group> g_;
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  std::string addr_;
};

}  // namespace medfm::train

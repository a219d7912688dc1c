// LoRA (Hu et al. 2021) on a ViT's linear layers: y = x W^T + b + (alpha / r) * drop(x) A^T B^T with
// A [r, in] (Kaiming-uniform, as the reference loralib/peft) and B [out, r] (zeros, so a fresh
// adapter leaves the model unchanged). A LoraLinear is a torch::nn::Linear that shares the base
// layer's weight and bias (same state-dict names) and adds `lora_A`, `lora_B`; models::linear()
// applies the update wherever a layer is one.
//   apply_lora   wraps blocks.*.attn.{qkv,proj} (and mlp.{fc1,fc2} with `mlp`), freezes every other
//                parameter of the model; returns the wrapped layers' names
//   merge_lora   W <- W + (alpha / r) B A in place and plain Linears back (for export)
//   lora_state   only the adapters: "<layer>.lora_A" / ".lora_B" (+ rank/alpha in the caller's metadata)
// Not for a model that will be clone()d afterwards (the wrapper is not Cloneable).
#pragma once
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <map>
#include <string>
#include <vector>

namespace medfm::models {

class VitImpl;

struct LoraOptions {
  int rank = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool mlp = false;  // also wrap the MLP layers
};

class LoraLinearImpl : public torch::nn::LinearImpl {
 public:
  LoraLinearImpl(const torch::nn::Linear& base, const LoraOptions& o);
  // The low-rank update for input x (dropout in training mode).
  torch::Tensor delta(const torch::Tensor& x) const;
  torch::Tensor lora_A, lora_B;
  double scale;
  double dropout;
};

std::vector<std::string> apply_lora(VitImpl& vit, const LoraOptions& o);
// Returns how many layers were merged.
int merge_lora(VitImpl& vit);
std::map<std::string, torch::Tensor> lora_state(VitImpl& vit);
// Loads adapters saved by lora_state into a model wrapped with the same options. Throws
// FormatError naming a missing or misshapen tensor.
void load_lora_state(VitImpl& vit, const std::map<std::string, torch::Tensor>& state);

}  // namespace medfm::models

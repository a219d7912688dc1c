// Loading released ViT weights. Checkpoints come in several key layouts; each is remapped to
// timm's names (medfm's own) before loading:
//   timm         timm VisionTransformer (UNI, Virchow2, UNI2-h, H-optimus-0, Prov-GigaPath)
//   dinov2       original facebookresearch/dinov2 hub checkpoints (register_tokens, w12/w3,
//                chunked blocks, mask_token)
//   hf_dinov2    Hugging Face transformers Dinov2Model / Dinov2WithRegistersModel (Phikon-v2,
//                RAD-DINO), optionally under "dinov2."
//   hf_vit       Hugging Face transformers ViTModel (Phikon), optionally under "vit."
//   torchvision  torchvision.models.vision_transformer (vit_b_16 ...)
// Common wrappers ("module.", "backbone.", "model.", "trunk.") are stripped; heads and training-only
// tensors (head, heads, pooler, classifier, fc_norm, decoder, mask_token) are ignored and listed,
// unless the model has that parameter (a classifier built with num_classes keeps `head.*`).
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "medfm/core/preprocess_spec.h"
#include "medfm/models/vit.h"

namespace medfm::models {

enum class WeightsLayout { kAuto, kTimm, kDinov2, kHfDinov2, kHfVit, kTorchvision };
WeightsLayout parse_layout(const std::string& s);  // "auto", "timm", ...; throws ConfigError
std::string layout_name(WeightsLayout l);

using StateDict = std::map<std::string, at::Tensor>;

// Guesses the layout from key names (never returns kAuto).
WeightsLayout detect_layout(const StateDict& sd);

// Remaps to timm names for a model of config cfg. Keys it drops on purpose go to *ignored, except
// those named in `keep` (the model's own parameters: a `head.*` or `mask_token` the model has loads).
StateDict to_timm_layout(StateDict sd, WeightsLayout layout, const VitConfig& cfg, std::vector<std::string>* ignored,
                         const std::set<std::string>& keep = {});

struct LoadReport {
  WeightsLayout layout = WeightsLayout::kAuto;
  std::vector<std::string> missing;     // model parameters the checkpoint lacks
  std::vector<std::string> unexpected;  // checkpoint tensors the model has no place for
  std::vector<std::string> mismatched;  // "name: checkpoint [a,b] vs model [c,d]"
  std::vector<std::string> ignored;     // heads / training-only tensors dropped on purpose
  std::string container;                // weights_file.h: "safetensors", "torch.save zip", ...
  std::string entry;                    // nested checkpoint entry used ("" = top level)
  std::vector<std::string> notes;       // what reading the file chose or skipped
  std::vector<std::string> files;       // the files read (an index and its shards)
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;
};

// Copies a checkpoint into the model. A pos_embed on another grid is resampled (as timm's
// checkpoint filter does). Unless allow_partial, any missing, unexpected or mis-shaped key throws
// Error with the full report and leaves the model untouched.
LoadReport load_vit_weights(Vit& model, StateDict sd, bool allow_partial = false,
                            WeightsLayout layout = WeightsLayout::kAuto);
// Same, from any weights file weights_file.h reads (safetensors, sharded, torch.save .pth/.bin, a
// folder); `weights_key` picks a nested entry. Tensors are copied one at a time from the mapped
// file and their pages released, so loading holds about one copy of the weights.
LoadReport load_vit_weights(Vit& model, const std::string& path, bool allow_partial = false,
                            WeightsLayout layout = WeightsLayout::kAuto, const std::string& weights_key = "");

// Writes the model's parameters in timm key layout (head.* and mask_token included when the model
// has them) as float32 safetensors, atomically; `metadata` goes to the file's __metadata__.
// load_vit_weights on a model of the same config gives bit-identical parameters.
void save_vit_weights(const Vit& model, const std::string& path, const std::map<std::string, std::string>& metadata = {},
                      const std::set<std::string>& skip = {});

// The __metadata__ that makes a saved backbone self-describing for `medfm embed --weights` without
// --model (backbone.cpp reads it back): format, medfm.model, medfm.overrides (without the
// training-only mask_token) and medfm.preprocess.
std::map<std::string, std::string> export_metadata(const std::string& model, const std::vector<std::string>& overrides,
                                                   const PreprocessSpec& preprocess);

}  // namespace medfm::models

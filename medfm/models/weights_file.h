// Reading the weights files model authors release, in any of their containers, to one StateDict:
//   .safetensors                         (UNI2, Virchow2, Phikon, H-optimus, DINOv2 / RAD-DINO on HF)
//   model.safetensors.index.json + shards (sharded safetensors; the index or its folder)
//   .pth / .pt / .bin from torch.save     (zip or legacy: RETFound, original DINOv2 / DINO, UNI's
//                                          pytorch_model.bin), read by core/torch_file.h: no Python, no code run
//   pytorch_model.bin.index.json + shards
//   a folder holding one of the above     (a Hugging Face snapshot)
// Tensors keep their stored dtype (fp16 / bf16 are converted when copied into the model) and are
// views of the mapped files, so that reading costs no memory until they are copied.
//
// Which entry of a training checkpoint holds the weights: `key` names it ("model", "teacher",
// "model/teacher" for a nested one; in a flat state dict a key also selects the tensors under
// that prefix, e.g. "teacher" in DINOv2's training checkpoints). Without a key: the top level when
// it is a state dict, else the first of state_dict, model, teacher, student, model_ema, module, net,
// network that is (recursively); of a dict holding both a student and a teacher, the teacher (as the
// DINO and DINOv2 repos evaluate). What was chosen is reported in `entry` and `notes`.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "medfm/models/checkpoint.h"

namespace medfm::models {

struct WeightsFile {
  StateDict tensors;
  std::string container;                        // "safetensors", "sharded safetensors (4 files)", "torch.save zip", ...
  std::string entry;                            // the nested entry used ("" = the top level)
  std::vector<std::string> notes;               // what was skipped or chosen, for the load report
  std::vector<std::string> files;               // every file read (shards included)
  std::map<std::string, std::string> metadata;  // safetensors __metadata__ (of the single file / index)
};

// Throws IoError (missing path), FormatError (unreadable container; a key that names nothing,
// with the keys there are), UnsafePickle (a pickle that would run code).
WeightsFile read_weights_file(const std::string& path, const std::string& key = "");

}  // namespace medfm::models

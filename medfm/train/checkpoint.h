// Training checkpoints: one safetensors file holding the method's state (Objective::state), the
// AdamW moments and step counts of every parameter ("optim.<group>.<param index>.exp_avg" ...) and
// __metadata__ (step, method and the caller's entries). Written to a temporary name and renamed, so
// a crash leaves the previous checkpoint intact. Loading restores all of it: a resumed run computes
// the same losses as one never interrupted (given the same data order and per-step seeds).
#pragma once
#include <map>
#include <string>

#include "medfm/train/objective.h"
#include "medfm/train/trainer.h"

namespace medfm::train {

void save_train_checkpoint(const std::string& path, Objective& objective, Trainer& trainer,
                           std::map<std::string, std::string> metadata = {});

struct CheckpointInfo {
  int64_t step = 0;  // steps done when it was saved
  std::map<std::string, std::string> metadata;
};
// Throws IoError / FormatError (unreadable file), Error (a checkpoint of another method or shape).
CheckpointInfo load_train_checkpoint(const std::string& path, Objective& objective, Trainer& trainer);
// Only the metadata (e.g. to find the step without building the model).
CheckpointInfo read_checkpoint_info(const std::string& path);
// Only the method's state (no optimiser), e.g. to export a backbone: Error for another method's file.
CheckpointInfo load_objective_state(const std::string& path, Objective& objective);

}  // namespace medfm::train

// The learning part of `medfm demo`, on real data in a few CPU minutes:
//   1. the Brodmann task from the Colin27 T1 and its Brodmann atlas (mricron-data): axial
//      patch x patch patches centred in each area with at least 200 voxels per hemisphere; left
//      hemisphere -> train, right hemisphere mirrored in x -> test (one subject: it measures feature
//      quality, not generalisation). PNGs and CSVs (path, id, label) in OUT/task. The rules of
//      bench/learning/brodmann_task.py, drawn with medfm's Rng (not numpy's draws).
//   2. MAE pre-training of a small ViT (4 blocks, 128 wide, 4 px patches at 32 px) on unlabelled
//      patches of the same volume in three planes (radiology views), exported to OUT/mae.safetensors
//   3. features of the task's patches: raw pixels, that ViT with random weights, and pre-trained
//   4. a linear probe and a kNN probe of each (reports in OUT/probe_<features>_<method>)
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "c10/core/Device.h"

namespace medfm::extract {

struct BrodmannTask {
  std::string train_csv, test_csv;
  int n_areas = 0;
  int64_t n_train = 0, n_test = 0;
};

// Throws IoError / FormatError for unreadable volumes, Error when the atlas is not on the T1's grid.
BrodmannTask make_brodmann_task(const std::string& t1, const std::string& atlas, const std::string& out_dir, int per_area = 20,
                                int patch = 32, uint64_t seed = 0);

struct DemoLearningJob {
  std::string mricron_dir;  // holds ch2.nii.gz and brodmann.nii.gz
  std::string out = "demo_out";
  int per_area = 20;
  int64_t pretrain_steps = 300;
  uint64_t seed = 0;
};

struct DemoRow {
  std::string features;        // "raw pixels", "random weights", "mae pre-trained"
  double linear = 0, linear_low = 0, linear_high = 0, knn = 0;
  std::string report;          // the linear probe's report.md
};

struct DemoLearning {
  BrodmannTask task;
  double pretrain_seconds = 0, pretrain_images_per_s = 0, pretrain_first_loss = 0, pretrain_last_loss = 0;
  std::vector<DemoRow> rows;
};

// stage(name) is called as each stage starts (for the CLI's progress lines).
DemoLearning run_demo_learning(const DemoLearningJob& job, const std::function<void(const std::string&)>& stage = {});

}  // namespace medfm::extract

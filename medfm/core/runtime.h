// Process-wide runtime settings: thread count, device, build description.
#pragma once
#include <string>
#include <vector>

namespace c10 { struct Device; }

namespace medfm {

// Number of online CPU cores (std::thread::hardware_concurrency, at least 1).
int cpu_cores();

// Sets LibTorch intra-op threads (and OpenMP/BLAS through it). n <= 0 means all cores.
// Debian's LibTorch reports 1 thread by default, so every entry point calls this.
void set_threads(int n);

// "cpu" or "cuda" / "cuda:N". Throws ConfigError for anything else, or for cuda when this
// LibTorch has no CUDA device.
c10::Device parse_device(const std::string& name);

struct BuildInfo {
  std::string version, git_commit, torch_version;
  bool cuda_available = false;
  std::vector<std::string> optional_parts;  // e.g. "hdf5", "opencv"
};
BuildInfo build_info();

}  // namespace medfm

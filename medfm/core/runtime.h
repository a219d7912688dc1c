// Process-wide runtime settings: thread count, device, build description.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace c10 { struct Device; }

namespace medfm {

// Debian 12's OpenBLAS 0.3.21 does not know recent Intel cores (Sapphire Rapids and later) and falls
// back to its Prescott kernels: sgemm runs ~4x slower. OpenBLAS reads OPENBLAS_CORETYPE only when
// it loads, so when the loaded OpenBLAS reports a pre-AVX2 core on a CPU with AVX-512 or AVX2 and
// the user set no OPENBLAS_CORETYPE, this re-executes the program once with OPENBLAS_CORETYPE set
// (SkylakeX or Haswell). Call first thing in main(). Returns normally when nothing needs doing.
void ensure_fast_blas(char** argv);
// The OpenBLAS core in use ("" when the BLAS is not OpenBLAS).
std::string blas_core();

// Number of online CPU cores (std::thread::hardware_concurrency, at least 1).
int cpu_cores();

// Sets LibTorch intra-op threads (and OpenMP/BLAS through it). n <= 0 means all cores, shared
// among LOCAL_WORLD_SIZE processes when that is set (data-parallel ranks on one machine).
// Debian's LibTorch reports 1 thread by default, so every entry point calls this.
void set_threads(int n);

// Memory budget (runtime.max_memory): large allocations are checked against it before they are
// made, so an input too big for the machine fails with one line instead of the kernel killing the
// process. Default: 3/4 of physical memory.
uint64_t max_memory();
void set_max_memory(uint64_t bytes);  // 0: the default
// Throws Error "<what> needs N GiB, over runtime.max_memory (M GiB)" when bytes exceed the budget.
void check_memory(double bytes, const std::string& what);
// "0", "1073741824", "512M", "8G", "1.5T" (K/M/G/T: powers of 1024) -> bytes; ConfigError otherwise.
uint64_t parse_bytes(const std::string& text);

// For training loops on CPU: freed memory stays in the process for the next step. By default glibc
// serves blocks over a sliding threshold with fresh mmap()s and gives the heap's free top back to
// the kernel, so every step page-faults its activations in again (ViT-Ti MAE bench, 11 steps:
// 617,000 -> 168,000 page faults; 11-22% more images/s in three paired runs; bench/RESULTS.md). Sets glibc's mmap threshold to
// its maximum (32 MiB) and turns heap trimming off; the process keeps its peak memory until it
// exits, as PyTorch's CUDA caching allocator does. A no-op without glibc. Returns whether it applied.
bool retain_freed_memory();

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

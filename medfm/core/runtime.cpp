#include "medfm/core/runtime.h"

#include <sstream>

#include <cmath>

#include <atomic>

#include <torch/torch.h>
#include <torch/version.h>

#include <dlfcn.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "medfm/core/build_info.h"
#include "medfm/core/error.h"

namespace medfm {

std::string blas_core() {
  using CoreNameFn = char* (*)();
  auto fn = reinterpret_cast<CoreNameFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return fn ? std::string(fn()) : std::string();
}

void ensure_fast_blas(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("MEDFM_BLAS_REEXEC")) return;
  const std::string core = blas_core();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "Sandybridge" ||
                       core == "Penryn" || core == "Dunnington" || core == "Atom" || core == "Katmai";
  if (!generic) return;
  __builtin_cpu_init();
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    want = "Haswell";
  if (!want) return;
  ::setenv("OPENBLAS_CORETYPE", want, 1);
  ::setenv("MEDFM_BLAS_REEXEC", core.c_str(), 1);
  ::execv("/proc/self/exe", argv);  // only returns on failure: carry on with the slow kernels
}

int cpu_cores() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_threads(int n) {
  // More threads than 4x the cores only adds contention, and 100000 would exhaust the process.
  MEDFM_CHECK_T(ConfigError, n <= 4 * cpu_cores(), "runtime: threads = ", n, " is more than 4x this machine's ",
                cpu_cores(), " cores");
  if (n <= 0) {
    // One of LOCAL_WORLD_SIZE processes on this machine (torchrun, medfm launch): its share.
    const char* lw = std::getenv("LOCAL_WORLD_SIZE");
    const int local = lw ? std::max(1, std::atoi(lw)) : 1;
    n = std::max(1, cpu_cores() / local);
  }
  torch::set_num_threads(n);
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    MEDFM_CHECK_T(ConfigError, torch::cuda::is_available(),
                  "device: '", name, "' requested but this LibTorch build sees no CUDA device");
    try {
      return c10::Device(name);
    } catch (const c10::Error&) {
      throw ConfigError(detail::concat("device: cannot parse '", name, "' (use cpu, cuda or cuda:N)"));
    }
  }
  throw ConfigError(detail::concat("device: unknown device '", name, "' (use cpu, cuda or cuda:N)"));
}

BuildInfo build_info() {
  BuildInfo b;
  b.version = MEDFM_VERSION;
  b.git_commit = MEDFM_GIT_COMMIT;
  b.torch_version = TORCH_VERSION;
  b.cuda_available = torch::cuda::is_available();
#ifdef MEDFM_HAVE_HDF5
  b.optional_parts.push_back("hdf5");
#endif
#ifdef MEDFM_HAVE_OPENCV
  b.optional_parts.push_back("opencv");
#endif
#ifdef MEDFM_HAVE_OPENSLIDE
  b.optional_parts.push_back("openslide");
#endif
#ifdef MEDFM_HAVE_GDCM
  b.optional_parts.push_back("gdcm");
#endif
#ifdef MEDFM_HAVE_NIFTI
  b.optional_parts.push_back("nifti");
#endif
  return b;
}

namespace {
std::atomic<uint64_t> g_max_memory{0};

uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{8} << 30;
}

std::string gib(double bytes) {
  std::ostringstream os;
  os.precision(bytes < (1ull << 30) ? 2 : 3);
  os << bytes / static_cast<double>(1ull << 30) << " GiB";
  return os.str();
}
}  // namespace

uint64_t max_memory() {
  static const uint64_t fallback = physical_memory() / 4 * 3;
  const uint64_t m = g_max_memory.load();
  return m ? m : fallback;
}

void set_max_memory(uint64_t bytes) { g_max_memory = bytes; }

bool retain_freed_memory() {
#ifdef __GLIBC__
  // glibc refuses thresholds over half its heap size (HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit).
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

void check_memory(double bytes, const std::string& what) {
  const double budget = static_cast<double>(max_memory());
  MEDFM_CHECK(!(bytes > budget), what, " needs ", gib(bytes), ", over runtime.max_memory (", gib(budget),
              "; raise it with --set runtime.max_memory=SIZE, or make the input smaller)");
}

uint64_t parse_bytes(const std::string& text) {
  std::istringstream is(text);
  double v = -1;
  if (!(is >> v)) v = -1;
  std::string unit;
  is >> unit;
  double mul = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mul = 1ull << 10;
  else if (unit == "M" || unit == "MiB") mul = 1ull << 20;
  else if (unit == "G" || unit == "GiB") mul = 1ull << 30;
  else if (unit == "T" || unit == "TiB") mul = static_cast<double>(1ull << 40);
  else if (!unit.empty()) v = -1;
  std::string rest;
  MEDFM_CHECK_T(ConfigError, !(is >> rest) && std::isfinite(v) && v >= 0 && v * mul < 1.8e19, "memory size '", text,
                "' is not a number of bytes with an optional K, M, G or T");
  return static_cast<uint64_t>(v * mul);
}

}  // namespace medfm

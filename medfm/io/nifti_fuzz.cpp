// libFuzzer target: open_volume on a NIfTI file (nifti2_io behind medfm's header checks) must
// answer any bytes with an image or a medfm::Error: no crash, no other exception type, no
// allocation beyond what the file can back (run with -malloc_limit_mb / -rss_limit_mb). Built by
// the `fuzz` preset (clang); run by scripts/fuzz.sh nifti (ctest `fuzz_nifti`, label `slow`).
//
// Input: one selector byte, then the file. Selector bit0 set: the rest is gzip-compressed and
// written as x.nii.gz; clear: written as is to x.nii. Seeds: real files with both selector bytes.
#include <ATen/Parallel.h>
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"

namespace {

// Per-process directory for the input file; removed at exit (a crash leaves it for inspection).
char g_dir[] = "/tmp/medfm_nifti_fuzz.XXXXXX";

// MEDFM_FUZZ_VERBOSE=1: print each input's outcome (to triage inputs: ./x_fuzz FILE...).
const bool g_verbose = std::getenv("MEDFM_FUZZ_VERBOSE") != nullptr;

void make_temp_dir() {
  if (!::mkdtemp(g_dir)) std::abort();
  std::atexit([] { ::rmdir(g_dir); });
}

bool write_file(const std::string& path, const uint8_t* data, size_t size, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) return false;
    bool ok = size == 0 || gzwrite(f, data, static_cast<unsigned>(size)) == static_cast<int>(size);
    return gzclose(f) == Z_OK && ok;
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  make_temp_dir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool gzip = data[0] & 1;
  const std::string path = std::string(g_dir) + (gzip ? "/x.nii.gz" : "/x.nii");
  if (!write_file(path, data + 1, size - 1, gzip)) std::abort();
  try {
    medfm::Image img = medfm::io::open_volume(path);
    if (!img.pixels.defined() || img.pixels.dim() != 4) __builtin_trap();
    if (g_verbose) std::fprintf(stderr, "medfm: ok %s %s\n", img.format.c_str(), c10::str(img.pixels.sizes()).c_str());
  } catch (const medfm::Error& e) {
    if (g_verbose) std::fprintf(stderr, "medfm: error: %s\n", e.what());
  }
  ::unlink(path.c_str());
  return 0;
}

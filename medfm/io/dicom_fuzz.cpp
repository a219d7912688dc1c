// libFuzzer target: open_image on a DICOM file (GDCM behind medfm's checks) must answer any bytes
// with an image or a medfm::Error: no crash, no other exception type, no allocation beyond what
// the file can back (run with -malloc_limit_mb / -rss_limit_mb). Built by the `fuzz` preset
// (clang); run by scripts/fuzz.sh dicom (ctest `fuzz_dicom`, label `slow`), seeded with pydicom's
// small files. The input is the file, written to x.dcm in a per-process temporary directory.
// Compressed pixel data is decoded as medfm decodes it, in a child process (core/isolate.h): a
// codec fault there must come back as a FormatError and never take the fuzzer (the batch) down.
// MEDFM_FUZZ_NO_ISOLATION=1 decodes in-process instead, to hunt the codecs' own bugs.
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"

namespace {

// Per-process directory for the input file; removed at exit (a crash leaves it for inspection).
char g_dir[] = "/tmp/medfm_dicom_fuzz.XXXXXX";

// MEDFM_FUZZ_VERBOSE=1: print each input's outcome (to triage inputs: ./x_fuzz FILE...).
const bool g_verbose = std::getenv("MEDFM_FUZZ_VERBOSE") != nullptr;
const bool g_isolate = std::getenv("MEDFM_FUZZ_NO_ISOLATION") == nullptr;

void make_temp_dir() {
  if (!::mkdtemp(g_dir)) std::abort();
  std::atexit([] { ::rmdir(g_dir); });
}

bool write_file(const std::string& path, const uint8_t* data, size_t size) {
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
  const std::string path = std::string(g_dir) + "/x.dcm";
  if (!write_file(path, data, size)) std::abort();
  try {
    medfm::io::ReadOptions opts;
    opts.isolate_codecs = g_isolate;
    medfm::Image img = medfm::io::open_image(path, opts);
    if (!img.pixels.defined() || img.pixels.dim() != 4) __builtin_trap();
    if (g_verbose) std::fprintf(stderr, "medfm: ok %s %s\n", img.format.c_str(), c10::str(img.pixels.sizes()).c_str());
  } catch (const medfm::Error& e) {
    if (g_verbose) std::fprintf(stderr, "medfm: error: %s\n", e.what());
  }
  ::unlink(path.c_str());
  return 0;
}

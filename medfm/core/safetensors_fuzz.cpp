// libFuzzer target: the safetensors header parser must reject any byte string with FormatError,
// never crash, hang or read out of bounds. Built by the `fuzz` preset (clang); run by
// scripts/fuzz.sh (ctest label `slow`), seeded with the golden fixtures.
#include <cstddef>
#include <cstdint>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<medfm::TensorEntry> entries;
  std::map<std::string, std::string> metadata;
  size_t data_start = 0;
  try {
    medfm::parse_safetensors(data, size, "fuzz", &entries, &metadata, &data_start);
    for (const auto& e : entries) {
      if (data_start + e.end > size) __builtin_trap();  // accepted offsets must lie inside the input
    }
  } catch (const medfm::FormatError&) {
  }
  return 0;
}

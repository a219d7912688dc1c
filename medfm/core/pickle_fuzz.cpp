// libFuzzer target: the pickle reader must turn any byte string into a Document or a FormatError
// (UnsafePickle included), never crash, hang, leak or run past the buffer. Built by the `fuzz`
// preset; run by scripts/fuzz.sh pickle (ctest label `slow`), seeded with torch.save pickles.
#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "medfm/core/error.h"
#include "medfm/core/pickle.h"

namespace {
// Walks what the reader accepted, each object once (the tree shares nodes and may cycle): every
// tensor view must lie inside its storage.
void check(const medfm::pickle::Object* root) {
  using medfm::pickle::Kind;
  std::unordered_set<const medfm::pickle::Object*> seen;
  std::vector<const medfm::pickle::Object*> todo{root};
  while (!todo.empty()) {
    const auto* o = todo.back();
    todo.pop_back();
    if (!o || !seen.insert(o).second) continue;
    if (o->kind == Kind::Tensor) {
      const auto* s = o->items.at(0);
      int64_t last = o->offset, count = 1;
      for (size_t i = 0; i < o->sizes.size(); ++i) {
        count *= o->sizes[i];
        if (o->sizes[i] > 0) last += (o->sizes[i] - 1) * o->strides[i];
      }
      if (count > 0 && last >= s->numel) __builtin_trap();
    }
    todo.insert(todo.end(), o->items.begin(), o->items.end());
    todo.push_back(o->state);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    size_t used = 0;
    auto doc = medfm::pickle::parse(data, size, "fuzz", &used);
    if (used > size) __builtin_trap();
    check(doc.root());
    (void)medfm::pickle::describe(doc.root());
  } catch (const medfm::FormatError&) {
  }
  return 0;
}

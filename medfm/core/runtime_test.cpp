// Process runtime settings that change behaviour measurably.
#include "medfm/core/runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace medfm {
namespace {

// After retain_freed_memory(), a 16 MiB block comes from the heap, not from its own mmap (which
// glibc's default 128 KiB starting threshold would give it), and freeing it does not shrink the
// heap: the next step's activations land in memory that is already mapped.
TEST(Runtime, RetainFreedMemoryServesLargeBlocksFromTheHeap) {
#ifdef __GLIBC__
  ASSERT_TRUE(retain_freed_memory());
  const size_t n = size_t{16} << 20;
  const auto mapped_before = mallinfo2().hblks;
  auto* p = static_cast<char*>(std::malloc(n));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "the block was mmapped on its own";
  std::free(p);
  EXPECT_GE(mallinfo2().arena, n) << "the heap gave the freed block back to the kernel";
#else
  GTEST_SKIP() << "glibc only";
#endif
}

}  // namespace
}  // namespace medfm

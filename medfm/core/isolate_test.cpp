#include "medfm/core/isolate.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace medfm {
namespace {

TEST(Isolate, ResultComesBackThroughSharedMemory) {
  SharedBuffer buf(1 << 20);
  auto* p = static_cast<unsigned char*>(buf.data());
  auto r = run_isolated(
      [&] {
        for (size_t i = 0; i < buf.size(); ++i) p[i] = static_cast<unsigned char>(i * 7);
        return true;
      },
      {});
  ASSERT_TRUE(r.ok) << r.describe({});
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[12345], static_cast<unsigned char>(12345 * 7));
  EXPECT_EQ(p[buf.size() - 1], static_cast<unsigned char>((buf.size() - 1) * 7));
}

TEST(Isolate, PrintedMessagesAreCapturedNotShown) {
  auto r = run_isolated(
      [] {
        std::fprintf(stderr, "Unsupported JPEG data precision 12\n");
        std::printf("to stdout\n");
        return true;
      },
      {});
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.messages.find("Unsupported JPEG data precision 12"), std::string::npos) << r.messages;
  EXPECT_NE(r.messages.find("to stdout"), std::string::npos) << r.messages;
}

TEST(Isolate, CrashesAndAbortsBecomeResults) {
  const IsolationLimits lim{};
  auto segv = run_isolated([] { return ::raise(SIGSEGV) == 0; }, lim);
  EXPECT_FALSE(segv.ok);
  EXPECT_EQ(segv.signal, SIGSEGV);
  EXPECT_EQ(segv.describe(lim), "crashed (SIGSEGV)");
  auto abrt = run_isolated([]() -> bool { std::abort(); }, lim);
  EXPECT_EQ(abrt.signal, SIGABRT);
  auto failed = run_isolated([] { return false; }, lim);
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.signal, 0);
  EXPECT_EQ(failed.describe(lim), "failed");
  auto threw = run_isolated([]() -> bool { throw std::runtime_error("bad marker"); }, lim);
  EXPECT_FALSE(threw.ok);
  EXPECT_EQ(threw.error, "bad marker");
  EXPECT_EQ(threw.describe(lim), "failed: bad marker");
}

TEST(Isolate, HangIsKilledAtTheTimeLimit) {
  IsolationLimits lim;
  lim.seconds = 1;
  auto r = run_isolated(
      [] {
        for (;;) ::pause();
        return true;
      },
      lim);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.describe(lim), "ran past its time limit of 1 s");
}

TEST(Isolate, MemoryLimitStopsAHugeAllocation) {
  IsolationLimits lim;
  lim.memory_bytes = 256ull << 20;
  auto r = run_isolated(
      [] {
        std::vector<char> v(size_t{4} << 30);  // 4 GiB, over the limit
        v[v.size() - 1] = 1;
        return v.back() == 1;
      },
      lim);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.out_of_memory) << r.describe(lim) << r.messages;
  EXPECT_EQ(r.describe(lim), "ran out of memory (limit 256 MiB)");
}

TEST(Isolate, ParentStateIsUntouched) {
  int parent_value = 1;
  auto r = run_isolated(
      [&] {
        parent_value = 2;  // the child's copy
        return true;
      },
      {});
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(parent_value, 1);
}

}  // namespace
}  // namespace medfm

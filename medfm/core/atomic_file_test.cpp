#include "medfm/core/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "medfm/core/error.h"
#include "tests/temp_dir.h"

namespace medfm {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  std::string read(const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  medfm::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(AtomicFileTest, CommitReplacesTheFinalFileInOneStep) {
  const std::string out = dir_ + "/out.txt";
  std::ofstream(out) << "old";
  {
    AtomicFile f(out);
    EXPECT_NE(f.temp_path(), out);
    EXPECT_EQ(fs::path(f.temp_path()).parent_path(), fs::path(out).parent_path());  // same filesystem: rename
    std::ofstream(f.temp_path()) << "new";
    EXPECT_EQ(read(out), "old");  // untouched until commit
    f.commit();
    EXPECT_FALSE(fs::exists(f.temp_path()));
  }
  EXPECT_EQ(read(out), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(AtomicFileTest, NoCommitLeavesNothingAndKeepsTheOldFile) {
  const std::string out = dir_ + "/out.txt";
  std::ofstream(out) << "old";
  std::string temp;
  {
    AtomicFile f(out);
    temp = f.temp_path();
    std::ofstream(temp) << "partial";
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(read(out), "old");
}

TEST_F(AtomicFileTest, CommitWithoutATemporaryIsAnIoError) {
  AtomicFile f(dir_ + "/never_written.txt");
  EXPECT_THROW(f.commit(), IoError);
  EXPECT_FALSE(fs::exists(dir_ + "/never_written.txt"));
}

TEST_F(AtomicFileTest, StaleTemporariesOfDeadProcessesAreRemovedOthersKept) {
  const std::string out = dir_ + "/out.h5";
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);  // reaped: this pid belongs to no process now
  const std::string dead = out + ".tmp." + std::to_string(child);
  const std::string alive = out + ".tmp." + std::to_string(::getppid());  // the test runner's parent
  const std::string other = dir_ + "/other.h5.tmp." + std::to_string(child);  // another output's
  const std::string odd = out + ".tmp.notapid";
  for (const auto& p : {dead, alive, other, odd}) std::ofstream(p) << "x";
  {
    AtomicFile f(out);  // a new writer of out.h5 sweeps out.h5's dead temporaries
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(alive));
    EXPECT_TRUE(fs::exists(other));
    EXPECT_TRUE(fs::exists(odd));
  }
  EXPECT_EQ(remove_stale_temporaries(dir_ + "/other.h5"), 1);
  EXPECT_FALSE(fs::exists(other));
}

TEST_F(AtomicFileTest, OutputChecksRefuseInputsFoldersAndMissingFolders) {
  const std::string in = dir_ + "/in.png", link = dir_ + "/link.png";
  std::ofstream(in) << "pixels";
  fs::create_symlink(in, link);
  EXPECT_NO_THROW(check_output_path(dir_ + "/new.h5", {in}, "--out"));
  EXPECT_NO_THROW(check_output_path("relative_new.h5", {in}, "--out"));  // the current folder
  auto message = [&](const std::string& out) {
    try {
      check_output_path(out, {dir_ + "/missing.png", in}, "--out");
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(in).find("is one of the inputs"), std::string::npos);
  EXPECT_NE(message(link).find("is one of the inputs"), std::string::npos);                    // by a link
  EXPECT_NE(message(dir_ + "/../" + fs::path(dir_).filename().string() + "/in.png").find("one of the inputs"),
            std::string::npos);                                                                // by another path
  EXPECT_NE(message(dir_).find("is a folder"), std::string::npos);
  EXPECT_NE(message(dir_ + "/no/such/out.h5").find("does not exist"), std::string::npos);
  EXPECT_EQ(message(dir_ + "/fine.h5"), "no error");
}

}  // namespace
}  // namespace medfm

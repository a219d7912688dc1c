#include "medfm/core/atomic_file.h"

#include <gtest/gtest.h>
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

}  // namespace
}  // namespace medfm

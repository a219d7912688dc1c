// Mapped tensor views: no copy, correct bytes, pages released from the resident set after use.
#include "medfm/core/mapped_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>

#include "medfm/core/error.h"
#include "tests/temp_dir.h"

namespace medfm {
namespace {

size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

TEST(MappedFile, ViewsShareTheMappingAndReleaseItsPages) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/big.bin";
  const int64_t n = 16 << 20;  // 64 MiB of float32
  auto data = torch::arange(n, torch::kFloat);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(static_cast<const char*>(data.data_ptr()), n * 4);
  }
  data = torch::Tensor();
  auto file = MappedFile::open(path);
  auto v = file->view(0, at::kFloat, {n});
  EXPECT_EQ(v.data_ptr(), static_cast<const void*>(file->data()));  // a view, not a copy
  const size_t before = resident_bytes();
  const double sum = v.sum(torch::kDouble).item<double>();
  EXPECT_DOUBLE_EQ(sum, static_cast<double>(n) * (n - 1) / 2);
  const size_t touched = resident_bytes();
  EXPECT_GT(touched, before + (48u << 20));
  EXPECT_TRUE(release_mapped_pages(v));
  const size_t released = resident_bytes();
  EXPECT_LT(released + (48u << 20), touched);
  EXPECT_DOUBLE_EQ(v.sum(torch::kDouble).item<double>(), sum);  // still valid: re-read from the file

  // An offset that is not a multiple of the element size gives an owned copy.
  auto odd = file->view(2, at::kFloat, {4});
  EXPECT_NE(odd.data_ptr(), static_cast<const void*>(file->data() + 2));
  EXPECT_FALSE(release_mapped_pages(odd));
  EXPECT_FALSE(release_mapped_pages(torch::ones({4})));
  auto shape = file->view(16, at::kFloat, {2, 3});
  EXPECT_EQ(shape[1][2].item<float>(), 4 + 5);

  EXPECT_THROW(MappedFile::open(dir.path()), IoError);  // a directory
  EXPECT_THROW(MappedFile::open(dir.path() + "/missing"), IoError);
}

}  // namespace
}  // namespace medfm

// NIfTI headers that lie, checked by medfm before nifti2_io sees them (regressions from
// nifti_fuzz, libFuzzer). Each file is built here, byte by byte.
#ifdef MEDFM_HAVE_NIFTI
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/ATen.h>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"
#include "tests/temp_dir.h"

namespace medfm::io {
namespace {

namespace fs = std::filesystem;

template <typename T>
void put(std::string& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

// A valid single-file NIfTI-1 (n+1): 2x2x2 uint8, no extension, voxels 0..7.
std::string nifti1() {
  std::string b(352 + 8, '\0');
  put<int32_t>(b, 0, 348);
  const int16_t dim[8] = {3, 2, 2, 2, 1, 1, 1, 1};
  std::memcpy(b.data() + 40, dim, sizeof dim);
  put<int16_t>(b, 70, 2);  // DT_UINT8
  put<int16_t>(b, 72, 8);  // bitpix
  for (int i = 0; i < 8; ++i) put<float>(b, 76 + 4 * i, 1.0f);
  put<float>(b, 108, 352.0f);  // vox_offset
  std::memcpy(b.data() + 344, "n+1\0", 4);
  for (int i = 0; i < 8; ++i) b[352 + i] = static_cast<char>(i);
  return b;
}

// A valid single-file NIfTI-2 (n+2): 2x2x2 uint8, voxels 0..7.
std::string nifti2() {
  std::string b(544 + 8, '\0');
  put<int32_t>(b, 0, 540);
  std::memcpy(b.data() + 4, "n+2\0\r\n\032\n", 8);
  put<int16_t>(b, 12, 2);  // DT_UINT8
  put<int16_t>(b, 14, 8);
  const int64_t dim[8] = {3, 2, 2, 2, 1, 1, 1, 1};
  std::memcpy(b.data() + 16, dim, sizeof dim);
  for (int i = 0; i < 8; ++i) put<double>(b, 104 + 8 * i, 1.0);
  put<int64_t>(b, 168, 544);  // vox_offset
  for (int i = 0; i < 8; ++i) b[544 + i] = static_cast<char>(i);
  return b;
}

class NiftiLies : public ::testing::Test {
 protected:
  std::string write(const std::string& bytes) {
    const std::string p = dir_ + "/x.nii";
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string error_of(const std::string& bytes) {
    try {
      open_volume(write(bytes));
    } catch (const FormatError& e) {
      return e.what();
    }
    return "(no error)";
  }
  medfm::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(NiftiLies, ValidFilesRead) {
  // Voxels 0..7 in file order (x fastest) land at [c, z, y, x] = value, as nibabel reads them.
  const auto want = at::arange(8, at::kByte).view({1, 2, 2, 2});
  for (const auto& bytes : {nifti1(), nifti2()}) {
    auto img = open_volume(write(bytes));
    EXPECT_TRUE(img.pixels.equal(want)) << img.pixels;
    EXPECT_EQ(img.pixels.index({0, 1, 0, 1}).item<int>(), 5);  // x=1, y=0, z=1: 1 + 0*2 + 1*4
  }
}

TEST_F(NiftiLies, Nifti2RankOutOfRange) {
  // dim[0] = 242: nifti2_io copied 242 dims into an 8-element array on the stack (stack smash).
  std::string b = nifti2();
  put<int64_t>(b, 16, 242);
  EXPECT_NE(error_of(b).find("dim[0] = 242"), std::string::npos) << error_of(b);
}

TEST_F(NiftiLies, ExtensionSpaceBeyondTheFile) {
  // vox_offset 1.6e9 with an extension of 1.5e9 bytes in a 2 kB file: nifti2_io allocated the
  // extension (1.5 GB) before reading it.
  std::string b = nifti1();
  put<float>(b, 108, 1.6e9f);
  b[348] = 1;  // extender: extensions follow
  put<int32_t>(b, 352, 1500000000);
  put<int32_t>(b, 356, 4);
  b.resize(2000);
  EXPECT_NE(error_of(b).find("vox_offset"), std::string::npos) << error_of(b);
}

TEST_F(NiftiLies, VoxelOffsetNearInt64MaxDoesNotOverflow) {
  // A two-file NIfTI-2 magic in a .nii: the voxel offset is not bounded by the file, and
  // offset + size overflowed int64 in the truncation check.
  std::string b = nifti2();
  std::memcpy(b.data() + 4, "ni2\0", 4);
  put<int64_t>(b, 168, INT64_MAX - 100);
  EXPECT_NE(error_of(b).find("truncated"), std::string::npos) << error_of(b);
  b = nifti1();
  put<float>(b, 108, -4.5e34f);  // a negative vox_offset far out of int64 range
  EXPECT_NO_THROW(open_volume(write(b)));  // treated as the header size, like nifti2_io does
}

TEST_F(NiftiLies, UnknownDatatypeIsRejectedQuietly) {
  for (int16_t dt : {0, 255, 3000}) {
    std::string b = nifti1();
    put<int16_t>(b, 70, dt);
    ::testing::internal::CaptureStderr();
    const std::string e = error_of(b);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // nifti2_io prints nothing
    EXPECT_NE(e.find("datatype"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace medfm::io
#endif  // MEDFM_HAVE_NIFTI

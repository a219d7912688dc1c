// A temporary folder for a test, removed with everything in it when the object goes.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace medfm::testing {

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "medfm_test.XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("cannot create a temporary folder");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace medfm::testing

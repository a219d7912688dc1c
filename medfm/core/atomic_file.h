// Crash-safe output: write to a temporary sibling, then rename over the final name, so an
// interrupted run never leaves a file that looks finished. The temporary is removed if the
// AtomicFile is destroyed without commit().
#pragma once
#include <string>

namespace medfm {

class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& final_path() const { return final_; }
  // Renames temp -> final (fsyncs the file first). Throws IoError.
  void commit();

 private:
  std::string final_, temp_;
  bool committed_ = false;
};

// Writes `text` to `path` through an AtomicFile. Throws IoError.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace medfm

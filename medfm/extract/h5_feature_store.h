// HDF5 feature store, TRIDENT/CLAM-compatible where they overlap:
//   /features  float32 [N,D], chunked, appended batch by batch
//   /ids       variable-length strings [N]
//   /meta/<column>  variable-length strings [N] (input path, extra CSV columns, slice positions ...)
//   /skipped/{path,reason}  variable-length strings: inputs a --keep-going run could not read
//   root attributes: string key/value provenance (model, weights_sha256, preprocessing, versions)
// Written to a temporary name; commit() closes and renames it, so a crash never leaves a file that
// looks complete. Not thread-safe.
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "medfm/core/atomic_file.h"

namespace medfm::extract {

class FeatureWriter {
 public:
  FeatureWriter(const std::string& path, int64_t dim);
  ~FeatureWriter();
  // feats [b, dim] (any float dtype/device), ids.size() == b.
  void append(const at::Tensor& feats, const std::vector<std::string>& ids);
  void set_column(const std::string& name, const std::vector<std::string>& values);
  void set_attr(const std::string& key, const std::string& value);
  void set_skipped(const std::vector<std::string>& paths, const std::vector<std::string>& reasons);
  int64_t rows() const { return rows_; }
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AtomicFile file_;
  int64_t dim_, rows_ = 0;
  std::vector<std::string> ids_;
  std::map<std::string, std::vector<std::string>> columns_;
  std::map<std::string, std::string> attrs_;
  std::vector<std::string> skipped_paths_, skipped_reasons_;
};

// Reads back /features and /ids (for tests and downstream tools). Throws IoError/FormatError.
struct FeatureFile {
  at::Tensor features;  // [N,D] float32
  std::vector<std::string> ids;
  std::map<std::string, std::string> attrs;
};
FeatureFile read_features(const std::string& path);

}  // namespace medfm::extract

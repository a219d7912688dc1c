// HDF5 feature store, TRIDENT/CLAM-compatible where they overlap:
//   /features  float32 [N,D], chunked, appended batch by batch
//   /ids       variable-length strings [N]
//   /meta/<column>  variable-length strings [N] (input path, extra CSV columns, slice positions ...)
//   /skipped/{path,reason}  variable-length strings: inputs a --keep-going run could not read
//   /coords, /tissue (slides): tile coordinates in TRIDENT's layout (h5_coords.h), same row order
//   root attributes: string key/value provenance (model, weights_sha256, preprocessing, versions)
// Written to a temporary name; commit() closes and renames it, so a crash never leaves a file that
// looks complete. Not thread-safe.
#pragma once
#include <ATen/Tensor.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "medfm/core/atomic_file.h"
#include "medfm/data/tiling.h"

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
  // Slides: /coords (one per row) with TRIDENT's attributes; and no /ids (rows are tiles).
  void set_coords(const data::TileGrid& grid, const std::string& name, const std::string& savetodir);
  void set_write_ids(bool on) { write_ids_ = on; }
  int64_t rows() const { return rows_; }
  void commit();

 private:
  void close_handles() noexcept;
  struct Impl;
  AtomicFile file_;  // declared first: destroyed (temporary removed) after the HDF5 handles close
  std::unique_ptr<Impl> impl_;
  int64_t dim_, rows_ = 0;
  std::vector<std::string> ids_;
  std::map<std::string, std::vector<std::string>> columns_;
  std::map<std::string, std::string> attrs_;
  std::vector<std::string> skipped_paths_, skipped_reasons_;
  std::optional<data::TileGrid> coords_;
  std::string coords_name_, coords_dir_;
  bool write_ids_ = true;
};

// True once a writer had to let go of HDF5 handles it could not close (a write failed: a full
// disk). HDF5 1.10 then crashes closing them when the process exits, so a program should end with
// std::_Exit (after flushing its output) when this is set; the CLI does.
bool hdf5_handles_abandoned();

// Reads back /features, /ids, /meta/* and /coords when present, root attributes. Throws IoError/FormatError.
struct FeatureFile {
  at::Tensor features;  // [N,D] float32
  std::vector<std::string> ids;                    // empty for slides
  std::vector<std::array<int64_t, 2>> coords;      // slides: level-0 (x, y) per row
  std::map<std::string, std::string> attrs;        // root string attributes
  std::map<std::string, std::vector<std::string>> columns;  // /meta/<name>, one value per row
};
FeatureFile read_features(const std::string& path);
// [N, D] of /features without reading it (cohort checks before training). Throws like read_features.
std::array<int64_t, 2> feature_shape(const std::string& path);

}  // namespace medfm::extract

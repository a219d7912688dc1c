// Files written by torch.save, read without Python and without running anything in them.
//
// Both layouts: the zip archive of torch >= 1.6 (`<name>/data.pkl` + one record per storage
// `<name>/data/<key>`, read through LibTorch's own archive reader) and the legacy stream of older
// torch (`_use_new_zipfile_serialization=False`: magic, protocol and system-info pickles, the
// object pickle, the storage keys, then each storage as an int64 element count and its bytes).
// The object pickle goes through pickle.h, which builds data only and refuses code.
//
// Storages are views of the memory-mapped file (mapped_file.h): opening a multi-GB checkpoint
// costs no memory until its tensors are copied out. A zip record that is compressed (torch never
// writes one, other zip tools may) is decompressed into memory instead. Every storage is checked
// against its record's size, every tensor view against its storage, before any tensor is made.
// Errors: IoError (missing / unreadable), FormatError "torch: <path>: <problem>" (truncated zip,
// missing record, storage size mismatch, big-endian file, TorchScript archive), UnsafePickle.
#pragma once
#include <ATen/Tensor.h>

#include <map>
#include <memory>
#include <string>

#include "medfm/core/pickle.h"

namespace medfm {

class MappedFile;

class TorchFile {
 public:
  static TorchFile open(const std::string& path);
  // True when the first bytes are a zip or a legacy torch.save header.
  static bool looks_like(const uint8_t* data, size_t size);

  const std::string& path() const { return path_; }
  const char* layout() const { return zip_ ? "torch.save zip" : "torch.save legacy"; }
  const pickle::Object* root() const { return doc_.root(); }
  // The tensor a Tensor object describes (a view of its storage).
  at::Tensor tensor(const pickle::Object* t) const;

 private:
  std::string path_;
  bool zip_ = true;
  std::shared_ptr<const MappedFile> file_;
  pickle::Document doc_;
  std::map<std::string, at::Tensor> storages_;  // key -> flat storage of its dtype
};

}  // namespace medfm

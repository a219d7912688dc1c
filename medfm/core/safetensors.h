// safetensors reader and writer (https://github.com/huggingface/safetensors format):
// 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// optional "__metadata__" {str: str}, then the data region.
//
// SafeTensors::open memory-maps the file and validates the whole header before any tensor is
// touched: header length within the file and <= 100 MiB, JSON well-formed, known dtypes
// (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL), offsets inside the data region, no two tensors
// overlapping, and element count x dtype size == byte length. Any violation throws FormatError
// "safetensors: <path>: <problem>"; a missing file throws IoError.
// Thread-safety: a SafeTensors object is immutable after open; get() may be called concurrently.
#pragma once
#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace medfm {

class MappedFile;

struct TensorEntry {
  std::string name;
  std::string dtype;            // safetensors dtype string, e.g. "F32"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets within the data region
};

class SafeTensors {
 public:
  static SafeTensors open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorEntry>& entries() const { return entries_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  // A CPU tensor owning a copy of the bytes. Throws Error if the name is absent.
  at::Tensor get(const std::string& name) const;
  // A tensor viewing the mapped file (no copy; keeps the mapping alive; see mapped_file.h).
  at::Tensor view(const std::string& name) const;
  // All tensors, by name: copies / views.
  std::map<std::string, at::Tensor> load_all() const;
  std::map<std::string, at::Tensor> view_all() const;

 private:
  const TensorEntry& entry(const std::string& name) const;
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  size_t data_start_ = 0;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Parses and validates a header from raw bytes of a whole file (used by open() and the fuzzer).
// `origin` names the file in errors.
void parse_safetensors(const uint8_t* data, size_t size, const std::string& origin,
                       std::vector<TensorEntry>* entries, std::map<std::string, std::string>* metadata,
                       size_t* data_start);

// Writes tensors (any device; copied to contiguous CPU) with optional metadata. The file appears
// atomically: written to "<path>.tmp.<pid>" and renamed. Throws IoError, or Error for an
// unsupported dtype.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace medfm

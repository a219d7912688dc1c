// Read-only files mapped into memory, and tensors that view them without copying.
//
// A checkpoint's tensors are views into its mapping: nothing is resident until a tensor is
// touched, and release_mapped_pages() drops a view's pages from this process's resident set once
// it has been copied into a model (the page cache keeps them; a later read maps them back). This is
// how loading a model holds about one copy of its parameters instead of two.
// Thread-safety: a MappedFile is immutable after open; views may be made concurrently.
#pragma once
#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace medfm {

class MappedFile : public std::enable_shared_from_this<MappedFile> {
 public:
  // Maps `path` (a regular file) privately, copy-on-write, so that a tensor view written to by
  // mistake changes only this process's copy. Throws IoError (missing, not a regular file,
  // unreadable).
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }

  // A tensor of `shape` and `dtype` over bytes [offset, offset + numel * itemsize) of the file
  // (the caller has checked the range). The view keeps the mapping alive. When the offset is not a
  // multiple of the element size the bytes are copied instead (an owned tensor).
  at::Tensor view(size_t offset, at::ScalarType dtype, const std::vector<int64_t>& shape) const;

 private:
  MappedFile() = default;
  std::string path_;
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// If `t` views a MappedFile, drops the whole pages under its bytes from the resident set
// (madvise MADV_DONTNEED on the private, never-written mapping: the file is re-read on the next
// touch, so the view stays valid). Any other tensor is left alone. Returns whether it did.
bool release_mapped_pages(const at::Tensor& t);

}  // namespace medfm

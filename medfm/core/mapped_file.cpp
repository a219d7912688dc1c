#include "medfm/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>

#include <cerrno>
#include <cstring>

#include "medfm/core/error.h"

namespace medfm {
namespace {

struct ViewContext {
  std::shared_ptr<const MappedFile> file;
};
void delete_view(void* ctx) { delete static_cast<ViewContext*>(ctx); }

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  MEDFM_CHECK_T(IoError, fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError("'" + path + "' is not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    m->addr_ = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (m->addr_ == MAP_FAILED) {
      m->addr_ = nullptr;
      throw IoError("cannot map '" + path + "': " + std::strerror(err));
    }
  } else {
    ::close(fd);
  }
  return m;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

at::Tensor MappedFile::view(size_t offset, at::ScalarType dtype, const std::vector<int64_t>& shape) const {
  const size_t item = c10::elementSize(dtype);
  int64_t numel = 1;
  for (auto s : shape) numel *= s;
  const size_t nbytes = static_cast<size_t>(numel) * item;
  MEDFM_ASSERT(offset <= size_ && nbytes <= size_ - offset, "view past the end of ", path_);
  auto options = at::TensorOptions().dtype(dtype);
  if (nbytes == 0) return at::empty(shape, options);
  uint8_t* ptr = static_cast<uint8_t*>(addr_) + offset;
  if (reinterpret_cast<uintptr_t>(ptr) % item != 0) {
    auto out = at::empty(shape, options);
    std::memcpy(out.data_ptr(), ptr, nbytes);
    return out;
  }
  auto* ctx = new ViewContext{shared_from_this()};
  c10::DataPtr data(ptr, ctx, &delete_view, c10::Device(c10::kCPU));
  c10::Storage storage(c10::Storage::use_byte_size_t(), nbytes, std::move(data), /*allocator=*/nullptr,
                       /*resizable=*/false);
  return at::empty({0}, options).set_(storage, 0, shape);
}

bool release_mapped_pages(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage() || t.device() != c10::kCPU) return false;
  const auto& storage = t.storage();
  if (storage.data_ptr().get_deleter() != &delete_view) return false;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(storage.data());
  const uintptr_t end = begin + storage.nbytes();
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  return true;
}

}  // namespace medfm

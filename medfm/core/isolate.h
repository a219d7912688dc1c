// Running untrusted decoding in a child process. Image codecs (GDCM's JPEG, JPEG-LS, JPEG 2000 and
// RLE decoders) still abort, read out of bounds or loop on malformed data that medfm's structural
// checks do not foresee; run in a forked child with a memory and a time limit, such a fault ends
// the child, and the caller turns it into a one-line error for that file while the batch goes on.
// What the codec libraries print (libjpeg's warnings, OpenJPEG's messages) is captured from the
// child's stdout / stderr and handed back instead of reaching the terminal.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace medfm {

// Memory both processes see: the child writes its result here (mmap MAP_SHARED | MAP_ANONYMOUS).
class SharedBuffer {
 public:
  explicit SharedBuffer(size_t bytes);  // IoError when the mapping fails
  ~SharedBuffer();
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  void* data() const { return data_; }
  size_t size() const { return size_; }
  // Gives up ownership; the caller unmaps with unmap_shared(ptr, size) (e.g. in a tensor deleter).
  void* release();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};
void unmap_shared(void* p, size_t bytes);

struct IsolationLimits {
  uint64_t memory_bytes = 0;  // address space the child may add to what it inherits (0: no limit)
  double seconds = 0;         // wall-clock limit (0: none); the child is killed after it
};

struct IsolatedRun {
  bool ok = false;           // fn returned true and the child exited normally
  int signal = 0;            // the signal that ended the child (SIGSEGV, SIGABRT, SIGKILL ...), 0 if none
  bool timed_out = false;    // killed at the time limit
  bool out_of_memory = false;  // an allocation failed at the memory limit (std::bad_alloc in the child)
  std::string error;         // the exception message when fn threw
  std::string messages;      // what the child printed on stdout / stderr (at most 64 KiB)
  // One line: "crashed (SIGSEGV)", "ran past 30 s", "ran out of memory (limit 512 MiB)", "failed" ...
  std::string describe(const IsolationLimits& lim) const;
};

// Runs fn() in a forked child process, which ends when fn returns (true: success). fn must only
// compute and write into memory shared with the parent (a SharedBuffer); nothing else it changes
// is seen by the parent. The calling thread waits; other threads go on.
IsolatedRun run_isolated(const std::function<bool()>& fn, const IsolationLimits& lim);

}  // namespace medfm

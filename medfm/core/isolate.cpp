#include "medfm/core/isolate.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "medfm/core/error.h"

namespace medfm {

SharedBuffer::SharedBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  MEDFM_CHECK_T(IoError, p != MAP_FAILED, "cannot map ", bytes, " bytes of shared memory: ", std::strerror(errno));
  data_ = p;
}

SharedBuffer::~SharedBuffer() { unmap_shared(data_, size_); }

void* SharedBuffer::release() {
  void* p = data_;
  data_ = nullptr;
  return p;
}

void unmap_shared(void* p, size_t bytes) {
  if (p && bytes) ::munmap(p, bytes);
}

namespace {

constexpr size_t kMaxMessages = 64 * 1024;
constexpr int kExitFailed = 3, kExitThrew = 4, kExitNoMemory = 5;

// The child's current address-space size (its limit is set above it).
uint64_t address_space_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t pages = 0;
  f >> pages;
  return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

[[noreturn]] void child(int out_fd, const std::function<bool()>& fn, const IsolationLimits& lim) {
  // The parent's handlers (e.g. removing its temporary files on SIGTERM) must not run here.
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM, SIGQUIT}) ::signal(s, SIG_DFL);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(out_fd, STDERR_FILENO);
  if (out_fd != STDOUT_FILENO && out_fd != STDERR_FILENO) ::close(out_fd);
  if (lim.memory_bytes) {
    const rlim_t cap = static_cast<rlim_t>(address_space_bytes() + lim.memory_bytes);
    struct rlimit rl {cap, cap};
    ::setrlimit(RLIMIT_AS, &rl);
  }
  if (lim.seconds > 0) ::alarm(static_cast<unsigned>(lim.seconds + 1));  // backstop; the parent kills first
  int code = kExitFailed;
  try {
    code = fn() ? 0 : kExitFailed;
  } catch (const std::bad_alloc&) {
    code = kExitNoMemory;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "medfm-isolated-error: %s\n", e.what());
    code = kExitThrew;
  } catch (...) {
    code = kExitThrew;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);  // no atexit handlers, no destructors of the parent's objects
}

}  // namespace

std::string IsolatedRun::describe(const IsolationLimits& lim) const {
  if (ok) return "succeeded";
  if (timed_out) return "ran past its time limit of " + std::to_string(static_cast<int>(lim.seconds)) + " s";
  if (out_of_memory)
    return "ran out of memory (limit " + std::to_string(lim.memory_bytes >> 20) + " MiB)";
  if (signal) {
    const char* name = sigabbrev_np(signal);
    return std::string("crashed (SIG") + (name ? name : std::to_string(signal).c_str()) + ")";
  }
  if (!error.empty()) return "failed: " + error;
  return "failed";
}

IsolatedRun run_isolated(const std::function<bool()>& fn, const IsolationLimits& lim) {
  int fds[2];
  MEDFM_CHECK_T(IoError, ::pipe2(fds, O_CLOEXEC) == 0, "cannot create a pipe: ", std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]), ::close(fds[1]);
    throw IoError(std::string("cannot start a child process: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1], fn, lim);
  }
  ::close(fds[1]);
  IsolatedRun r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(lim.seconds);
  char buf[4096];
  for (;;) {
    int wait_ms = -1;
    if (lim.seconds > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        r.timed_out = true;
        ::kill(pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(std::min<long long>(left, 1000));
    }
    struct pollfd p {fds[0], POLLIN, 0};
    const int n = ::poll(&p, 1, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child (and anything it started) closed its end
    if (r.messages.size() < kMaxMessages) r.messages.append(buf, std::min(static_cast<size_t>(got), kMaxMessages - r.messages.size()));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    r.signal = r.timed_out ? 0 : WTERMSIG(status);
    if (WTERMSIG(status) == SIGALRM) r.timed_out = true, r.signal = 0;
  } else if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    r.ok = code == 0 && !r.timed_out;
    r.out_of_memory = code == kExitNoMemory;
    if (code == kExitThrew) {
      const std::string tag = "medfm-isolated-error: ";
      const size_t at = r.messages.rfind(tag);
      if (at != std::string::npos) {
        r.error = r.messages.substr(at + tag.size());
        r.messages.erase(at);
        while (!r.error.empty() && r.error.back() == '\n') r.error.pop_back();
      }
      if (r.error.empty()) r.error = "an exception";
    }
  }
  return r;
}

}  // namespace medfm

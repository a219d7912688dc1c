#include "medfm/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include "medfm/core/error.h"

namespace medfm {
namespace {

// The temporaries a signal handler must remove: fixed slots of owned C strings, claimed and
// released with atomic exchanges (lock-free, so the handler may read them). More live
// temporaries than slots are still removed on errors, only not on signals.
constexpr int kSlots = 256;
std::atomic<char*> g_temps[kSlots];

int register_temp(const std::string& path) {
  char* copy = ::strdup(path.c_str());
  if (!copy) return -1;
  for (int i = 0; i < kSlots; ++i) {
    char* expected = nullptr;
    if (g_temps[i].compare_exchange_strong(expected, copy)) return i;
  }
  std::free(copy);
  return -1;
}

void release_temp(int slot) {
  if (slot >= 0) std::free(g_temps[slot].exchange(nullptr));
}

extern "C" void remove_temps_and_exit(int sig) {
  for (auto& t : g_temps)
    if (char* p = t.exchange(nullptr)) ::unlink(p);  // unlink and _exit are async-signal-safe
  ::_exit(128 + sig);
}

bool process_gone(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

}  // namespace

int remove_stale_temporaries(const std::string& final_path) {
  namespace fs = std::filesystem;
  const fs::path target(final_path);
  const std::string prefix = target.filename().string() + ".tmp.";
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code rm;
    if (process_gone(std::stol(pid)) && fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

void check_output_path(const std::string& out, const std::vector<std::string>& inputs, const std::string& what) {
  namespace fs = std::filesystem;
  MEDFM_CHECK_T(IoError, !out.empty(), what, ": no output path given");
  const fs::path p(out);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  struct stat ds {};
  MEDFM_CHECK_T(IoError, ::stat(dir.c_str(), &ds) == 0 && S_ISDIR(ds.st_mode), what, " '", out, "': the folder '",
                dir.string(), "' does not exist");
  MEDFM_CHECK_T(IoError, ::access(dir.c_str(), W_OK | X_OK) == 0, what, " '", out, "': the folder '", dir.string(),
                "' is not writable");
  struct stat os {};
  if (::stat(out.c_str(), &os) != 0) return;  // a new file: it cannot be one of the (existing) inputs
  MEDFM_CHECK_T(IoError, !S_ISDIR(os.st_mode), what, " '", out, "' is a folder; give a file name");
  for (const auto& in : inputs) {
    struct stat is {};
    MEDFM_CHECK_T(IoError, ::stat(in.c_str(), &is) != 0 || is.st_dev != os.st_dev || is.st_ino != os.st_ino, what, " '",
                  out, "' is one of the inputs ('", in, "'); refusing to replace it");
  }
}

AtomicFile::AtomicFile(std::string final_path)
    : final_(std::move(final_path)), temp_(final_ + ".tmp." + std::to_string(::getpid())) {
  remove_stale_temporaries(final_);
  slot_ = register_temp(temp_);
}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_.c_str());
  release_temp(slot_);
}

void AtomicFile::commit() {
  int fd = ::open(temp_.c_str(), O_RDONLY);
  MEDFM_CHECK_T(IoError, fd >= 0, "output: temporary file '", temp_, "' is missing: ", std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  MEDFM_CHECK_T(IoError, std::rename(temp_.c_str(), final_.c_str()) == 0, "output: cannot rename '", temp_,
                "' to '", final_, "': ", std::strerror(errno));
  committed_ = true;
  release_temp(slot_);
  slot_ = -1;
}

void write_text_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  {
    std::ofstream o(f.temp_path(), std::ios::binary);
    o << text;
    MEDFM_CHECK_T(IoError, o.good(), "output: cannot write ", path);
  }
  f.commit();
}

void install_signal_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = remove_temps_and_exit;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // nohup, background jobs: stay ignored
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace medfm

// Crash-safe output: write to a temporary sibling, then rename over the final name, so an
// interrupted run never leaves a file that looks finished. The temporary is removed if the
// AtomicFile is destroyed without commit(); on SIGINT/SIGTERM/SIGHUP once
// install_signal_cleanup() has run; and, after a kill -9, by the next AtomicFile for the same
// name (temporaries "<name>.tmp.<pid>" whose process is gone).
#pragma once
#include <string>
#include <vector>

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
  int slot_ = -1;  // this temporary's place in the signal handler's list
  bool committed_ = false;
};

// Writes `text` to `path` through an AtomicFile. Throws IoError.
void write_text_atomic(const std::string& path, const std::string& text);

// Handlers for SIGINT, SIGTERM and SIGHUP that remove every live AtomicFile's temporary and exit
// with 128 + the signal (130, 143, 129), as shells report a process killed by it; a signal already
// ignored (nohup, a shell's background job) stays ignored. For programs
// (the CLI); a library user keeps their own handlers by not calling it.
void install_signal_cleanup();

// Before any work: `out` can be written as a new or replaced file (its folder exists and is
// writable, it is not a folder) and is none of `inputs` (the same file, through any path or
// link). `what` names the option in messages ("--out"). Throws IoError.
void check_output_path(const std::string& out, const std::vector<std::string>& inputs, const std::string& what);

// Removes "<final_path>.tmp.<pid>" siblings whose process no longer exists; returns how many.
int remove_stale_temporaries(const std::string& final_path);

}  // namespace medfm

// Shared CLI plumbing: global options, config resolution, progress bar, error-to-exit mapping.
#pragma once
#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "medfm/core/config.h"

namespace medfm::cli {

// Options every subcommand accepts; bound into the Config under "runtime.*".
struct RuntimeOptions {
  int threads = 0;             // 0: all cores
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string log_level = "info";
  bool json = false;
  std::string config_file;
  std::vector<std::string> sets;
};

// Adds --threads --device --log-level --config --set (and --json when with_json) to a subcommand.
void add_runtime_options(CLI::App& app, RuntimeOptions& rt, bool with_json);
void bind_runtime(Config& cfg, RuntimeOptions& rt);
// Applies --config then each --set, then re-applies flags given explicitly on the command line
// (flags beat the config file). Sets up logging and threads.
void resolve_config(CLI::App& app, Config& cfg, RuntimeOptions& rt, const std::function<void()>& reapply_flags);

// Progress on stderr: "label  [=====>    ] 120/500  23.4 img/s  ETA 0:16". Redraws at most 10x/s;
// prints plain lines when stderr is not a terminal.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit);
  void update(int64_t done, int64_t total);
  void finish();

 private:
  std::string label_, unit_;
  std::chrono::steady_clock::time_point start_, last_;
  bool tty_;
  int64_t last_done_ = -1;
};

// Provenance common to every output: versions, resolved config (TOML), creation time (UTC).
std::map<std::string, std::string> run_attrs(const Config& cfg);

// Runs a subcommand body; maps medfm errors to "medfm: <message>" + exit 1.
int guarded(const std::function<int()>& body);

}  // namespace medfm::cli

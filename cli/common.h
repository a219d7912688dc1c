// Shared CLI plumbing: global options, config resolution, progress bar, error-to-exit mapping.
#pragma once
#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "medfm/core/config.h"
#include "medfm/models/backbone.h"

namespace medfm::cli {

// Command-line flags that are sugar for config keys: each given flag's text is applied to its key
// after the config file and the --set overrides, so the precedence (defaults < --config < --set <
// flags) lives here once. Flag values are kept as text and read by the key's type.
class KeyFlags {
 public:
  explicit KeyFlags(CLI::App& app) : app_(app) {}
  // --flag VALUE -> key; returns the CLI11 option for extra checks.
  CLI::Option* option(const std::string& flag, const std::string& key, const std::string& help);
  // --flag (no value) -> key = true
  void flag(const std::string& flag, const std::string& key, const std::string& help);
  void apply(Config& cfg) const;

 private:
  struct Entry {
    std::string flag, key;
    bool boolean;
    std::shared_ptr<std::string> text;
    std::shared_ptr<bool> on;
  };
  CLI::App& app_;
  std::vector<Entry> entries_;
};

// Options every subcommand accepts; runtime.* keys plus --config, --set (and --json).
struct RuntimeOptions {
  int threads = 0;             // 0: all cores
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string log_level = "info";
  std::string max_memory = "0";  // runtime.max_memory: bytes (K/M/G/T), 0 = 3/4 of physical memory
  bool json = false;
  std::string config_file;
  std::vector<std::string> sets;
};

// Adds --threads --device --log-level (as key flags) and --config --set (and --json when with_json).
void add_runtime_options(CLI::App& app, KeyFlags& flags, RuntimeOptions& rt, bool with_json);
void bind_runtime(Config& cfg, RuntimeOptions& rt);
// --model --weights --torchscript --layout --allow-partial --seed: sugar for model.* keys
// (models::ModelSpec::bind).
void add_model_flags(KeyFlags& flags);

// Logs what load_backbone did: the random-init warning, or the weights' load report.
void log_model(const models::ModelSpec& spec, const models::LoadedBackbone& model);

// --series --repair --slice-spacing and the slide um/px override (mpp_flag): sugar for read.* keys
// (io::ReadSpec::bind).
void add_read_flags(KeyFlags& flags, const std::string& mpp_flag = "--mpp");

// Applies --config, then each --set, then the key flags given on the command line; then sets up
// logging and threads.
void resolve_config(Config& cfg, RuntimeOptions& rt, const KeyFlags& flags);

// Progress on stderr: "label  [=====>    ] 120/500  23.4 img/s  ETA 0:16". Redraws at most 10x/s;
// prints plain lines when stderr is not a terminal.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit);
  // note: shown after the ETA (e.g. "loss 4.21  38 img/s").
  void update(int64_t done, int64_t total, const std::string& note = "");
  // Work already done before this process (a resumed run): not counted in the rate.
  void set_base(int64_t done) { base_ = done; }
  void finish();

 private:
  std::string label_, unit_;
  std::chrono::steady_clock::time_point start_, last_;
  bool tty_;
  int64_t last_done_ = -1;
  int64_t base_ = 0;
};

// Provenance common to every output: versions, resolved config (TOML), creation time (UTC).
std::map<std::string, std::string> run_attrs(const Config& cfg);

// A report command's result on stdout: with --json, `fields` plus "metrics" and "report"; else the
// title line, one line per metric and the report's path.
void print_report_result(bool json, nlohmann::json fields, const std::string& title,
                         const std::vector<std::pair<std::string, double>>& metrics, const std::string& report_dir);
// A progress note "loss 0.1234".
std::string loss_note(double loss);

// Runs a subcommand body; maps medfm errors to "medfm: <message>" + exit 1.
int guarded(const std::function<int()>& body);

}  // namespace medfm::cli

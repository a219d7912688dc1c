#include "cli/common.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <ctime>
#include <iomanip>
#include <iostream>

#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/core/config.h"

namespace medfm::cli {

CLI::Option* KeyFlags::option(const std::string& flag, const std::string& key, const std::string& help) {
  Entry e{flag, key, false, std::make_shared<std::string>(), nullptr};
  auto* opt = app_.add_option(flag, *e.text, help + " (config key " + key + ")");
  entries_.push_back(std::move(e));
  return opt;
}

void KeyFlags::flag(const std::string& flag, const std::string& key, const std::string& help) {
  Entry e{flag, key, true, nullptr, std::make_shared<bool>(false)};
  app_.add_flag(flag, *e.on, help + " (config key " + key + ")");
  entries_.push_back(std::move(e));
}

void KeyFlags::apply(Config& cfg) const {
  for (const auto& e : entries_) {
    if (app_.count(e.flag) == 0) continue;
    cfg.apply_value(e.key, e.boolean ? "true" : *e.text, e.flag);
  }
}

void add_runtime_options(CLI::App& app, KeyFlags& flags, RuntimeOptions& rt, bool with_json) {
  flags.option("--threads", "runtime.threads", "CPU threads for LibTorch (0 = all cores)");
  flags.option("--device", "runtime.device", "cpu, cuda or cuda:N");
  flags.option("--log-level", "runtime.log_level", "trace, debug, info, warn, error, off");
  app.add_option("--config", rt.config_file, "TOML file overriding the defaults");
  app.add_option("--set", rt.sets, "override one config key: --set a.b=value (repeatable)");
  if (with_json) app.add_flag("--json", rt.json, "machine-readable output on stdout");
}

void add_model_flags(KeyFlags& flags) {
  flags.option("--model", "model.name", "registry model name (see `medfm models`)");
  flags.option("--weights", "model.weights",
               "weights: .safetensors, sharded index.json, torch.save .pth/.pt/.bin (read without running code) or a "
               "folder; timm, HF, DINOv2 or torchvision layout");
  flags.option("--weights-key", "model.weights_key", "entry of a training checkpoint to load: model, teacher, model/teacher ... (default: detected)");
  flags.option("--torchscript", "model.torchscript", "use a TorchScript module as the backbone instead");
  flags.option("--layout", "model.layout", "weights layout: auto, timm, dinov2, hf_dinov2, hf_vit, torchvision");
  flags.flag("--allow-partial", "model.allow_partial", "accept a checkpoint with missing/unexpected keys");
  flags.option("--seed", "model.seed", "seed for random initialisation when no weights are given");
  flags.option("--precision", "model.precision", "fp32, bf16 (autocast: bf16 matmuls, fp32 norms; 2-3x on CPUs with AVX512-BF16/AMX) or fp16 (CUDA)");
}

// --series --repair --slice-spacing --mpp: sugar for read.* keys (io::ReadSpec).
void add_read_flags(KeyFlags& k, const std::string& mpp_flag) {
  k.option("--series", "read.series", "DICOM directory: which series (SeriesNumber, #index or SeriesInstanceUID)");
  k.option("--repair", "read.repair", "DICOM series repairs to allow: duplicates, gaps (interpolate), tilt (sheared affine)")
      ->check([](const std::string& v) {
        std::stringstream ss(v);
        for (std::string r; std::getline(ss, r, ',');)
          if (r != "duplicates" && r != "gaps" && r != "tilt") return "unknown repair '" + r + "'";
        return std::string();
      });
  k.option("--slice-spacing", "read.slice_spacing",
           "DICOM series slice step: mean (first-to-last extent / steps) or first-pair (dcm2niix's rule)")
      ->check(CLI::IsMember({"mean", "first-pair"}));
  k.option(mpp_flag, "read.mpp", "slides: level-0 um/px to use instead of the file's (recorded as the source 'override')");
}

void log_model(const models::ModelSpec& spec, const models::LoadedBackbone& model) {
  if (!model.warning.empty()) spdlog::warn("{}", model.warning);
  if (!spec.weights.empty()) spdlog::info("loaded {}: {}", spec.weights, model.report.summary());
}

void bind_runtime(Config& cfg, RuntimeOptions& rt) {
  cfg.bind("runtime.threads", rt.threads, "CPU threads (0 = all cores)");
  cfg.bind("runtime.device", rt.device, "cpu | cuda | cuda:N");
  cfg.bind("runtime.log_level", rt.log_level, "log level");
  cfg.bind("runtime.max_memory", rt.max_memory,
           "memory budget for large allocations, e.g. 16G (0: 3/4 of physical memory)");
}

void resolve_config(Config& cfg, RuntimeOptions& rt, const KeyFlags& flags) {
  if (!rt.config_file.empty()) cfg.apply_file(rt.config_file);
  for (const auto& s : rt.sets) cfg.apply_set(s);
  flags.apply(cfg);
  auto logger = spdlog::get("medfm");  // a command may resolve its config more than once
  if (!logger) logger = spdlog::stderr_color_mt("medfm");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");
  auto level = spdlog::level::from_str(rt.log_level);
  MEDFM_CHECK_T(ConfigError, level != spdlog::level::off || rt.log_level == "off", "log: unknown level '",
                rt.log_level, "'");
  spdlog::set_level(level);
  set_threads(rt.threads);
  set_max_memory(parse_bytes(rt.max_memory));
}

ProgressBar::ProgressBar(std::string label, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), start_(std::chrono::steady_clock::now()),
      last_(start_), tty_(::isatty(STDERR_FILENO)) {}

void ProgressBar::update(int64_t done, int64_t total, const std::string& note) {
  auto now = std::chrono::steady_clock::now();
  const bool final = done >= total;
  if (!final && std::chrono::duration<double>(now - last_).count() < (tty_ ? 0.1 : 5.0)) return;
  last_ = now;
  last_done_ = done;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? (done - base_) / secs : 0;
  const int64_t eta = rate > 0 ? static_cast<int64_t>((total - done) / rate) : 0;
  const int width = 30;
  const int fill = total > 0 ? static_cast<int>(width * done / total) : width;
  std::string bar(fill, '=');
  if (fill < width) bar += '>' + std::string(width - fill - 1, ' ');
  char line[384];
  std::snprintf(line, sizeof line, "%s [%s] %lld/%lld  %.1f %s/s  ETA %lld:%02lld%s%s", label_.c_str(), bar.c_str(),
                static_cast<long long>(done), static_cast<long long>(total), rate, unit_.c_str(),
                static_cast<long long>(eta / 60), static_cast<long long>(eta % 60), note.empty() ? "" : "  ",
                note.c_str());
  std::cerr << (tty_ ? "\r" : "") << line << (tty_ ? "" : "\n") << std::flush;
}

void ProgressBar::finish() {
  if (tty_ && last_done_ >= 0) std::cerr << "\n";
}

std::string utc_now() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::map<std::string, std::string> run_attrs(const Config& cfg) {
  auto b = build_info();
  return {{"medfm_version", b.version}, {"medfm_git_commit", b.git_commit}, {"torch_version", b.torch_version},
          {"config", cfg.to_toml()},     {"created", utc_now()}};
}

int guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const medfm::Error& e) {
    std::cerr << "medfm: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "medfm: torch: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "medfm: " << e.what() << "\n";
    return 1;
  }
}

void print_report_result(bool json, nlohmann::json fields, const std::string& title,
                         const std::vector<std::pair<std::string, double>>& metrics, const std::string& report_dir) {
  if (json) {
    for (const auto& [name, v] : metrics) fields["metrics"][name] = v;
    fields["report"] = report_dir;
    std::cout << fields.dump(2) << "\n";
    return;
  }
  std::cout << title << "\n";
  for (const auto& [name, v] : metrics) std::cout << "  " << std::left << std::setw(18) << name << std::fixed << std::setprecision(4) << v << "\n";
  std::cout << "report: " << report_dir << "/report.md\n";
}

std::string loss_note(double loss) {
  std::ostringstream note;
  note << "loss " << std::fixed << std::setprecision(4) << loss;
  return note.str();
}

}  // namespace medfm::cli

// Configuration: defaults live in C++ structs; a Config binds dotted keys ("embed.batch_size") to
// their fields, then applies a TOML file and "--set key=value" overrides on top. Unknown keys and
// wrong types throw ConfigError naming the key. to_toml() gives the resolved config to save with
// every run. Not thread-safe; fields must outlive the Config.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace medfm {

class Config {
 public:
  void bind(const std::string& key, bool& field, std::string help = "");
  void bind(const std::string& key, int& field, std::string help = "");
  void bind(const std::string& key, double& field, std::string help = "");
  void bind(const std::string& key, std::string& field, std::string help = "");
  void bind(const std::string& key, int64_t& field, std::string help = "");
  void bind(const std::string& key, std::vector<double>& field, std::string help = "");
  void bind(const std::string& key, std::vector<int64_t>& field, std::string help = "");
  void bind(const std::string& key, std::vector<std::string>& field, std::string help = "");

  // Applies every key of a TOML file (nested tables map to dotted keys).
  void apply_file(const std::string& path);
  // Applies a TOML document given as text (origin names it in errors).
  void apply_toml(const std::string& text, const std::string& origin);
  // "a.b=value"; value is read as TOML (5, 0.5, true, "x", [1,2]) or else as a bare string.
  void apply_set(const std::string& assignment);

  // Sets a bound key from a command-line flag's text, read by the key's type: strings verbatim,
  // lists as a TOML array or comma-separated items, other types as TOML values. origin names the
  // flag in errors.
  void apply_value(const std::string& key, const std::string& raw, const std::string& origin);
  bool has(const std::string& key) const;

  std::string to_toml() const;
  std::vector<std::string> keys() const;

 private:
  struct Field {
    std::string type;  // bool, int, float, string, float[], int[], string[]
    std::function<void(const void* toml_node, const std::string& origin)> set;
    std::function<std::string()> get;
    std::string help;
  };
  Field& add(const std::string& key);
  std::map<std::string, Field> fields_;
};

}  // namespace medfm

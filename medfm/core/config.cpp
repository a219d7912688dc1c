#include "medfm/core/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "medfm/core/error.h"

namespace medfm {
namespace {

const toml::node& as_node(const void* p) { return *static_cast<const toml::node*>(p); }

[[noreturn]] void type_error(const std::string& key, const std::string& want, const std::string& origin) {
  throw ConfigError(detail::concat("config: key '", key, "' expects ", want, " (from ", origin, ")"));
}

std::string quote(const std::string& s) {
  std::ostringstream os;
  os << toml::value<std::string>(s);
  return os.str();
}

void walk(const toml::table& t, const std::string& prefix,
          const std::function<void(const std::string&, const toml::node&)>& fn) {
  for (const auto& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      walk(*sub, key, fn);
    } else {
      fn(key, v);
    }
  }
}

}  // namespace

Config::Field& Config::add(const std::string& key) {
  MEDFM_ASSERT(!fields_.count(key), "duplicate config key ", key);
  return fields_[key];
}

void Config::bind(const std::string& key, bool& field, std::string help) {
  auto& f = add(key);
  f.type = "bool";
  f.help = std::move(help);
  f.set = [&field, key](const void* n, const std::string& origin) {
    auto v = as_node(n).value<bool>();
    if (!v || !as_node(n).is_boolean()) type_error(key, "true or false", origin);
    field = *v;
  };
  f.get = [&field] { return std::string(field ? "true" : "false"); };
}

void Config::bind(const std::string& key, int& field, std::string help) {
  auto& f = add(key);
  f.type = "int";
  f.help = std::move(help);
  f.set = [&field, key](const void* n, const std::string& origin) {
    if (!as_node(n).is_integer()) type_error(key, "an integer", origin);
    field = static_cast<int>(*as_node(n).value<int64_t>());
  };
  f.get = [&field] { return std::to_string(field); };
}

void Config::bind(const std::string& key, double& field, std::string help) {
  auto& f = add(key);
  f.type = "float";
  f.help = std::move(help);
  f.set = [&field, key](const void* n, const std::string& origin) {
    if (!as_node(n).is_number()) type_error(key, "a number", origin);
    field = *as_node(n).value<double>();
  };
  f.get = [&field] {
    std::ostringstream os;
    os << toml::value<double>(field);
    return os.str();
  };
}

void Config::bind(const std::string& key, std::string& field, std::string help) {
  auto& f = add(key);
  f.type = "string";
  f.help = std::move(help);
  f.set = [&field, key](const void* n, const std::string& origin) {
    if (!as_node(n).is_string()) type_error(key, "a string", origin);
    field = *as_node(n).value<std::string>();
  };
  f.get = [&field] { return quote(field); };
}

void Config::bind(const std::string& key, int64_t& field, std::string help) {
  auto& f = add(key);
  f.type = "int";
  f.help = std::move(help);
  f.set = [&field, key](const void* n, const std::string& origin) {
    if (!as_node(n).is_integer()) type_error(key, "an integer", origin);
    field = *as_node(n).value<int64_t>();
  };
  f.get = [&field] { return std::to_string(field); };
}

namespace {

// One TOML array binder for every element type: `accepts` checks an element, `want` names it.
template <typename T>
void bind_array(const std::string& key, std::vector<T>& field, bool (*accepts)(const toml::node&), const char* want,
                std::function<void(const void*, const std::string&)>* set, std::function<std::string()>* get) {
  *set = [&field, key, accepts, want](const void* n, const std::string& origin) {
    const auto* arr = as_node(n).as_array();
    if (!arr) type_error(key, want, origin);
    std::vector<T> out;
    for (const auto& e : *arr) {
      if (!accepts(e)) type_error(key, want, origin);
      out.push_back(*e.value<T>());
    }
    field = std::move(out);
  };
  *get = [&field] {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < field.size(); ++i) os << (i ? ", " : "") << toml::value<T>(field[i]);
    os << "]";
    return os.str();
  };
}

}  // namespace

void Config::bind(const std::string& key, std::vector<double>& field, std::string help) {
  auto& f = add(key);
  f.type = "float[]";
  f.help = std::move(help);
  bind_array<double>(key, field, [](const toml::node& e) { return e.is_number(); }, "an array of numbers", &f.set, &f.get);
}

void Config::bind(const std::string& key, std::vector<int64_t>& field, std::string help) {
  auto& f = add(key);
  f.type = "int[]";
  f.help = std::move(help);
  bind_array<int64_t>(key, field, [](const toml::node& e) { return e.is_integer(); }, "an array of integers", &f.set,
                      &f.get);
}

void Config::bind(const std::string& key, std::vector<std::string>& field, std::string help) {
  auto& f = add(key);
  f.type = "string[]";
  f.help = std::move(help);
  bind_array<std::string>(key, field, [](const toml::node& e) { return e.is_string(); }, "an array of strings", &f.set,
                          &f.get);
}

void Config::apply_toml(const std::string& text, const std::string& origin) {
  toml::table tbl;
  try {
    tbl = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config: " << origin << ": " << e.description() << " at line " << e.source().begin.line;
    throw ConfigError(os.str());
  }
  walk(tbl, "", [&](const std::string& key, const toml::node& node) {
    auto it = fields_.find(key);
    if (it == fields_.end()) {
      throw ConfigError(detail::concat("config: unknown key '", key, "' in ", origin));
    }
    it->second.set(&node, origin);
  });
}

void Config::apply_file(const std::string& path) {
  std::error_code ec;
  MEDFM_CHECK_T(ConfigError, std::filesystem::exists(path, ec), "config: '", path, "' does not exist");
  MEDFM_CHECK_T(ConfigError, std::filesystem::is_regular_file(path, ec), "config: '", path,
                "' is not a regular file (a folder, FIFO or device)");
  MEDFM_CHECK_T(ConfigError, std::filesystem::file_size(path, ec) <= (16u << 20), "config: '", path,
                "' is larger than 16 MiB; not a config file");
  std::ifstream in(path);
  MEDFM_CHECK_T(ConfigError, in.good(), "config: cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  apply_toml(ss.str(), path);
}

void Config::apply_set(const std::string& assignment) {
  auto eq = assignment.find('=');
  MEDFM_CHECK_T(ConfigError, eq != std::string::npos && eq > 0,
                "config: an override expects key=value, got '", assignment, "'");
  std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  auto it = fields_.find(key);
  MEDFM_CHECK_T(ConfigError, it != fields_.end(), "config: unknown key '", key, "' in an override");
  const std::string& type = it->second.type;
  if (type.size() > 2 && type.compare(type.size() - 2, 2, "[]") == 0) {
    apply_value(key, value, "override " + key);  // a TOML array or comma-separated items
    return;
  }
  toml::table tbl;
  try {
    tbl = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    tbl = toml::table{{"v", value}};  // bare word: a string
  }
  if (it->second.type == "string" && !tbl["v"].is_string()) tbl = toml::table{{"v", value}};
  it->second.set(tbl.get("v"), "override " + key);
}

void Config::apply_value(const std::string& key, const std::string& raw, const std::string& origin) {
  auto it = fields_.find(key);
  MEDFM_ASSERT(it != fields_.end(), "no config key ", key);
  const std::string& type = it->second.type;
  toml::table tbl;
  if (type == "string") {
    tbl = toml::table{{"v", raw}};
  } else if (type == "string[]" || type == "float[]" || type == "int[]") {
    // A TOML array as is; otherwise comma-separated items (strings taken verbatim).
    bool parsed = false;
    if (!raw.empty() && raw.front() == '[') {
      try {
        tbl = toml::parse("v = " + raw);
        parsed = true;
      } catch (const toml::parse_error&) {
      }
    }
    if (!parsed) {
      toml::array arr;
      std::stringstream ss(raw);
      for (std::string item; std::getline(ss, item, ',');) {
        if (type == "string[]") {
          arr.push_back(item);
          continue;
        }
        try {
          auto t = toml::parse("v = " + item);
          if (t["v"].is_integer()) arr.push_back(*t["v"].value<int64_t>());
          else if (t["v"].is_floating_point()) arr.push_back(*t["v"].value<double>());
          else arr.push_back(item);
        } catch (const toml::parse_error&) {
          arr.push_back(item);
        }
      }
      tbl = toml::table{{"v", arr}};
    }
  } else {
    try {
      tbl = toml::parse("v = " + raw);
    } catch (const toml::parse_error&) {
      tbl = toml::table{{"v", raw}};  // reported as a type error below
    }
  }
  it->second.set(tbl.get("v"), origin);
}

bool Config::has(const std::string& key) const { return fields_.count(key) > 0; }

std::string Config::to_toml() const {
  // Group by table prefix so the output is valid, readable TOML.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> tables;
  for (const auto& [key, f] : fields_) {
    auto dot = key.rfind('.');
    std::string table = dot == std::string::npos ? "" : key.substr(0, dot);
    std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    tables[table].emplace_back(leaf, f.get());
  }
  std::ostringstream os;
  for (const auto& [table, entries] : tables) {
    if (!table.empty()) os << "\n[" << table << "]\n";
    for (const auto& [leaf, v] : entries) os << leaf << " = " << v << "\n";
  }
  return os.str();
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : fields_) out.push_back(kv.first);
  return out;
}

}  // namespace medfm

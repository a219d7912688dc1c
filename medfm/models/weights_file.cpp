#include "medfm/models/weights_file.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/core/torch_file.h"

namespace medfm::models {
namespace {

namespace fs = std::filesystem;
using pickle::Kind;
using pickle::Object;

constexpr const char* kEntries[] = {"state_dict", "model", "teacher", "student", "model_ema", "module", "net", "network"};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

bool is_state_dict(const Object* o) {
  if (!o || o->kind != Kind::Dict) return false;
  bool tensor = false;
  for (size_t i = 0; i + 1 < o->items.size(); i += 2) {
    if (o->items[i]->kind != Kind::Str) return false;
    tensor = tensor || o->items[i + 1]->kind == Kind::Tensor;
  }
  return tensor;
}

const Object* auto_pick(const Object* o, std::string* entry, int depth) {
  if (is_state_dict(o)) return o;
  if (depth >= 3 || !o || o->kind != Kind::Dict) return nullptr;
  for (const char* name : kEntries) {
    const Object* c = o->get(name);
    std::string sub;
    if (const Object* r = c ? auto_pick(c, &sub, depth + 1) : nullptr) {
      *entry = std::string(name) + (sub.empty() ? "" : "/" + sub);
      return r;
    }
  }
  return nullptr;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= key.size()) {
    const size_t slash = key.find('/', start);
    const std::string seg = key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!seg.empty()) out.push_back(seg);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// Keeps the tensors under `prefix` (stripped); with no prefix, the teacher half of a student/teacher dict.
StateDict select_prefix(StateDict sd, std::string prefix, const std::string& origin, std::vector<std::string>* notes) {
  if (prefix.empty()) {
    bool teacher = false, student = false;
    for (const auto& kv : sd) {
      teacher = teacher || starts_with(kv.first, "teacher.");
      student = student || starts_with(kv.first, "student.");
    }
    if (!(teacher && student)) return sd;
    prefix = "teacher.";
    notes->push_back("a student/teacher state dict: the teacher's tensors are used (as DINO/DINOv2 evaluate)");
  }
  StateDict out;
  size_t dropped = 0;
  for (auto& [k, v] : sd) {
    if (starts_with(k, prefix)) out[k.substr(prefix.size())] = v;
    else ++dropped;
  }
  if (out.empty()) throw FormatError("weights: " + origin + ": no tensor name starts with '" + prefix + "'");
  if (dropped) notes->push_back(std::to_string(dropped) + " tensors outside '" + prefix + "' left out");
  return out;
}

void read_torch(const std::string& path, const std::string& key, WeightsFile* w) {
  const TorchFile tf = TorchFile::open(path);
  const Object* node = tf.root();
  std::string prefix;
  if (!key.empty()) {
    std::string walked;
    for (const auto& seg : split_key(key)) {
      if (prefix.empty() && node->get(seg)) {
        node = node->get(seg);
        walked += (walked.empty() ? "" : "/") + seg;
        continue;
      }
      bool has_prefix = false;
      if (is_state_dict(node))
        for (size_t i = 0; i < node->items.size() && !has_prefix; i += 2)
          has_prefix = starts_with(node->items[i]->text, prefix + seg + ".");
      if (!has_prefix)
        throw FormatError("weights: " + path + ": --weights-key '" + key + "': no entry '" + seg + "' in " +
                          (walked.empty() ? "the file" : "'" + walked + "'") + " (" + pickle::describe(node) + ")");
      prefix += seg + ".";
    }
    w->entry = walked;
    if (!is_state_dict(node)) {
      std::string sub;
      const Object* r = auto_pick(node, &sub, 0);
      if (!r)
        throw FormatError("weights: " + path + ": entry '" + walked + "' is not a state dict (" + pickle::describe(node) + ")");
      node = r;
      w->entry += (sub.empty() ? "" : "/" + sub);
    }
  } else {
    node = auto_pick(tf.root(), &w->entry, 0);
    if (!node)
      throw FormatError("weights: " + path + ": no state dict found in " + pickle::describe(tf.root()) +
                        "; name the entry with --weights-key");
  }
  if (!w->entry.empty() && tf.root()->kind == Kind::Dict) {
    std::string others;
    const std::string top = w->entry.substr(0, w->entry.find('/'));
    for (size_t i = 0; i + 1 < tf.root()->items.size(); i += 2) {
      const Object* k = tf.root()->items[i];
      if (k->kind == Kind::Str && k->text != top) others += (others.empty() ? "" : ", ") + k->text;
    }
    if (!others.empty()) w->notes.push_back("entry '" + w->entry + "' used; not read: " + others);
  }
  StateDict sd;
  size_t skipped = 0;
  for (size_t i = 0; i + 1 < node->items.size(); i += 2) {
    const Object* v = node->items[i + 1];
    if (v->kind == Kind::Tensor) sd[node->items[i]->text] = tf.tensor(v);
    else ++skipped;
  }
  if (skipped) w->notes.push_back(std::to_string(skipped) + " non-tensor entries skipped");
  w->tensors = select_prefix(std::move(sd), prefix, path, &w->notes);
  w->container = tf.layout();
  w->files.push_back(path);
}

// The first bytes of a file (fewer if it is shorter).
std::string file_head(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::string head(n, '\0');
  f.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(f.gcount()));
  return head;
}

bool is_torch_head(const std::string& head) {
  return TorchFile::looks_like(reinterpret_cast<const uint8_t*>(head.data()), head.size());
}

bool is_torch(const std::string& path) { return is_torch_head(file_head(path, 16)); }

// One file (safetensors or torch.save), whole, no key applied.
StateDict read_single(const std::string& path, WeightsFile* w) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IoError("weights: '" + path + "' is not a regular file");
  const std::string head = file_head(path, 16);
  if (is_torch_head(head)) {
    read_torch(path, "", w);
    return std::move(w->tensors);
  }
  // safetensors: an 8-byte header length, then the JSON header's '{'
  if (head.size() > 8 && head[8] != '{')
    throw FormatError("weights: '" + path +
                      "' is neither a torch.save checkpoint (zip or legacy pickle) nor a safetensors file");
  auto st = SafeTensors::open(path);
  w->container = "safetensors";
  w->metadata = st.metadata();
  w->files.push_back(path);
  return st.view_all();
}

void read_index(const std::string& path, WeightsFile* w) {
  const auto size = fs::file_size(path);
  if (size > (64u << 20)) throw FormatError("weights: " + path + ": a " + std::to_string(size) + "-byte index is not a shard index");
  std::ifstream f(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("weights: " + path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError("weights: " + path + ": no \"weight_map\" object: not a shard index");
  const fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) throw FormatError("weights: " + path + ": weight_map entry '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    const fs::path rel(shard);
    bool up = rel.is_absolute();
    for (const auto& part : rel) up = up || part == "..";
    if (shard.empty() || up) throw FormatError("weights: " + path + ": shard '" + shard + "' lies outside the index's folder");
    by_shard[shard].push_back(it.key());
  }
  if (by_shard.empty()) throw FormatError("weights: " + path + ": the weight_map is empty");
  if (j.contains("metadata") && j["metadata"].is_object())
    for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it)
      if (it.value().is_string()) w->metadata[it.key()] = it.value().get<std::string>();
  w->files.push_back(path);
  size_t extra = 0;
  for (const auto& [shard, names] : by_shard) {
    const std::string sp = (dir / shard).string();
    if (!fs::exists(sp)) throw IoError("weights: " + path + ": shard '" + shard + "' is missing");
    WeightsFile part;
    StateDict sd = read_single(sp, &part);
    w->files.push_back(sp);
    for (const auto& n : names) {
      auto it = sd.find(n);
      if (it == sd.end()) throw FormatError("weights: " + path + ": tensor '" + n + "' should be in " + shard + " but is not");
      w->tensors[n] = it->second;
    }
    extra += sd.size() - names.size();
  }
  if (extra) w->notes.push_back(std::to_string(extra) + " tensors in the shards are not in the index and were left out");
  w->container = "sharded (" + std::to_string(by_shard.size()) + " files)";
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

}  // namespace

WeightsFile read_weights_file(const std::string& given, const std::string& key) {
  std::error_code ec;
  std::string path = given;
  if (!fs::exists(path, ec)) throw IoError("weights: '" + path + "' does not exist");
  if (fs::is_directory(path, ec)) {
    std::string found;
    for (const char* name : {"model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                             "pytorch_model.bin"})
      if (fs::is_regular_file(fs::path(path) / name, ec)) {
        found = (fs::path(path) / name).string();
        break;
      }
    if (found.empty())
      throw IoError("weights: folder '" + path +
                    "' holds none of model.safetensors(.index.json), pytorch_model.bin(.index.json)");
    path = found;
  }
  if (!fs::is_regular_file(path, ec)) throw IoError("weights: '" + path + "' is not a regular file");
  WeightsFile w;
  if (is_torch(path)) {  // a torch.save tree: the key walks its entries
    read_torch(path, key, &w);
    return w;
  }
  // Flat name -> tensor containers: the key is a name prefix.
  if (ends_with(path, ".json")) read_index(path, &w);
  else w.tensors = read_single(path, &w);
  std::string prefix;
  for (const auto& seg : split_key(key)) prefix += seg + ".";
  w.tensors = select_prefix(std::move(w.tensors), prefix, path, &w.notes);
  w.entry = key;
  return w;
}

}  // namespace medfm::models

#include "medfm/core/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "medfm/core/atomic_file.h"
#include "medfm/core/error.h"
#include "medfm/core/mapped_file.h"

namespace medfm {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;

struct DType {
  const char* name;
  at::ScalarType type;
  size_t size;
};
constexpr DType kDTypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DType* find_dtype(const std::string& s) {
  for (const auto& d : kDTypes)
    if (s == d.name) return &d;
  return nullptr;
}
const DType* find_dtype(at::ScalarType t) {
  for (const auto& d : kDTypes)
    if (t == d.type) return &d;
  return nullptr;
}

}  // namespace

void parse_safetensors(const uint8_t* data, size_t size, const std::string& origin,
                       std::vector<TensorEntry>* entries, std::map<std::string, std::string>* metadata,
                       size_t* data_start) {
  auto fail = [&](const std::string& what) -> FormatError {
    return FormatError("safetensors: " + origin + ": " + what);
  };
  if (size < 8) throw fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > kMaxHeader) throw fail("header length " + std::to_string(n) + " exceeds the 100 MiB cap");
  if (n > size - 8)
    throw fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
               " bytes): truncated?");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data + 8, data + 8 + n);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e800 (found by the fuzzer)
    throw fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw fail("header JSON is not an object");
  const uint64_t region = size - 8 - n;
  entries->clear();
  metadata->clear();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__ value for '" + m.key() + "' is not a string");
        (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) throw fail(where + " entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw fail(where + " has no string dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) throw fail(where + " has no shape array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      throw fail(where + " has no [begin, end] data_offsets");
    TensorEntry e;
    e.name = name;
    e.dtype = v["dtype"].get<std::string>();
    const DType* dt = find_dtype(e.dtype);
    if (!dt) throw fail(where + " has unsupported dtype '" + e.dtype + "'");
    uint64_t count = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw fail(where + " has a shape entry that is not a non-negative integer");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > (~0ull) / dim) throw fail(where + " shape overflows");
      count *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) throw fail(where + " has a data offset that is not a non-negative integer");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end) throw fail(where + " has begin offset after end offset");
    if (e.end > region)
      throw fail(where + " ends at byte " + std::to_string(e.end) + " but the data region holds " +
                 std::to_string(region) + " bytes: truncated or lying offsets");
    if (count > (~0ull) / dt->size || count * dt->size != e.end - e.begin)
      throw fail(where + ": shape x dtype size is " + std::to_string(count * dt->size) + " bytes but offsets span " +
                 std::to_string(e.end - e.begin));
    entries->push_back(std::move(e));
  }
  std::vector<const TensorEntry*> sorted;
  for (const auto& e : *entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->begin < sorted[i - 1]->end && sorted[i]->end > sorted[i]->begin)
      throw fail("tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
  }
  *data_start = 8 + n;
}

SafeTensors SafeTensors::open(const std::string& path) {
  SafeTensors st;
  st.path_ = path;
  try {
    st.file_ = MappedFile::open(path);
  } catch (const IoError& e) {
    throw IoError(std::string("safetensors: ") + e.what());
  }
  static const uint8_t kEmpty[1] = {0};
  parse_safetensors(st.file_->size() ? st.file_->data() : kEmpty, st.file_->size(), path, &st.entries_, &st.metadata_,
                    &st.data_start_);
  for (size_t i = 0; i < st.entries_.size(); ++i) st.index_[st.entries_[i].name] = i;
  return st;
}

bool SafeTensors::contains(const std::string& name) const { return index_.count(name) > 0; }

const TensorEntry& SafeTensors::entry(const std::string& name) const {
  auto it = index_.find(name);
  MEDFM_CHECK(it != index_.end(), "safetensors: ", path_, ": no tensor named '", name, "'");
  return entries_[it->second];
}

at::Tensor SafeTensors::get(const std::string& name) const {
  const TensorEntry& e = entry(name);
  auto out = torch::empty(e.shape, torch::TensorOptions().dtype(find_dtype(e.dtype)->type));
  if (e.end > e.begin) std::memcpy(out.data_ptr(), file_->data() + data_start_ + e.begin, e.end - e.begin);
  return out;
}

at::Tensor SafeTensors::view(const std::string& name) const {
  const TensorEntry& e = entry(name);
  return file_->view(data_start_ + e.begin, find_dtype(e.dtype)->type, e.shape);
}

std::map<std::string, at::Tensor> SafeTensors::load_all() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& e : entries_) out.emplace(e.name, get(e.name));
  return out;
}

std::map<std::string, at::Tensor> SafeTensors::view_all() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& e : entries_) out.emplace(e.name, view(e.name));
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MEDFM_CHECK(name != "__metadata__", "safetensors: tensor name '__metadata__' is reserved");
    MEDFM_CHECK(!header.contains(name), "safetensors: duplicate tensor name '", name, "'");
    const DType* dt = find_dtype(t.scalar_type());
    MEDFM_CHECK(dt, "safetensors: tensor '", name, "' has unsupported dtype ", t.scalar_type());
    auto c = t.detach().to(torch::kCPU).contiguous();
    uint64_t bytes = static_cast<uint64_t>(c.numel()) * dt->size;
    header[name] = {{"dtype", dt->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(c);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // align the data region to 8 bytes
  AtomicFile out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary);
    MEDFM_CHECK_T(IoError, f.good(), "safetensors: cannot write '", out.temp_path(), "'");
    uint64_t n = h.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    f.write(reinterpret_cast<const char*>(len), 8);
    f.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& c : cpu)
      f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
    f.flush();
    MEDFM_CHECK_T(IoError, f.good(), "safetensors: write failed for '", out.temp_path(), "'");
  }
  out.commit();
}

}  // namespace medfm

#include "medfm/core/torch_file.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstring>

#include "medfm/core/mapped_file.h"

namespace medfm {
namespace {

// torch.save's legacy stream starts with the protocol-2 pickle of its magic number
// 0x1950a86a20f9469cfc6c (a LONG1 of 10 bytes).
constexpr uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                    0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

// LibTorch's zip reader over the mapped bytes (one open, one regular-file check).
class MappedReader : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MappedReader(std::shared_ptr<const MappedFile> f) : f_(std::move(f)) {}
  size_t size() const override { return f_->size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= f_->size()) return 0;
    n = std::min<size_t>(n, f_->size() - pos);
    std::memcpy(buf, f_->data() + pos, n);
    return n;
  }

 private:
  std::shared_ptr<const MappedFile> f_;
};

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// For the record whose data starts at `data_offset`, finds its local file header (the record name
// ends in `suffix`) and tells whether it is stored uncompressed with at least `bytes` bytes.
bool stored_uncompressed(const MappedFile& f, size_t data_offset, const std::string& suffix, uint64_t bytes) {
  const uint8_t* d = f.data();
  const size_t lowest = data_offset > 30 + 2 * 65535 ? data_offset - 30 - 2 * 65535 : 0;
  if (data_offset < 30 || data_offset > f.size()) return false;
  for (size_t pos = data_offset - 30;; --pos) {
    if (le(d + pos, 4) == 0x04034b50) {
      const uint64_t name_len = le(d + pos + 26, 2), extra_len = le(d + pos + 28, 2);
      if (pos + 30 + name_len + extra_len == data_offset && name_len >= suffix.size() &&
          std::memcmp(d + pos + 30 + name_len - suffix.size(), suffix.data(), suffix.size()) == 0) {
        const uint64_t flags = le(d + pos + 6, 2), method = le(d + pos + 8, 2);
        uint64_t comp = le(d + pos + 18, 4), plain = le(d + pos + 22, 4);
        if (comp == 0xFFFFFFFFu || plain == 0xFFFFFFFFu) {  // ZIP64 sizes in the extra field
          const uint8_t* x = d + pos + 30 + name_len;
          for (uint64_t i = 0; i + 4 <= extra_len;) {
            const uint64_t id = le(x + i, 2), len = le(x + i + 2, 2);
            if (i + 4 + len > extra_len) break;
            if (id == 1) {
              uint64_t k = i + 4;
              if (plain == 0xFFFFFFFFu && k + 8 <= i + 4 + len) plain = le(x + k, 8), k += 8;
              if (comp == 0xFFFFFFFFu && k + 8 <= i + 4 + len) comp = le(x + k, 8);
            }
            i += 4 + len;
          }
        }
        return method == 0 && (flags & 8) == 0 && comp == plain && comp >= bytes && data_offset + bytes <= f.size();
      }
    }
    if (pos == lowest) break;
  }
  return false;
}

}  // namespace

bool TorchFile::looks_like(const uint8_t* data, size_t size) {
  if (size >= 4 && le(data, 4) == 0x04034b50) return true;
  return size >= sizeof(kLegacyMagic) && std::memcmp(data, kLegacyMagic, sizeof(kLegacyMagic)) == 0;
}

TorchFile TorchFile::open(const std::string& path) {
  TorchFile tf;
  tf.path_ = path;
  tf.file_ = MappedFile::open(path);
  const MappedFile& f = *tf.file_;
  auto fail = [&](const std::string& what) { return FormatError("torch: " + path + ": " + what); };
  if (!looks_like(f.data(), f.size())) {
    if (f.size() >= 512 && std::memcmp(f.data() + 257, "ustar", 5) == 0)
      throw fail("the tar layout of torch < 0.4 is not supported; re-save it with a current torch");
    throw fail("not a torch.save file (neither a zip archive nor the legacy pickle stream)");
  }
  if (le(f.data(), 4) == 0x04034b50) {
    tf.zip_ = true;
    try {
      caffe2::serialize::PyTorchStreamReader reader(std::make_shared<MappedReader>(tf.file_));
      if (reader.hasRecord("constants.pkl"))
        throw fail("a TorchScript module, not a saved state dict: give it as a TorchScript backbone (--torchscript)");
      if (!reader.hasRecord("data.pkl")) throw fail("no data.pkl record: not written by torch.save");
      if (reader.hasRecord("byteorder")) {
        auto [bo, n] = reader.getRecord("byteorder");
        const std::string order(static_cast<const char*>(bo.get()), n);
        if (order != "little") throw fail("written on a '" + order + "'-endian machine: not supported");
      }
      auto [pkl, pkl_size] = reader.getRecord("data.pkl");
      tf.doc_ = pickle::parse(static_cast<const uint8_t*>(pkl.get()), pkl_size, path + ":data.pkl");
      for (const pickle::Object* s : tf.doc_.storages()) {
        const std::string rec = "data/" + s->text;
        if (!reader.hasRecord(rec)) throw fail("data.pkl refers to storage '" + s->text + "' but the archive has no record " + rec);
        const uint64_t bytes = static_cast<uint64_t>(s->numel) * c10::elementSize(s->dtype);
        const size_t off = reader.getRecordOffset(rec);
        if (stored_uncompressed(f, off, "/" + rec, bytes)) {
          tf.storages_[s->text] = f.view(off, s->dtype, {s->numel});
        } else {
          auto [data, n] = reader.getRecord(rec);
          if (n < bytes)
            throw fail("storage '" + s->text + "' needs " + std::to_string(bytes) + " bytes but its record holds " + std::to_string(n));
          auto t = at::empty({s->numel}, at::TensorOptions().dtype(s->dtype));
          if (bytes) std::memcpy(t.data_ptr(), data.get(), bytes);
          tf.storages_[s->text] = t;
        }
      }
    } catch (const c10::Error& e) {
      throw fail("unreadable zip archive: " + first_line(e.what_without_backtrace()));
    }
    return tf;
  }
  // Legacy stream.
  tf.zip_ = false;
  size_t pos = 0, used = 0;
  auto next = [&](const char* what) {
    auto doc = pickle::parse(f.data() + pos, f.size() - pos, path + " (" + what + ")", &used);
    pos += used;
    return doc;
  };
  next("magic number");
  auto proto = next("protocol version");
  if (proto.root()->kind != pickle::Kind::Int || proto.root()->integer != 1001)
    throw fail("legacy protocol version is not 1001");
  auto sys = next("system info");
  if (const auto* little = sys.root()->get("little_endian"); !little || little->kind != pickle::Kind::Bool || !little->boolean)
    throw fail("written on a big-endian machine: not supported");
  tf.doc_ = next("objects");
  auto keys = next("storage keys");
  if (keys.root()->kind != pickle::Kind::List) throw fail("the storage key list is not a list");
  std::map<std::string, const pickle::Object*> declared;
  for (const auto* s : tf.doc_.storages()) declared[s->text] = s;
  for (const auto* k : keys.root()->items) {
    if (k->kind != pickle::Kind::Str) throw fail("a storage key is not a string");
    auto it = declared.find(k->text);
    if (it == declared.end()) throw fail("storage '" + k->text + "' is listed but no tensor declares it");
    const pickle::Object* s = it->second;
    if (f.size() - pos < 8) throw fail("truncated: storage '" + k->text + "' has no size");
    const uint64_t numel = le(f.data() + pos, 8);
    pos += 8;
    if (numel != static_cast<uint64_t>(s->numel))
      throw fail("storage '" + k->text + "' holds " + std::to_string(numel) + " elements but was declared with " +
                 std::to_string(s->numel));
    const uint64_t bytes = numel * c10::elementSize(s->dtype);
    if (f.size() - pos < bytes)
      throw fail("truncated: storage '" + k->text + "' needs " + std::to_string(bytes) + " bytes, " +
                 std::to_string(f.size() - pos) + " left");
    tf.storages_[k->text] = f.view(pos, s->dtype, {s->numel});
    pos += bytes;
  }
  for (const auto& [key, s] : declared)
    if (!tf.storages_.count(key)) throw fail("storage '" + key + "' is used but its data is missing");
  return tf;
}

at::Tensor TorchFile::tensor(const pickle::Object* t) const {
  MEDFM_ASSERT(t && t->kind == pickle::Kind::Tensor);
  const at::Tensor& storage = storages_.at(t->items.at(0)->text);
  return storage.as_strided(t->sizes, t->strides, t->offset);
}

}  // namespace medfm

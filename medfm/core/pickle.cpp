#include "medfm/core/pickle.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <unordered_map>

namespace medfm::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "global";
    case Kind::Instance: return "object";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

const Object* Object::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (size_t i = 0; i + 1 < items.size(); i += 2)
    if (items[i]->kind == Kind::Str && items[i]->text == key) return items[i + 1];
  return nullptr;
}

namespace {

constexpr size_t kMaxObjects = size_t{1} << 22;

bool storage_dtype(const std::string& cls, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> kTypes[] = {
      {"torch.DoubleStorage", at::kDouble},   {"torch.FloatStorage", at::kFloat}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},     {"torch.CharStorage", at::kChar},   {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},       {"torch.UntypedStorage", at::kByte},
      {"torch.ComplexFloatStorage", at::kComplexFloat}, {"torch.ComplexDoubleStorage", at::kComplexDouble}};
  for (const auto& [name, t] : kTypes)
    if (cls == name) return *out = t, true;
  return false;
}

// Classes that only ever become inert placeholders when a pickle "calls" them.
bool inert_class(const std::string& g) {
  static const char* kNames[] = {"argparse.Namespace", "types.SimpleNamespace", "numpy.dtype",
                                 "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                                 "numpy.ndarray", "copyreg._reconstructor", "pathlib.PosixPath", "pathlib.WindowsPath",
                                 "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "pathlib.Path",
                                 "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
                                 "datetime.timezone", "builtins.slice", "builtins.complex", "builtins.range",
                                 "torch.device", "torch.Size", "torch.torch_version.TorchVersion", "torch.dtype",
                                 "builtins.object", "enum.Enum"};
  for (const char* n : kNames)
    if (g == n) return true;
  return false;
}

// UTF-8 -> code points; false on malformed input.
bool utf8_to_latin1(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    if (c < 0x80) cp = c, i += 1;
    else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu), i += 2;
    else return false;  // three- and four-byte sequences are beyond latin-1
    if (cp > 0xFF) return false;
    out->push_back(static_cast<char>(cp));
  }
  return true;
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, std::string origin) : p_(data), end_(data + size), begin_(data), origin_(std::move(origin)) {}

  Document run(size_t* consumed) {
    while (true) {
      const size_t at = static_cast<size_t>(p_ - begin_);
      const uint8_t op = u8();
      if (op == '.') {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) throw fail(at, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
        doc_.root_ = stack_.back();
        if (consumed) *consumed = static_cast<size_t>(p_ - begin_);
        return std::move(doc_);
      }
      step(op, at);
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  std::string origin_;
  Document doc_;
  std::vector<Object*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Object*> memo_;

  FormatError fail(size_t at, const std::string& what) const {
    return FormatError("pickle: " + origin_ + ": " + what + " (at byte " + std::to_string(at) + ")");
  }
  FormatError fail(const std::string& what) const { return fail(static_cast<size_t>(p_ - begin_), what); }

  Object* make(Kind k) {
    if (doc_.arena_.size() >= kMaxObjects) throw fail("more than " + std::to_string(kMaxObjects) + " objects");
    doc_.arena_.emplace_back();
    doc_.arena_.back().kind = k;
    return &doc_.arena_.back();
  }
  Object* make_int(int64_t v) {
    auto* o = make(Kind::Int);
    o->integer = v;
    return o;
  }
  Object* make_text(Kind k, std::string s) {
    auto* o = make(k);
    o->text = std::move(s);
    return o;
  }

  // Input.
  void need(size_t n) const {
    if (static_cast<size_t>(end_ - p_) < n) throw fail("truncated: needs " + std::to_string(n) + " more bytes");
  }
  uint8_t u8() {
    need(1);
    return *p_++;
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) throw fail("truncated: a " + std::to_string(n) + "-byte string runs past the end");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  std::string line() {
    const void* nl = std::memchr(p_, '\n', static_cast<size_t>(end_ - p_));
    if (!nl) throw fail("truncated: a text argument without its newline");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<const uint8_t*>(nl) - p_);
    p_ = static_cast<const uint8_t*>(nl) + 1;
    return s;
  }

  // Stack.
  Object* pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) throw fail("stack underflow");
    Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Object* top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) throw fail("stack underflow");
    return stack_.back();
  }
  std::vector<Object*> pop_mark() {
    if (marks_.empty()) throw fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Object*> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  void push(Object* o) { stack_.push_back(o); }
  Object* memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) throw fail("memo entry " + std::to_string(i) + " was never stored");
    return it->second;
  }
  void memo_put(uint64_t i) {
    if (stack_.empty()) throw fail("stack underflow");
    memo_[i] = stack_.back();
  }

  int64_t parse_int(const std::string& s) {
    std::string t = s;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    errno = 0;
    char* e = nullptr;
    const long long v = std::strtoll(t.c_str(), &e, 10);
    if (t.empty() || *e != '\0' || errno == ERANGE) throw fail("bad or too large integer '" + s.substr(0, 40) + "'");
    return v;
  }

  // A little-endian two's-complement integer of n bytes.
  Object* make_long(const std::string& b) {
    if (b.empty()) return make_int(0);
    const bool neg = static_cast<unsigned char>(b.back()) & 0x80;
    size_t n = b.size();
    while (n > 1 && static_cast<unsigned char>(b[n - 1]) == (neg ? 0xFF : 0x00) &&
           ((static_cast<unsigned char>(b[n - 2]) & 0x80) != 0) == neg)
      --n;
    if (n > 8) {  // beyond int64: kept as an approximate float
      double v = 0;  // magnitude of the value (for negatives, of its complement plus one)
      for (size_t i = b.size(); i-- > 0;) {
        const auto byte = static_cast<unsigned char>(b[i]);
        v = v * 256 + (neg ? static_cast<unsigned char>(~byte) : byte);
      }
      auto* o = make(Kind::Float);
      o->real = neg ? -(v + 1) : v;
      return o;
    }
    uint64_t v = neg ? ~uint64_t{0} : 0;
    for (size_t i = 0; i < n; ++i) {
      v &= ~(uint64_t{0xFF} << (8 * i));
      v |= static_cast<uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    }
    return make_int(static_cast<int64_t>(v));
  }

  static int hex_digit(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  }

  std::string unquote(const std::string& s) {  // protocol 0 STRING: a Python repr
    if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front())
      throw fail("STRING argument is not quoted");
    const std::string body = s.substr(1, s.size() - 2);
    std::string out;
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] != '\\') {
        out.push_back(body[i]);
        continue;
      }
      if (++i == body.size()) throw fail("STRING ends in a backslash");
      const char e = body[i];
      if (e == 'n') out.push_back('\n');
      else if (e == 't') out.push_back('\t');
      else if (e == 'r') out.push_back('\r');
      else if (e == 'x') {
        if (i + 2 >= body.size() || hex_digit(body[i + 1]) < 0 || hex_digit(body[i + 2]) < 0)
          throw fail("bad \\x escape in STRING");
        out.push_back(static_cast<char>(hex_digit(body[i + 1]) * 16 + hex_digit(body[i + 2])));
        i += 2;
      } else out.push_back(e);
    }
    return out;
  }

  std::string raw_unicode_escape(const std::string& s) {  // protocol 0 UNICODE
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
        const size_t n = s[i + 1] == 'u' ? 4 : 8;
        if (i + 2 + n > s.size()) throw fail("bad \\u escape in UNICODE");
        uint32_t cp = 0;
        for (size_t k = 0; k < n; ++k) {
          const int d = hex_digit(s[i + 2 + k]);
          if (d < 0) throw fail("bad \\u escape in UNICODE");
          cp = cp * 16 + static_cast<uint32_t>(d);
        }
        if (cp > 0x10FFFF) throw fail("code point out of range in UNICODE");
        append_utf8(&out, cp);
        i += 1 + n;
      } else {
        append_utf8(&out, c);
      }
    }
    return out;
  }

  Object* global(const std::string& module, const std::string& name) {
    if (module.empty() || name.empty() || module.size() > 256 || name.size() > 256)
      throw fail("GLOBAL with an empty or overlong name");
    // Python 2 module names, as Python 3's unpickler maps them (protocol 2 writes __builtin__).
    const std::string m = module == "__builtin__" ? "builtins" : module == "copy_reg" ? "copyreg" : module;
    return make_text(Kind::Global, m + "." + name);
  }

  static bool is_int(const Object* o) { return o->kind == Kind::Int; }
  std::vector<int64_t> int_tuple(const Object* o, const char* what) {
    if (o->kind != Kind::Tuple && o->kind != Kind::List) throw fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> v;
    for (const auto* x : o->items) {
      if (!is_int(x) || x->integer < 0) throw fail(std::string(what) + " holds something other than a non-negative int");
      v.push_back(x->integer);
    }
    return v;
  }

  Object* rebuild_tensor(const std::vector<Object*>& a) {
    if (a.size() < 4) throw fail("_rebuild_tensor with " + std::to_string(a.size()) + " arguments");
    if (a[0]->kind != Kind::Storage) throw fail("_rebuild_tensor's first argument is a " + std::string(kind_name(a[0]->kind)) + ", not a storage");
    if (!is_int(a[1]) || a[1]->integer < 0) throw fail("_rebuild_tensor: bad storage offset");
    auto* t = make(Kind::Tensor);
    t->items = {a[0]};
    t->offset = a[1]->integer;
    t->sizes = int_tuple(a[2], "tensor size");
    t->strides = int_tuple(a[3], "tensor stride");
    if (t->sizes.size() != t->strides.size() || t->sizes.size() > 64) throw fail("tensor size and stride differ in length");
    // The view must lie inside its storage.
    __int128 last = t->offset, count = 1;
    for (size_t i = 0; i < t->sizes.size(); ++i) {
      count *= t->sizes[i];
      if (count > (__int128{1} << 62)) throw fail("tensor of more than 2^62 elements");
      if (t->sizes[i] > 0) last += static_cast<__int128>(t->sizes[i] - 1) * t->strides[i];
      if (last > (__int128{1} << 62)) throw fail("tensor view out of range");
    }
    if (count > 0 && last >= a[0]->numel)
      throw fail("tensor view reaches element " + std::to_string(static_cast<int64_t>(last)) + " of a storage of " +
                 std::to_string(a[0]->numel));
    return t;
  }

  Object* numpy_scalar(const std::vector<Object*>& a, Object* callable) {
    auto placeholder = [&] {
      auto* o = make_text(Kind::Instance, callable->text);
      o->items = a;
      return o;
    };
    if (a.size() != 2 || a[0]->kind != Kind::Instance || a[0]->text != "numpy.dtype" || a[0]->items.empty() ||
        a[0]->items[0]->kind != Kind::Str || a[1]->kind != Kind::Bytes)
      return placeholder();
    const std::string code = a[0]->items[0]->text;
    bool big = false;
    if (a[0]->state && a[0]->state->kind == Kind::Tuple && a[0]->state->items.size() > 1 &&
        a[0]->state->items[1]->kind == Kind::Str)
      big = a[0]->state->items[1]->text == ">";
    std::string b = a[1]->text;
    if (big) std::reverse(b.begin(), b.end());
    auto raw = [&](auto zero) {
      decltype(zero) v;
      if (b.size() != sizeof(v)) throw fail("numpy scalar of " + code + " with " + std::to_string(b.size()) + " bytes");
      std::memcpy(&v, b.data(), sizeof(v));
      return v;
    };
    Object* o = nullptr;
    if (code == "f8") o = make(Kind::Float), o->real = raw(double{});
    else if (code == "f4") o = make(Kind::Float), o->real = raw(float{});
    else if (code == "i8") o = make_int(raw(int64_t{}));
    else if (code == "i4") o = make_int(raw(int32_t{}));
    else if (code == "i2") o = make_int(raw(int16_t{}));
    else if (code == "i1") o = make_int(raw(int8_t{}));
    else if (code == "u1") o = make_int(raw(uint8_t{}));
    else if (code == "u2") o = make_int(raw(uint16_t{}));
    else if (code == "u4") o = make_int(raw(uint32_t{}));
    else if (code == "b1") o = make(Kind::Bool), o->boolean = raw(uint8_t{}) != 0;
    else return placeholder();
    return o;
  }

  // REDUCE / INST / OBJ: callable(*args).
  Object* call(Object* callable, const std::vector<Object*>& args, const char* how) {
    if (callable->kind != Kind::Global)
      throw UnsafePickle("pickle: " + origin_ + ": " + how + " on a " + kind_name(callable->kind) +
                         " instead of a known global: refused");
    const std::string& g = callable->text;
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty() || args[0]->kind != Kind::Tensor) throw fail("_rebuild_parameter without a tensor");
      return args[0];
    }
    if (g == "collections.OrderedDict" || g == "collections.defaultdict") {
      auto* d = make(Kind::Dict);
      // OrderedDict([(k, v), ...]) in old protocols; defaultdict(factory) keeps no factory.
      if (g == "collections.OrderedDict" && !args.empty() && args[0]->kind == Kind::List) {
        for (auto* kv : args[0]->items) {
          if ((kv->kind != Kind::Tuple && kv->kind != Kind::List) || kv->items.size() != 2) throw fail("OrderedDict item is not a pair");
          d->items.push_back(kv->items[0]);
          d->items.push_back(kv->items[1]);
        }
      }
      return d;
    }
    if (g == "builtins.set" || g == "builtins.frozenset") {
      auto* s = make(Kind::Set);
      if (!args.empty() && (args[0]->kind == Kind::List || args[0]->kind == Kind::Tuple)) s->items = args[0]->items;
      return s;
    }
    if (g == "_codecs.encode") {
      std::string latin;
      if (args.size() != 2 || args[0]->kind != Kind::Str || args[1]->kind != Kind::Str ||
          (args[1]->text != "latin1" && args[1]->text != "latin-1") || !utf8_to_latin1(args[0]->text, &latin))
        throw UnsafePickle("pickle: " + origin_ + ": _codecs.encode with arguments other than (str, 'latin1'): refused");
      return make_text(Kind::Bytes, std::move(latin));
    }
    if (g == "numpy.core.multiarray.scalar" || g == "numpy._core.multiarray.scalar") return numpy_scalar(args, callable);
    if (inert_class(g)) {
      auto* o = make_text(Kind::Instance, g);
      o->items = args;
      return o;
    }
    throw UnsafePickle("pickle: " + origin_ + ": refusing to call " + g + " (" + how +
                       "): a weights file needs only tensors, containers and numbers; this one would run code");
  }

  Object* persistent(Object* pid) {
    // ('storage', <dtype class>, key, location, numel[, view_metadata])
    if (pid->kind != Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::Str ||
        pid->items[0]->text != "storage")
      throw fail("persistent id is not a torch storage tuple");
    const Object* cls = pid->items[1];
    const Object* key = pid->items[2];
    const Object* loc = pid->items[3];
    const Object* numel = pid->items[4];
    auto* s = make(Kind::Storage);
    if (cls->kind != Kind::Global || !storage_dtype(cls->text, &s->dtype))
      throw fail("unsupported storage type " + (cls->kind == Kind::Global ? cls->text : std::string(kind_name(cls->kind))));
    if (key->kind != Kind::Str || key->text.empty() || key->text.size() > 256) throw fail("storage key is not a short string");
    if (loc->kind != Kind::Str) throw fail("storage location is not a string");
    if (!is_int(numel) || numel->integer < 0 || numel->integer > (int64_t{1} << 50)) throw fail("bad storage size");
    if (pid->items.size() > 5 && pid->items[5]->kind != Kind::None) throw fail("storage views (legacy view_metadata) are not supported");
    s->text = key->text;
    s->location = loc->text;
    s->numel = numel->integer;
    // One Storage object per key: tensors sharing a storage share it here too.
    for (const auto* prev : doc_.storages_)
      if (prev->text == s->text) {
        if (prev->dtype != s->dtype || prev->numel != s->numel) throw fail("storage '" + s->text + "' declared twice differently");
        return const_cast<Object*>(prev);
      }
    doc_.storages_.push_back(s);
    return s;
  }

  void set_items(Object* d, const std::vector<Object*>& kv) {
    if (d->kind != Kind::Dict) throw fail(std::string("SETITEM on a ") + kind_name(d->kind));
    if (kv.size() % 2) throw fail("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) {
      bool replaced = false;
      if (kv[i]->kind == Kind::Str)
        for (size_t j = 0; j < d->items.size(); j += 2)
          if (d->items[j]->kind == Kind::Str && d->items[j]->text == kv[i]->text) {
            d->items[j + 1] = kv[i + 1];
            replaced = true;
            break;
          }
      if (!replaced) {
        d->items.push_back(kv[i]);
        d->items.push_back(kv[i + 1]);
      }
    }
  }

  void append(Object* l, const std::vector<Object*>& v, const char* op) {
    if (l->kind != Kind::List && l->kind != Kind::Set) throw fail(std::string(op) + " on a " + kind_name(l->kind));
    l->items.insert(l->items.end(), v.begin(), v.end());
  }

  Object* tuple(std::vector<Object*> v) {
    auto* t = make(Kind::Tuple);
    t->items = std::move(v);
    return t;
  }

  void step(uint8_t op, size_t at) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t v = u8();
        if (v > 5) throw fail(at, "pickle protocol " + std::to_string(v) + " is newer than 5");
        break;
      }
      case 0x95: le(8); break;  // FRAME: a length hint only
      case '(': marks_.push_back(stack_.size()); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': push(top()); break;
      case 'N': push(make(Kind::None)); break;
      case 0x88: case 0x89: {
        auto* o = make(Kind::Bool);
        o->boolean = op == 0x88;
        push(o);
        break;
      }
      case 'I': {
        const std::string s = line();
        if (s == "01" || s == "00") {
          auto* o = make(Kind::Bool);
          o->boolean = s == "01";
          push(o);
        } else {
          push(make_int(parse_int(s)));
        }
        break;
      }
      case 'L': push(make_int(parse_int(line()))); break;
      case 'J': push(make_int(static_cast<int32_t>(le(4)))); break;
      case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;
      case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;
      case 0x8a: push(make_long(bytes(le(1)))); break;
      case 0x8b: {
        const auto n = static_cast<int32_t>(le(4));
        if (n < 0) throw fail(at, "LONG4 with a negative length");
        push(make_long(bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'F': {
        const std::string s = line();
        char* e = nullptr;
        const double v = std::strtod(s.c_str(), &e);
        if (s.empty() || *e != '\0') throw fail(at, "bad FLOAT '" + s.substr(0, 40) + "'");
        auto* o = make(Kind::Float);
        o->real = v;
        push(o);
        break;
      }
      case 'G': {
        const uint64_t bits = __builtin_bswap64(le(8));  // big-endian double
        double v;
        std::memcpy(&v, &bits, 8);
        auto* o = make(Kind::Float);
        o->real = v;
        push(o);
        break;
      }
      case 'S': push(make_text(Kind::Str, unquote(line()))); break;
      case 'T': {
        const auto n = static_cast<int32_t>(le(4));
        if (n < 0) throw fail(at, "BINSTRING with a negative length");
        push(make_text(Kind::Str, bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'U': push(make_text(Kind::Str, bytes(le(1)))); break;
      case 'V': push(make_text(Kind::Str, raw_unicode_escape(line()))); break;
      case 'X': push(make_text(Kind::Str, bytes(le(4)))); break;
      case 0x8c: push(make_text(Kind::Str, bytes(le(1)))); break;
      case 0x8d: push(make_text(Kind::Str, bytes(le(8)))); break;
      case 'B': push(make_text(Kind::Bytes, bytes(le(4)))); break;
      case 'C': push(make_text(Kind::Bytes, bytes(le(1)))); break;
      case 0x8e: case 0x96: push(make_text(Kind::Bytes, bytes(le(8)))); break;
      case ']': push(make(Kind::List)); break;
      case 'l': {
        auto* l = make(Kind::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case 'a': {
        Object* v = pop();
        append(top(), {v}, "APPEND");
        break;
      }
      case 'e': {
        auto v = pop_mark();
        append(top(), v, "APPENDS");
        break;
      }
      case ')': push(make(Kind::Tuple)); break;
      case 't': push(tuple(pop_mark())); break;
      case 0x85: {
        Object* a = pop();
        push(tuple({a}));
        break;
      }
      case 0x86: {
        Object* b = pop();
        Object* a = pop();
        push(tuple({a, b}));
        break;
      }
      case 0x87: {
        Object* c = pop();
        Object* b = pop();
        Object* a = pop();
        push(tuple({a, b, c}));
        break;
      }
      case '}': push(make(Kind::Dict)); break;
      case 'd': {
        auto* d = make(Kind::Dict);
        set_items(d, pop_mark());
        push(d);
        break;
      }
      case 's': {
        Object* v = pop();
        Object* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': {
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 0x8f: push(make(Kind::Set)); break;
      case 0x90: {
        auto v = pop_mark();
        append(top(), v, "ADDITEMS");
        break;
      }
      case 0x91: {
        auto* s = make(Kind::Set);
        s->items = pop_mark();
        push(s);
        break;
      }
      case 'p': memo_put(static_cast<uint64_t>(parse_int(line()))); break;
      case 'q': memo_put(le(1)); break;
      case 'r': memo_put(le(4)); break;
      case 0x94: memo_put(memo_.size()); break;
      case 'g': push(memo_get(static_cast<uint64_t>(parse_int(line())))); break;
      case 'h': push(memo_get(le(1))); break;
      case 'j': push(memo_get(le(4))); break;
      case 'c': {
        const std::string module = line();
        const std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {
        Object* name = pop();
        Object* module = pop();
        if (module->kind != Kind::Str || name->kind != Kind::Str) throw fail(at, "STACK_GLOBAL on non-strings");
        push(global(module->text, name->text));
        break;
      }
      case 'R': {
        Object* args = pop();
        Object* callable = pop();
        if (args->kind != Kind::Tuple) throw fail(at, "REDUCE arguments are not a tuple");
        push(call(callable, args->items, "REDUCE"));
        break;
      }
      case 'i': {
        const std::string module = line();
        const std::string name = line();
        auto args = pop_mark();
        push(call(global(module, name), args, "INST"));
        break;
      }
      case 'o': {
        auto v = pop_mark();
        if (v.empty()) throw fail(at, "OBJ without a class");
        Object* cls = v.front();
        push(call(cls, std::vector<Object*>(v.begin() + 1, v.end()), "OBJ"));
        break;
      }
      case 0x81: case 0x92: {  // NEWOBJ, NEWOBJ_EX: cls.__new__(cls, *args) -> an inert placeholder
        if (op == 0x92) pop();  // kwargs
        Object* args = pop();
        Object* cls = pop();
        if (cls->kind != Kind::Global) throw UnsafePickle("pickle: " + origin_ + ": NEWOBJ on a non-class: refused");
        auto* o = make_text(Kind::Instance, cls->text);
        if (args->kind == Kind::Tuple) o->items = args->items;
        push(o);
        break;
      }
      case 'b': {  // BUILD: state for a placeholder; attributes of dicts and tensors are dropped
        Object* state = pop();
        Object* target = top();
        if (target->kind == Kind::Instance) target->state = state;
        else if (target->kind != Kind::Dict && target->kind != Kind::Tensor && target->kind != Kind::List &&
                 target->kind != Kind::Set)
          throw fail(at, std::string("BUILD on a ") + kind_name(target->kind));
        break;
      }
      case 'Q': push(persistent(pop())); break;
      case 'P': throw fail(at, "text persistent ids (PERSID) are not torch storages");
      case 0x82: case 0x83: case 0x84: throw fail(at, "extension registry codes (EXT1/2/4) are not supported");
      case 0x97: case 0x98: throw fail(at, "out-of-band buffers are not supported");
      default: {
        std::ostringstream os;
        os << "unknown opcode 0x" << std::hex << static_cast<int>(op);
        throw fail(at, os.str());
      }
    }
  }
};

Document parse(const uint8_t* data, size_t size, const std::string& origin, size_t* consumed) {
  return Machine(data, size, origin).run(consumed);
}

std::string describe(const Object* o) {
  if (!o) return "nothing";
  switch (o->kind) {
    case Kind::Dict: {
      std::string s = "dict with keys ";
      size_t n = 0;
      for (size_t i = 0; i + 1 < o->items.size(); i += 2, ++n) {
        if (n == 8) {
          s += ", ... (" + std::to_string(o->items.size() / 2) + " in all)";
          break;
        }
        s += (n ? ", " : "") + (o->items[i]->kind == Kind::Str ? "'" + o->items[i]->text + "'" : std::string(kind_name(o->items[i]->kind)));
      }
      return n ? s : "empty dict";
    }
    case Kind::Instance: case Kind::Global: return o->text;
    case Kind::List: case Kind::Tuple: return std::string(kind_name(o->kind)) + " of " + std::to_string(o->items.size());
    default: return kind_name(o->kind);
  }
}

}  // namespace medfm::pickle

// A pickle reader that builds data, never code: enough of Python's pickle machine (protocols 0-5)
// to read what torch.save writes, and nothing that can run anything.
//
// Values become an inert object tree. Of the globals a pickle names, only these are ever "called",
// each by C++ code that builds data:
//   torch._utils._rebuild_tensor(_v2), _rebuild_parameter(_with_state)  -> Tensor (a storage view)
//   collections.OrderedDict, collections.defaultdict                    -> Dict
//   builtins.set / frozenset                                             -> Set
//   _codecs.encode(str, "latin1")                                        -> Bytes (protocol 2 bytes)
//   numpy.core.multiarray.scalar(dtype, bytes)                           -> Int / Float / Bool
// A few well-known data classes (argparse.Namespace, numpy.dtype, numpy arrays, pathlib paths,
// datetime, torch.device, torch.Size, copyreg._reconstructor, ...) and any class created through
// NEWOBJ become an inert Instance placeholder holding its arguments and state; nothing is
// constructed. A REDUCE, INST or OBJ on any other global (os.system, builtins.eval,
// subprocess.Popen, ...) is refused with UnsafePickle naming the global. Persistent ids must be
// torch storage tuples ('storage', <dtype class>, key, location, numel[, view]).
//
// Malformed input (truncation, unknown opcode, stack underflow, wrong argument types, limits
// exceeded) throws FormatError "pickle: <origin>: ..."; the reader never crashes or reads past
// the buffer (fuzzed: core/pickle_fuzz.cpp).
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "medfm/core/error.h"

namespace medfm {

class UnsafePickle : public FormatError {
  using FormatError::FormatError;
};

namespace pickle {

enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set, Global, Instance, Storage, Tensor };
const char* kind_name(Kind k);

struct Object {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  // Str and Bytes: the value (Str as UTF-8). Global and Instance: "module.name" of the class.
  // Storage: its key (the record name in the archive).
  std::string text;
  // List, Tuple, Set: elements. Dict: key0, value0, key1, value1, ... in insertion order.
  // Instance: constructor arguments. Tensor: {storage}.
  std::vector<Object*> items;
  Object* state = nullptr;  // Instance: what BUILD set
  // Storage.
  at::ScalarType dtype = at::kFloat;
  std::string location;
  int64_t numel = 0;
  // Tensor (a strided view of items[0]).
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;

  // Dict lookup by string key (nullptr when absent or not a dict).
  const Object* get(const std::string& key) const;
};

// The object tree of one pickle. Owns every object (the tree may share and even cycle).
class Document {
 public:
  const Object* root() const { return root_; }
  const std::vector<const Object*>& storages() const { return storages_; }  // in order of appearance

 private:
  friend class Machine;
  std::deque<Object> arena_;
  Object* root_ = nullptr;
  std::vector<const Object*> storages_;
};

// Reads one pickle from data[0, size) up to its STOP opcode; *consumed gets the bytes read.
// `origin` names the input in errors.
Document parse(const uint8_t* data, size_t size, const std::string& origin, size_t* consumed = nullptr);

// "argparse.Namespace", "{'model': ...}": a short description for messages.
std::string describe(const Object* o);

}  // namespace pickle
}  // namespace medfm

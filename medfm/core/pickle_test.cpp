// The pickle reader on hand-built byte strings: the opcodes torch.save and older protocols use,
// code-running constructs refused, malformed input rejected without crashing.
#include "medfm/core/pickle.h"

#include <gtest/gtest.h>

#include <string>

namespace medfm::pickle {
namespace {

// A byte string from a literal, embedded NULs included.
#define B(lit) std::string(lit, sizeof(lit) - 1)

Document parse_str(const std::string& s, size_t* used = nullptr) {
  return parse(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "test", used);
}

std::string error_of(const std::string& s) {
  try {
    parse_str(s);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(Pickle, Protocol2ContainersNumbersAndMemo) {
  // {'a': [1, -2, 2.5, True, None, 'x'], 'b': <memo of the list>, 'big': 2**40}
  std::string s = B("\x80\x02}q\x00(X\x01\x00\x00\x00" "a]q\x01(K\x01J\xfe\xff\xff\xffG\x40\x04\x00\x00\x00\x00\x00\x00\x88NX\x01\x00\x00\x00" "xeX\x01\x00\x00\x00" "bh\x01X\x03\x00\x00\x00" "big\x8a\x06\x00\x00\x00\x00\x00\x01u.");
  size_t used = 0;
  auto doc = parse_str(s, &used);
  EXPECT_EQ(used, s.size());
  const Object* a = doc.root()->get("a");
  ASSERT_TRUE(a && a->kind == Kind::List);
  ASSERT_EQ(a->items.size(), 6u);
  EXPECT_EQ(a->items[0]->integer, 1);
  EXPECT_EQ(a->items[1]->integer, -2);
  EXPECT_DOUBLE_EQ(a->items[2]->real, 2.5);
  EXPECT_TRUE(a->items[3]->boolean);
  EXPECT_EQ(a->items[4]->kind, Kind::None);
  EXPECT_EQ(a->items[5]->text, "x");
  EXPECT_EQ(doc.root()->get("b"), a);  // the memo shares the object
  EXPECT_EQ(doc.root()->get("big")->integer, int64_t{1} << 40);
}

TEST(Pickle, Protocol0Text) {
  // (dp0\nS'k'\np1\n(lp2\nI3\naF0.5\naL-7L\nas.   -> {'k': [3, 0.5, -7]}
  auto doc = parse_str("(dp0\nS'k'\np1\n(lp2\nI3\naF0.5\naL-7L\nas.");
  const Object* k = doc.root()->get("k");
  ASSERT_TRUE(k);
  ASSERT_EQ(k->items.size(), 3u);
  EXPECT_EQ(k->items[0]->integer, 3);
  EXPECT_DOUBLE_EQ(k->items[1]->real, 0.5);
  EXPECT_EQ(k->items[2]->integer, -7);
  EXPECT_EQ(parse_str("Vcaf\\u00e9\n.").root()->text, "caf\xc3\xa9");
}

TEST(Pickle, TensorViewsAreCheckedAgainstTheirStorage) {
  // _rebuild_tensor_v2(storage('0', Float, 6 elements), offset, (2, 3), (3, 1), False, OrderedDict())
  auto tensor = [](int offset, int numel) {
    std::string s = B("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK");
    s += static_cast<char>(numel);
    s += "tQK";
    s += static_cast<char>(offset);
    s += "K\x02K\x03\x86K\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.";
    return s;
  };
  auto doc = parse_str(tensor(0, 6));
  ASSERT_EQ(doc.root()->kind, Kind::Tensor);
  EXPECT_EQ(doc.root()->sizes, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(doc.storages().size(), 1u);
  EXPECT_EQ(doc.storages()[0]->numel, 6);
  EXPECT_EQ(doc.storages()[0]->dtype, at::kFloat);
  EXPECT_NE(error_of(tensor(1, 6)).find("reaches element 6 of a storage of 6"), std::string::npos);
  EXPECT_NE(error_of(tensor(0, 5)).find("of a storage of 5"), std::string::npos);
}

TEST(Pickle, CodeIsRefusedWhateverTheOpcode) {
  auto refused = [](const std::string& s, const std::string& global) {
    try {
      parse_str(s);
    } catch (const UnsafePickle& e) {
      return std::string(e.what()).find("refusing to call " + global) != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused("cos\nsystem\n(S'touch x'\ntR.", "os.system"));                      // GLOBAL + REDUCE
  EXPECT_TRUE(refused("(S'touch x'\nios\nsystem\n.", "os.system"));                         // INST
  EXPECT_TRUE(refused("(cbuiltins\neval\nS'1'\no.", "builtins.eval"));                      // OBJ
  EXPECT_TRUE(refused(std::string("\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93\x8c\x01x\x85R."), "builtins.exec"));  // STACK_GLOBAL
  EXPECT_TRUE(refused(B("}(X\x01\x00\x00\x00" "acsubprocess\nPopen\n(S'ls'\ntRu."), "subprocess.Popen"));  // nested in a dict
  // A data class through NEWOBJ is a placeholder (argparse.Namespace), never constructed.
  auto doc = parse_str(B("\x80\x02" "cargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9asb."));
  EXPECT_EQ(doc.root()->kind, Kind::Instance);
  EXPECT_EQ(doc.root()->text, "argparse.Namespace");
  ASSERT_TRUE(doc.root()->state);
  EXPECT_DOUBLE_EQ(doc.root()->state->get("lr")->real, 0.1);
}

TEST(Pickle, MalformedInputIsAFormatError) {
  for (const std::string& s : {std::string(""), std::string("\x80\x02"), std::string("]a."), std::string("K\x01K\x02."),
                               std::string("\x80\x09N."), std::string("h\x05."), std::string("X\xff\xff\xff\x7f"),
                               std::string("\xff."), std::string("\x80\x02(Q."), std::string("1."),
                               (B("(X\x01\x00\x00\x00kK\x01\x8a\x03u."))}) {
    SCOPED_TRACE(testing::PrintToString(s));
    EXPECT_THROW(parse_str(s), FormatError);
  }
  // Deep nesting and self-reference neither recurse nor leak.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 200000; ++i) deep += "]";
  for (int i = 0; i < 199999; ++i) deep += "a";
  deep += ".";
  EXPECT_EQ(parse_str(deep).root()->kind, Kind::List);
  auto cyc = parse_str(B("\x80\x02]q\x00h\x00" "a."));
  EXPECT_EQ(cyc.root()->items.at(0), cyc.root());
  EXPECT_EQ(describe(cyc.root()), "list of 1");
}

}  // namespace
}  // namespace medfm::pickle

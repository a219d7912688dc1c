#include "medfm/core/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "medfm/core/error.h"

namespace medfm {
namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("medfm_st_" + name)).string();
}

void write_raw(const std::string& path, const std::string& header, const std::string& data, int64_t fake_len = -1) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = fake_len >= 0 ? static_cast<uint64_t>(fake_len) : header.size();
  for (int i = 0; i < 8; ++i) f.put(static_cast<char>((n >> (8 * i)) & 0xff));
  f << header << data;
}

std::string error_of(const std::string& path) {
  try {
    SafeTensors::open(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SafeTensors, RoundTripsEveryDtypeAndMetadata) {
  const auto path = tmp("roundtrip.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> ts = {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kDouble)},
      {"f16", torch::randn({3, 1}).to(torch::kHalf)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(7)},
      {"i32", torch::arange(3, torch::kInt)},
      {"u8", torch::randint(0, 255, {4, 4}, torch::kByte)},
      {"b", torch::tensor({true, false, true})},
      {"empty", torch::empty({0, 3})},
  };
  save_safetensors(path, ts, {{"format", "pt"}, {"note", "medfm"}});
  auto st = SafeTensors::open(path);
  EXPECT_EQ(st.metadata().at("note"), "medfm");
  EXPECT_EQ(st.entries().size(), ts.size());
  for (const auto& [name, t] : ts) {
    auto got = st.get(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  EXPECT_FALSE(st.contains("nope"));
  EXPECT_THROW(st.get("nope"), Error);
  std::remove(path.c_str());
}

TEST(SafeTensors, MalformedFilesGiveClearErrors) {
  const auto p = tmp("bad.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  EXPECT_NE(error_of(p).find("shorter than the 8-byte header"), std::string::npos);

  write_raw(p, "{}", "", 1ll << 40);
  EXPECT_NE(error_of(p).find("exceeds the 100 MiB cap"), std::string::npos);

  write_raw(p, "{}", "", 5000);
  EXPECT_NE(error_of(p).find("runs past the end of the file"), std::string::npos);

  write_raw(p, "{\"a\": {\"dtype\": \"F32\"", "");
  EXPECT_NE(error_of(p).find("not valid JSON"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "1234");
  EXPECT_NE(error_of(p).find("truncated or lying offsets"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678");
  EXPECT_NE(error_of(p).find("shape x dtype size is 12 bytes but offsets span 8"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
            std::string(12, 'x'));
  EXPECT_NE(error_of(p).find("overlap"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}})", "x");
  EXPECT_NE(error_of(p).find("unsupported dtype 'Q7'"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "xxxx");
  EXPECT_NE(error_of(p).find("not a non-negative integer"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 0]}})", "x");
  EXPECT_NE(error_of(p).find("begin offset after end"), std::string::npos);

  write_raw(p, R"({"__metadata__": {"k": 3}})", "");
  EXPECT_NE(error_of(p).find("__metadata__ value"), std::string::npos);

  write_raw(p, R"({"a": 44e800})", "");  // number overflow: nlohmann throws out_of_range, not parse_error
  EXPECT_NE(error_of(p).find("not valid JSON"), std::string::npos);

  write_raw(p, "[1, 2]", "");
  EXPECT_NE(error_of(p).find("not an object"), std::string::npos);

  write_raw(p, R"({"a": {"dtype": "U8", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", "");
  EXPECT_NE(error_of(p).find("overflows"), std::string::npos);

  // The file name is always in the message.
  EXPECT_NE(error_of(p).find(p), std::string::npos);
  std::remove(p.c_str());
  EXPECT_THROW(SafeTensors::open(tmp("does_not_exist")), IoError);
}

TEST(SafeTensors, WriterLeavesNoPartialFileOnError) {
  const auto p = tmp("atomic.safetensors");
  std::remove(p.c_str());
  std::vector<std::pair<std::string, at::Tensor>> ts = {{"ok", torch::ones({2})},
                                                        {"bad", torch::ones({2}, torch::kComplexFloat)}};
  EXPECT_THROW(save_safetensors(p, ts), Error);
  EXPECT_FALSE(std::filesystem::exists(p));
}

}  // namespace
}  // namespace medfm

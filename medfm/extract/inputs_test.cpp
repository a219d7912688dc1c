// Input listing: CSV parsing, folders (sorting, hidden files, corrupt files kept), CSV lists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "medfm/core/error.h"
#include "medfm/extract/source.h"
#include "tests/temp_dir.h"

namespace medfm::extract {
namespace {

namespace fs = std::filesystem;
using Rows = std::vector<std::vector<std::string>>;

TEST(ParseCsv, QuotesDoubledQuotesCrlfAndBom) {
  EXPECT_EQ(parse_csv("a,b\n1,2\n", "t"), (Rows{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(parse_csv("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n", "t"), (Rows{{"a", "b"}, {"x, y", "say \"hi\""}}));
  EXPECT_EQ(parse_csv("\xEF\xBB\xBFpath\nq.png", "t"), (Rows{{"path"}, {"q.png"}}));  // BOM, no final newline
  EXPECT_EQ(parse_csv("a,\n,\n", "t"), (Rows{{"a", ""}, {"", ""}}));                   // empty fields
  EXPECT_EQ(parse_csv("a\n\n\nb\n", "t"), (Rows{{"a"}, {"b"}}));                         // blank lines skipped
  EXPECT_EQ(parse_csv("\"multi\nline\",x\n", "t"), (Rows{{"multi\nline", "x"}}));
  EXPECT_THROW(parse_csv("a,\"open\n", "t"), FormatError);
}

class Inputs : public ::testing::Test {
 protected:
  std::string put(const std::string& rel, const std::string& bytes) {
    const std::string p = dir_ + "/" + rel;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string error_of(const std::string& input) {
    try {
      list_inputs(input);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  medfm::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
  const std::string png_ = std::string("\x89PNG\r\n\x1a\n", 8) + "rest";
};

TEST_F(Inputs, FolderSortedByNameSkippingHiddenAndUnknownKeepingCorrupt) {
  put("b.png", png_);
  put("a.png", png_);
  put(".hidden.png", png_);
  put("notes.txt", "hello");
  put("broken.jpg", "not a jpeg");  // known extension, wrong bytes: an input that will fail loudly
  put("sub/c.png", png_);          // not recursive: a folder of images is not a DICOM series
  auto in = list_inputs(dir_);
  EXPECT_EQ(in.ids, (std::vector<std::string>{"a.png", "b.png", "broken.jpg"}));
  EXPECT_EQ(in.paths[0], dir_ + "/a.png");
  EXPECT_TRUE(in.extra_names.empty());
}

TEST_F(Inputs, CsvKeepsColumnsAndResolvesRelativePaths) {
  put("imgs/x.png", png_);
  const std::string csv = put("list.csv", "id,path,label,patient\ns1,imgs/x.png,tumour,\"P, 1\"\ns2,/abs/y.png,normal,P2\n");
  auto in = list_inputs(csv);
  EXPECT_EQ(in.ids, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(in.paths, (std::vector<std::string>{dir_ + "/imgs/x.png", "/abs/y.png"}));
  EXPECT_EQ(in.extra_names, (std::vector<std::string>{"label", "patient"}));
  EXPECT_EQ(in.extra[1], (std::vector<std::string>{"P, 1", "P2"}));
  // Without an id column the path is the id.
  EXPECT_EQ(list_inputs(put("noid.csv", "path\nimgs/x.png\n")).ids, (std::vector<std::string>{"imgs/x.png"}));
}

TEST_F(Inputs, CsvErrorsNameTheProblem) {
  EXPECT_NE(error_of(put("a.csv", "path,label,label\nx.png,1,2\n")).find("'label' appears twice"), std::string::npos);
  EXPECT_NE(error_of(put("b.csv", "path,path\nx.png,y.png\n")).find("'path' appears twice"), std::string::npos);
  EXPECT_NE(error_of(put("c.csv", "file,label\nx.png,1\n")).find("no 'path' column"), std::string::npos);
  EXPECT_NE(error_of(put("d.csv", "path,label\nx.png\n")).find("row 2 has 1 fields"), std::string::npos);
  EXPECT_NE(error_of(put("e.csv", "path\n\"\"\n")).find("empty path"), std::string::npos);
  EXPECT_NE(error_of(put("f.csv", "path,label\n")).find("lists no inputs"), std::string::npos);
  EXPECT_NE(error_of(put("g.csv", "")).find("empty file"), std::string::npos);
  EXPECT_NE(error_of(put("h.csv", ",x\n1,2\n")).find("has no name"), std::string::npos);
}

TEST_F(Inputs, SingleFilesAndMissingOrEmptyInputs) {
  const std::string png = put("one.png", png_);
  auto in = list_inputs(png);  // a .png is an image, never parsed as a CSV
  EXPECT_EQ(in.ids, (std::vector<std::string>{"one.png"}));
  EXPECT_THROW(list_inputs(dir_ + "/missing.png"), IoError);
  fs::create_directories(dir_ + "/empty");
  EXPECT_NE(error_of(dir_ + "/empty").find("no image, volume or slide"), std::string::npos);
  EXPECT_NE(error_of(put("x.bin", "??")).find("not a format medfm reads"), std::string::npos);
}

}  // namespace
}  // namespace medfm::extract

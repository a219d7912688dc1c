#include "medfm/extract/image_list.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/io/image2d.h"

namespace medfm::extract {
namespace fs = std::filesystem;

// A 40-line parser instead of a dependency: Debian 12 ships no small C++ CSV library we trust.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field.push_back(c);
      any = true;
    }
  }
  MEDFM_CHECK_T(FormatError, !quoted, "csv: ", origin, ": unterminated quoted field");
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

ImageList list_images(const std::string& input) {
  ImageList out;
  std::error_code ec;
  MEDFM_CHECK_T(IoError, fs::exists(input, ec), "embed: input '", input, "' does not exist");
  if (fs::is_directory(input, ec)) {
    for (const auto& e : fs::directory_iterator(input)) {
      if (e.is_regular_file() && io::is_image_2d_path(e.path().string())) out.paths.push_back(e.path().string());
    }
    std::sort(out.paths.begin(), out.paths.end());
    for (const auto& p : out.paths) out.ids.push_back(fs::path(p).filename().string());
  } else {
    std::ifstream f(input, std::ios::binary);
    MEDFM_CHECK_T(IoError, f.good(), "embed: cannot open '", input, "'");
    std::stringstream ss;
    ss << f.rdbuf();
    auto rows = parse_csv(ss.str(), input);
    MEDFM_CHECK_T(FormatError, !rows.empty(), "csv: ", input, ": empty file");
    const auto& header = rows[0];
    int path_col = -1, id_col = -1;
    for (size_t c = 0; c < header.size(); ++c) {
      if (header[c] == "path") path_col = static_cast<int>(c);
      else if (header[c] == "id") id_col = static_cast<int>(c);
      else out.extra_names.push_back(header[c]);
    }
    MEDFM_CHECK_T(FormatError, path_col >= 0, "csv: ", input, ": no 'path' column in the header");
    out.extra.resize(out.extra_names.size());
    const fs::path base = fs::path(input).parent_path();
    for (size_t r = 1; r < rows.size(); ++r) {
      MEDFM_CHECK_T(FormatError, rows[r].size() == header.size(), "csv: ", input, ": row ", r + 1, " has ",
                    rows[r].size(), " fields, header has ", header.size());
      fs::path p = rows[r][path_col];
      if (p.is_relative()) p = base / p;
      out.paths.push_back(p.string());
      out.ids.push_back(id_col >= 0 ? rows[r][id_col] : rows[r][path_col]);
      size_t e = 0;
      for (size_t c = 0; c < header.size(); ++c)
        if (static_cast<int>(c) != path_col && static_cast<int>(c) != id_col) out.extra[e++].push_back(rows[r][c]);
    }
  }
  MEDFM_CHECK(!out.paths.empty(), "embed: no images found in '", input, "'");
  return out;
}

}  // namespace medfm::extract

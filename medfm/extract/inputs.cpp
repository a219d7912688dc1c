#include "medfm/extract/source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "medfm/core/error.h"
#include "medfm/io/formats.h"

namespace medfm::extract {
namespace fs = std::filesystem;

// A 40-line parser instead of a dependency: Debian 12 ships no small C++ CSV library we trust.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  const size_t first = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // UTF-8 byte-order mark
  for (size_t i = first; i < text.size(); ++i) {
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

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::error_code ec;
  MEDFM_CHECK_T(IoError, fs::is_regular_file(path, ec), "csv: '", path,
                fs::exists(path, ec) ? "' is not a regular file (a folder, FIFO or device)" : "' does not exist");
  std::ifstream f(path, std::ios::binary);
  MEDFM_CHECK_T(IoError, f.good(), "csv: cannot open '", path, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_csv(ss.str(), path);
}

namespace {

bool hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// Extensions of the formats medfm reads: a folder entry with one of them is an input even when its
// bytes do not match (a corrupt file must fail, or be skipped with a reason, never vanish).
bool known_extension(const std::string& path) {
  static const char* kExt[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".nii",
                               ".nii.gz", ".hdr", ".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif"};
  const std::string e = io::lower_ext(path);
  for (const char* k : kExt)
    if (e == k) return true;
  return false;
}

InputList list_csv(const std::string& input) {
  InputList out;
  auto rows = read_csv(input);
  MEDFM_CHECK_T(FormatError, !rows.empty(), "csv: ", input, ": empty file");
  const auto& header = rows[0];
  int path_col = -1, id_col = -1;
  std::map<std::string, size_t> seen;
  for (size_t c = 0; c < header.size(); ++c) {
    MEDFM_CHECK_T(FormatError, !header[c].empty(), "csv: ", input, ": column ", c + 1, " has no name");
    MEDFM_CHECK_T(FormatError, !seen.count(header[c]), "csv: ", input, ": column '", header[c], "' appears twice (",
                  seen[header[c]] + 1, " and ", c + 1, ")");
    seen[header[c]] = c;
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
    MEDFM_CHECK_T(FormatError, !p.empty(), "csv: ", input, ": row ", r + 1, " has an empty path");
    if (p.is_relative()) p = base / p;
    out.paths.push_back(p.string());
    out.ids.push_back(id_col >= 0 ? rows[r][id_col] : rows[r][path_col]);
    size_t e = 0;
    for (size_t c = 0; c < header.size(); ++c)
      if (static_cast<int>(c) != path_col && static_cast<int>(c) != id_col) out.extra[e++].push_back(rows[r][c]);
  }
  return out;
}

}  // namespace

InputList list_inputs(const std::string& input) {
  InputList out;
  std::error_code ec;
  MEDFM_CHECK_T(IoError, fs::exists(input, ec), "inputs: '", input, "' does not exist");
  const io::Format* self = io::detect_format(input);
  if (fs::is_directory(input, ec)) {
    // Entries that are inputs; the folder itself is one DICOM series when those are all DICOM files.
    bool only_dicom_files = true;
    for (const auto& e : fs::directory_iterator(input)) {
      if (hidden(e.path())) continue;
      const std::string p = e.path().string();
      const io::Format* f = (e.is_regular_file() || e.is_directory()) ? io::detect_format(p) : nullptr;
      if ((e.is_regular_file() && known_extension(p)) || f) {
        out.paths.push_back(p);
        only_dicom_files = only_dicom_files && e.is_regular_file() && f && std::string(f->name) == "dicom";
      }
    }
    if (!out.paths.empty() && only_dicom_files && self && self->kind == io::Kind::Volume) {
      fs::path name = fs::path(input);
      if (name.filename().empty()) name = name.parent_path();  // "series/" -> "series"
      return {{name.filename().string()}, {input}, {}, {}};
    }
    std::sort(out.paths.begin(), out.paths.end());
    for (const auto& p : out.paths) out.ids.push_back(fs::path(p).filename().string());
    MEDFM_CHECK(!out.paths.empty(), "inputs: no image, volume or slide that medfm reads in '", input, "'");
  } else if (!fs::is_directory(input, ec) && io::lower_ext(input) == ".csv") {
    out = list_csv(input);
    MEDFM_CHECK(!out.paths.empty(), "inputs: ", input, " lists no inputs (a header only)");
  } else {
    MEDFM_CHECK_T(FormatError, self, "inputs: '", input, "' is not a format medfm reads (nor a .csv list)");
    fs::path name = fs::path(input);
    if (name.filename().empty()) name = name.parent_path();  // "series/" -> "series"
    out.paths.push_back(input);
    out.ids.push_back(name.filename().string());
  }
  return out;
}

}  // namespace medfm::extract

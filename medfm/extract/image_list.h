// The images of an embedding job: every 2D image in a folder (sorted by name, not recursive), or
// the rows of a CSV whose `path` column names them (relative paths resolve against the CSV's
// folder; an `id` column is used if present, else the path; other columns are kept).
#pragma once
#include <string>
#include <vector>

namespace medfm::extract {

struct ImageList {
  std::vector<std::string> ids, paths;
  std::vector<std::string> extra_names;              // CSV columns other than path/id
  std::vector<std::vector<std::string>> extra;       // [column][row]
  size_t size() const { return paths.size(); }
};

// Throws IoError (missing input), FormatError (CSV without a path column, ragged rows) or Error
// (no images found).
ImageList list_images(const std::string& input);

// RFC 4180 CSV: quoted fields, doubled quotes, CRLF. Returns rows of fields.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& origin);

}  // namespace medfm::extract

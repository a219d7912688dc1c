#include "medfm/extract/labels_csv.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "medfm/core/error.h"
#include "medfm/extract/source.h"

namespace medfm::extract {

LabelsCsv read_labels_csv(const std::string& path, const std::vector<std::string>& id_names) {
  auto csv = read_csv(path);
  MEDFM_CHECK(!csv.empty(), "labels: '", path, "' is empty");
  LabelsCsv l;
  l.path = path;
  l.header = csv.front();
  auto it = l.header.end();
  std::string names;
  for (const auto& n : id_names) {
    names += (names.empty() ? "'" : " or '") + n + "'";
    if (it == l.header.end()) it = std::find(l.header.begin(), l.header.end(), n);
  }
  MEDFM_CHECK(it != l.header.end(), "labels: '", path, "' has no ", names, " column");
  l.id_col = static_cast<size_t>(it - l.header.begin());
  std::unordered_set<std::string> seen;
  for (size_t r = 1; r < csv.size(); ++r) {
    MEDFM_CHECK(csv[r].size() == l.header.size(), "labels: '", path, "' row ", r + 1, " has ", csv[r].size(), " fields for ",
                l.header.size(), " columns");
    MEDFM_CHECK(seen.insert(csv[r][l.id_col]).second, "labels: '", path, "' lists id '", csv[r][l.id_col], "' twice (row ", r + 1, ")");
    l.rows.push_back(std::move(csv[r]));
  }
  return l;
}

std::map<std::string, std::vector<std::string>> LabelsCsv::columns_for(const std::vector<std::string>& ids, std::vector<bool>& used) const {
  used.resize(rows.size(), false);
  std::unordered_map<std::string, size_t> row_of;
  for (size_t r = 0; r < rows.size(); ++r) row_of.emplace(rows[r][id_col], r);
  std::map<std::string, std::vector<std::string>> cols;
  for (const auto& h : header) cols[h].assign(ids.size(), "");
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = row_of.find(ids[i]);
    if (it == row_of.end()) continue;
    used[it->second] = true;
    for (size_t c = 0; c < header.size(); ++c) cols[header[c]][i] = rows[it->second][c];
  }
  return cols;
}

void LabelsCsv::check_all_used(const std::vector<bool>& used, const std::string& what) const {
  std::vector<std::string> unknown;
  for (size_t r = 0; r < rows.size(); ++r)
    if (r >= used.size() || !used[r]) unknown.push_back("row " + std::to_string(r + 2) + " '" + rows[r][id_col] + "'");
  if (unknown.empty()) return;
  std::string list;
  for (size_t i = 0; i < std::min<size_t>(unknown.size(), 5); ++i) list += (i ? ", " : "") + unknown[i];
  throw Error("labels '" + path + "': " + std::to_string(unknown.size()) + " id(s) in no " + what + ": " + list +
              (unknown.size() > 5 ? ", ..." : ""));
}

}  // namespace medfm::extract

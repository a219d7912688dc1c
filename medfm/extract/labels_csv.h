// A labels CSV joined to feature files by id: a header with an id column (the first of `id_names`
// present), one row per id. Columns come back aligned to a list of ids (empty where the CSV has no
// row), and the CSV rows no id used are reported, so an id that matches nothing is an error the
// caller can name.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace medfm::extract {

struct LabelsCsv {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // data rows (the header excluded)
  size_t id_col = 0;

  // Every column for `ids` (one value per id, "" where no row); marks used rows.
  std::map<std::string, std::vector<std::string>> columns_for(const std::vector<std::string>& ids, std::vector<bool>& used) const;
  // Error naming (up to 5 of) the rows whose id no feature file had: "<what>: N id(s) in no ...".
  void check_all_used(const std::vector<bool>& used, const std::string& what) const;
};

// Throws Error when the file is empty, has none of the id columns, rows of the wrong width or an
// id twice (naming the row).
LabelsCsv read_labels_csv(const std::string& path, const std::vector<std::string>& id_names = {"id"});

}  // namespace medfm::extract

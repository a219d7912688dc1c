#include "medfm/extract/tile_scores.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "medfm/core/error.h"
#include "medfm/extract/h5_coords.h"
#include "medfm/extract/h5_internal.h"
#include "medfm/extract/source.h"

namespace medfm::extract {
namespace {

std::vector<double> read_dataset(const std::string& path, const std::string& spec) {
  std::string name = spec;
  int64_t col = -1;
  if (auto c = spec.rfind(':'); c != std::string::npos) {
    name = spec.substr(0, c);
    try {
      col = std::stoll(spec.substr(c + 1));
    } catch (const std::exception&) {
      throw ConfigError("heatmap: '" + spec + "' is not NAME or NAME:COLUMN");
    }
  }
  H5::Exception::dontPrint();
  try {
    H5::H5File f(path, H5F_ACC_RDONLY);
    MEDFM_CHECK_T(FormatError, f.nameExists(name), "heatmap: '", path, "' has no dataset '", name, "'");
    auto ds = f.openDataSet(name);
    auto sp = ds.getSpace();
    const int nd = sp.getSimpleExtentNdims();
    MEDFM_CHECK_T(FormatError, nd == 1 || nd == 2, "heatmap: '", path, "': /", name, " is not 1-D or 2-D");
    hsize_t dims[2] = {0, 1};
    sp.getSimpleExtentDims(dims);
    std::vector<double> all(dims[0] * (nd == 2 ? dims[1] : 1));
    if (!all.empty()) ds.read(all.data(), H5::PredType::NATIVE_DOUBLE);
    if (nd == 1) {
      MEDFM_CHECK_T(ConfigError, col < 0, "heatmap: /", name, " is 1-D; give it without a column");
      return all;
    }
    MEDFM_CHECK_T(ConfigError, col >= 0 && col < static_cast<int64_t>(dims[1]), "heatmap: /", name, " is [",
                  dims[0], ",", dims[1], "]: give a column, e.g. ", name, ":0");
    std::vector<double> out(dims[0]);
    for (hsize_t i = 0; i < dims[0]; ++i) out[i] = all[i * dims[1] + col];
    return out;
  } catch (const H5::Exception& e) {
    throw FormatError("heatmap: cannot read '" + path + "': " + e.getDetailMsg());
  }
}

}  // namespace

TileScores read_tile_scores(const std::string& path, const std::string& dataset, const std::string& coords_path,
                            double tile_level0) {
  MEDFM_CHECK_T(IoError, std::filesystem::is_regular_file(path), "heatmap: '", path, "' is not a file");
  TileScores t;
  if (io::lower_ext(path) == ".csv") {
    auto rows = read_csv(path);
    MEDFM_CHECK_T(FormatError, rows.size() >= 2, "heatmap: '", path, "' has no rows");
    const std::string score_col = dataset.empty() ? "score" : dataset;
    int cx = -1, cy = -1, cs = -1;
    for (size_t c = 0; c < rows[0].size(); ++c) {
      if (rows[0][c] == "x") cx = static_cast<int>(c);
      if (rows[0][c] == "y") cy = static_cast<int>(c);
      if (rows[0][c] == score_col) cs = static_cast<int>(c);
    }
    MEDFM_CHECK_T(FormatError, cx >= 0 && cy >= 0 && cs >= 0, "heatmap: '", path, "' needs columns x, y and ", score_col);
    for (size_t r = 1; r < rows.size(); ++r) {
      MEDFM_CHECK_T(FormatError, rows[r].size() == rows[0].size(), "heatmap: '", path, "': row ", r + 1, " is ragged");
      try {
        t.coords.push_back({std::stoll(rows[r][cx]), std::stoll(rows[r][cy])});
        t.scores.push_back(rows[r][cs].empty() ? NAN : std::stod(rows[r][cs]));
      } catch (const std::exception&) {
        throw FormatError("heatmap: '" + path + "': row " + std::to_string(r + 1) + " has a non-number");
      }
    }
    if (tile_level0 <= 0) {  // the grid's spacing: the smallest step between distinct x values
      std::set<int64_t> xs;
      for (const auto& c : t.coords) xs.insert(c[0]);
      double step = 0;
      for (auto it = xs.begin(), nx = std::next(xs.begin()); nx != xs.end(); ++it, ++nx)
        step = step == 0 ? static_cast<double>(*nx - *it) : std::min(step, static_cast<double>(*nx - *it));
      MEDFM_CHECK_T(ConfigError, step > 0, "heatmap: cannot infer the tile size from '", path, "': give it");
      tile_level0 = step;
    }
  } else {
    const std::string cpath = coords_path.empty() ? path : coords_path;
    auto grid = read_coords(cpath);
    t.coords = grid.coords;
    if (tile_level0 <= 0) tile_level0 = grid.tile_level0;
    t.scores = read_dataset(path, dataset.empty() ? "tissue" : dataset);
    MEDFM_CHECK_T(FormatError, t.scores.size() == t.coords.size(), "heatmap: '", path, "': ", t.scores.size(),
                  " scores for ", t.coords.size(), " tiles in ", cpath);
  }
  t.tile_level0 = tile_level0;
  return t;
}

}  // namespace medfm::extract

#include "medfm/extract/h5_coords.h"

#include "medfm/extract/h5_internal.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "medfm/core/atomic_file.h"
#include "medfm/core/error.h"

namespace medfm::extract {
namespace h5 {

const H5::StrType& vlen_str() {
  // Never destroyed: a static H5::StrType's destructor would run after HDF5 closed its library at
  // exit (a crash after a failed write).
  static const H5::StrType* t = [] {
    auto* s = new H5::StrType(H5::PredType::C_S1, H5T_VARIABLE);
    s->setCset(H5T_CSET_UTF8);
    return s;
  }();
  return *t;
}

std::string utf8_or_escaped(const std::string& s) {
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    // Length of a well-formed UTF-8 sequence starting here (RFC 3629: no overlongs, no surrogates).
    size_t len = 0;
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (b[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) ok = !(c == 0xE0 && b[i + 1] < 0xA0) && !(c == 0xED && b[i + 1] >= 0xA0);
    if (ok && len == 4) ok = !(c == 0xF0 && b[i + 1] < 0x90) && !(c == 0xF4 && b[i + 1] >= 0x90);
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      char e[5];
      std::snprintf(e, sizeof e, "\\x%02x", c);
      out += e;
      ++i;
    }
  }
  return out;
}

void write_strings(H5::Group& where, const std::string& name, const std::vector<std::string>& v) {
  hsize_t n = v.size();
  H5::DataSpace space(1, &n);
  auto ds = where.createDataSet(name, vlen_str(), space);
  std::vector<std::string> text;
  text.reserve(v.size());
  for (const auto& s : v) text.push_back(utf8_or_escaped(s));
  std::vector<const char*> ptrs;
  for (const auto& s : text) ptrs.push_back(s.c_str());
  if (n) ds.write(ptrs.data(), vlen_str());
}

void attr_str(H5::H5Object& o, const std::string& k, const std::string& v) {
  H5::DataSpace scalar(H5S_SCALAR);
  o.createAttribute(k, vlen_str(), scalar).write(vlen_str(), utf8_or_escaped(v));
}
void attr_int(H5::H5Object& o, const std::string& k, int64_t v) {
  H5::DataSpace scalar(H5S_SCALAR);
  o.createAttribute(k, H5::PredType::NATIVE_INT64, scalar).write(H5::PredType::NATIVE_INT64, &v);
}
void attr_double(H5::H5Object& o, const std::string& k, double v) {
  H5::DataSpace scalar(H5S_SCALAR);
  o.createAttribute(k, H5::PredType::NATIVE_DOUBLE, scalar).write(H5::PredType::NATIVE_DOUBLE, &v);
}

void write_coords(H5::H5File& f, const data::TileGrid& g, const std::string& name, const std::string& savetodir) {
  const hsize_t n = g.coords.size();
  hsize_t dims[2] = {n, 2}, maxdims[2] = {H5S_UNLIMITED, 2}, chunk[2] = {std::max<hsize_t>(1, std::min<hsize_t>(n, 4096)), 2};
  H5::DataSpace space(2, dims, maxdims);
  H5::DSetCreatPropList props;
  props.setChunk(2, chunk);
  auto ds = f.createDataSet("coords", H5::PredType::NATIVE_INT64, space, props);
  if (n) ds.write(g.coords.data(), H5::PredType::NATIVE_INT64);
  attr_int(ds, "patch_size", g.tile);
  attr_int(ds, "patch_size_level0", g.patch_size_level0);
  attr_int(ds, "overlap", g.overlap);
  attr_int(ds, "level0_width", g.level0_width);
  attr_int(ds, "level0_height", g.level0_height);
  attr_double(ds, "level0_mpp", g.level0_mpp);
  attr_double(ds, "target_mpp", g.target_mpp);
  attr_double(ds, "level0_magnification", 10.0 / g.level0_mpp);
  attr_double(ds, "target_magnification", 10.0 / g.target_mpp);
  attr_str(ds, "name", name);
  attr_str(ds, "savetodir", savetodir);
  hsize_t tn = n;
  H5::DataSpace tspace(1, &tn);
  auto ts = f.createDataSet("tissue", H5::PredType::NATIVE_FLOAT, tspace);
  if (n) ts.write(g.tissue.data(), H5::PredType::NATIVE_FLOAT);
}

}  // namespace h5

namespace {

double read_num(const H5::DataSet& ds, const std::string& k) {
  auto a = ds.openAttribute(k);
  double v = 0;
  a.read(H5::PredType::NATIVE_DOUBLE, &v);
  return v;
}

}  // namespace

void write_coords(const std::string& path, const data::TileGrid& g, const std::string& name,
                  const std::map<std::string, std::string>& root_attrs, const std::map<std::string, std::vector<float>>& scores) {
  H5::Exception::dontPrint();
  for (const auto& [k, v] : scores)
    MEDFM_CHECK(v.size() == g.coords.size(), "coords: '", path, "': ", k, " has ", v.size(), " values for ", g.coords.size(), " tiles");
  AtomicFile out(path);
  try {
    H5::H5File f(out.temp_path(), H5F_ACC_TRUNC);
    h5::write_coords(f, g, name, std::filesystem::path(path).parent_path().string());
    for (const auto& [k, v] : scores) {
      hsize_t n = v.size();
      H5::DataSpace space(1, &n);
      auto ds = f.createDataSet(k, H5::PredType::NATIVE_FLOAT, space);
      if (n) ds.write(v.data(), H5::PredType::NATIVE_FLOAT);
    }
    H5::Group root = f.openGroup("/");
    for (const auto& [k, v] : root_attrs) h5::attr_str(root, k, v);
    f.close();
  } catch (const H5::Exception& e) {
    throw IoError("coords: cannot write '" + out.temp_path() + "': " + e.getDetailMsg());
  }
  out.commit();
}

data::TileGrid read_coords(const std::string& path) {
  H5::Exception::dontPrint();
  MEDFM_CHECK_T(IoError, std::filesystem::is_regular_file(path), "coords: '", path, "' is not a file");
  data::TileGrid g;
  try {
    H5::H5File f(path, H5F_ACC_RDONLY);
    auto ds = f.openDataSet("coords");
    auto sp = ds.getSpace();
    hsize_t dims[2] = {0, 0};
    MEDFM_CHECK_T(FormatError, sp.getSimpleExtentNdims() == 2, "coords: '", path, "': /coords is not [N,2]");
    sp.getSimpleExtentDims(dims);
    MEDFM_CHECK_T(FormatError, dims[1] == 2, "coords: '", path, "': /coords is not [N,2]");
    g.coords.resize(dims[0]);
    if (dims[0]) ds.read(g.coords.data(), H5::PredType::NATIVE_INT64);
    g.tile = static_cast<int>(read_num(ds, "patch_size"));
    g.overlap = ds.attrExists("overlap") ? static_cast<int>(read_num(ds, "overlap")) : 0;
    g.level0_width = ds.attrExists("level0_width") ? static_cast<int64_t>(read_num(ds, "level0_width")) : 0;
    g.level0_height = ds.attrExists("level0_height") ? static_cast<int64_t>(read_num(ds, "level0_height")) : 0;
    if (ds.attrExists("level0_mpp") && ds.attrExists("target_mpp")) {
      g.level0_mpp = read_num(ds, "level0_mpp");
      g.target_mpp = read_num(ds, "target_mpp");
      g.tile_level0 = g.tile * g.target_mpp / g.level0_mpp;
    } else {  // TRIDENT: magnifications only
      const double m0 = read_num(ds, "level0_magnification"), mt = read_num(ds, "target_magnification");
      MEDFM_CHECK_T(FormatError, m0 > 0 && mt > 0, "coords: '", path, "': bad magnification attributes");
      g.level0_mpp = 10.0 / m0;
      g.target_mpp = 10.0 / mt;
      g.tile_level0 = g.tile * m0 / mt;
    }
    g.patch_size_level0 = ds.attrExists("patch_size_level0") ? static_cast<int64_t>(read_num(ds, "patch_size_level0"))
                                                               : std::llround(g.tile_level0);
    if (f.nameExists("tissue")) {
      auto ts = f.openDataSet("tissue");
      hsize_t n = 0;
      ts.getSpace().getSimpleExtentDims(&n);
      MEDFM_CHECK_T(FormatError, n == dims[0], "coords: '", path, "': /tissue and /coords differ in length");
      g.tissue.resize(n);
      if (n) ts.read(g.tissue.data(), H5::PredType::NATIVE_FLOAT);
    } else {
      g.tissue.assign(dims[0], 1.0f);
    }
  } catch (const H5::Exception& e) {
    throw FormatError("coords: cannot read '" + path + "': " + e.getDetailMsg());
  }
  MEDFM_CHECK_T(FormatError, g.tile > 0 && g.tile_level0 > 0, "coords: '", path, "': bad patch_size attributes");
  return g;
}

}  // namespace medfm::extract

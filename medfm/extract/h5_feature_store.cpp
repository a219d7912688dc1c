#include "medfm/extract/h5_feature_store.h"

#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <cstring>
#include <filesystem>

#include "medfm/extract/h5_internal.h"
#include <torch/torch.h>

#include "medfm/core/error.h"

namespace medfm::extract {
using h5::vlen_str;
using h5::write_strings;

struct FeatureWriter::Impl {
  H5::H5File file;
  H5::DataSet features;
};

FeatureWriter::FeatureWriter(const std::string& path, int64_t dim) : file_(path), dim_(dim) {
  MEDFM_CHECK(dim > 0, "features: dimension must be positive");
  H5::Exception::dontPrint();
  impl_ = std::make_unique<Impl>();
  try {
    impl_->file = H5::H5File(file_.temp_path(), H5F_ACC_TRUNC);
    hsize_t dims[2] = {0, static_cast<hsize_t>(dim)};
    hsize_t maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(dim)};
    H5::DataSpace space(2, dims, maxdims);
    H5::DSetCreatPropList props;
    hsize_t chunk[2] = {std::max<hsize_t>(1, std::min<hsize_t>(256, (1 << 20) / (4 * dim))), static_cast<hsize_t>(dim)};
    props.setChunk(2, chunk);
    impl_->features = impl_->file.createDataSet("features", H5::PredType::NATIVE_FLOAT, space, props);
  } catch (const H5::Exception& e) {
    throw IoError("features: cannot create '" + file_.temp_path() + "': " + e.getDetailMsg());
  }
}

FeatureWriter::~FeatureWriter() { close_handles(); }

namespace {

// HDF5's C++ destructors print to std::cerr when a close fails (a full disk), and retry; the failure
// is reported once, by medfm's error. std::cerr is silent while such objects die.
struct QuietCerr {
  std::streambuf* old = std::cerr.rdbuf(nullptr);
  ~QuietCerr() {
    std::cerr.rdbuf(old);
    std::cerr.clear();
  }
};

// Why a write failed, in words a user acts on: a full disk, a size limit, or errno's text.
std::string write_failure(int err, const std::string& path) {
  struct statvfs st {};
  const std::string folder = std::filesystem::path(path).parent_path().string();
  const bool full = ::statvfs(folder.empty() ? "." : folder.c_str(), &st) == 0 &&
                    static_cast<uint64_t>(st.f_bavail) * st.f_frsize < (uint64_t{1} << 20);
  if (err == ENOSPC || err == EDQUOT || full) return "no space left on the device (disk or quota full)";
  if (err == EFBIG) return "file too large (a file size limit, ulimit -f, was reached)";
  if (err == EIO) return "input/output error on the device";
  return err ? std::strerror(err) : "the data could not be written";
}

}  // namespace

void FeatureWriter::append(const at::Tensor& feats, const std::vector<std::string>& ids) {
  MEDFM_CHECK(feats.dim() == 2 && feats.size(1) == dim_ && feats.size(0) == static_cast<int64_t>(ids.size()),
              "features: append expects [", ids.size(), ",", dim_, "], got ", feats.sizes());
  auto f = feats.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const hsize_t b = static_cast<hsize_t>(f.size(0));
  if (b == 0) return;
  QuietCerr quiet;
  try {
    hsize_t new_dims[2] = {static_cast<hsize_t>(rows_) + b, static_cast<hsize_t>(dim_)};
    impl_->features.extend(new_dims);
    H5::DataSpace fspace = impl_->features.getSpace();
    hsize_t start[2] = {static_cast<hsize_t>(rows_), 0}, count[2] = {b, static_cast<hsize_t>(dim_)};
    fspace.selectHyperslab(H5S_SELECT_SET, count, start);
    H5::DataSpace mspace(2, count);
    impl_->features.write(f.data_ptr<float>(), H5::PredType::NATIVE_FLOAT, mspace, fspace);
  } catch (const H5::Exception& e) {
    const int err = errno;
    throw IoError("features: cannot write '" + file_.final_path() + "': " + write_failure(err, file_.temp_path()) +
                  " (HDF5: " + e.getDetailMsg() + ")");
  }
  rows_ += static_cast<int64_t>(b);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
}

void FeatureWriter::set_column(const std::string& name, const std::vector<std::string>& values) {
  columns_[name] = values;
}

void FeatureWriter::set_attr(const std::string& key, const std::string& value) { attrs_[key] = value; }

void FeatureWriter::set_coords(const data::TileGrid& grid, const std::string& name, const std::string& savetodir) {
  coords_ = grid;
  coords_name_ = name;
  coords_dir_ = savetodir;
}

void FeatureWriter::set_skipped(const std::vector<std::string>& paths, const std::vector<std::string>& reasons) {
  MEDFM_ASSERT(paths.size() == reasons.size());
  skipped_paths_ = paths;
  skipped_reasons_ = reasons;
}

void FeatureWriter::commit() {
  QuietCerr quiet;
  try {
    H5::Group root = impl_->file.openGroup("/");
    if (write_ids_) write_strings(root, "ids", ids_);
    if (coords_) {
      MEDFM_CHECK(static_cast<int64_t>(coords_->coords.size()) == rows_, "features: ", coords_->coords.size(),
                  " coords for ", rows_, " rows");
      h5::write_coords(impl_->file, *coords_, coords_name_, coords_dir_);
    }
    if (!columns_.empty()) {
      H5::Group meta = impl_->file.createGroup("meta");
      for (const auto& [name, values] : columns_) {
        MEDFM_CHECK(static_cast<int64_t>(values.size()) == rows_, "features: column '", name, "' has ",
                    values.size(), " values for ", rows_, " rows");
        write_strings(meta, name, values);
      }
    }
    if (!skipped_paths_.empty()) {
      H5::Group skipped = impl_->file.createGroup("skipped");
      write_strings(skipped, "path", skipped_paths_);
      write_strings(skipped, "reason", skipped_reasons_);
    }
    for (const auto& [k, v] : attrs_) h5::attr_str(root, k, v);
    impl_->features.close();
    impl_->file.close();
  } catch (const H5::Exception& e) {
    const int err = errno;  // what the failed write(2) said, before anything else can change it
    close_handles();
    throw IoError("features: cannot write '" + file_.final_path() + "': " + write_failure(err, file_.temp_path()) +
                  " (HDF5: " + e.getDetailMsg() + ")");
  }
  impl_.reset();
  file_.commit();
}

namespace {
std::atomic<bool> g_abandoned{false};
}  // namespace

bool hdf5_handles_abandoned() { return g_abandoned.load(); }

void FeatureWriter::close_handles() noexcept {
  if (!impl_) return;
  QuietCerr quiet;
  bool closed = true;
  try {
    impl_->features.close();
  } catch (...) {
    closed = false;
  }
  try {
    impl_->file.close();
  } catch (...) {
    closed = false;
  }
  // Handles that would not close (a full disk) are let go: their destructors would only retry and
  // print to stderr. HDF5 drops them when the process ends; the temporary is removed anyway.
  if (closed) {
    impl_.reset();
  } else {
    (void)impl_.release();
    g_abandoned = true;
  }
}

namespace {
// A 1-D dataset of variable-length strings.
std::vector<std::string> read_strings(const H5::DataSet& ds, const std::string& what) {
  MEDFM_CHECK_T(FormatError, ds.getSpace().getSimpleExtentNdims() == 1, what, " is not a 1-D string dataset");
  hsize_t n = 0;
  ds.getSpace().getSimpleExtentDims(&n);
  std::vector<char*> ptrs(n, nullptr);
  if (n) ds.read(ptrs.data(), vlen_str());
  std::vector<std::string> out;
  out.reserve(n);
  for (auto* p : ptrs) {
    out.emplace_back(p ? p : "");
    std::free(p);
  }
  return out;
}
}  // namespace

FeatureFile read_features(const std::string& path) {
  H5::Exception::dontPrint();
  FeatureFile out;
  try {
    H5::H5File f(path, H5F_ACC_RDONLY);
    auto ds = f.openDataSet("features");
    hsize_t dims[2];
    MEDFM_CHECK_T(FormatError, ds.getSpace().getSimpleExtentNdims() == 2, "features: ", path, ": not 2-D");
    ds.getSpace().getSimpleExtentDims(dims);
    out.features = torch::empty({static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])}, torch::kFloat);
    if (dims[0]) ds.read(out.features.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
    if (f.nameExists("ids")) {
      out.ids = read_strings(f.openDataSet("ids"), "features: " + path + ": /ids");
      MEDFM_CHECK_T(FormatError, out.ids.size() == dims[0], "features: ", path, ": ", out.ids.size(), " ids for ", dims[0], " rows");
    }
    if (f.nameExists("meta")) {
      H5::Group meta = f.openGroup("meta");
      for (hsize_t i = 0; i < meta.getNumObjs(); ++i) {
        const std::string name = meta.getObjnameByIdx(i);
        if (meta.getObjTypeByIdx(i) != H5G_DATASET) continue;
        auto values = read_strings(meta.openDataSet(name), "features: " + path + ": /meta/" + name);
        MEDFM_CHECK_T(FormatError, values.size() == dims[0], "features: ", path, ": meta/", name, " has ", values.size(),
                      " values for ", dims[0], " rows");
        out.columns[name] = std::move(values);
      }
    }
    if (f.nameExists("coords")) {
      auto c = f.openDataSet("coords");
      hsize_t cd[2] = {0, 0};
      c.getSpace().getSimpleExtentDims(cd);
      MEDFM_CHECK_T(FormatError, cd[1] == 2 && cd[0] == dims[0], "features: ", path, ": /coords is not [N,2] beside /features");
      out.coords.resize(cd[0]);
      if (cd[0]) c.read(out.coords.data(), H5::PredType::NATIVE_INT64);
    }
    H5::Group root = f.openGroup("/");
    for (int i = 0; i < root.getNumAttrs(); ++i) {
      auto a = root.openAttribute(static_cast<unsigned>(i));
      std::string v;
      a.read(a.getStrType(), v);
      out.attrs[a.getName()] = v;
    }
  } catch (const H5::Exception& e) {
    throw FormatError("features: cannot read '" + path + "': " + e.getDetailMsg());
  }
  return out;
}

std::array<int64_t, 2> feature_shape(const std::string& path) {
  H5::Exception::dontPrint();
  MEDFM_CHECK_T(IoError, std::filesystem::is_regular_file(path), "features: '", path, "' is not a file");
  try {
    H5::H5File f(path, H5F_ACC_RDONLY);
    auto sp = f.openDataSet("features").getSpace();
    MEDFM_CHECK_T(FormatError, sp.getSimpleExtentNdims() == 2, "features: ", path, ": not 2-D");
    hsize_t dims[2];
    sp.getSimpleExtentDims(dims);
    return {static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])};
  } catch (const H5::Exception& e) {
    throw FormatError("features: cannot read '" + path + "': " + e.getDetailMsg());
  }
}

}  // namespace medfm::extract

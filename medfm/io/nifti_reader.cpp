// NIfTI-1 / NIfTI-2 (and Analyze .hdr/.img) through the NIfTI C library (nifti2_io), wrapped so
// that its error state is checked after every call and nothing it prints reaches the user.
// medfm validates the header against the file before the library allocates anything, so a
// header that lies about its sizes is a FormatError, not a huge allocation.
#include <nifti2_io.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "medfm/core/error.h"
#include "medfm/io/readers.h"

namespace medfm::io::detail {
namespace {

struct NimFree {
  void operator()(nifti_image* p) const { nifti_image_free(p); }
};
using NimPtr = std::unique_ptr<nifti_image, NimFree>;

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

int32_t read_i32(const std::string& b, size_t off, bool swap) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  if (swap) v = __builtin_bswap32(v);
  return static_cast<int32_t>(v);
}

// First n bytes, decompressed when gzip (zlib passes plain files through).
std::string read_decompressed_head(const std::string& path, size_t n) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string b(n, '\0');
  int got = gzread(f, b.data(), static_cast<unsigned>(n));
  gzclose(f);
  b.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return b;
}

int64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

// True when `path`, decompressed if gzip, holds at least n bytes (reads up to n bytes to find out).
bool holds_bytes(const std::string& path, int64_t n) {
  if (n <= 0) return true;
  const int64_t size = file_size(path);
  if (size < 0 || n / 1032 > size) return false;  // deflate cannot compress better than ~1032:1
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return false;
  char c;
  const bool ok = gzseek(f, static_cast<z_off_t>(n - 1), SEEK_SET) == n - 1 && gzread(f, &c, 1) == 1;
  gzclose(f);
  return ok;
}

float read_f32(const std::string& b, size_t off, bool swap) {
  uint32_t v = static_cast<uint32_t>(read_i32(b, off, swap));
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}

int64_t read_i64(const std::string& b, size_t off, bool swap) {
  uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  if (swap) v = __builtin_bswap64(v);
  return static_cast<int64_t>(v);
}

int16_t read_i16(const std::string& b, size_t off, bool swap) {
  uint16_t v;
  std::memcpy(&v, b.data() + off, 2);
  if (swap) v = __builtin_bswap16(v);
  return static_cast<int16_t>(v);
}

// dim[0] (the rank) must be 1..7 and dim[1..rank] positive before the library sees the header:
// nifti2_io copies dim[1..dim[0]] into 8-element arrays without checking a NIfTI-2 rank.
void check_dims(const std::string& path, int64_t rank, const std::function<int64_t(int)>& dim) {
  MEDFM_CHECK_T(FormatError, rank >= 1 && rank <= 7, "nifti: dim[0] = ", rank, " out of 1..7 in '", path, "'");
  for (int i = 1; i <= rank; ++i)
    MEDFM_CHECK_T(FormatError, dim(i) >= 1, "nifti: dim[", i, "] = ", dim(i), " in '", path, "'");
}

// An unknown datatype code is rejected here, before nifti2_io prints its own complaint to stderr.
void check_datatype(const std::string& path, int16_t datatype, bool nifti) {
  MEDFM_CHECK_T(FormatError, datatype != DT_UNKNOWN && datatype != DT_ALL && nifti_datatype_is_valid(datatype, nifti ? 1 : 0),
                "nifti: unknown datatype code ", datatype,
                " in '", path, "'");
}

// A single-file NIfTI's extensions lie between the header and vox_offset, and nifti2_io allocates
// each one as large as that space before reading it: vox_offset must lie inside the file.
void check_vox_offset(const std::string& path, double vox_offset) {
  const bool inside = std::isfinite(vox_offset) && (vox_offset <= 0 || (vox_offset < 9e18 && holds_bytes(path, static_cast<int64_t>(vox_offset))));
  MEDFM_CHECK_T(FormatError, inside, "nifti: vox_offset ", vox_offset, " lies beyond the end of '", path, "'");
}

// Checks sizeof_hdr, magic, dims and vox_offset; returns the NIfTI version (1, 2) or 0 for Analyze 7.5.
int check_header_bytes(const std::string& path) {
  std::string h = read_decompressed_head(path, 540);
  MEDFM_CHECK_T(FormatError, h.size() >= 348, "nifti: truncated header (", h.size(), " bytes) in '", path, "'");
  for (bool swap : {false, true}) {
    int32_t sz = read_i32(h, 0, swap);
    if (sz == 348) {
      const char* m = h.data() + 344;
      const bool single_file = std::memcmp(m, "n+1\0", 4) == 0;
      const bool nifti1 = single_file || std::memcmp(m, "ni1\0", 4) == 0;
      MEDFM_CHECK_T(FormatError, nifti1 || ends_with(path, ".hdr") || ends_with(path, ".hdr.gz"),
                    "nifti: bad magic (not n+1 / ni1) in '", path, "'");
      check_dims(path, read_i16(h, 40, swap), [&](int i) { return read_i16(h, 40 + 2 * i, swap); });
      check_datatype(path, read_i16(h, 70, swap), nifti1);
      if (single_file) check_vox_offset(path, read_f32(h, 108, swap));
      return nifti1 ? 1 : 0;  // 0: Analyze 7.5
    }
    if (sz == 540) {
      MEDFM_CHECK_T(FormatError, h.size() >= 540, "nifti: truncated NIfTI-2 header (", h.size(), " bytes) in '", path, "'");
      const char* m = h.data() + 4;
      MEDFM_CHECK_T(FormatError, std::memcmp(m, "n+2\0", 4) == 0 || std::memcmp(m, "ni2\0", 4) == 0,
                    "nifti: bad NIfTI-2 magic in '", path, "'");
      check_dims(path, read_i64(h, 16, swap), [&](int i) { return read_i64(h, 16 + 8 * i, swap); });
      check_datatype(path, read_i16(h, 12, swap), true);
      if (std::memcmp(m, "n+2\0", 4) == 0) check_vox_offset(path, static_cast<double>(read_i64(h, 168, swap)));
      return 2;
    }
  }
  throw FormatError("nifti: sizeof_hdr is neither 348 nor 540 in '" + path + "' (not NIfTI)");
}

struct TypeInfo {
  const char* name;
  at::ScalarType stored;  // tensor type the bytes are read as (same width)
  int components;         // RGB24: 3, RGBA32: 4
};

std::optional<TypeInfo> type_info(int dt) {
  switch (dt) {
    case NIFTI_TYPE_UINT8: return TypeInfo{"uint8", at::kByte, 1};
    case NIFTI_TYPE_INT8: return TypeInfo{"int8", at::kChar, 1};
    case NIFTI_TYPE_INT16: return TypeInfo{"int16", at::kShort, 1};
    case NIFTI_TYPE_UINT16: return TypeInfo{"uint16", at::kShort, 1};   // widened below
    case NIFTI_TYPE_INT32: return TypeInfo{"int32", at::kInt, 1};
    case NIFTI_TYPE_UINT32: return TypeInfo{"uint32", at::kInt, 1};     // widened below
    case NIFTI_TYPE_INT64: return TypeInfo{"int64", at::kLong, 1};
    case NIFTI_TYPE_UINT64: return TypeInfo{"uint64", at::kLong, 1};    // converted below
    case NIFTI_TYPE_FLOAT32: return TypeInfo{"float32", at::kFloat, 1};
    case NIFTI_TYPE_FLOAT64: return TypeInfo{"float64", at::kDouble, 1};
    case NIFTI_TYPE_RGB24: return TypeInfo{"rgb24", at::kByte, 3};
    case NIFTI_TYPE_RGBA32: return TypeInfo{"rgba32", at::kByte, 4};
    default: return std::nullopt;
  }
}

Mat4 to_mat4(const nifti_dmat44& m) {
  Mat4 a{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) a[r * 4 + c] = m.m[r][c];
  return a;
}

// nibabel's rule: sform if sform_code != 0, else qform if qform_code != 0, else the centred
// Analyze affine (x flipped, origin at the volume centre).
Mat4 best_affine(const nifti_image* nim, std::string& source) {
  if (nim->sform_code != 0) return source = "sform", to_mat4(nim->sto_xyz);
  if (nim->qform_code != 0) return source = "qform", to_mat4(nim->qto_xyz);
  source = "base";
  double z[3] = {nim->pixdim[1], nim->pixdim[2], nim->pixdim[3]};
  int64_t n[3] = {nim->nx, nim->ny, nim->nz};
  for (int i = 0; i < 3; ++i) {
    if (nim->ndim < i + 1) z[i] = 1.0, n[i] = 1;
    if (z[i] == 0) z[i] = 1.0;
  }
  Mat4 a = mat4_identity();
  a[0] = -z[0], a[5] = z[1], a[10] = z[2];
  a[3] = (n[0] - 1) / 2.0 * z[0];
  a[7] = -(n[1] - 1) / 2.0 * z[1];
  a[11] = -(n[2] - 1) / 2.0 * z[2];
  return a;
}

}  // namespace

bool nifti_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (is_dir) return false;
  std::string e = lower_ext(path);
  if (e == ".nii" || e == ".nii.gz" || e == ".hdr" || e == ".hdr.gz") return true;
  // Uncompressed NIfTI with an unusual name: check the magic.
  if (head.size() >= 348 && (std::memcmp(head.data() + 344, "n+1\0", 4) == 0)) return true;
  return head.size() >= 8 && std::memcmp(head.data() + 4, "n+2\0", 4) == 0;
}

Image nifti_read(const std::string& path, const ReadOptions& opts) {
  nifti_set_debug_level(0);
  int version = check_header_bytes(path);
  NimPtr nim(nifti_image_read(path.c_str(), 0));
  MEDFM_CHECK_T(FormatError, nim, "nifti: cannot parse header of '", path, "'");

  MEDFM_CHECK_T(FormatError, nim->ndim >= 1 && nim->ndim <= 7, "nifti: dim[0] = ", nim->ndim, " out of 1..7 in '", path, "'");
  int64_t nvox = 1;
  for (int i = 1; i <= nim->ndim; ++i) {
    MEDFM_CHECK_T(FormatError, nim->dim[i] >= 1, "nifti: dim[", i, "] = ", nim->dim[i], " in '", path, "'");
    MEDFM_CHECK_T(FormatError, nvox <= std::numeric_limits<int64_t>::max() / 16 / nim->dim[i],
                  "nifti: dimensions overflow in '", path, "'");
    nvox *= nim->dim[i];
  }
  auto ti = type_info(nim->datatype);
  if (!ti)
    throw NotImplemented("nifti: datatype " + std::to_string(nim->datatype) + " (" +
                         nifti_datatype_string(nim->datatype) + ") is not supported, in '" + path + "'");
  MEDFM_ASSERT(nvox == nim->nvox, "nifti: voxel count mismatch");
  const int64_t need = nvox * nim->nbyper;
  const std::string iname = nim->iname ? nim->iname : path;
  const int64_t have = file_size(iname);
  MEDFM_CHECK_T(IoError, have >= 0, "nifti: cannot open image file '", iname, "'");
  if (ends_with(iname, ".gz")) {
    // Deflate cannot compress better than ~1032:1; a header asking for more is lying.
    MEDFM_CHECK_T(FormatError, need / 1032 <= have, "nifti: header claims ", need, " bytes of voxel data, more than the ",
                  have, "-byte compressed file can hold, in '", path, "'");
  } else {
    // (written so that a vox_offset near INT64_MAX cannot overflow)
    MEDFM_CHECK_T(FormatError, nim->iname_offset <= have && need <= have - std::max<int64_t>(nim->iname_offset, 0),
                  "nifti: truncated: header needs ", need,
                  " bytes of voxel data at offset ", nim->iname_offset, ", file has ", have, " bytes, in '", path, "'");
  }

  Image img;
  img.is_volume = true;
  img.format = version == 2 ? "nifti2" : (version == 1 ? "nifti1" : "analyze");
  img.stored_dtype = ti->name;
  std::string src;
  img.geometry = Geometry::from_affine(best_affine(nim.get(), src));
  img.meta["affine_source"] = src;
  img.meta["qform_code"] = std::to_string(nim->qform_code);
  img.meta["sform_code"] = std::to_string(nim->sform_code);
  if (nim->descrip[0]) img.meta["description"] = std::string(nim->descrip, strnlen(nim->descrip, 80));

  int64_t nx = nim->nx, ny = nim->ndim >= 2 ? nim->ny : 1, nz = nim->ndim >= 3 ? nim->nz : 1;
  int64_t nt = nvox / (nx * ny * nz);
  img.n_timepoints = nt;
  MEDFM_CHECK_T(FormatError, nifti_image_load(nim.get()) == 0 && nim->data,
                "nifti: truncated or corrupt voxel data in '", path, "'");

  at::Tensor raw;
  if (ti->components > 1) {
    MEDFM_CHECK_T(NotImplemented, nt == 1, "nifti: 4D RGB volumes are not supported, in '", path, "'");
    raw = torch::from_blob(nim->data, {nz, ny, nx, ti->components}, at::kByte).permute({3, 0, 1, 2}).contiguous();
  } else {
    raw = torch::from_blob(nim->data, {nt, nz, ny, nx}, ti->stored).clone();  // x fastest, then y, z, t
  }
  raw = widen_unsigned(raw, ti->name);  // uint16 / uint32: types LibTorch 1.13 lacks
  if (nim->datatype == NIFTI_TYPE_UINT64) {
    auto u = raw.to(at::kDouble);
    raw = at::where(u < 0, u + 18446744073709551616.0, u);
  }
  // nibabel's rule: a slope of 0 or non-finite means unscaled; (1, 0) leaves the stored type.
  double slope = nim->scl_slope, inter = std::isfinite(nim->scl_inter) ? nim->scl_inter : 0.0;
  if (slope != 0 && std::isfinite(slope) && !(slope == 1 && inter == 0) && ti->components == 1) {
    auto dt = raw.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    raw = raw.to(at::kDouble).mul(slope).add(inter).to(dt);
    img.meta["scl_slope"] = std::to_string(slope);
    img.meta["scl_inter"] = std::to_string(inter);
  }
  img.pixels = raw;
  return img;
}

}  // namespace medfm::io::detail

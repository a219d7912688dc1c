// DICOM directories: scan, group by series, sort along the normal, decode in parallel.
#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "medfm/core/error.h"
#include "medfm/io/dicom_internal.h"
#include "medfm/io/readers.h"

namespace medfm::io::detail {

namespace fs = std::filesystem;

// (Not at::parallel_for: its OpenMP workers spin-wait between the small tensor ops each file makes,
// which made a 2-thread series load ~80x slower than 1 thread on 2 cores.)
void parallel_files(size_t n, const std::function<void(size_t)>& fn) {
  const size_t nt = std::min<size_t>(n, static_cast<size_t>(std::max(1, at::get_num_threads())));
  std::atomic<size_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto work = [&] {
    at::set_num_threads(1);  // per-file tensor ops stay on this thread
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!err) err = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < nt; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
}

// A folder is a series candidate when it holds a DICOM file (hidden files skipped); the search
// stops at the first one, and after 256 entries without one (a folder of PNGs is not DICOM).
bool dicom_series_can_read(const std::string& path, const std::string& head, bool is_dir) {
  if (!is_dir) return false;
  std::error_code ec;
  int seen = 0;
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator() && seen < 256; it.increment(ec)) {
    if (it->path().filename().string().rfind('.', 0) == 0 || !it->is_regular_file(ec)) continue;
    ++seen;
    const std::string p = it->path().string();
    if (dicom_can_read(p, read_head(p, 132), false)) return true;
  }
  return false;
}

namespace {

// The DICOM files under dir (recursive, hidden files skipped), sorted by path.
std::vector<std::string> dicom_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file()) continue;
    std::string p = e.path().string();
    if (e.path().filename().string().rfind('.', 0) == 0) continue;
    if (dicom_can_read(p, read_head(p, 132), false)) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  MEDFM_CHECK_T(FormatError, !files.empty(), "dicom: no DICOM files in directory '", dir, "'");
  return files;
}

// Image files grouped by SeriesInstanceUID (DICOMDIR, SR, RT ... skipped); the chosen series'
// file indices. One series needs no choice; several need read.series (number, #index or UID).
std::vector<size_t> choose_series(const std::vector<Header>& headers, const std::string& dir, const std::string& want) {
  std::map<std::string, std::vector<size_t>> series;
  std::vector<std::string> order;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers[i].slice.rows <= 0) continue;  // Rows present: an image object
    auto& v = series[headers[i].series_uid];
    if (v.empty()) order.push_back(headers[i].series_uid);
    v.push_back(i);
  }
  MEDFM_CHECK_T(FormatError, !series.empty(), "dicom: no image files in directory '", dir, "'");
  if (series.size() == 1) {
    const auto& only = series[order[0]];
    MEDFM_CHECK_T(ConfigError, want.empty() || want == order[0] || want == "1" || want == headers[only[0]].series_number,
                  "dicom: series ", want, " (read.series) not found in '", dir, "'");
    return only;
  }
  std::string chosen;
  std::ostringstream list;
  for (size_t s = 0; s < order.size(); ++s) {
    const auto& idx = series[order[s]];
    const Header& h0 = headers[idx[0]];
    if (!want.empty() && (want == order[s] || want == h0.series_number || want == "#" + std::to_string(s + 1)))
      chosen = order[s];
    list << (s ? "; " : "") << "#" << s + 1 << " SeriesNumber " << (h0.series_number.empty() ? "?" : h0.series_number)
         << " " << (h0.modality.empty() ? "?" : h0.modality) << " " << idx.size() << " files";
  }
  MEDFM_CHECK_T(FormatError, !chosen.empty(), "dicom: ", series.size(), " series in '", dir, "' (", list.str(), "); ",
                want.empty() ? "choose one with read.series = NUMBER|#INDEX|UID" : "read.series matches none");
  return series[chosen];
}

struct Series {
  std::vector<std::string> files;  // the chosen series' files
  std::vector<Header> headers;     // same order
  SeriesPlan plan;
};

// Direct pass: every slice uncompressed grayscale with the same sample type and no blending ->
// each worker decodes its file straight into the volume (no per-file tensors). Empty optional
// when the series is not that simple case.
std::optional<Image> read_direct(const Series& s, const ReadOptions& opts) {
  const auto& plan = s.plan;
  const bool blend = std::any_of(plan.slices.begin(), plan.slices.end(), [](const PlannedSlice& p) { return p.w != 0; });
  if (!opts.dicom_fast_native || blend) return std::nullopt;
  const Header& h0 = s.headers[plan.slices[0].a];
  bool trivial = true;
  for (const auto& p : plan.slices) {
    const Header& h = s.headers[p.a];
    if (!(native_eligible(h) && h.slice.frames == 1 && h.bits_allocated == h0.bits_allocated &&
          h.pixel_rep == h0.pixel_rep && h.bits_stored == h0.bits_stored && h.photometric == h0.photometric))
      return std::nullopt;
    trivial = trivial && h.rescale_slope == 1 && h.rescale_intercept == 0;
  }
  const auto dtype = trivial ? native_stored_type(h0) : at::kFloat;
  at::Tensor vol = torch::empty({1, static_cast<int64_t>(plan.slices.size()), h0.slice.rows, h0.slice.cols}, dtype);
  parallel_files(plan.slices.size(), [&](size_t k) {
    const size_t i = plan.slices[k].a;
    at::Tensor dst = vol.select(1, static_cast<int64_t>(k));
    if (decode_native_into(s.files[i], s.headers[i], !trivial, dst)) return;
    Decoded d = decode_file(s.files[i], false, opts.isolate_codecs);  // not the simple case after all: GDCM
    MEDFM_CHECK_T(FormatError, d.pixels.numel() == dst.numel(), "dicom: mixed pixel layouts in series (", s.files[i], ")");
    dst.copy_(trivial ? d.pixels.select(1, 0) : rescaled(d.pixels.select(1, 0), d.slope, d.intercept));
  });
  Image img;
  fill_common(img, native_metadata(h0));
  img.pixels = vol;
  return img;
}

// General pass: decode the slices the plan uses (any transfer syntax), then assemble, blending
// neighbours where a repaired gap asks for it.
Image read_general(const Series& s, const ReadOptions& opts) {
  const auto& plan = s.plan;
  const bool blend = std::any_of(plan.slices.begin(), plan.slices.end(), [](const PlannedSlice& p) { return p.w != 0; });
  std::vector<Decoded> dec(s.files.size());
  std::vector<char> needed(s.files.size(), 0);
  for (const auto& p : plan.slices) needed[p.a] = needed[p.b] = 1;
  parallel_files(s.files.size(), [&](size_t i) {
    if (!needed[i]) return;
    std::optional<Decoded> fast;
    if (opts.dicom_fast_native) fast = decode_native_fast(s.files[i], s.headers[i]);
    dec[i] = fast ? std::move(*fast) : decode_file(s.files[i], false, opts.isolate_codecs);
  });
  const Decoded* first = nullptr;
  bool trivial = true;
  for (size_t i = 0; i < dec.size(); ++i) {
    if (!needed[i]) continue;
    if (!first) first = &dec[i];
    MEDFM_CHECK_T(FormatError, dec[i].pixels.sizes() == first->pixels.sizes(), "dicom: mixed pixel layouts in series (",
                  s.files[i], ")");
    MEDFM_CHECK_T(FormatError, dec[i].stored_dtype == first->stored_dtype, "dicom: mixed pixel types in series (", s.files[i], ")");
    trivial = trivial && dec[i].slope == 1 && dec[i].intercept == 0;
  }
  const int64_t C = first->pixels.size(0), Y = first->pixels.size(2), X = first->pixels.size(3);
  const auto dtype = (trivial && !blend) ? first->pixels.scalar_type() : at::kFloat;
  at::Tensor vol = torch::empty({C, static_cast<int64_t>(plan.slices.size()), Y, X}, dtype);
  parallel_files(plan.slices.size(), [&](size_t k) {
    const auto& p = plan.slices[k];
    at::Tensor dst = vol.select(1, static_cast<int64_t>(k));
    if (p.w == 0) {  // one pass: convert while copying, then rescale in place
      const Decoded& d = dec[p.a];
      dst.copy_(d.pixels.select(1, 0));  // [C,1,Y,X] -> [C,Y,X]
      if (d.slope != 1 || d.intercept != 0) dst.mul_(d.slope).add_(d.intercept);
      return;
    }
    at::Tensor a = rescaled(dec[p.a].pixels.select(1, 0), dec[p.a].slope, dec[p.a].intercept);
    {
      at::Tensor b = rescaled(dec[p.b].pixels.select(1, 0), dec[p.b].slope, dec[p.b].intercept).to(at::kFloat);
      a = a.to(at::kFloat) * (1.0 - p.w) + b * p.w;
    }
    dst.copy_(a);
  });
  Image img;
  fill_common(img, *first);
  img.pixels = vol;
  return img;
}

}  // namespace

Image dicom_series_read(const std::string& dir, const ReadOptions& opts) {
  const auto all = dicom_files(dir);
  // Headers only (stops before the pixel data), in parallel.
  std::vector<Header> headers(all.size());
  parallel_files(all.size(), [&](size_t i) { headers[i] = read_header_only(all[i], opts.include_phi); });
  Series s;
  for (size_t i : choose_series(headers, dir, opts.series_uid)) {
    s.files.push_back(all[i]);
    s.headers.push_back(std::move(headers[i]));
  }
  std::vector<SliceHeader> sh;
  for (const auto& h : s.headers) sh.push_back(h.slice);
  s.plan = plan_series(sh, opts.repair, dir, opts.slice_spacing);

  auto direct = read_direct(s, opts);
  Image img = direct ? std::move(*direct) : read_general(s, opts);
  img.format = "dicom-series";
  img.geometry = Geometry::from_affine(s.plan.affine);
  img.meta["files"] = std::to_string(s.files.size());
  if (!s.plan.repairs.empty()) {
    std::string r;
    for (const auto& rep : s.plan.repairs) r += (r.empty() ? "" : "; ") + rep;
    img.meta["repairs"] = r;
  }
  img.phi = s.headers[0].phi;  // empty unless include_phi
  return img;
}


}  // namespace medfm::io::detail

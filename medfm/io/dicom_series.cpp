// DICOM directories: scan, group by series, sort along the normal, decode in parallel.
#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
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

Image dicom_series_read(const std::string& dir, const ReadOptions& opts) {

  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file()) continue;
    std::string p = e.path().string();
    if (e.path().filename().string().rfind('.', 0) == 0) continue;
    if (dicom_can_read(p, read_head(p, 132), false)) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  MEDFM_CHECK_T(FormatError, !files.empty(), "dicom: no DICOM files in directory '", dir, "'");

  // Pass 1: headers only (stops before the pixel data), in parallel.
  std::vector<Header> headers(files.size());
  std::vector<char> has_pixels(files.size(), 0);
  parallel_files(files.size(), [&](size_t i) {
    headers[i] = read_header_only(files[i], opts.include_phi);
    has_pixels[i] = headers[i].slice.rows > 0 ? 1 : 0;  // Rows present: an image object
  });
  // Group by SeriesInstanceUID (images only; DICOMDIR, SR, RT ... are skipped).
  std::map<std::string, std::vector<size_t>> series;
  std::vector<std::string> order;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!has_pixels[i]) continue;
    auto& v = series[headers[i].series_uid];
    if (v.empty()) order.push_back(headers[i].series_uid);
    v.push_back(i);
  }
  MEDFM_CHECK_T(FormatError, !series.empty(), "dicom: no image files in directory '", dir, "'");
  std::string chosen;
  if (series.size() == 1) {
    chosen = order[0];
    MEDFM_CHECK_T(ConfigError, opts.series_uid.empty() || opts.series_uid == chosen || opts.series_uid == "1" ||
                                   opts.series_uid == headers[series[chosen][0]].series_number,
                  "dicom: series ", opts.series_uid, " (read.series) not found in '", dir, "'");
  } else {
    std::ostringstream list;
    for (size_t s = 0; s < order.size(); ++s) {
      const auto& idx = series[order[s]];
      const Header& h0 = headers[idx[0]];
      if (!opts.series_uid.empty() && (opts.series_uid == order[s] || opts.series_uid == h0.series_number ||
                                       opts.series_uid == "#" + std::to_string(s + 1)))
        chosen = order[s];
      list << (s ? "; " : "") << "#" << s + 1 << " SeriesNumber " << (h0.series_number.empty() ? "?" : h0.series_number)
           << " " << (h0.modality.empty() ? "?" : h0.modality) << " " << idx.size() << " files";
    }
    MEDFM_CHECK_T(FormatError, !chosen.empty(), "dicom: ", series.size(), " series in '", dir, "' (", list.str(), "); ",
                  opts.series_uid.empty() ? "choose one with read.series = NUMBER|#INDEX|UID" : "read.series matches none");
  }
  const auto& idx = series[chosen];
  std::vector<SliceHeader> sh;
  for (size_t i : idx) sh.push_back(headers[i].slice);
  SeriesPlan plan = plan_series(sh, opts.repair, dir, opts.slice_spacing);

  auto finish = [&](Image img, at::Tensor vol) {
    img.format = "dicom-series";
    img.pixels = vol;
    img.geometry = Geometry::from_affine(plan.affine);
    img.meta["files"] = std::to_string(idx.size());
    if (!plan.repairs.empty()) {
      std::string r;
      for (const auto& s : plan.repairs) r += (r.empty() ? "" : "; ") + s;
      img.meta["repairs"] = r;
    }
    img.phi = headers[idx[0]].phi;  // empty unless include_phi
    return img;
  };

  // Direct pass: every slice uncompressed grayscale with the same sample type and no blending ->
  // each worker decodes its file straight into the volume (no per-file tensors).
  const bool blend = std::any_of(plan.slices.begin(), plan.slices.end(), [](const PlannedSlice& p) { return p.w != 0; });
  const Header& h0 = headers[idx[plan.slices[0].a]];
  bool direct = opts.dicom_fast_native && !blend, trivial = true;
  for (const auto& p : plan.slices) {
    const Header& h = headers[idx[p.a]];
    direct = direct && native_eligible(h) && h.slice.frames == 1 && h.bits_allocated == h0.bits_allocated &&
             h.pixel_rep == h0.pixel_rep && h.bits_stored == h0.bits_stored && h.photometric == h0.photometric;
    trivial = trivial && h.rescale_slope == 1 && h.rescale_intercept == 0;
  }
  if (direct) {
    const auto dtype = trivial ? native_stored_type(h0) : at::kFloat;
    at::Tensor vol = torch::empty({1, static_cast<int64_t>(plan.slices.size()), h0.slice.rows, h0.slice.cols}, dtype);
    parallel_files(plan.slices.size(), [&](size_t k) {
      const size_t i = plan.slices[k].a;
      at::Tensor dst = vol.select(1, static_cast<int64_t>(k));
      if (decode_native_into(files[idx[i]], headers[idx[i]], !trivial, dst)) return;
      Decoded d = decode_file(files[idx[i]], false);  // not the simple case after all: GDCM
      MEDFM_CHECK_T(FormatError, d.pixels.numel() == dst.numel(), "dicom: mixed pixel layouts in series (", files[idx[i]], ")");
      dst.copy_(trivial ? d.pixels.select(1, 0) : rescaled(d.pixels.select(1, 0), d.slope, d.intercept));
    });
    Image img;
    fill_common(img, native_metadata(h0));
    return finish(img, vol);
  }

  // General pass: decode the slices the plan uses (any transfer syntax), then assemble.
  std::vector<Decoded> dec(idx.size());
  std::vector<char> needed(idx.size(), 0);
  for (const auto& p : plan.slices) needed[p.a] = needed[p.b] = 1;
  parallel_files(idx.size(), [&](size_t i) {
    if (!needed[i]) return;
    std::optional<Decoded> fast;
    if (opts.dicom_fast_native) fast = decode_native_fast(files[idx[i]], headers[idx[i]]);
    dec[i] = fast ? std::move(*fast) : decode_file(files[idx[i]], false);
  });
  const Decoded* first = nullptr;
  trivial = true;
  for (size_t i = 0; i < dec.size(); ++i) {
    if (!needed[i]) continue;
    if (!first) first = &dec[i];
    MEDFM_CHECK_T(FormatError, dec[i].pixels.sizes() == first->pixels.sizes(), "dicom: mixed pixel layouts in series (",
                  files[idx[i]], ")");
    MEDFM_CHECK_T(FormatError, dec[i].stored_dtype == first->stored_dtype, "dicom: mixed pixel types in series (", files[idx[i]], ")");
    trivial = trivial && dec[i].slope == 1 && dec[i].intercept == 0;
  }
  const int64_t C = first->pixels.size(0), Y = first->pixels.size(2), X = first->pixels.size(3);
  const auto dtype = (trivial && !blend) ? first->pixels.scalar_type() : at::kFloat;
  at::Tensor vol = torch::empty({C, static_cast<int64_t>(plan.slices.size()), Y, X}, dtype);
  parallel_files(plan.slices.size(), [&](size_t k) {
    const auto& p = plan.slices[k];
    at::Tensor dst = vol.select(1, static_cast<int64_t>(k));
    if (p.w == 0) {  // one pass: convert while copying, then rescale in place
      const Decoded& s = dec[p.a];
      dst.copy_(s.pixels.select(1, 0));  // [C,1,Y,X] -> [C,Y,X]
      if (s.slope != 1 || s.intercept != 0) dst.mul_(s.slope).add_(s.intercept);
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
  return finish(img, vol);
}

}  // namespace medfm::io::detail

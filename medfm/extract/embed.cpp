#include "medfm/extract/embed.h"

#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "medfm/core/atomic_file.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/extract/h5_feature_store.h"

namespace medfm::extract {
namespace {

// Loads inputs in order on worker threads into per-input slots; take(i) blocks until input i is
// loaded (or failed). Workers start a new input only while fewer than `window` samples wait, so
// memory stays bounded whatever the inputs hold (a volume's slices count one each).
class Prefetcher {
 public:
  struct Slot {
    bool done = false;
    std::vector<Sample> samples;
    std::exception_ptr error;
  };

  Prefetcher(const Source& src, int workers, size_t window) : src_(src), window_(window), slots_(src.size()) {
    for (int w = 0; w < std::max(1, workers); ++w) threads_.emplace_back([this] { run(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  double load_seconds() {
    std::lock_guard<std::mutex> lk(mu_);
    return load_seconds_;
  }
  Slot take(size_t i) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return slots_[i].done; });
    Slot s = std::move(slots_[i]);
    slots_[i] = Slot();
    waiting_ -= s.samples.size();
    consumed_ = i + 1;
    cv_.notify_all();
    return s;
  }

 private:
  void run() {
    c10::InferenceMode guard;
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || next_ >= slots_.size() || waiting_ < window_ || next_ == consumed_; });
        if (stop_ || next_ >= slots_.size()) return;
        i = next_++;
      }
      Slot s;
      const auto t0 = std::chrono::steady_clock::now();
      try {
        s.samples = src_.load(i);
      } catch (...) {
        s.error = std::current_exception();
      }
      s.done = true;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      {
        std::lock_guard<std::mutex> lk(mu_);
        load_seconds_ += dt;
        waiting_ += s.samples.size();
        slots_[i] = std::move(s);
      }
      cv_.notify_all();
    }
  }

  const Source& src_;
  size_t window_;
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0, consumed_ = 0, waiting_ = 0;
  double load_seconds_ = 0;
  bool stop_ = false;
};

std::string reason_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& x) {
    return std::string("torch: ") + x.what_without_backtrace();
  } catch (const std::exception& x) {
    return x.what();
  }
}

}  // namespace

EmbedStats embed_source(models::Backbone& backbone, const Source& source, const EmbedOptions& opts,
                        const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  MEDFM_CHECK_T(ConfigError, opts.batch_size > 0, "embed: batch_size must be positive, got ", opts.batch_size);
  MEDFM_CHECK_T(ConfigError, opts.workers > 0, "embed: workers must be positive, got ", opts.workers);
  const size_t n = source.size();
  MEDFM_CHECK(n > 0, "embed: no inputs");
  const auto t0 = std::chrono::steady_clock::now();
  c10::InferenceMode guard;
  backbone.to(opts.device);
  const size_t bs = static_cast<size_t>(opts.batch_size);
  Prefetcher prefetch(source, opts.workers, opts.prefetch_samples ? opts.prefetch_samples : 4 * bs);
  std::unique_ptr<FeatureWriter> writer;
  EmbedStats stats;
  std::deque<Sample> pending;  // loaded samples waiting for a full batch
  std::vector<std::map<std::string, std::string>> metas;

  auto run_batch = [&](size_t count) {
    std::vector<at::Tensor> images;
    std::vector<std::string> ids;
    for (size_t k = 0; k < count; ++k) {
      images.push_back(std::move(pending.front().image));
      ids.push_back(std::move(pending.front().id));
      metas.push_back(std::move(pending.front().meta));
      pending.pop_front();
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto feats = backbone.embed(torch::stack(images).to(opts.device)).to(torch::kCPU);
    const auto t1 = std::chrono::steady_clock::now();
    stats.model_seconds += std::chrono::duration<double>(t1 - t0).count();
    if (!writer) {
      stats.dim = feats.size(1);
      writer = std::make_unique<FeatureWriter>(opts.out_path, stats.dim);
      if (opts.coords) {
        writer->set_write_ids(false);
        writer->set_coords(*opts.coords, opts.coords_name, std::filesystem::path(opts.out_path).parent_path().string());
      }
    }
    writer->append(feats, ids);
    stats.write_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    stats.n_samples += static_cast<int64_t>(count);
  };

  for (size_t i = 0; i < n; ++i) {
    auto slot = prefetch.take(i);
    if (slot.error) {
      if (!opts.keep_going) std::rethrow_exception(slot.error);
      stats.skipped.push_back({source.id(i), source.path(i), reason_of(slot.error)});
    } else {
      ++stats.n_inputs;
      for (auto& s : slot.samples) pending.push_back(std::move(s));
      while (pending.size() >= bs) run_batch(bs);
    }
    if (i + 1 == n && !pending.empty()) run_batch(pending.size());
    if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(n), stats.n_samples);
  }
  MEDFM_CHECK(writer, "embed: none of the ", n, " inputs could be read (", stats.skipped.size(), " skipped; first: ",
              stats.skipped.empty() ? "" : stats.skipped[0].path + ": " + stats.skipped[0].reason, ")");

  // Metadata columns: the union of every sample's keys ("" where a sample has none).
  std::set<std::string> keys;
  for (const auto& m : metas)
    for (const auto& kv : m) keys.insert(kv.first);
  for (const auto& k : keys) {
    std::vector<std::string> col;
    col.reserve(metas.size());
    for (const auto& m : metas) {
      auto it = m.find(k);
      col.push_back(it == m.end() ? std::string() : it->second);
    }
    writer->set_column(k, col);
  }
  if (!stats.skipped.empty()) {
    std::vector<std::string> paths, reasons;
    for (const auto& s : stats.skipped) paths.push_back(s.path), reasons.push_back(s.reason);
    writer->set_skipped(paths, reasons);
  }
  for (const auto& [k, v] : opts.attrs) writer->set_attr(k, v);
  writer->set_attr("n_inputs", std::to_string(stats.n_inputs));
  writer->set_attr("n_skipped", std::to_string(stats.skipped.size()));
  const auto tc = std::chrono::steady_clock::now();
  writer->commit();
  stats.write_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - tc).count();
  stats.load_seconds = prefetch.load_seconds();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

void EmbedJob::bind(Config& cfg) {
  cfg.bind("embed.input", input, "a file, a folder (mixed formats) or a CSV with a `path` column");
  cfg.bind("embed.out", out, "output HDF5 path");
  cfg.bind("embed.batch_size", batch_size, "samples per forward pass");
  cfg.bind("embed.workers", workers, "decode threads");
  cfg.bind("embed.keep_going", keep_going, "record unreadable inputs in /skipped and go on");
  cfg.bind("embed.plane", sample.plane, "volumes: axial | coronal | sagittal");
  cfg.bind("embed.slices", sample.slices, "volumes: slice range start:stop:step (empty: all)");
  cfg.bind("embed.window", sample.intensity.window, "DICOM/NIfTI intensities (empty: the model's preprocess.intensity)");
  cfg.bind("embed.percentile_lo", sample.intensity.percentile_lo, "window=percentile: low percentile");
  cfg.bind("embed.percentile_hi", sample.intensity.percentile_hi, "window=percentile: high percentile");
  cfg.bind("embed.square_pixels", sample.square_pixels, "resample anisotropic slices to square pixels");
  read.bind(cfg);
}

EmbedStats EmbedJob::run(models::LoadedBackbone& model, c10::Device device, std::map<std::string, std::string> attrs,
                         const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  MEDFM_CHECK_T(ConfigError, !input.empty(), "embed: no input given (embed.input)");
  MEDFM_CHECK_T(ConfigError, !out.empty(), "embed: no output given (embed.out)");
  auto inputs = list_inputs(input);
  // Before the model runs: the output can be written and replaces none of the inputs (an image,
  // the CSV, the weights), and every CSV column can be an HDF5 dataset name under /meta.
  std::vector<std::string> protect = inputs.paths;
  protect.push_back(input);
  protect.insert(protect.end(), model.report.files.begin(), model.report.files.end());
  check_output_path(out, protect, "--out");
  for (const auto& name : inputs.extra_names)
    MEDFM_CHECK_T(FormatError, name != "." && name != ".." && name.find('/') == std::string::npos, "embed: CSV column '",
                  name, "' cannot be an HDF5 dataset name (no '/', not '.' or '..'); rename it");
  SampleOptions so = sample;
  so.preprocess = model.preprocess;
  so.read = read.options();
  EmbedOptions opts;
  opts.out_path = out;
  opts.batch_size = batch_size;
  opts.workers = workers;
  opts.keep_going = keep_going;
  opts.device = device;
  opts.attrs = std::move(attrs);
  opts.attrs.insert(model.provenance.begin(), model.provenance.end());
  opts.attrs["input"] = input;
  auto source = make_file_source(std::move(inputs), so);
  return embed_source(*model.backbone, *source, opts, progress);
}

}  // namespace medfm::extract

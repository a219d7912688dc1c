#include "medfm/extract/embed_images.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "medfm/core/error.h"
#include "medfm/data/transforms.h"
#include "medfm/extract/h5_feature_store.h"
#include "medfm/io/image2d.h"

namespace medfm::extract {
namespace {

// Decodes items in parallel into a window of slots; take(i) blocks until item i is ready.
class Prefetcher {
 public:
  Prefetcher(const ImageList& images, const PreprocessSpec& pre, int workers, size_t window)
      : images_(images), pre_(pre), window_(window), slots_(images.size()) {
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
  at::Tensor take(size_t i) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return slots_[i].defined() || error_; });
    if (error_) std::rethrow_exception(error_);
    auto t = std::move(slots_[i]);
    slots_[i] = at::Tensor();
    consumed_ = i + 1;
    cv_.notify_all();
    return t;
  }

 private:
  void run() {
    c10::InferenceMode guard;
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || next_ >= slots_.size() || next_ < consumed_ + window_; });
        if (stop_ || next_ >= slots_.size()) return;
        i = next_++;
      }
      try {
        auto img = data::preprocess(io::read_image_rgb(images_.paths[i]), pre_);
        std::lock_guard<std::mutex> lk(mu_);
        slots_[i] = img;
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      cv_.notify_all();
    }
  }

  const ImageList& images_;
  PreprocessSpec pre_;
  size_t window_;
  std::vector<at::Tensor> slots_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0, consumed_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace

EmbedStats embed_images(models::Backbone& backbone, const ImageList& images, const PreprocessSpec& pre,
                        const EmbedOptions& opts, const std::function<void(int64_t, int64_t)>& progress) {
  MEDFM_CHECK_T(ConfigError, opts.batch_size > 0, "embed: batch_size must be positive");
  const auto t0 = std::chrono::steady_clock::now();
  c10::InferenceMode guard;
  backbone.to(opts.device);
  const size_t n = images.size();
  Prefetcher prefetch(images, pre, opts.workers, 4 * static_cast<size_t>(opts.batch_size));
  std::unique_ptr<FeatureWriter> writer;
  EmbedStats stats;
  for (size_t start = 0; start < n; start += opts.batch_size) {
    const size_t end = std::min(n, start + static_cast<size_t>(opts.batch_size));
    std::vector<at::Tensor> batch;
    for (size_t i = start; i < end; ++i) batch.push_back(prefetch.take(i));
    auto feats = backbone.embed(torch::stack(batch).to(opts.device));
    if (!writer) {
      stats.dim = feats.size(1);
      writer = std::make_unique<FeatureWriter>(opts.out_path, stats.dim);
    }
    writer->append(feats, std::vector<std::string>(images.ids.begin() + start, images.ids.begin() + end));
    if (progress) progress(static_cast<int64_t>(end), static_cast<int64_t>(n));
  }
  writer->set_column("path", images.paths);
  for (size_t c = 0; c < images.extra_names.size(); ++c) writer->set_column(images.extra_names[c], images.extra[c]);
  for (const auto& [k, v] : opts.attrs) writer->set_attr(k, v);
  writer->commit();
  stats.n_images = static_cast<int64_t>(n);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace medfm::extract

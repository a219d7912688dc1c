// Loading a large model: time to build it, time to copy its weights in from a file, the peak
// resident memory (ru_maxrss) after each step against the fp32 parameter size, and embedding
// throughput, for bench/run_load_bench.sh (which runs the PyTorch peer on the same file).
// Usage: medfm_bench_load MODEL WEIGHTS [batch=4] [iters=2]. Prints one JSON line.
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "medfm/core/runtime.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/registry.h"

using Clock = std::chrono::steady_clock;

static double peak_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0 / 1024.0;  // KiB -> GiB
}
static double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  if (argc < 3) {
    std::cerr << "usage: medfm_bench_load MODEL WEIGHTS [batch] [iters]\n";
    return 2;
  }
  medfm::set_threads(0);
  const std::string name = argv[1], weights = argv[2];
  const int batch = argc > 3 ? std::stoi(argv[3]) : 4;
  const int iters = argc > 4 ? std::stoi(argv[4]) : 2;
  const double base = peak_gib();
  auto t0 = Clock::now();
  medfm::models::Vit vit(medfm::models::find_model(name).vit, /*init=*/false);  // as load_backbone builds it
  vit->eval();
  const double build_s = seconds_since(t0);
  double param_gib = 0;
  int64_t n_params = 0;
  for (const auto& p : vit->parameters()) {
    n_params += p.numel();
    param_gib += p.numel() * 4.0 / (1 << 30);
  }
  const double after_build = peak_gib();
  t0 = Clock::now();
  auto report = medfm::models::load_vit_weights(vit, weights);
  const double load_s = seconds_since(t0);
  const double after_load = peak_gib();
  c10::InferenceMode guard;
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, 224, 224});
  auto out = vit->forward(x);  // warm-up
  double best = 0;
  for (int i = 0; i < iters; ++i) {
    t0 = Clock::now();
    out = vit->forward(x);
    best = std::max(best, batch / seconds_since(t0));
  }
  nlohmann::json j = {{"impl", "medfm"},         {"model", name},
                      {"params", n_params},      {"param_gib", param_gib},
                      {"base_gib", base},        {"build_s", build_s},
                      {"peak_after_build_gib", after_build},
                      {"load_s", load_s},        {"peak_after_load_gib", after_load},
                      {"load_peak_over_params", (after_load - base) / param_gib},
                      {"batch", batch},          {"images_per_s", best},
                      {"peak_after_embed_gib", peak_gib()},
                      {"complete", report.complete()},
                      {"checksum", out.sum().item<double>()}};
  std::cout << j.dump() << std::endl;
  return 0;
}

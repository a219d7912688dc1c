// ViT forward throughput (images/s, fp32, batch B, 224 px, all cores) and the machine's measured
// sgemm rate, for bench/run_vit_bench.sh, which runs the PyTorch eager peer in the same run.
// Usage: medfm_bench_vit MODEL WEIGHTS.safetensors [batch=32] [iters=3] [precision=fp32|bf16]
// MEDFM_PROFILE=trace.json also records one forward pass with the LibTorch profiler.
// Prints one JSON line.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "medfm/core/runtime.h"
#include "medfm/models/checkpoint.h"
#include "medfm/models/precision.h"
#include "medfm/models/registry.h"

using Clock = std::chrono::steady_clock;

static double sgemm_gflops() {
  auto a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
  torch::mm(a, b);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    torch::mm(a, b);
    best = std::max(best, 2.0 * 2048 * 2048 * 2048 / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
  }
  return best;
}

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  if (argc < 3) {
    std::cerr << "usage: medfm_bench_vit MODEL WEIGHTS [batch] [iters] [precision]\n";
    return 2;
  }
  medfm::set_threads(0);
  const std::string name = argv[1];
  const int batch = argc > 3 ? std::stoi(argv[3]) : 32;
  const int iters = argc > 4 ? std::stoi(argv[4]) : 3;
  const auto precision = medfm::models::parse_precision(argc > 5 ? argv[5] : "fp32");
  const auto& entry = medfm::models::find_model(name);
  medfm::models::Vit vit(entry.vit);
  vit->eval();
  medfm::models::load_vit_weights(vit, std::string(argv[2]));
  c10::InferenceMode guard;
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, 224, 224});
  std::optional<medfm::models::AutocastGuard> autocast;
  autocast.emplace(precision, c10::Device(c10::kCPU));
  auto out = vit->forward(x);  // warm-up
  if (const char* trace = std::getenv("MEDFM_PROFILE")) {  // one more pass as a chrome trace (bench/profile_summary.py)
    torch::autograd::profiler::RecordProfile guard(trace);
    out = vit->forward(x);
  }
  std::vector<double> rates;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    out = vit->forward(x);
    rates.push_back(batch / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  autocast.reset();  // sgemm below in float32
  std::sort(rates.begin(), rates.end());
  // Under reduced precision, how far the features are from float32's (cosine similarity per image).
  double cos_min = 1, cos_mean = 1;
  if (precision != medfm::models::Precision::FP32) {
    auto ref = vit->forward(x);
    auto cos = torch::cosine_similarity(out.to(torch::kFloat), ref, 1);
    cos_min = cos.min().item<double>();
    cos_mean = cos.mean().item<double>();
  }
  nlohmann::json j = {{"impl", "medfm"},
                      {"model", name},
                      {"batch", batch},
                      {"precision", medfm::models::precision_name(precision)},
                      {"threads", torch::get_num_threads()},
                      {"blas_core", medfm::blas_core()},
                      {"images_per_s", rates[rates.size() / 2]},
                      {"sgemm_gflops", sgemm_gflops()},
                      {"cosine_vs_fp32_min", cos_min},
                      {"cosine_vs_fp32_mean", cos_mean},
                      {"checksum", out.sum().item<double>()}};
  std::cout << j.dump() << std::endl;
  return 0;
}

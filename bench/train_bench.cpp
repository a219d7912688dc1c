// Training-step throughput of medfm's pre-training objectives on fixed random views (no data
// loading): the forward passes, loss, backward, clipping, AdamW and EMA of one Trainer step.
// Usage: medfm_bench_train METHOD MODEL IMG LOCAL_IMG N_LOCAL BATCH [STEPS=6] [OVERRIDES=""]
//   METHOD dino | mae | simclr; prints one JSON line (median images/s over STEPS after one warm-up).
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "medfm/core/runtime.h"
#include "medfm/models/layers.h"
#include "medfm/models/registry.h"
#include "medfm/ssl/dino_objective.h"
#include "medfm/ssl/mae_objective.h"
#include "medfm/ssl/simclr_objective.h"
#include "medfm/train/trainer.h"

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  if (argc < 7) {
    std::cerr << "usage: medfm_bench_train METHOD MODEL IMG LOCAL_IMG N_LOCAL BATCH [STEPS] [OVERRIDES]\n";
    return 2;
  }
  const std::string method = argv[1], model = argv[2];
  const int img = std::stoi(argv[3]), local = std::stoi(argv[4]), n_local = std::stoi(argv[5]), batch = std::stoi(argv[6]);
  const int steps = argc > 7 ? std::stoi(argv[7]) : 6;
  std::vector<std::string> ov{"img_size=" + std::to_string(img)};
  if (argc > 8 && std::string(argv[8]).size()) ov.push_back(argv[8]);
  medfm::set_threads(0);
  // As `medfm pretrain` does (runtime.h); MEDFM_BENCH_DEFAULT_MALLOC=1 measures without it.
  if (!std::getenv("MEDFM_BENCH_DEFAULT_MALLOC")) medfm::retain_freed_memory();
  torch::manual_seed(0);
  auto vit = medfm::models::create_vit(model, medfm::models::parse_overrides(ov));
  vit->train();
  std::unique_ptr<medfm::train::Objective> obj;
  medfm::train::TrainerOptions to;
  to.lr = medfm::train::Schedule::constant(1e-4, steps + 1);
  to.weight_decay = medfm::train::Schedule::constant(0.04, steps + 1);
  std::vector<torch::Tensor> crops;
  if (method == "dino") {
    medfm::ssl::DinoOptions o;
    o.head.out_dim = std::getenv("DINO_OUT") ? std::stoi(std::getenv("DINO_OUT")) : 65536;
    o.n_local_crops = n_local;
    o.teacher_temp = medfm::train::Schedule::constant(0.04, steps + 1);
    o.momentum = medfm::train::Schedule::constant(0.996, steps + 1);
    obj = std::make_unique<medfm::ssl::DinoObjective>(vit, o);
    for (int i = 0; i < 2; ++i) crops.push_back(torch::randn({batch, 3, img, img}));
    for (int i = 0; i < n_local; ++i) crops.push_back(torch::randn({batch, 3, local, local}));
    to.clip_mode = "per_param";
  } else if (method == "mae") {
    medfm::ssl::MaeOptions o;
    o.decoder_dim = 256, o.decoder_depth = 4, o.decoder_heads = 8;
    obj = std::make_unique<medfm::ssl::MaeObjective>(vit, o);
    crops.push_back(torch::randn({batch, 3, img, img}));
    to.clip_mode = "none";
  } else {
    medfm::ssl::SimclrOptions o;
    obj = std::make_unique<medfm::ssl::SimclrObjective>(vit, o);
    for (int i = 0; i < 2; ++i) crops.push_back(torch::randn({batch, 3, img, img}));
    to.clip_mode = "global";
  }
  // MEDFM_BENCH_NO_FUSED_MLP=1: every MLP of the objective's modules takes at::linear + at::gelu in
  // training instead of the fused hidden layer (HiddenGelu), to measure what the fusion gives here.
  if (std::getenv("MEDFM_BENCH_NO_FUSED_MLP"))
    for (const auto& m : obj->trained().modules())
      if (auto* mlp = dynamic_cast<medfm::models::MlpImpl*>(m.get())) mlp->fast_path = false;
  medfm::train::Trainer trainer(*obj, to);
  medfm::train::Views v{crops};
  // Wall-clock and process CPU time (all threads; on a VM, time stolen by the hypervisor is not
  // charged to the process, so images per CPU-second is steadier than images/s on a busy host).
  std::vector<double> rates, cpu_rates;
  double loss = 0;
  // MEDFM_PROFILE=trace.json: the autograd profiler's chrome trace of the timed steps.
  std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
  for (int s = 0; s <= steps; ++s) {
    if (s == 1 && std::getenv("MEDFM_PROFILE")) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(std::getenv("MEDFM_PROFILE"));
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    loss = trainer.step(v).loss;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    if (s > 0) rates.push_back(batch / dt), cpu_rates.push_back(batch / cpu);
  }
  prof.reset();
  // MEDFM_BENCH_PHASES=1: after the timed steps, STEPS more forward passes (the objective's loss)
  // and backward passes timed apart; the rest of a step (clipping, AdamW, EMA) is the step's median
  // time less these two medians.
  nlohmann::json phases;
  if (std::getenv("MEDFM_BENCH_PHASES")) {
    std::vector<double> fwd, bwd;
    for (int s = 0; s < steps; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      auto out = obj->loss(v, steps);
      out.loss.item<double>();
      auto t1 = std::chrono::steady_clock::now();
      out.loss.backward();
      auto t2 = std::chrono::steady_clock::now();
      fwd.push_back(std::chrono::duration<double>(t1 - t0).count());
      bwd.push_back(std::chrono::duration<double>(t2 - t1).count());
      for (auto& p : obj->trained().parameters()) p.mutable_grad() = torch::Tensor();
    }
    std::sort(fwd.begin(), fwd.end());
    std::sort(bwd.begin(), bwd.end());
    phases = {{"forward_s", fwd[fwd.size() / 2]}, {"backward_s", bwd[bwd.size() / 2]}};
  }
  std::sort(rates.begin(), rates.end());
  std::sort(cpu_rates.begin(), cpu_rates.end());
  std::cout << nlohmann::json{{"impl", "medfm"}, {"method", method}, {"model", model}, {"img", img}, {"batch", batch},
                              {"n_local", n_local}, {"threads", torch::get_num_threads()},
                              {"images_per_s", rates[rates.size() / 2]},
                              {"images_per_cpu_s", cpu_rates[cpu_rates.size() / 2]}, {"last_loss", loss}, {"phases", phases}}
                   .dump()
            << "\n";
}

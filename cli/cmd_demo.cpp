// `medfm demo`: the main job of the Quick start. Embeds the real sample images fetched by
// scripts/fetch_data.sh, writes demo.h5, then times the backbone on a batch of crops of them.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/data/transforms.h"
#include "medfm/core/config.h"
#include "medfm/data/model_input.h"
#include "medfm/extract/embed.h"
#include "medfm/io/formats.h"

namespace medfm::cli {
namespace {

std::string default_data_dir() {
  if (const char* d = std::getenv("MEDFM_DATA")) return std::string(d) + "/images";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/medfm/data/images";
}

// batch_size random crops (input_size, normalised) of the given images, cycling through them.
torch::Tensor crop_batch(const extract::InputList& images, const PreprocessSpec& pre, int batch_size) {
  std::vector<torch::Tensor> imgs;
  for (const auto& p : images.paths) {
    Image file = io::open_image(p);
    auto img = data::display_to_rgb01(file.pixels, file.stored_dtype);
    if (std::min(img.size(1), img.size(2)) < pre.input_size)
      img = data::resize_shorter(img, pre.input_size, pre.interpolation);
    imgs.push_back(img);
  }
  std::vector<torch::Tensor> batch;
  for (int i = 0; i < batch_size; ++i) {
    const auto& img = imgs[i % imgs.size()];
    const int64_t top = torch::randint(img.size(1) - pre.input_size + 1, {1}).item<int64_t>();
    const int64_t left = torch::randint(img.size(2) - pre.input_size + 1, {1}).item<int64_t>();
    auto crop = img.narrow(1, top, pre.input_size).narrow(2, left, pre.input_size);
    batch.push_back(data::normalize(crop, pre.mean, pre.std));
  }
  return torch::stack(batch);
}

}  // namespace

void add_demo_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    models::ModelSpec model;
    std::string data, out = "demo.h5";
    int batch_size = 32, repeats = 3;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("demo", "embed the real sample images and measure backbone throughput");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  add_runtime_options(*cmd, *s->keys, s->rt, true);
  add_model_flags(*s->keys);
  cmd->add_option("--data", s->data, "folder of sample images (default: $MEDFM_DATA/images or ~/.cache/medfm/data/images)");
  cmd->add_option("--out", s->out, "output HDF5 file");
  cmd->add_option("--batch-size", s->batch_size, "batch size of the throughput run");
  cmd->add_option("--repeats", s->repeats, "timed forward passes");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->model.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      if (s->data.empty()) s->data = default_data_dir();
      auto images = extract::list_inputs(s->data);
      auto model = models::load_backbone(s->model);
      if (!model.warning.empty()) spdlog::warn("{}", model.warning);
      extract::EmbedOptions opts;
      opts.out_path = s->out;
      opts.device = parse_device(s->rt.device);
      opts.attrs = run_attrs(cfg);
      opts.attrs.insert(model.provenance.begin(), model.provenance.end());
      opts.attrs["input"] = s->data;
      extract::SampleOptions so;
      so.preprocess = model.preprocess;
      ProgressBar bar("demo", "img");
      auto stats = extract::embed_source(*model.backbone, *extract::make_file_source(images, so), opts,
                                         [&](int64_t d, int64_t t, int64_t) { bar.update(d, t); });
      bar.finish();

      // Throughput: batches of crops of the same real images, timed after one warm-up pass.
      c10::InferenceMode guard;
      torch::manual_seed(0);
      auto batch = crop_batch(images, model.preprocess, s->batch_size).to(opts.device);
      model.backbone->embed(batch);
      std::vector<double> rates;
      for (int r = 0; r < std::max(1, s->repeats); ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto f = model.backbone->embed(batch);
        if (opts.device.is_cuda()) torch::cuda::synchronize();
        rates.push_back(s->batch_size / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(rates.begin(), rates.end());
      const double rate = rates[rates.size() / 2];
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->out},         {"n_images", stats.n_samples},
                                    {"dim", stats.dim},      {"model", model.provenance["model"]},
                                    {"weights", model.provenance["weights"]},
                                    {"threads", torch::get_num_threads()},
                                    {"batch_size", s->batch_size}, {"images_per_s", rate}}
                         .dump()
                  << "\n";
      } else {
        std::cout << "model      " << model.backbone->describe() << " (" << model.provenance["weights"] << ")\n"
                  << "images     " << stats.n_samples << " from " << s->data << "\n"
                  << "features   [" << stats.n_samples << ", " << stats.dim << "] float32 -> " << s->out << "\n"
                  << "throughput " << rate << " img/s (batch " << s->batch_size << ", " << model.preprocess.input_size
                  << " px, " << torch::get_num_threads() << " threads, " << s->rt.device << ", median of "
                  << rates.size() << ")\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

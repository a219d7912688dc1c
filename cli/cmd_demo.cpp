// `medfm demo`: the main job of the Quick start. Embeds the real sample images fetched by
// scripts/fetch_data.sh, writes demo.h5, then times the backbone on a batch of crops of them.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/benchmark.h"
#include "medfm/extract/embed.h"
#include "medfm/extract/embed_slides.h"

namespace medfm::cli {

void add_demo_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    models::ModelSpec model;
    extract::EmbedJob job;
    int repeats = 3;
    std::string slide, slide_out = "demo_slide";
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("demo", "embed the real sample images and measure backbone throughput");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  add_runtime_options(*cmd, *s->keys, s->rt, true);
  add_model_flags(*s->keys);
  s->keys->option("--data", "embed.input", "folder of sample images (default: $MEDFM_DATA/images or ~/.cache/medfm/data/images)");
  s->keys->option("--out", "embed.out", "output HDF5 file");
  s->keys->option("--batch-size", "embed.batch_size", "batch size of the throughput run");
  s->keys->option("--repeats", "demo.repeats", "timed forward passes");
  s->keys->option("--slide", "demo.slide", "sample slide (default: the fetched ihc_pyramid.tif)");
  s->keys->option("--slide-out", "demo.slide_out", "folder for the slide's tiles, features and heatmap");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      const char* env = std::getenv("MEDFM_DATA");
      const char* home = std::getenv("HOME");
      const std::string data = env ? std::string(env) : std::string(home ? home : ".") + "/.cache/medfm/data";
      s->job.input = data + "/images";
      s->slide = data + "/slides/ihc_pyramid.tif";
      s->job.out = "demo.h5";
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->model.bind(cfg);
      s->job.bind(cfg);
      cfg.bind("demo.repeats", s->repeats, "timed forward passes");
      cfg.bind("demo.slide", s->slide, "sample slide");
      cfg.bind("demo.slide_out", s->slide_out, "slide outputs folder");
      resolve_config(cfg, s->rt, *s->keys);
      auto model = models::load_backbone(s->model);
      log_model(s->model, model);
      const auto device = parse_device(s->rt.device);
      ProgressBar bar("demo", "img");
      auto st = s->job.run(model, device, run_attrs(cfg), [&](int64_t d, int64_t t, int64_t) { bar.update(d, t); });
      bar.finish();
      auto sd = extract::slide_demo(model, s->slide, s->slide_out, device, run_attrs(cfg));
      // Throughput: a batch of crops of the same real images, timed after one warm-up pass.
      auto batch = extract::random_crops(extract::list_inputs(s->job.input), model.preprocess, s->job.batch_size, 0);
      auto rates = extract::time_backbone(*model.backbone, batch, s->repeats, device);
      const double rate = rates[rates.size() / 2];
      auto& prov = model.provenance;
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->job.out},           {"n_images", st.n_samples}, {"dim", st.dim},
                                    {"model", prov["model"]},      {"weights", prov["weights"]},
                                    {"threads", torch::get_num_threads()}, {"batch_size", s->job.batch_size},
                                    {"images_per_s", rate}, {"slide_tiles", sd.n_tiles},
                                    {"slide_features", sd.features}, {"slide_heatmap", sd.heatmap}}
                  << "\n";
      } else {
        std::cout << "model      " << model.backbone->describe() << " (" << prov["weights"] << ")\n"
                  << "images     " << st.n_samples << " from " << s->job.input << "\n"
                  << "features   [" << st.n_samples << ", " << st.dim << "] float32 -> " << s->job.out << "\n"
                  << "throughput " << rate << " img/s (batch " << s->job.batch_size << ", " << model.preprocess.input_size
                  << " px, " << torch::get_num_threads() << " threads, " << s->rt.device << ", median of "
                  << rates.size() << ")\n"
                  << "slide      " << sd.n_tiles << " tiles of 224 px at 0.5 um/px -> " << sd.features << "\n"
                  << "pictures   " << sd.thumbnail << " (tissue and tiles), " << sd.heatmap << " (feature 0)\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

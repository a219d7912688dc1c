// `medfm demo`: the main job of the Quick start, on the real data fetched by scripts/fetch_data.sh:
// embeds the sample images (pathology, fundus) into demo.h5; builds the Brodmann task from an MRI
// volume, pre-trains a small ViT briefly (MAE), probes it against random weights and raw pixels;
// tiles and embeds a slide of real tissue with a heatmap; times the backbone; prints a table.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/benchmark.h"
#include "medfm/extract/demo.h"
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
    extract::DemoLearningJob learning;
    bool skip_learning = false;
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
  s->keys->option("--learning-out", "demo.learning_out", "folder for the Brodmann task, the pre-training run and the probe reports");
  s->keys->option("--pretrain-steps", "demo.pretrain_steps", "MAE steps of the small ViT (batch 64)");
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
      s->learning.mricron_dir = data + "/mricron";
      cfg.bind("demo.mricron", s->learning.mricron_dir, "folder with ch2.nii.gz and brodmann.nii.gz (mricron-data)");
      cfg.bind("demo.learning_out", s->learning.out, "learning outputs folder");
      cfg.bind("demo.pretrain_steps", s->learning.pretrain_steps, "MAE pre-training steps");
      cfg.bind("demo.per_area", s->learning.per_area, "Brodmann task patches per area and hemisphere");
      cfg.bind("demo.skip_learning", s->skip_learning, "skip the task / pre-training / probe part");
      resolve_config(cfg, s->rt, *s->keys);
      auto model = models::load_backbone(s->model);
      log_model(s->model, model);
      const auto device = parse_device(s->rt.device);
      ProgressBar bar("demo", "img");
      auto st = s->job.run(model, device, run_attrs(cfg), [&](int64_t d, int64_t t, int64_t) { bar.update(d, t); });
      bar.finish();
      auto sd = extract::slide_demo(model, s->slide, s->slide_out, device, run_attrs(cfg));
      extract::DemoLearning learn;
      if (!s->skip_learning)
        learn = extract::run_demo_learning(s->learning, [&](const std::string& st) { std::cerr << "demo: " << st << "\n"; });
      // Throughput: a batch of crops of the same real images, timed after one warm-up pass.
      auto batch = extract::random_crops(extract::list_inputs(s->job.input), model.preprocess, s->job.batch_size, 0);
      auto rates = extract::time_backbone(*model.backbone, batch, s->repeats, device);
      const double rate = rates[rates.size() / 2];
      auto& prov = model.provenance;
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& r : learn.rows)
        rows.push_back({{"features", r.features}, {"linear", r.linear}, {"linear_ci", {r.linear_low, r.linear_high}}, {"knn", r.knn},
                        {"report", r.report}});
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->job.out},           {"n_images", st.n_samples}, {"dim", st.dim},
                                    {"model", prov["model"]},      {"weights", prov["weights"]},
                                    {"threads", torch::get_num_threads()}, {"batch_size", s->job.batch_size},
                                    {"images_per_s", rate}, {"slide_tiles", sd.n_tiles},
                                    {"slide_features", sd.features}, {"slide_heatmap", sd.heatmap},
                                    {"brodmann", {{"areas", learn.task.n_areas}, {"train", learn.task.n_train}, {"test", learn.task.n_test},
                                                  {"pretrain_seconds", learn.pretrain_seconds}, {"probes", rows}}}}
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
        if (!learn.rows.empty()) {
          std::printf("\nBrodmann task (Colin27 T1, %d areas; %lld left-hemisphere patches train, %lld mirrored right test)\n",
                      learn.task.n_areas, static_cast<long long>(learn.task.n_train), static_cast<long long>(learn.task.n_test));
          std::printf("small ViT pre-trained with MAE: %.0f s, %.0f img/s, loss %.3f -> %.3f\n\n", learn.pretrain_seconds,
                      learn.pretrain_images_per_s, learn.pretrain_first_loss, learn.pretrain_last_loss);
          std::printf("| features          | linear probe (95%% CI)  | kNN (k=20) |\n|---|---|---|\n");
          for (const auto& r : learn.rows)
            std::printf("| %-17s | %5.1f%% (%4.1f-%4.1f) | %5.1f%%     |\n", r.features.c_str(), 100 * r.linear, 100 * r.linear_low,
                        100 * r.linear_high, 100 * r.knn);
          std::cout << "\nreports    " << learn.rows.back().report << " (and beside it for each row)\n";
        }
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

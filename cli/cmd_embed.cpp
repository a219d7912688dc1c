#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_setup.h"
#include "medfm/core/error.h"
#include "medfm/core/runtime.h"
#include "medfm/extract/embed_images.h"

namespace medfm::cli {

void add_embed_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    ModelOptions model;
    std::string input, out;
    int batch_size = 32, workers = 2;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("embed", "embed a folder or CSV of 2D images into an HDF5 feature file");
  add_runtime_options(*cmd, s->rt, true);
  add_model_options(*cmd, s->model);
  cmd->add_option("--input", s->input, "folder of images, or CSV with a `path` column");
  cmd->add_option("--out", s->out, "output HDF5 file");
  cmd->add_option("--batch-size", s->batch_size, "images per forward pass");
  cmd->add_option("--workers", s->workers, "decode threads");
  cmd->callback([s, cmd, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      bind_model(cfg, s->model);
      cfg.bind("embed.input", s->input, "folder or CSV");
      cfg.bind("embed.out", s->out, "output HDF5 path");
      cfg.bind("embed.batch_size", s->batch_size, "images per forward pass");
      cfg.bind("embed.workers", s->workers, "decode threads");
      const State typed = *s;
      resolve_config(*cmd, cfg, s->rt, [&] {
        reapply_model_flags(*cmd, s->model, typed.model);
        if (cmd->count("--input")) s->input = typed.input;
        if (cmd->count("--out")) s->out = typed.out;
        if (cmd->count("--batch-size")) s->batch_size = typed.batch_size;
        if (cmd->count("--workers")) s->workers = typed.workers;
      });
      MEDFM_CHECK_T(ConfigError, !s->input.empty(), "embed: --input is required");
      MEDFM_CHECK_T(ConfigError, !s->out.empty(), "embed: --out is required");
      extract::EmbedOptions opts;
      opts.out_path = s->out;
      opts.batch_size = s->batch_size;
      opts.workers = s->workers;
      opts.device = parse_device(s->rt.device);
      auto images = extract::list_images(s->input);
      auto model = prepare_model(s->model);
      opts.attrs = run_attrs(cfg);
      opts.attrs.insert(model.provenance.begin(), model.provenance.end());
      opts.attrs["input"] = s->input;
      spdlog::info("embedding {} images with {} on {}", images.size(), model.backbone->describe(), s->rt.device);
      ProgressBar bar("embed", "img");
      auto stats = extract::embed_images(*model.backbone, images, model.preprocess, opts,
                                         [&](int64_t d, int64_t t) { bar.update(d, t); });
      bar.finish();
      if (s->rt.json) {
        std::cout << nlohmann::json{{"out", s->out},
                                    {"n_images", stats.n_images},
                                    {"dim", stats.dim},
                                    {"seconds", stats.seconds},
                                    {"images_per_s", stats.images_per_s()}}
                         .dump()
                  << "\n";
      } else {
        std::cout << "wrote " << s->out << ": features [" << stats.n_images << ", " << stats.dim << "] in "
                  << stats.seconds << " s (" << stats.images_per_s() << " img/s)\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

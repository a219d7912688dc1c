// `medfm pretrain --config configs/pretrain/<method>_<size>.toml [--set k=v]... --out RUN [--resume]`
// and `medfm export RUN --out backbone.safetensors`.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/extract/pretrain.h"

namespace medfm::cli {

void add_pretrain_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    bool resume = false;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("pretrain", "self-supervised pre-training (dino, mae, simclr) on images, slides and volumes");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_model_flags(k);
  k.option("--method", "method", "dino | mae | simclr");
  k.option("--out", "out", "run directory");
  k.option("--images", "data.images", "2D images: folders, files or CSVs (comma-separated)");
  k.option("--slides", "data.slides", "whole-slide images: folders, files or CSVs (comma-separated)");
  k.option("--volumes", "data.volumes", "NIfTI / DICOM volumes: folders, files or CSVs (comma-separated)");
  k.option("--max-steps", "train.max_steps", "optimiser steps (the schedules' length)");
  k.option("--max-minutes", "train.max_minutes", "stop after this many minutes");
  k.option("--batch-size", "train.batch_size", "images per step");
  cmd->add_flag("--resume", s->resume, "continue the run in --out from its newest checkpoint (its config.toml, then --set)");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      // Pass 1 reads the method and the view preset; their defaults are the base of pass 2.
      auto resolve = [&](extract::PretrainJob& job, Config& cfg) {
        bind_runtime(cfg, s->rt);
        job.bind(cfg);
        resolve_config(cfg, s->rt, *s->keys);
      };
      if (s->resume) {
        extract::PretrainJob probe;
        Config c0;
        resolve(probe, c0);
        MEDFM_CHECK_T(ConfigError, !probe.out.empty(), "pretrain --resume: give the run directory with --out");
        const std::string saved = (std::filesystem::path(probe.out) / "config.toml").string();
        MEDFM_CHECK_T(ConfigError, s->rt.config_file.empty() || s->rt.config_file == saved,
                      "pretrain --resume: the run's own config.toml is used; change keys with --set");
        MEDFM_CHECK_T(IoError, std::filesystem::exists(saved), "pretrain --resume: ", probe.out, " has no config.toml");
        s->rt.config_file = saved;
      }
      extract::PretrainJob probe;
      Config c1;
      resolve(probe, c1);
      auto job = extract::PretrainJob::defaults(probe.method, probe.views.preset);
      Config cfg;
      resolve(job, cfg);
      job.resume = s->resume;
      ProgressBar bar("pretrain " + job.method, "step");
      bool first = true;
      auto res = extract::run_pretrain(
          job, cfg.to_toml(),
          [&](const extract::PretrainProgress& p) {
            if (first) bar.set_base(p.step - 1), first = false;
            char note[96];
            std::snprintf(note, sizeof note, "loss %.4f  %.1f img/s", p.loss, p.images_per_s);
            bar.update(p.step, p.total, note);
          },
          [](const std::string& m) { spdlog::info("{}", m); });
      bar.finish();
      if (res.rank != 0) return 0;  // data parallel: rank 0 reports
      if (s->rt.json) {
        std::cout << nlohmann::json{{"run", job.out},           {"method", job.method},
                                    {"first_step", res.first_step}, {"steps_done", res.steps_done},
                                    {"max_steps", job.train.max_steps}, {"stopped_by", res.stopped_by},
                                    {"seconds", res.seconds},     {"images_per_s", res.images_per_s},
                                    {"last_loss", res.last_loss}, {"checkpoint", res.checkpoint}}
                         .dump(2)
                  << "\n";
      } else {
        std::cout << job.method << ": steps " << res.first_step << " -> " << res.steps_done << " of "
                  << job.train.max_steps << " (" << res.stopped_by << "), " << res.images_per_s << " img/s, last loss "
                  << res.last_loss << "\n"
                  << "run: " << job.out << " (metrics.jsonl, loss.png, run.json); checkpoint: " << res.checkpoint << "\n";
      }
      return 0;
    });
  });
}

void add_export_command(CLI::App& app, int* rc) {
  struct State {
    std::string run, out, checkpoint;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("export", "write a pre-training run's backbone as timm-layout safetensors");
  cmd->add_option("run", s->run, "run directory of `medfm pretrain`")->required();
  cmd->add_option("--out", s->out, "output .safetensors")->required();
  cmd->add_option("--checkpoint", s->checkpoint, "a checkpoint file (default: the run's newest)");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      RuntimeOptions rt;
      const std::string used =
          extract::export_backbone(s->run, s->out, s->checkpoint, [&](Config& c) { bind_runtime(c, rt); });
      std::cout << "exported " << used << " -> " << s->out << " (embed it with `medfm embed --weights " << s->out
                << "`, no --model needed)\n";
      return 0;
    });
  });
}

}  // namespace medfm::cli

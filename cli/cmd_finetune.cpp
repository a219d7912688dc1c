// `medfm finetune --model NAME --weights W --train L.csv --val V.csv [--lora r=8] --out DIR`:
// full fine-tuning with layer-wise lr decay, or LoRA; a report on the validation images.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/extract/finetune.h"

namespace medfm::cli {

namespace {
// "r=8,alpha=16,dropout=0.1,mlp" -> --set finetune.* values.
std::vector<std::string> lora_sets(const std::string& spec) {
  std::vector<std::string> sets = {"finetune.mode=lora"};
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string k = item.substr(0, eq), v = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (k == "r" || k == "rank") sets.push_back("finetune.lora_rank=" + v);
    else if (k == "alpha") sets.push_back("finetune.lora_alpha=" + v);
    else if (k == "dropout") sets.push_back("finetune.lora_dropout=" + v);
    else if (k == "mlp" && v.empty()) sets.push_back("finetune.lora_mlp=true");
    else throw ConfigError("finetune: --lora '" + spec + "': unknown item '" + item + "' (r=N, alpha=X, dropout=X, mlp)");
  }
  return sets;
}
}  // namespace

void add_finetune_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    extract::FinetuneJob job;
    std::string lora;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("finetune", "fine-tune a ViT (full, layer-wise lr decay, or LoRA) on labelled images, with a report");
  s->keys = std::make_unique<KeyFlags>(*cmd);
  auto& k = *s->keys;
  add_runtime_options(*cmd, k, s->rt, true);
  add_model_flags(k);
  k.option("--train", "finetune.train", "training images: CSV with path and label")->required();
  k.option("--val", "finetune.val", "validation images: CSV with path and label")->required();
  k.option("--label-column", "finetune.label_column", "column with the class (default label)");
  k.option("--epochs", "finetune.epochs", "epochs");
  k.option("--batch-size", "finetune.batch_size", "images per step");
  k.option("--lr", "finetune.lr", "peak learning rate");
  k.option("--views", "finetune.views", "augmentation preset: natural | pathology | radiology | ophthalmology");
  k.option("--out", "finetune.out", "output directory")->required();
  cmd->add_option("--lora", s->lora, "LoRA instead of full fine-tuning: r=8[,alpha=16][,dropout=0.1][,mlp]");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      if (!s->lora.empty()) {
        auto extra = lora_sets(s->lora);
        s->rt.sets.insert(s->rt.sets.begin(), extra.begin(), extra.end());  // later --set still win
      }
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->job.bind(cfg);
      resolve_config(cfg, s->rt, *s->keys);
      ProgressBar bar("finetune " + s->job.mode, "step");
      auto sum = extract::run_finetune(s->job, cfg.to_toml(), [&](int64_t step, int64_t total, double loss) {
        bar.update(step, total, loss_note(loss));
      });
      bar.finish();
      print_report_result(s->rt.json, {{"n_train", sum.n_train}, {"n_val", sum.n_val}, {"steps", sum.steps}},
                          "finetune " + s->job.mode + ": " + std::to_string(sum.n_train) + " training, " + std::to_string(sum.n_val) +
                              " validation images, " + std::to_string(sum.steps) + " steps",
                          sum.metrics, sum.report_dir);
      return 0;
    });
  });
}

}  // namespace medfm::cli

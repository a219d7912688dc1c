#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/models/registry.h"

namespace medfm::cli {

void add_models_command(CLI::App& app, int* rc) {
  auto* cmd = app.add_subcommand("models", "list the model registry with each model's preprocessing");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "machine-readable output");
  cmd->callback([json, rc] {
    *rc = guarded([&] {
      const auto& reg = models::model_registry();
      if (*json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : reg) {
          const auto& v = e.vit;
          out.push_back({{"name", e.name},
                         {"description", e.description},
                         {"weights_layout", e.weights_layout},
                         {"arch",
                          {{"img_size", v.img_size}, {"patch_size", v.patch_size}, {"embed_dim", v.embed_dim},
                           {"depth", v.depth}, {"num_heads", v.num_heads}, {"mlp_hidden", v.mlp_hidden},
                           {"swiglu", v.swiglu}, {"reg_tokens", v.reg_tokens}, {"no_embed_class", v.no_embed_class},
                           {"init_values", v.init_values}, {"norm_eps", v.norm_eps}}},
                         {"embedding_dim", v.out_dim()},
                         {"pool", models::pool_name(v.pool)},
                         {"preprocess",
                          {{"resize", e.preprocess.resize_size}, {"crop", e.preprocess.input_size},
                           {"interpolation", e.preprocess.interpolation}, {"mean", e.preprocess.mean},
                           {"std", e.preprocess.std}}}});
        }
        std::cout << out.dump(2) << "\n";
        return 0;
      }
      std::cout << std::left << std::setw(22) << "NAME" << std::setw(7) << "DIM" << std::setw(10) << "POOL"
                << std::setw(12) << "INPUT" << std::setw(12) << "LAYOUT"
                << "DESCRIPTION\n";
      for (const auto& e : reg) {
        std::string input = std::to_string(e.preprocess.resize_size) + "->" + std::to_string(e.preprocess.input_size);
        std::cout << std::left << std::setw(22) << e.name << std::setw(7) << e.vit.out_dim() << std::setw(10)
                  << models::pool_name(e.vit.pool) << std::setw(12) << input << std::setw(12) << e.weights_layout
                  << e.description << "\n";
      }
      return 0;
    });
  });
}

}  // namespace medfm::cli

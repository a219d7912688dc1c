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
        for (const auto& e : reg) out.push_back(models::describe_entry(e));
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

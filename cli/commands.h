// Subcommand registration: each adds itself to the app and returns the exit code through *rc.
#pragma once
#include <CLI/CLI.hpp>

namespace medfm::cli {

void add_models_command(CLI::App& app, int* rc);
void add_embed_command(CLI::App& app, int* rc);
void add_demo_command(CLI::App& app, int* rc);
void add_info_command(CLI::App& app, int* rc);
void add_region_command(CLI::App& app, int* rc);
void add_tile_command(CLI::App& app, int* rc);
void add_heatmap_command(CLI::App& app, int* rc);
void add_pretrain_command(CLI::App& app, int* rc);
void add_export_command(CLI::App& app, int* rc);
void add_launch_command(CLI::App& app, int* rc);
void add_probe_command(CLI::App& app, int* rc);
void add_mil_command(CLI::App& app, int* rc);
void add_finetune_command(CLI::App& app, int* rc);

}  // namespace medfm::cli

// medfm: one binary, git-style subcommands. Parsing and printing only; the work is in the library.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/atomic_file.h"
#include "medfm/core/runtime.h"
#ifdef MEDFM_HAVE_HDF5
#include "medfm/extract/h5_feature_store.h"
#endif

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  medfm::install_signal_cleanup();  // Ctrl-C / kill: no temporaries left, exit 130 / 143
  CLI::App app{"medfm: medical-imaging foundation models, natively"};
  app.require_subcommand(0, 1);
  bool version = false, version_json = false;
  app.add_flag("--version", version, "print version, git commit, LibTorch version, devices, optional parts");
  app.add_flag("--version-json", version_json, "the same as JSON");
  int rc = 0;
  medfm::cli::add_models_command(app, &rc);
  medfm::cli::add_info_command(app, &rc);
  medfm::cli::add_launch_command(app, &rc);
#if defined(MEDFM_HAVE_HDF5) && defined(MEDFM_HAVE_OPENCV)
  medfm::cli::add_embed_command(app, &rc);
  medfm::cli::add_demo_command(app, &rc);
  medfm::cli::add_tile_command(app, &rc);
  medfm::cli::add_heatmap_command(app, &rc);
  medfm::cli::add_pretrain_command(app, &rc);
  medfm::cli::add_export_command(app, &rc);
  medfm::cli::add_probe_command(app, &rc);
  medfm::cli::add_mil_command(app, &rc);
  medfm::cli::add_finetune_command(app, &rc);
#endif
#ifdef MEDFM_HAVE_OPENCV
  medfm::cli::add_region_command(app, &rc);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (version || version_json) {
    auto b = medfm::build_info();
    if (version_json) {
      nlohmann::json j = {{"version", b.version},         {"git_commit", b.git_commit},
                          {"torch_version", b.torch_version}, {"cuda_available", b.cuda_available},
                          {"optional_parts", b.optional_parts}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "medfm " << b.version << " (git " << b.git_commit << ")\n"
                << "LibTorch " << b.torch_version << "\n"
                << "BLAS: OpenBLAS core " << (medfm::blas_core().empty() ? "n/a" : medfm::blas_core()) << "\n"
                << "devices: cpu" << (b.cuda_available ? ", cuda" : " (no CUDA device)") << "\n"
                << "optional parts:";
      for (const auto& p : b.optional_parts) std::cout << " " << p;
      if (b.optional_parts.empty()) std::cout << " none";
      std::cout << "\n";
    }
    return 0;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return 2;
  }
#ifdef MEDFM_HAVE_HDF5
  if (medfm::extract::hdf5_handles_abandoned()) {  // HDF5 would crash closing them at exit
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(rc);
  }
#endif
  return rc;
}

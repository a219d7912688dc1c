// `medfm info PATH...`: what a file or DICOM directory holds (format, size, spacing or um/px and
// its source, orientation, modality, levels); `--json` for machines. `medfm region`: one slide
// region to PNG. Identifying DICOM attributes appear only with --show-phi.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "medfm/core/error.h"
#include "medfm/data/volume_transforms.h"
#include "medfm/io/describe.h"
#include "medfm/io/formats.h"
#include "medfm/io/image2d.h"

namespace medfm::cli {

void add_info_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    std::vector<std::string> paths;
    io::ReadSpec read;
    bool stats = false;
    std::string reorient;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("info", "describe images, volumes, DICOM directories and slides");
  cmd->add_option("paths", s->paths, "files or DICOM directories")->required();
  s->keys = std::make_unique<KeyFlags>(*cmd);
  add_runtime_options(*cmd, *s->keys, s->rt, true);
  add_read_flags(*s->keys);
  s->keys->flag("--stats", "info.stats", "also min / max / mean / std of the pixel values (after rescale)");
  s->keys->option("--reorient", "info.reorient", "volumes: permute / flip voxel axes to this orientation first (e.g. RAS)");
  s->keys->flag("--show-phi", "read.show_phi", "also show patient-identifying DICOM attributes (name, ID, dates, site)");
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->read.bind(cfg);
      cfg.bind("info.stats", s->stats, "pixel statistics");
      cfg.bind("info.reorient", s->reorient, "volumes: orientation code to reorient to first");
      resolve_config(cfg, s->rt, *s->keys);
      auto ro = s->read.options();
      ro.nonfinite = io::ReadOptions::NonFinite::Keep;  // info reports NaN / Inf as they are
      io::DescribeOptions dopts{s->stats, s->read.show_phi};
      std::vector<nlohmann::json> out;
      for (const auto& p : s->paths) {
        const io::Format* f = io::detect_format(p);
        MEDFM_CHECK_T(FormatError, f, "unsupported format: '", p, "'");
        nlohmann::json j;
        if (f->kind == io::Kind::Slide) j = io::describe_slide(*io::open_slide(p, ro), dopts);
        else {
          Image img = io::open_image(p, ro);
          if (!s->reorient.empty()) {
            MEDFM_CHECK_T(ConfigError, img.is_volume, "--reorient applies to volumes; '", p, "' is a 2D image");
            img = data::reorient(img, s->reorient);
          }
          j = io::describe_image(img, dopts);
        }
        j["path"] = p;
        out.push_back(std::move(j));
      }
      if (s->rt.json) {
        std::cout << (out.size() == 1 ? out[0].dump(2) : nlohmann::json(out).dump(2)) << "\n";
      } else {
        for (const auto& j : out) std::cout << io::describe_text(j);
      }
      return 0;
    });
  });
}

#ifdef MEDFM_HAVE_OPENCV  // region writes PNG
void add_region_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    std::string slide, out;
    io::ReadSpec read;
    int level = 0;
    int64_t x = 0, y = 0, w = 512, h = 512;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("region", "read one region of a whole-slide image to PNG (transparent -> white)");
  cmd->add_option("slide", s->slide, "slide file")->required();
  s->keys = std::make_unique<KeyFlags>(*cmd);
  s->keys->option("--level", "region.level", "pyramid level (0 = full resolution)");
  s->keys->option("--x", "region.x", "left, level-0 pixels");
  s->keys->option("--y", "region.y", "top, level-0 pixels");
  s->keys->option("--width", "region.width", "width at the chosen level");
  s->keys->option("--height", "region.height", "height at the chosen level");
  s->keys->option("--out", "region.out", "output PNG")->required();
  add_runtime_options(*cmd, *s->keys, s->rt, false);
  add_read_flags(*s->keys);
  cmd->callback([s, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      s->read.bind(cfg);
      cfg.bind("region.level", s->level, "pyramid level");
      cfg.bind("region.x", s->x, "left, level-0 pixels");
      cfg.bind("region.y", s->y, "top, level-0 pixels");
      cfg.bind("region.width", s->w, "width at the level");
      cfg.bind("region.height", s->h, "height at the level");
      cfg.bind("region.out", s->out, "output PNG");
      resolve_config(cfg, s->rt, *s->keys);
      auto slide = io::open_slide(s->slide, s->read.options());
      io::write_png(s->out, slide->read_region(s->x, s->y, s->level, s->w, s->h));
      return 0;
    });
  });
}
#endif

}  // namespace medfm::cli

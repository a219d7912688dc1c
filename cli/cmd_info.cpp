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
namespace {

struct ReadFlags {
  std::string series;
  std::vector<std::string> repair;
  double mpp = 0;
  std::string slice_spacing = "mean";
};

void add_read_flags(CLI::App& cmd, ReadFlags& f) {
  cmd.add_option("--series", f.series, "DICOM directory: which series (SeriesNumber, #index or SeriesInstanceUID)");
  cmd.add_option("--repair", f.repair, "DICOM series repairs to allow: duplicates, gaps (interpolate), tilt (sheared affine)")
      ->delimiter(',')
      ->check(CLI::IsMember({"duplicates", "gaps", "tilt"}));
  cmd.add_option("--slice-spacing", f.slice_spacing,
                 "DICOM series slice step: mean (first-to-last extent / steps) or first-pair (dcm2niix's rule)")
      ->check(CLI::IsMember({"mean", "first-pair"}));
  cmd.add_option("--mpp", f.mpp, "slides: um/px to use instead of the file's (recorded as the source 'override')");
}

io::ReadOptions read_options(const ReadFlags& f, bool phi) {
  io::ReadOptions o;
  o.include_phi = phi;
  o.series_uid = f.series;
  for (const auto& r : f.repair) {
    if (r == "duplicates") o.repair.drop_duplicates = true;
    if (r == "gaps") o.repair.allow_gaps = true;
    if (r == "tilt") o.repair.allow_tilt = true;
  }
  if (f.mpp > 0) o.mpp = f.mpp;
  o.slice_spacing = f.slice_spacing == "first-pair" ? io::SliceSpacing::FirstPair : io::SliceSpacing::Mean;
  return o;
}

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << (v == 0 ? 0.0 : v);  // no "-0"
  return os.str();
}

std::string join(const nlohmann::json& arr, const char* sep, bool as_num = true) {
  std::string s;
  for (size_t i = 0; i < arr.size(); ++i) {
    if (i) s += sep;
    s += arr[i].is_number() ? num(arr[i].get<double>()) : arr[i].dump();
  }
  return s;
}

void print_human(const nlohmann::json& j, std::ostream& os) {
  os << j["path"].get<std::string>() << "\n";
  auto row = [&](const char* k, const std::string& v) { os << "  " << std::left << std::setw(18) << k << " " << v << "\n"; };
  row("format", j["format"].get<std::string>() + " (" + j["kind"].get<std::string>() + ")");
  row("size", join(j["size"], " x ") + "   " + j["dtype"].get<std::string>() + ", " +
                  std::to_string(j["channels"].get<int64_t>()) + " channel(s)");
  if (j.contains("spacing")) row("spacing", join(j["spacing"], " x ") + " mm");
  if (j.contains("orientation")) row("orientation", j["orientation"].get<std::string>());
  if (j.contains("affine"))
    for (int r = 0; r < 3; ++r) row(r == 0 ? "affine" : "", "[" + join(j["affine"][r], ", ") + "]");
  if (j.contains("modality")) row("modality", j["modality"].get<std::string>());
  if (j["kind"] == "slide") {
    row("vendor", j["vendor"].get<std::string>());
    row("um/px", j["mpp"].is_null() ? "unknown (pass --mpp)" : join(j["mpp"], " x ") + "  (" + j["mpp_source"].get<std::string>() + ")");
    for (size_t l = 0; l < j["levels"].size(); ++l) {
      const auto& lv = j["levels"][l];
      row(l == 0 ? "levels" : "", std::to_string(l) + ": " + join(lv["size"], " x ") + "  downsample " + num(lv["downsample"].get<double>()));
    }
    if (!j["associated_images"].empty()) row("associated", join(j["associated_images"], ", "));
  }
  if (j.contains("meta"))
    for (auto& [k, v] : j["meta"].items()) row(k.c_str(), v.get<std::string>());
  if (j.contains("stats")) {
    const auto& s = j["stats"];
    row("stats", "min " + num(s["min"].get<double>()) + "  max " + num(s["max"].get<double>()) + "  mean " +
                     num(s["mean"].get<double>()) + "  std " + num(s["std"].get<double>()));
  }
  if (j.contains("phi"))
    for (auto& [k, v] : j["phi"].items()) row(k.c_str(), v.get<std::string>() + "  [PHI]");
}

}  // namespace

void add_info_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    std::vector<std::string> paths;
    ReadFlags flags;
    bool stats = false, show_phi = false;
    std::string reorient;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("info", "describe images, volumes, DICOM directories and slides");
  cmd->add_option("paths", s->paths, "files or DICOM directories")->required();
  s->keys = std::make_unique<KeyFlags>(*cmd);
  add_runtime_options(*cmd, *s->keys, s->rt, true);
  add_read_flags(*cmd, s->flags);
  cmd->add_flag("--stats", s->stats, "also min / max / mean / std of the pixel values (after rescale)");
  cmd->add_option("--reorient", s->reorient, "volumes: permute / flip voxel axes to this orientation first (e.g. RAS)");
  cmd->add_flag("--show-phi", s->show_phi, "also show patient-identifying DICOM attributes (name, ID, dates, site)");
  cmd->callback([s, cmd, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      resolve_config(cfg, s->rt, *s->keys);
      auto ro = read_options(s->flags, s->show_phi);
      io::DescribeOptions dopts{s->stats, s->show_phi};
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
        for (const auto& j : out) print_human(j, std::cout);
      }
      return 0;
    });
  });
}

void add_region_command(CLI::App& app, int* rc) {
  struct State {
    RuntimeOptions rt;
    std::unique_ptr<KeyFlags> keys;
    std::string slide, out;
    ReadFlags flags;
    int level = 0;
    int64_t x = 0, y = 0, w = 512, h = 512;
  };
  auto s = std::make_shared<State>();
  auto* cmd = app.add_subcommand("region", "read one region of a whole-slide image to PNG (transparent -> white)");
  cmd->add_option("slide", s->slide, "slide file")->required();
  cmd->add_option("--level", s->level, "pyramid level (0 = full resolution)");
  cmd->add_option("--x", s->x, "left, level-0 pixels");
  cmd->add_option("--y", s->y, "top, level-0 pixels");
  cmd->add_option("--width", s->w, "width at the chosen level");
  cmd->add_option("--height", s->h, "height at the chosen level");
  cmd->add_option("--out", s->out, "output PNG")->required();
  s->keys = std::make_unique<KeyFlags>(*cmd);
  add_runtime_options(*cmd, *s->keys, s->rt, false);
  add_read_flags(*cmd, s->flags);
  cmd->callback([s, cmd, rc] {
    *rc = guarded([&] {
      Config cfg;
      bind_runtime(cfg, s->rt);
      resolve_config(cfg, s->rt, *s->keys);
      auto slide = io::open_slide(s->slide, read_options(s->flags, false));
      io::write_png(s->out, slide->read_region(s->x, s->y, s->level, s->w, s->h));
      return 0;
    });
  });
}

}  // namespace medfm::cli

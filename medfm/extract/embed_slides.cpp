#include "medfm/extract/embed_slides.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <exception>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/hash.h"
#include "medfm/data/model_input.h"
#include "medfm/data/transforms.h"
#include "medfm/extract/h5_coords.h"
#include "medfm/extract/h5_feature_store.h"
#include "medfm/extract/tile_scores.h"
#include "medfm/extract/tile_slides.h"
#include "medfm/data/heatmap.h"
#include "medfm/io/image2d.h"

namespace medfm::extract {
namespace fs = std::filesystem;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// How each tile's colours are normalised before the model.
struct StainNorm {
  std::string method;
  data::MacenkoReference macenko;
  data::LabStats reinhard;
  at::Tensor apply(const at::Tensor& rgb01) const {
    if (method == "reinhard") return data::reinhard(rgb01, reinhard);
    if (method != "macenko") return rgb01;
    try {
      return data::macenko(rgb01, macenko);
    } catch (const Error&) {  // glass or faint tissue: no stain plane to fit; the tile as it is
      return rgb01;
    }
  }
};

StainNorm make_stain_norm(const std::string& method, const std::string& reference, std::string* record) {
  StainNorm n{method, {}, {}};
  if (method.empty()) return n;
  MEDFM_CHECK_T(ConfigError, method == "macenko" || method == "reinhard", "slides: unknown stain normalisation '",
                method, "' (macenko or reinhard)");
  MEDFM_CHECK_T(ConfigError, method == "macenko" || !reference.empty(),
                "slides: Reinhard normalisation needs a reference image (slides.stain_reference)");
  at::Tensor ref;
  if (!reference.empty()) {
    Image img = io::open_image(reference);
    MEDFM_CHECK_T(ConfigError, !img.is_volume, "slides: stain reference '", reference, "' is not a 2D image");
    ref = data::display_to_rgb01(img.pixels, img.stored_dtype);
  }
  nlohmann::json j{{"method", method}, {"reference", reference}};
  if (method == "macenko") {
    if (ref.defined()) n.macenko = data::macenko_fit(ref);
    j["stains"] = n.macenko.stains;
    j["max_conc"] = n.macenko.max_conc;
  } else {
    n.reinhard = data::lab_stats(ref);
    j["lab_mean"] = n.reinhard.mean;
    j["lab_std"] = n.reinhard.std;
  }
  *record = j.dump();
  return n;
}

// One slide's tiles as a Source: input i is a row run of tiles, read as one region.
class SlideTileSource : public Source {
 public:
  SlideTileSource(std::shared_ptr<io::Slide> slide, const data::TileGrid& grid, PreprocessSpec pre, const StainNorm& stain)
      : slide_(std::move(slide)), grid_(grid), runs_(data::tile_runs(grid)), pre_(std::move(pre)), stain_(stain) {}
  size_t size() const override { return runs_.size(); }
  std::string id(size_t i) const override { return slide_->path() + "#" + std::to_string(runs_[i].first); }
  std::string path(size_t) const override { return slide_->path(); }
  std::vector<Sample> load(size_t i) const override {
    const auto [first, count] = runs_[i];
    std::vector<Sample> out;
    for (auto& t : data::read_tile_run(*slide_, grid_.coords, first, count, grid_.tile_level0, grid_.tile))
      out.push_back({data::preprocess(stain_.apply(data::display_to_rgb01(t, "uint8")), pre_), "", {}});
    return out;
  }

 private:
  std::shared_ptr<io::Slide> slide_;
  const data::TileGrid& grid_;
  std::vector<std::pair<size_t, size_t>> runs_;
  PreprocessSpec pre_;
  const StainNorm& stain_;
};

std::pair<int, int> parse_shard(const std::string& s) {
  std::string spec = s;
  if (spec.empty()) {
    const char* r = std::getenv("RANK");
    const char* w = std::getenv("WORLD_SIZE");
    if (!r || !w) return {0, 1};
    spec = std::string(r) + "/" + w;
  }
  int i = -1, n = 0;
  char slash = 0, extra = 0;
  const int got = std::sscanf(spec.c_str(), "%d%c%d%c", &i, &slash, &n, &extra);
  MEDFM_CHECK_T(ConfigError, got == 3 && slash == '/' && n > 0 && i >= 0 && i < n, "slides: shard '", spec,
                "' is not i/n with 0 <= i < n");
  return {i, n};
}

void append_manifest(const std::string& dir, const SlideEmbedResult& r) {
  const std::string line = nlohmann::json{{"slide", r.slide},
                                          {"name", r.name},
                                          {"status", r.status},
                                          {"tiles", r.n_tiles},
                                          {"seconds",
                                           {{"tissue", r.tissue_seconds},
                                            {"load", r.load_seconds},
                                            {"model", r.model_seconds},
                                            {"write", r.write_seconds},
                                            {"total", r.seconds}}},
                                          {"peak_rss_mb", r.peak_rss_mb},
                                          {"error", r.error}}
                               .dump() +
                           "\n";
  const std::string path = (fs::path(dir) / "manifest.jsonl").string();
  FILE* f = std::fopen(path.c_str(), "a");
  MEDFM_CHECK_T(IoError, f, "slides: cannot append to '", path, "'");
  const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  MEDFM_CHECK_T(IoError, ok, "slides: cannot write '", path, "'");
}

// The tile count of an output that is complete for this run (readable, one coords row per
// features row, written by the same model, weights and tiling); nullopt otherwise.
std::optional<int64_t> complete_tiles(const std::string& out, const std::map<std::string, std::string>& want) {
  if (!fs::is_regular_file(out)) return std::nullopt;
  try {
    auto f = read_features(out);
    if (f.coords.size() != static_cast<size_t>(f.features.size(0))) return std::nullopt;
    for (const auto& [k, v] : want) {
      auto it = f.attrs.find(k);
      if (it == f.attrs.end() || it->second != v) return std::nullopt;
    }
    return static_cast<int64_t>(f.coords.size());
  } catch (const Error&) {  // unreadable or partial: redone, not an error
    return std::nullopt;
  }
}

double peak_rss_mb() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // KiB on Linux
}

}  // namespace

size_t prefetch_tiles(double mem_budget_mb, const io::Slide& slide, const data::TileGrid& grid, int input_size,
                      int batch_size, int workers) {
  MEDFM_CHECK_T(ConfigError, std::isfinite(mem_budget_mb) && mem_budget_mb >= 0, "slides: mem_budget ", mem_budget_mb,
                " MiB must not be negative");
  const size_t bs = static_cast<size_t>(std::max(1, batch_size));
  if (mem_budget_mb == 0) return 4 * bs;
  const double max_run = static_cast<double>(data::kMaxTileRun);
  const int w = std::max(1, workers);
  const double lds = slide.levels()[data::tile_read_level(slide, grid.tile_level0, grid.tile)].downsample;
  const double tw = std::ceil(grid.tile_level0 / lds) + 1;  // a tile's side at the level read
  const double sample = 3.0 * input_size * input_size * 4;  // a preprocessed float tile
  // A run in flight: the region (RGBA from the reader, RGB), its uint8 tiles and their float copies.
  const double run = max_run * tw * tw * 7 + max_run * (3.0 * grid.tile * grid.tile * (1 + 4) + 2 * sample);
  // Runs in flight; the loop's own tiles: a batch being gathered (up to a batch and a run) and the
  // stacked copy the model gets.
  const double fixed = w * run + (2.0 * bs + max_run) * sample;
  // A worker starts a run while fewer than the window wait, so up to a run per worker more arrive.
  const double budget = mem_budget_mb * 1024 * 1024;
  const double room = std::floor((budget - fixed) / sample) - max_run * w;
  const double need_mb = (fixed + (bs + max_run * w) * sample) / (1024 * 1024);
  MEDFM_CHECK_T(ConfigError, room >= static_cast<double>(bs), "slides: mem_budget ", mem_budget_mb,
                " MiB cannot hold a batch of ", bs, " tiles with ", w, " readers; at least ", std::ceil(need_mb),
                " MiB (or a smaller batch)");
  return static_cast<size_t>(room);
}

std::string slide_fingerprint(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  MEDFM_CHECK_T(IoError, !ec, "slides: cannot stat '", path, "'");
  std::ifstream f(path, std::ios::binary);
  MEDFM_CHECK_T(IoError, f.good(), "slides: cannot open '", path, "'");
  const uint64_t mib = 1 << 20;
  std::string buf = std::to_string(size) + ":";
  std::string head(std::min<uint64_t>(size, mib), '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  buf += head;
  if (size > mib) {
    std::string tail(std::min<uint64_t>(size - head.size(), mib), '\0');
    f.seekg(static_cast<std::streamoff>(size - tail.size()));
    f.read(tail.data(), static_cast<std::streamsize>(tail.size()));
    buf += tail;
  }
  MEDFM_CHECK_T(IoError, f.good(), "slides: cannot read '", path, "'");
  return sha256_bytes(buf.data(), buf.size());
}

void SlideEmbedJob::bind(Config& cfg) {
  cfg.bind("slides.paths", slides, "slide files");
  cfg.bind("slides.list", slide_list, "CSV with a `path` column");
  cfg.bind("slides.out", out_dir, "output folder");
  cfg.bind("slides.coords", coords_dir, "folder of coords files (medfm tile / TRIDENT) to embed");
  cfg.bind("slides.shard", shard, "i/n (empty: RANK/WORLD_SIZE, else all)");
  cfg.bind("slides.mem_budget", mem_budget_mb, "MiB for tiles between readers and model (0: four batches)");
  cfg.bind("slides.keep_going", keep_going, "record a bad slide and go on");
  cfg.bind("slides.stain", stain, "stain normalisation: macenko | reinhard (empty: none)");
  cfg.bind("slides.stain_reference", stain_reference, "reference image for the stain normalisation");
  bind_tiling(cfg, tissue, tiling);  // the same tile.* / tissue.* keys as `medfm tile`
}

std::vector<std::string> SlideEmbedJob::slide_paths() const {
  std::vector<std::string> all = slides;
  if (!slide_list.empty()) {
    auto in = list_inputs(slide_list);
    all.insert(all.end(), in.paths.begin(), in.paths.end());
  }
  MEDFM_CHECK_T(ConfigError, !all.empty(), "slides: no slides given");
  const auto [i, n] = parse_shard(shard);
  std::vector<std::string> mine;
  for (size_t k = 0; k < all.size(); ++k)
    if (static_cast<int>(k % n) == i) mine.push_back(all[k]);
  return mine;
}

std::vector<SlideEmbedResult> SlideEmbedJob::run(models::LoadedBackbone& model, c10::Device device,
                                                 const std::map<std::string, std::string>& attrs,
                                                 const std::function<void(size_t, size_t, const SlideEmbedResult&)>& progress) {
  MEDFM_CHECK_T(ConfigError, !out_dir.empty(), "slides: no output folder given (slides.out)");
  const auto paths = slide_paths();
  prepare_slide_outputs(paths, out_dir, "slides");
  const io::ReadOptions ro = read.options();
  // What a complete output of this run carries (a re-run with another model or tiling redoes it).
  std::map<std::string, std::string> want{{"model", model.provenance.at("model")},
                                          {"preprocess", model.provenance.at("preprocess")},
                                          {"precision", model.provenance.at("precision")}};
  if (model.provenance.count("weights_sha256")) want["weights_sha256"] = model.provenance.at("weights_sha256");
  want["tiling"] = coords_dir.empty() ? nlohmann::json{{"mpp", tiling.target_mpp}, {"tile", tiling.tile},
                                                        {"overlap", tiling.overlap}, {"min_tissue", tiling.min_tissue},
                                                        {"tissue_method", tissue.effective_method()},
                                                        {"tissue_model", tissue.model.empty() ? "" : sha256_file(tissue.model)}}
                                            .dump()
                                      : "coords:" + fs::absolute(coords_dir).string();
  std::string stain_record;
  const StainNorm norm = make_stain_norm(stain, stain_reference, &stain_record);
  if (!stain_record.empty()) want["stain_normalisation"] = stain_record;
  std::vector<SlideEmbedResult> results;
  for (size_t k = 0; k < paths.size(); ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    SlideEmbedResult r;
    r.slide = paths[k];
    r.name = slide_name(paths[k]);
    const std::string out = (fs::path(out_dir) / (r.name + ".h5")).string();
    std::exception_ptr failure;
    try {
      if (auto done = complete_tiles(out, want)) {
        r.status = "skipped-complete";
        r.n_tiles = *done;
      } else {
        std::shared_ptr<io::Slide> slide = io::open_slide(paths[k], ro);
        data::TileGrid grid;
        const auto tt = std::chrono::steady_clock::now();
        if (!coords_dir.empty()) {
          grid = read_coords((fs::path(coords_dir) / (r.name + ".h5")).string());
        } else {
          grid = data::make_tile_grid(*slide, data::detect_tissue(*slide, tissue), tiling);
        }
        r.tissue_seconds = since(tt);
        r.n_tiles = static_cast<int64_t>(grid.coords.size());
        auto a = attrs;
        a.insert(model.provenance.begin(), model.provenance.end());
        a.insert(want.begin(), want.end());
        a["slide"] = paths[k];
        a["slide_size"] = std::to_string(fs::file_size(paths[k]));
        a["slide_fingerprint"] = slide_fingerprint(paths[k]);
        a["slide_mpp_source"] = slide->mpp_source();
        a["n_tiles"] = std::to_string(grid.coords.size());
        if (grid.coords.empty()) {  // no tissue: features [0, D] beside coords [0, 2]
          c10::InferenceMode guard;
          model.backbone->to(device);
          const int s = model.preprocess.input_size;
          const int64_t dim = model.backbone->embed(torch::zeros({1, 3, s, s}).to(device)).size(1);
          FeatureWriter w(out, dim);
          w.set_write_ids(false);
          w.set_coords(grid, r.name, out_dir);
          for (const auto& [key, v] : a) w.set_attr(key, v);
          w.commit();
        } else {
          SlideTileSource source(slide, grid, model.preprocess, norm);
          EmbedOptions o;
          o.out_path = out;
          o.batch_size = batch_size;
          o.workers = workers;
          o.prefetch_samples = prefetch_tiles(mem_budget_mb, *slide, grid, model.preprocess.input_size, batch_size, workers);
          o.device = device;
          o.attrs = a;
          o.coords = grid;
          o.coords_name = r.name;
          auto st = embed_source(*model.backbone, source, o);
          r.load_seconds = st.load_seconds;
          r.model_seconds = st.model_seconds;
          r.write_seconds = st.write_seconds;
        }
        r.status = "ok";
      }
    } catch (const Error& e) {
      r.status = "failed";
      r.error = e.what();
      failure = std::current_exception();
    }
    r.seconds = since(t0);
    r.peak_rss_mb = peak_rss_mb();
    append_manifest(out_dir, r);  // the failure is on record before it stops the run
    if (failure && !keep_going) std::rethrow_exception(failure);
    results.push_back(r);
    if (progress) progress(k + 1, paths.size(), r);
  }
  return results;
}

SlideDemo slide_demo(models::LoadedBackbone& model, const std::string& slide, const std::string& out_dir,
                     c10::Device device, const std::map<std::string, std::string>& attrs) {
  const auto t0 = std::chrono::steady_clock::now();
  MEDFM_CHECK_T(IoError, fs::is_regular_file(slide), "demo: the sample slide '", slide,
                "' is missing (run scripts/fetch_data.sh)");
  const std::string name = slide_name(slide);
  TileJob tile;
  tile.slides = {slide};
  tile.out_dir = (fs::path(out_dir) / "tiles").string();
  tile.run(attrs);
  SlideEmbedJob embed;
  embed.slides = {slide};
  embed.out_dir = out_dir;
  embed.coords_dir = tile.out_dir;
  auto r = embed.run(model, device, attrs);
  SlideDemo d;
  d.coords = (fs::path(tile.out_dir) / (name + ".h5")).string();
  d.thumbnail = (fs::path(tile.out_dir) / (name + ".jpg")).string();
  d.features = (fs::path(out_dir) / (name + ".h5")).string();
  d.heatmap = (fs::path(out_dir) / (name + "_heatmap.png")).string();
  d.n_tiles = r.at(0).n_tiles;
  auto scores = read_tile_scores(d.features, "features:0");
  auto s = io::open_slide(slide);
  io::write_png(d.heatmap, data::render_heatmap(*s, scores.coords, scores.scores, scores.tile_level0));
  d.seconds = since(t0);
  return d;
}

}  // namespace medfm::extract

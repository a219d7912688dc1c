#include "medfm/extract/demo.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "medfm/core/atomic_file.h"
#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/rng.h"
#include "medfm/data/volume_transforms.h"
#include "medfm/extract/embed.h"
#include "medfm/extract/h5_feature_store.h"
#include "medfm/extract/pretrain.h"
#include "medfm/extract/probe.h"
#include "medfm/io/formats.h"
#include "medfm/io/image2d.h"

namespace medfm::extract {

namespace fs = std::filesystem;

BrodmannTask make_brodmann_task(const std::string& t1_path, const std::string& atlas_path, const std::string& out_dir, int per_area,
                                int patch, uint64_t seed) {
  MEDFM_CHECK_T(ConfigError, per_area >= 1 && patch >= 4 && patch % 2 == 0, "demo: per_area ", per_area, ", patch ", patch);
  auto t1 = data::reorient(io::open_image(t1_path), "RAS");
  auto lab = data::reorient(io::open_image(atlas_path), "RAS");
  MEDFM_CHECK(t1.size() == lab.size(), "demo: atlas '", atlas_path, "' is not on the grid of '", t1_path, "'");
  const auto a1 = t1.geometry.affine(), a2 = lab.geometry.affine();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      MEDFM_CHECK(std::abs(a1[r * 4 + c] - a2[r * 4 + c]) < 1e-3, "demo: atlas '", atlas_path, "' is not on the grid of '", t1_path, "'");
  auto img = t1.pixels[0].to(torch::kFloat).clamp(0, 255).to(torch::kUInt8).contiguous();  // [Z,Y,X]
  auto lbl = lab.pixels[0].to(torch::kInt).contiguous();
  const int64_t nz = img.size(0), ny = img.size(1), nx = img.size(2);
  // Voxel column of world x = 0 (RAS: i grows to the patient's left... right: x = i * sx + ox).
  const int64_t x0 = std::llround(-a1[3] / a1[0]);  // row-major 4x4
  const int h = patch / 2;
  auto padded = torch::constant_pad_nd(img, {h, h, h, h}, 0);  // [Z, Y+2h, X+2h]
  const int max_label = lbl.max().item<int>();
  std::vector<std::vector<std::array<int64_t, 3>>> left(max_label + 1), right(max_label + 1);
  auto acc = lbl.accessor<int, 3>();
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) {
        const int a = acc[k][j][i];
        if (a <= 0) continue;
        if (i < x0) left[a].push_back({i, j, k});
        else if (i > x0) right[a].push_back({i, j, k});
      }
  fs::create_directories(fs::path(out_dir) / "train");
  fs::create_directories(fs::path(out_dir) / "test");
  BrodmannTask t;
  std::ostringstream csv[2];
  for (auto& c : csv) c << "path,id,label\n";
  for (int a = 1; a <= max_label; ++a) {
    if (left[a].size() < 200 || right[a].size() < 200) continue;
    ++t.n_areas;
    for (int side = 0; side < 2; ++side) {
      auto& vox = side == 0 ? left[a] : right[a];
      Rng rng({seed, static_cast<uint64_t>(a), static_cast<uint64_t>(side)});
      const size_t take = std::min(vox.size(), static_cast<size_t>(per_area));
      rng.sample_front(vox, take);
      for (size_t n = 0; n < take; ++n) {
        const auto [i, j, k] = vox[n];
        // The axial patch centred on (i, j): rows from anterior (high y) at the top, columns x.
        auto p = padded[k].slice(0, j, j + patch).slice(1, i, i + patch).flip({0});  // [y, x] -> anterior first
        if (side == 1) p = p.flip({1});  // the right hemisphere mirrored into a left one
        char name[32];
        std::snprintf(name, sizeof name, "a%02d_%03zu", a, n);
        const std::string rel = std::string(side == 0 ? "train/" : "test/") + name + ".png";
        io::write_png((fs::path(out_dir) / rel).string(), p.unsqueeze(0).contiguous());
        csv[side] << rel << "," << name << "," << a << "\n";
        (side == 0 ? t.n_train : t.n_test) += 1;
      }
    }
  }
  MEDFM_CHECK(t.n_areas >= 2, "demo: the atlas '", atlas_path, "' has ", t.n_areas, " areas of 200 voxels per hemisphere");
  t.train_csv = (fs::path(out_dir) / "train.csv").string();
  t.test_csv = (fs::path(out_dir) / "test.csv").string();
  write_text_atomic(t.train_csv, csv[0].str());
  write_text_atomic(t.test_csv, csv[1].str());
  return t;
}

namespace {

const std::vector<std::string> kArch = {"patch_size=4", "depth=4", "embed_dim=128", "num_heads=4", "mlp_hidden=512", "img_size=32"};

// Raw pixels / 255 of each PNG in a task CSV, as a feature file with the label column.
void pixel_features(const std::string& csv_path, const std::string& out) {
  auto inputs = list_inputs(csv_path);
  std::vector<at::Tensor> rows;
  for (const auto& p : inputs.paths) rows.push_back(io::open_image(p).pixels.to(torch::kFloat).flatten() / 255.0);
  auto x = torch::stack(rows);
  FeatureWriter w(out, x.size(1));
  w.append(x, inputs.ids);
  for (size_t c = 0; c < inputs.extra_names.size(); ++c) w.set_column(inputs.extra_names[c], inputs.extra[c]);
  w.set_attr("model", "raw pixels");
  w.commit();
}

void embed_csv(models::LoadedBackbone& model, const std::string& csv, const std::string& out) {
  EmbedJob e;
  e.input = csv;
  e.out = out;
  e.run(model, c10::Device(c10::kCPU), {});
}

}  // namespace

DemoLearning run_demo_learning(const DemoLearningJob& job, const std::function<void(const std::string&)>& stage) {
  auto say = [&](const std::string& s) {
    if (stage) stage(s);
  };
  DemoLearning r;
  const fs::path out(job.out);
  fs::create_directories(out);
  say("Brodmann task from the Colin27 T1 and its atlas");
  r.task = make_brodmann_task((fs::path(job.mricron_dir) / "ch2.nii.gz").string(), (fs::path(job.mricron_dir) / "brodmann.nii.gz").string(),
                              (out / "task").string(), job.per_area, 32, job.seed);

  say("MAE pre-training of a small ViT on unlabelled patches of the volume");
  auto pj = PretrainJob::defaults("mae", "radiology");
  Config cfg;
  pj.bind(cfg);
  const std::string run_dir = (out / "mae_run").string();
  fs::remove_all(run_dir);
  for (const std::string& s : std::vector<std::string>{
           "model.name=vit_tiny_patch16_224", "model.overrides=" + nlohmann::json(kArch).dump(),
           "data.volumes=" + (fs::path(job.mricron_dir) / "ch2.nii.gz").string(), "data.volume_patch=48",
           "views.global_size=32", "mae.decoder_dim=128", "mae.decoder_depth=2", "mae.decoder_heads=4",
           "train.batch_size=64", "train.blr=1.5e-3", "train.warmup_steps=" + std::to_string(std::max<int64_t>(1, job.pretrain_steps / 8)),
           "train.max_steps=" + std::to_string(job.pretrain_steps), "train.checkpoint_every=0", "train.seed=" + std::to_string(job.seed),
           "out=" + run_dir})
    cfg.apply_set(s);  // writes through to pj's bound fields
  std::vector<double> losses;
  auto res = run_pretrain(pj, cfg.to_toml(), [&](const PretrainProgress& p) { losses.push_back(p.loss); });
  r.pretrain_seconds = res.seconds;
  r.pretrain_images_per_s = res.images_per_s;
  if (!losses.empty()) {
    r.pretrain_first_loss = losses.front();
    r.pretrain_last_loss = losses.back();
  }
  const std::string weights = (out / "mae.safetensors").string();
  export_backbone(run_dir, weights);

  say("features: raw pixels, random weights, pre-trained");
  struct Feat {
    std::string name, stem;
  };
  std::vector<Feat> feats = {{"raw pixels", "pixels"}, {"random weights", "random"}, {"mae pre-trained", "mae"}};
  pixel_features(r.task.train_csv, (out / "pixels.train.h5").string());
  pixel_features(r.task.test_csv, (out / "pixels.test.h5").string());
  {
    models::ModelSpec spec;
    spec.name = "vit_tiny_patch16_224";
    spec.overrides = kArch;
    spec.resize = 32;
    spec.crop = 32;
    auto random = models::load_backbone(spec);
    embed_csv(random, r.task.train_csv, (out / "random.train.h5").string());
    embed_csv(random, r.task.test_csv, (out / "random.test.h5").string());
    models::ModelSpec mae;
    mae.weights = weights;  // architecture and preprocessing from the file's metadata
    auto trained = models::load_backbone(mae);
    embed_csv(trained, r.task.train_csv, (out / "mae.train.h5").string());
    embed_csv(trained, r.task.test_csv, (out / "mae.test.h5").string());
  }

  say("linear and kNN probes");
  for (const auto& f : feats) {
    DemoRow row;
    row.features = f.name;
    for (const std::string method : {"linear", "knn"}) {
      ProbeJob p;
      p.train = (out / (f.stem + ".train.h5")).string();
      p.test = (out / (f.stem + ".test.h5")).string();
      p.method = method;
      p.seed = static_cast<int64_t>(job.seed);
      p.c_steps = 9;
      p.out = (out / ("probe_" + f.stem + "_" + method)).string();
      Config pc;
      p.bind(pc);
      auto s = run_probe(p, pc.to_toml());
      const double acc = s.metrics.front().second;  // accuracy first
      if (method == "linear") {
        auto rep = nlohmann::json::parse(std::ifstream(p.out + "/report.json"));
        row.linear = acc;
        row.linear_low = rep["metrics"]["accuracy"]["ci_low"];
        row.linear_high = rep["metrics"]["accuracy"]["ci_high"];
        row.report = p.out + "/report.md";
      } else {
        row.knn = acc;
      }
    }
    r.rows.push_back(row);
  }
  return r;
}

}  // namespace medfm::extract

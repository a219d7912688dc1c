// The pre-training pipeline end to end on small images: a DINO run, its export, and the exported
// file loaded without a model name giving the run's own backbone's features; the data sources.
#include "medfm/extract/pretrain.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/core/safetensors.h"
#include "medfm/data/transforms.h"
#include "medfm/io/image2d.h"
#include "medfm/ssl/dino_objective.h"
#include "medfm/train/checkpoint.h"
#include "medfm/train/objective.h"

namespace medfm::extract {
namespace {

namespace fs = std::filesystem;

std::string make_images(const std::string& name, int n) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  torch::manual_seed(11);
  for (int i = 0; i < n; ++i)
    io::write_png(dir + "/img" + std::to_string(i) + ".png", torch::randint(0, 256, {3, 40 + 7 * i, 48}, torch::kUInt8));
  return dir;
}

PretrainJob tiny_dino(const std::string& images, const std::string& out) {
  auto job = PretrainJob::defaults("dino", "pathology");
  job.out = out;
  fs::remove_all(out);
  job.model.name = "vit_tiny_patch16_224";
  job.model.overrides = {"depth=2", "patch_size=8"};
  job.data.images = {images};
  job.views.global_size = 32, job.views.local_size = 16, job.views.n_local = 2;
  job.dino.out_dim = 64, job.dino.hidden_dim = 32, job.dino.bottleneck_dim = 16;
  job.train.batch_size = 4, job.train.max_steps = 3, job.train.warmup_steps = 1;
  job.train.workers = 2;
  return job;
}

std::string toml_of(PretrainJob& job) {
  Config c;
  job.bind(c);
  return c.to_toml();
}

TEST(Pretrain, ExportLoadsWithoutModelNameAndGivesTheRunsFeatures) {
  const auto images = make_images("pt_images", 5);
  auto job = tiny_dino(images, ::testing::TempDir() + "/pt_run");
  auto res = run_pretrain(job, toml_of(job));
  EXPECT_EQ(res.steps_done, 3);
  EXPECT_TRUE(std::isfinite(res.last_loss));
  EXPECT_TRUE(fs::exists(job.out + "/loss.png"));
  EXPECT_TRUE(fs::exists(job.out + "/run.json"));
  std::ifstream m(job.out + "/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(m, l);) ++lines;
  EXPECT_EQ(lines, 3);

  const std::string file = ::testing::TempDir() + "/pt_export.safetensors";
  export_backbone(job.out, file);
  auto meta = SafeTensors::open(file).metadata();
  EXPECT_EQ(meta["medfm.model"], "vit_tiny_patch16_224");
  EXPECT_EQ(meta["medfm.method"], "dino");

  models::ModelSpec spec;  // no name: from the file's metadata
  spec.weights = file;
  auto loaded = models::load_backbone(spec);
  EXPECT_EQ(loaded.provenance["model"], "vit_tiny_patch16_224");
  EXPECT_EQ(loaded.preprocess.input_size, 32);
  EXPECT_EQ(loaded.report.missing.size(), 0u);

  // The run's own teacher backbone, rebuilt from the checkpoint.
  auto again = load_pretrain_job(job.out + "/config.toml");
  auto fresh = models::load_backbone(again.trained_model_spec());
  auto obj = make_objective(again, *models::vit_of(*fresh.backbone));
  train::load_objective_state(latest_checkpoint(job.out), *obj);
  auto teacher = obj->export_backbone();
  teacher->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 3, 32, 32});
  auto want = teacher->embed(x);
  auto got = loaded.backbone->embed(x);
  EXPECT_LT((want - got).abs().max().item<double>(), 1e-5);
  // The teacher is what was exported, not the student.
  auto* student = dynamic_cast<ssl::DinoObjective*>(obj.get());
  ASSERT_TRUE(student);
  EXPECT_GT((student->student()->backbone->embed(x) - got).abs().max().item<double>(), 1e-6);
}

TEST(Pretrain, ContinuedFromReleasedWeightsWithAFrozenWarmUp) {
  const auto images = make_images("pt_images_w", 3);
  // "Released" weights: a ViT-Ti (2 blocks, 8 px patches at 32 px) saved in timm's layout.
  models::ModelSpec base;
  base.name = "vit_tiny_patch16_224";
  base.overrides = {"depth=2", "patch_size=8", "img_size=32"};
  base.seed = 42;
  auto released = models::load_backbone(base);
  const std::string w = ::testing::TempDir() + "/pt_released.safetensors";
  models::save_vit_weights(*models::vit_of(*released.backbone), w);
  auto job = tiny_dino(images, ::testing::TempDir() + "/pt_run_w");
  job.model.weights = w;
  job.train.max_steps = 2;
  job.train.freeze_backbone_steps = 2;
  run_pretrain(job, toml_of(job));
  auto st = SafeTensors::open(latest_checkpoint(job.out));
  auto ref = SafeTensors::open(w);
  // The student's backbone is the released one untouched; its fresh head trained.
  for (const auto& e : ref.entries())
    EXPECT_TRUE(torch::equal(st.get("state.student.backbone." + e.name), ref.get(e.name))) << e.name;
  // DINOv2 from the same timm-layout file (no mask token in it): the token is added, fresh.
  auto d2 = tiny_dino(images, ::testing::TempDir() + "/pt_run_w2");
  d2.method = "dinov2";
  d2.model.weights = w;
  d2.train.max_steps = 1;
  EXPECT_NO_THROW(run_pretrain(d2, toml_of(d2)));
  EXPECT_TRUE(SafeTensors::open(latest_checkpoint(d2.out)).contains("state.student.backbone.mask_token"));
  // The head as the run initialised it (seeded by train.seed) moved.
  torch::manual_seed(static_cast<uint64_t>(job.train.seed));
  auto obj = make_objective(job, *models::vit_of(*released.backbone));
  auto* dino = dynamic_cast<ssl::DinoObjective*>(obj.get());
  ASSERT_TRUE(dino);
  const auto h0 = dino->student()->head->mlp->ptr<torch::nn::LinearImpl>(0)->weight;
  EXPECT_GT((st.get("state.student.head.mlp.0.weight") - h0).abs().max().item<double>(), 1e-6);
}

TEST(Pretrain, RefusesAnotherRunsDirectoryAndResumesOnlyWithACheckpoint) {
  const auto images = make_images("pt_images2", 3);
  auto job = tiny_dino(images, ::testing::TempDir() + "/pt_run2");
  job.train.max_steps = 2;
  run_pretrain(job, toml_of(job));
  EXPECT_THROW(run_pretrain(job, toml_of(job)), ConfigError);  // a run is there: needs resume
  auto empty = tiny_dino(images, ::testing::TempDir() + "/pt_run3");
  empty.resume = true;
  EXPECT_THROW(run_pretrain(empty, toml_of(empty)), ConfigError);  // nothing to resume
  auto bad = tiny_dino(images, ::testing::TempDir() + "/pt_run4");
  bad.train.accumulate = 3;  // does not divide 4
  EXPECT_THROW(run_pretrain(bad, toml_of(bad)), ConfigError);
  EXPECT_THROW(PretrainJob::defaults("byol", "natural"), ConfigError);
}

TEST(PretrainSources, VolumePatchesAndMixture) {
  const std::string ch2 = std::string(getenv("MEDFM_DATA") ? getenv("MEDFM_DATA") : std::string(getenv("HOME")) + "/.cache/medfm/data") +
                          "/mricron/ch2.nii.gz";
  ASSERT_TRUE(fs::exists(ch2)) << ch2;
  PretrainData d;
  d.volumes = {ch2};
  d.volume_patch = 48;
  auto vol = make_pretrain_source(d);
  // 181 x 217 x 181 voxels: slices with >= 10% foreground in three planes, fewer than all 579.
  EXPECT_GT(vol->size(), 300);
  EXPECT_LT(vol->size(), 181 + 217 + 181);
  Rng rng({1});
  auto p = vol->get(vol->size() / 2, rng);
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{1, 48, 48}));
  EXPECT_GE(p.min().item<double>(), 0.0);
  EXPECT_LE(p.max().item<double>(), 1.0);
  EXPECT_GT((p > 0.05).to(torch::kFloat).mean().item<double>(), 0.05);  // centred on the head, not air

  d.images = {make_images("pt_images3", 2)};
  d.weights = {1.0, 0.0};  // images only
  auto mix = make_pretrain_source(d);
  for (int i = 0; i < 10; ++i) {
    Rng r({2, static_cast<uint64_t>(i)});
    EXPECT_EQ(mix->get(i, r).size(0), 3);  // always an RGB image file, never a volume patch
  }
  d.weights = {1.0};
  EXPECT_THROW(make_pretrain_source(d), ConfigError);  // two kinds, one weight
}

TEST(PretrainSources, ImageCacheNeverChangesADraw) {
  // Three 3 MiB images and a 7 MiB cache: two fit, the third evicts the least recently used one.
  const std::string dir = ::testing::TempDir() + "/pt_cache";
  fs::remove_all(dir);
  fs::create_directories(dir);
  torch::manual_seed(12);
  for (int i = 0; i < 3; ++i)
    io::write_png(dir + "/big" + std::to_string(i) + ".png", torch::randint(0, 256, {3, 1024, 1024}, torch::kUInt8));
  PretrainData plain, cached;
  plain.images = cached.images = {dir};
  plain.image_cache_mb = 0;
  cached.image_cache_mb = 7;
  auto a = make_pretrain_source(plain), b = make_pretrain_source(cached);
  Rng r({3});
  for (int64_t i : {0, 1, 0, 2, 1, 0, 2, 2, 1}) {
    auto want = a->get(i, r);
    auto got = b->get(i, r);
    ASSERT_TRUE(torch::equal(want, got)) << "draw of image " << i;
    got.mul_(0.5);  // a caller writing into its image must not reach the cache
  }
  for (int64_t i : {2, 1, 0}) EXPECT_TRUE(torch::equal(a->get(i, r), b->get(i, r))) << "image " << i;
  cached.image_cache_mb = -1;
  EXPECT_THROW(make_pretrain_source(cached), ConfigError);
}

TEST(PretrainSources, ImagePatchesComeFromTheFieldOfView) {
  // A fundus-like 300 x 200 image: a bright disc of radius 90 on black, and a 20 x 20 image smaller
  // than the patch. Patches of 32 px are centred on the disc and never all background.
  const std::string dir = ::testing::TempDir() + "/pt_patch";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto yy = torch::arange(200, torch::kFloat).view({200, 1}), xx = torch::arange(300, torch::kFloat).view({1, 300});
  auto disc = ((yy - 100).pow(2) + (xx - 150).pow(2) <= 90 * 90).to(torch::kUInt8) * 200;
  io::write_png(dir + "/a_fundus.png", disc.unsqueeze(0).expand({3, 200, 300}).contiguous());
  io::write_png(dir + "/b_small.png", torch::full({3, 20, 20}, 180, torch::kUInt8));
  PretrainData d;
  d.images = {dir};
  auto whole = make_pretrain_source(d);
  Rng r0({4});
  EXPECT_EQ(whole->get(0, r0).sizes(), (std::vector<int64_t>{3, 200, 300}));
  d.image_patch = 32;
  auto src = make_pretrain_source(d);
  EXPECT_NE(src->describe().find("patches of 32 px"), std::string::npos) << src->describe();
  std::set<double> seen;
  for (uint64_t i = 0; i < 30; ++i) {
    Rng r({5, i}), again({5, i});
    auto p = src->get(0, r);
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{3, 32, 32}));
    EXPECT_TRUE(torch::equal(p, src->get(0, again))) << "draw " << i << " depends on more than (i, rng)";
    EXPECT_GE((p > 0.05).to(torch::kFloat).mean().item<double>(), 0.25) << "draw " << i << " is mostly background";
    seen.insert(p.sum().item<double>());
  }
  EXPECT_GT(seen.size(), 5u) << "patches from different places";
  Rng r1({6});
  auto small = src->get(1, r1);  // padded with background to 32 x 32
  EXPECT_EQ(small.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_NEAR((small > 0.05).to(torch::kFloat).mean().item<double>(), 400.0 / 1024.0, 1e-6);
  d.image_patch = -1;
  EXPECT_THROW(make_pretrain_source(d), ConfigError);
}

}  // namespace
}  // namespace medfm::extract

#include "medfm/core/config.h"

#include <gtest/gtest.h>

#include "medfm/core/error.h"

namespace medfm {
namespace {

struct Opts {
  int batch = 32;
  double lr = 0.1;
  bool flag = false;
  std::string name = "vit";
  std::vector<double> mean{0.5, 0.5, 0.5};
};

Config bound(Opts& o) {
  Config c;
  c.bind("embed.batch_size", o.batch);
  c.bind("train.lr", o.lr);
  c.bind("train.flag", o.flag);
  c.bind("model.name", o.name);
  c.bind("preprocess.mean", o.mean);
  return c;
}

TEST(Config, FileThenSetOverrides) {
  Opts o;
  auto c = bound(o);
  c.apply_toml("[embed]\nbatch_size = 8\n[train]\nlr = 1e-3\nflag = true\n", "test.toml");
  EXPECT_EQ(o.batch, 8);
  EXPECT_DOUBLE_EQ(o.lr, 1e-3);
  EXPECT_TRUE(o.flag);
  c.apply_set("embed.batch_size=64");
  c.apply_set("model.name=uni");  // bare word -> string
  c.apply_set("preprocess.mean=[0.1, 0.2, 0.3]");
  c.apply_set("train.lr=2");      // integer accepted for a float
  EXPECT_EQ(o.batch, 64);
  EXPECT_EQ(o.name, "uni");
  EXPECT_EQ(o.mean, (std::vector<double>{0.1, 0.2, 0.3}));
  EXPECT_DOUBLE_EQ(o.lr, 2.0);
}

TEST(Config, UnknownKeysAndWrongTypesNameTheKey) {
  Opts o;
  auto c = bound(o);
  try {
    c.apply_toml("[embed]\nbatch_sise = 8\n", "x.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'embed.batch_sise' in x.toml"), std::string::npos);
  }
  try {
    c.apply_set("embed.batch_size=lots");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'embed.batch_size' expects an integer"), std::string::npos);
  }
  EXPECT_THROW(c.apply_set("nokey"), ConfigError);
  EXPECT_THROW(c.apply_set("no.such=1"), ConfigError);
  EXPECT_THROW(c.apply_toml("x = [", "broken.toml"), ConfigError);
  EXPECT_THROW(c.apply_file("/nonexistent/cfg.toml"), ConfigError);
}

TEST(Config, ResolvedTomlRoundTrips) {
  Opts a;
  auto ca = bound(a);
  ca.apply_set("embed.batch_size=3");
  ca.apply_set("model.name=\"a \\\"quoted\\\" name\"");
  Opts b;
  auto cb = bound(b);
  cb.apply_toml(ca.to_toml(), "resolved");
  EXPECT_EQ(b.batch, 3);
  EXPECT_EQ(b.name, "a \"quoted\" name");
  EXPECT_EQ(b.mean, a.mean);
}

TEST(Config, TrainerTypesInt64AndLists) {
  int64_t steps = 10;
  std::vector<int64_t> milestones;
  std::vector<std::string> names{"a"};
  Config c;
  c.bind("train.max_steps", steps);
  c.bind("train.milestones", milestones);
  c.bind("data.images", names);
  c.apply_toml("[train]\nmax_steps = 5000000000\nmilestones = [10, 20]\n[data]\nimages = [\"x.csv\", \"y/\"]\n", "t");
  EXPECT_EQ(steps, 5000000000LL);
  EXPECT_EQ(milestones, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(names, (std::vector<std::string>{"x.csv", "y/"}));
  c.apply_set("data.images=p.csv,q.csv");
  EXPECT_EQ(names, (std::vector<std::string>{"p.csv", "q.csv"}));
  c.apply_set("train.milestones=[1, 2, 3]");
  EXPECT_EQ(milestones, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_THROW(c.apply_toml("[train]\nmilestones = [1.5]\n", "t"), ConfigError);
  EXPECT_THROW(c.apply_toml("[data]\nimages = [1]\n", "t"), ConfigError);
  EXPECT_THROW(c.apply_set("train.max_steps=many"), ConfigError);
  // Round trip through the resolved TOML.
  int64_t steps2 = 0;
  std::vector<int64_t> m2;
  std::vector<std::string> n2;
  Config d;
  d.bind("train.max_steps", steps2);
  d.bind("train.milestones", m2);
  d.bind("data.images", n2);
  d.apply_toml(c.to_toml(), "resolved");
  EXPECT_EQ(steps2, steps);
  EXPECT_EQ(m2, milestones);
  EXPECT_EQ(n2, names);
}

TEST(Config, ApplyValueReadsFlagTextByType) {
  Opts o;
  auto c = bound(o);
  c.apply_value("model.name", "1e5", "--model");  // a string stays verbatim, not a number
  EXPECT_EQ(o.name, "1e5");
  c.apply_value("embed.batch_size", "7", "--batch-size");
  EXPECT_EQ(o.batch, 7);
  c.apply_value("train.flag", "true", "--flag");
  EXPECT_TRUE(o.flag);
  c.apply_value("preprocess.mean", "0.1,0.2,0.3", "--mean");
  EXPECT_EQ(o.mean, (std::vector<double>{0.1, 0.2, 0.3}));
  try {
    c.apply_value("embed.batch_size", "lots", "--batch-size");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--batch-size"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(c.has("model.name"));
  EXPECT_FALSE(c.has("model.nope"));
}

}  // namespace
}  // namespace medfm

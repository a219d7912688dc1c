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

}  // namespace
}  // namespace medfm

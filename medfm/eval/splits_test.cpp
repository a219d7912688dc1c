#include "medfm/eval/splits.h"

#include <gtest/gtest.h>

#include <set>

#include "medfm/core/error.h"

namespace medfm::eval {
namespace {

TEST(Labels, ClassesSortedNumericallyUnlabelledLeftOut) {
  std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  std::map<std::string, std::vector<std::string>> cols = {{"label", {"10", "2", "", "2", "1"}}, {"pid", {"p1", "p1", "p2", "p3", "p3"}}};
  auto s = make_label_set(ids, cols, {"label", "pid", ""}, "test");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"1", "2", "10"}));
  EXPECT_EQ(s.y, (std::vector<int>{2, 1, 1, 0}));
  EXPECT_EQ(s.rows, (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(s.patient, (std::vector<std::string>{"p1", "p1", "p3", "p3"}));
  EXPECT_EQ(s.n_unlabelled, 1);
  EXPECT_THROW(make_label_set(ids, cols, {"grade", "", ""}, "test"), ConfigError);
  cols["split"] = {"train", "test", "val", "x", "train"};
  EXPECT_THROW(make_label_set(ids, cols, {"label", "", "split"}, "test"), Error);
  // Test classes map onto the training classes; an unseen class is an error.
  auto t = make_label_set({"x", "y"}, {{"label", {"2", "10"}}}, {}, "t");
  align_classes(s, t, "t");
  EXPECT_EQ(t.y, (std::vector<int>{1, 2}));
  auto u = make_label_set({"x", "y"}, {{"label", {"2", "7"}}}, {}, "u");
  EXPECT_THROW(align_classes(s, u, "u"), Error);
}

TEST(Splits, FoldsKeepPatientsWholeAndAreSeeded) {
  std::vector<int> y;
  std::vector<std::string> g;
  for (int p = 0; p < 30; ++p)
    for (int r = 0; r < 1 + p % 4; ++r) {
      y.push_back((p + r) % 3);
      g.push_back("P" + std::to_string(p));
    }
  auto f = stratified_group_kfold(y, g, 5, 1);
  EXPECT_EQ(f, stratified_group_kfold(y, g, 5, 1));
  EXPECT_NE(f, stratified_group_kfold(y, g, 5, 2));
  std::map<std::string, std::set<int>> folds_of;
  std::vector<int> size(5, 0);
  for (size_t i = 0; i < y.size(); ++i) {
    folds_of[g[i]].insert(f[i]);
    ++size[f[i]];
  }
  for (const auto& [p, s] : folds_of) EXPECT_EQ(s.size(), 1u) << p;
  for (int n : size) EXPECT_GT(n, 0);
  EXPECT_THROW(stratified_group_kfold(y, g, 31, 0), Error);  // 30 patients, 31 folds
  EXPECT_THROW(stratified_group_kfold(y, g, 1, 0), Error);
}

TEST(Splits, PatientOnBothSidesIsNamed) {
  std::vector<std::string> g = {"p1", "p2", "p3", "p2"}, ids = {"a", "b", "c", "d"};
  EXPECT_NO_THROW(check_disjoint({0, 1}, {2}, g, ids, "split"));
  try {
    check_disjoint({0, 1}, {2, 3}, g, ids, "split");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("patient 'p2'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'d'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace medfm::eval

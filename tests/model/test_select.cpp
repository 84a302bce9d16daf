// The arithmetic of `tlkit select` (tlkit/model/select.h): the epochs of each stage, the number of
// survivors, the final ordering and its scores.csv. References: the formulas of select.h worked
// by hand (E_s = max(E_{s-1} + 1, round(E_1 eta^(s-1))), n_{s+1} = max(1, floor(n_s / eta))).
#include <gtest/gtest.h>

#include <cmath>

#include "tlkit/model/select.h"

namespace tlkit::model {
namespace {

TEST(SelectStages, EpochsGrowByEta) {
  EXPECT_EQ(select_stage_epochs(1, 2.0, 4), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(select_stage_epochs(2, 2.0, 3), (std::vector<int>{2, 4, 8}));
  EXPECT_EQ(select_stage_epochs(1, 3.0, 3), (std::vector<int>{1, 3, 9}));
  // eta 1.5 from 1: round(1.5) = 2, round(2.25) = 2 -> 3 (at least one more), round(3.375) = 3
  // -> 4.
  EXPECT_EQ(select_stage_epochs(1, 1.5, 4), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(select_stage_epochs(3, 2.0, 1), (std::vector<int>{3}));
}

TEST(SelectStages, SurvivorsAreTheBestOneOverEta) {
  EXPECT_EQ(select_survivors(5, 2.0), 2u);
  EXPECT_EQ(select_survivors(4, 2.0), 2u);
  EXPECT_EQ(select_survivors(2, 2.0), 1u);
  EXPECT_EQ(select_survivors(1, 2.0), 1u);  // never none
  EXPECT_EQ(select_survivors(9, 3.0), 3u);
  EXPECT_EQ(select_survivors(8, 3.0), 2u);
  EXPECT_EQ(select_survivors(2, 3.0), 1u);
  EXPECT_EQ(select_survivors(7, 1.5), 4u);  // floor(4.67)
}

SelectModel model(const std::string& name, int metric_rank, std::vector<double> acc,
                  int eliminated_at) {
  SelectModel m;
  m.name = name;
  m.metric_rank = metric_rank;
  m.stage_acc = std::move(acc);
  m.stage_reached = static_cast<int>(m.stage_acc.size());
  m.eliminated_at = eliminated_at;
  return m;
}

TEST(SelectOrdering, SurvivorsByAccuracyThenEliminatedByStageThenMetric) {
  // a and b cut at stage 0 (a ranked above b by the metric), c and d out at stage 1 (d with
  // the better accuracy, c with the better metric rank: the metric orders them), e out at stage
  // 2, f the last survivor.
  const std::vector<SelectModel> ms = {
      model("a", 2, {}, 0),     model("b", 6, {}, 0),           model("c", 1, {60.0}, 1),
      model("d", 3, {70.0}, 1), model("e", 4, {80.0, 85.0}, 2), model("f", 5, {75.0, 90.0}, -1),
  };
  EXPECT_EQ(select_ordering(ms), (std::vector<std::string>{"f", "e", "c", "d", "a", "b"}));
}

TEST(SelectOrdering, BudgetCutModelsRankBeforeTheOnesEliminatedAtTheirStage) {
  // The budget stopped stage 2 after x: y reached stage 1 only, but was not eliminated there;
  // z was eliminated at stage 1 with a better accuracy than y's.
  const std::vector<SelectModel> ms = {
      model("x", 1, {50.0, 60.0}, -1),
      model("y", 2, {55.0}, -1),
      model("z", 3, {58.0}, 1),
  };
  EXPECT_EQ(select_ordering(ms), (std::vector<std::string>{"x", "y", "z"}));
}

TEST(SelectOrdering, SurvivorsWithEqualAccuraciesFallBackToTheMetric) {
  const std::vector<SelectModel> ms = {
      model("p", 3, {70.0}, -1),
      model("q", 2, {70.0}, -1),
      model("r", 1, {60.0}, -1),
  };
  EXPECT_EQ(select_ordering(ms), (std::vector<std::string>{"q", "p", "r"}));
}

TEST(SelectScoresCsv, DescendingScoresInTheOrderGiven) {
  EXPECT_EQ(select_scores_csv({"f", "e", "d"}),
            "model,metric,score\nf,select,3\ne,select,2\nd,select,1\n");
  EXPECT_EQ(select_scores_csv({}), "model,metric,score\n");
}

}  // namespace
}  // namespace tlkit::model

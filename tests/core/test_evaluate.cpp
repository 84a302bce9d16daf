// The evaluation of scores against accuracies (src/core/evaluate.cpp): the coefficients are
// those of correlation.h on the models in both inputs (checked against SciPy in
// test_correlation.cpp and tests/python/test_correlation.py); here the bookkeeping around them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "test_support.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/error.h"
#include "tlkit/core/evaluate.h"

namespace tlkit {
namespace {

const std::vector<std::pair<std::string, double>> kTruth = {
    {"a", 90.0}, {"b", 80.0}, {"c", 85.0}, {"d", 70.0}, {"e", 60.0}};

TEST(EvaluateScores, OrdersByWeightedTauAndUsesTheCorrelationsOnTheScoredModels) {
  const std::vector<MetricScores> scores = {
      {"reversed", {"a", "b", "c", "d", "e"}, {1, 3, 2, 4, 5}},
      {"perfect", {"e", "d", "c", "b", "a"}, {0.1, 0.2, 0.4, 0.3, 0.9}},
      {"partial", {"a", "d", "e"}, {3, 2, 1}}};
  const Evaluation ev = evaluate_scores(scores, kTruth);
  ASSERT_EQ(ev.metrics.size(), 3u);
  EXPECT_EQ(ev.metrics[0].name, "partial");  // tau 1 over 3 models, ties broken by name
  EXPECT_EQ(ev.metrics[1].name, "perfect");
  EXPECT_EQ(ev.metrics[2].name, "reversed");
  EXPECT_EQ(ev.metrics[1].weighted_tau,
            weighted_tau({0.1, 0.2, 0.4, 0.3, 0.9}, {60, 70, 85, 80, 90}));
  EXPECT_EQ(ev.metrics[2].kendall_tau, -1.0);
  EXPECT_EQ(ev.metrics[2].top1, 60.0 / 90.0);
  EXPECT_EQ(ev.metrics[2].top_models, std::vector<std::string>{"e"});
  EXPECT_EQ(ev.metrics[0].n_models, 3u);
  // The partial metric is noted (models it does not score) and so is its small zoo.
  bool missing = false, small = false;
  for (const std::string& n : ev.notes) {
    missing |= n.find(
                   "metric 'partial': evaluated on the 3 of 5 models in truth that it scores "
                   "(no score for b, c)") != std::string::npos;
    small |= n.rfind("only 3 models (metric partial)", 0) == 0;
  }
  EXPECT_TRUE(missing && small) << ::testing::PrintToString(ev.notes);
}

TEST(EvaluateScores, FormsZooLevelMetricsUnlessGiven) {
  const std::vector<MetricScores> comps = {{"etran_lda", {"a", "b", "c"}, {1.0, 0.0, 0.5}},
                                           {"etran_energy", {"a", "b", "c"}, {0.0, 1.0, 0.5}}};
  const Evaluation formed = evaluate_scores(comps, kTruth);
  ASSERT_EQ(formed.scores.size(), 3u);
  EXPECT_EQ(formed.scores[2].name, "etran");
  // 0.85 minmax(lda) + 0.15 minmax(energy), in truth order a, b, c.
  const std::vector<double> want = {0.85, 0.15, 0.5};
  ASSERT_EQ(formed.scores[2].scores.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(formed.scores[2].scores[i], want[i]);
  std::vector<MetricScores> given = comps;
  given.push_back({"etran", {"a", "b", "c"}, {7.0, 8.0, 9.0}});
  const Evaluation as_given = evaluate_scores(given, kTruth);
  ASSERT_EQ(as_given.scores.size(), 3u);  // not a second "etran"
  EXPECT_EQ(as_given.scores[2].scores, (std::vector<double>{7.0, 8.0, 9.0}));
}

TEST(EvaluateScores, RefusesBadInputNamingTheSources) {
  const EvaluationSources src{"s.csv", "t.csv"};
  EXPECT_NE(test::input_error_of([&] {
              evaluate_scores({{"m", {"a"}, {1.0}}}, kTruth, src);
            }).find("s.csv: metric 'm' has a score for only 1 model"),
            std::string::npos);
  EXPECT_NE(test::input_error_of([&] {
              evaluate_scores({{"m", {"a", "zz"}, {1.0, 2.0}}}, kTruth, src);
            }).find("s.csv: metric 'm': model 'zz' has no accuracy in t.csv"),
            std::string::npos);
  EXPECT_NE(test::input_error_of([&] {
              evaluate_scores({{"m", {"a", "b"}, {1.0, NAN}}}, kTruth, src);
            }).find("the score of model 'b' is nan"),
            std::string::npos);
  EXPECT_NE(test::input_error_of([&] {
              evaluate_scores({{"m", {"a", "b"}, {1.0, 2.0}}}, {{"a", 0.0}, {"b", -1.0}}, src);
            }).find("t.csv: the best accuracy of the models scored by metric 'm' is 0"),
            std::string::npos);
}

}  // namespace
}  // namespace tlkit

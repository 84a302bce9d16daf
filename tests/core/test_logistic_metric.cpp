// The logistic metric's iteration cap: reaching it is a note and converged: false, not an error,
// and the iterations taken are reported. Fixture: tests/data/metrics/tall
// (tools/make_metric_refs.py).
#include <gtest/gtest.h>

#include "test_support.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace tlkit {
namespace {

MetricValue logistic(const std::string& max_iterations) {
  const NpyArray f = load_npy(test::data_path("metrics/tall_features.npy"));
  const std::vector<std::int64_t> y = load_npy(test::data_path("metrics/tall_labels.npy")).labels();
  ScoreInputs in;
  in.features = f.features();
  in.labels = LabelView{y.data(), static_cast<std::int64_t>(y.size())};
  ScoreOptions opt;
  if (!max_iterations.empty()) opt.params.set("logistic", "max_iterations", max_iterations);
  return score(in, {"logistic"}, opt).metrics.at(0);
}

TEST(LogisticMetric, ReachingTheCapIsANoteNotAFailure) {
  const MetricValue v = logistic("3");
  EXPECT_FALSE(v.converged);
  EXPECT_EQ(v.details.at("iterations"), 3.0);
  ASSERT_EQ(v.notes.size(), 1u);
  EXPECT_NE(v.notes[0].find("not converged"), std::string::npos) << v.notes[0];
  EXPECT_NE(v.notes[0].find("--logistic-max-iterations 3"), std::string::npos) << v.notes[0];
  EXPECT_GE(v.score, 0.0);
  EXPECT_LE(v.score, 100.0);
}

TEST(LogisticMetric, TheDefaultCapConvergesAndReportsTheIterations) {
  const MetricValue v = logistic("");
  EXPECT_TRUE(v.converged);
  EXPECT_TRUE(v.notes.empty());
  const double iterations = v.details.at("iterations");
  EXPECT_GT(iterations, 3.0);
  EXPECT_LT(iterations, 10000.0);
  // Without a cap the same fit stops at the same iteration with the same accuracy.
  const MetricValue u = logistic("0");
  EXPECT_EQ(u.details.at("iterations"), iterations);
  EXPECT_EQ(u.score, v.score);
}

}  // namespace
}  // namespace tlkit

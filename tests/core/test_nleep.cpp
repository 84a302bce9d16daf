// Tests of NLEEP's stages (src/core/metrics_nleep.cpp) against scikit-learn run from the same
// k-means initialisation. tests/data/nleep/refs.json (tools/make_nleep_refs.py, provenance in
// tests/data/nleep/README.md) gives, for features of tests/data/metrics/: the rows sklearn's
// kmeans_plusplus picked as initial centres, the assignment sklearn's KMeans (Lloyd, tol 0) ends
// with, and the iterations, mean log-likelihood and LEEP of sklearn's GaussianMixture started from
// that assignment. With the same start, tlkit must reproduce each stage, not only land in
// NLEEP's bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/metric_context.h"
#include "core/nleep_internal.h"
#include "test_support.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace tlkit {
namespace {

using metrics::nleep_internal::nleep_fit;
using metrics::nleep_internal::NleepFit;
using test::near_rel;

const nlohmann::json& refs() {
  static const nlohmann::json r = test::load_json(test::data_path("nleep/refs.json"));
  return r;
}

struct Loaded {
  NpyArray features;
  std::vector<std::int64_t> labels;
  ScoreInputs in;
};

Loaded load(const std::string& name) {
  Loaded l;
  l.features = load_npy(test::data_path("metrics/" + name + "_features.npy"));
  l.labels = load_npy(test::data_path("metrics/" + name + "_labels.npy")).labels();
  l.in.features = l.features.features();
  l.in.labels = LabelView{l.labels.data(), static_cast<std::int64_t>(l.labels.size())};
  return l;
}

NleepFit fit_from(const nlohmann::json& ref, const Loaded& l, const std::string& log) {
  ScoreOptions opt;
  opt.params.set("nleep", "components_per_class",
                 std::to_string(ref.at("components_per_class").get<int>()));
  opt.params.set("nleep", "log", log);
  MetricContext ctx(l.in, opt);
  const std::vector<Eigen::Index> rows = ref.at("centre_rows").get<std::vector<Eigen::Index>>();
  return nleep_fit(ctx, &rows);
}

class NleepFromInit : public ::testing::TestWithParam<std::size_t> {};

// The tolerances: PCA by tlkit's eigendecomposition of the scatter instead of sklearn's SVD, and
// the EM in another summation order, leave differences of at most 4.2e-15 (relative) after the
// iterations; 1e-10 leaves room for another BLAS and is still ~1e8 times tighter than a change
// that matters (a doubled log-determinant moves the score by percents). The stopping rule's
// margin (em_margin, >= 2.2e-4 on every case) keeps the iteration counts exact.
TEST_P(NleepFromInit, EveryStageMatchesScikitLearn) {
  const nlohmann::json& ref = refs().at("cases").at(GetParam());
  const std::string what = ref.at("case").get<std::string>() + " random_state " +
                           std::to_string(ref.at("random_state").get<int>()) + " x" +
                           std::to_string(ref.at("components_per_class").get<int>());
  SCOPED_TRACE(what);
  const Loaded l = load(ref.at("case").get<std::string>());
  const NleepFit fit = fit_from(ref, l, "yes");

  EXPECT_EQ(fit.pca_dims, ref.at("pca_dims").get<std::int64_t>());
  EXPECT_EQ(fit.components, ref.at("components").get<int>());
  // k-means: the same fixed point from the same centres, sample by sample.
  const auto km = ref.at("kmeans_labels").get<std::vector<int>>();
  ASSERT_EQ(fit.kmeans_labels.size(), km.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < km.size(); ++i) differ += fit.kmeans_labels[i] != km[i];
  EXPECT_EQ(differ, 0u) << "samples assigned to another k-means cluster than sklearn's";
  // EM: iterations, convergence, the final mean log-likelihood (sklearn's lower_bound_).
  EXPECT_EQ(fit.gmm.iterations, ref.at("em_iterations").get<int>());
  EXPECT_EQ(fit.gmm.converged, ref.at("converged").get<bool>());
  EXPECT_TRUE(
      near_rel(fit.gmm.mean_log_likelihood, ref.at("mean_log_likelihood").get<double>(), 1e-10));
  // Posteriors are probabilities.
  for (Eigen::Index i = 0; i < fit.gmm.posteriors.rows(); ++i)
    ASSERT_NEAR(fit.gmm.posteriors.row(i).sum(), 1.0, 1e-12) << "row " << i;
  // LEEP of the posteriors, with and without the log.
  EXPECT_TRUE(near_rel(fit.score, ref.at("nleep").get<double>(), 1e-10));
  EXPECT_TRUE(near_rel(fit_from(ref, l, "no").score, ref.at("nleep_nolog").get<double>(), 1e-10));
}

INSTANTIATE_TEST_SUITE_P(Sklearn, NleepFromInit, ::testing::Range<std::size_t>(0, 11));

TEST(NleepFromInit, FixtureCoversEveryCase) {
  EXPECT_EQ(refs().at("cases").size(), 11u);  // keep Range above in step with the generator
}

// The metric is nleep_fit from k-means++ centres seeded by --seed (greedy by default).
TEST(NleepFromInit, MetricIsTheSeededFit) {
  const Loaded l = load("tall");
  ScoreOptions opt;
  opt.seed = 3;
  const MetricValue v = score(l.in, {"nleep"}, opt).metrics.at(0);
  MetricContext ctx(l.in, opt);
  const NleepFit fit = nleep_fit(ctx, nullptr);
  // score() may accumulate the scatter in another order: equal to rounding.
  EXPECT_TRUE(near_rel(v.score, fit.score, 1e-12));
  EXPECT_EQ(v.details.at("em_iterations"), fit.gmm.iterations);
  EXPECT_EQ(fit.centre_rows.size(), 25u);
  // k-means++ never picks a row twice while the others are at positive distance.
  std::vector<Eigen::Index> rows = fit.centre_rows;
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(std::adjacent_find(rows.begin(), rows.end()), rows.end());
  // Starting from those rows explicitly gives the same fit.
  const NleepFit again = nleep_fit(ctx, &fit.centre_rows);
  EXPECT_EQ(again.score, fit.score);
  EXPECT_EQ(again.kmeans_labels, fit.kmeans_labels);
  // --nleep-init random: one D^2 draw per centre, from the same first row.
  ScoreOptions random_opt = opt;
  random_opt.params.set("nleep", "init", "random");
  MetricContext random_ctx(l.in, random_opt);
  const NleepFit r = nleep_fit(random_ctx, nullptr);
  EXPECT_EQ(r.centre_rows.front(), fit.centre_rows.front());
  EXPECT_NE(r.centre_rows, fit.centre_rows);
  EXPECT_LE(r.score, 0.0);
}

// Greedy k-means++ against sklearn's kmeans_plusplus given the same draws: the generator runs
// sklearn with a RandomState whose randint() is `first_row` and whose uniform() reads
// `uniforms`; tlkit's seeding fed the same numbers must choose the same rows, in order.
TEST(NleepFromInit, GreedySeedingChoosesSklearnsRows) {
  const auto& seeding = refs().at("seeding");
  ASSERT_GE(seeding.size(), 5u);
  for (const auto& ref : seeding) {
    const std::string name = ref.at("case").get<std::string>();
    SCOPED_TRACE(name + " first row " + std::to_string(ref.at("first_row").get<int>()));
    const Loaded l = load(name);
    ScoreOptions opt;
    MetricContext ctx(l.in, opt);
    const metrics::nleep_internal::RowMatrix x = metrics::nleep_internal::pca_reduce(ctx, 0.8);
    ASSERT_EQ(x.cols(), ref.at("pca_dims").get<Eigen::Index>());
    const auto uniforms = ref.at("uniforms").get<std::vector<double>>();
    std::size_t used = 0;
    const auto rows = metrics::nleep_internal::kmeans_plusplus(
        x, ref.at("components").get<int>(), ref.at("first_row").get<Eigen::Index>(),
        [&] { return used < uniforms.size() ? uniforms[used++] : 0.5; });
    EXPECT_EQ(used, uniforms.size());  // 2 + floor(ln K) draws per centre after the first
    EXPECT_EQ(rows, ref.at("rows").get<std::vector<Eigen::Index>>());
  }
}

// PCA(0.8) keeps the fewest directions whose explained-variance ratio EXCEEDS 0.8, so an exact
// tie keeps one more (sklearn: searchsorted(cumsum, 0.8, side="right") + 1). Hand-worked: the
// points (+-2, 0) and (0, +-1), each twice, have mean 0 and scatter diag(16, 4), whose exact
// ratios are 0.8 and 0.2; sklearn PCA(n_components=0.8) keeps both directions.
TEST(NleepFromInit, PcaKeepsAnotherDirectionOnAnExactTie) {
  const std::vector<double> f = {2, 0, -2, 0, 0, 1, 0, -1, 2, 0, -2, 0, 0, 1, 0, -1};
  const std::vector<std::int64_t> y = {0, 0, 0, 0, 1, 1, 1, 1};
  ScoreInputs in;
  in.features = FeatureView::row_major(f.data(), 8, 2);
  in.labels = LabelView{y.data(), 8};
  ScoreOptions opt;
  MetricContext ctx(in, opt);
  EXPECT_EQ(metrics::nleep_internal::pca_reduce(ctx, 0.8).cols(), 2);
  EXPECT_EQ(metrics::nleep_internal::pca_reduce(ctx, 0.79).cols(), 1);
  EXPECT_EQ(metrics::nleep_internal::pca_reduce(ctx, 1.0).cols(), 2);
}

TEST(NleepFromInit, RejectsBadInitialCentres) {
  const Loaded l = load("binary");
  ScoreOptions opt;
  MetricContext ctx(l.in, opt);
  const std::vector<Eigen::Index> too_few = {0, 1, 2};
  EXPECT_THROW(nleep_fit(ctx, &too_few), InputError);
  std::vector<Eigen::Index> outside(10, 0);
  outside[9] = 60;
  EXPECT_THROW(nleep_fit(ctx, &outside), InputError);
}

}  // namespace
}  // namespace tlkit

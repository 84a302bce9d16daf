// Tests of the rank correlations (src/core/correlation.cpp): hand-worked cases with the working in
// the comments, SciPy 1.10 references (tests/data/correlation/refs.json, written by
// tools/correlation_refs.py), invariances, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"

namespace tlkit {
namespace {

using Vec = std::vector<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();

const nlohmann::json& refs() {
  static const nlohmann::json j = test::load_json(test::data_path("correlation/refs.json"));
  return j;
}

// A null reference (undefined coefficient) must come out as NaN; otherwise within `tol`.
void expect_ref(double got, const nlohmann::json& ref, double tol, const std::string& what) {
  if (ref.is_null()) {
    EXPECT_TRUE(std::isnan(got)) << what << ": got " << got << ", SciPy gives nan";
  } else {
    EXPECT_NEAR(got, ref.get<double>(), tol) << what;
  }
}

std::string message_of(void (*fn)()) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

// ---- weighted tau: hand-worked cases ----
//
// Notation: with rank r (0 = most important), w = 1/(r + 1); a pair {i, j} weighs w_i + w_j.
// tau_r = (C - D) / sqrt((W - T_x)(W - T_y)); weighted_tau = mean of tau by x's and by y's order.

TEST(WeightedTau, HandWorkedWithoutTies) {
  // x = [1, 2, 3], y = [1, 3, 2].
  // Order by x (largest first): #2 r=0 w=1, #1 r=1 w=1/2, #0 r=2 w=1/3.
  //   {0,1} concordant 1/3+1/2 = 5/6; {0,2} concordant 1/3+1 = 4/3; {1,2} discordant 1/2+1 = 3/2.
  //   W = 22/6, C - D = 5/6 + 8/6 - 9/6 = 4/6, tau = (4/6) / (22/6) = 2/11.
  // Order by y: #1 w=1, #2 w=1/2, #0 w=1/3: {0,1} C 4/3, {0,2} C 5/6, {1,2} D 3/2; again 2/11.
  const Vec x{1, 2, 3}, y{1, 3, 2};
  EXPECT_NEAR(weighted_tau_one_sided(x, y), 2.0 / 11, 1e-15);
  EXPECT_NEAR(weighted_tau_one_sided(y, x), 2.0 / 11, 1e-15);
  EXPECT_NEAR(weighted_tau(x, y), 2.0 / 11, 1e-15);  // SciPy: 0.18181818181818177
}

TEST(WeightedTau, HandWorkedTieInXIsBrokenByYForTheWeights) {
  // x = [2, 2, 1], y = [1, 3, 2]. #0 and #1 tie in x.
  // Order by (x, y): the x-tie goes to the larger y, so #1 r=0 w=1, #0 r=1 w=1/2, #2 r=2 w=1/3.
  //   {0,1} tied in x: T_x = 1/2 + 1 = 3/2.
  //   {0,2}: x 2 > 1, y 1 < 2, discordant, 1/2 + 1/3 = 5/6.
  //   {1,2}: x 2 > 1, y 3 > 2, concordant, 1 + 1/3 = 4/3.
  //   W = 22/6, tau = (8/6 - 5/6) / sqrt((22/6 - 9/6)(22/6)) = (1/2) / (sqrt(286)/6) = 3/sqrt(286).
  // Order by (y, x): #1 w=1, #2 w=1/2, #0 w=1/3.
  //   T_x = {0,1} = 1/3 + 1 = 8/6; D = {0,2} = 5/6; C = {1,2} = 9/6; W = 22/6.
  //   tau = (4/6) / sqrt((14/6)(22/6)) = 4/sqrt(308).
  // weighted_tau = (3/sqrt(286) + 4/sqrt(308)) / 2 = 0.2026574358580003 (SciPy: the same).
  const Vec x{2, 2, 1}, y{1, 3, 2};
  EXPECT_NEAR(weighted_tau_one_sided(x, y), 3 / std::sqrt(286.0), 1e-15);
  EXPECT_NEAR(weighted_tau_one_sided(y, x), 4 / std::sqrt(308.0), 1e-15);
  EXPECT_NEAR(weighted_tau(x, y), (3 / std::sqrt(286.0) + 4 / std::sqrt(308.0)) / 2, 1e-15);
  // Unweighted, the same data has one concordant and one discordant pair: Kendall's tau-b is 0.
  EXPECT_EQ(kendall_tau_b(x, y), 0.0);
}

TEST(WeightedTau, HandWorkedTieInXOnly) {
  // x = [1, 1, 2], y = [1, 2, 3]. Both orders give #2 w=1, #1 w=1/2, #0 w=1/3 (the x-tie goes to
  // the larger y). {0,1} tied in x: 5/6; {0,2} C 4/3; {1,2} C 3/2; W = 22/6, T_y = 0.
  // tau = (17/6) / sqrt((17/6)(22/6)) = sqrt(17/22) = 0.8790490729915326 (SciPy: the same).
  const Vec x{1, 1, 2}, y{1, 2, 3};
  EXPECT_NEAR(weighted_tau(x, y), std::sqrt(17.0 / 22), 1e-15);
  // Kendall tau-b: C = 2, D = 0, n0 = 3, n_x = 1, n_y = 0: 2 / sqrt(2 * 3).
  EXPECT_NEAR(kendall_tau_b(x, y), 2 / std::sqrt(6.0), 1e-15);
}

TEST(WeightedTau, JointTiesCountInBothTieTermsAndNeitherCOrD) {
  // x = [1, 1, 2], y = [5, 5, 7]: #0 and #1 tie in x and y (weights 1/3 and 1/2 by index).
  // {0,1}: T_x = T_y = 5/6; C = 4/3 + 3/2 = 17/6; W = 22/6.
  // tau = (17/6) / sqrt((17/6)(17/6)) = 1: a joint tie does not spoil perfect agreement.
  EXPECT_DOUBLE_EQ(weighted_tau({1, 1, 2}, {5, 5, 7}), 1.0);
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 1, 2}, {5, 5, 7}), 1.0);
}

TEST(WeightedTau, EmphasisesTheTopOfTheRanking) {
  // x = [1, 2, 3, 4]; weights by x: #3 1, #2 1/2, #1 1/3, #0 1/4; W = 3 (1 + 1/2 + 1/3 + 1/4)
  // = 25/4 (each element is in n - 1 = 3 pairs).
  // Swap the two best, y = [1, 2, 4, 3]: one discordant pair {2,3} of weight 1 + 1/2 = 3/2 in both
  // orders; tau = (W - 2 D) / W = (25/4 - 3) / (25/4) = 13/25.
  // Swap the two worst, y = [2, 1, 3, 4]: discordant {0,1} of weight 1/4 + 1/3 = 7/12 in both
  // orders; tau = (25/4 - 7/6) / (25/4) = 61/75.
  // Kendall's tau is 2/3 for both: it cannot tell where the mistake is.
  const Vec x{1, 2, 3, 4}, top_swapped{1, 2, 4, 3}, bottom_swapped{2, 1, 3, 4};
  EXPECT_NEAR(weighted_tau(x, top_swapped), 13.0 / 25, 1e-15);
  EXPECT_NEAR(weighted_tau(x, bottom_swapped), 61.0 / 75, 1e-15);
  EXPECT_NEAR(kendall_tau_b(x, top_swapped), 2.0 / 3, 1e-15);
  EXPECT_NEAR(kendall_tau_b(x, bottom_swapped), 2.0 / 3, 1e-15);
}

TEST(WeightedTau, ScipyDocstringExample) {
  // scipy.stats.weightedtau's docstring (SciPy 1.10): x = [12, 2, 1, 12, 2], y = [1, 4, 7, 1, 0]
  // gives -0.56694968153682723 (with ties in x, in y, and a joint tie (12, 1)).
  EXPECT_NEAR(weighted_tau({12, 2, 1, 12, 2}, {1, 4, 7, 1, 0}), -0.56694968153682723, 1e-15);
}

// ---- SciPy references ----

TEST(WeightedTau, MatchesScipyOnRandomVectorsWithAndWithoutTies) {
  ASSERT_EQ(refs()["scipy_version"], "1.10.1");
  int checked = 0;
  for (const auto& c : refs()["cases"]) {
    const Vec x = c["x"].get<Vec>(), y = c["y"].get<Vec>();
    const std::string name = c["name"];
    expect_ref(weighted_tau(x, y), c["weighted_tau"], 1e-12, name + " weighted_tau");
    expect_ref(weighted_tau_one_sided(x, y), c["weighted_tau_x_rank"], 1e-12, name + " by x");
    expect_ref(weighted_tau_one_sided(y, x), c["weighted_tau_y_rank"], 1e-12, name + " by y");
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST(Correlation, KendallSpearmanPearsonAndRanksMatchScipy) {
  for (const auto& c : refs()["cases"]) {
    const Vec x = c["x"].get<Vec>(), y = c["y"].get<Vec>();
    const std::string name = c["name"];
    expect_ref(kendall_tau_b(x, y), c["kendall_tau_b"], 1e-12, name + " kendall");
    expect_ref(spearman_rho(x, y), c["spearman"], 1e-12, name + " spearman");
    expect_ref(pearson_r(x, y), c["pearson"], 1e-12, name + " pearson");
    EXPECT_EQ(average_ranks(x), c["rank_x"].get<Vec>()) << name;  // halves are exact
  }
}

TEST(Correlation, TllibCifar10TableReproducesThePrintedWeightedTau) {
  // thuml/Transfer-Learning-Library examples/model_selection/README.md, "Model Ranking Benchmark
  // on CIFAR10" (provenance in tests/data/correlation/README.md): printed weighted tau, to 3
  // decimals, from scipy.stats.weightedtau(score, acc).
  const std::map<std::string, double> printed{
      {"HScore", 0.800}, {"LEEP", 0.638}, {"LogME", 0.785}, {"NCE", 0.714}};
  const CsvTable truth = read_csv_table(test::data_path("correlation/tllib_cifar10_truth.csv"));
  const CsvTable scores = read_csv_table(test::data_path("correlation/tllib_cifar10_scores.csv"));
  std::map<std::string, double> acc;
  for (std::size_t r = 0; r < truth.rows.size(); ++r)
    acc[truth.rows[r][truth.column("model")]] = truth.number(r, truth.column("accuracy"));
  ASSERT_EQ(acc.size(), 10u);
  std::map<std::string, std::pair<Vec, Vec>> by_metric;
  for (std::size_t r = 0; r < scores.rows.size(); ++r) {
    auto& [s, a] = by_metric[scores.rows[r][scores.column("metric")]];
    s.push_back(scores.number(r, scores.column("score")));
    a.push_back(acc.at(scores.rows[r][scores.column("model")]));
  }
  ASSERT_EQ(by_metric.size(), 4u);
  for (const auto& [metric, sa] : by_metric) {
    const double tau = weighted_tau(sa.first, sa.second);
    EXPECT_NEAR(tau, printed.at(metric), 0.0005) << metric;  // agrees to the printed 3 decimals
    const auto& ref = refs()["tllib_cifar10"][metric];
    EXPECT_NEAR(tau, ref["weighted_tau"].get<double>(), 1e-12) << metric;
    EXPECT_NEAR(kendall_tau_b(sa.first, sa.second), ref["kendall_tau_b"].get<double>(), 1e-12);
    EXPECT_NEAR(spearman_rho(sa.first, sa.second), ref["spearman"].get<double>(), 1e-12);
    EXPECT_NEAR(pearson_r(sa.first, sa.second), ref["pearson"].get<double>(), 1e-12);
  }
}

// ---- invariances ----

TEST(WeightedTau, IsSymmetricBitForBit) {
  for (const auto& c : refs()["cases"]) {
    const Vec x = c["x"].get<Vec>(), y = c["y"].get<Vec>();
    const double xy = weighted_tau(x, y), yx = weighted_tau(y, x);
    if (std::isnan(xy)) {
      EXPECT_TRUE(std::isnan(yx));
    } else {
      EXPECT_EQ(xy, yx) << c["name"];
      EXPECT_EQ(kendall_tau_b(x, y), kendall_tau_b(y, x)) << c["name"];
      EXPECT_NEAR(spearman_rho(x, y), spearman_rho(y, x), 1e-15) << c["name"];
    }
  }
  // The one-sided version is not symmetric (hand-worked case above): 3/sqrt(286) vs 4/sqrt(308).
  EXPECT_NE(weighted_tau_one_sided({2, 2, 1}, {1, 3, 2}),
            weighted_tau_one_sided({1, 3, 2}, {2, 2, 1}));
}

TEST(WeightedTau, InvariantUnderStrictlyIncreasingTransforms) {
  // Only comparisons enter the rank correlations, so order-preserving transforms (which also keep
  // ties as ties) change nothing, bit for bit.
  for (const auto& c : refs()["cases"]) {
    const Vec x = c["x"].get<Vec>(), y = c["y"].get<Vec>();
    if (std::isnan(weighted_tau(x, y))) continue;
    Vec fx(x.size()), gy(y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      fx[i] = std::atan(x[i] / 7) * 5 - 3;  // strictly increasing, squashes the range
      gy[i] = y[i] * y[i] * y[i] + 2 * y[i];
    }
    bool order_kept = true;  // guard against rounding creating a tie
    for (std::size_t i = 0; i < x.size(); ++i)
      for (std::size_t j = 0; j < x.size(); ++j)
        order_kept =
            order_kept && ((x[i] < x[j]) == (fx[i] < fx[j])) && ((y[i] < y[j]) == (gy[i] < gy[j]));
    if (!order_kept) continue;
    EXPECT_EQ(weighted_tau(fx, gy), weighted_tau(x, y)) << c["name"];
    EXPECT_EQ(kendall_tau_b(fx, gy), kendall_tau_b(x, y)) << c["name"];
    EXPECT_EQ(spearman_rho(fx, gy), spearman_rho(x, y)) << c["name"];
  }
  // Infinities only have an order: the same as any finite values in the same order.
  EXPECT_EQ(weighted_tau({-kInf, 1, kInf, 2}, {1, 2, 3, 4}),
            weighted_tau({-5, 1, 9, 2}, {1, 2, 3, 4}));
}

TEST(WeightedTau, ReversingBothRankingsMovesTheEmphasisToTheOtherEnd) {
  // Kendall is unchanged when both x and y are negated; weighted tau is not, because the models
  // that were last become the important ones: top-swapped (13/25) becomes bottom-swapped (61/75).
  const Vec x{1, 2, 3, 4}, y{1, 2, 4, 3};
  const Vec nx{-1, -2, -3, -4}, ny{-1, -2, -4, -3};
  EXPECT_NEAR(weighted_tau(nx, ny), 61.0 / 75, 1e-15);
  EXPECT_EQ(kendall_tau_b(nx, ny), kendall_tau_b(x, y));
  // Negating one side negates Kendall and the one-sided taus with the same importance order.
  EXPECT_EQ(kendall_tau_b(x, ny), -kendall_tau_b(x, y));
}

TEST(Correlation, PerfectAgreementAndReversal) {
  const Vec x{0.3, -1.2, 2.5, 0.0, 7.0, 1.1};
  Vec rev(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) rev[i] = -2 * x[i] + 1;
  for (auto fn : {weighted_tau, kendall_tau_b, spearman_rho, pearson_r}) {
    EXPECT_NEAR(fn(x, x), 1.0, 1e-15);
    EXPECT_NEAR(fn(x, rev), -1.0, 1e-15);
  }
}

// ---- Kendall, Spearman, Pearson, ranks, top-1: hand-worked ----

TEST(Correlation, HandWorkedKendallSpearmanPearson) {
  // Kendall: x = [1, 2, 3, 4], y = [1, 3, 2, 4]: 6 pairs, only {1,2} discordant: (5 - 1)/6.
  EXPECT_NEAR(kendall_tau_b({1, 2, 3, 4}, {1, 3, 2, 4}), 2.0 / 3, 1e-15);
  // Spearman with a tie: x = [1, 2, 2, 3] has ranks [1, 2.5, 2.5, 4], y = [1, 2, 3, 4].
  // Centred: dx = [-1.5, 0, 0, 1.5], dy = [-1.5, -0.5, 0.5, 1.5]; <dx,dy> = 4.5, |dx|^2 = 4.5,
  // |dy|^2 = 5: rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
  EXPECT_EQ(average_ranks({1, 2, 2, 3}), (Vec{1, 2.5, 2.5, 4}));
  EXPECT_NEAR(spearman_rho({1, 2, 2, 3}, {1, 2, 3, 4}), std::sqrt(0.9), 1e-15);
  // Pearson: x = [1, 2, 3], y = [1, 2, 4]: dx = [-1, 0, 1], dy = [-4/3, -1/3, 5/3];
  // <dx,dy> = 3, |dx|^2 = 2, |dy|^2 = 42/9: r = 3 / sqrt(84/9) = 9 / sqrt(84).
  EXPECT_NEAR(pearson_r({1, 2, 3}, {1, 2, 4}), 9 / std::sqrt(84.0), 1e-15);
  // n = 2: exactly +-1, as SciPy.
  EXPECT_EQ(pearson_r({1, 2}, {5, 3}), -1.0);
  EXPECT_EQ(spearman_rho({1, 2}, {3, 5}), 1.0);
  // Values near 1e200 do not overflow the norms.
  EXPECT_NEAR(pearson_r({1e200, 2e200, 3e200}, {1e200, 2e200, 4e200}), 9 / std::sqrt(84.0), 1e-14);
}

TEST(Top1, RelativeAccuracyOfTheTopScoredModel) {
  // Scores pick #1 (0.9), whose accuracy is 70; the best accuracy is 90: 70/90.
  EXPECT_NEAR(top1_relative_accuracy({0.3, 0.9, 0.5}, {80, 70, 90}), 70.0 / 90, 1e-15);
  // Picking the best model gives exactly 1.
  EXPECT_EQ(top1_relative_accuracy({0.3, 0.1, 0.5}, {80, 70, 90}), 1.0);
  // #0 and #1 tie for the top score: the mean of their accuracies, (80 + 60) / 2 = 70, over 90.
  EXPECT_NEAR(top1_relative_accuracy({0.9, 0.9, 0.1}, {80, 60, 90}), 70.0 / 90, 1e-15);
  EXPECT_EQ(top_indices({0.9, 0.2, 0.9, -kInf}), (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(top_indices({-kInf, kInf, 3}), (std::vector<std::size_t>{1}));
  // Invariant under scaling the accuracies (percent or fraction).
  EXPECT_NEAR(top1_relative_accuracy({0.3, 0.9, 0.5}, {0.8, 0.7, 0.9}), 70.0 / 90, 1e-15);
}

// ---- undefined and bad inputs ----

TEST(Correlation, ConstantInputGivesNaNNotAnException) {
  const Vec c{2, 2, 2, 2}, v{1, 3, 2, 4};
  for (auto fn : {weighted_tau, weighted_tau_one_sided, kendall_tau_b, spearman_rho, pearson_r}) {
    EXPECT_TRUE(std::isnan(fn(c, v)));
    EXPECT_TRUE(std::isnan(fn(v, c)));
  }
  // A constant score still has a top-1 (all models tie): the mean accuracy over the best.
  EXPECT_NEAR(top1_relative_accuracy(c, {1, 2, 3, 4}), 2.5 / 4, 1e-15);
}

TEST(Correlation, BadInputsThrowInputErrorNamingTheArgument) {
  EXPECT_EQ(message_of([] {
              weighted_tau({1, 2, 3}, {1, 2});
            }),
            "weighted_tau: x has 3 values but y has 2 (they must be paired)");
  EXPECT_EQ(message_of([] { kendall_tau_b({1}, {1}); }),
            "kendall_tau_b: need at least 2 paired values, got 1");
  EXPECT_EQ(message_of([] { spearman_rho({}, {}); }),
            "spearman_rho: need at least 2 paired values, got 0");
  EXPECT_EQ(message_of([] {
              weighted_tau({1, 2, 3}, {1, std::nan(""), 3});
            }),
            "weighted_tau: y[1] is NaN");
  EXPECT_EQ(message_of([] {
              pearson_r({1, kInf, 3}, {1, 2, 3});
            }),
            "pearson_r: x[1] is inf (must be finite)");
  EXPECT_EQ(message_of([] { average_ranks({1, std::nan("")}); }), "average_ranks: x[1] is NaN");
  EXPECT_EQ(message_of([] {
              top1_relative_accuracy({1, 2}, {0, -1});
            }),
            "top1_relative_accuracy: the largest truth is 0; it must be positive (accuracies)");
  EXPECT_EQ(message_of([] {
              top1_relative_accuracy({1, 2}, {1, 2, 3});
            }),
            "top1_relative_accuracy: scores has 2 values but truth has 3 (they must be paired)");
  EXPECT_EQ(message_of([] { top1_relative_accuracy({1}, {1}); }),
            "top1_relative_accuracy: need at least 2 models, got 1");
  EXPECT_EQ(message_of([] {
              top1_relative_accuracy({1, 2}, {1, kInf});
            }),
            "top1_relative_accuracy: truth[1] is inf (must be finite)");
  EXPECT_EQ(message_of([] { top_indices({}); }), "top_indices: scores is empty");
  // InputError is a std::invalid_argument (CLI exit code 2).
  EXPECT_THROW(weighted_tau_one_sided({1, 2}, {std::nan(""), 1}), std::invalid_argument);
}

TEST(WeightedTau, LargeZooWithHeavyTiesStaysInRange) {
  // n = 1000 with heavy ties: the result stays in [-1, 1] and perfect agreement is 1 (to rounding:
  // C and W - T_x are sums of the same pair weights in different orders).
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> d(0, 20);
  Vec x(1000), y(1000);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = d(rng);
    y[i] = x[i] + d(rng) % 3;
  }
  const double tau = weighted_tau(x, y);
  EXPECT_GT(tau, 0.5);
  EXPECT_LE(tau, 1.0);
  EXPECT_NEAR(weighted_tau(x, x), 1.0, 1e-14);
}

}  // namespace
}  // namespace tlkit

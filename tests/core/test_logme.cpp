// Tests of LogME (src/core/logme.cpp).
//
// Reference values: tests/data/logme/refs.json, produced by tools/make_logme_refs.py from the
// independent NumPy implementations in tools/logme_numpy.py (thuml: a reimplementation of
// thuml/LogME's LogME.fit algorithm with np.linalg.svd; icml: of TLlib's log_maximum_evidence;
// exact: the evidence evaluated from its definition with slogdet/solve and maximised with
// scipy.optimize). See tests/data/logme/README.md.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "core/linalg.h"
#include "test_support.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

using test::near_rel;

struct Case {
  NpyArray features;
  std::vector<std::int64_t> labels;
  std::vector<double> targets;
  std::int64_t k = 0;
  bool regression = false;
  nlohmann::json ref;
};

Case load_case(const std::string& name) {
  static const nlohmann::json refs = test::load_json(test::data_path("logme/refs.json"));
  Case c;
  c.ref = refs.at(name);
  c.regression = c.ref.at("regression").get<bool>();
  c.features = load_npy(test::data_path("logme/" + name + "_features.npy"));
  if (c.regression) {
    c.targets = load_npy(test::data_path("logme/" + name + "_targets.npy")).targets(&c.k);
  } else {
    c.labels = load_npy(test::data_path("logme/" + name + "_labels.npy")).labels();
  }
  return c;
}

LogmeResult run(const Case& c, LogmeMode mode) {
  LogmeOptions opt;
  opt.mode = mode;
  const FeatureView f = c.features.features();
  if (c.regression) return logme(f, TargetView{c.targets.data(), f.rows, c.k, c.k, 1}, opt);
  return logme(f, LabelView{c.labels.data(), f.rows}, opt);
}

// Score and per-target evidence to `rtol`; alpha and beta, where the reference's are finite, to
// `param_rtol` (null in the reference means +inf: a supremum at a limit).
void expect_matches(const LogmeResult& r, const nlohmann::json& ref, double rtol,
                    double param_rtol) {
  EXPECT_TRUE(near_rel(r.score, ref.at("score").get<double>(), rtol));
  const auto& pt = ref.at("per_target");
  ASSERT_EQ(r.per_target.size(), pt.size());
  ASSERT_EQ(r.alpha.size(), pt.size());
  ASSERT_EQ(r.beta.size(), pt.size());
  for (std::size_t i = 0; i < pt.size(); ++i) {
    EXPECT_TRUE(near_rel(r.per_target[i], pt[i].get<double>(), rtol)) << "target " << i;
    const auto& a = ref.at("alpha")[i];
    const auto& b = ref.at("beta")[i];
    if (a.is_null()) {
      EXPECT_TRUE(std::isinf(r.alpha[i])) << "target " << i;
    } else {
      EXPECT_TRUE(near_rel(r.alpha[i], a.get<double>(), param_rtol))
          << "alpha, target " << i << ": " << r.alpha[i] << " vs " << a.get<double>();
    }
    if (b.is_null()) {
      EXPECT_TRUE(std::isinf(r.beta[i])) << "target " << i;
    } else {
      EXPECT_TRUE(near_rel(r.beta[i], b.get<double>(), param_rtol))
          << "beta, target " << i << ": " << r.beta[i] << " vs " << b.get<double>();
    }
  }
}

class LogmeReference : public ::testing::TestWithParam<std::string> {};

// thuml mode reproduces the reference fixed-point code to 1e-8 relative (the bar).
TEST_P(LogmeReference, ThumlMatchesReimplementationOfThumlLogME) {
  const Case c = load_case(GetParam());
  const LogmeResult r = run(c, LogmeMode::kThuml);
  expect_matches(r, c.ref.at("thuml"), 1e-8, 1e-8);
}

// alpha and beta too: the largest difference is 7.6e-9 (relative), `wide`'s beta of ~57000, where
// the iteration stops on a flat evidence; elsewhere it is below 1e-13.
TEST_P(LogmeReference, IcmlMatchesReimplementationOfTLlib) {
  const Case c = load_case(GetParam());
  expect_matches(run(c, LogmeMode::kIcml), c.ref.at("icml"), 1e-8, 5e-8);
}

// The exact mode is checked against an optimiser on the definition; the optimiser's own accuracy
// (xatol 1e-12 in ln t, a stationary point) makes 1e-9 a safe bound on the evidence. The
// maximiser (alpha, beta) agrees to 4.2e-13 (relative) at most; 1e-10 leaves room for the BLAS.
TEST_P(LogmeReference, ExactMatchesDefinitionMaximisedByScipy) {
  const Case c = load_case(GetParam());
  const LogmeResult r = run(c, LogmeMode::kExact);
  expect_matches(r, c.ref.at("exact"), 1e-9, 1e-10);
  for (bool conv : r.converged) EXPECT_TRUE(conv);
}

// The exact maximum can never be below the evidence at the point another algorithm stops at,
// when that algorithm evaluates the true evidence (icml does, all D eigenvalues, no epsilon).
TEST_P(LogmeReference, ExactIsAtLeastIcml) {
  const Case c = load_case(GetParam());
  const LogmeResult e = run(c, LogmeMode::kExact);
  const LogmeResult i = run(c, LogmeMode::kIcml);
  for (std::size_t t = 0; t < e.per_target.size(); ++t)
    EXPECT_GE(e.per_target[t], i.per_target[t] - 1e-12 * std::abs(i.per_target[t]));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LogmeReference,
                         ::testing::Values("tall", "tall_f32", "wide", "rankdef_tall",
                                           "rankdef_wide", "noncontig", "binary", "regression",
                                           "regression_1d"));

// ---- hand-derived cases ------------------------------------------------------------------------

// D = 1: sigma = ||f||^2, x2 = (f.y)^2 / ||f||^2, res = ||y||^2 - x2. The stationarity condition
// (t + sigma) E(t) = N t x2 with E(t) = res + x2 t / (t + sigma) gives
//   t* = sigma res / ((N - 1) x2 - res).
// f = (1, 2, 2), y = (1, 1, 0): sigma = 9, f.y = 3, x2 = 1, ||y||^2 = 2, res = 1, N = 3:
//   t* = 9 / (2 - 1) = 9, E = 1 + 9/18 = 1.5, beta = N / E = 2, alpha = t* beta = 18.
// Evidence from the definition at alpha = 18, beta = 2 (A = alpha + beta sigma = 36,
// m = beta f.y / A = 1/6, ||y - f m||^2 = (5/6)^2 + (2/3)^2 + (1/3)^2 = 1.25, ||m||^2 = 1/36):
//   L = 1/2 ln 18 + 3/2 ln 2 - 3/2 ln 2pi - 2/2 * 1.25 - 18/2 * 1/36 - 1/2 ln 36
//     = 1/2 ln 18 + 3/2 ln 2 - 1/2 ln 36 - 1.5 - 3/2 ln 2pi = ln 2 - 1.5 - 1.5 ln 2pi.
TEST(LogmeHand, OneFeatureInteriorMaximum) {
  const double f[] = {1, 2, 2};
  const double y[] = {1, 1, 0};
  const LogmeResult r = logme(FeatureView::row_major(f, 3, 1), TargetView{y, 3, 1, 1, 1});
  const double expected = (std::log(2.0) - 1.5 - 1.5 * std::log(2 * M_PI)) / 3.0;
  EXPECT_TRUE(near_rel(r.per_target[0], expected, 1e-12));
  EXPECT_TRUE(near_rel(r.alpha[0], 18.0, 1e-10));
  EXPECT_TRUE(near_rel(r.beta[0], 2.0, 1e-10));
  EXPECT_EQ(r.boundary[0], Boundary::kInterior);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.d, 1);
}

// f orthogonal to y: F^T y = 0, so the features explain nothing and the sup is alpha -> inf
// (m = 0): L = N/2 ln beta - beta/2 ||y||^2 - N/2 ln 2pi with beta = N / ||y||^2 = 1 for
// f = (1, -1), y = (1, 1): L / N = -1/2 - 1/2 ln 2pi.
TEST(LogmeHand, UselessFeatureGivesAlphaInfinite) {
  const double f[] = {1, -1};
  const double y[] = {1, 1};
  const LogmeResult r = logme(FeatureView::row_major(f, 2, 1), TargetView{y, 2, 1, 1, 1});
  EXPECT_TRUE(near_rel(r.per_target[0], -0.5 - 0.5 * std::log(2 * M_PI), 1e-12));
  EXPECT_TRUE(std::isinf(r.alpha[0]));
  EXPECT_TRUE(near_rel(r.beta[0], 1.0, 1e-12));
  EXPECT_EQ(r.boundary[0], Boundary::kAlphaInfinite);
  EXPECT_TRUE(r.converged[0]);
}

// N <= D with rank N: every target is in the span of F and beta -> inf is a supremum candidate.
// F = [[1, 0, 0], [0, 2, 0]] (N = 2, D = 3), y = (0, 1): F F^T = diag(1, 4), sigma = {1, 4},
// x2 = {0, 1}, res = 0, E(t) = t / (t + 4). Profile (c dropped):
//   l(t) = -1/2 [ln(1 + 1/t) + ln(1 + 4/t)] - ln(t / (t + 4)) = 1/2 ln((t + 4) / (t + 1)),
// decreasing from ln 2 at t -> 0 to 0 at t -> inf, so the sup is the limit beta -> inf with
// alpha = N / sum(x2 / sigma) = 2 / (1/4) = 8, and L / N = (ln 2 + c) / 2 with
// c = N/2 (ln N - 1 - ln 2pi) = ln 2 - 1 - ln 2pi.
TEST(LogmeHand, TargetInSpanGivesBetaInfiniteWithoutNaN) {
  const double f[] = {1, 0, 0, 0, 2, 0};
  const double y[] = {0, 1};
  const LogmeResult r = logme(FeatureView::row_major(f, 2, 3), TargetView{y, 2, 1, 1, 1});
  const double c = std::log(2.0) - 1.0 - std::log(2 * M_PI);
  EXPECT_TRUE(near_rel(r.per_target[0], (std::log(2.0) + c) / 2.0, 1e-12));
  EXPECT_TRUE(std::isinf(r.beta[0]));
  EXPECT_TRUE(near_rel(r.alpha[0], 8.0, 1e-12));
  EXPECT_EQ(r.boundary[0], Boundary::kBetaInfinite);
  EXPECT_TRUE(std::isfinite(r.score));
}

// Same features, y = (1, 1): l(t) = 1/2 ln((t + 1)(t + 4)) - ln(2t + 5) rises from ln 2 - ln 5 at
// t -> 0 to -ln 2 at t -> inf: this time the sup is alpha -> inf, L / N = (-ln 2 + c) / 2.
TEST(LogmeHand, SameFeaturesOtherTargetGivesAlphaInfinite) {
  const double f[] = {1, 0, 0, 0, 2, 0};
  const double y[] = {1, 1};
  const LogmeResult r = logme(FeatureView::row_major(f, 2, 3), TargetView{y, 2, 1, 1, 1});
  const double c = std::log(2.0) - 1.0 - std::log(2 * M_PI);
  EXPECT_TRUE(near_rel(r.per_target[0], (-std::log(2.0) + c) / 2.0, 1e-12));
  EXPECT_EQ(r.boundary[0], Boundary::kAlphaInfinite);
}

// The thuml defect, worked: with rank(F) = k < D the reference adds (D - k)/2 ln(alpha) / N per
// target that the true evidence does not have. Pad the features with zero columns: the exact
// evidence is unchanged (zero columns carry no information), thuml's grows with D.
TEST(LogmeHand, ZeroColumnsChangeThumlButNotExact) {
  const auto labels = test::make_labels(40, 2, 3);
  const auto f = test::make_features(40, 3, labels, 4);
  std::vector<double> padded(40 * 10, 0.0);
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 3; ++j) padded[i * 10 + j] = f[i * 3 + j];
  const LabelView y{labels.data(), 40};
  LogmeOptions exact, thuml;
  thuml.mode = LogmeMode::kThuml;
  const auto e3 = logme(FeatureView::row_major(f.data(), 40, 3), y, exact);
  const auto e10 = logme(FeatureView::row_major(padded.data(), 40, 10), y, exact);
  EXPECT_TRUE(near_rel(e3.score, e10.score, 1e-10));
  const auto t3 = logme(FeatureView::row_major(f.data(), 40, 3), y, thuml);
  const auto t10 = logme(FeatureView::row_major(padded.data(), 40, 10), y, thuml);
  // Same k = 3 eigenvalues and iterations, so the difference is exactly 7/2 ln(alpha) / N.
  for (std::size_t c = 0; c < t3.per_target.size(); ++c) {
    EXPECT_TRUE(
        near_rel(t10.per_target[c] - t3.per_target[c], 3.5 * std::log(t10.alpha[c]) / 40.0, 1e-8));
  }
  EXPECT_GT(t10.score, t3.score);
}

// ---- invariances -------------------------------------------------------------------------------

class LogmeInvariance : public ::testing::Test {
 protected:
  void SetUp() override {
    labels_ = test::make_labels(n_, 4, 11);
    f_ = test::make_features(n_, d_, labels_, 12);
  }
  LogmeResult score(const std::vector<double>& f, const std::vector<std::int64_t>& y,
                    LogmeMode mode = LogmeMode::kExact) const {
    LogmeOptions opt;
    opt.mode = mode;
    return logme(FeatureView::row_major(f.data(), n_, d_), LabelView{y.data(), n_}, opt);
  }
  const std::int64_t n_ = 150, d_ = 12;
  std::vector<std::int64_t> labels_;
  std::vector<double> f_;
};

TEST_F(LogmeInvariance, LabelPermutationPermutesTargets) {
  const std::vector<std::int64_t> perm = {2, 0, 3, 1};  // old label -> new label
  std::vector<std::int64_t> relabelled(labels_.size());
  for (std::size_t i = 0; i < labels_.size(); ++i) relabelled[i] = perm[labels_[i]];
  for (LogmeMode mode : {LogmeMode::kExact, LogmeMode::kThuml, LogmeMode::kIcml}) {
    const auto a = score(f_, labels_, mode), b = score(f_, relabelled, mode);
    EXPECT_TRUE(near_rel(a.score, b.score, 1e-12));
    for (int c = 0; c < 4; ++c)
      EXPECT_TRUE(near_rel(a.per_target[c], b.per_target[perm[c]], 1e-12));
  }
}

TEST_F(LogmeInvariance, RowOrderDoesNotMatter) {
  std::vector<std::size_t> order(n_);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(5);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<double> f2(f_.size());
  std::vector<std::int64_t> y2(labels_.size());
  for (std::int64_t i = 0; i < n_; ++i) {
    y2[i] = labels_[order[i]];
    std::copy_n(f_.begin() + order[i] * d_, d_, f2.begin() + i * d_);
  }
  EXPECT_TRUE(near_rel(score(f_, labels_).score, score(f2, y2).score, 1e-10));
}

// Scaling F by s maps sigma -> s^2 sigma and leaves x2 unchanged, so the profile l(t) is only
// shifted in t (t -> s^2 t): the exact maximum is invariant, beta is unchanged and alpha, the
// prior precision of weights that shrink by 1 / s, scales by s^2. The reference modes are
// not (their fixed start alpha = beta = 1, their 1e-5 and iteration cap depend on scale).
TEST_F(LogmeInvariance, ExactModeIsInvariantToFeatureScaling) {
  for (double s : {1e-3, 0.5, 7.0, 1e3}) {
    std::vector<double> scaled(f_);
    for (auto& v : scaled) v *= s;
    const auto a = score(f_, labels_), b = score(scaled, labels_);
    EXPECT_TRUE(near_rel(a.score, b.score, 1e-9)) << "scale " << s;
    for (std::size_t c = 0; c < a.alpha.size(); ++c)
      EXPECT_TRUE(near_rel(b.alpha[c], a.alpha[c] * s * s, 1e-6)) << "scale " << s;
  }
}

TEST_F(LogmeInvariance, StreamingEqualsInMemory) {
  for (LogmeMode mode : {LogmeMode::kExact, LogmeMode::kThuml, LogmeMode::kIcml}) {
    const auto whole = score(f_, labels_, mode);
    for (std::int64_t chunk : {1, 7, 64, 149}) {
      LogmeAccumulator acc;
      for (std::int64_t b = 0; b < n_; b += chunk) {
        const std::int64_t cnt = std::min(chunk, n_ - b);
        acc.update(FeatureView::row_major(f_.data() + b * d_, cnt, d_),
                   LabelView{labels_.data() + b, cnt});
      }
      LogmeOptions opt;
      opt.mode = mode;
      const auto streamed = acc.result(opt);
      EXPECT_EQ(streamed.labels, whole.labels);
      EXPECT_TRUE(near_rel(streamed.score, whole.score, 1e-9)) << "chunk " << chunk;
      for (std::size_t c = 0; c < whole.per_target.size(); ++c)
        EXPECT_TRUE(near_rel(streamed.per_target[c], whole.per_target[c], 1e-9));
    }
  }
}

TEST_F(LogmeInvariance, MergedAccumulatorsEqualOne) {
  LogmeAccumulator a, b, all;
  a.update(FeatureView::row_major(f_.data(), 60, d_), LabelView{labels_.data(), 60});
  b.update(FeatureView::row_major(f_.data() + 60 * d_, n_ - 60, d_),
           LabelView{labels_.data() + 60, n_ - 60});
  all.update(FeatureView::row_major(f_.data(), n_, d_), LabelView{labels_.data(), n_});
  a.merge(b);
  EXPECT_EQ(a.rows(), n_);
  EXPECT_TRUE(near_rel(a.result().score, all.result().score, 1e-10));
}

TEST_F(LogmeInvariance, Float32AndFortranViewsAgree) {
  std::vector<float> f32(f_.begin(), f_.end());
  std::vector<double> f64_from_32(f32.begin(), f32.end());
  std::vector<float> fortran(f32.size());
  for (std::int64_t i = 0; i < n_; ++i)
    for (std::int64_t j = 0; j < d_; ++j) fortran[j * n_ + i] = f32[i * d_ + j];
  const LabelView y{labels_.data(), n_};
  const auto a = logme(FeatureView::row_major(f32.data(), n_, d_), y);
  const auto b = logme(FeatureView::row_major(f64_from_32.data(), n_, d_), y);
  const auto c = logme(FeatureView::col_major(fortran.data(), n_, d_), y);
  EXPECT_EQ(a.score, b.score);  // float32 is widened exactly
  EXPECT_EQ(a.score, c.score);
}

TEST_F(LogmeInvariance, RepeatedRunsAreBitIdentical) {
  const auto a = score(f_, labels_), b = score(f_, labels_);
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(a.per_target, b.per_target);
}

// ---- edge shapes -------------------------------------------------------------------------------

TEST(LogmeEdges, TwoSamplesTwoClasses) {
  const double f[] = {0.5, -1.0};
  const std::int64_t y[] = {0, 1};
  for (LogmeMode mode : {LogmeMode::kExact, LogmeMode::kThuml, LogmeMode::kIcml}) {
    LogmeOptions opt;
    opt.mode = mode;
    const auto r = logme(FeatureView::row_major(f, 2, 1), LabelView{y, 2}, opt);
    EXPECT_TRUE(std::isfinite(r.score)) << to_string(mode);
    EXPECT_EQ(r.per_target.size(), 2u);
  }
}

TEST(LogmeEdges, WideFeaturesNLessThanD) {
  const auto labels = test::make_labels(10, 3, 1);
  const auto f = test::make_features(10, 50, labels, 2);
  const auto r = logme(FeatureView::row_major(f.data(), 10, 50), LabelView{labels.data(), 10});
  EXPECT_EQ(r.rank, 10);
  for (auto b : r.boundary) EXPECT_NE(b, Boundary::kNoiseFloor);
  EXPECT_TRUE(std::isfinite(r.score));
  // Streaming uses the D x D Gram matrix instead of the N x N kernel: the same spectrum.
  LogmeAccumulator acc;
  acc.update(FeatureView::row_major(f.data(), 10, 50), LabelView{labels.data(), 10});
  EXPECT_TRUE(near_rel(acc.result().score, r.score, 1e-7));
}

TEST(LogmeEdges, ZeroFeaturesGiveTheNoInformationBaseline) {
  std::vector<double> f(20 * 3, 0.0);
  const auto labels = test::make_labels(20, 2, 1);
  const auto r = logme(FeatureView::row_major(f.data(), 20, 3), LabelView{labels.data(), 20});
  EXPECT_EQ(r.rank, 0);
  // beta = N / ||y||^2 = 20 / 10 = 2: L/N = 1/2 ln 2 - 1/2 - 1/2 ln 2pi for both classes.
  EXPECT_TRUE(near_rel(r.score, 0.5 * std::log(2.0) - 0.5 - 0.5 * std::log(2 * M_PI), 1e-12));
}

TEST(LogmeEdges, ExactLinearTargetWithRankBelowNStaysFinite) {
  // y = 2 f0 - f1 exactly, N = 30 > D = 2: the evidence is unbounded in exact arithmetic.
  std::vector<double> f(60), y(30);
  for (int i = 0; i < 30; ++i) {
    f[2 * i] = std::sin(i + 1.0);
    f[2 * i + 1] = std::cos(3.0 * i);
    y[i] = 2 * f[2 * i] - f[2 * i + 1];
  }
  const auto r = logme(FeatureView::row_major(f.data(), 30, 2), TargetView{y.data(), 30, 1, 1, 1});
  EXPECT_TRUE(std::isfinite(r.score));
  EXPECT_EQ(r.boundary[0], Boundary::kNoiseFloor);
}

// ---- bad input ---------------------------------------------------------------------------------

std::string error_of(const std::function<void()>& fn) { return test::input_error_of(fn); }

TEST(LogmeErrors, NonFiniteFeatureNamesItsPosition) {
  auto labels = test::make_labels(20, 2, 1);
  auto f = test::make_features(20, 3, labels, 2);
  f[7 * 3 + 2] = std::nan("");
  EXPECT_EQ(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 3), LabelView{labels.data(), 20});
            }),
            "features: non-finite value nan at row 7, column 2");
  f[7 * 3 + 2] = INFINITY;
  EXPECT_NE(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 3), LabelView{labels.data(), 20});
            }).find("non-finite value inf"),
            std::string::npos);
}

TEST(LogmeErrors, ShapeMismatchOneClassTooFewRows) {
  const auto labels = test::make_labels(20, 2, 1);
  const auto f = test::make_features(20, 3, labels, 2);
  EXPECT_NE(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 3), LabelView{labels.data(), 19});
            }).find("features have 20 rows but labels has 19 entries"),
            std::string::npos);
  const std::vector<std::int64_t> one(20, 4);
  EXPECT_EQ(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 3), LabelView{one.data(), 20});
            }),
            "labels: LogME needs at least 2 classes, found only label 4");
  EXPECT_NE(error_of([&] {
              logme(FeatureView::row_major(f.data(), 1, 3), LabelView{labels.data(), 1});
            }).find("at least 2 samples"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 0), LabelView{labels.data(), 20});
            }).find("at least 1 feature column"),
            std::string::npos);
  const std::vector<double> zeros(20, 0.0);
  EXPECT_NE(error_of([&] {
              logme(FeatureView::row_major(f.data(), 20, 3), TargetView{zeros.data(), 20, 1, 1, 1});
            }).find("column 0 is all zeros"),
            std::string::npos);
}

TEST(LogmeErrors, RejectedChunkLeavesAccumulatorUnchanged) {
  const auto labels = test::make_labels(40, 2, 1);
  auto f = test::make_features(40, 3, labels, 2);
  LogmeAccumulator acc;
  acc.update(FeatureView::row_major(f.data(), 20, 3), LabelView{labels.data(), 20});
  const double before = acc.result().score;
  std::vector<double> bad(f.begin() + 60, f.end());
  bad[10] = std::nan("");
  EXPECT_THROW(
      acc.update(FeatureView::row_major(bad.data(), 20, 3), LabelView{labels.data() + 20, 20}),
      InputError);
  EXPECT_THROW(acc.update(FeatureView::row_major(f.data(), 20, 2), LabelView{labels.data(), 20}),
               InputError);
  EXPECT_EQ(acc.rows(), 20);
  EXPECT_EQ(acc.result().score, before);
}

TEST(LogmeErrors, UnknownModeName) {
  EXPECT_EQ(error_of([] { parse_logme_mode("fast"); }),
            "logme mode: unknown value 'fast' (expected exact, thuml or icml)");
}

}  // namespace
}  // namespace tlkit

// ---- real data: the bundled example (features of 8 kit models on 1000 clothing photos) ---------

namespace tlkit {
namespace {

double example_score(const std::string& model, LogmeMode mode) {
  const std::string dir = std::string(TLKIT_EXAMPLES_DIR) + "/clothing-features/";
  const NpyArray f = load_npy(dir + model + "/features.npy");
  const auto y = load_npy(dir + "labels.npy").labels();
  LogmeOptions opt;
  opt.mode = mode;
  return logme(f.features(), LabelView{y.data(), static_cast<std::int64_t>(y.size())}, opt).score;
}

// MobileNet V1 at widths 0.75 > 0.50 > 0.25 (ImageNet top-1 68.4 / 63.3 / 49.8 %): wider ImageNet
// features should transfer better to clothing photos, and LogME should see it. Margins are large
// (0.083 / 0.058 / -0.008), so the order is a real property of the data, not of rounding.
TEST(LogmeRealData, MobileNetWidthsRankInOrder) {
  const double w075 = example_score("imagenet_mobilenet_v1_075_192", LogmeMode::kExact);
  const double w050 = example_score("imagenet_mobilenet_v1_050_160", LogmeMode::kExact);
  const double w025 = example_score("imagenet_mobilenet_v1_025_128", LogmeMode::kExact);
  EXPECT_GT(w075, w050 + 0.01);
  EXPECT_GT(w050, w025 + 0.01);
}

// The thuml defect on real data: the bird model has D = 1280 > N = 1000 features, and the
// reference code's missing (D - N)/(2N) ln(alpha) terms lift it from last place to first.
TEST(LogmeRealData, ThumlInflatesTheWideBirdModelToFirstPlace) {
  const double bird_exact = example_score("inat_bird_mobilenet_v2_224", LogmeMode::kExact);
  const double bird_thuml = example_score("inat_bird_mobilenet_v2_224", LogmeMode::kThuml);
  const double best_exact = example_score("imagenet_mobilenet_v1_075_192", LogmeMode::kExact);
  const double best_thuml = example_score("imagenet_mobilenet_v1_075_192", LogmeMode::kThuml);
  EXPECT_LT(bird_exact, best_exact);
  EXPECT_GT(bird_thuml, best_thuml);
  // On the N > D, full-rank model the three modes agree closely.
  EXPECT_TRUE(near_rel(best_thuml, best_exact, 1e-3));
  EXPECT_TRUE(
      near_rel(example_score("imagenet_mobilenet_v1_075_192", LogmeMode::kIcml), best_exact, 1e-3));
}

// The posterior mean weights against a direct solve of their definition,
// m_k = beta_k (alpha_k I + beta_k F^T F)^-1 F^T y_k, on both decomposition paths (N > D: F^T F;
// N <= D: F F^T), for classes and for real targets.
void expect_direct_solve(const std::vector<double>& f, std::int64_t n, std::int64_t d,
                         const Eigen::MatrixXd& y, const LogmeResult& fit,
                         const std::vector<double>& m, int* finite_fits) {
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> fm(
      f.data(), n, d);
  ASSERT_EQ(m.size(), static_cast<std::size_t>(y.cols() * d));
  for (Eigen::Index k = 0; k < y.cols(); ++k) {
    const double a = fit.alpha[k], b = fit.beta[k];
    Eigen::VectorXd want;
    if (std::isinf(a)) {  // the prior wins: no weights
      want = Eigen::VectorXd::Zero(d);
    } else if (std::isinf(b)) {  // noise-free: the minimum-norm least-squares weights
      want = Eigen::MatrixXd(fm).completeOrthogonalDecomposition().solve(y.col(k));
    } else {
      const Eigen::MatrixXd lhs =
          a * Eigen::MatrixXd::Identity(d, d) + b * Eigen::MatrixXd(fm.transpose() * fm);
      want = lhs.ldlt().solve(b * (fm.transpose() * y.col(k)));
      ++*finite_fits;
    }
    for (std::int64_t j = 0; j < d; ++j)
      EXPECT_TRUE(test::near_rel(m[k * d + j], want(j), 1e-8, 1e-12 * want.norm()))
          << "target " << k << " (alpha " << a << ", beta " << b << ") weight " << j << ": "
          << m[k * d + j] << " vs " << want(j);
  }
}

TEST(LogmeWeights, EqualTheDirectSolveOnBothPathsForClassesAndTargets) {
  int finite_fits = 0;
  for (const auto& [n, d] : {std::pair<std::int64_t, std::int64_t>{80, 6}, {12, 30}}) {
    const auto labels = test::make_labels(n, 3, 5);
    const auto f = test::make_features(n, d, labels, 6);
    const FeatureView fv = FeatureView::row_major(f.data(), n, d);
    const LogmeResult fit = logme(fv, LabelView{labels.data(), n});
    Eigen::MatrixXd onehot = Eigen::MatrixXd::Zero(n, 3);
    for (std::int64_t i = 0; i < n; ++i) onehot(i, labels[i]) = 1.0;
    SCOPED_TRACE(::testing::Message() << "N = " << n << ", D = " << d);
    expect_direct_solve(f, n, d, onehot, fit, logme_weights(fv, LabelView{labels.data(), n}, fit),
                        &finite_fits);
    // Real targets: two columns, a linear signal plus noise and pure noise.
    std::vector<double> t(static_cast<std::size_t>(n * 2));
    for (std::int64_t i = 0; i < n; ++i) {
      t[i * 2] = f[i * d] - 0.5 * f[i * d + 1] + 0.1 * std::sin(3.0 * i);
      t[i * 2 + 1] = std::cos(1.7 * i);
    }
    const TargetView tv{t.data(), n, 2, 2, 1};
    const LogmeResult rf = logme(fv, tv);
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        tm(t.data(), n, 2);
    expect_direct_solve(f, n, d, tm, rf, logme_weights(fv, tv, rf), &finite_fits);
  }
  EXPECT_GE(finite_fits, 4);  // most fits are interior maxima, the case with both precisions
}

TEST(LogmeWeights, RefuseAFitOfOtherData) {
  const auto labels = test::make_labels(40, 2, 3);
  const auto f = test::make_features(40, 3, labels, 4);
  const FeatureView fv = FeatureView::row_major(f.data(), 40, 3);
  const LogmeResult fit = logme(fv, LabelView{labels.data(), 40});
  const FeatureView fewer = FeatureView::row_major(f.data(), 39, 3);
  EXPECT_NE(test::input_error_of([&] {
              logme_weights(fewer, LabelView{labels.data(), 39}, fit);
            }).find("the fit was on N = 40, D = 3 but the features are 39 x 3"),
            std::string::npos);
  std::vector<std::int64_t> other = labels;
  other[0] = 7;
  EXPECT_NE(test::input_error_of([&] {
              logme_weights(fv, LabelView{other.data(), 40}, fit);
            }).find("label 7 at row 0 is not one of the fit's labels"),
            std::string::npos);
}

}  // namespace
}  // namespace tlkit

extern "C" int openblas_get_num_threads(void);

namespace tlkit {
namespace {

// Scopes of small problems on several threads at once (Python threads scoring in parallel) share
// OpenBLAS's global thread count: it stays 1 until the last scope closes. Before, the first scope
// to close restored it while another was still computing, whose results then changed in the last
// bits (tests/python/test_threads.py saw it about 1 run in 8). Closing out of order on one thread
// is the same bookkeeping.
TEST(SingleThreadScope, BlasStaysOnOneThreadUntilTheLastOpenScopeCloses) {
  const int before = openblas_get_num_threads();
  set_blas_threads(2);
  if (openblas_get_num_threads() != 2) {
    set_blas_threads(before);
    GTEST_SKIP() << "OpenBLAS does not run 2 threads here";
  }
  std::optional<detail::SingleThreadScope> a, b;
  a.emplace(true);
  EXPECT_EQ(openblas_get_num_threads(), 1);
  std::thread other([&] { b.emplace(true); });
  other.join();
  a.reset();
  EXPECT_EQ(openblas_get_num_threads(), 1);  // b is still open
  b.reset();
  EXPECT_EQ(openblas_get_num_threads(), 2);
  detail::SingleThreadScope inactive(false);
  EXPECT_EQ(openblas_get_num_threads(), 2);
  set_blas_threads(before);
}

}  // namespace
}  // namespace tlkit

// The default thread count leaves out the cores that other processes keep busy: with as many
// spinning child processes as this process may use cores (its affinity mask, which the children
// inherit; the machine may have more), one is left; it is never below 1 or above that count.
// (This process's own threads do not count against it.)
TEST(Threads, IdleCoresCountsOtherProcessesWork) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  const int cores = std::max(1, CPU_COUNT(&mask));
  const int quiet = tlkit::idle_cores();
  EXPECT_GE(quiet, 1);
  EXPECT_LE(quiet, cores);
  std::vector<pid_t> children;
  for (int i = 0; i < cores; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
      for (volatile unsigned long x = 0;; x = x + 1) {
      }
    children.push_back(pid);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int busy = tlkit::idle_cores();
  for (const pid_t pid : children) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  EXPECT_EQ(busy, 1);
}

// Multinomial logistic regression (tlkit/core/linear_probe.h) against sklearn's
// LogisticRegression(multi_class="multinomial", solver="lbfgs") on the same data and C
// (tests/data/linear_probe/, made by tools/export_finetune_fixtures.py).
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

std::vector<double> load_f64(const std::string& name) {
  const NpyArray a = load_npy(test::data_path("linear_probe/" + name));
  const FeatureView v = a.features();
  std::vector<double> out;
  for (std::int64_t i = 0; i < v.rows; ++i)
    for (std::int64_t j = 0; j < v.cols; ++j) out.push_back(v.at(i, j));
  return out;
}

std::vector<std::int64_t> load_i64(const std::string& name) {
  return load_npy(test::data_path("linear_probe/" + name)).labels();
}

class LinearProbeVsSklearn : public ::testing::TestWithParam<std::pair<double, const char*>> {};

TEST_P(LinearProbeVsSklearn, CoefficientsAndPredictionsMatch) {
  const auto [c, name] = GetParam();
  const std::vector<double> x = load_f64("x_train.npy"), xt = load_f64("x_test.npy");
  const std::vector<std::int64_t> y = load_i64("y_train.npy");
  const std::int64_t n = static_cast<std::int64_t>(y.size()), d = 6;
  LogisticOptions o;
  o.c = c;
  o.max_iterations = 0;
  const LogisticModel m = fit_logistic(x.data(), n, d, y.data(), 3, o);
  EXPECT_TRUE(m.converged) << m.status;
  // sklearn's coef_ is [classes, d] like ours. W is unique (strictly convex in W); with 3 classes
  // and a free intercept, sum_k W_k = 0 at the optimum, so no centring is needed.
  const std::vector<double> coef = load_f64(std::string("coef_") + name + ".npy");
  ASSERT_EQ(coef.size(), m.weights.size());
  double scale = 0;
  for (double v : coef) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < coef.size(); ++i)
    EXPECT_NEAR(m.weights[i], coef[i], 1e-4 * std::max(1.0, scale)) << "C " << c << " i " << i;
  // Intercepts: equal up to a constant shared by all classes; sklearn's sum to 0 as ours do at the
  // optimum (the gradient in b sums to 0), so compare directly.
  const NpyArray ib =
      load_npy(test::data_path(std::string("linear_probe/intercept_") + name + ".npy"));
  std::vector<double> bias(3);
  const FeatureView v = ib.features();  // [1, 3]
  for (std::int64_t i = 0; i < 3; ++i) bias[i] = v.at(0, i);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(m.bias[k], bias[k], 1e-4 * std::max(1.0, scale));
  EXPECT_EQ(predict_logistic(m, xt.data(), static_cast<std::int64_t>(xt.size() / d)),
            load_i64(std::string("test_pred_") + name + ".npy"));
}

INSTANTIATE_TEST_SUITE_P(Cs, LinearProbeVsSklearn,
                         ::testing::Values(std::make_pair(0.01, "0.01"), std::make_pair(1.0, "1"),
                                           std::make_pair(100.0, "100")));

TEST(LinearProbe, ChoosesCByValidationAndReportsTestOfThatFit) {
  LabelledRows train{load_f64("x_train.npy"), load_i64("y_train.npy")};
  LabelledRows test{load_f64("x_test.npy"), load_i64("y_test.npy")};
  // val = test here: the chosen C must be the grid point with the highest val accuracy, and the
  // reported test accuracy that fit's accuracy on test.
  const std::vector<double> cs{1e-4, 0.01, 1.0, 100.0};
  const LinearProbeResult r = linear_probe(train, test, test, 6, 3, cs);
  ASSERT_EQ(r.grid.size(), cs.size());
  for (const auto& p : r.grid) EXPECT_LE(p.val_accuracy, r.grid[r.best].val_accuracy);
  for (std::size_t i = 0; i < r.best; ++i)
    EXPECT_LT(r.grid[i].val_accuracy, r.grid[r.best].val_accuracy);
  EXPECT_DOUBLE_EQ(r.test_accuracy, r.grid[r.best].val_accuracy);
  EXPECT_EQ(r.model.classes, 3);
}

TEST(LinearProbe, SeparableDataIsFitExactly) {
  // Two classes split by the sign of the first feature.
  std::vector<double> x;
  std::vector<std::int64_t> y;
  for (int i = 0; i < 20; ++i) {
    const double s = i % 2 ? 1.0 : -1.0;
    x.push_back(s * (1.0 + 0.1 * i));
    x.push_back(0.3 * ((i * 7) % 5 - 2));
    y.push_back(i % 2);
  }
  LogisticOptions o;
  o.c = 10.0;
  const LogisticModel m = fit_logistic(x.data(), 20, 2, y.data(), 2, o);
  EXPECT_DOUBLE_EQ(logistic_accuracy(m, x.data(), 20, y.data()), 100.0);
}

TEST(LinearProbe, BadInputsThrow) {
  const std::vector<double> x{0, 1, 2, 3};
  const std::vector<std::int64_t> y{0, 1}, bad{0, 2};
  LogisticOptions o;
  EXPECT_THROW(fit_logistic(x.data(), 2, 2, bad.data(), 2, o), InputError);
  EXPECT_THROW(fit_logistic(x.data(), 2, 2, y.data(), 1, o), InputError);
  EXPECT_THROW(fit_logistic(x.data(), 0, 2, y.data(), 2, o), InputError);
  o.c = 0;
  EXPECT_THROW(fit_logistic(x.data(), 2, 2, y.data(), 2, o), InputError);
  LabelledRows tr{x, y}, empty;
  EXPECT_THROW(linear_probe(tr, empty, tr, 2, 2, {1.0}), InputError);
  EXPECT_THROW(linear_probe(tr, tr, tr, 2, 2, {}), InputError);
}

}  // namespace
}  // namespace tlkit

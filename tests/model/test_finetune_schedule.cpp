// The learning-rate schedule and the label-smoothed loss of the fine-tuning loop
// (src/model/finetune_schedule.h) against the formulas of docs/finetune.md "Schedule, selection,
// early stopping": the expected learning rates are worked out by hand from those formulas (each
// test says how), the losses come from PyTorch's nn.CrossEntropyLoss(label_smoothing = eps)
// (tests/data/model/reference/label_smoothing_*.npy, tools/make_label_smoothing_refs.py) and from
// the formula evaluated here in double precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "model/finetune_schedule.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"

namespace tlkit::model::finetune_detail {
namespace {

constexpr double kPi = 3.14159265358979323846;
const double kCosQuarter = std::sqrt(2.0) / 2.0;  // cos(pi / 4)

std::vector<double> lrs(const std::string& schedule, double base, int epochs, int warmup) {
  std::vector<double> v;
  for (int e = 0; e < epochs; ++e) v.push_back(scheduled_lr(schedule, base, e, epochs, warmup));
  return v;
}

void expect_lrs(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(test::near_rel(got[i], want[i], 1e-12)) << "epoch " << i;
}

TEST(FinetuneSchedule, CosineWithoutWarmup) {
  // E = 4, W = 0, n = 4: base ½ (1 + cos(π e / 4)) for e = 0..3, i.e. base, base (2 + √2) / 4,
  // base / 2, base (2 - √2) / 4. The last epoch (e = 3) still trains: its rate is not 0.
  const double b = 0.1;
  expect_lrs(lrs("cosine", b, 4, 0),
             {b, b * (1 + kCosQuarter) / 2, b / 2, b * (1 - kCosQuarter) / 2});
  // E = 1: the single epoch runs at the base rate.
  expect_lrs(lrs("cosine", b, 1, 0), {b});
  // E = 2: base, then base ½ (1 + cos(π / 2)) = base / 2.
  expect_lrs(lrs("cosine", b, 2, 0), {b, b / 2});
}

TEST(FinetuneSchedule, CosineWithWarmup) {
  // E = 6, W = 2: warm-up base (e + 1) / 3 for e = 0, 1; then n = 4 and the cosine of the test
  // above, starting at the base rate in epoch W (the warm-up boundary).
  const double b = 1.0;
  expect_lrs(lrs("cosine", b, 6, 2),
             {b / 3, 2 * b / 3, b, b * (1 + kCosQuarter) / 2, b / 2, b * (1 - kCosQuarter) / 2});
  // E = W + 1: one epoch after warm-up, at the base rate.
  expect_lrs(lrs("cosine", b, 3, 2), {b / 3, 2 * b / 3, b});
  // E <= W: every epoch is a warm-up epoch, base (e + 1) / (W + 1).
  expect_lrs(lrs("cosine", b, 2, 3), {b / 4, b / 2});
}

TEST(FinetuneSchedule, CosineIsPositiveAndDecreasingAfterWarmup) {
  // For every E and W: the rate rises during warm-up, is the base rate in epoch W, then strictly
  // decreases, and the last epoch's rate is base ½ (1 + cos(π (n - 1) / n)) > 0.
  for (int epochs = 1; epochs <= 40; ++epochs)
    for (int warmup = 0; warmup < std::min(epochs, 5); ++warmup) {
      const std::vector<double> v = lrs("cosine", 0.01, epochs, warmup);
      const int n = epochs - warmup;
      for (int e = 1; e < epochs; ++e)
        if (e <= warmup)
          EXPECT_GT(v[e], v[e - 1]) << epochs << " " << warmup << " " << e;
        else
          EXPECT_LT(v[e], v[e - 1]) << epochs << " " << warmup << " " << e;
      EXPECT_DOUBLE_EQ(v[warmup], 0.01);
      EXPECT_TRUE(test::near_rel(v.back(), 0.01 * 0.5 * (1 + std::cos(kPi * (n - 1) / n)), 1e-12));
      EXPECT_GT(v.back(), 0.0) << epochs << " " << warmup;
    }
}

TEST(FinetuneSchedule, StepDropsAtHalfAndThreeQuarters) {
  const double b = 0.2;
  // E = 8, W = 0: ×0.1 from e = 4, ×0.01 from e = 6.
  expect_lrs(lrs("step", b, 8, 0), {b, b, b, b, b / 10, b / 10, b / 100, b / 100});
  // E = 5, W = 0: n = 5, ⌊5/2⌋ = 2, ⌊15/4⌋ = 3.
  expect_lrs(lrs("step", b, 5, 0), {b, b, b / 10, b / 100, b / 100});
  // E = 10, W = 2: warm-up b/3, 2b/3; n = 8: e = 0..3 at b, 4, 5 at b/10, 6, 7 at b/100.
  expect_lrs(lrs("step", b, 10, 2),
             {b / 3, 2 * b / 3, b, b, b, b, b / 10, b / 10, b / 100, b / 100});
  // E = 1: n = 1, ⌊1/2⌋ = 0 and ⌊3/4⌋ = 0: the single epoch is past both drops.
  expect_lrs(lrs("step", b, 1, 0), {b / 100});
}

TEST(FinetuneSchedule, ConstantKeepsTheBaseRateAfterWarmup) {
  expect_lrs(lrs("constant", 0.03, 3, 0), {0.03, 0.03, 0.03});
  // W = 1: 0.03 / 2 in the warm-up epoch.
  expect_lrs(lrs("constant", 0.03, 4, 1), {0.015, 0.03, 0.03, 0.03});
}

TEST(FinetuneSchedule, WarmupIsTheSameForEverySchedule) {
  // base (e + 1) / (W + 1) for e < W = 3, the base rate at e = W, whatever comes after.
  for (const char* s : {"cosine", "step", "constant"}) {
    const std::vector<double> v = lrs(s, 0.4, 8, 3);
    expect_lrs({v[0], v[1], v[2], v[3]}, {0.1, 0.2, 0.3, 0.4});
  }
}

// ---------------------------------------------------------------------------------------------
// Label smoothing

struct LossFixture {
  std::vector<float> logits;
  std::vector<std::int64_t> labels;
  std::int64_t classes = 0;
  std::vector<double> eps, loss, loss_f64;
};

LossFixture load_fixture() {
  const std::string dir = test::data_path("model/reference/");
  LossFixture f;
  const NpyArray x = load_npy(dir + "label_smoothing_logits.npy");
  const FeatureView v = x.features();
  f.classes = v.cols;
  for (std::int64_t i = 0; i < v.rows; ++i)
    for (std::int64_t j = 0; j < v.cols; ++j) f.logits.push_back(static_cast<float>(v.at(i, j)));
  f.labels = load_npy(dir + "label_smoothing_labels.npy").labels();
  std::int64_t k = 0;
  f.eps = load_npy(dir + "label_smoothing_eps.npy").targets(&k);
  f.loss = load_npy(dir + "label_smoothing_loss.npy").targets(&k);
  f.loss_f64 = load_npy(dir + "label_smoothing_loss_f64.npy").targets(&k);
  return f;
}

// The formula in double precision: the mean over rows of -Σ_c q_c log softmax(x)_c with
// q_c = (1 - eps) [c = label] + eps / C.
double formula_loss(const LossFixture& f, double eps) {
  const std::int64_t c = f.classes;
  const auto n = static_cast<std::int64_t>(f.labels.size());
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* x = f.logits.data() + i * c;
    const double m = *std::max_element(x, x + c);
    double sum = 0;
    for (std::int64_t j = 0; j < c; ++j) sum += std::exp(x[j] - m);
    const double lse = m + std::log(sum);
    for (std::int64_t j = 0; j < c; ++j) {
      const double q = (j == f.labels[i] ? 1.0 - eps : 0.0) + eps / static_cast<double>(c);
      total -= q * (x[j] - lse);
    }
  }
  return total / static_cast<double>(n);
}

TEST(FinetuneLabelSmoothing, TheTrainingLossMatchesPyTorch) {
  const LossFixture f = load_fixture();
  ASSERT_EQ(f.classes, 4);
  ASSERT_EQ(f.labels.size(), 6u);
  ASSERT_EQ(f.eps.size(), f.loss.size());
  for (std::size_t i = 0; i < f.eps.size(); ++i) {
    const double got = training_loss(f.logits, f.labels, f.classes, f.eps[i]);
    // float32 arithmetic in both: a few ulps of float32.
    EXPECT_TRUE(test::near_rel(got, f.loss[i], 1e-6)) << "eps " << f.eps[i];
    EXPECT_TRUE(test::near_rel(got, f.loss_f64[i], 1e-6)) << "eps " << f.eps[i];
    // The formula, evaluated here, agrees with PyTorch's float64 values.
    EXPECT_TRUE(test::near_rel(formula_loss(f, f.eps[i]), f.loss_f64[i], 1e-12))
        << "eps " << f.eps[i];
  }
  // The references differ by far more than the tolerance: smoothing is not a no-op here.
  EXPECT_GT(std::abs(f.loss[0] - f.loss[2]), 1e-2);
}

TEST(FinetuneLabelSmoothing, HandCheckedSmallCases) {
  // Two classes, logits (0, 0): log softmax = -log 2 for both, so every target gives log 2.
  EXPECT_TRUE(test::near_rel(training_loss({0.0f, 0.0f}, {1}, 2, 0.3), std::log(2.0), 1e-6));
  // Logits (log 3, 0) (softmax 3/4, 1/4), label 0, eps = 0.2: q = (0.9, 0.1), loss
  // -(0.9 log 3/4 + 0.1 log 1/4).
  const auto l3 = static_cast<float>(std::log(3.0));
  EXPECT_TRUE(test::near_rel(training_loss({l3, 0.0f}, {0}, 2, 0.2),
                             -(0.9 * std::log(0.75) + 0.1 * std::log(0.25)), 1e-6));
  // eps = 0 is the plain cross-entropy -log 3/4.
  EXPECT_TRUE(test::near_rel(training_loss({l3, 0.0f}, {0}, 2, 0.0), -std::log(0.75), 1e-6));
  // Mean over rows: the same row twice gives the same loss as once.
  EXPECT_TRUE(test::near_rel(training_loss({l3, 0.0f, l3, 0.0f}, {0, 0}, 2, 0.2),
                             training_loss({l3, 0.0f}, {0}, 2, 0.2), 1e-6));
}

TEST(FinetuneLabelSmoothing, RefusesMismatchedShapes) {
  EXPECT_THROW(training_loss({0.0f, 0.0f, 0.0f}, {0}, 2, 0.1), InputError);
  EXPECT_THROW(training_loss({0.0f, 0.0f}, {0, 1}, 2, 0.1), InputError);
}

}  // namespace
}  // namespace tlkit::model::finetune_detail

// Multinomial logistic regression (a linear probe) on fixed features, by L-BFGS (liblbfgs), and
// the probe of `tlkit finetune --mode linear`: fit on a training split for each regularisation
// strength C of a grid, pick C by accuracy on a validation split, report the test accuracy.
//
// Objective (sklearn's LogisticRegression(multi_class="multinomial", penalty="l2", C=C)):
//   0.5 ||W||_F^2 + C sum_i -ln softmax(W x_i + b)_{y_i},
// W: C_classes x D, b: C_classes (unpenalised intercept), on the raw features. Minimised from zero
// to convergence; the objective is strictly convex in W, so W is unique; b is unique up to a
// constant added to all classes only when the data allow it, which changes no prediction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tlkit {

struct LogisticOptions {
  double c = 1.0;             ///< inverse regularisation strength (> 0)
  int max_iterations = 1000;  ///< L-BFGS iterations (0: until convergence)
  double epsilon = 1e-9;      ///< liblbfgs' relative gradient tolerance
  /// Rows split over processes: sums `count` doubles over all of them in place (every process
  /// gets the sum). When set, each process passes its own rows (n may be 0), the data part of
  /// the loss and gradient is summed through it at every evaluation, and every process runs the
  /// same L-BFGS steps on the same sums. Empty: one process.
  std::function<void(double*, std::size_t)> reduce_sum;
};

struct LogisticModel {
  std::int64_t classes = 0;
  std::int64_t dim = 0;
  std::vector<double> weights;  ///< classes x dim, row-major (torch.nn.Linear's weight layout)
  std::vector<double> bias;     ///< classes
  double objective = 0.0;
  double gradient_norm = 0.0;
  int status = 0;      ///< liblbfgs' return code
  int iterations = 0;  ///< L-BFGS iterations taken
  bool converged = false;
};

/// Fits on `n` row-major rows x (n x d, float64) with labels y in [0, classes). Throws
/// tlkit::InputError for an empty input, a label out of range, classes < 2 or c <= 0.
/// Non-convergence is reported in the result, not thrown.
LogisticModel fit_logistic(const double* x, std::int64_t n, std::int64_t d, const std::int64_t* y,
                           std::int64_t classes, const LogisticOptions& options = {});

/// Predicted labels (the first maximum of W x + b on ties) of n row-major rows.
std::vector<std::int64_t> predict_logistic(const LogisticModel& m, const double* x, std::int64_t n);

/// Percentage of rows whose prediction equals y (0 for n = 0).
double logistic_accuracy(const LogisticModel& m, const double* x, std::int64_t n,
                         const std::int64_t* y);

/// A split of row-major float64 features with labels.
struct LabelledRows {
  std::vector<double> x;  ///< n x d
  std::vector<std::int64_t> y;
  std::int64_t n() const { return static_cast<std::int64_t>(y.size()); }
};

struct LinearProbePoint {
  double c = 0.0;
  double train_accuracy = 0.0;
  double val_accuracy = 0.0;
  bool converged = false;
  double seconds = 0.0;
};

struct LinearProbeResult {
  std::vector<LinearProbePoint> grid;  ///< in the order of `cs`
  std::size_t best = 0;                ///< index into grid: highest val accuracy, first on ties
  double test_accuracy = 0.0;          ///< of the model fit on train with grid[best].c
  LogisticModel model;                 ///< that model
};

/// The grid of C values `tlkit finetune --mode linear` uses by default: 1e-3 .. 1e3 by decades.
std::vector<double> default_linear_probe_cs();

/// Fits one model per C on `train`, scores it on `val`, keeps the best and scores it on `test`
/// (never used for the choice). d is the feature dimension of all three splits.
LinearProbeResult linear_probe(const LabelledRows& train, const LabelledRows& val,
                               const LabelledRows& test, std::int64_t d, std::int64_t classes,
                               const std::vector<double>& cs, const LogisticOptions& base = {});

}  // namespace tlkit

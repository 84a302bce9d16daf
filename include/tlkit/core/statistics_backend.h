// Where score()'s shared statistics are computed: the CPU by default, or a device (a GPU) through
// a StatisticsBackend set in ScoreOptions::backend (docs/gpu.md).
//
// A backend computes the two heavy shared pieces of a scoring run, and nothing else: the one-pass
// sums (F^T F and the per-class sums) and the symmetric eigendecomposition of F^T F projected on
// the per-class sums. The metrics read them through MetricContext as always and never know where
// they came from.
#pragma once

#include <cstdint>
#include <string>

#include "tlkit/core/matrix_view.h"

namespace tlkit {

class StatisticsBackend {
 public:
  virtual ~StatisticsBackend() = default;

  /// A short name for messages and reports ("cuda").
  virtual std::string name() const = 0;

  /// Adds the rows of `features` (N x D, any FeatureView layout and dtype) to `gram` (D x D,
  /// column-major; the upper triangle is written, the lower left as it is) and to `class_sums`
  /// (D x classes, column-major): gram += F^T F, class_sums(:, y[i]) += row i, in float64.
  /// `y` holds N class indices in [0, classes).
  virtual void accumulate(const FeatureView& features, const int* y, std::int64_t classes,
                          double* gram, double* class_sums) = 0;

  /// The eigenvalues (ascending, D) of the symmetric matrix whose upper triangle `a` holds
  /// (D x D, column-major) and V^T B (D x cols, column-major) for B (D x cols, column-major),
  /// V the eigenvectors.
  virtual void eigen_project(const double* a, std::int64_t d, const double* b, std::int64_t cols,
                             double* values, double* vtb) = 0;
};

}  // namespace tlkit

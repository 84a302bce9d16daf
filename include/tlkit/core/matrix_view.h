// Non-owning views over the data tlkit consumes.
//
// Data contract (the one statement of it):
// * Features: N x D real matrix, one row per sample, float32 or float64. Row-major (C order) is
//   the native layout; column-major (Fortran order) is accepted through the strides, so NumPy
//   arrays of either order pass without a copy. All metric arithmetic is float64.
// * Labels: N integers. Classification uses the distinct values present, in ascending order, as
//   the classes (they need not be contiguous); internally they are mapped to [0, C).
// * Targets (regression / multi-label): N x K float64 (or N, meaning K = 1).
// * Probabilities: N x Cs, non-negative, rows summing to 1.
#pragma once

#include <cstdint>

#include "tlkit/core/error.h"

namespace tlkit {

/// Element type of a FeatureView.
enum class Real { kFloat32, kFloat64 };

/// A strided, read-only N x D view of float32 or float64 data.
/// Element (i, j) lives at data + i * row_stride + j * col_stride (strides in elements).
struct FeatureView {
  const void* data = nullptr;
  Real dtype = Real::kFloat64;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;
  std::int64_t col_stride = 1;

  /// Row-major (C order) view.
  static FeatureView row_major(const float* p, std::int64_t n, std::int64_t d) {
    return {p, Real::kFloat32, n, d, d, 1};
  }
  static FeatureView row_major(const double* p, std::int64_t n, std::int64_t d) {
    return {p, Real::kFloat64, n, d, d, 1};
  }
  /// Column-major (Fortran order) view.
  static FeatureView col_major(const float* p, std::int64_t n, std::int64_t d) {
    return {p, Real::kFloat32, n, d, 1, n};
  }
  static FeatureView col_major(const double* p, std::int64_t n, std::int64_t d) {
    return {p, Real::kFloat64, n, d, 1, n};
  }

  bool is_row_major() const { return col_stride == 1 && (row_stride == cols || rows <= 1); }

  double at(std::int64_t i, std::int64_t j) const {
    const std::int64_t off = i * row_stride + j * col_stride;
    return dtype == Real::kFloat32 ? static_cast<const float*>(data)[off]
                                   : static_cast<const double*>(data)[off];
  }

  /// Rows [begin, begin + count) as a view of the same storage.
  FeatureView row_block(std::int64_t begin, std::int64_t count) const {
    TLKIT_ASSERT(begin >= 0 && count >= 0 && begin + count <= rows);
    FeatureView v = *this;
    const std::int64_t off = begin * row_stride;
    v.data = dtype == Real::kFloat32
                 ? static_cast<const void*>(static_cast<const float*>(data) + off)
                 : static_cast<const void*>(static_cast<const double*>(data) + off);
    v.rows = count;
    return v;
  }
};

/// A read-only view of N integer labels.
struct LabelView {
  const std::int64_t* data = nullptr;
  std::int64_t size = 0;
};

/// A strided, read-only N x K view of float64 regression targets.
struct TargetView {
  const double* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;
  std::int64_t col_stride = 1;
  double at(std::int64_t i, std::int64_t k) const { return data[i * row_stride + k * col_stride]; }
};

}  // namespace tlkit

// Private BLAS/LAPACK helpers for the core (never part of the public API).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tlkit/core/matrix_view.h"

namespace tlkit::detail {

using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Throws InputError naming `what` and the first element that is NaN or infinite (its row is
/// reported as row_offset + i, so chunked callers name the row of the whole file).
void check_finite(const FeatureView& v, std::int64_t row_offset, const char* what);

/// Copies all rows of `v` into `out` as float64, row-major, rows x cols.
void copy_rows(const FeatureView& v, std::vector<double>& out);

/// Copies row `i` of `v` into dst[0, cols) as float64.
void copy_row(const FeatureView& v, std::int64_t i, double* dst);

/// Calls fn(rows, begin, count) for consecutive row blocks of `v` as float64 row-major data,
/// blocks small enough that the copy stays under ~32 MB (float64 row-major input is passed
/// through without a copy). Every caller that accumulates statistics uses this one blocking, so
/// the same data always gives bit-identical sums.
template <typename Fn>
void for_row_blocks(const FeatureView& v, std::vector<double>& buffer, Fn&& fn) {
  const std::int64_t d = std::max<std::int64_t>(v.cols, 1);
  const std::int64_t block = std::max<std::int64_t>(64, (std::int64_t{4} << 20) / d);
  for (std::int64_t b = 0; b < v.rows; b += block) {
    const std::int64_t cnt = std::min(block, v.rows - b);
    const FeatureView part = v.row_block(b, cnt);
    if (v.dtype == Real::kFloat64 && v.is_row_major()) {
      fn(static_cast<const double*>(part.data), b, cnt);
    } else {
      copy_rows(part, buffer);
      fn(static_cast<const double*>(buffer.data()), b, cnt);
    }
  }
}

/// gram (upper triangle, column-major d x d) += alpha B^T B for B row-major rows x d (the same
/// memory as a column-major d x rows matrix A: += alpha A A^T). BLAS dsyrk.
void syrk_accumulate_rows(const double* b, std::int64_t rows, std::int64_t d, double* gram,
                          double alpha = 1.0);

/// kernel (upper triangle, column-major n x n) = F F^T for F row-major n x d. BLAS dsyrk.
void syrk_kernel(const double* f, std::int64_t n, std::int64_t d, double* kernel);

/// A symmetric eigendecomposition A = V diag(values) V^T that never forms V unless asked:
/// A = Q T Q^T (dsytrd), T = W diag(values) W^T (dstedc). project(B) = V^T B = W^T (Q^T B) costs
/// a dormtr on B and a GEMM, and vectors() builds only the columns of V that are asked for.
/// Skipping the back-transformation of all n eigenvectors makes this ~40% cheaper than dsyevd
/// with vectors for n = 2048 when B has 100 columns.
class SymmetricEigen {
 public:
  SymmetricEigen() = default;
  /// Decomposes the symmetric matrix whose upper triangle `a` holds (a is consumed).
  explicit SymmetricEigen(Eigen::MatrixXd a);
  const Eigen::VectorXd& values() const { return values_; }  ///< ascending
  Eigen::Index size() const { return values_.size(); }
  /// V^T B for B with size() rows.
  Eigen::MatrixXd project(const Eigen::MatrixXd& b) const;
  /// Columns [first, first + count) of V (eigenvectors of values()[first...]).
  Eigen::MatrixXd vectors(Eigen::Index first, Eigen::Index count) const;

 private:
  Eigen::MatrixXd reflectors_;  // dsytrd output (upper)
  std::vector<double> tau_;
  Eigen::MatrixXd t_vectors_;  // W
  Eigen::VectorXd values_;
};

/// Eigenvalues `w` (ascending) of the symmetric matrix `a` (upper triangle read; destroyed) and
/// V^T B, without forming V (see SymmetricEigen).
void symmetric_eigen_project(Eigen::MatrixXd& a, const Eigen::MatrixXd& b, Eigen::VectorXd& w,
                             Eigen::MatrixXd& vtb);

/// OpenBLAS and OpenMP on one thread for the scope's lifetime when `active`, restored after.
/// Small problems gain nothing from a second thread, and on a busy machine the spin-waits of its
/// idle threads made them 15-30x slower (measured on 2 cores: docs/benchmarks.md). OpenBLAS's
/// thread count is global: scopes on several threads at once (Python threads scoring in
/// parallel) share one setting, made when the first opens and restored when the last closes, so
/// that no scope's BLAS calls change thread count (and summation order) midway. OpenMP's count is
/// the calling thread's own.
class SingleThreadScope {
 public:
  explicit SingleThreadScope(bool active);
  ~SingleThreadScope();
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  bool active_ = false;
  int omp_ = 0;  // the calling thread's OpenMP setting to restore (0: nothing changed)
};

/// Whether an N x D scoring problem is small enough to run on one thread when the caller did
/// not ask for a thread count: at most 2^36 multiply-adds for its Gram or distance matrix
/// (N D max(N, D)), a few seconds on one core. A second thread saved ~10 % on a quiet machine,
/// and on a busy one its spin-waits made such runs 15-30x slower (docs/benchmarks.md).
inline bool small_problem(std::int64_t n, std::int64_t d) {
  const double nn = static_cast<double>(n), dd = static_cast<double>(d);
  return nn * dd * std::max(nn, dd) <= 68719476736.0;
}

/// C = A^T B (column-major), BLAS dgemm.
Eigen::MatrixXd gemm_tn(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

}  // namespace tlkit::detail

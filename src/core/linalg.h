// Private BLAS/LAPACK helpers for the core (never part of the public API).
#pragma once

#include <Eigen/Core>
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

/// gram (upper triangle, column-major d x d) += B^T B for B row-major rows x d. BLAS dsyrk.
void syrk_accumulate_rows(const double* b, std::int64_t rows, std::int64_t d, double* gram);

/// kernel (upper triangle, column-major n x n) = F F^T for F row-major n x d. BLAS dsyrk.
void syrk_kernel(const double* f, std::int64_t n, std::int64_t d, double* kernel);

/// Eigenvalues `w` (ascending) of the symmetric matrix `a` (upper triangle read; destroyed) and
/// the projections V^T B of the columns of `b` on its eigenvectors, without forming V:
/// A = Q T Q^T (dsytrd), T = W diag(w) W^T (dstedc), so V^T B = W^T (Q^T B) (dormtr + dgemm).
/// Skipping the back-transformation of all n eigenvectors makes this ~40% cheaper than dsyevd
/// with vectors for n = 2048 and B with 100 columns.
void symmetric_eigen_project(Eigen::MatrixXd& a, const Eigen::MatrixXd& b, Eigen::VectorXd& w,
                             Eigen::MatrixXd& vtb);

/// C = A^T B (column-major), BLAS dgemm.
Eigen::MatrixXd gemm_tn(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

}  // namespace tlkit::detail

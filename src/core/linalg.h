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

/// Copies the upper triangle of a column-major n x n matrix into its lower triangle.
void symmetrize_from_upper(Eigen::MatrixXd& a);

/// Symmetric eigendecomposition with LAPACK dsyevd: on return `a` holds the eigenvectors (columns)
/// and `w` the eigenvalues in ascending order. Reads the upper triangle only.
void symmetric_eigen(Eigen::MatrixXd& a, Eigen::VectorXd& w);

/// C = A^T B (column-major), BLAS dgemm.
Eigen::MatrixXd gemm_tn(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

}  // namespace tlkit::detail

#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace tlkit::detail {

namespace {
template <typename T>
void check_finite_typed(const FeatureView& v, std::int64_t row_offset, const char* what) {
  const T* p = static_cast<const T*>(v.data);
  for (std::int64_t i = 0; i < v.rows; ++i) {
    // Contiguous rows (the common case) are checked by Eigen's vectorised allFinite; a row is
    // rescanned element by element only to name the bad value.
    if (v.col_stride == 1 &&
        Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(p + i * v.row_stride, v.cols)
            .allFinite())
      continue;
    for (std::int64_t j = 0; j < v.cols; ++j) {
      const T x = p[i * v.row_stride + j * v.col_stride];
      if (!std::isfinite(x))
        TLKIT_THROW_ARG("{}: non-finite value {} at row {}, column {}", what, x, row_offset + i, j);
    }
  }
}
}  // namespace

void check_finite(const FeatureView& v, std::int64_t row_offset, const char* what) {
  if (v.dtype == Real::kFloat32)
    check_finite_typed<float>(v, row_offset, what);
  else
    check_finite_typed<double>(v, row_offset, what);
}

void copy_row(const FeatureView& v, std::int64_t i, double* dst) {
  // Fast paths for the contiguous layouts; the strided fallback covers Fortran order.
  if (v.col_stride == 1 && v.dtype == Real::kFloat32) {
    const float* src = static_cast<const float*>(v.data) + i * v.row_stride;
    std::copy(src, src + v.cols, dst);
  } else if (v.col_stride == 1) {
    const double* src = static_cast<const double*>(v.data) + i * v.row_stride;
    std::copy(src, src + v.cols, dst);
  } else {
    for (std::int64_t j = 0; j < v.cols; ++j) dst[j] = v.at(i, j);
  }
}

void copy_rows(const FeatureView& v, std::vector<double>& out) {
  const std::int64_t d = v.cols;
  out.resize(static_cast<std::size_t>(v.rows * d));
  for (std::int64_t i = 0; i < v.rows; ++i) copy_row(v, i, out.data() + i * d);
}

void syrk_accumulate_rows(const double* b, std::int64_t rows, std::int64_t d, double* gram,
                          double alpha) {
  if (rows == 0) return;
  // Row-major B (rows x d) is column-major B^T (d x rows) with ld = d; B^T B = A A^T.
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(d), static_cast<int>(rows),
              alpha, b, static_cast<int>(d), 1.0, gram, static_cast<int>(d));
}

void syrk_kernel(const double* f, std::int64_t n, std::int64_t d, double* kernel) {
  // Row-major F (n x d) is column-major A = F^T (d x n); F F^T = A^T A.
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, static_cast<int>(n), static_cast<int>(d), 1.0,
              f, static_cast<int>(d), 0.0, kernel, static_cast<int>(n));
}

SymmetricEigen::SymmetricEigen(Eigen::MatrixXd a) : reflectors_(std::move(a)) {
  const lapack_int n = static_cast<lapack_int>(reflectors_.rows());
  TLKIT_ASSERT(reflectors_.cols() == n);
  values_.resize(n);
  if (n == 0) return;
  std::vector<double> e(static_cast<std::size_t>(n));
  tau_.resize(static_cast<std::size_t>(n));
  lapack_int info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'U', n, reflectors_.data(), n, values_.data(),
                                   e.data(), tau_.data());
  if (info != 0) throw std::runtime_error(fmt::format("LAPACK dsytrd failed (info = {})", info));
  t_vectors_.resize(n, n);
  info = LAPACKE_dstedc(LAPACK_COL_MAJOR, 'I', n, values_.data(), e.data(), t_vectors_.data(), n);
  if (info != 0)
    throw std::runtime_error(
        fmt::format("LAPACK dstedc failed to converge (info = {}) on a {}x{} "
                    "matrix",
                    info, n, n));
}

Eigen::MatrixXd SymmetricEigen::project(const Eigen::MatrixXd& b) const {
  const lapack_int n = static_cast<lapack_int>(size());
  TLKIT_ASSERT(b.rows() == n);
  if (n == 0 || b.cols() == 0) return Eigen::MatrixXd::Zero(n, b.cols());
  Eigen::MatrixXd qtb = b;
  const lapack_int info =
      LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'U', 'T', n, static_cast<lapack_int>(qtb.cols()),
                     reflectors_.data(), n, tau_.data(), qtb.data(), n);
  if (info != 0) throw std::runtime_error(fmt::format("LAPACK dormtr failed (info = {})", info));
  return gemm_tn(t_vectors_, qtb);
}

Eigen::MatrixXd SymmetricEigen::vectors(Eigen::Index first, Eigen::Index count) const {
  const lapack_int n = static_cast<lapack_int>(size());
  TLKIT_ASSERT(first >= 0 && count >= 0 && first + count <= n);
  Eigen::MatrixXd v = t_vectors_.middleCols(first, count);
  if (count == 0) return v;
  const lapack_int info =
      LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'U', 'N', n, static_cast<lapack_int>(count),
                     reflectors_.data(), n, tau_.data(), v.data(), n);
  if (info != 0) throw std::runtime_error(fmt::format("LAPACK dormtr failed (info = {})", info));
  return v;
}

void symmetric_eigen_project(Eigen::MatrixXd& a, const Eigen::MatrixXd& b, Eigen::VectorXd& w,
                             Eigen::MatrixXd& vtb) {
  const SymmetricEigen eig(std::move(a));
  w = eig.values();
  vtb = eig.project(b);
}

Eigen::MatrixXd gemm_tn(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  TLKIT_ASSERT(a.rows() == b.rows());
  Eigen::MatrixXd c(a.cols(), b.cols());
  if (c.size() == 0) return c;
  if (a.rows() == 0) {
    c.setZero();
    return c;
  }
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(a.cols()),
              static_cast<int>(b.cols()), static_cast<int>(a.rows()), 1.0, a.data(),
              static_cast<int>(a.rows()), b.data(), static_cast<int>(b.rows()), 0.0, c.data(),
              static_cast<int>(c.rows()));
  return c;
}

namespace {
std::mutex g_scope_mutex;
int g_open_scopes = 0;  // SingleThreadScopes open now, on any thread
int g_saved_blas = 0;   // OpenBLAS's thread count before the first of them opened
}  // namespace

SingleThreadScope::SingleThreadScope(bool active) : active_(active) {
  if (!active) return;
  {
    const std::lock_guard<std::mutex> lock(g_scope_mutex);
    if (g_open_scopes++ == 0) {
      g_saved_blas = openblas_get_num_threads();
      if (g_saved_blas > 1) openblas_set_num_threads(1);
    }
  }
  omp_ = omp_get_max_threads();
  if (omp_ > 1) omp_set_num_threads(1);
}

SingleThreadScope::~SingleThreadScope() {
  if (!active_) return;
  {
    const std::lock_guard<std::mutex> lock(g_scope_mutex);
    if (--g_open_scopes == 0 && g_saved_blas > 1) openblas_set_num_threads(g_saved_blas);
  }
  if (omp_ > 1) omp_set_num_threads(omp_);
}

}  // namespace tlkit::detail

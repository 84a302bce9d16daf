// Multinomial logistic regression by L-BFGS: the `logistic` metric's fit, shared with
// `tlkit finetune --mode linear` (include/tlkit/core/linear_probe.h).
#include "tlkit/core/linear_probe.h"

#include <cblas.h>
#include <lbfgs.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "linalg.h"
#include "tlkit/core/error.h"

namespace tlkit {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Problem {
  Eigen::Map<const RowMatrix> x;  // n x d
  const std::int64_t* y;
  std::int64_t classes;
  double c;
  int iterations = 0;
  const std::function<void(double*, std::size_t)>* reduce_sum = nullptr;  // split rows
};

// The two products of each L-BFGS step go to BLAS: Eigen's own GEMM was slow for this skinny
// shape (N x D times D x C with C ~ 10: 35 ms per step at 5000 x 1280 x 10). Small problems (the
// probes of a few hundred samples) run BLAS on one thread (detail::SingleThreadScope): a second
// thread gains nothing there, and on a busy machine its spin-waits made a 300 x 1280 x 10 fit 6x
// slower (measured with both cores loaded: 10.7 s with 2 threads, 1.75 s with 1).

// out (n x c, column-major) = X (n x d, row-major) W (d x c, column-major).
void times_w(const Problem& p, const double* w, double* out) {
  const int n = static_cast<int>(p.x.rows()), d = static_cast<int>(p.x.cols());
  const int c = static_cast<int>(p.classes);
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, n, c, d, 1.0, p.x.data(), d, w, d, 0.0, out,
              n);
}
// out (d x c, column-major) = X^T (d x n) G (n x c, column-major).
void transpose_times(const Problem& p, const double* g, double* out) {
  const int n = static_cast<int>(p.x.rows()), d = static_cast<int>(p.x.cols());
  const int c = static_cast<int>(p.classes);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, c, n, 1.0, p.x.data(), d, g, n, 0.0,
              out, d);
}

// theta = [W^T (d x C, column-major, i.e. W row-major), b (C)].
lbfgsfloatval_t objective(void* inst, const lbfgsfloatval_t* theta, lbfgsfloatval_t* grad,
                          const int, const lbfgsfloatval_t) {
  const auto& p = *static_cast<const Problem*>(inst);
  const std::int64_t d = p.x.cols(), c = p.classes;
  const Eigen::Map<const Eigen::MatrixXd> w(theta, d, c);
  const Eigen::Map<const Eigen::VectorXd> b(theta + d * c, c);
  Eigen::MatrixXd logits(p.x.rows(), c);
  if (p.x.rows() > 0) times_w(p, theta, logits.data());
  logits.rowwise() += b.transpose();
  // Split rows: the data part first, summed over the processes, then the penalty.
  double loss = p.reduce_sum ? 0.0 : 0.5 * w.squaredNorm();
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double mx = logits.row(i).maxCoeff();
    logits.row(i) = (logits.row(i).array() - mx).exp();
    const double sum = logits.row(i).sum();
    loss += p.c * (std::log(sum) + mx - (std::log(logits(i, p.y[i])) + mx));
    logits.row(i) /= sum;      // softmax
    logits(i, p.y[i]) -= 1.0;  // d loss / d logits
  }
  logits *= p.c;
  Eigen::Map<Eigen::MatrixXd> gw(grad, d, c);
  Eigen::Map<Eigen::VectorXd> gb(grad + d * c, c);
  if (p.x.rows() > 0)
    transpose_times(p, logits.data(), grad);
  else
    gw.setZero();
  if (p.reduce_sum) {
    gb = logits.colwise().sum().transpose();
    std::vector<double> sums(static_cast<std::size_t>(d * c + c + 1));
    std::copy(grad, grad + d * c + c, sums.begin());
    sums.back() = loss;
    (*p.reduce_sum)(sums.data(), sums.size());
    std::copy(sums.begin(), sums.end() - 1, grad);
    gw += w;
    return sums.back() + 0.5 * w.squaredNorm();
  }
  gw += w;
  gb = logits.colwise().sum().transpose();
  return loss;
}

// liblbfgs calls this after every iteration with its number k (1-based).
int count_iterations(void* inst, const lbfgsfloatval_t*, const lbfgsfloatval_t*,
                     const lbfgsfloatval_t, const lbfgsfloatval_t, const lbfgsfloatval_t,
                     const lbfgsfloatval_t, int, int k, int) {
  static_cast<Problem*>(inst)->iterations = k;
  return 0;
}

struct LbfgsFree {
  void operator()(lbfgsfloatval_t* p) const { lbfgs_free(p); }
};

}  // namespace

LogisticModel fit_logistic(const double* x, std::int64_t n, std::int64_t d, const std::int64_t* y,
                           std::int64_t classes, const LogisticOptions& options) {
  TLKIT_CHECK_ARG((n > 0 || options.reduce_sum) && d > 0,
                  "logistic regression on an empty input ({} x {})", n, d);
  TLKIT_CHECK_ARG(classes >= 2, "logistic regression needs at least 2 classes, got {}", classes);
  TLKIT_CHECK_ARG(options.c > 0 && std::isfinite(options.c),
                  "logistic regression: C must be a positive number, got {}", options.c);
  for (std::int64_t i = 0; i < n; ++i)
    TLKIT_CHECK_ARG(y[i] >= 0 && y[i] < classes, "label {} of row {} is outside [0, {})", y[i], i,
                    classes);
  Problem prob{Eigen::Map<const RowMatrix>(x, n, d), y, classes, options.c};
  if (options.reduce_sum) prob.reduce_sum = &options.reduce_sum;
  const detail::SingleThreadScope single(n * d * classes <= (std::int64_t{1} << 22));
  const int dim = static_cast<int>(d * classes + classes);
  std::unique_ptr<lbfgsfloatval_t, LbfgsFree> theta(lbfgs_malloc(dim));
  TLKIT_ASSERT(theta != nullptr);
  std::fill(theta.get(), theta.get() + dim, 0.0);
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.m = 20;
  param.epsilon = options.epsilon;
  param.max_iterations = options.max_iterations;
  LogisticModel m;
  m.classes = classes;
  m.dim = d;
  lbfgsfloatval_t fx = 0;
  m.status = lbfgs(dim, theta.get(), &fx, objective, count_iterations, &prob, &param);
  m.iterations = prob.iterations;
  // A line search that can no longer improve at the optimum reports a rounding error; accept it
  // when the gradient is small relative to the objective's scale.
  std::vector<double> grad(static_cast<std::size_t>(dim));
  m.objective = objective(&prob, theta.get(), grad.data(), dim, 0);
  m.gradient_norm = Eigen::Map<Eigen::VectorXd>(grad.data(), dim).norm();
  m.converged = m.status == LBFGS_SUCCESS || m.status == LBFGS_ALREADY_MINIMIZED ||
                m.gradient_norm <= 1e-6 * std::max(1.0, std::abs(m.objective));
  m.weights.assign(theta.get(), theta.get() + d * classes);  // W^T column-major = W row-major
  m.bias.assign(theta.get() + d * classes, theta.get() + dim);
  return m;
}

std::vector<std::int64_t> predict_logistic(const LogisticModel& m, const double* x,
                                           std::int64_t n) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  if (n == 0) return out;
  const Eigen::Map<const RowMatrix> xm(x, n, m.dim);
  const Eigen::Map<const RowMatrix> w(m.weights.data(), m.classes, m.dim);
  const Eigen::Map<const Eigen::VectorXd> b(m.bias.data(), m.classes);
  Eigen::MatrixXd logits = xm * w.transpose();
  logits.rowwise() += b.transpose();
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    Eigen::Index arg;
    logits.row(i).maxCoeff(&arg);  // first maximum on ties
    out[static_cast<std::size_t>(i)] = arg;
  }
  return out;
}

double logistic_accuracy(const LogisticModel& m, const double* x, std::int64_t n,
                         const std::int64_t* y) {
  if (n == 0) return 0.0;
  const std::vector<std::int64_t> p = predict_logistic(m, x, n);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) correct += p[i] == y[i];
  return 100.0 * static_cast<double>(correct) / static_cast<double>(n);
}

std::vector<double> default_linear_probe_cs() { return {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3}; }

LinearProbeResult linear_probe(const LabelledRows& train, const LabelledRows& val,
                               const LabelledRows& test, std::int64_t d, std::int64_t classes,
                               const std::vector<double>& cs, const LogisticOptions& base) {
  TLKIT_CHECK_ARG(!cs.empty(), "linear probe: empty grid of C values");
  TLKIT_CHECK_ARG(val.n() > 0, "linear probe: the validation split is empty");
  LinearProbeResult r;
  std::vector<LogisticModel> models;
  for (const double c : cs) {
    const auto t0 = std::chrono::steady_clock::now();
    LogisticOptions o = base;
    o.c = c;
    LogisticModel m = fit_logistic(train.x.data(), train.n(), d, train.y.data(), classes, o);
    LinearProbePoint p;
    p.c = c;
    p.converged = m.converged;
    p.train_accuracy = logistic_accuracy(m, train.x.data(), train.n(), train.y.data());
    p.val_accuracy = logistic_accuracy(m, val.x.data(), val.n(), val.y.data());
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r.grid.empty() || p.val_accuracy > r.grid[r.best].val_accuracy) r.best = r.grid.size();
    r.grid.push_back(p);
    models.push_back(std::move(m));
  }
  r.model = std::move(models[r.best]);
  r.test_accuracy = logistic_accuracy(r.model, test.x.data(), test.n(), test.y.data());
  return r;
}

}  // namespace tlkit

// SFDA (Shao et al. 2022): a shrinkage LDA classifier, refitted after ConfMix.
// Formulas and the reference implementation: docs/metrics/sfda.md.
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "metric_context.h"

namespace tlkit::metrics {
namespace {

using RowMatrix = detail::RowMatrixXd;

// The reference's `iterative_A`: three rounds of two normalised power steps from the row sums,
// returning x^T A y. An estimate of the largest eigenvalue that the shrinkage formula depends on,
// so it is reproduced rather than replaced by the exact value.
double power_estimate(const Eigen::MatrixXd& upper) {
  const auto a = upper.selfadjointView<Eigen::Upper>();
  Eigen::VectorXd x = a * Eigen::VectorXd::Ones(upper.rows()), y;  // the row sums
  for (int it = 0; it < 3; ++it) {
    Eigen::VectorXd t = a * x;
    y = t / t.norm();
    t = a * y;
    x = t / t.norm();
  }
  return x.dot(a * y);
}

// Shrinks S (upper triangle) in place towards (tr S / D) I with weight `lambda` (sklearn's shrunk
// covariance).
void shrink(Eigen::MatrixXd& s, double lambda) {
  const double mu = s.trace() / static_cast<double>(s.rows());
  s *= 1.0 - lambda;
  s.diagonal().array() += lambda * mu;
}

// s (upper triangle, D x D) += alpha a a^T for a (D x k, column-major).
void syrk_update(Eigen::MatrixXd& s, const Eigen::MatrixXd& a, double alpha) {
  detail::syrk_accumulate_rows(a.data(), a.cols(), a.rows(), s.data(), alpha);
}

// LDA with shared covariance `sw`: coef = means S^-1 (C x D), intercept = -1/2 diag(means coef^T)
// + ln priors. The reference solves eigh(S_b, S) and forms means V V^T, with V^T S V = I, which is
// means S^-1: the between-class matrix only orders eigenvectors that are all used, so a Cholesky
// solve gives the same classifier.
// `sw` holds the upper triangle and is overwritten by its Cholesky factor.
void fit_lda(Eigen::MatrixXd& sw, const Eigen::MatrixXd& means /* D x C */,
             const Eigen::VectorXd& log_priors, Eigen::MatrixXd& coef_t /* D x C */,
             Eigen::VectorXd& intercept) {
  Eigen::MatrixXd& l = sw;
  const lapack_int d = static_cast<lapack_int>(l.rows());
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', d, l.data(), d);
  TLKIT_CHECK_ARG(info == 0,
                  "sfda: the shrunk within-class covariance is not positive definite "
                  "(shrinkage too small for {}-dimensional features; reduce them with PCA)",
                  d);
  coef_t = means;
  info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', d, static_cast<lapack_int>(coef_t.cols()), l.data(),
                        d, coef_t.data(), d);
  TLKIT_ASSERT(info == 0);
  intercept = -0.5 * (means.transpose() * coef_t).diagonal() + log_priors;
}

// scores (cnt x C, row-major) = X (cnt x D, row-major) coef_t (D x C, column-major), by BLAS.
void class_scores(const double* x, std::int64_t cnt, std::int64_t d, const Eigen::MatrixXd& coef_t,
                  RowMatrix& scores) {
  const std::int64_t c = coef_t.cols();
  scores.resize(cnt, c);
  // coef_t column-major D x C is row-major C x D: scores = X (C x D)^T.
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(cnt), static_cast<int>(c),
              static_cast<int>(d), 1.0, x, static_cast<int>(d), coef_t.data(), static_cast<int>(d),
              0.0, scores.data(), static_cast<int>(c));
}

void softmax_rows(RowMatrix& s) {
  for (Eigen::Index i = 0; i < s.rows(); ++i) {
    s.row(i).array() -= s.row(i).maxCoeff();
    s.row(i) = s.row(i).array().exp();
    s.row(i) /= s.row(i).sum();
  }
}

}  // namespace

void sfda(MetricContext& ctx, MetricValue& out) {
  const auto& st = ctx.stats();
  const std::int64_t n_int = ctx.n(), d = ctx.d(), classes = ctx.num_classes();
  const double n = static_cast<double>(n_int);
  Eigen::VectorXd counts(classes), log_priors(classes);
  for (std::int64_t c = 0; c < classes; ++c) {
    counts[c] = static_cast<double>(ctx.counts()[c]);
    log_priors[c] = std::log(counts[c] / n);
  }
  Eigen::MatrixXd means = st.class_sums;  // D x C
  for (std::int64_t c = 0; c < classes; ++c) means.col(c) /= counts[c];

  // S_w = sum_c prior_c cov_c (bias 1) = (F^T F - sum_c S_c S_c^T / n_c) / N. Symmetric
  // matrices from here on hold their upper triangle only (BLAS syrk/syr2k, LAPACK 'U').
  Eigen::MatrixXd sw = st.gram;
  syrk_update(sw, st.class_sums * counts.cwiseSqrt().cwiseInverse().asDiagonal(), -1.0);
  sw /= n;
  const double lambda = std::max(std::exp(-5.0 * power_estimate(sw)), 1e-10);
  out.details["shrinkage"] = lambda;

  Eigen::MatrixXd coef_t;
  Eigen::VectorXd intercept;
  shrink(sw, lambda);
  fit_lda(sw, means, log_priors, coef_t, intercept);

  // Outer means m_c: the unweighted mean of the other classes' means.
  const Eigen::VectorXd mean_sum = means.rowwise().sum();
  Eigen::MatrixXd outer(d, classes);
  for (std::int64_t c = 0; c < classes; ++c)
    outer.col(c) = (mean_sum - means.col(c)) / static_cast<double>(classes - 1);

  // One pass: p_i, the first classifier's probability of the true class softened by a second
  // softmax, and, for ConfMix x'_i = m_c + p_i (x_i - m_c) (c = y_i), the weighted Gram
  // sum_i p_i^2 x_i x_i^T with per-class sums of p^2 x, p x, p^2 and p.
  Eigen::VectorXd p(ctx.rows());  // this process's rows
  RowMatrix scores, scaled;
  Eigen::MatrixXd gw = Eigen::MatrixXd::Zero(d, d), a = Eigen::MatrixXd::Zero(d, classes),
                  bsum = Eigen::MatrixXd::Zero(d, classes);
  Eigen::VectorXd q = Eigen::VectorXd::Zero(classes), r = Eigen::VectorXd::Zero(classes);
  ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    class_scores(rows, cnt, d, coef_t, scores);
    scores.rowwise() += intercept.transpose();
    softmax_rows(scores);
    softmax_rows(scores);  // the reference's "soften the probability using softmax"
    const Eigen::Map<const RowMatrix> x(rows, cnt, d);
    scaled.resize(cnt, d);
    for (std::int64_t i = 0; i < cnt; ++i) {
      const int c = ctx.y()[b + i];
      const double pi = scores(i, c);
      p[b + i] = pi;
      scaled.row(i) = pi * x.row(i);
      a.col(c) += pi * scaled.row(i).transpose();
      bsum.col(c) += scaled.row(i).transpose();
      q[c] += pi * pi;
      r[c] += pi;
    }
    detail::syrk_accumulate_rows(scaled.data(), cnt, d, gw.data());
  });
  for (Eigen::MatrixXd* m : {&gw, &a, &bsum}) ctx.reduce_sum(*m);
  ctx.reduce_sum(q);
  ctx.reduce_sum(r);
  // sum_c [sum p^2 u u^T - n_c ubar ubar^T], u = x - m_c, ubar = mean of p u over the class:
  // Gw - A M^T - M A^T + M diag(q) M^T - U diag(n) U^T = Gw - (B M^T + M B^T) - U diag(n) U^T
  // with B = A - M diag(q) / 2: one syr2k and one syrk.
  Eigen::MatrixXd& sw2 = gw;
  Eigen::MatrixXd ubar(d, classes);
  for (std::int64_t c = 0; c < classes; ++c)
    ubar.col(c) = (bsum.col(c) - r[c] * outer.col(c)) / counts[c];
  const Eigen::MatrixXd bmat = a - 0.5 * outer * q.asDiagonal();
  cblas_dsyr2k(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(d),
               static_cast<int>(classes), -1.0, bmat.data(), static_cast<int>(d), outer.data(),
               static_cast<int>(d), 1.0, sw2.data(), static_cast<int>(d));
  syrk_update(sw2, ubar * counts.cwiseSqrt().asDiagonal(), -1.0);
  const Eigen::MatrixXd means2 = outer + ubar;
  sw2 /= n;
  shrink(sw2, lambda);
  fit_lda(sw2, means2, log_priors, coef_t, intercept);

  // Second classifier on x'_i: x'_i . coef_k = m_c . coef_k + p_i (x_i - m_c) . coef_k.
  const Eigen::MatrixXd outer_coef = outer.transpose() * coef_t;  // C x C: m_c . coef_k
  double total = 0.0;
  ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    class_scores(rows, cnt, d, coef_t, scores);
    for (std::int64_t i = 0; i < cnt; ++i) {
      const int c = ctx.y()[b + i];
      const double pi = p[b + i];
      scores.row(i) = pi * scores.row(i) + (1.0 - pi) * outer_coef.row(c);
    }
    scores.rowwise() += intercept.transpose();
    softmax_rows(scores);
    for (std::int64_t i = 0; i < cnt; ++i) total += scores(i, ctx.y()[b + i]);
  });
  ctx.reduce_sum(total);
  out.score = total / n;
  note_if_saturated(out, 1.0, ctx);
}

}  // namespace tlkit::metrics

namespace tlkit::metrics {

// ETran's per-model components (Gholami et al., ICCV 2023, as mgholamikn/ETran computes them);
// the zoo-level ETran = 0.85 minmax(etran_lda) + 0.15 minmax(etran_energy) is formed by
// `tlkit evaluate` from the two columns.
//
// etran_lda: mean p(y_i | x_i) of the reference's "LDA", which takes eigh of the non-symmetric
// inv(S_w) S_b; eigh returns an orthonormal V, so coef = M V V^T = M and the classifier is
// softmax_c(x . mu_c - |mu_c|^2 / 2 + ln prior_c), a nearest-class-mean rule.
void etran_lda(MetricContext& ctx, MetricValue& out) {
  const auto& st = ctx.moments();
  const std::int64_t d = ctx.d(), classes = ctx.num_classes();
  Eigen::MatrixXd means = st.class_sums;
  Eigen::VectorXd intercept(classes);
  for (std::int64_t c = 0; c < classes; ++c) {
    const double nc = static_cast<double>(ctx.counts()[c]);
    means.col(c) /= nc;
    intercept[c] = -0.5 * means.col(c).squaredNorm() + std::log(nc / static_cast<double>(ctx.n()));
  }
  RowMatrix scores;
  double total = 0.0;
  ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    class_scores(rows, cnt, d, means, scores);
    scores.rowwise() += intercept.transpose();
    softmax_rows(scores);
    for (std::int64_t i = 0; i < cnt; ++i) total += scores(i, ctx.y()[b + i]);
  });
  ctx.reduce_sum(total);
  out.score = total / static_cast<double>(ctx.n());
}

// etran_energy: the mean of the lowest 0.5 % of e_i = logsumexp_d(x_id) over the feature rows
// (the reference's Energy_Score(X_features, 0.5, 'bot'): int(0.5 * 10) * N // 1000 rows, so it
// is undefined below N = 200).
void etran_energy(MetricContext& ctx, MetricValue& out) {
  const std::int64_t n = ctx.n(), d = ctx.d();
  const std::int64_t m = 5 * n / 1000;
  if (m == 0) {  // undefined, not an error: the other metrics of the run still count
    out.score = std::numeric_limits<double>::quiet_NaN();
    out.notes.push_back(fmt::format("undefined for N = {} < 200 (its bottom 0.5 % is empty)", n));
    return;
  }
  std::vector<double> e(static_cast<std::size_t>(ctx.rows()));
  ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    for (std::int64_t i = 0; i < cnt; ++i) {
      const Eigen::Map<const Eigen::ArrayXd> x(rows + i * d, d);
      const double mx = x.maxCoeff();
      e[b + i] = mx + std::log((x - mx).exp().sum());
    }
  });
  if (ctx.sharded()) {
    // The m lowest of all the rows are among the union of each process's m lowest: those
    // candidates (at most m per process) are exchanged, and every process selects from them.
    const std::size_t mine = std::min(e.size(), static_cast<std::size_t>(m));
    std::partial_sort(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(mine), e.end());
    const std::string all =
        ctx.all_gather(std::string(reinterpret_cast<const char*>(e.data()), mine * sizeof(double)));
    e.resize(all.size() / sizeof(double));
    std::memcpy(e.data(), all.data(), e.size() * sizeof(double));
  }
  std::partial_sort(e.begin(), e.begin() + m, e.end());
  out.score = std::accumulate(e.begin(), e.begin() + m, 0.0) / static_cast<double>(m);
}

}  // namespace tlkit::metrics

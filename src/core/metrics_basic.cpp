// LogME, LEEP, NCE, H-score, shrinkage H-score and TransRate on the shared MetricContext.
// Formulas, papers and the reference implementations' deviations: docs/metrics/.
#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "metric_context.h"

namespace tlkit::metrics {
namespace {

// Source-class statistics for LEEP and NCE: joint[c][z] = sum_{i in c} theta_iz / N.
Eigen::MatrixXd empirical_joint(const FeatureView& p, const std::vector<int>& y,
                                std::int64_t classes, bool hard) {
  Eigen::MatrixXd joint = Eigen::MatrixXd::Zero(classes, p.cols);
  const double inv_n = 1.0 / static_cast<double>(p.rows);
  for (std::int64_t i = 0; i < p.rows; ++i) {
    if (hard) {
      std::int64_t z = 0;  // argmax, first index on ties (numpy's rule)
      for (std::int64_t j = 1; j < p.cols; ++j)
        if (p.at(i, j) > p.at(i, z)) z = j;
      joint(y[i], z) += inv_n;
    } else {
      for (std::int64_t j = 0; j < p.cols; ++j) joint(y[i], j) += p.at(i, j) * inv_n;
    }
  }
  return joint;
}

}  // namespace

// LEEP = mean_i ln sum_z theta_iz P(y_i | z), P(y | z) = joint(y, z) / sum_y joint(y, z).
// A source class z that no sample puts any mass on has no P(. | z); its theta_iz are all 0, so
// the term is 0 (the reference code would divide 0 by 0). log = false gives the mean of the
// expected empirical prediction itself (TencentARC/SFDA's NLEEP variant).
double leep_value(const FeatureView& p, const std::vector<int>& y, std::int64_t classes, bool log) {
  const Eigen::MatrixXd joint = empirical_joint(p, y, classes, /*hard=*/false);
  const Eigen::RowVectorXd pz = joint.colwise().sum();
  Eigen::MatrixXd cond = joint;
  for (Eigen::Index z = 0; z < cond.cols(); ++z)
    cond.col(z) = pz[z] > 0.0 ? Eigen::VectorXd(joint.col(z) / pz[z])
                              : Eigen::VectorXd::Zero(cond.rows());
  double total = 0.0;
  for (std::int64_t i = 0; i < p.rows; ++i) {
    double eep = 0.0;
    for (std::int64_t z = 0; z < p.cols; ++z) eep += p.at(i, z) * cond(y[i], z);
    total += log ? std::log(eep) : eep;
  }
  return total / static_cast<double>(p.rows);
}

void logme(MetricContext& ctx, MetricValue& out) {
  const LogmeResult& r = ctx.logme();
  out.score = r.score;
  out.details["rank"] = static_cast<double>(r.rank);
  out.converged = std::all_of(r.converged.begin(), r.converged.end(), [](bool c) { return c; });
}

void leep(MetricContext& ctx, MetricValue& out) {
  out.score = leep_value(ctx.inputs().probs, ctx.y(), ctx.num_classes(), /*log=*/true);
}

// NCE = -H(Y | Z) = sum_z P(z) sum_y P(y | z) ln P(y | z), Z = argmax of the source probabilities.
void nce(MetricContext& ctx, MetricValue& out) {
  const Eigen::MatrixXd joint =
      empirical_joint(ctx.inputs().probs, ctx.y(), ctx.num_classes(), /*hard=*/true);
  double neg_h = 0.0;
  for (Eigen::Index z = 0; z < joint.cols(); ++z) {
    const double pz = joint.col(z).sum();
    if (pz <= 0.0) continue;
    for (Eigen::Index c = 0; c < joint.rows(); ++c) {
      const double pyz = joint(c, z) / pz;
      if (pyz > 0.0) neg_h += pz * pyz * std::log(pyz);
    }
  }
  out.score = neg_h;
}

// H-score = tr(pinv(cov f) cov g), g_i = mean of f over y_i's class (both covariances with the
// same normalisation, which cancels): tr(pinv(T) B) in T's eigenbasis. pinv as numpy's with
// rcond = 1e-15: eigenvalues with |lambda| <= 1e-15 max |lambda| are dropped.
void hscore(MetricContext& ctx, MetricValue& out) {
  const auto& sc = ctx.scatter();
  if (ctx.params().text("hscore", "variant") == "google") {
    // sum_d pinv(cov f)_dd (cov g)_dd with rcond 1e-5; both covariances carry 1 / (N - 1).
    const double cut = 1e-5 * sc.eigenvalues.cwiseAbs().maxCoeff();
    const Eigen::MatrixXd v = sc.eig.vectors(0, sc.eig.size());
    Eigen::VectorXd pinv_diag = Eigen::VectorXd::Zero(ctx.d());
    for (Eigen::Index i = 0; i < sc.eigenvalues.size(); ++i)
      if (std::abs(sc.eigenvalues[i]) > cut) pinv_diag += v.col(i).cwiseAbs2() / sc.eigenvalues[i];
    const auto& st = ctx.stats();
    Eigen::VectorXd b_diag = Eigen::VectorXd::Zero(ctx.d());
    for (std::int64_t c = 0; c < ctx.num_classes(); ++c) {
      const double nc = static_cast<double>(ctx.counts()[c]);
      b_diag += nc * (st.class_sums.col(c) / nc - sc.mean).cwiseAbs2();
    }
    out.score = pinv_diag.dot(b_diag);  // the (N - 1) factors cancel
    return;
  }
  const double cut = 1e-15 * sc.eigenvalues.cwiseAbs().maxCoeff();
  double h = 0.0;
  for (Eigen::Index i = 0; i < sc.eigenvalues.size(); ++i) {
    const double lam = sc.eigenvalues[i];
    if (std::abs(lam) > cut) h += sc.proj.row(i).squaredNorm() / lam;
  }
  out.score = h;
}

// Shrinkage H-score (Ibrahim et al. 2022): Ledoit-Wolf shrunk covariance of the centred features,
// Sigma_a = (1 - a) T / N + a (tr T / (N D)) I, and score = tr(pinv(Sigma_a) (1 - a) cov g) with
// cov g = B / (N - 1) as np.cov computes it (TLlib's regularized_h_score). a is sklearn's
// ledoit_wolf_shrinkage on the centred data, computed here from T and sum_i ||f_i - mu||^4.
void hscore_shrink(MetricContext& ctx, MetricValue& out) {
  const auto& sc = ctx.scatter();
  const std::int64_t d = ctx.d();
  const double n = static_cast<double>(ctx.n()), p = static_cast<double>(d);
  double alpha = 0.0;
  if (d > 1) {
    double beta_sum = 0.0;  // sum_i ||x_i||^4, x_i = f_i - mu
    ctx.for_blocks([&](const double* rows, std::int64_t, std::int64_t cnt) {
      for (std::int64_t i = 0; i < cnt; ++i) {
        const double sq =
            (Eigen::Map<const Eigen::VectorXd>(rows + i * d, d) - sc.mean).squaredNorm();
        beta_sum += sq * sq;
      }
    });
    // delta_ = ||X^T X||_F^2 / n^2 = sum of squared eigenvalues of T / n^2.
    const double delta_raw = sc.eigenvalues.squaredNorm() / (n * n);
    const double mu = sc.trace / (n * p);
    double beta = (beta_sum / n - delta_raw) / (p * n);
    const double delta = (delta_raw - 2.0 * mu * (sc.trace / n) + p * mu * mu) / p;
    beta = std::min(beta, delta);
    alpha = beta == 0.0 ? 0.0 : beta / delta;
  }
  const double mu = sc.trace / (n * p);
  double h = 0.0;
  Eigen::VectorXd shrunk = (1.0 - alpha) * sc.eigenvalues / n;
  shrunk.array() += alpha * mu;
  const double cut = 1e-15 * shrunk.cwiseAbs().maxCoeff();
  for (Eigen::Index i = 0; i < shrunk.size(); ++i)
    if (std::abs(shrunk[i]) > cut) h += sc.proj.row(i).squaredNorm() / shrunk[i];
  out.score = h * (1.0 - alpha) / (n - 1.0);
  out.details["shrinkage"] = alpha;
}

// TransRate (Huang et al. 2022): R(Z) - class term, R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))
// on globally centred features Z. R(Z) comes from T's eigenvalues; each class's R(Z_c) (its rows
// of Z, n = n_c) from a Cholesky factorisation of the smaller of Z_c Z_c^T and Z_c^T Z_c
// (logdet(I + A^T A s) = logdet(I + A A^T s)).
void transrate(MetricContext& ctx, MetricValue& out) {
  const auto& sc = ctx.scatter();
  const double eps = ctx.params().number("transrate", "eps");
  const std::string weighting = ctx.params().text("transrate", "weighting");
  const std::int64_t d = ctx.d(), n_all = ctx.n();
  double r_all = 0.0;
  for (Eigen::Index i = 0; i < sc.eigenvalues.size(); ++i)
    r_all += 0.5 * std::log1p(std::max(sc.eigenvalues[i], 0.0) / (static_cast<double>(n_all) * eps));

  // Gather each class's centred rows (row-major), one class at a time to bound memory.
  const std::int64_t classes = ctx.num_classes();
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(classes));
  for (std::int64_t i = 0; i < n_all; ++i) members[ctx.y()[i]].push_back(i);
  double class_term = 0.0;
  std::vector<double> zc;
  for (std::int64_t c = 0; c < classes; ++c) {
    const auto& rows = members[c];
    const std::int64_t nc = static_cast<std::int64_t>(rows.size());
    zc.resize(static_cast<std::size_t>(nc * d));
    for (std::int64_t r = 0; r < nc; ++r)
      for (std::int64_t j = 0; j < d; ++j)
        zc[r * d + j] = ctx.inputs().features.at(rows[r], j) - sc.mean[j];
    const double scale = 1.0 / (static_cast<double>(nc) * eps);
    const std::int64_t m = std::min(nc, d);
    Eigen::MatrixXd a(m, m);
    if (nc <= d)
      detail::syrk_kernel(zc.data(), nc, d, a.data());  // Z_c Z_c^T
    else {
      a.setZero();
      detail::syrk_accumulate_rows(zc.data(), nc, d, a.data());  // Z_c^T Z_c
    }
    a *= scale;
    a.diagonal().array() += 1.0;
    const lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', static_cast<lapack_int>(m),
                                           a.data(), static_cast<lapack_int>(m));
    // I + PSD is positive definite; a failure means the scatter overflowed.
    TLKIT_CHECK_ARG(info == 0, "transrate: the scatter of class {} is not finite (features too "
                    "large?)", ctx.labels()[c]);
    const double r_c = a.diagonal().array().log().sum();  // 1/2 logdet = sum ln L_ii
    const double w = weighting == "tllib" ? 1.0 / static_cast<double>(classes)
                                          : static_cast<double>(nc) / static_cast<double>(n_all);
    class_term += w * r_c;
  }
  out.score = r_all - class_term;
  out.details["rate_all"] = r_all;
  out.details["rate_classes"] = class_term;
}

}  // namespace tlkit::metrics

namespace tlkit::metrics {

// GBC (Pandy et al. 2022): -sum over ordered class pairs i != j of exp(-D_B(i, j)), D_B the
// Bhattacharyya distance between per-class Gaussians with diagonal (or spherical: the mean of
// the diagonal) population variances floored at 1e-4, on the features projected on their
// `pca_dims` principal directions (0: the raw features).
//   D_B = 1/8 sum_d (mu1 - mu2)^2 / s + 1/2 sum_d [ln s - 1/2 ln s1 - 1/2 ln s2],  s = (s1 + s2)/2.
// For spherical Gaussians the bracket is the same in every dimension, so it counts D times
// (log_term = dims, the Bhattacharyya distance of the two Gaussians); google-research's gbc.py
// adds it once (log_term = once).
void gbc(MetricContext& ctx, MetricValue& out) {
  const std::int64_t pca = static_cast<std::int64_t>(ctx.params().number("gbc", "pca_dims"));
  const bool spherical = ctx.params().text("gbc", "gaussian") == "spherical";
  const bool log_once = ctx.params().text("gbc", "log_term") == "once";
  Eigen::MatrixXd z;
  if (pca > 0 && std::min(pca, ctx.n() - 1) < ctx.d()) {
    // Beyond rank N - 1 the centred data has only rounding-level components.
    z = ctx.project_centred(ctx.principal_directions(std::min(pca, ctx.n() - 1)));
  } else {
    z.resize(ctx.n(), ctx.d());
    ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
      z.middleRows(b, cnt) =
          Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
              rows, cnt, ctx.d());
    });
  }
  const std::int64_t k = z.cols(), classes = ctx.num_classes();
  Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(k, classes), var = Eigen::MatrixXd::Zero(k, classes);
  for (std::int64_t i = 0; i < ctx.n(); ++i) mean.col(ctx.y()[i]) += z.row(i).transpose();
  for (std::int64_t c = 0; c < classes; ++c) mean.col(c) /= static_cast<double>(ctx.counts()[c]);
  for (std::int64_t i = 0; i < ctx.n(); ++i)
    var.col(ctx.y()[i]) += (z.row(i).transpose() - mean.col(ctx.y()[i])).cwiseAbs2();
  for (std::int64_t c = 0; c < classes; ++c) {
    var.col(c) /= static_cast<double>(ctx.counts()[c]);
    var.col(c) = var.col(c).cwiseMax(1e-4);
    if (spherical) var.col(c).setConstant(var.col(c).mean());
  }
  const double log_weight = spherical && log_once ? 1.0 / static_cast<double>(k) : 1.0;
  double total = 0.0;
  for (std::int64_t a = 0; a < classes; ++a)
    for (std::int64_t b = a + 1; b < classes; ++b) {
      const Eigen::ArrayXd s = 0.5 * (var.col(a) + var.col(b)).array();
      const double quad = ((mean.col(a) - mean.col(b)).array().square() / s).sum() / 8.0;
      const double logs =
          (s.log() - 0.5 * var.col(a).array().log() - 0.5 * var.col(b).array().log()).sum();
      total += 2.0 * std::exp(-(quad + 0.5 * log_weight * logs));  // (a, b) and (b, a)
    }
  out.score = -total;
  out.details["dims"] = static_cast<double>(k);
}

}  // namespace tlkit::metrics

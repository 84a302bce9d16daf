// LogME, LEEP, NCE, H-score, shrinkage H-score and TransRate on the shared MetricContext.
// Formulas, papers and the reference implementations' deviations: docs/metrics/.
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "metric_context.h"

namespace tlkit::metrics {
namespace {

// Source-class statistics for LEEP and NCE: joint[c][z] = sum_{i in c} theta_iz / N, over this
// process's rows (N: all the rows); `ctx`, when given, sums the table over the processes.
Eigen::MatrixXd empirical_joint(const FeatureView& p, const std::vector<int>& y,
                                std::int64_t classes, bool hard, std::int64_t n,
                                MetricContext* ctx) {
  // Accumulated transposed (Cs x C) so that each sample adds to one contiguous column.
  Eigen::MatrixXd joint_t = Eigen::MatrixXd::Zero(p.cols, classes);
  const double inv_n = 1.0 / static_cast<double>(n);
  std::vector<double> buffer;
  detail::for_row_blocks(p, buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
    for (std::int64_t r = 0; r < cnt; ++r) {
      const Eigen::Map<const Eigen::VectorXd> row(rows + r * p.cols, p.cols);
      if (hard) {
        Eigen::Index z = 0;
        row.maxCoeff(&z);  // argmax, first index on ties (numpy's rule)
        joint_t(z, y[b + r]) += inv_n;
      } else {
        joint_t.col(y[b + r]) += row * inv_n;
      }
    }
  });
  if (ctx) ctx->reduce_sum(joint_t);
  return joint_t.transpose();
}

double leep_impl(const FeatureView& p, const std::vector<int>& y, std::int64_t classes, bool log,
                 std::int64_t n, MetricContext* ctx) {
  const Eigen::MatrixXd joint = empirical_joint(p, y, classes, /*hard=*/false, n, ctx);
  const Eigen::RowVectorXd pz = joint.colwise().sum();
  Eigen::MatrixXd cond = joint;
  for (Eigen::Index z = 0; z < cond.cols(); ++z)
    cond.col(z) =
        pz[z] > 0.0 ? Eigen::VectorXd(joint.col(z) / pz[z]) : Eigen::VectorXd::Zero(cond.rows());
  const Eigen::MatrixXd cond_t = cond.transpose();  // Cs x C: one contiguous column per class
  double total = 0.0;
  std::vector<double> buffer;
  detail::for_row_blocks(p, buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
    for (std::int64_t r = 0; r < cnt; ++r) {
      const double eep =
          Eigen::Map<const Eigen::VectorXd>(rows + r * p.cols, p.cols).dot(cond_t.col(y[b + r]));
      total += log ? std::log(eep) : eep;
    }
  });
  if (ctx) ctx->reduce_sum(total);
  return total / static_cast<double>(n);
}

}  // namespace

// LEEP = mean_i ln sum_z theta_iz P(y_i | z), P(y | z) = joint(y, z) / sum_y joint(y, z).
// A source class z that no sample puts any mass on has no P(. | z); its theta_iz are all 0, so
// the term is 0 (the reference code would divide 0 by 0). log = false gives the mean of the
// expected empirical prediction itself (TencentARC/SFDA's NLEEP variant).
double leep_value(const FeatureView& p, const std::vector<int>& y, std::int64_t classes, bool log) {
  return leep_impl(p, y, classes, log, p.rows, nullptr);
}

double leep_value(MetricContext& ctx, const FeatureView& p, const std::vector<int>& y, bool log) {
  return leep_impl(p, y, ctx.num_classes(), log, ctx.n(), ctx.sharded() ? &ctx : nullptr);
}

void logme(MetricContext& ctx, MetricValue& out) {
  const LogmeResult& r = ctx.logme();
  out.score = r.score;
  out.details["rank"] = static_cast<double>(r.rank);
  out.converged = std::all_of(r.converged.begin(), r.converged.end(), [](bool c) { return c; });
}

void leep(MetricContext& ctx, MetricValue& out) {
  out.score = leep_value(ctx, ctx.inputs().probs, ctx.y(), /*log=*/true);
}

// NCE = -H(Y | Z) = sum_z P(z) sum_y P(y | z) ln P(y | z), Z = argmax of the source probabilities.
void nce(MetricContext& ctx, MetricValue& out) {
  const Eigen::MatrixXd joint =
      empirical_joint(ctx.inputs().probs, ctx.y(), ctx.num_classes(), /*hard=*/true, ctx.n(),
                      ctx.sharded() ? &ctx : nullptr);
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
namespace {

// The between-class deviations d_c = mu_c - mu in the eigenbasis of F^T F, and the pieces of
// T^-1 = (F^T F - N mu mu^T)^-1 by Sherman-Morrison: G^-1 + N G^-1 mu mu^T G^-1 / kappa.
struct GramBasis {
  Eigen::MatrixXd dev;     // D x C: V^T (mu_c - mu)
  Eigen::VectorXd counts;  // n_c
};

GramBasis gram_basis(MetricContext& ctx, const MetricContext::GramEigen& g) {
  GramBasis b;
  b.counts.resize(ctx.num_classes());
  b.dev.resize(g.proj.rows(), ctx.num_classes());
  for (std::int64_t c = 0; c < ctx.num_classes(); ++c) {
    b.counts[c] = static_cast<double>(ctx.counts()[c]);
    b.dev.col(c) = g.proj.col(c) / b.counts[c] - g.mean;
  }
  return b;
}

// sum_c n_c d_c^T (diag(dg) - s m m^T)^-1 d_c, or NaN if that matrix is not safely positive
// definite (then the caller decomposes T itself).
double between_quadratic(const Eigen::VectorXd& dg, double s, const Eigen::VectorXd& m,
                         const GramBasis& b) {
  const Eigen::VectorXd inv = dg.cwiseInverse();
  const double kappa = 1.0 - s * m.dot(inv.cwiseProduct(m));
  if (!(kappa > 1e-8)) return std::numeric_limits<double>::quiet_NaN();
  const Eigen::VectorXd inv_m = inv.cwiseProduct(m);
  double total = 0.0;
  for (Eigen::Index c = 0; c < b.dev.cols(); ++c) {
    const double quad = b.dev.col(c).cwiseAbs2().dot(inv);
    const double cross = b.dev.col(c).dot(inv_m);
    total += b.counts[c] * (quad + s * cross * cross / kappa);
  }
  return total;
}

// sum_i ||P row i||^2 / lambda_i over |lambda_i| > 1e-15 max |lambda|: tr(pinv(A) B B^T) for
// A = V diag(lambda) V^T and P = V^T B, with numpy's pinv cut (rcond 1e-15).
double pinv_quadratic(const Eigen::VectorXd& lambda, const Eigen::MatrixXd& proj) {
  const double cut = 1e-15 * lambda.cwiseAbs().maxCoeff();
  double h = 0.0;
  for (Eigen::Index i = 0; i < lambda.size(); ++i)
    if (std::abs(lambda[i]) > cut) h += proj.row(i).squaredNorm() / lambda[i];
  return h;
}

double hscore_value(MetricContext& ctx) {
  const bool google = ctx.params().text("hscore", "variant") == "google";
  // Fast path: tr(T^-1 B) from LogME's decomposition of F^T F when it is well conditioned (then
  // T is invertible and pinv(T) = T^-1); otherwise T's own eigendecomposition below.
  if (const auto* g = google ? nullptr : ctx.gram_eigen(); g && g->well_conditioned) {
    const double h =
        between_quadratic(g->values, static_cast<double>(ctx.n()), g->mean, gram_basis(ctx, *g));
    if (std::isfinite(h)) return h;
  }
  const auto& sc = ctx.scatter();
  if (google) {
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
    return pinv_diag.dot(b_diag);  // the (N - 1) factors cancel
  }
  return pinv_quadratic(sc.eigenvalues, sc.proj);
}

}  // namespace

void hscore(MetricContext& ctx, MetricValue& out) {
  out.score = hscore_value(ctx);
  // The paper's H-score is at most C - 1 (the google variant's diagonal product has no such bound).
  if (ctx.params().text("hscore", "variant") == "paper")
    note_if_saturated(out, static_cast<double>(ctx.num_classes() - 1), ctx);
}

// Shrinkage H-score (Ibrahim et al. 2022): Ledoit-Wolf shrunk covariance of the centred features,
// Sigma_a = (1 - a) T / N + a (tr T / (N D)) I, and score = tr(pinv(Sigma_a) (1 - a) cov g) with
// cov g = B / (N - 1) as np.cov computes it (TLlib's regularized_h_score). a is sklearn's
// ledoit_wolf_shrinkage on the centred data, computed here from T and sum_i ||f_i - mu||^4.
void hscore_shrink(MetricContext& ctx, MetricValue& out) {
  const std::int64_t d = ctx.d();
  const double n = static_cast<double>(ctx.n()), p = static_cast<double>(d);
  const auto* g = ctx.gram_eigen();
  const bool fast = g && g->well_conditioned;
  // tr T, ||T||_F^2 and the mean: from F^T F's eigenbasis (T = G - N mu mu^T) or from T.
  double trace, frob2;
  Eigen::VectorXd mean;
  if (fast) {
    const double mm = g->mean.squaredNorm();
    trace = g->values.sum() - n * mm;
    frob2 = g->values.squaredNorm() - 2.0 * n * g->mean.dot(g->values.cwiseProduct(g->mean)) +
            n * n * mm * mm;
    mean = ctx.stats().sum / n;
  } else {
    const auto& sc = ctx.scatter();
    trace = sc.trace;
    frob2 = sc.eigenvalues.squaredNorm();
    mean = sc.mean;
  }
  double alpha = 0.0;
  if (d > 1) {
    double beta_sum = 0.0;  // sum_i ||x_i||^4, x_i = f_i - mu
    ctx.for_blocks([&](const double* rows, std::int64_t, std::int64_t cnt) {
      for (std::int64_t i = 0; i < cnt; ++i) {
        const double sq = (Eigen::Map<const Eigen::VectorXd>(rows + i * d, d) - mean).squaredNorm();
        beta_sum += sq * sq;
      }
    });
    ctx.reduce_sum(beta_sum);
    const double delta_raw = frob2 / (n * n);  // ||X^T X||_F^2 / n^2
    const double mu = trace / (n * p);
    double beta = (beta_sum / n - delta_raw) / (p * n);
    const double delta = (delta_raw - 2.0 * mu * (trace / n) + p * mu * mu) / p;
    beta = std::min(beta, delta);
    alpha = beta == 0.0 ? 0.0 : beta / delta;
  }
  out.details["shrinkage"] = alpha;
  const double mu = trace / (n * p);
  if (fast) {
    // Sigma_a = (1 - a)/N (G - N mu mu^T) + a mu I = diag((1 - a) sigma / N + a mu) - (1 - a) m
    // m^T.
    Eigen::VectorXd dg = (1.0 - alpha) * g->values / n;
    dg.array() += alpha * mu;
    const double h = between_quadratic(dg, 1.0 - alpha, g->mean, gram_basis(ctx, *g));
    if (std::isfinite(h)) {
      out.score = h * (1.0 - alpha) / (n - 1.0);
      return;
    }
  }
  const auto& sc = ctx.scatter();
  Eigen::VectorXd shrunk = (1.0 - alpha) * sc.eigenvalues / n;
  shrunk.array() += alpha * mu;
  out.score = pinv_quadratic(shrunk, sc.proj) * (1.0 - alpha) / (n - 1.0);
}

// TransRate (Huang et al. 2022): R(Z) - class term, R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))
// on globally centred features Z. R(Z) comes from T's eigenvalues; each class's R(Z_c) (its rows
// of Z, n = n_c) from a Cholesky factorisation of the smaller of Z_c Z_c^T and Z_c^T Z_c
// (logdet(I + A^T A s) = logdet(I + A A^T s)).
void transrate(MetricContext& ctx, MetricValue& out) {
  const double eps = ctx.params().number("transrate", "eps");
  const std::string weighting = ctx.params().text("transrate", "weighting");
  const std::int64_t d = ctx.d(), n_all = ctx.n();
  const double ne = static_cast<double>(n_all) * eps;
  double r_all = std::numeric_limits<double>::quiet_NaN();
  Eigen::VectorXd mean;
  if (const auto* g = ctx.gram_eigen()) {
    // I + Z^T Z / (N eps) = A - mu mu^T / eps with A = I + G / (N eps) diagonal in G's basis:
    // logdet = sum ln A_ii + ln(1 - m^T A^-1 m / eps) (matrix determinant lemma; A >= I).
    const Eigen::VectorXd a = (g->values.cwiseMax(0.0) / ne).array() + 1.0;
    const double lemma = 1.0 - g->mean.cwiseAbs2().dot(a.cwiseInverse()) / eps;
    if (lemma > 1e-8) r_all = 0.5 * (a.array().log().sum() + std::log(lemma));
    mean = ctx.stats().sum / static_cast<double>(n_all);
  }
  if (!std::isfinite(r_all)) {
    const auto& sc = ctx.scatter();
    r_all = 0.0;
    for (Eigen::Index i = 0; i < sc.eigenvalues.size(); ++i)
      r_all += 0.5 * std::log1p(std::max(sc.eigenvalues[i], 0.0) / ne);
    mean = sc.mean;
  }

  const std::int64_t classes = ctx.num_classes();
  auto weight = [&](std::int64_t nc) {
    return weighting == "tllib" ? 1.0 / static_cast<double>(classes)
                                : static_cast<double>(nc) / static_cast<double>(n_all);
  };
  if (ctx.sharded()) {
    // Rows split over processes: each class's Z_c^T Z_c (D x D) is a sum over rows, so every
    // process adds its rows of the class and the sum is reduced, one class at a time.
    // logdet(I + s Z_c^T Z_c) = logdet(I + s Z_c Z_c^T): the value of the one-process path.
    std::vector<std::vector<std::int64_t>> mine(static_cast<std::size_t>(classes));
    for (std::int64_t i = 0; i < ctx.rows(); ++i) mine[ctx.y()[i]].push_back(i);
    double class_term = 0.0;
    std::vector<double> zc;
    Eigen::MatrixXd a(d, d);
    for (std::int64_t c = 0; c < classes; ++c) {
      const auto& rows = mine[c];
      const std::int64_t nc_local = static_cast<std::int64_t>(rows.size());
      zc.resize(static_cast<std::size_t>(nc_local * d));
      for (std::int64_t r = 0; r < nc_local; ++r) {
        double* z = zc.data() + r * d;
        detail::copy_row(ctx.inputs().features, rows[r], z);
        Eigen::Map<Eigen::VectorXd>(z, d) -= mean;
      }
      a.setZero();
      if (nc_local > 0) detail::syrk_accumulate_rows(zc.data(), nc_local, d, a.data());
      ctx.reduce_sum(a);
      const std::int64_t nc = ctx.counts()[c];
      a *= 1.0 / (static_cast<double>(nc) * eps);
      a.diagonal().array() += 1.0;
      const lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', static_cast<lapack_int>(d),
                                             a.data(), static_cast<lapack_int>(d));
      TLKIT_CHECK_ARG(info == 0,
                      "transrate: the scatter of class {} is not finite (features too "
                      "large?)",
                      ctx.labels()[c]);
      class_term += weight(nc) * a.diagonal().array().log().sum();
    }
    out.score = r_all - class_term;
    out.details["rate_all"] = r_all;
    out.details["rate_classes"] = class_term;
    return;
  }

  // Gather each class's centred rows (row-major), one class at a time to bound memory.
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(classes));
  for (std::int64_t i = 0; i < n_all; ++i) members[ctx.y()[i]].push_back(i);
  double class_term = 0.0;
  std::vector<double> zc;
  for (std::int64_t c = 0; c < classes; ++c) {
    const auto& rows = members[c];
    const std::int64_t nc = static_cast<std::int64_t>(rows.size());
    zc.resize(static_cast<std::size_t>(nc * d));
    for (std::int64_t r = 0; r < nc; ++r) {
      double* z = zc.data() + r * d;
      detail::copy_row(ctx.inputs().features, rows[r], z);
      Eigen::Map<Eigen::VectorXd>(z, d) -= mean;
    }
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
    TLKIT_CHECK_ARG(info == 0,
                    "transrate: the scatter of class {} is not finite (features too "
                    "large?)",
                    ctx.labels()[c]);
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
// the diagonal) population variances floored at 1e-4, on the centred features projected on their
// min(pca_dims, N - 1, D) principal directions (0: the raw features).
//   D_B = 1/8 sum_d (mu1 - mu2)^2 / s + 1/2 sum_d [ln s - 1/2 ln s1 - 1/2 ln s2],  s = (s1 + s2)/2.
// For spherical Gaussians the bracket is the same in every dimension, so it counts D times
// (log_term = dims, the Bhattacharyya distance of the two Gaussians); google-research's gbc.py
// adds it once (log_term = once).
void gbc(MetricContext& ctx, MetricValue& out) {
  const std::int64_t pca = static_cast<std::int64_t>(ctx.params().number("gbc", "pca_dims"));
  const bool spherical = ctx.params().text("gbc", "gaussian") == "spherical";
  const bool log_once = ctx.params().text("gbc", "log_term") == "once";
  // Per-class means and population variances (two passes: sums, then squared deviations).
  Eigen::MatrixXd mean, var;
  const std::int64_t classes = ctx.num_classes();
  auto finish_means = [&]() {
    for (std::int64_t c = 0; c < classes; ++c) mean.col(c) /= static_cast<double>(ctx.counts()[c]);
  };
  if (pca > 0) {
    // PCA rotates the features onto their principal axes even when it keeps every dimension
    // (K >= D), as the reference's sklearn PCA does; diagonal GBC is not rotation-invariant.
    // Beyond rank N - 1 the centred data has only rounding-level components.
    const Eigen::MatrixXd z =
        ctx.project_centred(ctx.principal_directions(std::min({pca, ctx.n() - 1, ctx.d()})));
    // Split rows: z holds all the rows, gathered, with their classes in all_y().
    const std::vector<int>& y = ctx.all_y();
    mean = Eigen::MatrixXd::Zero(z.cols(), classes);
    var = Eigen::MatrixXd::Zero(z.cols(), classes);
    for (std::int64_t i = 0; i < ctx.n(); ++i) mean.col(y[i]) += z.row(i).transpose();
    finish_means();
    for (std::int64_t i = 0; i < ctx.n(); ++i)
      var.col(y[i]) += (z.row(i).transpose() - mean.col(y[i])).cwiseAbs2();
  } else {
    const std::int64_t d = ctx.d();
    mean = ctx.moments().class_sums;
    finish_means();
    var = Eigen::MatrixXd::Zero(d, classes);
    ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
      for (std::int64_t i = 0; i < cnt; ++i) {
        const int c = ctx.y()[b + i];
        var.col(c) +=
            (Eigen::Map<const Eigen::VectorXd>(rows + i * d, d) - mean.col(c)).cwiseAbs2();
      }
    });
    ctx.reduce_sum(var);
  }
  const std::int64_t k = mean.rows();
  for (std::int64_t c = 0; c < classes; ++c) {
    var.col(c) /= static_cast<double>(ctx.counts()[c]);
    var.col(c) = var.col(c).cwiseMax(1e-4);
    if (spherical) var.col(c).setConstant(var.col(c).mean());
  }
  // Spherical: every dimension has the class's scalar variance, so D_B needs only ||dmu||^2 and
  // scalar logs; diagonal: per-dimension logs (the classes' own logs computed once).
  const Eigen::MatrixXd log_var = var.array().log().matrix();
  double total = 0.0;
  for (std::int64_t a = 0; a < classes; ++a)
    for (std::int64_t b = a + 1; b < classes; ++b) {
      double db;
      if (spherical) {
        const double s = 0.5 * (var(0, a) + var(0, b));
        const double logs = std::log(s) - 0.5 * (log_var(0, a) + log_var(0, b));
        db = (mean.col(a) - mean.col(b)).squaredNorm() / (8.0 * s) +
             0.5 * (log_once ? 1.0 : static_cast<double>(k)) * logs;
      } else {
        const Eigen::ArrayXd s = 0.5 * (var.col(a) + var.col(b)).array();
        db = ((mean.col(a) - mean.col(b)).array().square() / s).sum() / 8.0 +
             0.5 * (s.log().sum() - 0.5 * (log_var.col(a).sum() + log_var.col(b).sum()));
      }
      total += 2.0 * std::exp(-db);  // (a, b) and (b, a)
    }
  out.score = -total;
  out.details["dims"] = static_cast<double>(k);
}

}  // namespace tlkit::metrics

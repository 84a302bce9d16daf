// NCTI's per-model components (Wang et al., ICCV 2023, as BUserName/NCTI's NCTI_Score computes
// them); `tlkit evaluate` forms the zoo-level NCTI = minmax(seli) + minmax(ncc) - minmax(vc).
// Details and the reference's deviations: docs/metrics/ncti.md.
#include <lapacke.h>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <cmath>
#include <stdexcept>

#include "metric_context.h"

namespace tlkit::metrics {
namespace {

using RowMatrix = detail::RowMatrixXd;

struct Lda {
  Eigen::MatrixXd transform;  // N x min(C - 1, k)
  Eigen::MatrixXd prob;       // N x C
};

Eigen::MatrixXd class_means(const Eigen::MatrixXd& x, const std::vector<int>& y,
                            const Eigen::VectorXd& counts) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(counts.size(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) m.row(y[i]) += x.row(i);
  return m.array().colwise() / counts.array();
}

// sklearn's probabilities from decision values: softmax, or for two classes [1 - s, s] with
// s = sigmoid(d1 - d0).
Eigen::MatrixXd lda_probabilities(const Eigen::MatrixXd& dec) {
  Eigen::MatrixXd p(dec.rows(), dec.cols());
  for (Eigen::Index i = 0; i < dec.rows(); ++i) {
    if (dec.cols() == 2) {
      const double s = 1.0 / (1.0 + std::exp(-(dec(i, 1) - dec(i, 0))));
      p(i, 0) = 1.0 - s;
      p(i, 1) = s;
    } else {
      const double mx = dec.row(i).maxCoeff();
      p.row(i) = (dec.row(i).array() - mx).exp();
      p.row(i) /= p.row(i).sum();
    }
  }
  return p;
}

// sklearn LinearDiscriminantAnalysis(solver='eigen', shrinkage=a): class covariances (1/n_c)
// each shrunk towards (tr/k) I, S_w = sum prior_c shrunk_c, S_b = shrunk(cov X) - S_w,
// generalised eigenvectors of (S_b, S_w) by decreasing eigenvalue.
Lda lda_eigen(const Eigen::MatrixXd& x, const std::vector<int>& y, const Eigen::VectorXd& counts,
              double a) {
  const Eigen::Index n = x.rows(), k = x.cols(), c = counts.size();
  const Eigen::VectorXd priors = counts / static_cast<double>(n);
  const Eigen::MatrixXd means = class_means(x, y, counts);
  auto shrunk_cov = [&](const Eigen::MatrixXd& rows) {
    const Eigen::MatrixXd centred = rows.rowwise() - rows.colwise().mean();
    Eigen::MatrixXd s = centred.transpose() * centred / static_cast<double>(rows.rows());
    const double mu = s.trace() / static_cast<double>(k);
    s *= (1.0 - a);
    s.diagonal().array() += a * mu;
    return s;
  };
  Eigen::MatrixXd sw = Eigen::MatrixXd::Zero(k, k);
  for (Eigen::Index cls = 0; cls < c; ++cls) {
    Eigen::MatrixXd rows(static_cast<Eigen::Index>(counts[cls]), k);
    Eigen::Index r = 0;
    for (Eigen::Index i = 0; i < n; ++i)
      if (y[i] == cls) rows.row(r++) = x.row(i);
    sw += priors[cls] * shrunk_cov(rows);
  }
  const Eigen::MatrixXd sb = shrunk_cov(x) - sw;
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> ges(sb, sw);
  TLKIT_CHECK_ARG(ges.info() == Eigen::Success, "ncti: the LDA eigenproblem failed");
  const Eigen::MatrixXd evecs = ges.eigenvectors().rowwise().reverse();  // descending
  const Eigen::MatrixXd coef = means * evecs * evecs.transpose();        // C x k
  const Eigen::VectorXd intercept =
      -0.5 * (means * coef.transpose()).diagonal() + priors.array().log().matrix();
  Eigen::MatrixXd dec = x * coef.transpose();
  dec.rowwise() += intercept.transpose();
  return {x * evecs.leftCols(std::min<Eigen::Index>(c - 1, k)), lda_probabilities(dec)};
}

// sklearn LinearDiscriminantAnalysis(solver='svd', tol=1e-4): whiten the within-class residuals
// (per-dimension std, then SVD), then an orthonormal basis of the whitened, prior-weighted class
// centres; unshrunk LDA with the pooled 1/(N - C) covariance.
Lda lda_svd(const Eigen::MatrixXd& x, const std::vector<int>& y, const Eigen::VectorXd& counts) {
  const Eigen::Index n = x.rows(), k = x.cols(), c = counts.size();
  const double tol = 1e-4;
  const Eigen::VectorXd priors = counts / static_cast<double>(n);
  const Eigen::MatrixXd means = class_means(x, y, counts);
  const Eigen::RowVectorXd xbar = priors.transpose() * means;
  Eigen::MatrixXd xc(n, k);
  for (Eigen::Index i = 0; i < n; ++i) xc.row(i) = x.row(i) - means.row(y[i]);
  Eigen::RowVectorXd sd = (xc.colwise().squaredNorm() / static_cast<double>(n)).cwiseSqrt();
  for (Eigen::Index j = 0; j < k; ++j)
    if (sd[j] == 0.0) sd[j] = 1.0;
  const Eigen::MatrixXd scaled =
      std::sqrt(1.0 / static_cast<double>(n - c)) * (xc.array().rowwise() / sd.array()).matrix();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(scaled, Eigen::ComputeThinV);
  const Eigen::VectorXd s = svd.singularValues();
  Eigen::Index rank = 0;
  while (rank < s.size() && s[rank] > tol) ++rank;
  // scalings (k x rank) = (V[:, :rank] / std) / s
  Eigen::MatrixXd scalings = svd.matrixV().leftCols(rank);
  scalings.array().colwise() /= sd.transpose().array();
  scalings.array().rowwise() /= s.head(rank).transpose().array();
  const double fac = c == 1 ? 1.0 : 1.0 / static_cast<double>(c - 1);
  Eigen::MatrixXd centres = means.rowwise() - xbar;
  for (Eigen::Index cls = 0; cls < c; ++cls)
    centres.row(cls) *= std::sqrt(static_cast<double>(n) * priors[cls] * fac);
  centres = centres * scalings;
  Eigen::JacobiSVD<Eigen::MatrixXd> svd2(centres, Eigen::ComputeThinV);
  const Eigen::VectorXd s2 = svd2.singularValues();
  Eigen::Index rank2 = 0;
  while (rank2 < s2.size() && s2[rank2] > tol * s2[0]) ++rank2;
  scalings = scalings * svd2.matrixV().leftCols(rank2);
  Eigen::MatrixXd coef = (means.rowwise() - xbar) * scalings;  // C x rank2
  Eigen::VectorXd intercept = -0.5 * coef.rowwise().squaredNorm() + priors.array().log().matrix();
  coef = coef * scalings.transpose();  // C x k
  intercept -= coef * xbar.transpose();
  Eigen::MatrixXd dec = x * coef.transpose();
  dec.rowwise() += intercept.transpose();
  const Eigen::MatrixXd t = (x.rowwise() - xbar) * scalings;
  return {t.leftCols(std::min<Eigen::Index>({c - 1, k, t.cols()})), lda_probabilities(dec)};
}

// Sum of the singular values, by LAPACK's dgesdd without vectors (Eigen's BDCSVD took ~1 ms per
// 200 x 100 class block, which NCTI's vc repeats once per class).
double nuclear_norm(Eigen::MatrixXd m) {
  if (m.size() == 0) return 0.0;
  const lapack_int rows = static_cast<lapack_int>(m.rows()),
                   cols = static_cast<lapack_int>(m.cols());
  Eigen::VectorXd s(std::min(rows, cols));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', rows, cols, m.data(), rows,
                                         s.data(), nullptr, 1, nullptr, 1);
  if (info != 0)
    throw std::runtime_error("ncti: the singular value decomposition did not converge");
  return s.sum();
}

}  // namespace

const NctiParts& ncti_parts(MetricContext& ctx) {
  auto& cache = ctx.ncti_cache();
  if (cache) return *cache;
  const auto& sc = ctx.scatter();
  const std::int64_t n = ctx.n(), classes = ctx.num_classes();
  const std::int64_t k = std::min<std::int64_t>({64, n - 1, ctx.d()});
  // Split rows: x is every row's projection (k <= 64 values per row, gathered), and the LDA
  // below runs on all of them on every process.
  Eigen::MatrixXd x = ctx.project_centred(ctx.principal_directions(k));
  const std::vector<int>& y = ctx.all_y();
  // Explained variances of the PCA: eigenvalues of T / (N - 1), largest first.
  const Eigen::VectorXd ev = sc.eigenvalues.reverse().head(k) / static_cast<double>(n - 1);
  const double a = std::max(std::exp(-ev.head(std::min<std::int64_t>(32, k)).sum()), 1e-10);
  Eigen::VectorXd counts(classes);
  for (std::int64_t c = 0; c < classes; ++c) counts[c] = static_cast<double>(ctx.counts()[c]);
  const Lda lda = a == 1e-10 ? lda_svd(x, y, counts) : lda_eigen(x, y, counts, a);
  NctiParts p;
  p.shrinkage = a;
  p.seli = nuclear_norm(lda.transform.rowwise() - lda.transform.colwise().mean());
  double ncc = 0.0;
  for (std::int64_t i = 0; i < n; ++i) ncc += lda.prob(i, y[i]);
  p.ncc = ncc / static_cast<double>(n);
  double vc = 0.0;
  for (std::int64_t c = 0; c < classes; ++c) {
    Eigen::MatrixXd rows(ctx.counts()[c], classes);
    Eigen::Index r = 0;
    for (std::int64_t i = 0; i < n; ++i)
      if (y[i] == c) rows.row(r++) = lda.prob.row(i);
    vc += nuclear_norm(rows);
  }
  p.vc = std::log(vc);
  cache = p;
  return *cache;
}

void ncti_seli(MetricContext& ctx, MetricValue& out) {
  out.score = ncti_parts(ctx).seli;
  out.details["shrinkage"] = ncti_parts(ctx).shrinkage;
}
void ncti_ncc(MetricContext& ctx, MetricValue& out) { out.score = ncti_parts(ctx).ncc; }
void ncti_vc(MetricContext& ctx, MetricValue& out) { out.score = ncti_parts(ctx).vc; }

}  // namespace tlkit::metrics

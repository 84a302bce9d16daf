// NLEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021): LEEP on the posteriors of a
// Gaussian mixture fitted to the PCA-reduced features. Reference behaviour: docs/metrics/nleep.md.
#include <cblas.h>

#include <Eigen/Cholesky>
#include <cmath>
#include <limits>
#include <random>

#include "metric_context.h"

namespace tlkit::metrics {
namespace {

using RowMatrix = detail::RowMatrixXd;

// k-means++ seeding from `rng`, then Lloyd iterations until the assignment stops changing (at
// most 300); an empty cluster keeps its centre. Returns the assignment.
std::vector<int> kmeans(const RowMatrix& x, int k, std::mt19937_64& rng) {
  const Eigen::Index n = x.rows();
  RowMatrix centres(k, x.cols());
  std::uniform_int_distribution<Eigen::Index> pick(0, n - 1);
  centres.row(0) = x.row(pick(rng));
  Eigen::VectorXd d2 = (x.rowwise() - centres.row(0)).rowwise().squaredNorm();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int j = 1; j < k; ++j) {
    const double total = d2.sum();
    Eigen::Index chosen = pick(rng);
    if (total > 0) {  // sample proportionally to the squared distance to the nearest centre
      double u = unit(rng) * total;
      chosen = n - 1;
      for (Eigen::Index i = 0; i < n; ++i) {
        u -= d2[i];
        if (u < 0) {
          chosen = i;
          break;
        }
      }
    }
    centres.row(j) = x.row(chosen);
    d2 = d2.cwiseMin((x.rowwise() - centres.row(j)).rowwise().squaredNorm());
  }
  std::vector<int> labels(static_cast<std::size_t>(n), -1);
  for (int it = 0; it < 300; ++it) {
    const Eigen::VectorXd cn = centres.rowwise().squaredNorm();
    const Eigen::MatrixXd dots = x * centres.transpose();
    bool changed = false;
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index arg;
      (cn.transpose() - 2.0 * dots.row(i)).minCoeff(&arg);
      if (labels[i] != arg) changed = true;
      labels[i] = static_cast<int>(arg);
    }
    if (!changed) break;
    RowMatrix sums = RowMatrix::Zero(k, x.cols());
    std::vector<int> counts(static_cast<std::size_t>(k), 0);
    for (Eigen::Index i = 0; i < n; ++i) {
      sums.row(labels[i]) += x.row(i);
      ++counts[labels[i]];
    }
    for (int j = 0; j < k; ++j)
      if (counts[j] > 0) centres.row(j) = sums.row(j) / counts[j];
  }
  return labels;
}

struct Mixture {
  Eigen::VectorXd weights;
  RowMatrix means;
  std::vector<Eigen::LLT<Eigen::MatrixXd>> chol;
};

// M-step with sklearn's conventions: nk = sum resp + 10 eps, full covariances plus reg_covar I.
Mixture m_step(const RowMatrix& x, const Eigen::MatrixXd& resp, double reg_covar) {
  const Eigen::Index n = x.rows(), k = resp.cols();
  Mixture m;
  const Eigen::VectorXd nk =
      resp.colwise().sum().transpose().array() + 10 * std::numeric_limits<double>::epsilon();
  m.weights = nk / static_cast<double>(n);
  m.means = (resp.transpose() * x).array().colwise() / nk.array();
  m.chol.reserve(static_cast<std::size_t>(k));
  const int dims = static_cast<int>(x.cols()), rows = static_cast<int>(n);
  for (Eigen::Index j = 0; j < k; ++j) {
    // sum_i r_ij (x_i - mu_j)(x_i - mu_j)^T as one BLAS syrk of the rows scaled by sqrt(r_ij)
    // (lower triangle, which is all LLT reads): Eigen's product was ~5x slower here.
    const RowMatrix scaled =
        (x.rowwise() - m.means.row(j)).array().colwise() * resp.col(j).array().sqrt();
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(dims, dims);  // syrk writes the lower half
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, dims, rows, 1.0, scaled.data(), dims, 0.0,
                cov.data(), dims);
    cov /= nk[j];
    cov.diagonal().array() += reg_covar;
    m.chol.emplace_back(cov);
    TLKIT_CHECK_ARG(m.chol.back().info() == Eigen::Success,
                    "nleep: a mixture covariance is not positive definite");
  }
  return m;
}

// log N(x_i | mu_j, Sigma_j) + ln w_j, N x K.
Eigen::MatrixXd log_prob(const RowMatrix& x, const Mixture& m) {
  const Eigen::Index n = x.rows(), d = x.cols(), k = m.weights.size();
  Eigen::MatrixXd out(n, k);
  const double log2pi = std::log(2.0 * M_PI);
  for (Eigen::Index j = 0; j < k; ++j) {
    const Eigen::MatrixXd l = m.chol[j].matrixL();
    // L^-1 (x_i - mu_j) for all rows at once: the row-major N x d difference is column-major
    // d x N, solved in place by BLAS trsm.
    RowMatrix sol = x.rowwise() - m.means.row(j);
    cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit,
                static_cast<int>(d), static_cast<int>(n), 1.0, l.data(), static_cast<int>(d),
                sol.data(), static_cast<int>(d));
    const double logdet = l.diagonal().array().log().sum();
    out.col(j) = (-0.5 * (static_cast<double>(d) * log2pi + sol.rowwise().squaredNorm().array()) -
                  logdet + std::log(m.weights[j]))
                     .transpose();
  }
  return out;
}

// Row-wise log-sum-exp; turns `lp` into posteriors in place.
Eigen::VectorXd normalise_rows(Eigen::MatrixXd& lp) {
  Eigen::VectorXd norm(lp.rows());
  for (Eigen::Index i = 0; i < lp.rows(); ++i) {
    const double mx = lp.row(i).maxCoeff();
    norm[i] = mx + std::log((lp.row(i).array() - mx).exp().sum());
    lp.row(i) = (lp.row(i).array() - norm[i]).exp();
  }
  return norm;
}

}  // namespace

// 1. Exact PCA keeping the smallest k whose cumulative explained variance exceeds `variance`
//    (sklearn PCA(n_components=0.8)). 2. Gaussian mixture, K = components_per_class x C, full
//    covariances, EM from a k-means++ initialisation seeded by --seed (sklearn GaussianMixture
//    semantics: reg_covar 1e-6, tol 1e-3 on the mean log-likelihood, at most 100 steps).
//    3. LEEP with the mixture posteriors as the source probabilities.
// The value depends on the initialisation, so it is reproducible for a seed, not across
// implementations; -H(Y) <= NLEEP <= 0 always.
void nleep(MetricContext& ctx, MetricValue& out) {
  const auto& sc = ctx.scatter();
  const double variance = ctx.params().number("nleep", "variance");
  const int per_class = static_cast<int>(ctx.params().number("nleep", "components_per_class"));
  TLKIT_CHECK_ARG(variance > 0 && variance <= 1, "--nleep-variance must be in (0, 1], got {}",
                  variance);
  TLKIT_CHECK_ARG(per_class >= 1, "--nleep-components-per-class must be >= 1, got {}", per_class);
  const Eigen::VectorXd lam = sc.eigenvalues.reverse().cwiseMax(0.0);  // descending
  const std::int64_t max_k = std::min<std::int64_t>(ctx.n() - 1, ctx.d());
  const double total = lam.head(max_k).sum();
  TLKIT_CHECK_ARG(total > 0, "nleep: the features have no variance");
  std::int64_t k = 1;
  double cum = lam[0];
  while (k < max_k && !(cum / total > variance)) cum += lam[k++];
  const RowMatrix x = ctx.project_centred(ctx.principal_directions(k));
  const int comps = static_cast<int>(per_class * ctx.num_classes());
  TLKIT_CHECK_ARG(comps <= ctx.n(), "nleep: {} mixture components for {} samples; lower "
                  "--nleep-components-per-class", comps, ctx.n());

  std::mt19937_64 rng(ctx.options().seed);
  const std::vector<int> init = kmeans(x, comps, rng);
  Eigen::MatrixXd resp = Eigen::MatrixXd::Zero(x.rows(), comps);
  for (Eigen::Index i = 0; i < x.rows(); ++i) resp(i, init[i]) = 1.0;
  Mixture m = m_step(x, resp, 1e-6);
  double lower = -std::numeric_limits<double>::infinity();
  bool converged = false;
  int iterations = 0;
  for (int it = 1; it <= 100; ++it) {
    iterations = it;
    resp = log_prob(x, m);
    const double mean_ll = normalise_rows(resp).mean();
    m = m_step(x, resp, 1e-6);
    const bool done = std::abs(mean_ll - lower) < 1e-3;
    lower = mean_ll;
    if (done) {
      converged = true;
      break;
    }
  }
  resp = log_prob(x, m);
  normalise_rows(resp);
  const bool log = ctx.params().text("nleep", "log") == "yes";
  out.score = leep_value(FeatureView::col_major(resp.data(), resp.rows(), resp.cols()), ctx.y(),
                         ctx.num_classes(), log);
  out.converged = converged;
  out.details["pca_dims"] = static_cast<double>(k);
  out.details["components"] = comps;
  out.details["em_iterations"] = iterations;
}

}  // namespace tlkit::metrics

// NLEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021): LEEP on the posteriors of a
// Gaussian mixture fitted to the PCA-reduced features. Reference behaviour: docs/metrics/nleep.md.
#include <cblas.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "metric_context.h"
#include "nleep_internal.h"

namespace tlkit::metrics {
namespace nleep_internal {

std::vector<Eigen::Index> kmeans_plusplus_random(const RowMatrix& x, int k, std::mt19937_64& rng) {
  const Eigen::Index n = x.rows();
  std::vector<Eigen::Index> rows(static_cast<std::size_t>(k));
  std::uniform_int_distribution<Eigen::Index> pick(0, n - 1);
  rows[0] = pick(rng);
  Eigen::VectorXd d2 = (x.rowwise() - x.row(rows[0])).rowwise().squaredNorm();
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
    rows[j] = chosen;
    d2 = d2.cwiseMin((x.rowwise() - x.row(chosen)).rowwise().squaredNorm());
  }
  return rows;
}

std::vector<Eigen::Index> kmeans_plusplus(const RowMatrix& x, int k, Eigen::Index first,
                                          const std::function<double()>& uniform) {
  const Eigen::Index n = x.rows();
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  std::vector<Eigen::Index> rows(static_cast<std::size_t>(k));
  rows[0] = first;
  Eigen::VectorXd d2 = (x.rowwise() - x.row(first)).rowwise().squaredNorm();
  double pot = d2.sum();
  std::vector<double> cum(static_cast<std::size_t>(n));
  Eigen::VectorXd cand_d2, best_d2;
  for (int j = 1; j < k; ++j) {
    std::partial_sum(d2.data(), d2.data() + n, cum.begin());
    double best_pot = std::numeric_limits<double>::infinity();
    Eigen::Index best_row = 0;
    for (int t = 0; t < trials; ++t) {
      // The first row whose cumulative D^2 reaches u x pot (numpy searchsorted, side left).
      const double u = uniform() * pot;
      const Eigen::Index r =
          std::min<Eigen::Index>(std::lower_bound(cum.begin(), cum.end(), u) - cum.begin(), n - 1);
      cand_d2 = d2.cwiseMin((x.rowwise() - x.row(r)).rowwise().squaredNorm());
      const double cand_pot = cand_d2.sum();
      if (cand_pot < best_pot) {  // the first of equal candidates, as numpy's argmin
        best_pot = cand_pot;
        best_row = r;
        best_d2.swap(cand_d2);
      }
    }
    rows[j] = best_row;
    d2.swap(best_d2);
    pot = best_pot;
  }
  return rows;
}

std::vector<Eigen::Index> kmeans_plusplus(const RowMatrix& x, int k, std::mt19937_64& rng) {
  std::uniform_int_distribution<Eigen::Index> pick(0, x.rows() - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Eigen::Index first = pick(rng);
  return kmeans_plusplus(x, k, first, [&] { return unit(rng); });
}

std::vector<int> kmeans_lloyd(const RowMatrix& x, RowMatrix centres, int* iterations) {
  const Eigen::Index n = x.rows(), k = centres.rows();
  std::vector<int> labels(static_cast<std::size_t>(n), -1);
  if (iterations) *iterations = 0;
  for (int it = 0; it < 300; ++it) {
    if (iterations) *iterations = it + 1;
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

namespace {

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

GmmFit fit_gmm(const RowMatrix& x, const std::vector<int>& init, int k, double reg_covar,
               double tol, int max_iter) {
  Eigen::MatrixXd resp = Eigen::MatrixXd::Zero(x.rows(), k);
  for (Eigen::Index i = 0; i < x.rows(); ++i) resp(i, init[static_cast<std::size_t>(i)]) = 1.0;
  Mixture m = m_step(x, resp, reg_covar);
  GmmFit fit;
  double lower = -std::numeric_limits<double>::infinity();
  for (int it = 1; it <= max_iter; ++it) {
    fit.iterations = it;
    resp = log_prob(x, m);
    const double mean_ll = normalise_rows(resp).mean();
    m = m_step(x, resp, reg_covar);
    const bool done = std::abs(mean_ll - lower) < tol;
    lower = mean_ll;
    if (done) {
      fit.converged = true;
      break;
    }
  }
  fit.mean_log_likelihood = lower;
  resp = log_prob(x, m);
  normalise_rows(resp);
  fit.posteriors = std::move(resp);
  return fit;
}

RowMatrix pca_reduce(MetricContext& ctx, double variance) {
  const auto& sc = ctx.scatter();
  const Eigen::VectorXd lam = sc.eigenvalues.reverse().cwiseMax(0.0);  // descending
  const std::int64_t max_k = std::min<std::int64_t>(ctx.n() - 1, ctx.d());
  const double total = lam.head(max_k).sum();
  TLKIT_CHECK_ARG(total > 0, "nleep: the features have no variance");
  std::int64_t k = 1;
  double cum = lam[0];
  while (k < max_k && !(cum / total > variance)) cum += lam[k++];
  return ctx.project_centred(ctx.principal_directions(k));
}

NleepFit nleep_fit(MetricContext& ctx, const std::vector<Eigen::Index>* centre_rows) {
  const double variance = ctx.params().number("nleep", "variance");
  const int per_class = static_cast<int>(ctx.params().number("nleep", "components_per_class"));
  TLKIT_CHECK_ARG(variance > 0 && variance <= 1, "--nleep-variance must be in (0, 1], got {}",
                  variance);
  TLKIT_CHECK_ARG(per_class >= 1, "--nleep-components-per-class must be >= 1, got {}", per_class);
  NleepFit fit;
  // Split rows: x is every row's projection (gathered), and the mixture is fitted to all of
  // them on every process, from the same seed.
  const RowMatrix x = pca_reduce(ctx, variance);
  fit.pca_dims = x.cols();
  fit.components = static_cast<int>(per_class * ctx.num_classes());
  TLKIT_CHECK_ARG(fit.components <= ctx.n(),
                  "nleep: {} mixture components for {} samples; lower "
                  "--nleep-components-per-class",
                  fit.components, ctx.n());
  if (centre_rows) {
    TLKIT_CHECK_ARG(centre_rows->size() == static_cast<std::size_t>(fit.components),
                    "nleep: {} initial centres for {} components", centre_rows->size(),
                    fit.components);
    fit.centre_rows = *centre_rows;
  } else {
    std::mt19937_64 rng(ctx.options().seed);
    fit.centre_rows = ctx.params().text("nleep", "init") == "random"
                          ? kmeans_plusplus_random(x, fit.components, rng)
                          : kmeans_plusplus(x, fit.components, rng);
  }
  RowMatrix centres(fit.components, x.cols());
  for (int j = 0; j < fit.components; ++j) {
    const Eigen::Index r = fit.centre_rows[static_cast<std::size_t>(j)];
    TLKIT_CHECK_ARG(r >= 0 && r < x.rows(), "nleep: initial centre row {} outside [0, {})", r,
                    x.rows());
    centres.row(j) = x.row(r);
  }
  fit.kmeans_labels = kmeans_lloyd(x, std::move(centres), &fit.kmeans_iterations);
  fit.gmm = fit_gmm(x, fit.kmeans_labels, fit.components);
  const Eigen::MatrixXd& p = fit.gmm.posteriors;
  const bool log = ctx.params().text("nleep", "log") == "yes";
  fit.score = leep_value(FeatureView::col_major(p.data(), p.rows(), p.cols()), ctx.all_y(),
                         ctx.num_classes(), log);
  return fit;
}

}  // namespace nleep_internal

// 1. Exact PCA keeping the smallest k whose cumulative explained variance exceeds `variance`
//    (sklearn PCA(n_components=0.8)). 2. Gaussian mixture, K = components_per_class x C, full
//    covariances, EM from a k-means++ initialisation seeded by --seed (sklearn GaussianMixture
//    semantics: reg_covar 1e-6, tol 1e-3 on the mean log-likelihood, at most 100 steps).
//    3. LEEP with the mixture posteriors as the source probabilities.
// The value depends on the initialisation, so it is reproducible for a seed, not across
// implementations; -H(Y) <= NLEEP <= 0 always.
void nleep(MetricContext& ctx, MetricValue& out) {
  const nleep_internal::NleepFit fit = nleep_internal::nleep_fit(ctx, nullptr);
  out.score = fit.score;
  out.converged = fit.gmm.converged;
  out.details["pca_dims"] = static_cast<double>(fit.pca_dims);
  out.details["components"] = fit.components;
  out.details["em_iterations"] = fit.gmm.iterations;
}

}  // namespace tlkit::metrics

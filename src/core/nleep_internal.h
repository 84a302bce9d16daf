// NLEEP's stages (src/core/metrics_nleep.cpp), private to tlkit::core. They are separate so that
// tests can run the metric from a given k-means initialisation and compare every stage with an
// independent implementation (tests/core/test_nleep.cpp, tools/make_nleep_refs.py).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "linalg.h"
#include "metric_context.h"

namespace tlkit::metrics::nleep_internal {

using RowMatrix = detail::RowMatrixXd;

/// Greedy k-means++ seeding (sklearn's kmeans_plusplus, which GaussianMixture's k-means uses):
/// the first centre uniformly, then for each next one 2 + floor(ln k) candidates drawn with
/// probability proportional to D^2, the squared distance to the nearest chosen centre, keeping the
/// candidate that lowers sum D^2 most. Returns the rows of `x` chosen, in order.
std::vector<Eigen::Index> kmeans_plusplus(const RowMatrix& x, int k, std::mt19937_64& rng);

/// The same from a given first row, drawing each candidate from `uniform` (values in [0, 1)):
/// candidate = the first row whose cumulative D^2 reaches uniform() x sum D^2.
std::vector<Eigen::Index> kmeans_plusplus(const RowMatrix& x, int k, Eigen::Index first,
                                          const std::function<double()>& uniform);

/// k-means++ seeding with one D^2-weighted draw per centre (Arthur and Vassilvitskii's
/// algorithm; `--nleep-init random`). Returns the rows of `x` chosen, in order.
std::vector<Eigen::Index> kmeans_plusplus_random(const RowMatrix& x, int k, std::mt19937_64& rng);

/// Lloyd iterations from the given centres (k x d) until the assignment stops changing (at most
/// 300); an empty cluster keeps its centre. Returns the assignment (0..k-1 per row) and sets
/// `*iterations` to the number of assignment passes when not null.
std::vector<int> kmeans_lloyd(const RowMatrix& x, RowMatrix centres, int* iterations = nullptr);

/// A full-covariance Gaussian mixture fitted by EM from the one-hot responsibilities of `init`
/// (sklearn GaussianMixture semantics: reg_covar added to each covariance diagonal, stop when the
/// mean log-likelihood changes by less than `tol`, at most `max_iter` steps, a last E-step).
struct GmmFit {
  Eigen::MatrixXd posteriors;        // N x K, rows sum to 1
  double mean_log_likelihood = 0.0;  // of the last EM step's E-step (sklearn's lower_bound_)
  int iterations = 0;
  bool converged = false;
};
GmmFit fit_gmm(const RowMatrix& x, const std::vector<int>& init, int k, double reg_covar = 1e-6,
               double tol = 1e-3, int max_iter = 100);

/// The centred features projected on the smallest number of principal directions whose
/// cumulative explained-variance ratio exceeds `variance` (sklearn PCA(n_components=variance)).
RowMatrix pca_reduce(MetricContext& ctx, double variance);

/// Every stage of one NLEEP evaluation.
struct NleepFit {
  double score = 0.0;
  std::int64_t pca_dims = 0;
  int components = 0;
  std::vector<Eigen::Index> centre_rows;  // the initial k-means centres (rows of the features)
  std::vector<int> kmeans_labels;
  int kmeans_iterations = 0;
  GmmFit gmm;
};

/// NLEEP with the parameters of ctx.params(); k-means starts from the rows `centre_rows` of the
/// reduced features (there must be components_per_class x C of them), or, when null, from
/// kmeans_plusplus (nleep.init greedy) or kmeans_plusplus_random (random) seeded by
/// ctx.options().seed (what the metric does).
NleepFit nleep_fit(MetricContext& ctx, const std::vector<Eigen::Index>* centre_rows);

}  // namespace tlkit::metrics::nleep_internal

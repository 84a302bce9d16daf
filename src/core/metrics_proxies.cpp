// Proxy metrics that fit or compare samples directly: leave-one-out 1-NN accuracy (knn).
// Formulas and the reference implementations: docs/metrics/.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "metric_context.h"
#include "tlkit/core/linear_probe.h"

namespace tlkit::metrics {

// Leave-one-out 1-nearest-neighbour accuracy in percent (Euclidean distance; among equally near
// neighbours the lowest row index wins). A row's copies of the same original sample
// (ScoreInputs::sample_ids) are left out with the row itself: a duplicate at distance 0 would
// otherwise always be the nearest neighbour with the right label. Distances ||a||^2 + ||b||^2 - 2
// a.b come from a blocked float64 GEMM, so the cost is O(N^2 D) time and O(block N) extra memory.
namespace {

// knn with the rows split over processes: every process's rows pass by every process once
// (MetricContext::for_every_process_rows, in row order), and each process keeps, for each of its
// own rows, the nearest row seen so far; the lowest row index wins ties as in one process, since
// the blocks come in row order and only a strictly nearer row replaces the kept one.
void knn_split(MetricContext& ctx, MetricValue& out) {
  const std::int64_t m = ctx.rows(), d = ctx.d(), first = ctx.options().first_row;
  std::vector<double> f;
  detail::copy_rows(ctx.inputs().features, f);
  std::vector<double> sq(static_cast<std::size_t>(m), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < d; ++j) sq[i] += f[i * d + j] * f[i * d + j];
  std::vector<double> best(static_cast<std::size_t>(m), std::numeric_limits<double>::infinity());
  std::vector<int> best_y(static_cast<std::size_t>(m), -1);
  std::vector<double> dots, other_sq;
  ctx.for_every_process_rows(
      [&](const double* rows, std::int64_t begin, std::int64_t cnt, const int* y) {
        if (cnt == 0 || m == 0) return;
        other_sq.assign(static_cast<std::size_t>(cnt), 0.0);
        for (std::int64_t j = 0; j < cnt; ++j)
          for (std::int64_t k = 0; k < d; ++k) other_sq[j] += rows[j * d + k] * rows[j * d + k];
        // In blocks of this process's rows, so the m x cnt products stay bounded.
        const std::int64_t block =
            std::max<std::int64_t>(1, std::min<std::int64_t>(m, (1 << 22) / cnt));
        dots.resize(static_cast<std::size_t>(block * cnt));
        for (std::int64_t b = 0; b < m; b += block) {
          const std::int64_t nb = std::min(block, m - b);
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb),
                      static_cast<int>(cnt), static_cast<int>(d), 1.0, f.data() + b * d,
                      static_cast<int>(d), rows, static_cast<int>(d), 0.0, dots.data(),
                      static_cast<int>(cnt));
          for (std::int64_t r = 0; r < nb; ++r) {
            const std::int64_t i = b + r;
            for (std::int64_t j = 0; j < cnt; ++j) {
              if (begin + j == first + i) continue;
              const double dist = sq[i] + other_sq[j] - 2.0 * dots[r * cnt + j];
              if (dist < best[i]) {
                best[i] = dist;
                best_y[i] = y[j];
              }
            }
          }
        }
      });
  double counts[2] = {0.0, 0.0};  // correct, asked
  for (std::int64_t i = 0; i < m; ++i) {
    if (best_y[i] < 0) continue;
    counts[1] += 1.0;
    counts[0] += best_y[i] == ctx.y()[i] ? 1.0 : 0.0;
  }
  ctx.reduce_sum(counts, 2);
  TLKIT_CHECK_ARG(counts[1] > 0, "knn: no row has a neighbour to compare");
  out.score = 100.0 * counts[0] / counts[1];
}

}  // namespace

void knn(MetricContext& ctx, MetricValue& out) {
  if (ctx.sharded()) return knn_split(ctx, out);
  const std::int64_t n = ctx.n(), d = ctx.d();
  std::vector<double> f;
  detail::copy_rows(ctx.inputs().features, f);
  std::vector<double> sq(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) s += f[i * d + j] * f[i * d + j];
    sq[i] = s;
  }
  const std::int64_t block = std::max<std::int64_t>(1, std::min<std::int64_t>(n, (1 << 22) / n));
  std::vector<double> dots(static_cast<std::size_t>(block * n));
  std::int64_t correct = 0, asked = 0;
  for (std::int64_t b = 0; b < n; b += block) {
    const std::int64_t cnt = std::min(block, n - b);
    // dots (cnt x n, row-major) = F[b:b+cnt] F^T
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(cnt), static_cast<int>(n),
                static_cast<int>(d), 1.0, f.data() + b * d, static_cast<int>(d), f.data(),
                static_cast<int>(d), 0.0, dots.data(), static_cast<int>(n));
    for (std::int64_t r = 0; r < cnt; ++r) {
      const std::int64_t i = b + r;
      double best = std::numeric_limits<double>::infinity();
      std::int64_t arg = -1;
      for (std::int64_t j = 0; j < n; ++j) {
        if (j == i || ctx.sample_id(j) == ctx.sample_id(i)) continue;
        const double dist = sq[i] + sq[j] - 2.0 * dots[r * n + j];
        if (dist < best) {
          best = dist;
          arg = j;
        }
      }
      if (arg < 0) continue;  // every row is a copy of this sample: no neighbour to ask
      ++asked;
      correct += ctx.y()[arg] == ctx.y()[i];
    }
  }
  TLKIT_CHECK_ARG(asked > 0, "knn: every row is a copy of one sample (no neighbour to compare)");
  out.score = 100.0 * static_cast<double>(correct) / static_cast<double>(asked);
}

}  // namespace tlkit::metrics

namespace tlkit::metrics {
namespace {

// Average ranks (1-based) of `v` with ties averaged, as scipy.stats.rankdata.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<std::size_t> order(v.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (std::size_t s = 0; s < order.size();) {
    std::size_t e = s + 1;
    while (e < order.size() && v[order[e]] == v[order[s]]) ++e;
    const double r = 0.5 * static_cast<double>(s + e + 1);  // mean of positions s+1..e
    for (std::size_t t = s; t < e; ++t) ranks[order[t]] = r;
    s = e;
  }
  return ranks;
}

}  // namespace

// PARC (Bolya et al. 2021): 100 x Spearman correlation between the upper triangles of the
// feature dissimilarity matrix 1 - corrcoef(rows of standardised PCA scores) and the label
// dissimilarity matrix 1 - corrcoef(one-hot rows), which is exactly 0 for a pair of the same class
// and 1 + 1/(C - 1) otherwise. Exact PCA (sign: the largest-magnitude score of each component
// positive, sklearn's convention, which PARC depends on). O(N^2) memory and time.
void parc(MetricContext& ctx, MetricValue& out) {
  const std::int64_t n = ctx.n();
  const std::int64_t dims = static_cast<std::int64_t>(ctx.params().number("parc", "pca_dims"));
  const std::int64_t pairs = n * (n - 1) / 2;
  // Two doubles per pair (value and rank) plus sorting indices.
  if (pairs > (std::int64_t{1} << 27)) {  // a limit of this implementation, not bad input
    out.score = std::numeric_limits<double>::quiet_NaN();
    out.notes.push_back(
        fmt::format("not computed: N = {} gives {} sample pairs, more than this "
                    "implementation holds in memory (at most ~16000 samples); "
                    "subsample the data",
                    n, pairs));
    return;
  }
  Eigen::MatrixXd z;
  if (dims > 0) {
    const std::int64_t k = std::min({dims, n - 1, ctx.d()});
    z = ctx.project_centred(ctx.principal_directions(k));
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      Eigen::Index arg;
      z.col(j).cwiseAbs().maxCoeff(&arg);
      if (z(arg, j) < 0) z.col(j) *= -1.0;
    }
  } else {
    // Split rows: every process's rows pass to every process (within the pair limit above, at
    // most ~16000 rows).
    z.resize(n, ctx.d());
    ctx.for_every_process_rows(
        [&](const double* rows, std::int64_t begin, std::int64_t cnt, const int*) {
          z.middleRows(begin, cnt) = Eigen::Map<const detail::RowMatrixXd>(rows, cnt, ctx.d());
        });
  }
  const std::vector<int>& y = ctx.all_y();
  // StandardScaler: columns to mean 0, std 1 (1/N; a constant column keeps scale 1).
  for (Eigen::Index j = 0; j < z.cols(); ++j) {
    z.col(j).array() -= z.col(j).mean();
    const double sd = std::sqrt(z.col(j).squaredNorm() / static_cast<double>(n));
    if (sd > 0) z.col(j) /= sd;
  }
  // corrcoef of rows: centre and normalise each row across the components.
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    z.row(i).array() -= z.row(i).mean();
    const double nrm = z.row(i).norm();
    if (nrm > 0) z.row(i) /= nrm;
  }
  const Eigen::MatrixXd corr = z * z.transpose();
  std::vector<double> rdm_f;
  std::vector<char> same;
  rdm_f.reserve(static_cast<std::size_t>(pairs));
  same.reserve(static_cast<std::size_t>(pairs));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) {
      if (ctx.sample_id(i) == ctx.sample_id(j)) continue;  // two copies of one sample
      rdm_f.push_back(1.0 - corr(i, j));
      same.push_back(y[i] == y[j]);
    }
  const std::vector<double> rf = average_ranks(rdm_f);
  // Ranks of the two-valued label RDM: same-class pairs (value 0) share the lowest rank block.
  const double n_same = static_cast<double>(std::count(same.begin(), same.end(), 1));
  const double m = static_cast<double>(rdm_f.size());
  const double rank_same = 0.5 * (1.0 + n_same), rank_diff = n_same + 0.5 * (1.0 + m - n_same);
  const double mean_r = 0.5 * (m + 1.0);
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t p = 0; p < rf.size(); ++p) {
    const double dx = rf[p] - mean_r, dy = (same[p] ? rank_same : rank_diff) - mean_r;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  TLKIT_CHECK_ARG(syy > 0 && sxx > 0,
                  "parc: undefined (all sample pairs have the same class "
                  "relation or the same feature dissimilarity)");
  out.score = 100.0 * sxy / std::sqrt(sxx * syy);
}

}  // namespace tlkit::metrics

namespace tlkit::metrics {

// Held-out accuracy (percent) of multinomial logistic regression: within each class, rows in
// order alternate between training and test (positions 0, 2, ... train for an even seed, 1, 3,
// ... for an odd one; a class with one sample always trains; with sample ids, the distinct samples
// of a class alternate in order of first appearance and every copy goes where its sample goes, so
// no test row has a copy in training); softmax over all classes with an
// unpenalised intercept, minimising 0.5 ||W||^2 + C sum cross-entropy (C = 1, sklearn's
// objective) on the raw features, by L-BFGS (liblbfgs) to convergence.
void logistic(MetricContext& ctx, MetricValue& out) {
  // Split rows: this process's rows, whose positions within their classes continue those of
  // the processes before it (class_offsets()), so the split is that of one process.
  const std::int64_t n = ctx.rows(), d = ctx.d(), classes = ctx.num_classes();
  const int parity = static_cast<int>(ctx.options().seed % 2);
  std::vector<char> train(static_cast<std::size_t>(n), 0);
  std::vector<std::int64_t> seen = ctx.class_offsets();
  if (!ctx.inputs().sample_ids) {
    for (std::int64_t i = 0; i < n; ++i) {
      const int c = ctx.y()[i];
      train[i] = (seen[c]++ % 2) == parity || ctx.counts()[c] == 1;
    }
  } else {
    std::vector<std::int64_t> distinct(static_cast<std::size_t>(classes), 0);
    std::map<std::int64_t, char> side;  // sample id -> train
    for (std::int64_t i = 0; i < n; ++i)
      if (side.emplace(ctx.sample_id(i), 0).second) ++distinct[ctx.y()[i]];
    side.clear();
    for (std::int64_t i = 0; i < n; ++i) {
      const int c = ctx.y()[i];
      const auto [it, first] = side.emplace(ctx.sample_id(i), 0);
      if (first) it->second = (seen[c]++ % 2) == parity || distinct[c] == 1;
      train[i] = it->second;
    }
  }
  const std::int64_t n_train_local = std::count(train.begin(), train.end(), 1);
  double split_sizes[2] = {static_cast<double>(n_train_local), static_cast<double>(n)};
  ctx.reduce_sum(split_sizes, 2);
  const std::int64_t n_train = static_cast<std::int64_t>(split_sizes[0]);
  const std::int64_t n_all = static_cast<std::int64_t>(split_sizes[1]);
  TLKIT_CHECK_ARG(n_train < n_all, "logistic: the split leaves no test samples (N = {})", n_all);
  std::vector<double> xtr, xte;
  xtr.reserve(static_cast<std::size_t>(n_train_local * d));
  xte.reserve(static_cast<std::size_t>((n - n_train_local) * d));
  std::vector<std::int64_t> ytr, yte;
  ctx.for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    for (std::int64_t i = 0; i < cnt; ++i) {
      const double* row = rows + i * d;
      if (train[b + i]) {
        xtr.insert(xtr.end(), row, row + d);
        ytr.push_back(ctx.y()[b + i]);
      } else {
        xte.insert(xte.end(), row, row + d);
        yte.push_back(ctx.y()[b + i]);
      }
    }
  });
  LogisticOptions lo;
  lo.c = ctx.params().number("logistic", "c");
  lo.max_iterations = static_cast<int>(ctx.params().number("logistic", "max_iterations"));
  if (ctx.sharded())
    lo.reduce_sum = [&ctx](double* data, std::size_t count) { ctx.reduce_sum(data, count); };
  const LogisticModel m = fit_logistic(xtr.data(), n_train_local, d, ytr.data(), classes, lo);
  out.converged = m.converged;
  if (!out.converged) {
    // A note, not an error: the accuracy of the fit so far is reported.
    if (lo.max_iterations > 0 && m.iterations >= lo.max_iterations)
      out.notes.push_back(fmt::format(
          "not converged: L-BFGS reached --logistic-max-iterations {} (gradient norm {:.3g}); "
          "the accuracy is that of the fit so far",
          lo.max_iterations, m.gradient_norm));
    else
      out.notes.push_back(fmt::format(
          "not converged: L-BFGS stopped with status {} after {} iterations (gradient norm "
          "{:.3g})",
          m.status, m.iterations, m.gradient_norm));
  }
  out.details["iterations"] = static_cast<double>(m.iterations);
  // Correct test predictions counted on each process and summed (exact: integers).
  const std::int64_t n_test_local = n - n_train_local;
  const std::vector<std::int64_t> predicted = predict_logistic(m, xte.data(), n_test_local);
  double correct = 0.0;
  for (std::int64_t i = 0; i < n_test_local; ++i) correct += predicted[i] == yte[i] ? 1.0 : 0.0;
  ctx.reduce_sum(correct);
  out.score = 100.0 * correct / static_cast<double>(n_all - n_train);
  out.details["train_samples"] = static_cast<double>(n_train);
  out.details["test_samples"] = static_cast<double>(n_all - n_train);
}

}  // namespace tlkit::metrics

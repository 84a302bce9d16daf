// Rank correlations between a metric's scores and ground-truth accuracies (see correlation.h).
//
// The weighted tau follows Vigna (WWW 2015) and SciPy 1.10's scipy.stats.weightedtau, but sums the
// pair weights directly in O(n^2) instead of SciPy's O(n log n) merge sort: for the zoo sizes of
// model selection (< 1000) this is microseconds, easy to check against the definition, and agrees
// with SciPy to rounding (the tests hold it to 1e-12).
#include "tlkit/core/correlation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>

#include "tlkit/core/error.h"

namespace tlkit {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_values(const char* fn, const char* name, const std::vector<double>& v,
                  bool allow_infinite) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    TLKIT_CHECK_ARG(!std::isnan(v[i]), "{}: {}[{}] is NaN", fn, name, i);
    TLKIT_CHECK_ARG(allow_infinite || std::isfinite(v[i]), "{}: {}[{}] is {} (must be finite)", fn,
                    name, i, v[i]);
  }
}

void check_pair(const char* fn, const std::vector<double>& x, const std::vector<double>& y,
                bool allow_infinite = true) {
  TLKIT_CHECK_ARG(x.size() == y.size(), "{}: x has {} values but y has {} (they must be paired)",
                  fn, x.size(), y.size());
  TLKIT_CHECK_ARG(x.size() >= 2, "{}: need at least 2 paired values, got {}", fn, x.size());
  check_values(fn, "x", x, allow_infinite);
  check_values(fn, "y", y, allow_infinite);
}

bool is_constant(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [&](double a) { return a == v[0]; });
}

// Hyperbolic weights 1/(r + 1) of SciPy's rank=None importance order: sort ascending by
// (a, b, index) (np.lexsort((b, a)) is stable), then the last element gets rank 0, the one before
// it rank 1, and so on.
std::vector<double> hyperbolic_weights(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n = a.size();
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  std::stable_sort(perm.begin(), perm.end(), [&](std::size_t i, std::size_t j) {
    return a[i] < a[j] || (a[i] == a[j] && b[i] < b[j]);
  });
  std::vector<double> w(n);
  for (std::size_t k = 0; k < n; ++k) w[perm[n - 1 - k]] = 1.0 / (1.0 + static_cast<double>(k));
  return w;
}

// tau_w(x, y) = (C - D) / sqrt((W - T_x)(W - T_y)) with pair weight w_i + w_j (additive). Written
// symmetrically in x and y, so that exchanging them (with the same w) gives the same bits.
double weighted_tau_with(const std::vector<double>& x, const std::vector<double>& y,
                         const std::vector<double>& w) {
  const std::size_t n = x.size();
  double all = 0, tied_x = 0, tied_y = 0, concordant = 0, discordant = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double pw = w[i] + w[j];
      all += pw;
      const bool tx = x[i] == x[j];
      const bool ty = y[i] == y[j];
      if (tx) tied_x += pw;
      if (ty) tied_y += pw;
      if (tx || ty) continue;
      if ((x[i] < x[j]) == (y[i] < y[j]))
        concordant += pw;
      else
        discordant += pw;
    }
  }
  const double tau = (concordant - discordant) / std::sqrt((all - tied_x) * (all - tied_y));
  return std::clamp(tau, -1.0, 1.0);
}

}  // namespace

double weighted_tau_one_sided(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair("weighted_tau_one_sided", x, y);
  if (is_constant(x) || is_constant(y)) return kNaN;
  return weighted_tau_with(x, y, hyperbolic_weights(x, y));
}

double weighted_tau(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair("weighted_tau", x, y);
  if (is_constant(x) || is_constant(y)) return kNaN;
  // Same order of operations as SciPy: (tau by x's ranking + tau by y's ranking) / 2. Addition
  // commutes exactly, so weighted_tau(y, x) has the same bits.
  return (weighted_tau_with(x, y, hyperbolic_weights(x, y)) +
          weighted_tau_with(y, x, hyperbolic_weights(y, x))) /
         2;
}

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair("kendall_tau_b", x, y);
  if (is_constant(x) || is_constant(y)) return kNaN;
  const std::int64_t n = static_cast<std::int64_t>(x.size());
  std::int64_t tied_x = 0, tied_y = 0, concordant = 0, discordant = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = i + 1; j < n; ++j) {
      const bool tx = x[i] == x[j];
      const bool ty = y[i] == y[j];
      tied_x += tx;
      tied_y += ty;
      if (tx || ty) continue;
      if ((x[i] < x[j]) == (y[i] < y[j]))
        ++concordant;
      else
        ++discordant;
    }
  }
  const std::int64_t pairs = n * (n - 1) / 2;
  // The counts are exact integers (< 2^53 for any n that fits in memory), so this is the exact
  // value rounded, symmetric in x and y.
  const double tau =
      static_cast<double>(concordant - discordant) /
      std::sqrt(static_cast<double>(pairs - tied_x) * static_cast<double>(pairs - tied_y));
  return std::clamp(tau, -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  check_values("average_ranks", "x", x, /*allow_infinite=*/true);
  const std::size_t n = x.size();
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  std::sort(perm.begin(), perm.end(), [&](std::size_t i, std::size_t j) { return x[i] < x[j]; });
  std::vector<double> ranks(n);
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start + 1;
    while (end < n && x[perm[end]] == x[perm[start]]) ++end;
    // Positions start..end-1 (0-based) are ranks start+1..end; their mean is (start + 1 + end) / 2.
    const double mean_rank = 0.5 * static_cast<double>(start + 1 + end);
    for (std::size_t k = start; k < end; ++k) ranks[perm[k]] = mean_rank;
    start = end;
  }
  return ranks;
}

double pearson_r(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair("pearson_r", x, y, /*allow_infinite=*/false);
  if (is_constant(x) || is_constant(y)) return kNaN;
  const std::size_t n = x.size();
  if (n == 2) {
    const auto sign = [](double d) { return d > 0 ? 1.0 : -1.0; };  // d != 0: not constant
    return sign(x[1] - x[0]) * sign(y[1] - y[0]);
  }
  const auto centred = [n](const std::vector<double>& v) {
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(n);
    std::vector<double> c(n);
    for (std::size_t i = 0; i < n; ++i) c[i] = v[i] - mean;
    // Normalise with a scaled norm (as BLAS nrm2 does), so that values near 1e200 cannot overflow.
    double scale = 0;
    for (double a : c) scale = std::max(scale, std::abs(a));
    double sum_sq = 0;
    for (double a : c) sum_sq += (a / scale) * (a / scale);
    const double norm = scale * std::sqrt(sum_sq);
    for (double& a : c) a /= norm;
    return c;
  };
  const std::vector<double> cx = centred(x);
  const std::vector<double> cy = centred(y);
  double r = 0;
  for (std::size_t i = 0; i < n; ++i) r += cx[i] * cy[i];
  return std::clamp(r, -1.0, 1.0);
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  check_pair("spearman_rho", x, y);
  if (is_constant(x) || is_constant(y)) return kNaN;
  return pearson_r(average_ranks(x), average_ranks(y));
}

std::vector<std::size_t> top_indices(const std::vector<double>& scores) {
  TLKIT_CHECK_ARG(!scores.empty(), "top_indices: scores is empty");
  check_values("top_indices", "scores", scores, /*allow_infinite=*/true);
  const double best = *std::max_element(scores.begin(), scores.end());
  std::vector<std::size_t> top;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (scores[i] == best) top.push_back(i);
  return top;
}

double top1_relative_accuracy(const std::vector<double>& scores, const std::vector<double>& truth) {
  const char* fn = "top1_relative_accuracy";
  TLKIT_CHECK_ARG(scores.size() == truth.size(),
                  "{}: scores has {} values but truth has {} (they must be paired)", fn,
                  scores.size(), truth.size());
  TLKIT_CHECK_ARG(scores.size() >= 2, "{}: need at least 2 models, got {}", fn, scores.size());
  check_values(fn, "scores", scores, /*allow_infinite=*/true);
  check_values(fn, "truth", truth, /*allow_infinite=*/false);
  const double best_truth = *std::max_element(truth.begin(), truth.end());
  TLKIT_CHECK_ARG(best_truth > 0, "{}: the largest truth is {}; it must be positive (accuracies)",
                  fn, best_truth);
  const std::vector<std::size_t> top = top_indices(scores);
  double sum = 0;
  for (std::size_t i : top) sum += truth[i];
  return sum / static_cast<double>(top.size()) / best_truth;
}

}  // namespace tlkit

// Agreement between two rankings: how well a transferability metric's scores over a zoo of models
// predict the models' fine-tuned accuracies. Used by `tlkit evaluate`; see docs/evaluate.md.
//
// Conventions shared by every function here:
// * x and y (or scores and truth) are paired: element i of each belongs to model i. Both must
//   have the same length, at least 2; otherwise InputError naming the argument and the size.
// * NaN anywhere is refused with InputError naming the argument and the index (scipy instead
//   ranks NaN as the smallest value; tlkit treats a NaN score as a bug upstream). The rank-based
//   coefficients (weighted tau, Kendall, Spearman) accept +-infinity, which only has an order;
//   Pearson refuses it.
// * Where a coefficient is undefined because x or y is constant (all values equal), the result is
//   NaN, as in SciPy, not an exception: a metric that gives every model the same score is a valid
//   (if useless) input, and the caller reports it.
// * Ties use exact floating-point equality (-0.0 == 0.0).
// * Each function is O(n^2) time and O(n) memory; model zoos have well under 1000 models.
#pragma once

#include <cstddef>
#include <vector>

namespace tlkit {

/// Vigna's additive hyperbolic weighted tau, exactly scipy.stats.weightedtau(x, y) with its
/// defaults (rank=True, weigher 1/(r+1), additive=True), SciPy 1.10.
///
/// For an importance order that gives element i the rank r_i (0 = most important), every pair
/// {i, j} carries the weight w_ij = 1/(r_i + 1) + 1/(r_j + 1). With C and D the total weight of the
/// concordant and discordant pairs, T_x (T_y) that of the pairs tied in x (y), and W that of all
/// pairs,
///
///     tau_r(x, y) = (C - D) / sqrt((W - T_x) (W - T_y)),
///
/// clamped to [-1, 1]: Kendall's tau-b with weighted pairs. (A pair tied in x and y counts in T_x
/// and T_y, and not in C or D.)
///
/// The importance order is decreasing lexicographic: rank 0 goes to the element with the largest
/// x, ties in x going to the larger y, and exact ties in both (x, y) to the larger index (which
/// does not change the result: jointly tied elements have the same pairs). Ranks are ordinal
/// 0..n-1, never shared: of two models tied in x, the one with the larger y is weighted more.
/// The result is the mean of the two orders,
///
///     weighted_tau(x, y) = (tau_{rank by (x, y)}(x, y) + tau_{rank by (y, x)}(x, y)) / 2,
///
/// so it is symmetric, weighted_tau(x, y) == weighted_tau(y, x) bit for bit, and invariant under
/// strictly increasing transforms of x or y. It emphasises agreement at the TOP of both rankings
/// (the largest values): swapping the two best models costs far more than swapping the two worst.
///
/// Returns NaN if x or y is constant. Reference: S. Vigna, "A weighted correlation index for
/// rankings with ties", WWW 2015, https://doi.org/10.1145/2736277.2741088.
double weighted_tau(const std::vector<double>& x, const std::vector<double>& y);

/// One half of weighted_tau: tau_r(x, y) with the importance order decreasing lexicographic by
/// (x, y) only, i.e. scipy.stats.weightedtau(x, y, rank=None). Not symmetric in x and y.
double weighted_tau_one_sided(const std::vector<double>& x, const std::vector<double>& y);

/// Kendall's tau-b, scipy.stats.kendalltau(x, y) (variant 'b'):
///     (n_c - n_d) / sqrt((n_0 - n_x) (n_0 - n_y)),
/// with n_c, n_d the concordant and discordant pair counts, n_0 = n (n - 1) / 2, and n_x (n_y) the
/// number of pairs tied in x (y). Returns NaN if x or y is constant.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);

/// Spearman's rho, scipy.stats.spearmanr(x, y): the Pearson correlation of the average ranks
/// (tied values share the mean of the ranks they span; see average_ranks). Returns NaN if x or y
/// is constant.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

/// Pearson's r, scipy.stats.pearsonr(x, y): <x - mean x, y - mean y> / (|x - mean x| |y - mean y|)
/// computed from the centred vectors (two passes), clamped to [-1, 1]; for n = 2 exactly
/// sign(x1 - x0) sign(y1 - y0), as SciPy does. Returns NaN if x or y is constant. Infinite values
/// are refused (InputError).
double pearson_r(const std::vector<double>& x, const std::vector<double>& y);

/// The 1-based ranks of x with ties given the mean of the ranks they span, as
/// scipy.stats.rankdata(x, method='average'): [10, 20, 20, 5] -> [2, 3.5, 3.5, 1]. Refuses NaN.
std::vector<double> average_ranks(const std::vector<double>& x);

/// Indices of the elements equal to the maximum of `scores`, ascending (several when tied).
/// Refuses an empty vector and NaN.
std::vector<std::size_t> top_indices(const std::vector<double>& scores);

/// Top-1 relative accuracy: truth of the model the scores rank first, divided by the best truth,
///     truth[argmax scores] / max truth,
/// so 1 means the metric picked the best model. If several models tie for the top score, their
/// mean truth is used (the expected value of picking one of them at random). The maximum is over
/// the models given. Like the correlations it needs at least 2 models; `truth` must be finite with
/// a positive maximum (accuracies); otherwise InputError. Scores may be +-infinity.
double top1_relative_accuracy(const std::vector<double>& scores, const std::vector<double>& truth);

}  // namespace tlkit

// Stability of transferability scores under resampling of the target samples (the bootstrap used
// by `tlkit evaluate --bootstrap`; docs/evaluate.md, "Stability (--bootstrap)").
//
// A score is computed on one sample of the target task; a different sample of the same size would
// give a different score, and possibly a different ranking of the models. bootstrap_scores()
// estimates that spread: it draws K resamples of the N target samples and recomputes every
// requested metric of every model on each. The resample is PAIRED: in replicate r every model is
// scored on the same rows (the models' features describe the same N images in the same order),
// so the replicates compare the models on identical data, as the original scores do.
//
// Resampling schemes (BootstrapScheme), all but iid stratified by class (every class keeps its
// share, so every replicate is the same task, with the same classes and class balance, and
// per-class statistics never meet an absent class):
// * subsample (default): within each class, round(f n_c) rows (at least 1) WITHOUT replacement,
//   m = sum round(f n_c) distinct rows (m-out-of-n subsampling, Politis and Romano 1994). For a
//   mean-like statistic the spread over subsamples of fraction f is sqrt((1 - f) / f) times its
//   sampling spread at N, so f = 0.5 (half-sampling, the default fraction) gives intervals on the
//   scale of the original sample. It is the default because it has no duplicates: with copies
//   in the sample LogME's evidence explodes for models with D above the ~0.63 N distinct rows
//   (measured on examples/clothing-features: 4.10 instead of 0.083 for a D = 768 model, which
//   reverses LogME's ranking), and H-score saturates. Scores on f N samples are shifted against
//   the original for metrics that depend on N; rankings within a replicate stay comparable.
// * stratified: within each class, draw as many rows as the class has, with replacement, from
//   that class's rows: the classical bootstrap at the original size N, per class.
// * iid: draw N rows with replacement from all rows. A replicate in which some class of the
//   original is absent is drawn again (counted in BootstrapResult::redrawn), since it would be a
//   different task with fewer classes.
//
// Random numbers: one std::mt19937_64 seeded with BootstrapOptions::seed serves the replicates in
// order. A draw of an index in [0, m) takes 64-bit outputs x until x < 2^64 - (2^64 mod m) and
// returns x mod m (rejection, so the draw is exactly uniform and the same on every platform;
// std::uniform_int_distribution is implementation-defined). Stratified and subsample draws visit
// the classes in ascending label order; stratified draws a class's n_c rows in turn from its rows
// listed in row order, subsample takes the first m_c of a partial Fisher-Yates shuffle of them. The
// indices of a replicate are then sorted ascending (copies of a row are adjacent; the order of rows
// in a replicate does not change any metric's multiset of samples).
//
// Duplicates (stratified, iid): a resample contains copies of the same original row. The replicate
// passes the original row index of every row as ScoreInputs::sample_ids, so the metrics that
// compare samples with each other treat copies as one sample (knn: a copy is not a neighbour;
// logistic: all copies on one side of the split; parc: pairs of copies left out). See score.h.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tlkit/core/matrix_view.h"
#include "tlkit/core/score.h"

namespace tlkit {

enum class BootstrapScheme { kStratified, kIid, kSubsample };

/// "stratified", "iid" or "subsample"; InputError otherwise.
BootstrapScheme parse_bootstrap_scheme(const std::string& s);
const char* to_string(BootstrapScheme s);

/// A uniform integer in [0, m) from `rng` by rejection (m >= 1); see the header comment.
std::uint64_t uniform_index(std::mt19937_64& rng, std::uint64_t m);

/// The row indices of the next replicate (ascending), drawn from `rng` with `scheme`: N of them,
/// or sum round(fraction n_c) for subsample (fraction in (0, 1]). `labels` are the original
/// labels (N >= 1). For iid, the replicate is drawn again until every class of `labels` is
/// present; `redrawn` (if not null) is incremented per redraw.
std::vector<std::int64_t> bootstrap_indices(LabelView labels, BootstrapScheme scheme,
                                            std::mt19937_64& rng, std::int64_t* redrawn = nullptr,
                                            double fraction = 0.5);

/// Row-wise softmax of N x C logits (float32 or float64) into N x C float64 probabilities,
/// row-major: exp(z - max z) / sum exp(z - max z), which is how `tlkit evaluate --bootstrap`
/// turns a model's logits.npy into the probabilities that leep and nce read.
std::vector<double> softmax_rows(const FeatureView& logits);

/// One model of the zoo: its features and/or source-class probabilities on the same N target
/// samples (rows in the same order as the labels), and the registered metrics to recompute.
struct BootstrapModel {
  std::string name;
  FeatureView features;              ///< N x D (rows = 0 when only probability metrics are asked)
  FeatureView probs;                 ///< N x Cs, rows summing to 1 (rows = 0: not given)
  std::vector<std::string> metrics;  ///< registered metric names (metrics.h)
};

struct BootstrapOptions {
  std::int64_t replicates = 1000;  ///< K >= 1
  std::uint64_t seed = 0;          ///< seeds the resampling (not the metrics: see `score`)
  BootstrapScheme scheme = BootstrapScheme::kSubsample;
  double fraction = 0.5;  ///< subsample: share of each class drawn without replacement
  ScoreOptions score;     ///< parameters, seed and threads of every score() call
  /// Called after each replicate with (done, K), e.g. for a progress bar; may be empty.
  std::function<void(std::int64_t, std::int64_t)> progress;
};

/// The scores of one metric across the zoo: on the original sample and on every replicate.
struct BootstrapSeries {
  std::string metric;
  bool zoo = false;              ///< a zoo-level combination (zoo.h), not a registered metric
  bool higher_is_better = true;  ///< the registry's direction (zoo-level metrics: higher)
  std::vector<std::string> models;
  std::vector<double> original;  ///< [model], on the original sample
  std::vector<double> values;    ///< [replicate * models.size() + model]; NaN where it failed
  std::int64_t failed = 0;       ///< (replicate, model) scores that failed (NaN in `values`)
  std::string first_failure;     ///< the message of the first failure
  double replicate(std::int64_t r, std::size_t model) const {
    return values[static_cast<std::size_t>(r) * models.size() + model];
  }
};

struct BootstrapResult {
  std::int64_t n = 0;                    ///< target samples
  std::int64_t replicates = 0;           ///< K
  std::int64_t replicate_rows = 0;       ///< rows of each replicate (N, or fewer for subsample)
  std::int64_t redrawn = 0;              ///< iid replicates drawn again because a class was absent
  std::vector<BootstrapSeries> metrics;  ///< registered metrics (first-request order), then zoo
};

/// Scores every model's metrics on the original sample and on K paired resamples of it. Every
/// model's features/probs must have the labels' N rows. Zoo-level metrics (zoo.h) are added for
/// each combination whose components are all requested for at least 2 models, recombined within
/// each replicate. Errors on the original sample propagate (InputError); a metric that fails on a
/// replicate (e.g. a degenerate resample) gives NaN there and is counted in `failed`.
BootstrapResult bootstrap_scores(const std::vector<BootstrapModel>& models, LabelView labels,
                                 const BootstrapOptions& options);

/// numpy.percentile(values, q) with its default method ('linear'): sorted v, position
/// h = (n - 1) q / 100, v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h]). q in [0, 100];
/// NaN for an empty input. Values must not be NaN.
double percentile_linear(std::vector<double> values, double q);

/// Mean and equal-tailed percentile interval of the non-NaN values:
/// [percentile((1 - c) / 2 * 100), percentile((1 + c) / 2 * 100)] at confidence c in (0, 1).
struct BootstrapInterval {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  ///< sample standard deviation (n - 1)
  std::int64_t count = 0;                                ///< values used (NaN values are left out)
};
BootstrapInterval bootstrap_interval(const std::vector<double>& values, double confidence);

struct BootstrapModelSummary {
  std::string model;
  double original = 0.0;
  BootstrapInterval score;  ///< over the replicates where this model's score is defined
  double p_first = 0.0;     ///< share of valid replicates where it ranks first (ties share)
};

/// The stability of one metric. A replicate is valid when every model's score is defined in it;
/// rankings (P(first), tau, P(top-1 is best)) use the valid replicates. Ranking follows the
/// metric's direction: a lower-is-better metric's scores are negated first.
struct BootstrapMetricSummary {
  std::string metric;
  bool zoo = false;
  bool higher_is_better = true;
  std::vector<BootstrapModelSummary> models;
  std::int64_t valid_replicates = 0;
  double weighted_tau = std::numeric_limits<double>::quiet_NaN();  ///< original scores vs truth
  BootstrapInterval weighted_tau_boot;  ///< replicates where it is defined (not constant)
  double kendall_tau = std::numeric_limits<double>::quiet_NaN();
  BootstrapInterval kendall_tau_boot;
  /// Share of valid replicates in which the metric's top model is a best model by the truth (a
  /// tie for the top counts the fraction of the tied models that are best).
  double p_top1_best = std::numeric_limits<double>::quiet_NaN();
};

/// Summaries of `result` at `confidence` (0 < c < 1). `truth` (model -> accuracy) must hold every
/// model of `result` for the tau and top-1 fields; with an empty `truth` they stay NaN.
std::vector<BootstrapMetricSummary> summarise_bootstrap(const BootstrapResult& result,
                                                        const std::map<std::string, double>& truth,
                                                        double confidence);

}  // namespace tlkit

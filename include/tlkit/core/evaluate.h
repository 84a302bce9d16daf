// How well transferability scores over a zoo of models rank the models' fine-tuned accuracies:
// the evaluation behind `tlkit evaluate` and Python's tlkit.evaluate (docs/evaluate.md).
//
// Per metric, over the models that have both a score and an accuracy: weighted Kendall tau
// (scipy.stats.weightedtau), Kendall tau-b, Spearman rho, Pearson r, and top-1 relative accuracy
// (the accuracy of the top-scored model over the best accuracy; tied top models count by their
// mean accuracy). A metric the registry marks lower-is-better (ncti_vc) is ranked by its negated
// score. Zoo-level metrics (ETran, NCTI) are formed from their per-model components when the
// scores hold them all (tlkit/core/zoo.h).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace tlkit {

/// One metric's scores: models[i] has scores[i].
struct MetricScores {
  std::string name;
  std::vector<std::string> models;
  std::vector<double> scores;
};

/// The agreement of one metric's ranking with the accuracies (NaN where undefined: a constant
/// score or constant accuracies).
struct MetricEvaluation {
  std::string name;
  std::size_t n_models = 0;
  double weighted_tau = 0, kendall_tau = 0, spearman = 0, pearson = 0, top1 = 0;
  std::vector<std::string> top_models;  ///< the top-scored model(s)
};

struct Evaluation {
  std::vector<MetricEvaluation> metrics;  ///< best weighted tau first, undefined last, then name
  /// The metrics evaluated: the given ones, then the zoo-level metrics formed from them.
  std::vector<MetricScores> scores;
  std::vector<std::string> notes;  ///< for people: ties, constant scores, small zoos, ...
};

/// What the inputs are called in messages (the CLI: the CSV files).
struct EvaluationSources {
  std::string scores = "scores";
  std::string truth = "truth";
};

/// Fewer models than this and even a ranking in perfect agreement with the accuracies (Kendall
/// tau = 1) arises by chance with probability 2/n! >= 2/24 = 0.083 (two-sided, every ordering
/// equally likely): no correlation over so few models is significant at the 5% level. Smaller
/// zoos get a note.
inline constexpr std::size_t kMinModelsForCorrelation = 5;

/// Evaluates each metric of `scores` against `truth` (model, accuracy; its order orders the
/// models of formed zoo-level metrics). Every model of `scores` must have an accuracy. Throws
/// tlkit::InputError naming the source and the metric for a metric with fewer than 2 models, a
/// non-positive best accuracy, a non-finite score, or a model without an accuracy.
Evaluation evaluate_scores(const std::vector<MetricScores>& scores,
                           const std::vector<std::pair<std::string, double>>& truth,
                           const EvaluationSources& sources = {});

}  // namespace tlkit

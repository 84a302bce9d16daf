// The evaluation of transferability scores against fine-tuned accuracies (tlkit/core/evaluate.h).
#include "tlkit/core/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/zoo.h"

namespace tlkit {
namespace {

MetricEvaluation evaluate_metric(const MetricScores& m,
                                 const std::map<std::string, double>& accuracy,
                                 const std::vector<std::string>& truth_models,
                                 const EvaluationSources& sources,
                                 std::vector<std::string>* notes) {
  const std::size_t n = m.models.size();
  TLKIT_CHECK_ARG(m.scores.size() == n, "{}: metric '{}' has {} models but {} scores",
                  sources.scores, printable(m.name), n, m.scores.size());
  TLKIT_CHECK_ARG(n >= 2,
                  "{}: metric '{}' has a score for only {} model; a ranking needs at least 2",
                  sources.scores, printable(m.name), n);
  std::vector<double> acc(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto it = accuracy.find(m.models[i]);
    TLKIT_CHECK_ARG(it != accuracy.end(), "{}: metric '{}': model '{}' has no accuracy in {}",
                    sources.scores, printable(m.name), printable(m.models[i]), sources.truth);
    TLKIT_CHECK_ARG(std::isfinite(m.scores[i]),
                    "{}: metric '{}': the score of model '{}' is {} (not a finite number)",
                    sources.scores, printable(m.name), printable(m.models[i]), m.scores[i]);
    acc[i] = it->second;
  }
  const double best = *std::max_element(acc.begin(), acc.end());
  TLKIT_CHECK_ARG(best > 0,
                  "{}: the best accuracy of the models scored by metric '{}' is {}; top-1 "
                  "relative accuracy needs a positive maximum",
                  sources.truth, printable(m.name), best);

  // A metric tlkit registers as lower-is-better (ncti_vc) ranks by its negated score: the CSV
  // that tlkit rank writes keeps every score as computed.
  const auto& registry = metric_registry();
  const auto info = std::find_if(registry.begin(), registry.end(),
                                 [&](const MetricInfo& x) { return x.name == m.name; });
  const bool lower_is_better = info != registry.end() && !info->higher_is_better;
  std::vector<double> ranked = m.scores;
  if (lower_is_better)
    for (double& v : ranked) v = -v;

  MetricEvaluation e;
  e.name = m.name;
  e.n_models = n;
  e.weighted_tau = weighted_tau(ranked, acc);
  e.kendall_tau = kendall_tau_b(ranked, acc);
  e.spearman = spearman_rho(ranked, acc);
  e.pearson = pearson_r(ranked, acc);
  e.top1 = top1_relative_accuracy(ranked, acc);
  for (std::size_t i : top_indices(ranked)) e.top_models.push_back(m.models[i]);

  const std::string label = fmt::format("metric '{}'", printable(m.name));
  if (lower_is_better)
    notes->push_back(
        fmt::format("{}: lower is better, so the correlations use its negated score", label));
  if (n < truth_models.size()) {
    std::vector<std::string> missing;
    for (const auto& model : truth_models)
      if (std::find(m.models.begin(), m.models.end(), model) == m.models.end())
        missing.push_back(model);
    notes->push_back(
        fmt::format("{}: evaluated on the {} of {} models in {} that it scores "
                    "(no score for {})",
                    label, n, truth_models.size(), sources.truth, name_list(missing)));
  }
  if (std::all_of(m.scores.begin(), m.scores.end(), [&](double s) { return s == m.scores[0]; }))
    notes->push_back(
        fmt::format("{}: all {} models have the same score, so the correlations are "
                    "undefined (nan; null in JSON)",
                    label, n));
  if (std::all_of(acc.begin(), acc.end(), [&](double v) { return v == acc[0]; }))
    notes->push_back(
        fmt::format("{}: all {} models it scores have the same accuracy, so the "
                    "correlations are undefined (nan; null in JSON)",
                    label, n));
  if (e.top_models.size() > 1)
    notes->push_back(
        fmt::format("{}: {} models tie for the top score ({}); top-1 relative "
                    "accuracy uses their mean accuracy",
                    label, e.top_models.size(), name_list(e.top_models)));
  return e;
}

// One note per zoo size below kMinModelsForCorrelation, naming the metrics ranked over it.
std::vector<std::string> small_zoo_notes(const std::vector<MetricEvaluation>& evals) {
  std::map<std::size_t, std::vector<std::string>> by_size;
  for (const auto& e : evals)
    if (e.n_models < kMinModelsForCorrelation) by_size[e.n_models].push_back(printable(e.name));
  std::vector<std::string> notes;
  for (auto& [n, names] : by_size) {
    std::sort(names.begin(), names.end());
    double factorial = 1;
    for (std::size_t k = 2; k <= n; ++k) factorial *= static_cast<double>(k);
    std::string joined;
    for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
    notes.push_back(fmt::format(
        "only {} models ({} {}): with fewer than {}, even a ranking in perfect agreement with "
        "the accuracies (tau = 1) arises by chance with probability 2/{}! = {:.2g}, so the "
        "correlations cannot show that a metric works; rank more models",
        n, names.size() == 1 ? "metric" : "metrics", joined, kMinModelsForCorrelation, n,
        std::min(1.0, 2.0 / factorial)));
  }
  return notes;
}

}  // namespace

Evaluation evaluate_scores(const std::vector<MetricScores>& scores,
                           const std::vector<std::pair<std::string, double>>& truth,
                           const EvaluationSources& sources) {
  Evaluation out;
  out.scores = scores;
  std::map<std::string, double> accuracy;
  std::vector<std::string> truth_models;
  for (const auto& [model, acc] : truth) {
    TLKIT_CHECK_ARG(accuracy.emplace(model, acc).second, "{}: a second accuracy for model '{}'",
                    sources.truth, printable(model));
    TLKIT_CHECK_ARG(std::isfinite(acc), "{}: the accuracy of model '{}' is {}", sources.truth,
                    printable(model), acc);
    truth_models.push_back(model);
  }
  // Zoo-level metrics (ETran, NCTI) from their per-model components, when the scores have them.
  std::map<std::string, std::map<std::string, double>> per_model;
  for (const auto& m : scores)
    for (std::size_t i = 0; i < m.models.size() && i < m.scores.size(); ++i)
      per_model[m.models[i]][m.name] = m.scores[i];
  for (const auto& [name, by_model] : combine_zoo_metrics(per_model)) {
    if (std::any_of(scores.begin(), scores.end(),
                    [&](const MetricScores& m) { return m.name == name; }))
      continue;  // given as it is
    MetricScores combined{name, {}, {}};
    for (const auto& model : truth_models)  // truth order, like the other metrics' models
      if (auto it = by_model.find(model); it != by_model.end()) {
        combined.models.push_back(model);
        combined.scores.push_back(it->second);
      }
    out.notes.push_back(
        fmt::format("{} combines its per-model components across the {} models that "
                    "have them (min-max normalised)",
                    name, combined.models.size()));
    out.scores.push_back(std::move(combined));
  }
  for (const auto& m : out.scores)
    out.metrics.push_back(evaluate_metric(m, accuracy, truth_models, sources, &out.notes));
  // Best weighted tau first; undefined (NaN) last; ties by name.
  std::stable_sort(out.metrics.begin(), out.metrics.end(),
                   [](const MetricEvaluation& p, const MetricEvaluation& q) {
                     const bool pn = std::isnan(p.weighted_tau), qn = std::isnan(q.weighted_tau);
                     if (pn != qn) return qn;
                     if (!pn && p.weighted_tau != q.weighted_tau)
                       return p.weighted_tau > q.weighted_tau;
                     return p.name < q.name;
                   });
  for (auto& note : small_zoo_notes(out.metrics)) out.notes.push_back(std::move(note));
  return out;
}

}  // namespace tlkit

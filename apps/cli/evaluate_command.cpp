// `tlkit evaluate`: how well each metric's scores over a zoo of models agree with the models'
// fine-tuned accuracies (weighted tau, Kendall, Spearman, Pearson, top-1). See docs/evaluate.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "commands.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"
#include "tlkit/core/zoo.h"

namespace tlkit::cli {
namespace {

struct Truth {
  std::vector<std::string> models;                                  // file order
  std::map<std::string, std::pair<double, std::int64_t>> by_model;  // accuracy, line
};

struct MetricScores {
  std::string name;
  std::vector<std::string> models;  // scores-file order
  std::vector<double> scores;
};

struct MetricEval {
  std::string name;
  std::size_t n_models = 0;
  double weighted_tau = 0, kendall_tau = 0, spearman = 0, pearson = 0, top1 = 0;
  std::vector<std::string> top_models;
};

// "a, b, c" with at most `shown` names, then "and N more".
std::string name_list(const std::vector<std::string>& names, std::size_t shown = 10) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i)
    s += (i ? ", " : "") + printable(names[i]);
  if (names.size() > shown) s += fmt::format(" and {} more", names.size() - shown);
  return s;
}

Truth read_truth(const std::string& path) {
  const CsvTable t = read_csv_table(path);
  const std::size_t model_col = t.column("model");
  const std::size_t acc_col = t.column("accuracy");
  Truth truth;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const std::string& model = t.nonempty(r, model_col);
    const double acc = t.number(r, acc_col);
    const auto [it, inserted] = truth.by_model.emplace(model, std::make_pair(acc, t.lines[r]));
    TLKIT_CHECK_ARG(inserted,
                    "{}: line {}: a second accuracy for model '{}' (the first is on line {})", path,
                    t.lines[r], printable(model), it->second.second);
    truth.models.push_back(model);
  }
  return truth;
}

std::vector<MetricScores> read_scores(const std::string& path, const Truth& truth,
                                      const std::string& truth_path) {
  const CsvTable t = read_csv_table(path);
  const std::size_t model_col = t.column("model");
  const std::size_t metric_col = t.column("metric");
  const std::size_t score_col = t.column("score");
  TLKIT_CHECK_ARG(!t.rows.empty(), "{}: no scores (the file has only a header)", path);
  std::vector<MetricScores> metrics;
  std::map<std::string, std::size_t> metric_index;
  std::map<std::pair<std::string, std::string>, std::int64_t> seen;  // (model, metric) -> line
  std::vector<std::string> unknown;
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const std::string& model = t.nonempty(r, model_col);
    const std::string& metric = t.nonempty(r, metric_col);
    const double score = t.number(r, score_col);
    const auto [it, inserted] = seen.emplace(std::make_pair(model, metric), t.lines[r]);
    TLKIT_CHECK_ARG(inserted,
                    "{}: line {}: a second score for model '{}', metric '{}' (the first is on "
                    "line {})",
                    path, t.lines[r], printable(model), printable(metric), it->second);
    if (!truth.by_model.count(model) &&
        std::find(unknown.begin(), unknown.end(), model) == unknown.end())
      unknown.push_back(model);
    auto [m, added] = metric_index.emplace(metric, metrics.size());
    if (added) metrics.push_back(MetricScores{metric, {}, {}});
    metrics[m->second].models.push_back(model);
    metrics[m->second].scores.push_back(score);
  }
  TLKIT_CHECK_ARG(unknown.empty(), "{}: {} model{} with scores but no accuracy in {}: {}", path,
                  unknown.size(), unknown.size() == 1 ? "" : "s", truth_path,
                  name_list(unknown, 20));
  return metrics;
}

MetricEval evaluate_metric(const MetricScores& m, const Truth& truth, const EvaluateArgs& a,
                           std::vector<std::string>* notes) {
  const std::size_t n = m.models.size();
  TLKIT_CHECK_ARG(n >= 2,
                  "{}: metric '{}' has a score for only 1 model; a ranking needs at least 2",
                  a.scores, printable(m.name));
  std::vector<double> acc(n);
  for (std::size_t i = 0; i < n; ++i) acc[i] = truth.by_model.at(m.models[i]).first;
  const double best = *std::max_element(acc.begin(), acc.end());
  TLKIT_CHECK_ARG(best > 0,
                  "{}: the best accuracy of the models scored by metric '{}' is {}; top-1 "
                  "relative accuracy needs a positive maximum",
                  a.truth, printable(m.name), best);

  MetricEval e;
  e.name = m.name;
  e.n_models = n;
  e.weighted_tau = weighted_tau(m.scores, acc);
  e.kendall_tau = kendall_tau_b(m.scores, acc);
  e.spearman = spearman_rho(m.scores, acc);
  e.pearson = pearson_r(m.scores, acc);
  e.top1 = top1_relative_accuracy(m.scores, acc);
  for (std::size_t i : top_indices(m.scores)) e.top_models.push_back(m.models[i]);

  const std::string label = fmt::format("metric '{}'", printable(m.name));
  if (n < truth.models.size()) {
    std::vector<std::string> missing;
    for (const auto& model : truth.models)
      if (std::find(m.models.begin(), m.models.end(), model) == m.models.end())
        missing.push_back(model);
    notes->push_back(
        fmt::format("{}: evaluated on the {} of {} models in {} that it scores "
                    "(no score for {})",
                    label, n, truth.models.size(), a.truth, name_list(missing)));
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

// Best weighted tau first; undefined (NaN) last; ties by name.
void sort_by_weighted_tau(std::vector<MetricEval>* evals) {
  std::stable_sort(evals->begin(), evals->end(), [](const MetricEval& p, const MetricEval& q) {
    const bool pn = std::isnan(p.weighted_tau), qn = std::isnan(q.weighted_tau);
    if (pn != qn) return qn;
    if (!pn && p.weighted_tau != q.weighted_tau) return p.weighted_tau > q.weighted_tau;
    return p.name < q.name;
  });
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string table_num(double v) { return std::isnan(v) ? "nan" : fmt::format("{:.4f}", v); }
std::string csv_num(double v) { return std::isnan(v) ? "nan" : fmt::format("{:.17g}", v); }

void print_table(const std::vector<MetricEval>& evals, const std::vector<std::string>& notes,
                 const EvaluateArgs& a, std::size_t n_truth) {
  fmt::print("tlkit evaluate: {} metric{} against the accuracies of {} models ({})\n", evals.size(),
             evals.size() == 1 ? "" : "s", n_truth, a.truth);
  for (const auto& note : notes) fmt::print("note: {}\n", note);
  std::size_t w = 8;  // the metric column
  for (const auto& e : evals) w = std::max(w, printable(e.name).size());
  fmt::print("\n{:<{}} {:>6} {:>12} {:>11} {:>9} {:>9} {:>12}  {}\n", "metric", w, "models",
             "weighted_tau", "kendall_tau", "spearman", "pearson", "top1_rel_acc", "top1_model");
  for (const auto& e : evals) {
    std::vector<std::string> shown;
    for (const auto& model : e.top_models) shown.push_back(printable(model));
    fmt::print("{:<{}} {:>6} {:>12} {:>11} {:>9} {:>9} {:>12}  {}\n", printable(e.name), w,
               e.n_models, table_num(e.weighted_tau), table_num(e.kendall_tau),
               table_num(e.spearman), table_num(e.pearson), table_num(e.top1), join(shown, ", "));
  }
}

void print_csv(const std::vector<MetricEval>& evals) {
  fmt::print(
      "metric,n_models,weighted_tau,kendall_tau,spearman,pearson,top1_relative_accuracy,"
      "top1_model\n");
  for (const auto& e : evals)
    fmt::print("{},{},{},{},{},{},{},{}\n", csv_field(e.name), e.n_models, csv_num(e.weighted_tau),
               csv_num(e.kendall_tau), csv_num(e.spearman), csv_num(e.pearson), csv_num(e.top1),
               csv_field(join(e.top_models, "; ")));
}

void print_json(const std::vector<MetricEval>& evals, const std::vector<std::string>& notes,
                std::size_t n_truth) {
  // nlohmann::json writes NaN as null: an undefined correlation.
  nlohmann::ordered_json j;
  j["schema_version"] = 1;
  j["n_truth_models"] = n_truth;
  j["notes"] = notes;
  j["metrics"] = nlohmann::ordered_json::object();
  for (const auto& e : evals) {
    nlohmann::ordered_json m;
    m["n_models"] = e.n_models;
    m["weighted_tau"] = e.weighted_tau;
    m["kendall_tau"] = e.kendall_tau;
    m["spearman"] = e.spearman;
    m["pearson"] = e.pearson;
    m["top1_relative_accuracy"] = e.top1;
    m["top1_model"] = join(e.top_models, "; ");
    m["top1_models"] = e.top_models;
    j["metrics"][e.name] = m;
  }
  fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

}  // namespace

static CLI::App* add_evaluate_options(CLI::App& app, EvaluateArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Evaluate transferability metrics against ground truth: how well each metric's scores over\n"
      "a zoo of models rank the models' fine-tuned accuracies (weighted tau, Kendall tau-b,\n"
      "Spearman, Pearson, top-1 relative accuracy).\n"
      "Example: tlkit evaluate --scores scores.csv --truth truth.csv\n"
      "Higher scores must mean 'predicted better' (negate a lower-is-better metric first).");
  cmd->add_option("--scores", a.scores,
                  "CSV with the header model,metric,score (any column order): one row per model "
                  "and metric")
      ->required();
  cmd->add_option("--truth", a.truth,
                  "CSV with the header model,accuracy: the fine-tuned accuracy of every scored "
                  "model")
      ->required();
  cmd->add_option("--format", a.format,
                  "Output: table (for people, best weighted tau first), json (one object), csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  return cmd;
}

int run_evaluate(const EvaluateArgs& a) {
  const Truth truth = read_truth(a.truth);
  std::vector<MetricScores> metrics = read_scores(a.scores, truth, a.truth);
  std::vector<std::string> notes;
  // Zoo-level metrics (ETran) from their per-model components, when the scores file has them.
  std::map<std::string, std::map<std::string, double>> per_model;
  for (const auto& m : metrics)
    for (std::size_t i = 0; i < m.models.size(); ++i) per_model[m.models[i]][m.name] = m.scores[i];
  for (const auto& [name, by_model] : combine_zoo_metrics(per_model)) {
    MetricScores combined{name, {}, {}};
    for (const auto& model : truth.models)  // truth order, like the other metrics' models
      if (auto it = by_model.find(model); it != by_model.end()) {
        combined.models.push_back(model);
        combined.scores.push_back(it->second);
      }
    notes.push_back(
        fmt::format("{} combines its per-model components across the {} models that "
                    "have them (min-max normalised)",
                    name, combined.models.size()));
    metrics.push_back(std::move(combined));
  }
  std::vector<MetricEval> evals;
  for (const auto& m : metrics) evals.push_back(evaluate_metric(m, truth, a, &notes));
  sort_by_weighted_tau(&evals);
  if (a.format == "json")
    print_json(evals, notes, truth.models.size());
  else if (a.format == "csv")
    print_csv(evals);
  else
    print_table(evals, notes, a, truth.models.size());
  return 0;
}

}  // namespace tlkit::cli

namespace tlkit::cli {

Command add_evaluate_command(CLI::App& app) {
  auto args = std::make_shared<EvaluateArgs>();
  return {add_evaluate_options(app, *args), [args] { return run_evaluate(*args); }};
}

}  // namespace tlkit::cli

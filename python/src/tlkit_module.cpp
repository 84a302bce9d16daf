// The `tlkit._tlkit` extension: tlkit::core for Python. Conversion only (arrays.h); every
// algorithm and every check of the data lives in the core. The package python/tlkit/__init__.py
// re-exports this module and adds the registry-generated convenience functions.
//
// Threading: each entry point converts its Python arguments first, then releases the GIL for the
// whole core call (py::gil_scoped_release), so scorings in several Python threads run in parallel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/error.h"
#include "tlkit/core/evaluate.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/score.h"

namespace tlkit::python {
namespace {

using namespace pybind11::literals;

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

py::array_t<bool> to_numpy(const std::vector<bool>& v) {
  py::array_t<bool> a(static_cast<py::ssize_t>(v.size()));
  bool* p = a.mutable_data();
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  return a;
}

LogmeOptions logme_options(const std::string& mode, int threads) {
  LogmeOptions o;
  o.mode = parse_logme_mode(mode);
  o.threads = threads;
  return o;
}

// ---- metric parameters as keyword arguments, from the registry -------------------------------

struct ParamKey {
  std::string metric, param;
};

// "<metric>_<param>" -> (metric, param) for every MetricParam of every registered metric.
const std::map<std::string, ParamKey>& param_keys() {
  static const std::map<std::string, ParamKey> keys = [] {
    std::map<std::string, ParamKey> k;
    for (const MetricInfo& m : metric_registry())
      for (const MetricParam& p : m.params) {
        const std::string key = std::string(m.name) + "_" + std::string(p.name);
        if (!k.emplace(key, ParamKey{std::string(m.name), std::string(p.name)}).second)
          throw std::logic_error("tlkit: metric parameter keyword " + key + " is ambiguous");
      }
    return k;
  }();
  return keys;
}

// A keyword value as the registry's text: strings as they are, integers in decimal, reals by
// Python's repr (round-trip exact). None means "the default" and is skipped by the caller.
std::string param_text(py::handle v, const std::string& key) {
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bool_>(v))
    throw py::type_error(key + ": expected a number or a string, got bool");
  const auto obj = py::reinterpret_borrow<py::object>(v);
  if (PyIndex_Check(v.ptr()))  // int, numpy integers
    return py::str(py::module_::import("operator").attr("index")(obj)).cast<std::string>();
  if (py::hasattr(obj, "__float__")) return py::repr(py::float_(obj)).cast<std::string>();
  throw py::type_error(key + ": expected a number or a string, got " +
                       py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>());
}

void apply_params(const py::kwargs& kwargs, MetricParams& params, const char* fn) {
  const auto& keys = param_keys();
  std::vector<std::string> unknown;
  for (const auto& item : kwargs) {
    const std::string key = py::str(item.first).cast<std::string>();
    if (!keys.count(key)) unknown.push_back("'" + key + "'");
  }
  if (!unknown.empty()) {
    std::string known;
    for (const auto& [key, _] : keys) known += (known.empty() ? "" : ", ") + key;
    throw py::type_error(fmt::format(
        "{}() got unexpected keyword argument{} {} (metric parameters are <metric>_<param>: {})",
        fn, unknown.size() > 1 ? "s" : "", fmt::join(unknown, ", "), known));
  }
  for (const auto& item : kwargs) {
    if (item.second.is_none()) continue;
    const std::string key = py::str(item.first).cast<std::string>();
    const ParamKey& k = keys.at(key);
    params.set(k.metric, k.param, param_text(item.second, key));
  }
}

// "a,b" from a string or a sequence of strings.
std::string metric_csv(py::handle metrics) {
  if (py::isinstance<py::str>(metrics)) return metrics.cast<std::string>();
  std::string csv;
  for (py::handle m : metrics) {
    if (!py::isinstance<py::str>(m))
      throw py::type_error("metrics: expected metric names (str), got " +
                           py::repr(m).cast<std::string>());
    csv += (csv.empty() ? "" : ",") + m.cast<std::string>();
  }
  return csv;
}

std::vector<std::string> input_names(unsigned bits) {
  std::vector<std::string> out;
  if (bits & kNeedsFeatures) out.emplace_back("features");
  if (bits & kNeedsLabels) out.emplace_back("labels");
  if (bits & kNeedsProbs) out.emplace_back("probs");
  return out;
}

py::list metrics_info() {
  py::list out;
  for (const MetricInfo& m : metric_registry()) {
    py::list params;
    for (const MetricParam& p : m.params) {
      py::list choices;
      for (auto c : p.choices) choices.append(std::string(c));
      params.append(py::dict("name"_a = std::string(p.name),
                             "keyword"_a = std::string(m.name) + "_" + std::string(p.name),
                             "default"_a = std::string(p.default_value),
                             "help"_a = std::string(p.help), "choices"_a = choices,
                             "type"_a = p.choices.empty() ? "number" : "choice"));
    }
    out.append(py::dict("name"_a = std::string(m.name), "title"_a = std::string(m.title),
                        "paper"_a = std::string(m.paper), "higher_is_better"_a = m.higher_is_better,
                        "inputs"_a = input_names(m.inputs),
                        "supports_regression"_a = m.supports_regression,
                        "streaming"_a = m.streaming, "params"_a = params));
  }
  return out;
}

// ---- entry points ----------------------------------------------------------------------------

constexpr const char* kLabelsHint = "pass regression=True for continuous or multi-label targets";

LogmeResult py_logme(py::handle features, py::handle labels, bool regression,
                     const std::string& mode, int threads) {
  const LogmeOptions options = logme_options(mode, threads);
  const HeldMatrix f = matrix_arg(features, "features");
  if (regression) {
    const HeldTargets t = targets_arg(labels, "targets");
    py::gil_scoped_release release;
    return logme(f.view, t.view, options);
  }
  const HeldLabels y = labels_arg(labels, "labels", kLabelsHint);
  py::gil_scoped_release release;
  return logme(f.view, y.view, options);
}

// score(regression=True), as `tlkit score --regression`: labels holds N or N x K real targets and
// only the metrics that support them run (LogME, one evidence per target column).
ScoreReport score_regression(py::handle features, py::handle targets, py::handle probs,
                             py::handle metrics, const ScoreOptions& options) {
  TLKIT_CHECK_ARG(!features.is_none(), "score(regression=True) needs features");
  TLKIT_CHECK_ARG(probs.is_none(),
                  "score(regression=True): probs are for classification metrics (leep, nce)");
  const std::string csv = metric_csv(metrics);
  const std::vector<std::string> names = parse_metric_list(csv, kNeedsFeatures | kNeedsLabels);
  TLKIT_CHECK_ARG(!names.empty(), "metrics {}: no metric to compute", csv);
  for (const std::string& name : names)
    TLKIT_CHECK_ARG(find_metric(name).supports_regression,
                    "metrics {}: {} does not support regression=True (logme does)", csv, name);
  const HeldMatrix f = matrix_arg(features, "features");
  const HeldTargets t = targets_arg(targets, "targets");
  const LogmeOptions lo = logme_options(options.params.text("logme", "mode"), options.threads);
  ScoreReport report;
  {
    py::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    LogmeResult r = logme(f.view, t.view, lo);
    report = logme_report(
        std::move(r), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return report;
}

ScoreReport py_score(py::handle features, py::handle labels, py::handle probs, py::handle metrics,
                     std::uint64_t seed, int threads, bool regression, const py::kwargs& kwargs) {
  if (labels.is_none()) throw py::type_error("score() missing required argument 'labels'");
  ScoreOptions options;
  options.seed = seed;
  options.threads = threads;
  apply_params(kwargs, options.params, "score");
  if (regression) return score_regression(features, labels, probs, metrics, options);
  const HeldLabels y = labels_arg(
      labels, "labels", "pass regression=True (LogME) for continuous or multi-label targets");
  ScoreInputs in;
  in.labels = y.view;
  std::optional<HeldMatrix> f, p;
  if (!features.is_none()) {
    f = matrix_arg(features, "features");
    in.features = f->view;
  }
  if (!probs.is_none()) {
    p = matrix_arg(probs, "probs");
    in.probs = p->view;
  }
  const unsigned available =
      (f ? unsigned{kNeedsFeatures} : 0u) | kNeedsLabels | (p ? unsigned{kNeedsProbs} : 0u);
  const std::string csv = metric_csv(metrics);
  const std::vector<std::string> names = parse_metric_list(csv, available);
  TLKIT_CHECK_ARG(!names.empty(),
                  "metrics {}: none of these metrics can run on the inputs given (pass features= "
                  "or probs=)",
                  csv);
  py::gil_scoped_release release;
  return score(in, names, options);
}

double correlation(double (*fn)(const std::vector<double>&, const std::vector<double>&),
                   py::handle x, py::handle y, const char* xname, const char* yname) {
  const std::vector<double> a = vector_arg(x, xname), b = vector_arg(y, yname);
  py::gil_scoped_release release;
  return fn(a, b);
}

// LogmeAccumulator with a lock: the GIL is released during update(), so two Python threads
// could otherwise modify one accumulator at the same time.
class PyLogmeAccumulator {
 public:
  void update(py::handle features, py::handle labels, py::handle targets) {
    if (labels.is_none() == targets.is_none())
      throw py::type_error("LogmeAccumulator.update() takes labels or targets=, exactly one");
    const HeldMatrix f = matrix_arg(features, "features");
    if (!targets.is_none()) {
      const HeldTargets t = targets_arg(targets, "targets");
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      acc_.update(f.view, t.view);
      return;
    }
    const HeldLabels y =
        labels_arg(labels, "labels", "pass targets= for continuous or multi-label targets");
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    acc_.update(f.view, y.view);
  }

  void merge(PyLogmeAccumulator& other) {
    if (&other == this)
      TLKIT_THROW_ARG("LogmeAccumulator.merge: cannot merge an accumulator into itself");
    py::gil_scoped_release release;
    std::scoped_lock lock(mu_, other.mu_);
    acc_.merge(other.acc_);
  }

  LogmeResult result(const std::string& mode, int threads) const {
    const LogmeOptions options = logme_options(mode, threads);
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    return acc_.result(options);
  }

  std::int64_t rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acc_.rows();
  }
  std::int64_t dim() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acc_.dim();
  }

 private:
  LogmeAccumulator acc_;
  mutable std::mutex mu_;
};

std::vector<std::string> boundary_names(const LogmeResult& r) {
  std::vector<std::string> out;
  for (Boundary b : r.boundary) out.emplace_back(to_string(b));
  return out;
}

py::dict logme_dict(const LogmeResult& r) {
  return py::dict("score"_a = r.score, "mode"_a = to_string(r.mode), "regression"_a = r.regression,
                  "n"_a = r.n, "d"_a = r.d, "rank"_a = r.rank, "labels"_a = r.labels,
                  "per_target"_a = r.per_target, "alpha"_a = r.alpha, "beta"_a = r.beta,
                  "iterations"_a = r.iterations, "converged"_a = r.converged,
                  "boundary"_a = boundary_names(r));
}

}  // namespace
}  // namespace tlkit::python

PYBIND11_MODULE(_tlkit, m) {
  namespace py = pybind11;
  using namespace pybind11::literals;
  using namespace tlkit;
  using namespace tlkit::python;

  m.doc() = "tlkit's C++ core (tlkit::core) for NumPy arrays. Use the package `tlkit`.";
  m.attr("__version__") = version();
  param_keys();  // a registry with an ambiguous <metric>_<param> keyword fails the import

  py::class_<LogmeResult>(m, "LogmeResult",
                          "LogME of one feature matrix: the mean score and, per target (ascending "
                          "label, or target column), the evidence / N, alpha, beta, iterations, "
                          "convergence and where the maximum lies.")
      .def_readonly("score", &LogmeResult::score, "mean of per_target (higher is better)")
      .def_property_readonly(
          "per_target", [](const LogmeResult& r) { return to_numpy(r.per_target); },
          "max log evidence / N per target (float64 array)")
      .def_property_readonly(
          "alpha", [](const LogmeResult& r) { return to_numpy(r.alpha); },
          "prior precision at the maximum per target (inf where the maximum is a limit)")
      .def_property_readonly(
          "beta", [](const LogmeResult& r) { return to_numpy(r.beta); },
          "noise precision at the maximum per target (inf where the maximum is a limit)")
      .def_property_readonly(
          "iterations", [](const LogmeResult& r) { return to_numpy(r.iterations); },
          "fixed-point iterations (thuml, icml) or bisection steps (exact) per target")
      .def_property_readonly(
          "converged", [](const LogmeResult& r) { return to_numpy(r.converged); },
          "False where the iteration cap was hit or a non-finite value arose")
      .def_property_readonly("boundary", &boundary_names,
                             "per target: interior, beta_infinite, alpha_infinite, noise_floor "
                             "or n/a (thuml, icml)")
      .def_property_readonly(
          "labels", [](const LogmeResult& r) { return to_numpy(r.labels); },
          "classification: the distinct labels (the targets), ascending; empty for regression")
      .def_readonly("n", &LogmeResult::n, "samples")
      .def_readonly("d", &LogmeResult::d, "feature dimension")
      .def_readonly("rank", &LogmeResult::rank, "eigenvalues above the mode's cut")
      .def_property_readonly(
          "mode", [](const LogmeResult& r) { return std::string(to_string(r.mode)); },
          "exact, thuml or icml")
      .def_readonly("regression", &LogmeResult::regression)
      .def("as_dict", &logme_dict, "All fields as plain Python values (lists, floats, str).")
      .def("__repr__", [](const LogmeResult& r) {
        return fmt::format("LogmeResult(score={:.6g}, mode='{}', n={}, d={}, targets={})", r.score,
                           to_string(r.mode), r.n, r.d, r.per_target.size());
      });

  py::class_<MetricValue>(m, "MetricValue", "One metric's result within a ScoreReport.")
      .def_readonly("name", &MetricValue::name)
      .def_readonly("score", &MetricValue::score)
      .def_readonly("seconds", &MetricValue::seconds,
                    "wall time, including shared work this metric triggered first")
      .def_readonly("converged", &MetricValue::converged)
      .def_readonly("details", &MetricValue::details, "named components (dict of float)")
      .def_readonly("notes", &MetricValue::notes)
      .def("__repr__", [](const MetricValue& v) {
        return fmt::format("MetricValue(name='{}', score={:.6g})", v.name, v.score);
      });

  py::class_<ScoreReport>(m, "ScoreReport", "Everything tlkit::score computed.")
      .def_readonly("n", &ScoreReport::n)
      .def_readonly("d", &ScoreReport::d, "feature dimension (0 without features)")
      .def_property_readonly(
          "labels", [](const ScoreReport& r) { return to_numpy(r.labels); },
          "the distinct labels (classes), ascending")
      .def_readonly("metrics", &ScoreReport::metrics, "MetricValue list, in the requested order")
      .def_property_readonly(
          "logme",
          [](const ScoreReport& r) -> py::object {
            if (r.logme.per_target.empty()) return py::none();
            return py::cast(r.logme);
          },
          "the full LogmeResult when logme was computed, else None")
      .def_readonly("shared_seconds", &ScoreReport::shared_seconds,
                    "one-pass statistics and decompositions shared by the metrics");

  m.def("logme", &py_logme, "features"_a, "labels"_a, "regression"_a = false, "mode"_a = "exact",
        "threads"_a = 0,
        "LogME of features (N x D float32/float64) for labels (N integers); regression=True: "
        "labels holds N or N x K real targets. mode: exact, thuml or icml.");

  m.def("score", &py_score, "features"_a = py::none(), "labels"_a = py::none(),
        "probs"_a = py::none(), "metrics"_a = "logme", "seed"_a = 0, "threads"_a = 0,
        "regression"_a = false,
        "Registered metrics in one pass; keyword arguments <metric>_<param> set parameters. "
        "regression=True: labels holds N or N x K real targets (LogME only).");

  m.def("metrics", &metrics_info, "The metric registry: one dict per metric.");

  m.def(
      "weighted_tau",
      [](py::handle x, py::handle y) { return correlation(&weighted_tau, x, y, "x", "y"); }, "x"_a,
      "y"_a, "scipy.stats.weightedtau(x, y): additive hyperbolic weighted Kendall tau.");
  m.def(
      "weighted_tau_one_sided",
      [](py::handle x, py::handle y) {
        return correlation(&weighted_tau_one_sided, x, y, "x", "y");
      },
      "x"_a, "y"_a, "scipy.stats.weightedtau(x, y, rank=None): importance order by (x, y) only.");
  m.def(
      "kendall_tau",
      [](py::handle x, py::handle y) { return correlation(&kendall_tau_b, x, y, "x", "y"); }, "x"_a,
      "y"_a, "Kendall's tau-b, scipy.stats.kendalltau(x, y).");
  m.def(
      "spearman",
      [](py::handle x, py::handle y) { return correlation(&spearman_rho, x, y, "x", "y"); }, "x"_a,
      "y"_a, "Spearman's rho, scipy.stats.spearmanr(x, y).");
  m.def(
      "pearson", [](py::handle x, py::handle y) { return correlation(&pearson_r, x, y, "x", "y"); },
      "x"_a, "y"_a, "Pearson's r, scipy.stats.pearsonr(x, y).");
  m.def(
      "top1_relative_accuracy",
      [](py::handle scores, py::handle truth) {
        return correlation(&top1_relative_accuracy, scores, truth, "scores", "truth");
      },
      "scores"_a, "truth"_a,
      "truth of the model ranked first by scores / the best truth (ties: their mean truth).");
  m.def(
      "evaluate",
      [](const py::dict& scores, const py::dict& truth) {
        std::vector<MetricScores> metrics;
        for (const auto& [metric, by_model] : scores) {
          MetricScores ms;
          ms.name = py::str(metric);
          TLKIT_CHECK_ARG(py::isinstance<py::dict>(by_model),
                          "scores['{}']: expected a dict {{model: score}}", ms.name);
          for (const auto& [model, value] : py::reinterpret_borrow<py::dict>(by_model)) {
            ms.models.push_back(py::str(model));
            ms.scores.push_back(py::cast<double>(value));
          }
          metrics.push_back(std::move(ms));
        }
        std::vector<std::pair<std::string, double>> accuracies;
        for (const auto& [model, value] : truth)
          accuracies.emplace_back(py::str(model), py::cast<double>(value));
        // Models scored without an accuracy are left out, as by tlkit evaluate.
        std::vector<std::string> left_out;
        for (MetricScores& ms : metrics) {
          MetricScores kept{ms.name, {}, {}};
          for (std::size_t i = 0; i < ms.models.size(); ++i) {
            if (truth.contains(py::str(ms.models[i]))) {
              kept.models.push_back(ms.models[i]);
              kept.scores.push_back(ms.scores[i]);
            } else if (std::find(left_out.begin(), left_out.end(), ms.models[i]) ==
                       left_out.end()) {
              left_out.push_back(ms.models[i]);
            }
          }
          ms = std::move(kept);
        }
        const Evaluation ev = evaluate_scores(metrics, accuracies, {"scores", "truth"});
        py::list rows;
        for (const MetricEvaluation& e : ev.metrics) {
          py::dict row;
          row["metric"] = e.name;
          row["n_models"] = e.n_models;
          row["weighted_tau"] = e.weighted_tau;
          row["kendall_tau"] = e.kendall_tau;
          row["spearman"] = e.spearman;
          row["pearson"] = e.pearson;
          row["top1_relative_accuracy"] = e.top1;
          row["top1_models"] = e.top_models;
          rows.append(row);
        }
        py::dict out;
        out["metrics"] = rows;
        out["notes"] = ev.notes;
        out["left_out"] = left_out;
        return out;
      },
      "scores"_a, "truth"_a,
      "tlkit evaluate: how well each metric's scores rank the models' accuracies. scores: "
      "{metric: {model: score}}, truth: {model: accuracy}. Returns {'metrics': [one dict per "
      "metric, best weighted tau first], 'notes': [...], 'left_out': [models without an "
      "accuracy]}.");
  m.def(
      "average_ranks",
      [](py::handle x) {
        const std::vector<double> v = vector_arg(x, "x");
        return to_numpy(average_ranks(v));
      },
      "x"_a, "1-based ranks, ties averaged: scipy.stats.rankdata(x, method='average').");

  py::class_<PyLogmeAccumulator>(m, "LogmeAccumulator",
                                 "LogME from row chunks: memory D^2 + D K doubles, whatever N.")
      .def(py::init<>())
      .def("update", &PyLogmeAccumulator::update, "features"_a, "labels"_a = py::none(),
           py::kw_only(), "targets"_a = py::none(),
           "Adds a chunk of rows with their labels, or with targets= (regression).")
      .def("merge", &PyLogmeAccumulator::merge, "other"_a, "Adds another accumulator's statistics.")
      .def("result", &PyLogmeAccumulator::result, "mode"_a = "exact", "threads"_a = 0,
           "LogME of all rows so far (equals tlkit.logme on the concatenation to rounding).")
      .def_property_readonly("rows", &PyLogmeAccumulator::rows)
      .def_property_readonly("dim", &PyLogmeAccumulator::dim);

  m.def("set_blas_threads", &set_blas_threads, "threads"_a,
        "Sets OpenBLAS and OpenMP threads for the whole process (0: the cores other processes "
        "leave idle, at least 1).");
  m.def("_debug_view_info", &debug_view_info, "array"_a, "role"_a = "features",
        "What the bindings would pass to the core for this argument: copied (bool), reason, "
        "dtype, shape, element strides, data address of the view and of the input array.");
}

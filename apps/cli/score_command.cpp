#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"

namespace tlkit::cli {
namespace {

std::string metric_help() {
  std::string s = "Metrics to compute, comma-separated, or 'all'. Known:";
  for (const auto& m : metric_registry())
    s += fmt::format("\n  {:<8} {} ({}; {} is better)", m.name, m.title, m.paper,
                     m.higher_is_better ? "higher" : "lower");
  return s;
}

struct Scored {
  LogmeResult logme;
  double seconds = 0.0;
};

// Distinct labels are contiguous when they are exactly 0..C-1.
bool contiguous(const std::vector<std::int64_t>& labels) {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

std::string labels_summary(const std::vector<std::int64_t>& labels) {
  if (contiguous(labels)) return fmt::format("labels 0..{}", labels.size() - 1);
  std::string s;
  const std::size_t shown = std::min<std::size_t>(labels.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + std::to_string(labels[i]);
  if (shown < labels.size()) s += ", ...";
  return fmt::format("labels {{{}}}, not contiguous: each distinct label present is a class", s);
}

Scored compute_logme(const ScoreArgs& a, const LogmeOptions& opt) {
  Scored out;
  const NpyArray label_file = load_npy(a.labels);
  std::vector<std::int64_t> labels;
  std::vector<double> targets;
  std::int64_t k = 0;
  if (a.regression)
    targets = label_file.targets(&k);
  else
    labels = label_file.labels();
  const std::int64_t n_labels = label_file.rows();

  const auto t0 = std::chrono::steady_clock::now();
  if (a.chunk_rows > 0) {
    NpyRowReader reader(a.features);
    TLKIT_CHECK_ARG(reader.rows() == n_labels, "{} has {} rows but {} has {} entries", a.features,
                    reader.rows(), a.labels, n_labels);
    LogmeAccumulator acc;
    for (std::int64_t done = 0; done < reader.rows();) {
      const FeatureView chunk = reader.next(a.chunk_rows);
      if (a.regression)
        acc.update(chunk, TargetView{targets.data() + done * k, chunk.rows, k, k, 1});
      else
        acc.update(chunk, LabelView{labels.data() + done, chunk.rows});
      done += chunk.rows;
    }
    out.logme = acc.result(opt);
  } else {
    const NpyArray features = load_npy(a.features);
    const FeatureView f = features.features();
    TLKIT_CHECK_ARG(f.rows == n_labels, "{} has {} rows but {} has {} entries", a.features, f.rows,
                    a.labels, n_labels);
    out.logme = a.regression ? logme(f, TargetView{targets.data(), n_labels, k, k, 1}, opt)
                             : logme(f, LabelView{labels.data(), n_labels}, opt);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string fmt_num(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.6g}", v);
}

std::vector<std::string> notes_for(const LogmeResult& r) {
  std::vector<std::string> notes;
  if (!r.regression && !contiguous(r.labels))
    notes.push_back(fmt::format("labels are not contiguous: the {} distinct labels present are "
                                "the classes, in ascending order", r.labels.size()));
  if (r.n <= r.d)
    notes.push_back(fmt::format("N = {} <= D = {}: every target lies in the span of the features "
                                "when they have rank N", r.n, r.d));
  return notes;
}

void print_table(const Scored& s) {
  const LogmeResult& r = s.logme;
  const std::size_t t = r.per_target.size();
  fmt::print("tlkit score: N = {} samples, D = {} features, {} {}{}\n", r.n, r.d, t,
             r.regression ? "regression targets" : "classes",
             r.regression ? "" : " (" + labels_summary(r.labels) + ")");
  for (const auto& note : notes_for(r)) fmt::print("note: {}\n", note);
  fmt::print("\n{:<8} {:<6} {:>14} {:>10}\n", "metric", "mode", "score", "seconds");
  fmt::print("{:<8} {:<6} {:>14.6f} {:>10.3f}\n", "logme", to_string(r.mode), r.score, s.seconds);
  if (t > 20) {
    fmt::print("\n({} per-target values: use --format json or csv)\n", t);
    return;
  }
  fmt::print("\n{:<8} {:>14} {:>12} {:>12} {:>6} {:>10}  {}\n", r.regression ? "target" : "label",
             "evidence/N", "alpha", "beta", "iters", "converged", "boundary");
  for (std::size_t c = 0; c < t; ++c)
    fmt::print("{:<8} {:>14.6f} {:>12} {:>12} {:>6} {:>10}  {}\n",
               r.regression ? std::to_string(c) : std::to_string(r.labels[c]), r.per_target[c],
               fmt_num(r.alpha[c]), fmt_num(r.beta[c]), r.iterations[c],
               r.converged[c] ? "yes" : "NO", to_string(r.boundary[c]));
}

void print_csv(const Scored& s) {
  const LogmeResult& r = s.logme;
  fmt::print("metric,target,label,score,alpha,beta,iterations,converged,boundary\n");
  fmt::print("logme,mean,,{:.17g},,,,,\n", r.score);
  for (std::size_t c = 0; c < r.per_target.size(); ++c)
    fmt::print("logme,{},{},{:.17g},{:.17g},{:.17g},{},{},{}\n", c,
               r.regression ? "" : std::to_string(r.labels[c]), r.per_target[c], r.alpha[c],
               r.beta[c], r.iterations[c], r.converged[c] ? "true" : "false",
               to_string(r.boundary[c]));
}

void print_json(const Scored& s) {
  const LogmeResult& r = s.logme;
  nlohmann::json m;
  m["score"] = r.score;
  m["mode"] = to_string(r.mode);
  m["per_target"] = r.per_target;
  // JSON has no infinity: an infinite alpha or beta (a supremum at a limit) is written as null
  // and explained by "boundary".
  auto finite_or_null = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json());
    return a;
  };
  m["alpha"] = finite_or_null(r.alpha);
  m["beta"] = finite_or_null(r.beta);
  m["iterations"] = r.iterations;
  m["converged"] = r.converged;
  nlohmann::json b = nlohmann::json::array();
  for (auto x : r.boundary) b.push_back(to_string(x));
  m["boundary"] = b;
  m["rank"] = r.rank;
  m["seconds"] = s.seconds;
  nlohmann::json j;
  j["schema_version"] = 1;
  j["n"] = r.n;
  j["d"] = r.d;
  j["targets"] = r.per_target.size();
  j["task"] = r.regression ? "regression" : "classification";
  if (!r.regression) j["labels"] = r.labels;
  j["notes"] = notes_for(r);
  j["metrics"]["logme"] = m;
  fmt::print("{}\n", j.dump());
}

}  // namespace

CLI::App* add_score_command(CLI::App& app, ScoreArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "score",
      "Score one model's features on a labelled target dataset with transferability metrics.\n"
      "Example: tlkit score --features feats.npy --labels labels.npy\n"
      "Features are an N x D float32/float64 .npy (C or Fortran order) or an .npz member\n"
      "(file.npz:name); labels are N integers (any width; need not be contiguous).");
  cmd->add_option("--features", a.features, "Features: N x D .npy, or file.npz:member")
      ->required();
  cmd->add_option("--labels", a.labels,
                  "Labels: N integers (.npy or file.npz:member); with --regression an N or N x K "
                  "float matrix of targets")
      ->required();
  cmd->add_option("--metric", a.metric, metric_help())->capture_default_str();
  cmd->add_flag("--regression", a.regression,
                "Treat --labels as continuous targets (N or N x K); for multi-label pass the "
                "N x K 0/1 matrix");
  cmd->add_option("--logme-mode", a.logme_mode,
                  "exact: the true maximum evidence (default); thuml: github.com/thuml/LogME's "
                  "default fixed-point code, reproduced; icml: the ICML 2021 algorithm (TLlib)")
      ->check(CLI::IsMember({"exact", "thuml", "icml"}))
      ->capture_default_str();
  cmd->add_option("--format", a.format, "Output: table (for people), json (one object), csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  cmd->add_option("--chunk-rows", a.chunk_rows,
                  "Stream the features in chunks of this many rows (memory independent of N); "
                  "0 reads them whole")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "BLAS/OpenMP threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return cmd;
}

int run_score(const ScoreArgs& a) {
  set_blas_threads(a.threads);
  const std::vector<std::string> metrics = parse_metric_list(a.metric);
  LogmeOptions opt;
  opt.mode = parse_logme_mode(a.logme_mode);
  opt.threads = a.threads;
  for (const auto& name : metrics) {
    const MetricInfo& info = find_metric(name);
    TLKIT_CHECK_ARG(!a.regression || info.supports_regression,
                    "--metric {} does not support --regression", name);
    TLKIT_CHECK_ARG(a.chunk_rows == 0 || info.streaming, "--metric {} cannot stream "
                    "(--chunk-rows)", name);
  }
  const Scored s = compute_logme(a, opt);
  std::size_t not_converged = 0;
  for (bool c : s.logme.converged) not_converged += !c;
  if (not_converged)
    fmt::print(stderr, "tlkit: warning: logme did not converge for {} of {} targets\n",
               not_converged, s.logme.converged.size());
  if (a.format == "json")
    print_json(s);
  else if (a.format == "csv")
    print_csv(s);
  else
    print_table(s);
  return 0;
}

}  // namespace tlkit::cli

// `tlkit evaluate`: how well each metric's scores over a zoo of models agree with the models'
// fine-tuned accuracies (weighted tau, Kendall, Spearman, Pearson, top-1), and with --bootstrap
// how stable the scores and rankings are under resampling of the target samples (the resampling
// itself is tlkit/core/bootstrap.h). See docs/evaluate.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "commands.h"
#include "progress.h"
#include "tlkit/core/bootstrap.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"
#include "tlkit/core/evaluate.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/zoo.h"

namespace tlkit::cli {
namespace {

struct Truth {
  std::vector<std::string> models;                                  // file order
  std::map<std::string, std::pair<double, std::int64_t>> by_model;  // accuracy, line
};

using MetricEval = MetricEvaluation;

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

// The scores of the models that have an accuracy; those of other models are left out, named in
// `left_out` (scores-file order).
std::vector<MetricScores> read_scores(const std::string& path, const Truth& truth,
                                      const std::string& truth_path,
                                      std::vector<std::string>* left_out) {
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
    if (!truth.by_model.count(model)) {
      if (std::find(unknown.begin(), unknown.end(), model) == unknown.end())
        unknown.push_back(model);
      continue;
    }
    auto [m, added] = metric_index.emplace(metric, metrics.size());
    if (added) metrics.push_back(MetricScores{metric, {}, {}});
    metrics[m->second].models.push_back(model);
    metrics[m->second].scores.push_back(score);
  }
  TLKIT_CHECK_ARG(!metrics.empty(),
                  "{}: none of its {} model{} has an accuracy in {} (scores for {}; accuracies "
                  "for {})",
                  path, unknown.size(), unknown.size() == 1 ? "" : "s", truth_path,
                  name_list(unknown), name_list(truth.models));
  *left_out = std::move(unknown);
  return metrics;
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
                std::size_t n_truth, const nlohmann::ordered_json* bootstrap) {
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
  if (bootstrap) j["bootstrap"] = *bootstrap;
  fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

// ---- Stability (--bootstrap) ----

// One model's arrays, loaded once from <dir>/<model>/.
struct LoadedModel {
  std::optional<NpyArray> features;
  std::vector<double> probs;  // softmax of logits.npy, N x Cs row-major (empty: not needed)
  std::int64_t cs = 0;
};

struct BootstrapRun {
  BootstrapResult result;
  std::vector<BootstrapMetricSummary> summaries;  // in the order of the main evaluation
  std::vector<std::string> notes;
  std::map<std::pair<std::string, std::string>, double> file_scores;  // (metric, model) -> csv
};

bool is_file(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

// The labels in `folder` (a model's features folder): its labels.npy, else <dir>/labels.npy
// shared by every model (the layout of examples/clothing-features).
std::string labels_path(const std::string& dir, const std::string& folder,
                        const std::string& model) {
  const std::string own = (std::filesystem::path(folder) / "labels.npy").string();
  if (is_file(own)) return own;
  const std::string shared = (std::filesystem::path(dir) / "labels.npy").string();
  TLKIT_CHECK_ARG(is_file(shared),
                  "--features-dir: no labels for model '{}': neither {} nor {} exists", model, own,
                  shared);
  return shared;
}

// One entry of tlkit rank's feature cache, <dir>/<model>/<key>/ (complete: meta.json written).
struct CacheEntry {
  std::string folder;
  std::string listing;  // data.listing_sha256 of meta.json
  std::filesystem::file_time_type written;
};

// The complete class-label entries of `model` in a rank cache (newest first); regression and
// multi-label entries (targets.npy) are left out: the bootstrap resamples classes.
std::vector<CacheEntry> cache_entries(const std::filesystem::path& model_dir) {
  namespace fs = std::filesystem;
  std::vector<CacheEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(model_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path meta = it->path() / "meta.json";
    if (!is_file(meta.string()) || !is_file((it->path() / "labels.npy").string())) continue;
    try {
      std::ifstream in(meta, std::ios::binary);
      const nlohmann::json j = nlohmann::json::parse(in);
      const nlohmann::json& data = j.at("data");
      if (data.value("task", "classification") != "classification") continue;
      out.push_back({it->path().string(), data.at("listing_sha256").get<std::string>(),
                     fs::last_write_time(meta, ec)});
    } catch (const std::exception&) {
      continue;  // not an entry tlkit wrote
    }
  }
  std::sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) {
    return a.written != b.written ? a.written > b.written : a.folder < b.folder;
  });
  return out;
}

// The features folder of each model under `dir`: <dir>/<model>/ as tlkit extract writes it, or
// the entry of tlkit rank's feature cache (--cache DIR: <dir>/<model>/<key>/) for the listing
// that every such model has, the most recently written when there are several.
std::map<std::string, std::string> model_folders(const std::string& dir,
                                                 const std::vector<std::string>& models,
                                                 std::vector<std::string>* notes) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> folders;
  std::map<std::string, std::vector<CacheEntry>> cached;
  for (const std::string& name : models) {
    TLKIT_CHECK_ARG(!name.empty() && name != "." && name != ".." &&
                        name.find('/') == std::string::npos && name.find('\\') == std::string::npos,
                    "--features-dir: model name '{}' cannot be a folder name", printable(name));
    const fs::path folder = fs::path(dir) / name;
    std::error_code ec;
    TLKIT_CHECK_ARG(fs::is_directory(folder, ec),
                    "--features-dir: no folder for model '{}': {} does not exist (expected the "
                    "layout of tlkit extract: features.npy, labels.npy, logits.npy, or tlkit "
                    "rank's --cache folder)",
                    printable(name), folder.string());
    std::vector<CacheEntry> entries;
    if (!is_file((folder / "features.npy").string()) && !is_file((folder / "logits.npy").string()))
      entries = cache_entries(folder);
    if (entries.empty())
      folders[name] = folder.string();
    else
      cached[name] = std::move(entries);
  }
  if (cached.empty()) return folders;
  // The listings every cached model has an entry for, by their newest entry.
  std::map<std::string, fs::file_time_type> common;
  for (const CacheEntry& e : cached.begin()->second)
    if (!common.count(e.listing)) common[e.listing] = e.written;
  for (const auto& [name, entries] : cached)
    for (auto it = common.begin(); it != common.end();) {
      const auto e = std::find_if(entries.begin(), entries.end(),
                                  [&](const CacheEntry& c) { return c.listing == it->first; });
      if (e == entries.end()) {
        it = common.erase(it);
      } else {
        it->second = std::max(it->second, e->written);
        ++it;
      }
    }
  if (common.empty()) {
    std::vector<std::string> parts;
    for (const auto& [name, entries] : cached) {
      std::set<std::string> listings;
      for (const CacheEntry& e : entries) listings.insert(e.listing.substr(0, 12));
      parts.push_back(
          fmt::format("'{}': {}", printable(name),
                      join(std::vector<std::string>(listings.begin(), listings.end()), " ")));
    }
    TLKIT_THROW_ARG(
        "--features-dir {}: the models' feature-cache entries describe no common dataset "
        "listing (listing hashes per model: {}); rank them on the same data first, or give a "
        "folder of one extraction per model",
        dir, join(parts, "; "));
  }
  const auto chosen =
      std::max_element(common.begin(), common.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  std::size_t other_entries = 0;
  for (const auto& [name, entries] : cached) {
    const auto e = std::find_if(entries.begin(), entries.end(),
                                [&](const CacheEntry& c) { return c.listing == chosen->first; });
    folders[name] = e->folder;  // the newest entry of that listing
    other_entries += entries.size() - 1;
  }
  notes->push_back(fmt::format(
      "--features-dir {}: read as tlkit rank's feature cache ({} model(s)); listing {}{}", dir,
      cached.size(), chosen->first.substr(0, 12),
      other_entries == 0
          ? ""
          : fmt::format(", the most recently written of the {} listing(s) every model has ({} "
                        "other entries left out)",
                        common.size(), other_entries)));
  return folders;
}

BootstrapRun run_bootstrap(const EvaluateArgs& a, const std::vector<MetricScores>& metrics,
                           const std::vector<MetricEval>& evals, const Truth& truth) {
  BootstrapRun run;
  // Registered metrics from the scores file, and the models each scores.
  std::map<std::string, std::vector<std::string>> metrics_of;  // model -> metrics
  std::vector<std::string> skipped;
  std::set<std::string> registered;
  for (const auto& m : metric_registry()) registered.emplace(m.name);
  for (const auto& m : metrics) {
    if (!registered.count(m.name)) {
      // A zoo-level combination is recombined from its components when the scores file has
      // them all; otherwise it cannot be recomputed either.
      std::set<std::string> in_file;
      for (const auto& other : metrics) in_file.insert(other.name);
      const auto& zoo = zoo_metrics();
      const bool recombined = std::any_of(zoo.begin(), zoo.end(), [&](const ZooMetric& z) {
        return z.name == m.name &&
               std::all_of(z.components.begin(), z.components.end(),
                           [&](const auto& c) { return in_file.count(c.first); });
      });
      if (!recombined) skipped.push_back(m.name);
      continue;
    }
    for (std::size_t i = 0; i < m.models.size(); ++i) {
      metrics_of[m.models[i]].push_back(m.name);
      run.file_scores[{m.name, m.models[i]}] = m.scores[i];
    }
  }
  if (!skipped.empty())
    run.notes.push_back(fmt::format(
        "not in tlkit's metric registry, so not recomputed and left out of the bootstrap: {}",
        name_list(skipped)));
  TLKIT_CHECK_ARG(!metrics_of.empty(),
                  "--bootstrap: {} has no metric that tlkit can recompute (known: see tlkit score "
                  "--help); nothing to resample",
                  a.scores);

  // Load each model once, in the truth file's order.
  std::vector<std::string> model_names;
  for (const auto& model : truth.models)
    if (metrics_of.count(model)) model_names.push_back(model);
  std::vector<LoadedModel> loaded(model_names.size());
  std::vector<std::int64_t> labels;
  std::string labels_from, labels_model;
  std::vector<BootstrapModel> models;
  const std::map<std::string, std::string> folders =
      model_folders(a.features_dir, model_names, &run.notes);
  for (std::size_t k = 0; k < model_names.size(); ++k) {
    const std::string& name = model_names[k];
    const std::string& folder = folders.at(name);
    const std::string lp = labels_path(a.features_dir, folder, name);
    std::vector<std::int64_t> l = load_npy(lp).labels();
    if (k == 0) {
      labels = std::move(l);
      labels_from = lp;
      labels_model = name;
    } else if (lp != labels_from) {
      TLKIT_CHECK_ARG(l.size() == labels.size(),
                      "--features-dir: model '{}': {} has {} labels but {} (model '{}') has {}; "
                      "every model must describe the same samples in the same order",
                      printable(name), lp, l.size(), labels_from, printable(labels_model),
                      labels.size());
      const auto diff = std::mismatch(l.begin(), l.end(), labels.begin());
      TLKIT_CHECK_ARG(diff.first == l.end(),
                      "--features-dir: model '{}': {} differs from {} (model '{}') at row {} "
                      "({} vs {}); every model must describe the same samples in the same order",
                      printable(name), lp, labels_from, printable(labels_model),
                      diff.first - l.begin(), *diff.first, *diff.second);
    }
    const std::int64_t n = static_cast<std::int64_t>(labels.size());
    BootstrapModel bm;
    bm.name = name;
    bm.metrics = metrics_of.at(name);
    unsigned needs = 0;
    for (const auto& metric : bm.metrics) needs |= find_metric(metric).inputs;
    if (needs & kNeedsFeatures) {
      const std::string fp = (std::filesystem::path(folder) / "features.npy").string();
      TLKIT_CHECK_ARG(is_file(fp), "--features-dir: model '{}': {} does not exist (needed by {})",
                      printable(name), fp, join(bm.metrics, ", "));
      loaded[k].features = load_npy(fp);
      bm.features = loaded[k].features->features();
      TLKIT_CHECK_ARG(bm.features.rows == n,
                      "--features-dir: model '{}': {} has {} rows but {} has {}", printable(name),
                      fp, bm.features.rows, lp, n);
    }
    if (needs & kNeedsProbs) {
      const std::string gp = (std::filesystem::path(folder) / "logits.npy").string();
      TLKIT_CHECK_ARG(is_file(gp),
                      "--features-dir: model '{}': {} does not exist (leep and nce need the "
                      "model's own logits)",
                      printable(name), gp);
      const NpyArray logits = load_npy(gp);
      const FeatureView lv = logits.features();
      TLKIT_CHECK_ARG(lv.rows == n, "--features-dir: model '{}': {} has {} rows but {} has {}",
                      printable(name), gp, lv.rows, lp, n);
      loaded[k].probs = softmax_rows(lv);
      loaded[k].cs = lv.cols;
      bm.probs = FeatureView::row_major(loaded[k].probs.data(), n, lv.cols);
    }
    models.push_back(std::move(bm));
  }

  BootstrapOptions opt;
  opt.replicates = a.bootstrap;
  opt.seed = a.seed;
  opt.scheme = parse_bootstrap_scheme(a.bootstrap_scheme);
  opt.fraction = a.fraction;
  opt.score.threads = a.threads;
  ProgressBar bar(progress_wanted(false), "replicates");
  bar.restart("bootstrap");
  opt.progress = [&bar](std::int64_t done, std::int64_t total) { bar.update(done, total); };
  run.result = bootstrap_scores(
      models, LabelView{labels.data(), static_cast<std::int64_t>(labels.size())}, opt);
  bar.finish();

  std::map<std::string, double> acc;
  for (const auto& [model, v] : truth.by_model) acc[model] = v.first;
  std::vector<BootstrapMetricSummary> sums = summarise_bootstrap(run.result, acc, a.confidence);
  // The main table's order (best weighted tau first), then anything it does not list.
  auto order = [&](const std::string& name) {
    for (std::size_t i = 0; i < evals.size(); ++i)
      if (evals[i].name == name) return i;
    return evals.size();
  };
  std::stable_sort(sums.begin(), sums.end(),
                   [&](const auto& p, const auto& q) { return order(p.metric) < order(q.metric); });
  run.summaries = std::move(sums);

  for (const BootstrapSeries& s : run.result.metrics) {
    const std::string label = fmt::format("bootstrap: metric '{}'", s.metric);
    if (!s.higher_is_better)
      run.notes.push_back(fmt::format(
          "{}: lower is better, so it is ranked by its negated score (P(first), tau); scores "
          "are shown as computed",
          label));
    if (s.failed > 0)
      run.notes.push_back(fmt::format(
          "{}: {} of {} replicate scores are undefined (first: {}); replicates with an "
          "undefined score are left out of its rankings",
          label, s.failed, run.result.replicates * static_cast<std::int64_t>(s.models.size()),
          s.first_failure));
    if (s.zoo) continue;
    std::size_t differ = 0;
    double worst = 0.0;
    std::string worst_model;
    for (std::size_t i = 0; i < s.models.size(); ++i) {
      const double f = run.file_scores.at({s.metric, s.models[i]}), o = s.original[i];
      const double diff = std::abs(f - o);
      if (diff > 1e-5 * std::max({1.0, std::abs(f), std::abs(o)})) {
        ++differ;
        if (diff > worst) {
          worst = diff;
          worst_model = s.models[i];
        }
      }
    }
    if (differ)
      run.notes.push_back(fmt::format(
          "{}: the score recomputed from {} (registry defaults) differs from {} for {} of {} "
          "models (most for '{}', by {:.6g}); the bootstrap uses the recomputed scores",
          label, a.features_dir, a.scores, differ, s.models.size(), printable(worst_model), worst));
  }
  if (opt.scheme == BootstrapScheme::kSubsample)
    run.notes.push_back(fmt::format(
        "bootstrap: replicate scores are computed on {} of the {} samples; metrics that depend "
        "on the sample size (logme, knn, hscore, ...) are shifted against the original scores, "
        "so compare models within the replicates (intervals side by side, P(first), tau)",
        run.result.replicate_rows, run.result.n));
  for (const auto& sm : run.summaries) {
    if (opt.scheme == BootstrapScheme::kSubsample) break;  // shifts are expected (noted above)
    // The bootstrap's estimate of the bias, mean - original, against the spread: a resample
    // holds about 63% distinct samples, which shifts metrics that depend on how many distinct
    // samples there are (docs/evaluate.md).
    std::vector<std::string> shifted;
    for (const auto& m : sm.models)
      if (m.score.count >= 2 && std::abs(m.score.mean - m.original) > m.score.sd)
        shifted.push_back(m.model);
    if (!shifted.empty())
      run.notes.push_back(fmt::format(
          "bootstrap: metric '{}': for {} of {} models ({}) the replicate mean is further from "
          "the original score than one replicate standard deviation: the metric is shifted by "
          "resampling, so its intervals describe the resampled scores; P(first) and tau remain "
          "paired comparisons",
          sm.metric, shifted.size(), sm.models.size(), name_list(shifted, 3)));
  }
  if (run.result.redrawn > 0)
    run.notes.push_back(fmt::format(
        "bootstrap: {} iid resamples missed a class and were drawn again", run.result.redrawn));

  if (!a.replicates_out.empty()) {
    std::string out = "replicate,metric,model,score\n";
    for (const BootstrapSeries& s : run.result.metrics)
      for (std::int64_t r = 0; r < run.result.replicates; ++r)
        for (std::size_t i = 0; i < s.models.size(); ++i)
          out += fmt::format("{},{},{},{}\n", r, csv_field(s.metric), csv_field(s.models[i]),
                             csv_num(s.replicate(r, i)));
    write_file_atomic(a.replicates_out, out);
  }
  return run;
}

// Models of a summary, best original score first (by the metric's direction), ties by name.
std::vector<const BootstrapModelSummary*> ranked_models(const BootstrapMetricSummary& s) {
  std::vector<const BootstrapModelSummary*> v;
  for (const auto& m : s.models) v.push_back(&m);
  const double sign = s.higher_is_better ? 1.0 : -1.0;
  std::stable_sort(v.begin(), v.end(), [&](const auto* p, const auto* q) {
    if (p->original != q->original) return sign * p->original > sign * q->original;
    return p->model < q->model;
  });
  return v;
}

std::string interval_text(const BootstrapInterval& i) {
  return fmt::format("[{}, {}]", table_num(i.lo), table_num(i.hi));
}

std::string bootstrap_heading(const EvaluateArgs& a, const BootstrapRun& b) {
  const std::string how =
      a.bootstrap_scheme == "subsample"
          ? fmt::format(
                "subsamples of {} of the N = {} target samples, {:g}% of each class "
                "without replacement",
                b.result.replicate_rows, b.result.n, 100.0 * a.fraction)
          : fmt::format("{} resampling of the N = {} target samples", a.bootstrap_scheme,
                        b.result.n);
  return fmt::format("bootstrap: {} replicate{} ({}, seed {}), {:g}% percentile intervals",
                     b.result.replicates, b.result.replicates == 1 ? "" : "s", how, a.seed,
                     100.0 * a.confidence);
}

void print_bootstrap_table(const EvaluateArgs& a, const BootstrapRun& b) {
  fmt::print("\n{}\n", bootstrap_heading(a, b));
  for (const auto& note : b.notes) fmt::print("note: {}\n", note);
  std::size_t w = 8;
  for (const auto& s : b.summaries) w = std::max(w, printable(s.metric).size());
  fmt::print("\n{:<{}} {:>12} {:>9} {:>18} {:>12} {:>18} {:>12}\n", "metric", w, "weighted_tau",
             "mean", "interval", "kendall_mean", "interval", "P(top1=best)");
  for (const auto& s : b.summaries)
    fmt::print("{:<{}} {:>12} {:>9} {:>18} {:>12} {:>18} {:>12}\n", printable(s.metric), w,
               table_num(s.weighted_tau), table_num(s.weighted_tau_boot.mean),
               interval_text(s.weighted_tau_boot), table_num(s.kendall_tau_boot.mean),
               interval_text(s.kendall_tau_boot), table_num(s.p_top1_best));
  std::size_t mw = 5;
  for (const auto& s : b.summaries)
    for (const auto& m : s.models) mw = std::max(mw, printable(m.model).size());
  fmt::print("\n{:<{}} {:<{}} {:>12} {:>12} {:>26} {:>8}\n", "metric", w, "model", mw, "score",
             "mean", "interval", "P(first)");
  for (const auto& s : b.summaries)
    for (const auto* m : ranked_models(s))
      fmt::print("{:<{}} {:<{}} {:>12} {:>12} {:>26} {:>8}\n", printable(s.metric), w,
                 printable(m->model), mw, fmt::format("{:.6g}", m->original),
                 fmt::format("{:.6g}", m->score.mean),
                 fmt::format("[{:.6g}, {:.6g}]", m->score.lo, m->score.hi), table_num(m->p_first));
}

void print_bootstrap_csv(const BootstrapRun& b) {
  fmt::print("\nmetric,quantity,model,original,mean,lower,upper,probability,replicates\n");
  for (const auto& s : b.summaries) {
    fmt::print("{},weighted_tau,,{},{},{},{},{},{}\n", csv_field(s.metric), csv_num(s.weighted_tau),
               csv_num(s.weighted_tau_boot.mean), csv_num(s.weighted_tau_boot.lo),
               csv_num(s.weighted_tau_boot.hi), csv_num(s.p_top1_best), s.weighted_tau_boot.count);
    fmt::print("{},kendall_tau,,{},{},{},{},,{}\n", csv_field(s.metric), csv_num(s.kendall_tau),
               csv_num(s.kendall_tau_boot.mean), csv_num(s.kendall_tau_boot.lo),
               csv_num(s.kendall_tau_boot.hi), s.kendall_tau_boot.count);
    for (const auto* m : ranked_models(s))
      fmt::print("{},score,{},{},{},{},{},{},{}\n", csv_field(s.metric), csv_field(m->model),
                 csv_num(m->original), csv_num(m->score.mean), csv_num(m->score.lo),
                 csv_num(m->score.hi), csv_num(m->p_first), m->score.count);
  }
}

nlohmann::ordered_json bootstrap_json(const EvaluateArgs& a, const BootstrapRun& b) {
  auto interval = [](const BootstrapInterval& i) {
    return nlohmann::ordered_json::array({i.lo, i.hi});
  };
  nlohmann::ordered_json j;
  j["replicates"] = b.result.replicates;
  j["scheme"] = a.bootstrap_scheme;
  j["seed"] = a.seed;
  j["confidence"] = a.confidence;
  j["n_samples"] = b.result.n;
  if (a.bootstrap_scheme == "subsample") j["subsample_fraction"] = a.fraction;
  j["replicate_samples"] = b.result.replicate_rows;
  j["redrawn"] = b.result.redrawn;
  j["notes"] = b.notes;
  j["metrics"] = nlohmann::ordered_json::object();
  for (const auto& s : b.summaries) {
    nlohmann::ordered_json m;
    m["n_models"] = s.models.size();
    m["zoo"] = s.zoo;
    m["higher_is_better"] = s.higher_is_better;
    m["valid_replicates"] = s.valid_replicates;
    m["weighted_tau"] = s.weighted_tau;
    m["weighted_tau_mean"] = s.weighted_tau_boot.mean;
    m["weighted_tau_interval"] = interval(s.weighted_tau_boot);
    m["kendall_tau"] = s.kendall_tau;
    m["kendall_tau_mean"] = s.kendall_tau_boot.mean;
    m["kendall_tau_interval"] = interval(s.kendall_tau_boot);
    m["p_top1_best"] = s.p_top1_best;
    m["models"] = nlohmann::ordered_json::object();
    for (const auto* ms : ranked_models(s)) {
      nlohmann::ordered_json e;
      e["score"] = ms->original;
      if (auto it = b.file_scores.find({s.metric, ms->model}); it != b.file_scores.end())
        e["scores_csv"] = it->second;
      e["mean"] = ms->score.mean;
      e["interval"] = interval(ms->score);
      e["sd"] = ms->score.sd;
      e["p_first"] = ms->p_first;
      e["replicates"] = ms->score.count;
      m["models"][ms->model] = e;
    }
    j["metrics"][s.metric] = m;
  }
  return j;
}

}  // namespace

static CLI::App* add_evaluate_options(CLI::App& app, EvaluateArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Evaluate transferability metrics against ground truth: how well each metric's scores over\n"
      "a zoo of models rank the models' fine-tuned accuracies (weighted tau, Kendall tau-b,\n"
      "Spearman, Pearson, top-1 relative accuracy).\n"
      "Example: tlkit evaluate --scores scores.csv --truth truth.csv\n"
      "Higher scores must mean 'predicted better', except for metrics that tlkit registers\n"
      "as lower-is-better (ncti_vc), which are ranked by their negated score.\n"
      "Stability: --bootstrap K --features-dir DIR resamples the target samples K times (the\n"
      "same rows for every model), recomputes the scores from each model's features in DIR (a\n"
      "folder of tlkit extract outputs, or tlkit rank's --cache folder) and\n"
      "reports each score's interval and P(ranked first), and each metric's mean weighted tau\n"
      "with its interval.");
  cmd->add_option("--scores", a.scores,
                  "CSV with the header model,metric,score (any column order): one row per model "
                  "and metric")
      ->required();
  cmd->add_option("--truth", a.truth,
                  "CSV with the header model,accuracy: the fine-tuned accuracy of each model "
                  "(scored models without one are left out, with a warning)")
      ->required();
  cmd->add_option("--format", a.format,
                  "Output: table (for people, best weighted tau first), json (one object), csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  cmd->add_option_function<std::int64_t>(
      "--bootstrap",
      [&a](std::int64_t k) {
        a.bootstrap = k;
        a.bootstrap_given = true;
      },
      "Stability: resample the target samples K times and recompute every score that tlkit "
      "knows (needs --features-dir)");
  cmd->add_option("--features-dir", a.features_dir,
                  "With --bootstrap: one sub-folder per model, named as in the CSVs, as tlkit "
                  "extract writes it: features.npy (N x D), labels.npy (N; or one DIR/labels.npy "
                  "for all), logits.npy (for leep, nce; softmaxed); or tlkit rank's --cache "
                  "folder (each model's entry for the listing they all share, the most recent "
                  "one). Every model: the same labels");
  cmd->add_option_function<std::uint64_t>(
      "--seed",
      [&a](std::uint64_t v) {
        a.seed = v;
        a.seed_given = true;
      },
      "With --bootstrap: seed of the resampling (std::mt19937_64; default 0)");
  cmd->add_option_function<double>(
      "--confidence",
      [&a](double v) {
        a.confidence = v;
        a.confidence_given = true;
      },
      "With --bootstrap: level of the percentile intervals, in (0, 1) (default 0.95)");
  cmd->add_option_function<std::string>(
      "--bootstrap-scheme",
      [&a](const std::string& v) {
        a.bootstrap_scheme = v;
        a.scheme_given = true;
      },
      "With --bootstrap: subsample (default: --subsample-fraction of each class without "
      "replacement, no duplicates), stratified (with replacement within each class, keeping its "
      "count) or iid (with replacement over all samples; a replicate missing a class is redrawn)");
  cmd->add_option_function<double>(
      "--subsample-fraction",
      [&a](double v) {
        a.fraction = v;
        a.fraction_given = true;
      },
      "With --bootstrap-scheme subsample: share of each class drawn, in (0, 1] (default 0.5)");
  cmd->add_option("--bootstrap-replicates", a.replicates_out,
                  "With --bootstrap: also write every replicate score to this CSV "
                  "(replicate,metric,model,score)");
  cmd->add_option("--threads", a.threads,
                  "With --bootstrap: BLAS/OpenMP threads (0: as in tlkit score, the idle cores "
                  "and one for small inputs)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return cmd;
}

// The --bootstrap options fit together (checked before any file is read).
void check_bootstrap_args(const EvaluateArgs& a) {
  if (!a.bootstrap_given) {
    const char* stray = !a.features_dir.empty()     ? "--features-dir"
                        : a.seed_given              ? "--seed"
                        : a.confidence_given        ? "--confidence"
                        : a.scheme_given            ? "--bootstrap-scheme"
                        : !a.replicates_out.empty() ? "--bootstrap-replicates"
                        : a.fraction_given          ? "--subsample-fraction"
                                                    : nullptr;
    TLKIT_CHECK_ARG(stray == nullptr, "{} is only used with --bootstrap K", stray);
    return;
  }
  TLKIT_CHECK_ARG(a.bootstrap >= 1,
                  "--bootstrap: the number of replicates must be at least 1, got {}", a.bootstrap);
  TLKIT_CHECK_ARG(!a.features_dir.empty(),
                  "--bootstrap needs --features-dir DIR (one folder of features per model, to "
                  "recompute the scores on each resample)");
  std::error_code ec;
  TLKIT_CHECK_ARG(std::filesystem::is_directory(a.features_dir, ec),
                  "--features-dir: {} is not a folder", a.features_dir);
  TLKIT_CHECK_ARG(a.confidence > 0.0 && a.confidence < 1.0,
                  "--confidence: must be between 0 and 1 (exclusive), got {}", a.confidence);
  const BootstrapScheme scheme = parse_bootstrap_scheme(a.bootstrap_scheme);
  TLKIT_CHECK_ARG(!a.fraction_given || scheme == BootstrapScheme::kSubsample,
                  "--subsample-fraction is only used with --bootstrap-scheme subsample");
  TLKIT_CHECK_ARG(a.fraction > 0.0 && a.fraction <= 1.0,
                  "--subsample-fraction: must be in (0, 1], got {}", a.fraction);
}

int run_evaluate(const EvaluateArgs& a) {
  check_bootstrap_args(a);
  set_blas_threads(a.threads);
  const Truth truth = read_truth(a.truth);
  std::vector<std::string> left_out;
  std::vector<MetricScores> metrics = read_scores(a.scores, truth, a.truth, &left_out);
  std::vector<std::pair<std::string, double>> accuracies;
  for (const auto& model : truth.models)
    accuracies.emplace_back(model, truth.by_model.at(model).first);
  Evaluation ev = evaluate_scores(metrics, accuracies, EvaluationSources{a.scores, a.truth});
  metrics = std::move(ev.scores);
  const std::vector<MetricEval>& evals = ev.metrics;
  std::vector<std::string>& notes = ev.notes;
  // Everything is computed before anything is printed, so an error leaves stdout empty.
  std::optional<BootstrapRun> boot;
  if (a.bootstrap_given) boot = run_bootstrap(a, metrics, evals, truth);
  if (!left_out.empty()) {
    const std::string warning = fmt::format(
        "{}: {} model{} with scores but no accuracy in {}, left out: {}", a.scores, left_out.size(),
        left_out.size() == 1 ? "" : "s", a.truth, name_list(left_out, 20));
    std::fprintf(stderr, "tlkit: warning: %s\n", warning.c_str());
  }
  if (a.format == "json") {
    std::optional<nlohmann::ordered_json> bj;
    if (boot) bj = bootstrap_json(a, *boot);
    print_json(evals, notes, truth.models.size(), bj ? &*bj : nullptr);
  } else if (a.format == "csv") {
    print_csv(evals);
    if (boot) print_bootstrap_csv(*boot);
  } else {
    print_table(evals, notes, a, truth.models.size());
    if (boot) print_bootstrap_table(a, *boot);
  }
  return 0;
}

}  // namespace tlkit::cli

namespace tlkit::cli {

Command add_evaluate_command(CLI::App& app) {
  auto args = std::make_shared<EvaluateArgs>();
  return {add_evaluate_options(app, *args), [args] { return run_evaluate(*args); }};
}

}  // namespace tlkit::cli

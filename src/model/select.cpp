// tlkit select: stage 0 (rank_zoo and bootstrap intervals), then successive halving over
// run_finetune runs, with a state file for resuming (tlkit/model/select.h, docs/selection.md).
#include "tlkit/model/select.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "tlkit/core/bootstrap.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/device.h"
#include "tlkit/model/zoo_handoff.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr int kSchemaVersion = 1;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A model name as a folder name: [A-Za-z0-9._-] kept, anything else '_'.
std::string folder_name(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

std::string lr_folder(double lr) { return fmt::format("lr-{:g}", lr); }

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double num_of(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

// What must match for a state file to be resumed.
json fingerprint(const ZooManifest& zoo, const SelectOptions& o, int keep) {
  const FinetuneOptions& f = o.finetune;
  json j;
  std::vector<std::string> names;
  for (const auto& m : zoo.models) names.push_back(m.name);
  j["zoo_models"] = names;
  j["rank_data"] = o.rank.data;
  j["rank_split"] = o.rank.extract.split;
  j["rank_per_class"] = o.rank.extract.sample.per_class;
  j["rank_limit"] = o.rank.extract.sample.limit;
  j["models"] = o.rank.models;
  j["metric"] = o.metric;
  j["seed"] = o.rank.seed;
  j["keep"] = keep;
  j["eta"] = o.eta;
  j["lrs"] = o.lrs;
  j["first_epochs"] = o.first_epochs;
  j["bootstrap"] = o.bootstrap;
  j["confidence"] = o.confidence;
  j["data"] = f.data;
  j["split_train"] = f.split_train;
  j["split_val"] = f.split_val;
  j["split_test"] = f.split_test;
  j["val_fraction"] = f.val_fraction;
  j["test_fraction"] = f.test_fraction;
  j["per_class"] = f.per_class;
  j["mode"] = to_string(f.mode);
  j["finetune_seed"] = f.seed;
  return j;
}

// The differing top-level keys of two fingerprints.
std::string differences(const json& a, const json& b) {
  std::string keys;
  for (auto it = a.begin(); it != a.end(); ++it)
    if (!b.contains(it.key()) || b[it.key()] != it.value())
      keys += (keys.empty() ? "" : ", ") + it.key();
  return keys.empty() ? "format" : keys;
}

std::string run_key(const std::string& model, double lr, int epochs) {
  return fmt::format("{}|{:g}|{}", model, lr, epochs);
}

// The bootstrap interval of every model's stage-0 score, from the features in the rank cache.
void add_intervals(const RankResult& r, const SelectOptions& o, std::vector<SelectModel>& models,
                   std::vector<std::string>& notes) {
  for (auto& m : models) m.score_lo = m.score_hi = kNaN;
  if (o.bootstrap <= 0) return;
  const MetricInfo* info = nullptr;
  try {
    info = &find_metric(o.metric);
  } catch (const InputError&) {
    notes.push_back(fmt::format(
        "{} is a zoo-level metric: no bootstrap intervals, stage 0 keeps the top {} only", o.metric,
        o.keep));
    return;
  }
  const bool probs = (info->inputs & kNeedsProbs) != 0;
  std::vector<NpyArray> features, logits;
  std::vector<std::vector<double>> prob_rows;
  std::vector<BootstrapModel> bms;
  std::vector<std::size_t> index;  // bms[i] is models[index[i]]
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < r.models.size(); ++i) {
    const RankedModel& rm = r.models[i];
    if (!rm.error.empty() || rm.cache_path.empty() || !std::isfinite(models[i].score)) continue;
    const fs::path dir(rm.cache_path);
    auto lab = load_npy((dir / "labels.npy").string()).labels();
    if (labels.empty()) labels = lab;
    if (lab != labels) {
      notes.push_back(
          fmt::format("{}: its cached samples differ from the others': no interval", rm.name));
      continue;
    }
    BootstrapModel bm;
    bm.name = rm.name;
    bm.metrics = {o.metric};
    if (probs) {
      if (!fs::exists(dir / "logits.npy")) continue;
      logits.push_back(load_npy((dir / "logits.npy").string()));
      prob_rows.push_back(softmax_rows(logits.back().features()));
    } else {
      features.push_back(load_npy((dir / "features.npy").string()));
    }
    bms.push_back(bm);
    index.push_back(i);
  }
  // Views are taken once every array is in place (the vectors do not move any more).
  for (std::size_t k = 0, f = 0, p = 0; k < bms.size(); ++k) {
    if (probs) {
      const auto cols = logits[p].cols();
      bms[k].probs = FeatureView::row_major(prob_rows[p].data(),
                                            static_cast<std::int64_t>(labels.size()), cols);
      ++p;
    } else {
      bms[k].features = features[f++].features();
    }
  }
  if (bms.size() < 2) return;
  BootstrapOptions bo;
  bo.replicates = o.bootstrap;
  bo.seed = o.rank.seed;
  bo.score.params = o.rank.params;
  bo.score.seed = o.rank.seed;
  const BootstrapResult br =
      bootstrap_scores(bms, LabelView{labels.data(), static_cast<std::int64_t>(labels.size())}, bo);
  for (const BootstrapSeries& s : br.metrics) {
    if (s.metric != o.metric || s.zoo) continue;
    for (std::size_t k = 0; k < s.models.size(); ++k) {
      std::vector<double> v;
      for (std::int64_t rep = 0; rep < br.replicates; ++rep) v.push_back(s.replicate(rep, k));
      const BootstrapInterval in = bootstrap_interval(v, o.confidence);
      models[index[k]].score_lo = in.lo;
      models[index[k]].score_hi = in.hi;
    }
  }
}

struct State {
  json j;
  std::string path;
  void save() const { write_file_atomic(path, j.dump(1) + "\n"); }
};

SelectRun run_from_json(const json& r) {
  SelectRun run;
  run.stage = r.at("stage").get<int>();
  run.lr = r.at("lr").get<double>();
  run.epochs = r.at("epochs").get<int>();
  run.epochs_spent = r.at("epochs_spent").get<int>();
  run.val_acc = num_of(r.at("val_acc"));
  run.test_acc = num_of(r.at("test_acc"));
  run.seconds = r.at("seconds").get<double>();
  run.dir = r.at("dir").get<std::string>();
  run.continued_from = r.at("continued_from_epoch").get<int>();
  return run;
}

json run_to_json(const std::string& model, const SelectRun& run, const std::string& error) {
  return json{{"model", model},
              {"stage", run.stage},
              {"lr", run.lr},
              {"epochs", run.epochs},
              {"epochs_spent", run.epochs_spent},
              {"val_acc", num(run.val_acc)},
              {"test_acc", num(run.test_acc)},
              {"seconds", run.seconds},
              {"dir", run.dir},
              {"continued_from_epoch", run.continued_from},
              {"error", error}};
}

void copy_atomic(const fs::path& from, const fs::path& to) {
  const fs::path tmp = to.string() + ".tmp";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, to);
}

std::string md_table(const SelectResult& r) {
  std::string s = fmt::format(
      "| model | {} | interval | stage reached | lr | val acc by stage (%) | test acc (%) | "
      "seconds | |\n|---|---|---|---|---|---|---|---|---|\n",
      r.metric);
  for (const std::string& name : r.ordering) {
    const auto& m = *std::find_if(r.models.begin(), r.models.end(),
                                  [&](const SelectModel& x) { return x.name == name; });
    std::string accs;
    for (double a : m.stage_acc) accs += fmt::format("{}{:.2f}", accs.empty() ? "" : " / ", a);
    std::string status = m.name == r.chosen     ? "chosen"
                         : !m.error.empty()     ? "failed: " + m.error
                         : m.eliminated_at >= 0 ? fmt::format("out at stage {}", m.eliminated_at)
                                                : "";
    s += fmt::format(
        "| {} | {:.4g} | {} | {} | {} | {} | {} | {:.1f} | {} |\n", m.name, m.score,
        std::isfinite(m.score_lo) ? fmt::format("[{:.4g}, {:.4g}]", m.score_lo, m.score_hi) : "-",
        m.stage_reached, m.lr > 0 ? fmt::format("{:g}", m.lr) : "-", accs.empty() ? "-" : accs,
        m.test_acc >= 0 ? fmt::format("{:.2f}", m.test_acc) : "-", m.seconds, status);
  }
  return s;
}

json result_json(const SelectResult& r) {
  json j;
  j["schema_version"] = kSchemaVersion;
  j["chosen"] = r.chosen.empty() ? json(nullptr) : json(r.chosen);
  j["chosen_run"] = r.chosen_dir;
  j["model_file"] = r.model_file;
  j["val_acc"] = num(r.val_acc >= 0 ? r.val_acc : kNaN);
  j["test_acc"] = num(r.test_acc >= 0 ? r.test_acc : kNaN);
  j["metric"] = r.metric;
  j["ordering"] = r.ordering;
  json models = json::array();
  for (const auto& m : r.models) {
    json e;
    e["name"] = m.name;
    e["score"] = num(m.score);
    e["score_interval"] = {num(m.score_lo), num(m.score_hi)};
    e["metric_rank"] = m.metric_rank;
    e["kept_by_interval"] = m.kept_by_interval;
    e["stage_reached"] = m.stage_reached;
    e["eliminated_at"] = m.eliminated_at >= 0 ? json(m.eliminated_at) : json(nullptr);
    e["lr"] = m.lr > 0 ? json(m.lr) : json(nullptr);
    e["stage_val_acc"] = m.stage_acc;
    e["test_acc"] = num(m.test_acc >= 0 ? m.test_acc : kNaN);
    e["seconds"] = m.seconds;
    e["run"] = m.run_dir;
    e["error"] = m.error;
    models.push_back(e);
  }
  j["models"] = models;
  json stages = json::array();
  for (const auto& s : r.stages)
    stages.push_back({{"stage", s.stage},
                      {"epochs", s.epochs},
                      {"survivors", s.survivors},
                      {"epochs_spent", s.epochs_spent},
                      {"seconds", s.seconds}});
  j["stages"] = stages;
  j["epochs_spent"] = r.epochs_spent;
  j["stage0_seconds"] = r.stage0_seconds;
  j["seconds"] = r.seconds;
  j["budget_exhausted"] = r.budget_exhausted;
  j["notes"] = r.notes;
  return j;
}

}  // namespace

std::vector<int> select_stage_epochs(int first_epochs, double eta, int stages) {
  std::vector<int> e;
  for (int s = 1; s <= stages; ++s) {
    const double want = std::round(first_epochs * std::pow(eta, s - 1));
    const int prev = e.empty() ? 0 : e.back();
    e.push_back(s == 1 ? first_epochs : std::max(prev + 1, static_cast<int>(std::min(want, 1e9))));
  }
  return e;
}

std::size_t select_survivors(std::size_t n, double eta) {
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(n / eta)));
}

std::vector<std::string> select_ordering(const std::vector<SelectModel>& models) {
  std::vector<std::size_t> idx(models.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  auto acc_at = [](const SelectModel& m) {
    return m.stage_acc.empty() || !m.error.empty() ? -1.0 : m.stage_acc.back();
  };
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const SelectModel& x = models[a];
    const SelectModel& y = models[b];
    if (x.stage_reached != y.stage_reached) return x.stage_reached > y.stage_reached;
    const bool xe = x.eliminated_at == x.stage_reached && x.stage_reached > 0;
    const bool ye = y.eliminated_at == y.stage_reached && y.stage_reached > 0;
    if (xe != ye) return !xe;
    // Those still in the running by accuracy; those eliminated at the stage by the metric.
    if (!xe && acc_at(x) != acc_at(y)) return acc_at(x) > acc_at(y);
    return x.metric_rank < y.metric_rank;
  });
  std::vector<std::string> out;
  for (std::size_t i : idx) out.push_back(models[i].name);
  return out;
}

std::string select_scores_csv(const std::vector<std::string>& ordering) {
  std::string s = "model,metric,score\n";
  for (std::size_t i = 0; i < ordering.size(); ++i)
    s += fmt::format("{},select,{}\n", ordering[i], ordering.size() - i);
  return s;
}

SelectResult run_select(const ZooManifest& zoo, const SelectOptions& options,
                        const SelectEvents& events) {
  SelectOptions o = options;
  TLKIT_CHECK_ARG(!o.out.empty(), "select needs an output folder (--out)");
  device_from_flag(o.finetune.device, "--device");  // before any folder is made
  TLKIT_CHECK_ARG(o.eta > 1.0 && std::isfinite(o.eta), "--eta {}: must be a number > 1", o.eta);
  TLKIT_CHECK_ARG(o.keep >= 0, "--keep {}: must be >= 1", o.keep);
  TLKIT_CHECK_ARG(o.first_epochs >= 1, "--first-epochs {}: must be >= 1", o.first_epochs);
  TLKIT_CHECK_ARG(!o.lrs.empty(), "--lr-grid: needs at least one learning rate");
  for (double lr : o.lrs)
    TLKIT_CHECK_ARG(lr > 0 && std::isfinite(lr), "--lr-grid: {} is not a learning rate > 0", lr);
  TLKIT_CHECK_ARG(o.budget_epochs >= 0, "--budget-epochs {}: must be >= 0", o.budget_epochs);
  TLKIT_CHECK_ARG(o.budget_seconds >= 0, "--budget: must be >= 0 seconds");
  TLKIT_CHECK_ARG(!o.rank.cache_dir.empty(), "select needs a feature cache folder (--cache)");
  TLKIT_CHECK_ARG(o.metric.find(',') == std::string::npos,
                  "--metric {}: select ranks by one metric", o.metric);
  TLKIT_CHECK_ARG(!o.finetune.split_test.empty() || o.finetune.test_fraction > 0,
                  "select reports the chosen model's test accuracy: give --split-test, or "
                  "--test-fraction F to carve a test split");
  TLKIT_CHECK_ARG(o.finetune.mode.mode != FinetuneMode::kLinear,
                  "--mode linear: select fine-tunes by epochs (use top:K or full)");
  const int keep = o.keep == 0 ? kDefaultSelectKeep : o.keep;
  o.keep = keep;
  const auto started = Clock::now();

  fs::create_directories(o.out);
  State state{json::object(), (fs::path(o.out) / "select-state.json").string()};
  const json fp = fingerprint(zoo, o, keep);
  if (fs::exists(state.path)) {
    std::ifstream in(state.path);
    json old;
    try {
      old = json::parse(in);
    } catch (const std::exception& e) {
      throw InputError(fmt::format("{}: not a select state file ({})", state.path, e.what()));
    }
    TLKIT_CHECK_ARG(old.contains("config") && old["config"] == fp,
                    "{}: written by a selection with other settings (differs in: {}); use "
                    "another --out or remove the folder",
                    state.path, differences(fp, old.value("config", json::object())));
    state.j = old;
  } else {
    state.j["schema_version"] = kSchemaVersion;
    state.j["config"] = fp;
    state.j["runs"] = json::array();
  }

  SelectResult result;
  result.metric = o.metric;

  // ---- Stage 0: the metric ranking (or its record in the state file).
  std::vector<SelectModel>& models = result.models;
  const bool stage0_recorded = state.j.contains("stage0");
  if (!stage0_recorded) {
    const auto t0 = Clock::now();
    RankOptions ro = o.rank;
    ro.metrics = o.metric;
    RankResult r = rank_zoo(zoo, ro, events.rank);
    const auto& order = r.ranking.at(o.metric);
    for (const RankedModel& rm : r.models) {
      SelectModel m;
      m.name = rm.name;
      const auto it = rm.scores.find(o.metric);
      m.score = it == rm.scores.end() ? kNaN : it->second;
      m.metric_rank =
          static_cast<int>(std::find(order.begin(), order.end(), rm.name) - order.begin()) + 1;
      if (!rm.error.empty()) m.error = "stage 0: " + rm.error;
      models.push_back(m);
    }
    add_intervals(r, o, models, result.notes);
    for (const auto& n : r.notes) result.notes.push_back(n);
    // Top K by the metric, then every model whose interval overlaps the K-th's.
    bool higher = true;
    try {
      higher = find_metric(o.metric).higher_is_better;
    } catch (const InputError&) {
    }
    std::vector<std::size_t> by_rank(models.size());
    for (std::size_t i = 0; i < models.size(); ++i) by_rank[i] = i;
    std::sort(by_rank.begin(), by_rank.end(), [&](std::size_t a, std::size_t b) {
      return models[a].metric_rank < models[b].metric_rank;
    });
    json kept = json::array();
    const SelectModel* kth = nullptr;
    for (std::size_t k = 0; k < by_rank.size(); ++k) {
      SelectModel& m = models[by_rank[k]];
      if (!m.error.empty() || !std::isfinite(m.score)) continue;
      if (static_cast<int>(kept.size()) < keep) {
        kept.push_back(m.name);
        kth = &m;
        continue;
      }
      if (kth && std::isfinite(kth->score_lo) && std::isfinite(m.score_lo)) {
        const bool overlap = higher ? m.score_hi >= kth->score_lo : m.score_lo <= kth->score_hi;
        if (overlap) {
          kept.push_back(m.name);
          m.kept_by_interval = true;
        }
      }
    }
    json s0 = json::array();
    for (const auto& m : models)
      s0.push_back({{"name", m.name},
                    {"score", num(m.score)},
                    {"lo", num(m.score_lo)},
                    {"hi", num(m.score_hi)},
                    {"metric_rank", m.metric_rank},
                    {"kept_by_interval", m.kept_by_interval},
                    {"error", m.error}});
    state.j["stage0"] = {
        {"models", s0}, {"kept", kept}, {"notes", result.notes}, {"seconds", since(t0)}};
    state.save();
  }
  models.clear();
  result.notes.clear();
  for (const auto& e : state.j["stage0"]["models"]) {
    SelectModel m;
    m.name = e["name"].get<std::string>();
    m.score = num_of(e["score"]);
    m.score_lo = num_of(e["lo"]);
    m.score_hi = num_of(e["hi"]);
    m.metric_rank = e["metric_rank"].get<int>();
    m.kept_by_interval = e["kept_by_interval"].get<bool>();
    m.error = e["error"].get<std::string>();
    models.push_back(m);
  }
  for (const auto& n : state.j["stage0"]["notes"]) result.notes.push_back(n.get<std::string>());
  result.stage0_seconds = state.j["stage0"]["seconds"].get<double>();
  std::vector<std::string> survivors;
  for (const auto& n : state.j["stage0"]["kept"]) survivors.push_back(n.get<std::string>());
  auto model_of = [&](const std::string& name) -> SelectModel& {
    return *std::find_if(models.begin(), models.end(),
                         [&](const SelectModel& m) { return m.name == name; });
  };
  for (const auto& m : models)
    if (std::find(survivors.begin(), survivors.end(), m.name) == survivors.end())
      model_of(m.name).eliminated_at = 0;

  // Finished runs of earlier invocations.
  std::map<std::string, SelectRun> done;
  for (const auto& r : state.j["runs"]) {
    SelectRun run = run_from_json(r);
    run.skipped = true;
    done[run_key(r["model"].get<std::string>(), run.lr, run.epochs)] = run;
  }
  std::map<std::string, std::string> run_errors;
  for (const auto& r : state.j["runs"])
    if (!r["error"].get<std::string>().empty())
      run_errors[run_key(r["model"].get<std::string>(), r["lr"].get<double>(),
                         r["epochs"].get<int>())] = r["error"].get<std::string>();

  // Seconds spent by earlier invocations (stage 0 when it was recorded by one, and their runs);
  // this invocation's are since(started).
  double prior_seconds = stage0_recorded ? result.stage0_seconds : 0.0;
  std::int64_t spent_epochs = 0;
  for (const auto& [k, run] : done) {
    prior_seconds += run.seconds;
    spent_epochs += run.epochs_spent;
  }
  std::map<std::string, double> seconds_per_epoch;  // per model, from its runs
  int runs_this_invocation = 0;
  bool stop = false;
  std::size_t n_alive = 0;  // models in the current stage

  // One run: from the state file, or trained now.
  auto do_run = [&](int stage, const std::string& name, double lr, int epochs, int prev_epochs,
                    std::size_t index, std::size_t count, double stage_left) -> SelectRun* {
    const std::string key = run_key(name, lr, epochs);
    SelectModel& m = model_of(name);
    const fs::path dir = fs::path(o.out) / "runs" / folder_name(name) / lr_folder(lr);
    if (auto it = done.find(key); it != done.end()) {
      SelectRun& run = it->second;
      if (auto e = run_errors.find(key); e != run_errors.end()) m.error = e->second;
      result.runs.push_back(run);
      if (events.run_finished) events.run_finished(name, run);
      return &result.runs.back();
    }
    const int to_train = epochs - prev_epochs;
    // Budget: a run is left out (and the selection ends) when it would exceed it.
    if (o.budget_epochs > 0 && spent_epochs + to_train > o.budget_epochs) return nullptr;
    if (o.budget_seconds > 0) {
      double estimate = 0;
      if (auto it = seconds_per_epoch.find(name); it != seconds_per_epoch.end())
        estimate = it->second * to_train;
      if (prior_seconds + since(started) + estimate > o.budget_seconds) return nullptr;
    }
    if (o.stop_after_runs > 0 && runs_this_invocation >= o.stop_after_runs)
      throw Interrupted("select: stopped after " + std::to_string(o.stop_after_runs) + " runs");
    if (events.run_started)
      events.run_started(stage, epochs, n_alive, index, count, name, lr, stage_left);
    const ZooModelSettings zs = zoo_model_settings(zoo, name, ZooModelFlags{});
    FinetuneOptions f = o.finetune;
    apply_zoo_settings(zs, f);
    f.lr = lr;
    f.epochs = epochs;
    f.out = dir.string();
    f.patience = 0;
    f.grid.clear();
    f.resume = false;
    f.stop_after = 0;
    f.cancelled = o.cancelled;
    f.progress = events.finetune_progress;
    SelectRun run;
    run.stage = stage;
    run.lr = lr;
    run.epochs = epochs;
    run.epochs_spent = to_train;
    run.dir = dir.string();
    std::string error;
    const auto t = Clock::now();
    try {
      const FinetuneResult fr = run_finetune(f);
      const FinetuneRun& fr_run = fr.runs.at(0);
      run.val_acc = fr_run.best_val_acc;
      run.test_acc = fr_run.test_acc;
      run.continued_from = fr_run.resumed ? fr_run.resumed_from_epoch : 0;
      if (!o.zoo_path.empty()) record_zoo_model(zs, o.zoo_path, f.out);
    } catch (const Interrupted&) {
      throw;
    } catch (const std::exception& e) {
      error = e.what();
      m.error = fmt::format("stage {}: {}", stage, error);
    }
    run.seconds = since(t);
    if (to_train > 0) seconds_per_epoch[name] = run.seconds / to_train;
    spent_epochs += run.epochs_spent;
    state.j["runs"].push_back(run_to_json(name, run, m.error));
    state.save();
    ++runs_this_invocation;
    result.runs.push_back(run);
    if (events.run_finished) events.run_finished(name, run);
    return &result.runs.back();
  };

  // ---- Stages 1..S.
  result.runs.reserve(1024);  // do_run returns pointers into it
  int stage = 0;
  int prev_epochs = 0;
  std::vector<std::string> alive = survivors;
  while (!alive.empty() && !stop) {
    ++stage;
    const int epochs = select_stage_epochs(o.first_epochs, o.eta, stage).back();
    SelectStage st;
    st.stage = stage;
    st.epochs = epochs;
    st.survivors = alive;
    const std::size_t per_model = stage == 1 ? o.lrs.size() : 1;
    const std::size_t count = alive.size() * per_model;
    n_alive = alive.size();
    std::size_t index = 0;
    std::vector<std::pair<double, std::string>> accs;
    for (const std::string& name : alive) {
      SelectModel& m = model_of(name);
      std::vector<double> lrs = stage == 1 ? o.lrs : std::vector<double>{m.lr};
      double best = -1.0;
      const SelectRun* best_run = nullptr;
      for (double lr : lrs) {
        double left = -1;
        if (auto it = seconds_per_epoch.find(name); it != seconds_per_epoch.end())
          left = it->second * (epochs - prev_epochs) * static_cast<double>(count - index);
        const SelectRun* run = do_run(stage, name, lr, epochs, prev_epochs, index++, count, left);
        if (run == nullptr) {
          stop = true;
          result.budget_exhausted = true;
          break;
        }
        st.epochs_spent += run->epochs_spent;
        st.seconds += run->seconds;
        m.seconds += run->seconds;
        if (!m.error.empty()) break;
        if (run->val_acc > best) {
          best = run->val_acc;
          best_run = run;
        }
      }
      if (stop) break;
      m.stage_reached = stage;
      if (!m.error.empty() || best_run == nullptr) {
        m.stage_acc.push_back(-1.0);
        accs.emplace_back(-1.0, name);
        continue;
      }
      m.lr = best_run->lr;
      m.stage_acc.push_back(best_run->val_acc);
      m.test_acc = best_run->test_acc;
      m.run_dir = best_run->dir;
      accs.emplace_back(best_run->val_acc, name);
    }
    if (stop) {
      // The stage is incomplete: the models it did not reach keep their last stage.
      if (st.epochs_spent > 0) result.stages.push_back(st);
      break;
    }
    result.stages.push_back(st);
    prev_epochs = epochs;
    // Keep the best 1/eta (ties: metric order, as `alive` is in metric order).
    std::stable_sort(accs.begin(), accs.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    const std::size_t n_keep = select_survivors(alive.size(), o.eta);
    std::vector<std::string> next;
    for (std::size_t i = 0; i < accs.size(); ++i) {
      if (i < n_keep && accs[i].first >= 0)
        next.push_back(accs[i].second);
      else
        model_of(accs[i].second).eliminated_at = stage;
    }
    if (next.size() <= 1 || alive.size() <= 1) break;
    alive = next;
  }

  result.ordering = select_ordering(models);
  // The first fine-tuned model of the ordering (a failed model is never ahead of one that
  // trained at its stage; this guards the case where none trained).
  for (const std::string& name : result.ordering) {
    const SelectModel& m = model_of(name);
    if (m.stage_reached > 0 && m.error.empty() && !m.run_dir.empty()) {
      result.chosen = name;
      result.chosen_dir = m.run_dir;
      result.val_acc = m.stage_acc.back();
      result.test_acc = m.test_acc;
      break;
    }
  }
  if (result.budget_exhausted)
    result.notes.push_back(fmt::format(
        "the budget ended the selection in stage {}; the choice is the best of the models that "
        "reached the latest stage",
        stage));
  if (!result.chosen.empty()) {
    const fs::path model_pt = fs::path(result.chosen_dir) / "model.pt";
    if (fs::exists(model_pt)) {
      copy_atomic(model_pt, fs::path(o.out) / "model.pt");
      result.model_file = (fs::path(o.out) / "model.pt").string();
    }
  }
  result.epochs_spent = spent_epochs;
  result.seconds = prior_seconds + since(started);
  write_file_atomic((fs::path(o.out) / "select.json").string(), result_json(result).dump(1) + "\n");
  write_file_atomic((fs::path(o.out) / "scores.csv").string(), select_scores_csv(result.ordering));
  write_file_atomic((fs::path(o.out) / "select.md").string(), md_table(result));
  return result;
}

}  // namespace tlkit::model

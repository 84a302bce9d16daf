// tlkit select: from a metric ranking to the model to fine-tune, by successive halving over short
// fine-tuning runs of the best-ranked models. Everything but the options, the progress bar and
// the summary is in tlkit/model/select.h (docs/selection.md).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/zoo.h"
#include "tlkit/model/device.h"
#include "tlkit/model/select.h"
#include "tlkit/model/text_dataset.h"

namespace tlkit::cli {
namespace {

namespace fs = std::filesystem;

struct SelectArgs {
  model::SelectOptions o;
  std::string zoo;
  std::string split_train;
  std::string mode = "top:1";
  std::string lr_grid = "0.01,0.001";
  std::string budget;
  std::string models;
  std::int64_t per_class = 0;
  int keep = 0;
  CLI::Option* keep_flag = nullptr;
  int threads = 0;
  std::string device = "cpu";
  int batch = 32;
  std::uint64_t seed = 0;
  std::string format = "table";
  bool quiet = false;
};

CLI::App* add_select_options(CLI::App& app, SelectArgs& a) {
  model::SelectOptions& o = a.o;
  o.rank.cache_dir = "tlkit-cache";
  o.out = "select-out";
  CLI::App* cmd = app.add_subcommand(
      "select",
      "Choose the model to fine-tune: rank the zoo by a metric (stage 0, as tlkit rank), keep "
      "the best\n--keep (plus the models whose bootstrap score interval overlaps the K-th's), "
      "then fine-tune the\nsurvivors for a few epochs, keep the best 1/--eta by validation "
      "accuracy, multiply the epochs\nby --eta and repeat (successive halving) until one model "
      "is left or the budget is spent.\nExample: tlkit select --zoo models/zoo.json --data DATA "
      "--split-train train --split-test test\n         --per-class 50 --out sel\n"
      "Writes to --out: select.json (\"chosen\": the model's zoo name), scores.csv (the final "
      "ordering,\nfor tlkit evaluate --scores), select.md (every model's stage-0 score, stage "
      "reached, accuracy per\nstage, time), model.pt (the chosen model fine-tuned), runs/ (one "
      "tlkit finetune folder per model\nand learning rate). Ctrl-C keeps every finished run; "
      "rerun the same command to resume.");
  cmd->add_option("--zoo", a.zoo, "Zoo manifest (the format of tlkit rank's --zoo)")->required();
  cmd->add_option("--data", o.finetune.data,
                  "Image folder (split sub-folders) or path,label CSV; or a text file of "
                  "'<label> <text>' lines (the training split) or a folder of such files")
      ->required();
  cmd->add_option("--split-train", a.split_train,
                  "Training split: a sub-folder of --data (images; stage 0 ranks on it too) or "
                  "a file in a --data folder (text); none: --data itself");
  cmd->add_option("--split-val", o.finetune.split_val,
                  "Validation split (default: --val-fraction of the training split)");
  cmd->add_option("--split-test", o.finetune.split_test,
                  "Test split (default: none, or --test-fraction of the training split)");
  cmd->add_option("--val-fraction", o.finetune.val_fraction,
                  "Carve this fraction of each training class as the validation split")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  cmd->add_option("--test-fraction", o.finetune.test_fraction,
                  "Carve this fraction of each class as the test split")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--per-class", a.per_class,
                  "At most K samples per class of every split, for stage 0 and the runs (the "
                  "class-balanced subset; 0: all)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--metric", o.metric,
                  "The stage-0 metric (one of tlkit rank's: a registered metric, etran or ncti)")
      ->capture_default_str();
  a.keep_flag = cmd->add_option(
      "--keep", a.keep,
      fmt::format("K: stage 0 keeps the best K by the metric, plus the models whose score "
                  "interval overlaps the K-th's (default {})",
                  model::kDefaultSelectKeep));
  cmd->add_option("--eta", o.eta,
                  "Each stage keeps the best 1/eta and multiplies the epochs by eta")
      ->capture_default_str();
  cmd->add_option("--first-epochs", o.first_epochs, "Epochs of stage 1 (E_1)")
      ->capture_default_str();
  cmd->add_option("--lr-grid", a.lr_grid,
                  "Learning rates tried per model in stage 1 (comma-separated); the best by "
                  "validation accuracy is carried forward")
      ->capture_default_str();
  cmd->add_option("--budget", a.budget,
                  "Wall-clock budget, e.g. 90s, 30m, 2h: no run starts that would end after it "
                  "(by the model's measured time per epoch)");
  cmd->add_option("--budget-epochs", o.budget_epochs,
                  "Budget in epochs over all runs (deterministic): no run starts that would "
                  "exceed it")
      ->check(kNonNegativeInteger);
  cmd->add_option("--bootstrap", o.bootstrap,
                  "Replicates of the stage-0 score intervals (0: none, keep exactly K)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--models", a.models, "Consider only these models of the zoo (comma-separated)");
  cmd->add_option("--mode", a.mode, "Fine-tuning mode of the runs: top:K or full")
      ->capture_default_str();
  cmd->add_option("--batch", a.batch, "Batch size of extraction and fine-tuning")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--augment", o.finetune.augment, "Training augmentation: flip, crop or none")
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed of subsampling, splits, heads, data order, bootstrap")
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "LibTorch and BLAS threads (0: the idle cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", a.device,
                  "Where the models run (stage 0's features) and are trained: cpu, cuda "
                  "(device 0) or cuda:N; CUDA needs tlkit built against a CUDA LibTorch "
                  "(docs/gpu-models.md)")
      ->capture_default_str();
  cmd->add_option("--cache", o.rank.cache_dir, "Feature cache of stage 0 (shared with tlkit rank)")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Output folder (also the resume state)")->capture_default_str();
  cmd->add_option("--format", a.format, "Summary on stdout: table, json (select.json) or md")
      ->check(CLI::IsMember({"table", "json", "md"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "No progress and no summary (warnings still go to stderr)");
  cmd->add_option("--stop-after-runs", o.stop_after_runs,
                  "Stop (as Ctrl-C does) after this many runs in this invocation (for tests)")
      ->check(CLI::NonNegativeNumber)
      ->group("");
  return cmd;
}

// The number at the start of `s` (0 characters used when there is none).
double leading_number(const std::string& s, std::size_t* used) {
  *used = 0;
  try {
    return std::stod(s, used);
  } catch (const std::exception&) {
    *used = 0;
    return 0.0;
  }
}

// "90s", "30m", "2h", "1.5h" or a plain number of seconds -> seconds.
double parse_budget(const std::string& s) {
  std::size_t used = 0;
  const double v = leading_number(s, &used);
  const std::string unit = s.substr(used);
  const double scale = unit.empty() || unit == "s" ? 1.0
                       : unit == "m"               ? 60.0
                       : unit == "h"               ? 3600.0
                                                   : -1.0;
  TLKIT_CHECK_ARG(used > 0 && scale > 0 && std::isfinite(v) && v > 0,
                  "--budget '{}': expected a duration > 0 such as 90s, 30m or 2h", s);
  return v * scale;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

std::string pct(double v) { return v < 0 ? "-" : fmt::format("{:.2f}", v); }

void print_table(const model::SelectResult& r, bool md) {
  if (r.chosen.empty())
    fmt::print("tlkit select: {}\n", r.budget_exhausted ? "the budget allowed no fine-tuning run"
                                                        : "no model could be fine-tuned");
  else
    fmt::print(
        "tlkit select: chosen {} (val {}%, test {}%), {} epochs in {} stage(s), {:.1f} s{}\n",
        r.chosen, pct(r.val_acc), pct(r.test_acc), r.epochs_spent, r.stages.size(), r.seconds,
        r.budget_exhausted ? " (budget spent)" : "");
  if (md) fmt::print("\n");
  if (md)
    fmt::print(
        "| model | {} | stage | lr | val acc by stage (%) | test (%) | seconds |\n"
        "|---|---|---|---|---|---|---|\n",
        r.metric);
  else
    fmt::print("  {:<32}{:>12}  {:>5}  {:>7}  {:<24}{:>8}{:>9}\n", "model", r.metric, "stage", "lr",
               "val acc by stage (%)", "test (%)", "seconds");
  for (const std::string& name : r.ordering) {
    const auto& m = *std::find_if(r.models.begin(), r.models.end(),
                                  [&](const model::SelectModel& x) { return x.name == name; });
    std::string accs;
    for (double a : m.stage_acc) accs += (accs.empty() ? "" : " / ") + pct(a);
    if (accs.empty()) accs = "-";
    const std::string lr = m.lr > 0 ? fmt::format("{:g}", m.lr) : "-";
    const std::string flag = !m.error.empty() ? " (failed)" : m.kept_by_interval ? " *" : "";
    if (md)
      fmt::print("| {}{} | {:.4g} | {} | {} | {} | {} | {:.1f} |\n", m.name, flag, m.score,
                 m.stage_reached, lr, accs, pct(m.test_acc), m.seconds);
    else
      fmt::print("  {:<32}{:>12.4g}  {:>5}  {:>7}  {:<24}{:>8}{:>9.1f}\n", m.name + flag, m.score,
                 m.stage_reached, lr, accs, pct(m.test_acc), m.seconds);
  }
  for (const auto& m : r.models)
    if (m.kept_by_interval) {
      fmt::print("  * kept past --keep because its score interval overlaps the K-th's\n");
      break;
    }
}

int run_select_command(SelectArgs& a) {
  model::SelectOptions& o = a.o;
  o.rank.extract.model_options.device = model::device_from_flag(a.device, "--device");
  o.finetune.device = a.device;
  if (a.keep_flag->count() > 0) TLKIT_CHECK_ARG(a.keep >= 1, "--keep {}: must be >= 1", a.keep);
  o.keep = a.keep_flag->count() > 0 ? a.keep : 0;
  TLKIT_CHECK_ARG(o.eta > 1.0, "--eta {}: must be > 1", o.eta);
  // The metric: a registered one or a zoo-level one (rank_zoo checks it again).
  {
    bool known = false;
    std::string names;
    for (const auto& m : metric_registry()) {
      known = known || m.name == o.metric;
      names += (names.empty() ? "" : ", ") + std::string(m.name);
    }
    for (const auto& z : zoo_metrics()) {
      known = known || z.name == o.metric;
      names += ", " + z.name;
    }
    TLKIT_CHECK_ARG(known, "--metric {}: unknown metric (select ranks by one of: {})", o.metric,
                    names);
  }
  if (!a.budget.empty()) o.budget_seconds = parse_budget(a.budget);
  o.lrs.clear();
  for (const std::string& s : split_commas(a.lr_grid)) {
    std::size_t used = 0;
    const double v = leading_number(s, &used);
    TLKIT_CHECK_ARG(used == s.size() && v > 0 && std::isfinite(v),
                    "--lr-grid '{}': '{}' is not a learning rate > 0", a.lr_grid, s);
    o.lrs.push_back(v);
  }
  const model::ZooManifest zoo = model::read_zoo_manifest(a.zoo);
  o.zoo_path = a.zoo;
  o.finetune.mode = model::parse_mode(a.mode);
  o.finetune.batch = a.batch;
  o.finetune.seed = a.seed;
  o.finetune.threads = a.threads;
  o.finetune.per_class = a.per_class;
  // Stage 0 ranks the training split: a sub-folder of an image folder, or the text file.
  const bool text = model::detect_data_kind(o.finetune.data) == model::DataKind::kText;
  o.rank.data = o.finetune.data;
  if (text && fs::is_directory(o.finetune.data)) {
    o.rank.data = (fs::path(o.finetune.data) / a.split_train).string();
    o.finetune.split_train = a.split_train;
  } else if (!text && fs::is_directory(o.finetune.data)) {
    o.rank.extract.split = a.split_train;
    o.finetune.split_train = a.split_train;
  }
  o.rank.extract.batch = a.batch;
  o.rank.extract.threads = a.threads;
  o.rank.extract.sample.per_class = a.per_class;
  o.rank.extract.sample.seed = a.seed;
  o.rank.seed = a.seed;
  if (!a.models.empty()) o.rank.models = split_commas(a.models);

  catch_interrupts();
  o.cancelled = interrupted;
  o.rank.extract.cancelled = interrupted;
  ProgressBar bar(progress_wanted(a.quiet), "item");
  model::SelectEvents ev;
  ev.rank.model_started = [&](std::size_t i, std::size_t count, const model::ZooModel& z) {
    bar.restart(fmt::format("stage 0 [{}/{}] {}", i + 1, count, z.name));
  };
  ev.rank.progress = [&](std::int64_t done, std::int64_t total) { bar.update(done, total); };
  std::string label;
  ev.run_started = [&](int stage, int epochs, std::size_t survivors, std::size_t index,
                       std::size_t count, const std::string& name, double lr, double left) {
    label = fmt::format("stage {} ({} survivors, {} epochs) run {}/{} {} lr {:g}{}", stage,
                        survivors, epochs, index + 1, count, name, lr,
                        left >= 0 ? fmt::format(" stage ETA {:.0f}s", left) : "");
    bar.restart(label);
  };
  ev.finetune_progress = [&](const std::string& phase, std::int64_t done, std::int64_t total,
                             const std::string& suffix) {
    bar.set_label(label + " " + phase);
    bar.update(done, total, suffix);
  };
  ev.run_finished = [&](const std::string& name, const model::SelectRun& run) {
    bar.finish();
    if (a.quiet) return;
    fmt::print(stderr, "tlkit: stage {}: {} lr {:g}: val {}% after {} epochs ({}{:.1f} s)\n",
               run.stage, name, run.lr, pct(run.val_acc), run.epochs,
               run.skipped ? "done earlier, " : "", run.seconds);
  };
  model::SelectResult r;
  try {
    r = model::run_select(zoo, o, ev);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  for (const auto& m : r.models)
    if (!m.error.empty()) fmt::print(stderr, "tlkit: warning: {}: {}\n", m.name, m.error);
  for (const std::string& n : r.notes) fmt::print(stderr, "tlkit: note: {}\n", n);
  if (a.quiet) return 0;
  if (a.format == "json") {
    std::FILE* f = std::fopen((fs::path(o.out) / "select.json").c_str(), "rb");
    TLKIT_CHECK_ARG(f != nullptr, "{}/select.json: cannot be read", o.out);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) std::fwrite(buf, 1, n, stdout);
    std::fclose(f);
    return 0;
  }
  print_table(r, a.format == "md");
  return 0;
}

}  // namespace

Command add_select_command(CLI::App& app) {
  auto args = std::make_shared<SelectArgs>();
  return {add_select_options(app, *args), [args] { return run_select_command(*args); }};
}

}  // namespace tlkit::cli

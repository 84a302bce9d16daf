// tlkit rank: which model of a zoo to fine-tune on a labelled dataset. Options, progress and the
// output formats; extraction, the feature cache and scoring are in tlkit/model/rank.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "extraction_options.h"
#include "interrupt.h"
#include "metric_options.h"
#include "progress.h"
#include "statistics_backend.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/report.h"
#include "tlkit/model/rank.h"
#include "tlkit/model/text_dataset.h"
#include "world.h"

namespace tlkit::cli {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

std::vector<std::string> split_list(const std::string& csv) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= csv.size()) {
    const std::size_t comma = std::min(csv.find(',', start), csv.size());
    std::string item = csv.substr(start, comma - start);
    TLKIT_CHECK_ARG(!item.empty(), "--models {}: empty name", csv);
    out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

std::string score_text(double v) { return std::isnan(v) ? "-" : fmt::format("{:.4f}", v); }

ordered_json finite_or_null(double v) {
  return std::isfinite(v) ? ordered_json(v) : ordered_json();
}

// The position of each model in the first metric's ranking (the table's order).
std::vector<const model::RankedModel*> in_rank_order(const model::RankResult& r) {
  std::vector<const model::RankedModel*> out;
  for (const std::string& name : r.ranking.at(r.metrics.front()))
    for (const auto& m : r.models)
      if (m.name == name) out.push_back(&m);
  return out;
}

// The long CSV tlkit evaluate reads: model,metric,score; a model without a score for a metric
// (no logits for leep, a failed model) has no row for it.
std::string scores_csv(const model::RankResult& r) {
  std::string s = "model,metric,score\n";
  for (const auto& m : r.models)
    for (const std::string& metric : r.metrics) {
      const double v = m.scores.at(metric);
      if (std::isfinite(v)) s += fmt::format("{},{},{:.17g}\n", csv_field(m.name), metric, v);
    }
  return s;
}

// The default table's width limit (columns of a terminal); --wide lifts it.
constexpr std::size_t kTableColumns = 120;

// "a" or "a, b and 3 more".
std::string some_names(const std::vector<std::string>& names, std::size_t shown = 6) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > shown) s += fmt::format(" and {} more", names.size() - shown);
  return s;
}

void print_table(const model::RankResult& r, bool markdown, bool wide) {
  const std::string& by = r.metrics.front();
  std::vector<std::string> header = {"rank", "model", "n", "d", "extract s"};
  for (const std::string& m : r.metrics) header.push_back(m);
  std::vector<std::vector<std::string>> rows;
  std::size_t rank = 0;
  for (const model::RankedModel* m : in_rank_order(r)) {
    std::vector<std::string> row = {
        std::isnan(m->scores.at(by)) ? "-" : std::to_string(++rank), m->name, std::to_string(m->n),
        std::to_string(m->d),
        fmt::format("{:.1f}{}", m->extract_seconds, m->cached ? " (cached)" : "")};
    for (const std::string& metric : r.metrics) row.push_back(score_text(m->scores.at(metric)));
    rows.push_back(std::move(row));
  }
  if (markdown) {
    fmt::print("| {} |\n|{}|\n", fmt::join(header, " | "),
               fmt::join(std::vector<std::string>(header.size(), "---"), "|"));
    for (const auto& row : rows) fmt::print("| {} |\n", fmt::join(row, " | "));
    return;
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  // Within kTableColumns unless --wide: metric columns are left out from the right (the first,
  // which orders the table, stays).
  std::size_t shown = header.size();
  const std::size_t fixed = 5;  // rank, model, n, d, extract s
  auto line_width = [&](std::size_t cols) {
    std::size_t w = 0;
    for (std::size_t c = 0; c < cols; ++c) w += width[c] + 2;
    return w - 2;
  };
  while (!wide && shown > fixed + 1 && line_width(shown) > kTableColumns) --shown;
  std::vector<std::string> hidden(header.begin() + static_cast<std::ptrdiff_t>(shown),
                                  header.end());
  const std::string labels =
      r.task == model::Task::kClassification
          ? fmt::format("{} classes", r.num_classes)
          : fmt::format("{} {} target{}", r.target_names.size(), model::to_string(r.task),
                        r.target_names.size() == 1 ? "" : "s");
  fmt::print("tlkit rank: {} {} models on {} ({} samples{}, {}), ranked by {}\n", r.models.size(),
             r.kind, r.data, r.selected,
             r.selected < r.listed ? fmt::format(" of {}", r.listed) : "", labels, by);
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < shown; ++c)
      line += c == 1 ? fmt::format("{:<{}}  ", row[c], width[c])
                     : fmt::format("{:>{}}  ", row[c], width[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
  if (!hidden.empty()) {
    // Wrapped at spaces to the same width.
    const std::string text = fmt::format(
        "({} more metric column{} not shown: {}; --wide shows every column, --format json or "
        "csv every score)",
        hidden.size(), hidden.size() == 1 ? "" : "s", some_names(hidden, hidden.size()));
    std::string line;
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t end = std::min(text.find(' ', at), text.size());
      const std::string word = text.substr(at, end - at);
      if (!line.empty() && line.size() + 1 + word.size() > kTableColumns) {
        fmt::print("{}\n", line);
        line.clear();
      }
      line += (line.empty() ? "" : " ") + word;
      at = end + 1;
    }
    fmt::print("{}\n", line);
  }
}

std::string rank_json(const model::RankResult& r) {
  ordered_json j;
  j["schema_version"] = 1;
  j["tool"] = "tlkit rank";
  j["dataset"] = {{"data", r.data},
                  {"split", r.split},
                  {"kind", r.kind},
                  {"format", r.format},
                  {"classes", r.classes},
                  {"listed", r.listed},
                  {"selected", r.selected},
                  {"listing_sha256", r.listing_sha256},
                  {"task", model::to_string(r.task)},
                  {"targets", r.target_names}};
  j["metrics"] = r.metrics;
  ordered_json models = ordered_json::array();
  for (const auto& m : r.models) {
    ordered_json e;
    e["name"] = m.name;
    e["kind"] = m.kind;
    e["file"] = m.file;
    e["sha256"] = m.sha256;
    e["n"] = m.n;
    e["d"] = m.d;
    e["logits_dim"] = m.logits_dim > 0 ? ordered_json(m.logits_dim) : ordered_json();
    e["cached"] = m.cached;
    e["extract_seconds"] = m.extract_seconds;
    e["score_seconds"] = m.score_seconds;
    ordered_json seconds = ordered_json::object();
    for (const auto& [k, v] : m.seconds) seconds[k] = v;
    e["seconds"] = seconds;
    ordered_json scores = ordered_json::object();
    for (const std::string& metric : r.metrics)
      scores[metric] = finite_or_null(m.scores.at(metric));
    e["scores"] = scores;
    if (!m.error.empty()) e["error"] = m.error;
    e["notes"] = m.notes;
    e["manifest"] = ordered_json::parse(m.extra_json);
    models.push_back(e);
  }
  j["models"] = models;
  ordered_json ranking = ordered_json::object();
  for (const std::string& metric : r.metrics) ranking[metric] = r.ranking.at(metric);
  j["ranking"] = ranking;
  j["notes"] = r.notes;
  j["seconds"] = r.seconds;
  if (r.decode_cache.max_bytes > 0)
    j["decode_cache"] = {{"max_bytes", r.decode_cache.max_bytes},
                         {"files_decoded", r.decode_cache.decoded},
                         {"answered_from_memory", r.decode_cache.hits},
                         {"images_kept", r.decode_cache.kept},
                         {"bytes_kept", r.decode_cache.bytes},
                         {"decoded_not_kept", r.decode_cache.not_kept}};
  return j.dump(1, ' ', false, ordered_json::error_handler_t::replace);
}

static CLI::App* add_rank_options(CLI::App& app, RankArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "rank",
      "Rank a zoo of pretrained models for a labelled dataset, before fine-tuning any of them.\n"
      "Example: tlkit rank --zoo models/zoo.json --data DATA --split train --per-class 50\n"
      "Extracts every model's features (once: later runs read them from --cache), scores them\n"
      "with transferability metrics and prints the models best first. Image models rank on "
      "image data\n(a folder of class sub-folders or a path,label CSV), text models on text data "
      "('<label> <text>'\nlines or a text,label CSV). Ctrl-C keeps the finished models; rerun "
      "to resume.\nUnder mpirun -n P (or srun --mpi=pmix) the models are spread over the P "
      "processes, largest\nfirst, each with --threads threads (with --shard-data, or fewer models "
      "than processes,\neach model's samples are split over them instead); rank 0 prints and "
      "writes (docs/scaling.md).");
  cmd->add_option("--zoo", a.zoo,
                  "Zoo manifest (the format of the kit's models/zoo.json: {\"models\": [{name, "
                  "file, kind, input_size, feature_dim, logits_dim}]}; docs/rank.md)");
  cmd->add_option("--model", a.model, "One TorchScript model instead of --zoo");
  cmd->add_option("--input-size", a.input_size, "With --model: its input side S (image models)")
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--data", a.data,
                  "Image folder (class sub-folders) or path,label CSV; or a text file of '<label> "
                  "<text>' lines or a text,label CSV")
      ->required();
  add_metric_list_option(
      cmd, a.metrics, a.metric_flag,
      metric_list_help(fmt::format("Metrics, comma-separated, or 'all' (every metric below and "
                                   "the zoo-level etran and ncti; default: {}). Zoo-level: etran, "
                                   "ncti. Known:",
                                   model::kDefaultRankMetrics),
                       "needs the model's logits"));
  add_metric_param_options(cmd, a.params);
  cmd->add_option("--models", a.models, "Rank only these models of the zoo (comma-separated)");
  cmd->add_option("--cache", a.cache,
                  "Feature cache folder (reused when model, data and "
                  "preprocessing are unchanged)")
      ->capture_default_str();
  cmd->add_flag("--no-cache", a.no_cache, "Extract every model afresh and keep nothing");
  cmd->add_flag("--shard-data", a.shard_data,
                "Under mpirun -n P: the models one after another, each with its samples split "
                "over the P processes (whole --batch batches each) and its metrics computed from "
                "the statistics they reduce, instead of whole models spread over the processes. "
                "Taken by itself when there are fewer models than processes, the labels are "
                "classes and there are more samples than every model's feature_dim "
                "(docs/scaling.md)");
  cmd->add_option("--decode-cache", a.decode_cache_mb,
                  "MiB of decoded images kept in memory for the zoo's next models, so that the "
                  "zoo decodes each image once (each model still resizes to its own size: the "
                  "features are the same); images beyond it are decoded again per model. 0: "
                  "none")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--format", a.format,
                  "Output: table (for people), json (one object), csv (model,metric,score), md "
                  "(a Markdown table)")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
  cmd->add_flag("--wide", a.wide,
                fmt::format("The table with every metric column (by default it keeps within {} "
                            "columns, leaving out metric columns from the right)",
                            kTableColumns));
  cmd->add_option("--out", a.out,
                  "Also write model,metric,score rows to this CSV (for tlkit "
                  "evaluate --scores)");
  add_task_option(cmd, a.task);
  cmd->add_option("--report", a.report,
                  "Also write the ranking as one self-contained HTML page (scores as bars, "
                  "agreement between metrics, provenance; tlkit report adds evaluation, probe "
                  "and fine-tuning results)");
  add_extraction_options(cmd, a.run);
  auto* zoo = cmd->get_option("--zoo");
  auto* one = cmd->get_option("--model");
  zoo->excludes(one);
  cmd->get_option("--input-size")->needs(one);
  cmd->get_option("--no-cache")->excludes(cmd->get_option("--cache"));
  return cmd;
}

}  // namespace

int run_rank(const RankArgs& a) {
  TLKIT_CHECK_ARG(!a.zoo.empty() || !a.model.empty(),
                  "give --zoo zoo.json (a manifest of models) or --model M.pt (one model)");
  model::ZooManifest zoo;
  if (!a.zoo.empty()) {
    zoo = model::read_zoo_manifest(a.zoo);
  } else {
    model::ZooModel z;
    z.name = fs::path(a.model).stem().string();
    z.file = a.model;
    z.kind = model::to_string(model::detect_data_kind(a.data));
    z.input_size = a.input_size;
    // Image models: logits when forward returns them; the kit's text models' second output is
    // not class scores.
    z.logits_dim = z.kind == "image" ? -1 : 0;
    z.extra_json = "{}";
    TLKIT_CHECK_ARG(z.kind == "text" || a.input_size > 0,
                    "--model {} on image data needs --input-size S (its [N, 3, S, S] input)",
                    a.model);
    zoo.path = a.model;
    zoo.models.push_back(z);
  }
  model::RankOptions o;
  o.data = a.data;
  o.extract = to_extract_options(a.run);
  o.extract.task = model::parse_task(a.task);
  if (!a.metrics.empty()) o.metrics = a.metrics;
  o.params = to_metric_params(a.params);
  o.seed = a.run.seed;
  o.cache_dir = a.no_cache ? "" : a.cache;
  o.shard_data = a.shard_data;
  o.decode_cache_bytes = a.decode_cache_mb << 20;
  const model::Device device = o.extract.model_options.device;
  const std::unique_ptr<StatisticsBackend> backend =
      optional_statistics_backend(device.is_cuda(), device.index);
  o.statistics_backend = backend.get();
  if (!a.models.empty()) o.models = split_list(a.models);
  if (!a.out.empty())
    TLKIT_CHECK_ARG(!fs::is_directory(a.out), "--out {}: is a folder (expected a CSV file name)",
                    a.out);
  if (!a.report.empty())
    TLKIT_CHECK_ARG(!fs::is_directory(a.report),
                    "--report {}: is a folder (expected an HTML file name)", a.report);
  if (!o.cache_dir.empty())
    TLKIT_CHECK_ARG(!fs::exists(o.cache_dir) || fs::is_directory(o.cache_dir),
                    "--cache {}: exists and is not a folder", o.cache_dir);

  // Under mpirun/srun the models are spread over the processes; rank 0 alone reports and writes.
  o.comm = &world();
  const bool root = world().is_root();
  catch_interrupts();
  o.extract.cancelled = interrupted;
  // One bar over the whole zoo (model i's sample k is item i * N + k of count * N): it never goes
  // back when the next model starts.
  ProgressBar bar(progress_wanted(a.run.quiet) && world().size() == 1, "item");
  std::size_t model_index = 0, model_count = 1;
  model::RankEvents events;
  events.model_started = [&](std::size_t i, std::size_t count, const model::ZooModel& z) {
    model_index = i;
    model_count = count;
    bar.set_label(fmt::format("[{}/{}] {}", i + 1, count, z.name));
  };
  events.progress = [&](std::int64_t done, std::int64_t total) {
    const auto i = static_cast<std::int64_t>(model_index);
    bar.update(i * total + done, static_cast<std::int64_t>(model_count) * total);
  };
  // The models' notes, grouped: one warning per distinct note, naming the models it is about.
  std::vector<std::pair<std::string, std::vector<std::string>>> notes;
  // A failed model is reported once the ranking stands: when every model fails, the error line
  // (the first failure) is all that is printed.
  std::vector<std::string> failures;
  events.model_finished = [&](const model::RankedModel& m) {
    bar.finish();
    if (!m.error.empty()) {
      failures.push_back(fmt::format("{} failed: {}", m.name, m.error));
      return;
    }
    if (!a.run.quiet)
      fmt::print(stderr, "tlkit: {}: {} x {} features {} ({:.1f} s)\n", m.name, m.n, m.d,
                 m.cached ? "from the cache" : "extracted", m.extract_seconds);
    for (const std::string& note : m.notes) {
      auto it =
          std::find_if(notes.begin(), notes.end(), [&](const auto& n) { return n.first == note; });
      if (it == notes.end()) it = notes.insert(notes.end(), {note, {}});
      it->second.push_back(m.name);
    }
  };
  model::RankResult r;
  try {
    r = naming_metric_flag(a.metric_flag, [&] { return model::rank_zoo(zoo, o, events); });
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  if (!root) return 0;
  if (r.shard_data && !a.shard_data)
    fmt::print(stderr,
               "tlkit: note: {} model{} for {} processes: each model's samples are split over "
               "the processes (--shard-data)\n",
               r.models.size(), r.models.size() == 1 ? "" : "s", world().size());
  for (const std::string& f : failures) fmt::print(stderr, "tlkit: warning: {}\n", f);
  for (const auto& [note, models] : notes)
    fmt::print(stderr, "tlkit: warning: {} (model{} {})\n", note, models.size() == 1 ? "" : "s",
               some_names(models, 10));
  for (const std::string& note : r.notes) fmt::print(stderr, "tlkit: note: {}\n", note);
  if (!a.out.empty()) write_file_atomic(a.out, scores_csv(r));
  if (!a.report.empty()) {
    ReportInputs page;
    page.rank = "tlkit rank output";
    page.rank_flag = "tlkit rank";
    page.rank_text = rank_json(r);
    page.command_line =
        fmt::format("tlkit rank {} {} --data {}{} --report {}", a.zoo.empty() ? "--model" : "--zoo",
                    a.zoo.empty() ? a.model : a.zoo, a.data,
                    a.metrics.empty() ? "" : " " + a.metric_flag + " " + a.metrics, a.report);
    write_report(page, a.report);
  }
  if (a.format == "json")
    fmt::print("{}\n", rank_json(r));
  else if (a.format == "csv")
    fmt::print("{}", scores_csv(r));
  else
    print_table(r, a.format == "md", a.wide);
  return 0;
}

Command add_rank_command(CLI::App& app) {
  auto args = std::make_shared<RankArgs>();
  return {add_rank_options(app, *args), [args] { return run_rank(*args); }};
}

}  // namespace tlkit::cli

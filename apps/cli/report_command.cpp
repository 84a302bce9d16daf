// tlkit report: one self-contained HTML page of a study (tlkit/core/report.h). Options only.
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "commands.h"
#include "tlkit/core/report.h"

namespace tlkit::cli {
namespace {

// `s` as one shell word (for the command line recorded on the page).
std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=/.,:@%") == std::string::npos)
    return s;
  std::string o = "'";
  for (const char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

struct ReportArgs {
  ReportInputs in;
  std::string out;
};

}  // namespace

std::string report_help() {
  return "One self-contained HTML page of a model-selection study: the ranking (scores as bars, "
         "ties and\nnotes flagged, timings), agreement with fine-tuning (score vs accuracy per "
         "metric, weighted tau,\nKendall, Pearson, top-1), stability (bootstrap intervals, "
         "P(ranked first)), agreement between\nmetrics (a Kendall tau heat map), the stages of "
         "tlkit select, probe curves, learning curves\nand provenance. Every chart is inline SVG "
         "with its data as a table beside it; no network\nrequest, readable with scripts off, "
         "printable.\n"
         "Example: tlkit rank --zoo zoo.json --data DATA --format json --out scores.csv > "
         "rank.json\n"
         "         tlkit evaluate --scores scores.csv --truth truth.csv --format json > eval.json\n"
         "         tlkit report --rank rank.json --evaluate eval.json --truth truth.csv --out "
         "report.html\n"
         "(tlkit rank --report report.html writes the ranking part straight away; docs/report.md)";
}

Command add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand("report", report_help());
  cmd->add_option("--rank", a->in.rank, "The JSON of tlkit rank --format json (required)")
      ->required();
  cmd->add_option("--evaluate", a->in.evaluate,
                  "The JSON of tlkit evaluate --format json (with or without --bootstrap): "
                  "agreement with fine-tuning, and stability when bootstrapped");
  cmd->add_option("--truth", a->in.truth,
                  "With --evaluate: the model,accuracy CSV given to evaluate --truth (a scatter "
                  "of score against accuracy per metric)");
  cmd->add_option("--select", a->in.select,
                  "A tlkit select --out folder (its select.json): the successive-halving stages, "
                  "who survived each, validation accuracy by stage and the chosen model");
  cmd->add_option("--probe", a->in.probe,
                  "A tlkit probe --out folder (its results.json): layer and re-initialisation "
                  "curves");
  cmd->add_option("--finetune", a->in.finetune,
                  "tlkit finetune --out folders (their metrics.json): learning curves; repeat "
                  "or list several")
      ->expected(1, -1);
  cmd->add_option("--out", a->out, "The HTML file to write (atomically)")->required();
  cmd->get_option("--truth")->needs(cmd->get_option("--evaluate"));
  return {cmd, [a] {
            std::string line = "tlkit report --rank " + shell_word(a->in.rank);
            if (!a->in.evaluate.empty()) line += " --evaluate " + shell_word(a->in.evaluate);
            if (!a->in.truth.empty()) line += " --truth " + shell_word(a->in.truth);
            if (!a->in.select.empty()) line += " --select " + shell_word(a->in.select);
            if (!a->in.probe.empty()) line += " --probe " + shell_word(a->in.probe);
            for (const auto& f : a->in.finetune) line += " --finetune " + shell_word(f);
            line += " --out " + shell_word(a->out);
            a->in.command_line = line;
            write_report(a->in, a->out);
            fmt::print("tlkit: wrote {} ({} KiB)\n", a->out,
                       (std::filesystem::file_size(a->out) + 1023) / 1024);
            return 0;
          }};
}

}  // namespace tlkit::cli

// tlkit report: one self-contained HTML page showing a model-selection study, built from the
// files other tlkit commands write. Torch-free.
//
// Inputs (only the ranking is required):
// * rank:     the JSON of `tlkit rank --format json` (schema_version 1, tool "tlkit rank").
// * evaluate: the JSON of `tlkit evaluate --format json`, with or without --bootstrap
//             (schema_version 1): agreement with fine-tuning, and stability when bootstrapped.
// * truth:    the model,accuracy CSV given to evaluate --truth: the score-vs-accuracy scatters.
// * select:   a `tlkit select --out` folder (its select.json): the successive-halving stages,
//             who survived each, validation accuracy by stage, the chosen model.
// * probe:    a `tlkit probe --out` folder (its results.json): layer and re-initialisation curves.
// * finetune: `tlkit finetune --out` folders (their metrics.json): learning curves.
//
// The page holds, for the inputs given: the ranking (models best first, each score as a bar,
// ties and notes flagged, extraction and scoring times), agreement with fine-tuning (per metric
// a scatter of score vs accuracy, weighted tau, Kendall, Pearson, top-1), stability (score
// intervals, P(ranked first), tau intervals), agreement between metrics (Kendall tau over the
// zoo, a heat map), the selection's stages, probe curves, learning curves, and provenance. Every
// chart is an inline SVG with its data as a table beside it. No network request, no external font,
// no script needed to read it (a small inline script sorts tables); printable.
//
// Errors: a missing or unreadable file or folder, a file that is not what its flag expects, a
// schema version this tlkit does not read, a field missing or of the wrong type, an evaluate
// or select file naming models the ranking does not have: tlkit::InputError naming the flag, the
// file, the field and the value, on one line.
#pragma once

#include <string>
#include <vector>

namespace tlkit {

struct ReportInputs {
  std::string rank;       ///< path of rank.json (named in messages)
  std::string rank_text;  ///< its text, when already in memory (tlkit rank --report); else read
  std::string rank_flag = "--rank";   ///< how messages name the ranking
  std::string evaluate;               ///< optional evaluate JSON
  std::string truth;                  ///< optional model,accuracy CSV
  std::string select;                 ///< optional select --out folder
  std::string probe;                  ///< optional probe --out folder
  std::vector<std::string> finetune;  ///< finetune --out folders
  std::string command_line;           ///< the command that made the page (provenance)
};

/// The page as one HTML document. Throws InputError on bad inputs (see above).
std::string build_report_html(const ReportInputs& in);

/// Builds the page and writes it to `out` atomically (nothing is written when an input is bad).
void write_report(const ReportInputs& in, const std::string& out);

}  // namespace tlkit

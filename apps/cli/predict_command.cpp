// tlkit predict: the top-K classes of a classifier (tlkit finetune's model.pt, or any model in the
// tlkit contract with logits) for each sample of a dataset. Everything but the options, the
// progress bar and the summary is in tlkit/model/predict.h.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "extraction_options.h"
#include "interrupt.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/predict.h"

namespace tlkit::cli {
namespace {

struct PredictArgs {
  std::string model;
  std::string data;
  int input_size = 0;
  int top_k = 0;
  std::string out;
  std::string features_output = "0";
  std::string logits_output = "auto";
  ExtractionArgs run;
};

CLI::App* add_predict_options(CLI::App& app, PredictArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Predict the classes of a dataset's samples with a classifier: the model.pt of tlkit "
      "finetune, or any\nTorchScript model whose forward returns (features, logits).\n"
      "Example: tlkit predict --model runs/r20/model.pt --data photos --top-k 3 --out "
      "preds.csv\n"
      "The data is read as tlkit extract reads it (a folder of class sub-folders, a CSV of "
      "path,label rows,\nor a text file), with the same --input-size preprocessing (default: the "
      "input size model.pt stores).\nOutput (CSV, to --out or standard output): one row per "
      "sample with the columns\n  file     the sample as tlkit extract's files.txt names it\n"
      "  label    its label in the data (class folder name or CSV label)\n"
      "  class_i  the i-th most probable class (the fine-tuning data's class names, else the "
      "logit's index)\n  prob_i   its softmax probability\n"
      "When the data's labels are classes the model knows, the top-1 and top-K accuracy are "
      "printed.");
  cmd->add_option("--model", a.model,
                  "TorchScript model: forward(x [N,3,S,S] RGB in [0,1]) or forward(List[str]) -> "
                  "(features, logits)")
      ->required();
  cmd->add_option("--data", a.data,
                  "Folder of class sub-folders, a CSV of path,label (images) or text,label "
                  "rows, or a file of '<label> <text>' lines")
      ->required();
  cmd->add_option("--input-size", a.input_size,
                  "S: the shorter side is resized to S, then the centre S x S is cropped "
                  "(default: the model's input_size attribute, which tlkit finetune stores)")
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--top-k", a.top_k,
                  "Classes per sample, most probable first (default: 5, or the number of classes "
                  "when fewer)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--out", a.out, "CSV file to write (default: standard output)");
  cmd->add_option("--features-output", a.features_output,
                  "Which element of forward's tuple holds the features")
      ->capture_default_str();
  cmd->add_option("--logits-output", a.logits_output,
                  "Which element holds the logits: an index, or auto (1 for tlkit finetune's "
                  "model.pt and for image models returning a tuple)")
      ->capture_default_str();
  add_extraction_options(cmd, a.run);
  return cmd;
}

std::string pct(double v) { return v < 0 ? std::string("-") : fmt::format("{:.2f}%", v); }

int run_predict(const PredictArgs& a) {
  model::PredictOptions o;
  o.extract = to_extract_options(a.run);
  o.extract.model = a.model;
  o.extract.data = a.data;
  o.extract.input_size = a.input_size;
  o.extract.model_options.features_output =
      parse_output_index(a.features_output, "--features-output", false);
  o.extract.model_options.logits_output =
      parse_output_index(a.logits_output, "--logits-output", true);
  o.top_k = a.top_k;

  catch_interrupts();
  o.extract.cancelled = interrupted;
  ProgressBar bar(progress_wanted(a.run.quiet), "item");
  o.extract.progress = [&bar](std::int64_t done, std::int64_t total) { bar.update(done, total); };
  model::PredictResult r;
  try {
    r = model::predict(o);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  const std::string csv = model::predictions_csv(r);
  if (a.out.empty())
    std::fwrite(csv.data(), 1, csv.size(), stdout);
  else
    write_file_atomic(a.out, csv);

  print_extract_warnings(r.extract);
  for (const auto& note : r.notes) fmt::print(stderr, "tlkit: warning: {}\n", note);
  if (!a.run.quiet) {
    // The summary goes to stderr when the predictions take standard output.
    std::FILE* f = a.out.empty() ? stderr : stdout;
    fmt::print(f, "tlkit predict: {} samples, {} classes, top {}\n", r.extract.n, r.classes,
               r.top_k);
    if (r.accuracy >= 0)
      fmt::print(f, "  accuracy {} (top-{} {}) on the {} labelled samples\n", pct(r.accuracy),
                 r.top_k, pct(r.top_k_accuracy), r.scored);
    if (!a.out.empty()) fmt::print(f, "  wrote {}\n", a.out);
  }
  return 0;
}

}  // namespace

Command add_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  return {add_predict_options(app, *args), [args] { return run_predict(*args); }};
}

}  // namespace tlkit::cli

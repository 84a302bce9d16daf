// tlkit extract: features (and logits) of a TorchScript image model on a labelled image dataset.
// Everything but the options, the progress bar and the summary is in tlkit/model/extractor.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>

#include "commands.h"
#include "extraction_options.h"
#include "interrupt.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/text_dataset.h"
#include "tlkit/model/zoo_handoff.h"

namespace tlkit::cli {
static CLI::App* add_extract_options(CLI::App& app, ExtractArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "extract",
      "Extract features (and logits) of a TorchScript model on a labelled dataset.\n"
      "Example: tlkit extract --model resnet20.pt --data DATA --split train --input-size 32\n"
      "     or: tlkit extract --zoo zoo.json --model-name resnet20 --data DATA --split train\n"
      "         (the zoo entry gives the file, input size, outputs and mean/std)\n"
      "Images: DATA is a folder of class sub-folders (DATA/<class>/*.jpg, or "
      "DATA/<split>/<class>/*.jpg\nwith --split), or a CSV of path,label rows. Text (models with "
      "forward(List[str])): DATA is a\nfile of '<label> <text>' lines or a CSV with text,label "
      "columns. Regression or multi-label targets (--task): a CSV with a header, e.g.\n"
      "path,age or path,cat,dog,car (0/1). Writes features.npy, logits.npy, labels.npy "
      "(targets.npy, "
      "N x T\nfloat64, for targets), files.txt and meta.json (last: a folder with meta.json is "
      "complete) to\n--out. Ctrl-C stops between batches and writes nothing.");
  cmd->add_option("--model", a.model,
                  "TorchScript model: forward(x [N,3,S,S] RGB in [0,1]) or forward(List[str]) -> "
                  "(features, logits) or features (or --zoo with --model-name)");
  add_zoo_options(cmd, a.zoo);
  cmd->add_option("--data", a.data,
                  "Folder of class sub-folders, a CSV of path,label (images) or text,label "
                  "rows, or a file of '<label> <text>' lines")
      ->required();
  add_task_option(cmd, a.task);
  cmd->add_option("--input-size", a.input_size,
                  "S: the shorter side is resized to S, then the centre S x S is cropped "
                  "(required for image data unless the model file records it in tlkit.json; "
                  "with --zoo: the entry's, and a different value is refused)")
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--out", a.out, "Output folder (default: tlkit-features/<model file name>)");
  a.features_output_flag = cmd->add_option("--features-output", a.features_output,
                                           "Which element of forward's tuple holds the features")
                               ->capture_default_str();
  a.logits_output_flag =
      cmd->add_option(
             "--logits-output", a.logits_output,
             "Which element holds the logits: an index, auto (image models: 1 when forward "
             "returns a tuple; text models: none, as the kit's return (features, extra)) or "
             "none")
          ->capture_default_str();
  add_extraction_options(cmd, a.run);
  return cmd;
}

int run_extract(const ExtractArgs& a) {
  model::ExtractOptions o = to_extract_options(a.run);
  o.model = a.model;
  o.data = a.data;
  o.task = model::parse_task(a.task);
  o.input_size = a.input_size;
  o.model_options.features_output =
      parse_output_index(a.features_output, "--features-output", false);
  o.model_options.logits_output = parse_output_index(a.logits_output, "--logits-output", true);
  if (zoo_model_wanted(a.zoo, a.model, "extract")) {
    model::ZooModelFlags given;
    if (a.input_size > 0) given.input_size = a.input_size;
    if (a.features_output_flag != nullptr && a.features_output_flag->count() > 0)
      given.features_output = o.model_options.features_output;
    if (a.logits_output_flag != nullptr && a.logits_output_flag->count() > 0)
      given.logits_output = o.model_options.logits_output;
    model::apply_zoo_settings(
        model::zoo_model_settings(model::read_zoo_manifest(a.zoo.zoo), a.zoo.model_name, given), o);
  }
  const std::string out = a.out.empty() ? model::default_output_dir(o.model) : a.out;

  catch_interrupts();
  o.cancelled = interrupted;
  ProgressBar bar(progress_wanted(a.run.quiet), "item");
  o.progress = [&bar](std::int64_t done, std::int64_t total) { bar.update(done, total); };
  model::ExtractResult r;
  try {
    r = model::extract_features(o);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  model::write_extract_outputs(r, o, out);

  print_extract_warnings(r);
  if (r.nonfinite_features > 0)
    fmt::print(stderr, "tlkit: warning: {} non-finite feature values (NaN or inf)\n",
               r.nonfinite_features);
  if (!a.run.quiet) {
    const char* what = model::is_text_listing(r.listing) ? "texts" : "images";
    fmt::print("tlkit extract: {} {} ({} skipped), features {} x {}{}\n", r.n, what,
               r.skipped.size(), r.n, r.features_dim,
               r.has_logits ? fmt::format(", logits {} x {}", r.n, r.logits_dim) : "");
    fmt::print(
        "  {:.1f} {}/s ({:.2f} s; optimize {}, {} threads, {} decode threads{})\n",
        r.images_per_second, what, r.timings.extract_s, model::to_string(r.optimization), r.threads,
        r.decode_threads,
        o.model_options.device.is_cuda() ? ", on " + model::to_string(o.model_options.device) : "");
    const bool targets = o.task != model::Task::kClassification;
    fmt::print("  wrote {}/ (features.npy, {}{}, files.txt, meta.json)\n", out,
               r.has_logits ? "logits.npy, " : "", targets ? "targets.npy" : "labels.npy");
    if (targets)
      fmt::print(
          "  {} {} target(s) ({}); score them with: tlkit score --features {}/features.npy "
          "--labels {}/targets.npy --regression\n",
          r.listing.target_names.size(), model::to_string(o.task),
          fmt::join(r.listing.target_names, ", "), out, out);
  }
  return 0;
}

}  // namespace tlkit::cli

namespace tlkit::cli {

Command add_extract_command(CLI::App& app) {
  auto args = std::make_shared<ExtractArgs>();
  return {add_extract_options(app, *args), [args] { return run_extract(*args); }};
}

}  // namespace tlkit::cli

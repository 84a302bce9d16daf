// tlkit extract: features (and logits) of a TorchScript image model on a labelled image dataset.
// Everything but the options, the progress bar and the summary is in tlkit/model/extractor.h.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/model/extractor.h"

namespace tlkit::cli {
namespace {

int parse_output_index(const std::string& s, const char* flag, bool allow_none) {
  if (allow_none && s == "none") return model::kNoOutput;
  if (allow_none && s == "auto") return model::kAutoOutput;
  int v = -1;
  std::size_t used = 0;
  try {
    v = std::stoi(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TLKIT_CHECK_ARG(used == s.size() && v >= 0, "{} {}: expected an output index >= 0{}", flag, s,
                  allow_none ? ", auto or none" : "");
  return v;
}

}  // namespace

static CLI::App* add_extract_options(CLI::App& app, ExtractArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "extract",
      "Extract features (and logits) of a TorchScript image model on a labelled image dataset.\n"
      "Example: tlkit extract --model resnet20.pt --data DATA --split train --input-size 32\n"
      "DATA is a folder of class sub-folders (DATA/<class>/*.jpg, or DATA/<split>/<class>/*.jpg "
      "with --split),\nor a CSV of path,label rows. Writes features.npy, logits.npy, labels.npy, "
      "files.txt and meta.json\n(last: a folder with meta.json is complete) to --out.");
  cmd->add_option("--model", a.model,
                  "TorchScript model: forward(x [N,3,S,S] RGB in [0,1]) -> (features, logits) "
                  "or features")
      ->required();
  cmd->add_option("--data", a.data, "Folder of class sub-folders, or a CSV of path,label rows")
      ->required();
  cmd->add_option("--split", a.split,
                  "Sub-folder of --data holding the class folders (train, ...)");
  cmd->add_option("--input-size", a.input_size,
                  "S: the shorter side is resized to S, then the centre S x S is cropped")
      ->required()
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--out", a.out, "Output folder (default: tlkit-features/<model file name>)");
  cmd->add_option("--batch", a.batch, "Images per forward call")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "LibTorch threads (0: all cores)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--decode-threads", a.decode_threads,
                  "Image decoding threads, running ahead of the model (0: half the cores)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--per-class", a.per_class,
                  "At most K images per class, chosen with --seed "
                  "(0: all)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--limit", a.limit, "At most N images in all, chosen with --seed (0: all)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed of the subsampling (std::mt19937_64)")
      ->capture_default_str();
  cmd->add_option("--on-bad-image", a.on_bad_image,
                  "An image that cannot be decoded fails the run, or is skipped with a warning")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--features-output", a.features_output,
                  "Which element of forward's tuple holds the features")
      ->capture_default_str();
  cmd->add_option("--logits-output", a.logits_output,
                  "Which element holds the logits: an index, auto (1 when forward returns a "
                  "tuple) or none")
      ->capture_default_str();
  cmd->add_option("--optimize", a.optimize,
                  "freeze: torch::jit::freeze; full: freeze + optimize_for_inference (faster "
                  "for ResNets, slower for MobileNets); none: the model as loaded. Checked "
                  "against the model as loaded on the first batch")
      ->check(CLI::IsMember({"none", "freeze", "full"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "No progress bar and no summary (warnings still go to stderr)");
  return cmd;
}

int run_extract(const ExtractArgs& a) {
  model::ExtractOptions o;
  o.model = a.model;
  o.data = a.data;
  o.split = a.split;
  o.input_size = a.input_size;
  o.batch = a.batch;
  o.threads = a.threads;
  o.decode_threads = a.decode_threads;
  o.sample.per_class = a.per_class;
  o.sample.limit = a.limit;
  o.sample.seed = a.seed;
  o.on_bad_image = model::parse_bad_image_policy(a.on_bad_image);
  o.model_options.features_output =
      parse_output_index(a.features_output, "--features-output", false);
  o.model_options.logits_output = parse_output_index(a.logits_output, "--logits-output", true);
  o.model_options.optimization = model::parse_optimization(a.optimize);
  const std::string out = a.out.empty() ? model::default_output_dir(a.model) : a.out;

  ProgressBar bar(progress_wanted(a.quiet));
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

  for (const auto& note : r.listing.notes) fmt::print(stderr, "tlkit: warning: {}\n", note);
  for (const auto& s : r.skipped) fmt::print(stderr, "tlkit: warning: skipped {}\n", s.reason);
  for (const auto& note : r.model_notes) fmt::print(stderr, "tlkit: warning: {}\n", note);
  if (r.nonfinite_features > 0)
    fmt::print(stderr, "tlkit: warning: {} non-finite feature values (NaN or inf)\n",
               r.nonfinite_features);
  if (!a.quiet) {
    fmt::print("tlkit extract: {} images ({} skipped), features {} x {}{}\n", r.n, r.skipped.size(),
               r.n, r.features_dim,
               r.has_logits ? fmt::format(", logits {} x {}", r.n, r.logits_dim) : "");
    fmt::print("  {:.1f} images/s ({:.2f} s; optimize {}, {} threads, {} decode threads)\n",
               r.images_per_second, r.timings.extract_s, model::to_string(r.optimization),
               r.threads, r.decode_threads);
    fmt::print("  wrote {}/ (features.npy, {}labels.npy, files.txt, meta.json)\n", out,
               r.has_logits ? "logits.npy, " : "");
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

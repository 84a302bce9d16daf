// tlkit truth: the truth.csv of tlkit evaluate, from the metrics.json of tlkit finetune runs.
// Reading and naming are in tlkit/model/zoo_handoff.h.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/zoo_handoff.h"

namespace tlkit::cli {
namespace {

struct TruthArgs {
  std::vector<std::string> runs;
  std::string metric = "test_acc";
  std::string zoo;
  std::string out;
};

CLI::App* add_truth_options(CLI::App& app, TruthArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "truth",
      "Write the truth.csv of tlkit evaluate (model,accuracy) from tlkit finetune runs, one row "
      "per run.\n"
      "Example: tlkit truth runs/resnet20 runs/resnet56 --zoo zoo.json --out truth.csv\n"
      "         tlkit evaluate --scores scores.csv --truth truth.csv\n"
      "Models are named as tlkit rank names them: the zoo entry that tlkit finetune --zoo "
      "--model-name\nrecorded in metrics.json; else the --zoo entry whose file the run "
      "fine-tuned; else the model\nfile's stem (tlkit rank --model). Give the runs of one data "
      "set and setting, one per model.");
  cmd->add_option("runs", a.runs,
                  "tlkit finetune --out folders (or their metrics.json files); of a --grid "
                  "run, its best point")
      ->required();
  cmd->add_option("--metric", a.metric,
                  "test_acc (the test accuracy of the epoch chosen on validation) or best_val_acc")
      ->check(CLI::IsMember({"test_acc", "best_val_acc"}))
      ->capture_default_str();
  cmd->add_option("--zoo", a.zoo,
                  "Zoo manifest that tlkit rank scored: runs are named by its entries (run "
                  "tlkit truth from the folder the runs were started in when their --model paths "
                  "are relative)");
  cmd->add_option("--out", a.out, "truth.csv to write (default: print it)");
  return cmd;
}

int run_truth(const TruthArgs& a) {
  model::ZooManifest zoo;
  if (!a.zoo.empty()) zoo = model::read_zoo_manifest(a.zoo);
  const auto rows = model::collect_truth(a.runs, a.metric, a.zoo.empty() ? nullptr : &zoo);
  const std::string csv = model::truth_csv(rows);
  if (a.out.empty()) {
    fmt::print("{}", csv);
  } else {
    write_file_atomic(a.out, csv);
    fmt::print("tlkit truth: {} models ({}) -> {}\n", rows.size(), a.metric, a.out);
  }
  return 0;
}

}  // namespace

Command add_truth_command(CLI::App& app) {
  auto args = std::make_shared<TruthArgs>();
  return {add_truth_options(app, *args), [args] { return run_truth(*args); }};
}

}  // namespace tlkit::cli

// tlkit probe: which pretrained blocks carry the transfer? Per-layer probing and metrics,
// re-initialisation, block windows and permutations, after Tamkin et al. 2020. Everything but the
// options, the progress line and the summary is in tlkit/model/probe.h.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "commands.h"
#include "extraction_options.h"
#include "interrupt.h"
#include "metric_options.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/model/probe.h"
#include "tlkit/model/zoo_handoff.h"
#include "training_options.h"
#include "world.h"

namespace tlkit::cli {
namespace {

struct ProbeArgs {
  model::ProbeOptions o;
  std::string analysis = "all";
  std::string sizes = "500,5000,all";
  std::string metric_flag = "--metric";  // as typed: --metric or its alias --metrics
  bool quiet = false;
  ZooArgs zoo;
  CLI::Option* features_output_flag = nullptr;  // to tell a value given from the default
};

CLI::App* add_probe_options(CLI::App& app, ProbeArgs& a) {
  model::ProbeOptions& o = a.o;
  model::FinetuneOptions& f = o.finetune;
  f.epochs = 10;
  CLI::App* cmd = app.add_subcommand(
      "probe",
      "Explain transferability block by block (Tamkin et al. 2020, \"Investigating "
      "Transferability in\nPretrained Language Models\"): which blocks of a pretrained model "
      "make fine-tuning work?\n"
      "  layers        features after each block (pooled), scored by metrics (--metrics) and a "
      "linear probe\n"
      "  reinit        keep blocks 1..k pretrained, re-initialise the rest, fine-tune all, for "
      "k = 0..B\n"
      "  block-reinit  re-initialise only a window of --block blocks, and only keep that window\n"
      "  reorder       permute blocks of equal parameter shapes (--seeds permutations), "
      "fine-tune\n"
      "Each at --sizes training images (class-balanced) and --seeds seeds; fine-tuning is "
      "`tlkit finetune --mode full`\n(its options below; runs resume from their checkpoints). "
      "Writes results.json and SVG plots to --out.\n"
      "Example: tlkit probe --model cifar10_resnet20.pt --input-size 32 --data clothing "
      "--split-train train\n         --split-val validation --split-test test --sizes 100,500 "
      "--seeds 2 --epochs 4 --out probe/r20\n"
      "     or: --zoo zoo.json --model-name cifar10_resnet20 instead of --model and --input-size\n"
      "Blocks: as `tlkit finetune --list-blocks` lists them. layers needs a model that can be "
      "run block by block\n(a scripted model whose forward calls a Sequential of blocks, like the "
      "kit's cifar10_resnet*) or whose\nforward returns a list of per-layer features "
      "(docs/probe.md).\nUnder mpirun -n P (or srun --mpi=pmix) the fine-tuning runs are shared "
      "among the P processes,\neach run trained by one; rank 0 runs layers and writes the results "
      "(docs/scaling.md).");
  cmd->add_option("--model", o.model,
                  "TorchScript image model: forward(x [N,3,S,S] RGB in [0,1]) -> (features, ...) "
                  "(or --zoo with --model-name)");
  add_zoo_options(cmd, a.zoo);
  cmd->add_option("--data", o.data,
                  "Folder of class sub-folders (or of split folders), or a CSV of path,label rows")
      ->required();
  cmd->add_option("--input-size", o.input_size,
                  "S of the model's input (required with --model; with --zoo: the entry's "
                  "input_size, a different value is refused)")
      ->check(CLI::Range(1, 8192));
  a.features_output_flag = cmd->add_option("--features-output", o.features_output,
                                           "Which element of forward's tuple holds the features")
                               ->check(CLI::NonNegativeNumber)
                               ->capture_default_str();
  cmd->add_option("--analysis", a.analysis,
                  "layers, reinit, block-reinit, reorder, a comma list, or all")
      ->capture_default_str();
  cmd->add_option("--sizes", a.sizes,
                  "Training-set sizes (images, drawn class-balanced from the training pool), "
                  "comma-separated; 'all' for the whole pool")
      ->capture_default_str();
  cmd->add_option("--seeds", o.seeds,
                  "Seeds per size (0..N-1: training subset, re-initialisation, fine-tuning); "
                  "also the number of permutations of reorder")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--block", o.block, "Window length (blocks) of block-reinit")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--init", o.init,
                  "Re-initialisation: default (PyTorch's initialisers by module type) or "
                  "trunc-normal (sigma 0.02, as in the paper)")
      ->check(CLI::IsMember({"default", "trunc-normal"}))
      ->capture_default_str();
  add_metric_list_option(cmd, o.metrics, a.metric_flag,
                         "Metrics scored on each layer's features (core registry names, 'all' "
                         "for every metric of features and labels, or none)");
  cmd->add_option("--split-train", o.split_train,
                  "Sub-folder of --data with the training pool the sizes draw from");
  cmd->add_option("--split-val", o.split_val,
                  "Sub-folder with validation images (default: --val-fraction of the pool)");
  cmd->add_option("--split-test", o.split_test,
                  "Sub-folder with test images (or carve --test-fraction of the pool)");
  cmd->add_option("--val-fraction", o.val_fraction,
                  "Carve this fraction of each class of the pool as the validation split")
      ->capture_default_str();
  cmd->add_option("--test-fraction", o.test_fraction,
                  "Carve this fraction of each class of the pool as the test split");
  cmd->add_option("--eval-per-class", o.eval_per_class,
                  "At most this many validation and test images per class (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Output folder: results.json, *.svg, runs/, data/")->required();
  // Fine-tuning (tlkit finetune's options, docs/finetune.md).
  add_training_options(cmd, f);
  add_device_options(cmd, f);
  cmd->add_flag("--quiet", a.quiet,
                "No progress line and no summary (warnings still go to stderr)");
  return cmd;
}

int run_probe_command(ProbeArgs& a) {
  if (zoo_model_wanted(a.zoo, a.o.model, "probe")) {
    model::ZooModelFlags given;
    if (a.o.input_size > 0) given.input_size = a.o.input_size;
    if (a.features_output_flag->count() > 0) given.features_output = a.o.features_output;
    const model::ZooModelSettings s =
        model::zoo_model_settings(model::read_zoo_manifest(a.zoo.zoo), a.zoo.model_name, given);
    TLKIT_CHECK_ARG(s.kind == "image",
                    "--model-name {}: {} is a {} model; tlkit probe runs image "
                    "models",
                    s.name, s.source, s.kind);
    TLKIT_CHECK_ARG(s.mean.empty() && s.std.empty(),
                    "--model-name {}: {} has mean/std; tlkit probe runs models that normalise "
                    "inside",
                    s.name, s.source);
    a.o.model = s.model;
    a.o.input_size = s.input_size;
    a.o.features_output = s.features_output;
  }
  TLKIT_CHECK_ARG(a.o.input_size > 0, "--input-size is required with --model (the model's S)");
  // Ctrl-C stops the fine-tuning run in progress at a batch boundary (exit 130); every run
  // resumes from its checkpoint when the command is repeated.
  catch_interrupts();
  a.o.finetune.cancelled = interrupted;
  a.o.analyses = model::parse_analyses(a.analysis);
  a.o.sizes = model::parse_sizes(a.sizes);
  a.o.finetune.comm = &world();  // under mpirun: the fine-tuning runs shared among the processes
  a.o.finetune.threads = threads_per_process(a.o.finetune.threads);
  ProgressBar bar(world().size() == 1 && progress_wanted(a.quiet), "img");
  a.o.progress = [&bar, last = std::string()](const std::string& phase, std::int64_t done,
                                              std::int64_t total,
                                              const std::string& suffix) mutable {
    if (phase != last) {
      bar.restart(phase);
      last = phase;
    }
    bar.update(done, total, suffix);
  };
  model::ProbeResult r;
  try {
    r = naming_metric_flag(a.metric_flag, [&] { return model::run_probe(a.o); });
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  // The same note from several fine-tuning runs is one line with its count.
  std::vector<std::pair<std::string, int>> notes;
  for (const auto& n : r.notes) {
    auto it = std::find_if(notes.begin(), notes.end(), [&](const auto& x) { return x.first == n; });
    if (it == notes.end())
      notes.emplace_back(n, 1);
    else
      ++it->second;
  }
  for (const auto& [n, count] : notes)
    fmt::print(stderr, "tlkit: warning: {}{}\n", n,
               count > 1 ? fmt::format(" ({} times)", count) : "");
  if (a.quiet) return 0;
  fmt::print("tlkit probe: {} blocks, {} classes (val {}, test {}), {} fine-tuning runs\n",
             r.blocks.size(), r.classes, r.val_n, r.test_n, r.finetune_runs);
  fmt::print("{}", r.layers_table);
  for (const auto& f : r.files) fmt::print("  wrote {}\n", f);
  fmt::print("  ({:.1f} s)\n", r.seconds);
  return 0;
}

}  // namespace

Command add_probe_command(CLI::App& app) {
  auto args = std::make_shared<ProbeArgs>();
  return {add_probe_options(app, *args), [args] { return run_probe_command(*args); }};
}

}  // namespace tlkit::cli

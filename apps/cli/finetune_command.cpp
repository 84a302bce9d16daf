// tlkit finetune: fine-tune a TorchScript image or text model with a new linear head (linear probe,
// top-K blocks or full), with validation-based epoch selection, checkpoints and hyper-parameter
// grids. Everything but the options, the progress bar and the summary is in tlkit/model/finetune.h.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>

#include "commands.h"
#include "extraction_options.h"
#include "interrupt.h"
#include "progress.h"
#include "tlkit/core/error.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/zoo_handoff.h"
#include "training_options.h"
#include "world.h"

namespace tlkit::cli {
namespace {

namespace fs = std::filesystem;

struct FinetuneArgs {
  model::FinetuneOptions o;
  std::string mode = "top:1";
  bool list_blocks = false;
  bool quiet = false;
  ZooArgs zoo;
  std::optional<model::ZooModelSettings> zoo_settings;  // with --zoo
  CLI::Option* features_output_flag = nullptr;          // to tell a value given from the default
};

CLI::App* add_finetune_options(CLI::App& app, FinetuneArgs& a) {
  model::FinetuneOptions& o = a.o;
  CLI::App* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune a TorchScript image or text model on a labelled dataset with a new linear head.\n"
      "Example: tlkit finetune --model resnet20.pt --data DATA --split-train train --split-test "
      "test\n         --input-size 32 --mode top:1 --epochs 5 --out runs/r20\n"
      "From a zoo (the entry gives the file, input size, features output and mean/std): "
      "--zoo zoo.json\n--model-name resnet20 instead of --model and --input-size; its "
      "metrics.json feeds tlkit truth.\n"
      "Text models (forward(List[str])): --data TREC.train.all --split-test TREC.test.all (files "
      "of\n'<label> <text>' lines or text,label CSVs; no --input-size, no augmentation).\n"
      "Modes: linear (logistic regression on fixed features, L-BFGS, C chosen on validation), "
      "top:K (the last K\nblocks and the head train), full (everything trains). Writes "
      "checkpoint.pt and metrics.json to --out,\nand model.pt: the fine-tuned model (backbone, "
      "head, --mean/--std inside) for tlkit predict and\ntorch.jit.load. Resumes from a checkpoint "
      "of the same "
      "configuration (docs/finetune.md). Ctrl-C keeps the last epoch's checkpoint; rerun to "
      "resume.\n"
      "Under mpirun -n P (or srun --mpi=pmix): the points of --grid are shared among the P "
      "processes, or\nwith --data-parallel each batch of one run is (docs/scaling.md).");
  cmd->add_option("--model", o.model,
                  "TorchScript model: forward(x [N,3,S,S] RGB in [0,1]) or forward(List[str]) "
                  "-> (features, ...) or features (or --zoo with --model-name)");
  add_zoo_options(cmd, a.zoo);
  cmd->add_option("--data", o.data,
                  "Folder of class sub-folders (or of split folders), or a CSV "
                  "of path,label rows; text: a file of '<label> <text>' lines or a text,label "
                  "CSV (the training split), or a folder of such files (with --split-train)");
  cmd->add_option("--features", o.features_dir,
                  "--mode linear only: a `tlkit extract` folder to use as the training pool "
                  "instead of --model/--data");
  cmd->add_option("--features-val", o.features_val_dir,
                  "--mode linear only: an extract folder used as the validation split");
  cmd->add_option("--features-test", o.features_test_dir,
                  "--mode linear only: an extract folder used as the test split");
  cmd->add_option("--split-train", o.split_train,
                  "Sub-folder of --data with the training images (text: a file in a --data "
                  "folder)");
  cmd->add_option("--split-val", o.split_val,
                  "Sub-folder with validation images (default: --val-fraction of train); text: "
                  "a file (as given, else next to a --data file)");
  cmd->add_option("--split-test", o.split_test,
                  "Sub-folder with test images (or carve one with --test-fraction); text: a "
                  "file (as given, else next to a --data file)");
  cmd->add_option("--test-fraction", o.test_fraction,
                  "Carve this fraction of each class of --data as the test split (seeded)")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--val-fraction", o.val_fraction,
                  "Carve this fraction of each training class as the validation split")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  cmd->add_option("--per-class", o.per_class,
                  "At most K images per class of each listed split, chosen with --seed (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--limit", o.limit, "At most N images of each listed split (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--input-size", o.input_size,
                  "S: the shorter side is resized to S, the centre S x S cropped (image models; "
                  "required there; with --zoo: the entry's, a different value is refused)")
      ->check(CLI::Range(1, 8192));
  cmd->add_option("--mean", o.mean,
                  "Image models: per-channel R,G,B mean subtracted after scaling to [0, 1], e.g. "
                  "0.485,0.456,0.406 (default: none; the kit's models normalise inside)")
      ->expected(3)
      ->delimiter(',');
  cmd->add_option("--std", o.std,
                  "Image models: per-channel R,G,B std dividing after --mean, e.g. "
                  "0.229,0.224,0.225 (with --mean)")
      ->expected(3)
      ->delimiter(',');
  a.features_output_flag = cmd->add_option("--features-output", o.features_output,
                                           "Which element of forward's tuple holds the features")
                               ->check(CLI::NonNegativeNumber)
                               ->capture_default_str();
  cmd->add_option("--mode", a.mode, "linear, top:K (the last K blocks train) or full")
      ->capture_default_str();
  add_training_options(cmd, o);
  cmd->add_option("--seed", o.seed, "Seed of splits, subsampling, head, data order, augmentation")
      ->capture_default_str();
  cmd->add_option("--grid", o.grid,
                  "Hyper-parameter grid, e.g. 'lr=1e-2,1e-3;weight-decay=0,5e-4' (keys lr, "
                  "weight-decay, momentum, head-lr-mult, label-smoothing; c for --mode linear): "
                  "one sub-folder per point, the best chosen by val accuracy");
  cmd->add_option("--out", o.out, "Output folder (checkpoint.pt, metrics.json); required");
  cmd->add_flag("--list-blocks", a.list_blocks,
                "Print the blocks of --model (what top:K counts, last first) and exit");
  cmd->add_flag("--resume", o.resume,
                "Require a checkpoint in --out to continue from (one of the same configuration "
                "is always resumed)");
  cmd->add_option("--stop-after", o.stop_after,
                  "Stop after this many epochs in this invocation, leaving a checkpoint to "
                  "resume (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  add_device_options(cmd, o);
  cmd->add_option("--reinit-blocks", o.reinit_blocks,
                  "Re-initialise these blocks before training, e.g. 8,9,10: 0-based from the "
                  "input (--list-blocks prints them last first: block i is top:B-i) (tlkit probe)")
      ->delimiter(',');
  cmd->add_option("--init", o.reinit_init,
                  "Initialiser of --reinit-blocks: default (PyTorch's) or trunc-normal "
                  "(sigma 0.02)")
      ->check(CLI::IsMember({"default", "trunc-normal"}))
      ->capture_default_str();
  cmd->add_option("--block-order", o.block_order,
                  "A permutation of the block indices: block i takes the weights of block "
                  "ORDER[i] (equal parameter shapes), e.g. 0,1,3,2,...")
      ->delimiter(',');
  cmd->add_flag("--data-parallel", o.data_parallel,
                "Under mpirun -n P or srun (P >= 2): train each run on all P processes, each "
                "taking its share of every batch, gradients summed after backward (same global "
                "--batch and --seed as one process; BatchNorm uses each share's statistics)");
  // B-Tuning (docs/btuning.md).
  cmd->add_option("--teachers", o.teachers_zoo,
                  "B-Tuning: a zoo.json of teacher models; adds tradeoff x MSE between the "
                  "student's and the LogME-weighted teachers' LogME projections (docs/btuning.md)");
  cmd->add_option("--teachers-top", o.teachers_top,
                  "B-Tuning: the K image models of --teachers with the best LogME on the training "
                  "split (default 3; the student's own file is left out)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--teacher", o.teacher_names,
                  "B-Tuning: a teacher by its name in --teachers (repeat, or a comma list; "
                  "instead of --teachers-top)")
      ->delimiter(',');
  cmd->add_option("--btuning-tradeoff", o.btuning_tradeoff,
                  "B-Tuning: weight of the distillation term")
      ->capture_default_str();
  cmd->add_option("--btuning-temperature", o.btuning_temperature,
                  "B-Tuning: pi = softmax(LogME / temperature) over the teachers")
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "No progress bar and no summary (warnings still go to stderr)");
  return cmd;
}

// Removes `dir` if it holds nothing but (recursively) empty folders; errors are ignored.
void remove_empty_folders(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::is_symlink(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir, ec)) remove_empty_folders(e.path());
  fs::remove(dir, ec);  // fails, as wanted, when something is left inside
}

std::string acc(double v) { return v < 0 ? "-" : fmt::format("{:.2f}%", v); }

int run_finetune_command(FinetuneArgs& a) {
  if (!a.zoo.zoo.empty() || !a.zoo.model_name.empty()) {
    zoo_model_wanted(a.zoo, a.o.model, "finetune");
    model::ZooModelFlags given;
    if (a.o.input_size > 0) given.input_size = a.o.input_size;
    if (a.features_output_flag->count() > 0) given.features_output = a.o.features_output;
    if (!a.o.mean.empty()) given.mean = a.o.mean;
    if (!a.o.std.empty()) given.std = a.o.std;
    a.zoo_settings =
        model::zoo_model_settings(model::read_zoo_manifest(a.zoo.zoo), a.zoo.model_name, given);
    model::apply_zoo_settings(*a.zoo_settings, a.o);
  }
  if (a.list_blocks) {
    TLKIT_CHECK_ARG(!a.o.model.empty(),
                    "--list-blocks needs --model (and --input-size for an image model)");
    const auto blocks = model::list_blocks(a.o.model, a.o.input_size, a.o.features_output);
    fmt::print("{} blocks of {} (top:K trains the last K):\n", blocks.size(), a.o.model);
    for (std::size_t i = blocks.size(); i-- > 0;)
      fmt::print("  top:{:<3} {} ({}, {} parameters)\n", blocks.size() - i, blocks[i].name,
                 blocks[i].type, blocks[i].parameters);
    return 0;
  }
  a.o.mode = model::parse_mode(a.mode);
  a.o.comm = &world();
  a.o.threads = threads_per_process(a.o.threads);
  // Under several processes the bar is off: each would draw its own runs or shares.
  ProgressBar bar(world().size() == 1 && progress_wanted(a.quiet), "item");
  a.o.progress = [&bar, last = std::string()](const std::string& phase, std::int64_t done,
                                              std::int64_t total,
                                              const std::string& suffix) mutable {
    if (phase != last) {
      bar.restart(phase);
      last = phase;
    }
    bar.update(done, total, suffix);
  };
  // Ctrl-C / SIGTERM: stop between batches, keeping the last epoch's checkpoint (exit 130).
  catch_interrupts();
  a.o.cancelled = interrupted;
  // A run that fails or is stopped before writing anything leaves no --out behind (the library
  // creates the folders before reading the model and the data).
  std::error_code ec;
  const bool out_existed = a.o.out.empty() || fs::exists(a.o.out, ec);
  model::FinetuneResult r;
  try {
    r = model::run_finetune(a.o);
  } catch (...) {
    bar.finish();
    if (!out_existed) remove_empty_folders(a.o.out);
    throw;
  }
  bar.finish();
  // Rank 0 alone writes metrics.json (under mpirun the others would rewrite it at the same time).
  if (a.zoo_settings && world().is_root())
    model::record_zoo_model(*a.zoo_settings, a.zoo.zoo, a.o.out);
  // The linear probe's non-converged fits: one warning naming the model and every C.
  const std::string lbfgs = "L-BFGS did not converge for C = ";
  std::vector<std::string> lbfgs_c;
  for (const auto& n : r.notes) {
    if (n.rfind(lbfgs, 0) == 0)
      lbfgs_c.push_back(n.substr(lbfgs.size()));
    else
      fmt::print(stderr, "tlkit: warning: {}\n", n);
  }
  if (!lbfgs_c.empty()) {
    std::string cs;
    for (const auto& c : lbfgs_c) cs += (cs.empty() ? "" : ", ") + c;
    fmt::print(
        stderr,
        "tlkit: warning: {}: the linear probe's L-BFGS did not converge for C = {} "
        "(the fit stopped short of its tolerance; the best C is still chosen on validation)\n",
        a.o.model.empty() ? a.o.features_dir : a.o.model, cs);
  }
  if (a.quiet) return 0;
  fmt::print("tlkit finetune: {} on {} classes (train {}, val {}, test {}), features {}\n",
             model::to_string(r.mode), r.classes, r.train_n, r.val_n, r.test_n, r.features_dim);
  if (!r.blocks.empty()) {
    std::string names;
    for (const auto& n : r.trainable) names += (names.empty() ? "" : ", ") + n;
    fmt::print("  {} blocks; training {} ({} parameters with the head)\n", r.blocks.size(),
               names.empty() ? "the head" : names, r.trainable_parameters);
  }
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    const auto& run = r.runs[i];
    std::string point;
    for (const auto& [k, v] : run.point)
      point += fmt::format("{}{}={}", point.empty() ? "" : " ", k, v);
    if (r.mode.mode == model::FinetuneMode::kLinear) {
      fmt::print("  {} val {}{}\n", point, acc(run.best_val_acc),
                 i == r.best_run ? fmt::format("  <- best, test {}", acc(run.test_acc)) : "");
      continue;
    }
    fmt::print("  {}{}best epoch {} val {} test {}{}{}{}\n", point, point.empty() ? "" : ": ",
               run.best_epoch, acc(run.best_val_acc), acc(run.test_acc),
               run.resumed ? fmt::format(" (resumed after epoch {})", run.resumed_from_epoch) : "",
               run.diverged        ? " (diverged: loss not finite)"
               : run.early_stopped ? " (stopped early)"
                                   : "",
               run.finished ? "" : " (interrupted: run again to resume)");
  }
  if (r.runs.size() > 1 && r.mode.mode != model::FinetuneMode::kLinear)
    fmt::print("  best: {}\n", r.runs[r.best_run].out);
  fmt::print("  wrote {}/metrics.json{} ({:.1f} s)\n", a.o.out,
             r.model_file.empty() ? "" : " and model.pt", r.seconds);
  return 0;
}

}  // namespace

Command add_finetune_command(CLI::App& app) {
  auto args = std::make_shared<FinetuneArgs>();
  return {add_finetune_options(app, *args), [args] { return run_finetune_command(*args); }};
}

}  // namespace tlkit::cli

// From a metric ranking to the model to fine-tune (`tlkit select`, docs/selection.md): the models
// of a zoo are ranked by a transferability metric (stage 0, rank_zoo with its feature cache), the
// best K of them (plus every model whose bootstrap score interval overlaps the K-th's) are
// fine-tuned for a small budget, and successive halving (Jamieson and Talwalkar 2016) keeps the
// best 1/eta of them by validation accuracy, multiplying the epochs by eta, until one model is
// left or the budget is spent.
//
// Stage s >= 1 trains every survivor to E_s epochs in all: E_1 = first_epochs,
// E_s = max(E_{s-1} + 1, round(first_epochs * eta^(s-1))). Each run is a run_finetune run in
// out/runs/<model>/lr-<lr> (patience 0, so a run spends exactly its epochs); in stage 1 every
// model is trained once per learning rate of `lrs`, and the learning rate with the best validation
// accuracy is carried forward; in later stages the survivor's run continues from its checkpoint
// (its configuration hash leaves out the epochs) for E_s - E_{s-1} more epochs. Epochs spent:
// stage 1 costs n_1 |lrs| E_1, stage s > 1 costs n_s (E_s - E_{s-1}); n_{s+1} = max(1,
// floor(n_s / eta)).
//
// Resume: out/select-state.json (written atomically after stage 0 and after every run) records
// the stage-0 scores and every finished run; a rerun with the same settings skips them and goes
// on (an interrupted run continues from its last epoch's checkpoint).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tlkit/model/finetune.h"
#include "tlkit/model/rank.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model {

/// Survivors of stage 0 when SelectOptions::keep is 0. Measured on the kit (docs/selection.md).
inline constexpr int kDefaultSelectKeep = 4;

struct SelectOptions {
  /// Stage 0: data, extract (split, sampling, batch, threads), params, seed, cache_dir (required:
  /// the bootstrap reads the models' features from it). `metrics` is ignored (see `metric`).
  RankOptions rank;
  std::string metric = "logme";  ///< one metric of rank's (registered or zoo-level)
  /// Fine-tuning settings shared by every run: data and splits, per_class, mode, batch,
  /// optimizer, schedule, augment, ... The model, input size, mean/std and features output come
  /// from each zoo entry; lr, epochs, out, patience, grid, resume and stop_after are set here.
  FinetuneOptions finetune;
  int keep = 0;                            ///< K >= 1 (0: kDefaultSelectKeep)
  double eta = 2.0;                        ///< > 1
  std::vector<double> lrs = {1e-2, 1e-3};  ///< the stage-1 learning-rate grid
  int first_epochs = 1;                    ///< E_1 >= 1
  std::int64_t budget_epochs = 0;          ///< 0: no limit on the epochs of all runs together
  double budget_seconds = 0.0;             ///< 0: no wall-clock limit (stage 0 and runs)
  std::int64_t bootstrap = 100;            ///< replicates of stage 0's intervals (0: none)
  double confidence = 0.9;                 ///< of the intervals
  std::string out;                         ///< output folder (required)
  std::string zoo_path;                    ///< recorded in the runs' metrics.json
  int stop_after_runs = 0;  ///< throw tlkit::Interrupted after this many runs (0: never; tests)
  std::function<bool()> cancelled;
};

/// One fine-tuning run of a model in a stage.
struct SelectRun {
  int stage = 0;
  double lr = 0.0;
  int epochs = 0;         ///< epochs in all after this run (E_s)
  int epochs_spent = 0;   ///< trained by this run
  double val_acc = -1.0;  ///< best validation accuracy so far (%), as run_finetune reports it
  double test_acc = -1.0;
  double seconds = 0.0;
  std::string dir;
  int continued_from = 0;  ///< the epoch its checkpoint held when it started (0: a fresh run)
  bool skipped = false;    ///< found finished in the state file (not run again)
};

struct SelectModel {
  std::string name;
  double score = 0.0;  ///< stage-0 metric score (NaN when it could not be computed)
  double score_lo = 0.0, score_hi = 0.0;  ///< bootstrap interval (NaN without --bootstrap)
  int metric_rank = 0;                    ///< 1-based position in the metric's ordering
  bool kept_by_interval = false;          ///< survived stage 0 only through the overlap rule
  int stage_reached = 0;                  ///< last stage it was trained in (0: none)
  int eliminated_at = -1;                 ///< stage it fell at (-1: not eliminated)
  double lr = 0.0;                        ///< carried-forward learning rate (0 before stage 1)
  std::vector<double> stage_acc;          ///< validation accuracy (%) at stages 1..stage_reached
  double test_acc = -1.0;                 ///< of its last run
  double seconds = 0.0;                   ///< fine-tuning time over all its runs
  std::string run_dir;                    ///< its carried-forward run
  std::string error;                      ///< a run failed (the model is eliminated)
};

struct SelectStage {
  int stage = 0;
  int epochs = 0;                      ///< E_s
  std::vector<std::string> survivors;  ///< models trained in it
  std::int64_t epochs_spent = 0;
  double seconds = 0.0;
};

struct SelectResult {
  std::string chosen;  ///< the zoo name of the chosen model (empty: none could be fine-tuned)
  std::string chosen_dir;
  double val_acc = -1.0, test_acc = -1.0;
  std::string model_file;  ///< out/model.pt (the chosen run's fine-tuned model)
  std::string metric;
  std::vector<SelectModel> models;    ///< metric order
  std::vector<std::string> ordering;  ///< final ordering, best first
  std::vector<SelectStage> stages;
  std::vector<SelectRun> runs;
  std::int64_t epochs_spent = 0;
  double stage0_seconds = 0.0;
  double seconds = 0.0;           ///< stage 0 and every run, over all invocations
  bool budget_exhausted = false;  ///< a run was left out for the budget
  std::vector<std::string> notes;
};

/// Progress of a selection, on the calling thread.
struct SelectEvents {
  /// Stage 0: as rank_zoo's events.
  RankEvents rank;
  /// A run starts: stage, E_s, survivors of the stage, the run's index in the stage and count,
  /// the model, the learning rate, and the estimated seconds left in the stage (< 0: unknown).
  std::function<void(int, int, std::size_t, std::size_t, std::size_t, const std::string&, double,
                     double)>
      run_started;
  /// Within a run: run_finetune's progress (phase, done, total, suffix).
  std::function<void(const std::string&, std::int64_t, std::int64_t, const std::string&)>
      finetune_progress;
  /// A run finished (or was found finished in the state file).
  std::function<void(const std::string&, const SelectRun&)> run_finished;
};

/// E_1 .. E_S for the given first_epochs, eta and number of stages (the formula above).
std::vector<int> select_stage_epochs(int first_epochs, double eta, int stages);

/// The survivors of a stage with n models: max(1, floor(n / eta)).
std::size_t select_survivors(std::size_t n, double eta);

/// Runs the selection; writes out/select.json, out/scores.csv (model,metric,score with metric
/// "select": the final ordering as descending scores), out/select.md (the table), out/model.pt
/// (the chosen run's model) and out/select-state.json. Throws tlkit::InputError for bad options,
/// tlkit::Interrupted when cancelled (or after stop_after_runs runs).
SelectResult run_select(const ZooManifest& zoo, const SelectOptions& options,
                        const SelectEvents& events = {});

/// The final ordering (best first): models that reached a later stage first; within a stage the
/// ones not eliminated there (by validation accuracy at that stage, ties by the metric) before
/// the ones eliminated there (by the metric's order); models cut at stage 0 by the metric's order.
std::vector<std::string> select_ordering(const std::vector<SelectModel>& models);

/// "model,metric,score" rows of `ordering` (score = count - position).
std::string select_scores_csv(const std::vector<std::string>& ordering);

}  // namespace tlkit::model

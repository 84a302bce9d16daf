// Hyper-parameter grids of tlkit finetune (--grid; finetune_grid.cpp): parsing, the points of the
// product, their sub-folders, and the grid's metrics.json. Without LibTorch.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "finetune_internal.h"
#include "finetune_train.h"
#include "tlkit/model/finetune.h"

namespace tlkit::model::finetune_detail {

using GridPoint = std::map<std::string, double>;

// Every point of the product of the axes, the last axis varying fastest.
std::vector<GridPoint> grid_points(const std::vector<GridAxis>& axes);

// A point's sub-folder: "key=value,..." in the order of the axes.
std::string point_dir_name(const std::vector<GridAxis>& axes, const GridPoint& p);

// One run with hyper-parameters `h` at `point` in the folder `dir`.
using RunOne =
    std::function<FinetuneRun(const Hyper& h, const GridPoint& point, const std::string& dir)>;

// Runs every point, `h0` with the point's values, in o.out/point_dir_name(point), and returns the
// runs in point order. With several processes in `comm` the points are a queue
// (Communicator::make_counter): each process takes the next point not yet taken when it is free
// and runs it whole; the runs are then gathered, and every process returns all of them (their
// numbers bit for bit). Every point's values are checked before the first runs.
std::vector<FinetuneRun> run_grid(const FinetuneOptions& o, const std::vector<GridAxis>& axes,
                                  const Hyper& h0, Communicator& comm, const RunOne& run_one);

// A run as bytes and back, every number bit for bit (NaN and infinite losses included).
std::string run_to_bytes(const FinetuneRun& r);
FinetuneRun run_from_bytes(const std::string& bytes);

// o.out/metrics.json of a grid: `base`, the points with their best epochs and accuracies, the
// best point (res.best_run) and its test accuracy.
void write_grid_metrics(const FinetuneOptions& o, const json& base, const FinetuneResult& res);

}  // namespace tlkit::model::finetune_detail

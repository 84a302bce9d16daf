// The gradient-based fine-tuning modes, top:K and full (finetune_train.cpp): the training loop
// (optimizer, learning-rate schedule, label smoothing, epochs, early stopping) over one run or a
// grid of runs. Without LibTorch.
#pragma once

#include <chrono>
#include <vector>

#include "finetune_internal.h"
#include "tlkit/model/finetune.h"

namespace tlkit::model::finetune_detail {

// Hyper-parameters of one run.
struct Hyper {
  double lr, weight_decay, momentum, head_lr_mult, label_smoothing;
};

// Runs --mode top:K or full on the checked options `o` (text: `o.data` is text data): the
// splits, the model's blocks, one run in o.out or one per point of `axes` (--grid) in its
// sub-folders. `base` is the configuration common to all runs (mode, model, data, seed); fills
// `res` (its seconds counted from `t_start`).
void run_gradient_modes(const FinetuneOptions& o, const std::vector<GridAxis>& axes, bool text,
                        json base, std::chrono::steady_clock::time_point t_start,
                        FinetuneResult& res);

}  // namespace tlkit::model::finetune_detail

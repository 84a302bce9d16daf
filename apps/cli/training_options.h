// The fine-tuning options that `tlkit finetune` and `tlkit probe` (which fine-tunes through
// run_finetune) share, registered once so their names, checks and help stay the same.
#pragma once

#include <CLI/CLI.hpp>

#include "tlkit/model/finetune.h"

namespace tlkit::cli {

/// --epochs, --batch, --lr, --head-lr-mult, --optimizer, --momentum, --weight-decay, --schedule,
/// --warmup-epochs, --augment, --label-smoothing, --patience.
void add_training_options(CLI::App* cmd, model::FinetuneOptions& o);

/// --device, --threads, --decode-threads.
void add_device_options(CLI::App* cmd, model::FinetuneOptions& o);

}  // namespace tlkit::cli

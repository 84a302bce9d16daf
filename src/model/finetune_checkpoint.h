// Checkpoints of a fine-tuning run (finetune_checkpoint.cpp; docs/finetune.md "Output,
// checkpoints, resume"): checkpoint.pt is rewritten atomically after every epoch and read back by
// a resumed run, which checks that it was written under the same configuration.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "finetune_internal.h"
#include "tlkit/model/finetune.h"

namespace tlkit::model::finetune_detail {

json history_json(const std::vector<EpochRecord>& h);
std::vector<EpochRecord> history_from_json(const json& a);

// The tensors a checkpoint holds: the live backbone state (parameters then buffers, as
// Backbone::state()) and head, and the copies taken at the best epoch.
struct CheckpointTensors {
  std::vector<at::Tensor>& model;
  std::vector<at::Tensor>& head;
  std::vector<at::Tensor>& best_model;
  std::vector<at::Tensor>& best_head;
};

// Reads `ckpt` into the tensors (copied in place), the optimizer, `bad_epochs` and the run's
// record (best epoch, history, ...; resumed). Returns the number of epochs done. Throws
// tlkit::InputError when the file is unreadable or holds a configuration whose hash is not
// `hash` (naming the keys of `hashed` that differ). The file's tensors are mapped to `device`
// as they are read, so a checkpoint written on one device resumes on the other. A checkpoint
// whose configuration records a device (earlier versions hashed it) matches when the rest does.
int load_checkpoint(const std::string& ckpt, const std::string& hash, const json& hashed,
                    CheckpointTensors t, torch::optim::Optimizer& opt, int& bad_epochs,
                    FinetuneRun& run, const torch::Device& device);

// Writes the state after `epochs_done` epochs to `ckpt` atomically (write_file_atomic).
void save_checkpoint(const std::string& ckpt, const std::string& hash, const json& hashed,
                     CheckpointTensors t, const std::vector<std::string>& model_names,
                     const torch::optim::Optimizer& opt, int epochs_done, int bad_epochs,
                     const FinetuneRun& run);

}  // namespace tlkit::model::finetune_detail

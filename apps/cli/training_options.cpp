#include "training_options.h"

namespace tlkit::cli {

void add_training_options(CLI::App* cmd, model::FinetuneOptions& o) {
  cmd->add_option("--epochs", o.epochs, "Training epochs (of every run)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Samples per step")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--lr", o.lr, "Learning rate of the backbone")->capture_default_str();
  cmd->add_option("--head-lr-mult", o.head_lr_mult, "The head's learning rate is lr times this")
      ->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "sgd (with --momentum) or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  cmd->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "Weight decay (all trained parameters)")
      ->capture_default_str();
  cmd->add_option("--schedule", o.schedule,
                  "Learning rate per epoch: cosine to 0, step (x0.1 at 1/2 and 3/4), constant")
      ->check(CLI::IsMember({"cosine", "step", "constant"}))
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", o.warmup_epochs, "Linear warm-up epochs before the schedule")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--augment", o.augment,
                  "Training augmentation of images: flip (horizontal, p=1/2), crop (zero-pad S/8, "
                  "random S x S crop), a comma list, or none (text data: none, a warning when "
                  "another value is given)")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", o.label_smoothing, "Label smoothing of the cross-entropy")
      ->capture_default_str();
  cmd->add_option("--patience", o.patience,
                  "Early stopping after this many epochs without a better val accuracy (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void add_device_options(CLI::App* cmd, model::FinetuneOptions& o) {
  cmd->add_option("--device", o.device,
                  "Where the model runs and is trained: cpu, cuda (device 0) or cuda:N (under "
                  "mpirun, every process uses this device); CUDA needs tlkit built against a CUDA "
                  "LibTorch (docs/gpu-models.md)")
      ->capture_default_str();
  cmd->add_option(
         "--threads", o.threads,
         "LibTorch and BLAS threads (0: the cores not busy with other processes, at least 1; "
         "under mpirun: the cores divided by the processes on the machine)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--decode-threads", o.decode_threads,
                  "Image decoding threads (0: half the cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace tlkit::cli

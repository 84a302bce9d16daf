// The learning-rate schedule and the loss of the fine-tuning loop (docs/finetune.md "Schedule,
// selection, early stopping") as functions of plain numbers, for the loop (finetune_train.cpp)
// and its tests. Without LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tlkit::model::finetune_detail {

// The learning rate of epoch `epoch` (0-based) of `epochs` (E), the first `warmup` (W) of them
// warm-up, for the base rate `base` (finetune_schedule.cpp):
//   warm-up, epoch < W:  base (epoch + 1) / (W + 1);
//   then, with e = epoch - W and n = max(1, E - W):
//   "cosine":   base ½ (1 + cos(π e / n)), from base at e = 0 to base ½ (1 + cos(π (n - 1) / n))
//               > 0 in the last epoch;
//   "step":     base, ×0.1 from e = ⌊n / 2⌋, ×0.01 from e = ⌊3n / 4⌋;
//   "constant": base.
// run_finetune refuses other schedule names; here they are constant.
double scheduled_lr(const std::string& schedule, double base, int epoch, int epochs, int warmup);

// The training loss of a batch: the mean over its n rows of the cross-entropy of the logits
// (row-major n x classes) against the label-smoothed target, 1 - eps on the label plus
// eps / classes on every class (PyTorch's CrossEntropyLoss(label_smoothing = eps)). Computed by
// the LibTorch call of the training loop (finetune_train.cpp), in float32.
double training_loss(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                     std::int64_t classes, double eps);

}  // namespace tlkit::model::finetune_detail

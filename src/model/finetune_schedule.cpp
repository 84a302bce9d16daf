// The learning-rate schedule of the fine-tuning loop (finetune_schedule.h).
#include "finetune_schedule.h"

#include <algorithm>
#include <cmath>

namespace tlkit::model::finetune_detail {

double scheduled_lr(const std::string& schedule, double base, int epoch, int epochs, int warmup) {
  if (epoch < warmup) return base * (epoch + 1) / (warmup + 1);
  const int e = epoch - warmup, n = std::max(1, epochs - warmup);
  if (schedule == "cosine") return base * 0.5 * (1.0 + std::cos(M_PI * e / n));
  if (schedule == "step") return base * (e >= n * 3 / 4 ? 0.01 : e >= n / 2 ? 0.1 : 1.0);
  return base;
}

}  // namespace tlkit::model::finetune_detail

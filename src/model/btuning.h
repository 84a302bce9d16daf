// B-Tuning inside the fine-tuning loop (tlkit/model/btuning.h, docs/btuning.md): the teachers,
// their LogME weights and pi, chosen and fitted once per command and stored in <out>/btuning/,
// and the distillation term added to each training batch's loss.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "finetune_data.h"
#include "finetune_internal.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model::finetune_detail {

// A frozen teacher: its module (eval mode), how it takes images, its LogME weights.
struct Teacher {
  std::string name;
  torch::jit::Module module;
  int input_size = 0;
  int features_output = 0;
  std::vector<float> mean, std;  // the zoo entry's (empty: none)
  at::Tensor weights;            // C x D_t float32, on the training device
};

// What a model with input size `size` and normalisation (t_mean, t_std) is fed for the batch x
// [N,3,S,S] that the student sees (normalised by s_mean/s_std): the student's normalisation
// undone, resized to size x size (bilinear, align_corners false, antialiased when shrinking: as
// torch.nn.functional.interpolate), then normalised by the model's mean/std.
at::Tensor model_input(const at::Tensor& x, const std::vector<float>& s_mean,
                       const std::vector<float>& s_std, int size, const std::vector<float>& t_mean,
                       const std::vector<float>& t_std);

class BTuning {
 public:
  // student_weights: C x D_s float32; pi: one per teacher.
  BTuning(std::vector<Teacher> teachers, std::vector<double> pi, at::Tensor student_weights,
          double tradeoff, std::vector<float> s_mean, std::vector<float> s_std);
  // sum_t pi_t F_t(x) m_t^T [N, C], without gradients (teachers in eval mode).
  at::Tensor target(const at::Tensor& x);
  // tradeoff * MSE(F_s m_s^T, target). `rows`/`count`: the batch's training-set rows, used
  // instead of x when the targets are cached (cache_targets).
  at::Tensor loss(const at::Tensor& student_features, const at::Tensor& x,
                  const std::int64_t* rows = nullptr, std::int64_t count = 0);
  // Without augmentation every epoch shows the same images: computes each training image's
  // target once (batches of `batch` over images [n,3,S,S], normalised as the student's input).
  void cache_targets(const std::vector<float>& images, std::int64_t n, int s, int batch,
                     torch::Device device);
  bool cached() const { return cache_.defined(); }

 private:
  std::vector<Teacher> teachers_;
  std::vector<double> pi_;
  at::Tensor student_weights_;
  double tradeoff_;
  std::vector<float> s_mean_, s_std_;
  at::Tensor cache_;  // [n, C] on the device, or undefined
};

// The zoo models B-Tuning may choose from, after the checks of the options (image student, top:K
// or full, names known and of image models, not the student, K no larger than the zoo): the
// named teachers, or every image model but the student for --teachers-top. Throws
// tlkit::InputError (one line, naming the option and the value). Empty without --teachers.
std::vector<ZooModel> btuning_candidates(const FinetuneOptions& o, bool text);

struct BTuningSetup {
  std::unique_ptr<BTuning> bt;
  json config;  // what the checkpoints' configuration hash covers
  json info;    // scores, pi, chosen teachers, weight shapes and files: for metrics.json
};

// LogME of the student (`student_features`, in eval mode) and of the candidates on the training
// split, the chosen teachers, pi and the weights: read from <out>/btuning/state.json when that was
// written for the same inputs (a resumed run reuses them as they are), else computed and written
// there (weights as float64 .npy files beside it).
BTuningSetup prepare_btuning(const FinetuneOptions& o, const std::vector<ZooModel>& candidates,
                             const Split& train, std::int64_t classes,
                             const std::function<at::Tensor(const at::Tensor&)>& student_features,
                             torch::Device device);

}  // namespace tlkit::model::finetune_detail

// The fine-tuned model as one TorchScript file (finetune_export.cpp; docs/finetune.md "The
// fine-tuned model"): model.pt in a run's folder, the backbone and the trained head in the tlkit
// model contract, runnable by torch.jit.load in Python and by tlkit extract/rank/predict.
#pragma once

#include <string>
#include <vector>

#include "tlkit/core/linear_probe.h"

namespace at {
class Tensor;
}
namespace torch::jit {
struct Module;
}

namespace tlkit::model::finetune_detail {

// What model.pt holds besides the backbone.
struct ExportSpec {
  int features_output = 0;               // the backbone's output holding the features
  bool text = false;                     // forward(texts: List[str]) instead of forward(x)
  std::vector<float> mean, std;          // normalisation applied inside (images; empty: none)
  std::vector<std::string> class_names;  // names of the logits' columns (may be empty)
  int input_size = 0;                    // S of the images it was trained on (0: text)
};

// Saves a module whose forward(x) (x [N,3,S,S] RGB in [0,1]; texts: List[str]) normalises x by
// mean/std, runs a copy of `backbone` (moved to the CPU, eval mode, no gradients), takes its
// output `features_output` flattened to [N, D] as the features and returns (features,
// features @ weight^T + bias). weight [C, D] and bias [C] are copied to float32 parameters
// head_weight and head_bias; the module has the attributes class_names (List[str]) and input_size
// (int). Written atomically (a temporary file, then a rename).
void save_finetuned_model(const torch::jit::Module& backbone, const at::Tensor& weight,
                          const at::Tensor& bias, const ExportSpec& spec, const std::string& path);

// The same for --mode linear: the backbone is the TorchScript file `model_path` as it is, the head
// the fitted logistic regression (weights classes x dim, bias classes). Without LibTorch types, for
// finetune.cpp.
void save_linear_model(const std::string& model_path, const LogisticModel& head,
                       const ExportSpec& spec, const std::string& path);

}  // namespace tlkit::model::finetune_detail

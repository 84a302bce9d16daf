// A TorchScript image or text model run for features, behind a header without LibTorch.
//
// The model contract (the kit's, docs/extract.md): forward(x) with x float32 [N, 3, S, S], RGB in
// [0, 1], the model's own normalisation inside it (image models), or forward(texts: List[str])
// with the tokenizer inside (text models); it returns a tuple (features, logits, ...) or a
// single tensor (features). Each output used must be a floating-point tensor whose first dimension
// is N; further dimensions are flattened ([N, D, 1, 1] -> [N, D]), as the Python tool does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tlkit/model/device.h"

namespace tlkit::model {

/// ModelOptions::logits_output: index 1 when forward returns a tuple of 2 or more, else none.
inline constexpr int kAutoOutput = -2;
/// ModelOptions::logits_output: no logits.
inline constexpr int kNoOutput = -1;

/// What is done to a model after loading it.
enum class Optimization {
  kNone,    ///< run the module as loaded
  kFreeze,  ///< torch::jit::freeze (parameters become constants, conv-BN folded)
  kFull,    ///< freeze + torch::jit::optimize_for_inference (oneDNN convolutions, fusions)
};
const char* to_string(Optimization o);
/// "none", "freeze" or "full"; throws tlkit::InputError otherwise.
Optimization parse_optimization(const std::string& s);

/// The arithmetic of forward.
enum class Precision {
  kFp32,  ///< float32 throughout (the default)
  kBf16,  ///< under LibTorch's autocast to bfloat16 for the model's device (CPU or CUDA:
          ///< convolutions and matrix products in bfloat16, outputs cast back to float32): on the
          ///< CPU 1.5-3x faster on processors with AVX-512 BF16/AMX, features 0.8-21 % off in
          ///< relative Frobenius norm on the kit's models (docs/extract.md). With
          ///< Optimization::kFull the model runs frozen instead, with a note:
          ///< optimize_for_inference's oneDNN operators are outside autocast
  kAuto,  ///< the first batch runs both; bfloat16 for the rest when its features are within
          ///< ModelOptions::precision_tolerance of float32's, else float32
};
const char* to_string(Precision p);
/// "fp32", "bf16" or "auto"; throws tlkit::InputError otherwise.
Precision parse_precision(const std::string& s);
/// Default ModelOptions::precision_tolerance: the largest relative feature error
/// ||f_bf16 - f_fp32||_F / ||f_fp32||_F that Precision::kAuto accepts.
inline constexpr double kDefaultPrecisionTolerance = 0.02;

/// What Precision::kAuto measured on the first batch.
struct PrecisionCheck {
  bool measured = false;        ///< false until the first batch under kAuto
  double relative_error = 0.0;  ///< ||f_bf16 - f_fp32||_F / ||f_fp32||_F over the batch
  double min_cosine = 0.0;      ///< the smallest cosine similarity of a row pair
  double tolerance = 0.0;       ///< ModelOptions::precision_tolerance
  Precision chosen = Precision::kFp32;
};

struct ModelOptions {
  int features_output = 0;          ///< tuple element holding the features (0 for one tensor)
  int logits_output = kAutoOutput;  ///< tuple element holding the logits, kAutoOutput, kNoOutput
  /// kFreeze (the default) is trusted: it changes results by float32 rounding only. LibTorch
  /// 1.13's optimize_for_inference gives wrong features for some models, so with kFull the first
  /// batch of each input shape runs both the optimised module and the module as loaded; when
  /// their outputs differ (beyond float32 rounding) or the optimised one fails, it falls back to
  /// kFreeze (compared the same way) and then kNone, with a note. kFull pays off for
  /// ResNet-style models and is slower for depthwise-convolution ones (docs/extract.md).
  Optimization optimization = Optimization::kFreeze;
  /// Run convolutions in channels-last (NHWC) memory format: the module's 4-d parameters and
  /// buffers and every input batch are converted. Same results to float32 rounding; 1.05-1.6x
  /// faster end to end on the kit's CNNs measured on 2 cores (docs/extract.md). Off here (the
  /// model as stored, as fine-tuning runs it); tlkit extract, rank and predict turn it on unless
  /// given --no-channels-last.
  bool channels_last = false;
  Precision precision = Precision::kFp32;
  /// For Precision::kAuto: the largest relative feature error accepted for bfloat16 (>= 0).
  double precision_tolerance = kDefaultPrecisionTolerance;
  /// Where forward runs. The model is loaded onto it (map_location), each batch is copied there
  /// (asynchronously from a pinned HostBuffer) and the outputs are copied back as float32.
  /// Checked at construction (check_device): a CUDA device this LibTorch cannot use is an
  /// InputError. On CUDA, channels_last and precision apply there (CUDA autocast).
  Device device = {};
};

/// What a model file says about itself in the extra file `tlkit.json` stored inside the
/// TorchScript archive (torch.jit.save(..., _extra_files={"tlkit.json": ...}); written by
/// tools/export_torchvision.py and tlkit finetune): {"input_size": S, "feature_dim": D,
/// "logits_dim": C}, each optional. 0 where not stated.
struct ModelRecord {
  int input_size = 0;
  std::int64_t feature_dim = 0;
  std::int64_t logits_dim = 0;
};

/// One batch's outputs, row-major float32.
struct ModelOutputs {
  std::int64_t n = 0;
  std::int64_t features_dim = 0;
  std::vector<float> features;  ///< n x features_dim
  bool has_logits = false;
  std::int64_t logits_dim = 0;
  std::vector<float> logits;  ///< n x logits_dim
};

class TorchScriptModel {
 public:
  /// Loads `path` onto options.device in eval mode. Throws tlkit::InputError naming the file when
  /// it does not exist or is not a TorchScript archive (saying how to export one when it is a
  /// torch.save file: a state_dict or a pickled module), when its tlkit.json is malformed, or when
  /// an output index is negative.
  TorchScriptModel(const std::string& path, const ModelOptions& options = {});
  ~TorchScriptModel();
  TorchScriptModel(TorchScriptModel&&) noexcept;
  TorchScriptModel& operator=(TorchScriptModel&&) noexcept;

  /// Runs forward without autograd on `n` contiguous [3, height, width] float32 images (on a CUDA
  /// device: copied there, asynchronously when `nchw` is in a pinned HostBuffer; the memory may be
  /// reused once forward returns). Throws tlkit::InputError naming the model when forward fails or
  /// breaks the contract (an output index out of range, a non-tensor or non-float output, a first
  /// dimension other than n); std::runtime_error when memory runs out.
  ModelOutputs forward(const float* nchw, std::int64_t n, int height, int width);

  /// Runs forward(List[str]) without autograd on a batch of texts (text models: the tokenizer is
  /// inside the module). Same contract checks as forward(). CPU only: on a CUDA device it throws
  /// tlkit::InputError (the module builds its input tensors on the CPU).
  ModelOutputs forward_texts(const std::vector<std::string>& texts);

  const std::string& path() const;
  const ModelOptions& options() const;
  /// The file's tlkit.json (zeros when it has none).
  const ModelRecord& record() const;
  /// What forward runs now: the optimisation asked for, or less after a fallback.
  Optimization optimization() const;
  /// What forward runs now: kFp32 or kBf16 (kAuto until the first batch decides).
  Precision precision() const;
  /// The first batch's comparison under Precision::kAuto (measured == false otherwise).
  const PrecisionCheck& precision_check() const;
  /// Warnings for people: an optimisation that failed or disagreed with the model as loaded
  /// (and what was run instead), a single output that looks like a classifier's logits rather
  /// than features, LibTorch's own warnings (collected, not printed).
  std::vector<std::string> notes() const;
  double load_seconds() const;
  double optimize_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tlkit::model

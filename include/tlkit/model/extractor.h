// Feature extraction: a TorchScript image model over a labelled image dataset, decoding on a pool
// of threads while the model runs, and the output directory `tlkit extract` writes
// (docs/extract.md): features.npy, logits.npy, labels.npy (targets.npy for regression and
// multi-label targets), files.txt, meta.json (written last, so a directory with meta.json is
// complete).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tlkit/model/image_dataset.h"
#include "tlkit/model/torchscript_model.h"

namespace tlkit::model {

class DecodedImageCache;  // tlkit/model/decoded_images.h

enum class BadImagePolicy { kFail, kSkip };
/// "fail" or "skip"; throws tlkit::InputError otherwise.
BadImagePolicy parse_bad_image_policy(const std::string& s);

struct ExtractOptions {
  std::string model;  ///< TorchScript file
  std::string data;   ///< folder of class sub-folders, or a path,label CSV
  std::string split;  ///< sub-folder of `data` holding the class folders (empty: none)
  /// Regression or multi-label: `data` is a CSV listing with target columns (text_dataset.h
  /// list_dataset), and targets.npy (N x T float64) is written instead of labels.npy.
  Task task = Task::kClassification;
  /// S: images are resized and cropped to S x S. 0: the size the model records (its tlkit.json)
  /// or `expected.input_size`; required for image data when neither gives one.
  int input_size = 0;
  /// What the caller knows of the model (tlkit rank: its zoo.json entry), checked like the
  /// model's own tlkit.json (which it overrides): an input_size other than `input_size`, or
  /// outputs of another width, are refused. `expected_source` names it in messages.
  ModelRecord expected;
  std::string expected_source;
  int batch = 32;
  int threads = 0;         ///< LibTorch intra-op and BLAS threads (0: idle_cores())
  int decode_threads = 0;  ///< image decoding threads (0: half the cores, at least 1; for a
                           ///< CUDA model_options.device all cores but one)
  SubsampleOptions sample;
  BadImagePolicy on_bad_image = BadImagePolicy::kFail;
  ModelOptions model_options;
  /// Per-channel normalisation after scaling to [0, 1]: x = (x - mean[c]) / std[c]. Empty (the
  /// kit's contract): none, the model normalises inside. Both 3 values (R, G, B) otherwise.
  std::vector<float> mean, std;
  /// Polled before each batch; when it returns true, extraction throws tlkit::Interrupted (the
  /// CLI sets it from SIGINT/SIGTERM so that nothing half-written is left).
  std::function<bool()> cancelled;
  /// Recorded in meta.json as "cache_key" when not empty (tlkit rank's feature cache, rank.h).
  std::string cache_key;
  /// SHA-256 (hex) of the model file when the caller has it already (tlkit rank hashes it for
  /// the cache key); empty: meta.json's hash is computed from the file.
  std::string model_sha256;
  /// Called on the calling thread after each batch with (images done, images in all).
  std::function<void(std::int64_t, std::int64_t)> progress;
  /// Decoded images shared with other models of the same run (null: each image is decoded
  /// here). The features are the same either way.
  std::shared_ptr<DecodedImageCache> decoded_images;
};

struct SkippedImage {
  std::string path;
  std::string reason;  ///< the decoder's message, naming the path
};

struct ExtractTimings {
  double list_s = 0;        ///< listing and subsampling the dataset
  double load_model_s = 0;  ///< torch::jit::load
  double optimize_s = 0;    ///< freeze / optimize_for_inference
  double extract_s = 0;     ///< decoding + inference, wall clock
  double inference_s = 0;   ///< in forward
  double decode_s = 0;      ///< reading and decoding files (or taking them from decoded_images),
                            ///< summed over the decode threads
  double resize_s = 0;      ///< resizing, cropping and scaling, summed over the decode threads
  double wait_s = 0;        ///< the model waiting for decoded images
};

struct ExtractResult {
  ImageListing listing;              ///< after subsampling; listing.samples are the images tried
  std::int64_t listed = 0;           ///< images before subsampling
  std::vector<ImageSample> samples;  ///< the rows of the outputs (listing minus skipped)
  std::vector<SkippedImage> skipped;
  std::int64_t n = 0;
  std::int64_t features_dim = 0;
  std::vector<float> features;  ///< n x features_dim, row-major
  bool has_logits = false;
  std::int64_t logits_dim = 0;
  std::vector<float> logits;  ///< n x logits_dim
  std::vector<std::int64_t> labels;
  std::int64_t nonfinite_features = 0;              ///< NaN/inf values in the features (a warning)
  Optimization optimization = Optimization::kNone;  ///< what the model ran with at the end
  std::vector<std::string> model_notes;             ///< TorchScriptModel::notes()
  Precision precision = Precision::kFp32;           ///< what the model ran with at the end
  PrecisionCheck precision_check;                   ///< TorchScriptModel::precision_check()
  int input_size = 0;  ///< S used (images): ExtractOptions::input_size or the model's record
  std::vector<std::string> size_notes;  ///< part of model_notes: output widths vs input size
  int threads = 0;
  int decode_threads = 0;
  ExtractTimings timings;
  double images_per_second = 0;  ///< images / extract_s
};

/// Lists options.data (images or text, text_dataset.h list_dataset; subsampled), loads
/// options.model and extracts.
ExtractResult extract_features(const ExtractOptions& options);

/// Extracts with a loaded model over a listing (for many models over one dataset): images
/// through forward(x), text listings through forward(List[str]). Uses options' input_size, mean,
/// std, batch, threads, decode_threads, on_bad_image, progress and cancelled.
ExtractResult extract_features(const ImageListing& listing, TorchScriptModel& model,
                               const ExtractOptions& options);

/// The preprocessing that turns samples of `listing` into model inputs under `options`, as a JSON
/// object (text): written to meta.json and part of feature-cache keys (tlkit rank).
std::string preprocessing_description(const ImageListing& listing, const ExtractOptions& options);

/// "tlkit-features/<model file name without extension>".
std::string default_output_dir(const std::string& model_path);

/// Writes the outputs of `result` into `dir` (created if needed), each file atomically: first
/// removes a previous meta.json, then writes features.npy, logits.npy (or removes a stale one),
/// labels.npy or targets.npy (removing the other), files.txt, and meta.json last.
void write_extract_outputs(const ExtractResult& result, const ExtractOptions& options,
                           const std::string& dir);

}  // namespace tlkit::model

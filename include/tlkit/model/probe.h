// `tlkit probe` (docs/probe.md): explaining transferability block by block, after
//   A. Tamkin, T. Singh, D. Giovanardi, N. Goodman, "Investigating Transferability in Pretrained
//   Language Models", Findings of EMNLP 2020.
// Analyses (each over training-set sizes and seeds):
//   * layers: the features after each block (global-average-pooled to one vector per image), scored
//     with transferability metrics (LogME, ...) and a linear probe (tlkit/core/linear_probe.h);
//   * reinit: keep blocks < k pretrained, re-initialise blocks >= k, fine-tune everything, for
//     k = 0 (from scratch) .. B (the pretrained model);
//   * block-reinit: re-initialise a window of consecutive blocks only, and the inverse (only the
//     window pretrained);
//   * reorder: permute shape-compatible blocks (equal parameter shapes), fine-tune.
// Blocks are those of tlkit finetune (finetune.h: kit cifar10_resnet20 has 11: conv1, bn1,
// blocks.0 .. blocks.8). Fine-tuning is run_finetune in mode full with the block surgery of
// FinetuneOptions (reinit_blocks, block_order), so its checkpoints make a rerun resume.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tlkit/model/device.h"
#include "tlkit/model/finetune.h"

namespace tlkit::model {

/// "layers", "reinit", "block-reinit", "reorder", a comma list of them, or "all" -> the analyses in
/// that canonical order. Throws tlkit::InputError naming --analysis otherwise.
std::vector<std::string> parse_analyses(const std::string& s);

/// "500,5000,all" -> {500, 5000, 0} (0: all training images); sizes >= 1, no repeats. Throws
/// tlkit::InputError naming --sizes otherwise.
std::vector<std::int64_t> parse_sizes(const std::string& s);

/// Per-layer features of one batch: layer 0 is the input (its channel means), then one layer per
/// block of the model in forward order, each [N, D_l] (4-D maps averaged over H and W, 3-D
/// [N, T, C] over T).
struct LayerFeatures {
  std::vector<std::string> names;          ///< "input", then the block names
  std::vector<std::vector<float>> values;  ///< per layer, N x D_l row-major
  std::vector<std::int64_t> dims;
  std::int64_t n = 0;
};

/// Runs a TorchScript image model layer by layer. Two kinds of model can be split:
///   * scripted models whose forward calls parameterised children and then one Sequential of
///     blocks (kit cifar10_resnet*): the children before the Sequential run as forward's own graph
///     (the graph is cut there, so the operations forward applies between them, such as the ReLU
///     after bn1, are kept; a child's layer is the value the next child or the Sequential
///     receives), then the Sequential's children one by one;
///   * models whose forward returns, among its outputs, a list of per-layer feature tensors.
/// Anything else (the traced kit models) is refused with a tlkit::InputError.
/// The model runs on `device` (loaded there; the layers' pooled features come back as float32).
class LayerRunner {
 public:
  LayerRunner(const std::string& model_path, int features_output = 0,
              const Device& device = Device());
  ~LayerRunner();
  LayerRunner(const LayerRunner&) = delete;
  LayerRunner& operator=(const LayerRunner&) = delete;

  /// x: n x 3 x s x s float32 in [0, 1] (image_dataset.h's preprocessing).
  LayerFeatures run(const float* x, std::int64_t n, int s);
  /// The model's own features output for the same input (forward, output features_output).
  std::vector<float> model_features(const float* x, std::int64_t n, int s);
  /// "graph" (split at the Sequential) or "list" (forward returns per-layer features).
  std::string kind() const;

 private:
  struct Impl;
  Impl* impl_;
};

/// A random permutation of 0..B-1 that moves blocks only among blocks with equal parameter
/// shapes (shapes: block_parameter_shapes), drawn from `seed`; it differs from the identity when
/// some shape class has two or more blocks.
std::vector<int> random_block_order(
    const std::vector<std::vector<std::vector<std::int64_t>>>& shapes, std::uint64_t seed);
/// p^-1: inverse[p[i]] = i.
std::vector<int> invert_permutation(const std::vector<int>& p);

struct ProbeOptions {
  std::string model;
  std::string data;         ///< folder of class sub-folders (or split folders), or a CSV
  std::string split_train;  ///< the training pool (sizes draw from it)
  std::string split_val;    ///< empty: carve val_fraction of the pool per class
  std::string split_test;   ///< empty: carve test_fraction of the pool per class
  double val_fraction = 0.1;
  double test_fraction = 0.0;
  std::int64_t eval_per_class = 0;  ///< at most this many val and test images per class (0: all)
  int input_size = 0;
  int features_output = 0;
  std::vector<std::string> analyses;  ///< parse_analyses
  std::vector<std::int64_t> sizes;    ///< training images (0: all), drawn class-balanced
  int seeds = 3;                      ///< seeds 0 .. seeds-1 (data subset, init, fine-tuning)
  int block = 3;                      ///< window of block-reinit
  std::string init = "default";       ///< default or trunc-normal (FinetuneOptions::reinit_init)
  std::string metrics = "logme,hscore,nleep";  ///< per-layer scores (core metric registry)
  std::vector<double> cs;                      ///< C grid of the linear probe (empty: default)
  std::string out;
  /// epochs, lr, batch, ... of every fine-tuning run (mode: full); its `device` (cpu, cuda or
  /// cuda:N, parse_device) is also where the layers analysis runs.
  FinetuneOptions finetune;
  /// (phase, done, total, detail) for people.
  std::function<void(const std::string&, std::int64_t, std::int64_t, const std::string&)> progress;
};

struct ProbeResult {
  std::vector<std::string> blocks;  ///< block names (the reinit/reorder units)
  std::int64_t classes = 0;
  std::int64_t val_n = 0, test_n = 0;
  std::int64_t finetune_runs = 0;
  std::vector<std::string> files;  ///< results.json and the SVG plots written
  std::vector<std::string> notes;
  /// With the layers analysis: per size, a text table of each depth's mean linear-probe test
  /// accuracy and metric scores (what `tlkit probe` prints); empty otherwise.
  std::string layers_table;
  double seconds = 0.0;
};

/// Runs the analyses, writes out/results.json and out/*.svg (and out/runs/.../ fine-tuning folders,
/// out/data/ the symlinked splits they read). Throws tlkit::InputError for bad options.
ProbeResult run_probe(const ProbeOptions& options);

}  // namespace tlkit::model

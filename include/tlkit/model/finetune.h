// Fine-tuning a TorchScript image or text model on a labelled dataset (`tlkit finetune`,
// docs/finetune.md), behind a header without LibTorch.
// Image models: forward(x [N,3,S,S] RGB in [0,1], or normalised by mean/std) -> (features, ...).
// Text models: forward(texts: List[str]) -> (features, ...), the tokenizer inside; the data is a
// text file (text_dataset.h), the batches are lists of the samples' texts (no augmentation).
//
// A new linear head (classes from the data) is attached to the model's features:
//   * linear: the backbone stays fixed; features are extracted once (or read from `tlkit extract`
//     folders) and the head is a multinomial logistic regression fit exactly by L-BFGS
//     (tlkit/core/linear_probe.h), its L2 strength C chosen by validation accuracy over a grid;
//   * top:K: the last K blocks of the backbone (block: below) and the head train by SGD/AdamW;
//   * full: every parameter trains.
// Blocks: descending from the root through modules that own no parameters themselves and have a
// single child with parameters (wrappers), the first level with several parameterised children (or
// with parameters of its own) is split into blocks: its children that own parameters, in
// registration order, with Sequential and ModuleList children expanded into their own children
// (a level that has both children and parameters of its own puts its own parameters first, as one
// block). A level that holds all the parameters itself (a traced or converted model without module
// structure, e.g. a ParameterDict) is split by use instead: in the inlined forward graph, in
// execution order, the node that first uses a parameter (shape, dtype and device reads aside)
// groups it with the others it first uses (a convolution's weight and bias). Blocks none of whose
// parameters reach the features (one backward pass on a zero image [2,3,S,S], or on two short
// texts; e.g. the original classifier) are dropped. kit: cifar10_resnet20 has 11 blocks (conv1,
// bn1, blocks.0 .. blocks.8), imagenet_mobilenet_v1_025 27 (its convolutions), the char-RNNs 2
// (emb, lstm), the GloVe bag 1 (emb.weight); docs/finetune.md lists the others. "full" trains all
// blocks.
// BatchNorm: unfrozen blocks run in train mode (their running statistics update), frozen blocks
// in eval mode; evaluation runs everything in eval mode.
// Randomness (head initialisation, data order, augmentation, dropout) is a function of the seed
// and the epoch only, so a resumed run draws what the uninterrupted run drew.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tlkit/core/communicator.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::model {

enum class FinetuneMode { kLinear, kTop, kFull };

struct ModeSpec {
  FinetuneMode mode = FinetuneMode::kTop;
  int top_k = 1;  ///< for kTop
};
/// "linear", "top:K" (K >= 1) or "full"; throws tlkit::InputError otherwise.
ModeSpec parse_mode(const std::string& s);
std::string to_string(const ModeSpec& m);

/// One axis of --grid: a hyper-parameter and its values.
struct GridAxis {
  std::string key;  ///< lr, weight-decay, momentum, head-lr-mult, label-smoothing; c (linear)
  std::vector<double> values;
};
/// "key=v1,v2;key=v3" -> axes in the order given. Throws tlkit::InputError (naming --grid and the
/// bad part) for a missing '=', an empty or non-numeric value, an unknown or repeated key, or a
/// key that does not apply to `mode` (c only for linear; the others not for linear).
std::vector<GridAxis> parse_grid(const std::string& s, FinetuneMode mode);

struct FinetuneOptions {
  std::string model;  ///< TorchScript file (image or text model, see above)
  int features_output = 0;
  /// Images: a folder of class sub-folders (or split sub-folders), or a CSV of path,label.
  /// Text: a text file (label<space>text lines, or a CSV with text,label columns) that is the
  /// training split, or a folder whose split_train names such a file.
  std::string data;
  /// Images: sub-folders of data. Text: files; with a text file as data, split_train stays empty
  /// and split_val/split_test are paths (as given, else next to data); with a folder as data,
  /// every split is a file in it.
  std::string split_train;
  std::string split_val;   ///< empty: carve val_fraction of train per class
  std::string split_test;  ///< empty: carve test_fraction of train per class
  double test_fraction = 0.0;
  double val_fraction = 0.1;
  std::int64_t per_class = 0;  ///< subsampling of each listed split (image_dataset.h)
  std::int64_t limit = 0;
  std::string features_dir;       ///< linear only: a `tlkit extract` folder used as train
  std::string features_val_dir;   ///< linear only: extract folder used as val
  std::string features_test_dir;  ///< linear only: extract folder used as test
  int input_size = 0;             ///< image models only (required there)
  /// Image models only: per-channel (R, G, B) normalisation after scaling to [0, 1],
  /// x -> (x - mean) / std (`tlkit extract`'s --mean/--std); both empty (none) or 3 values each.
  std::vector<float> mean, std;
  ModeSpec mode;
  int epochs = 10;
  int batch = 32;
  double lr = 0.01;
  double head_lr_mult = 10.0;
  std::string optimizer = "sgd";  ///< sgd or adamw
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::string schedule = "cosine";  ///< cosine, step or constant
  int warmup_epochs = 0;
  /// Comma list of flip, crop; "none" or empty: none. Text data: no augmentation (a note when
  /// this names anything but the default or none).
  std::string augment = "flip,crop";
  double label_smoothing = 0.0;
  int patience = 3;        ///< early stopping: epochs without a better val accuracy (0: never)
  std::vector<double> cs;  ///< linear: the C grid (empty: default_linear_probe_cs())
  std::uint64_t seed = 0;
  std::string grid;     ///< --grid text (empty: one run)
  std::string out;      ///< output folder
  bool resume = false;  ///< require a checkpoint to continue from
  int stop_after = 0;   ///< stop after this many epochs in this invocation (0: no limit)
  std::string device = "cpu";
  int threads = 0;         ///< LibTorch intra-op and BLAS threads (0: idle_cores())
  int decode_threads = 0;  ///< image decoding threads (0: half the cores)
  /// (phase, done, total, suffix) on the calling thread: decoding, each epoch's batches.
  std::function<void(const std::string&, std::int64_t, std::int64_t, const std::string&)> progress;
  /// Polled between batches (decoding, extraction, training steps): once it returns true, the run
  /// throws tlkit::Interrupted, leaving the last complete checkpoint (written at each epoch's end,
  /// atomically) to resume from.
  std::function<bool()> cancelled;
  // Block surgery before training (tlkit probe, docs/probe.md; Tamkin et al. 2020), applied to
  // the backbone's blocks (numbered 0.. as list_blocks lists them) right after the model is
  // loaded, so that checkpoints, grids and early stopping see the edited model; part of the
  // configuration hash. The permutation is applied first, then the re-initialisation.
  /// Blocks whose parameters are re-initialised (and the BatchNorm running statistics of the
  /// modules whose parameters all lie in them reset to mean 0, variance 1). Other parameters and
  /// buffers stay bit-identical.
  std::vector<int> reinit_blocks;
  /// "default": PyTorch's initialisers by module type (Conv*/Linear: weight and bias
  /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e. kaiming_uniform(a=sqrt(5)); *Norm: weight 1, bias
  /// 0; Embedding: N(0, 1)); parameters of other modules: >= 2-D like a convolution's weight, 1-D
  /// named *bias* 0, other 1-D 1. "trunc-normal": weights N(0, 0.02^2) truncated at 2 sigma (the
  /// paper's BERT initialiser), biases 0, norm weights 1. Seeded by `seed`.
  std::string reinit_init = "default";
  /// Empty, or a permutation of 0..B-1: block i takes the parameters (and the buffers of its
  /// modules) of block block_order[i]; the two must have the same list of parameter shapes.
  std::vector<int> block_order;
  /// The processes of this command (docs/scaling.md); null: one process (single_process()).
  /// With several, the points of `grid` are shared among them (each point trained whole by one
  /// process, in its own sub-folder; every process gets all the runs, and rank 0 writes the
  /// grid's metrics.json and model.pt), or, with data_parallel, every run is trained by all of
  /// them together. --mode linear and a run without a grid or data_parallel are refused there.
  Communicator* comm = nullptr;
  /// Each process takes its share of every batch (rows row_range(batch, rank, size): the same
  /// global batch, order, augmentation and seed as one process) and the gradients are summed
  /// over the processes with weights share / batch after the backward pass, so the step is the
  /// one-process step up to rounding, except that BatchNorm layers in train mode normalise with
  /// each process's share (no synchronised batch norm; their running statistics are averaged over
  /// the processes at each epoch's end). Validation and test rows are split too. Rank 0 alone
  /// writes checkpoints, metrics.json and model.pt. Requires batch >= the processes.
  bool data_parallel = false;
  // B-Tuning (tlkit/model/btuning.h, docs/btuning.md): image models, top:K or full only.
  std::string teachers_zoo;                ///< zoo manifest of the teachers (empty: plain)
  std::vector<std::string> teacher_names;  ///< the teachers by name (empty: the top teachers_top)
  int teachers_top = 0;                    ///< K best teachers by LogME (0: 3, or teacher_names)
  double btuning_tradeoff = 100.0;         ///< weight of the distillation term
  double btuning_temperature = 0.1;        ///< pi = softmax(LogME / temperature)
};

struct EpochRecord {
  int epoch = 0;  ///< 1-based
  double lr = 0.0;
  double train_loss = 0.0;
  double train_acc = 0.0;
  double val_acc = 0.0;
  double seconds = 0.0;
};

struct FinetuneRun {
  std::string out;                      ///< the folder holding its checkpoint and metrics.json
  std::map<std::string, double> point;  ///< grid values of this run (empty without --grid)
  std::vector<EpochRecord> history;
  int best_epoch = 0;
  double best_val_acc = 0.0;
  double test_acc = -1.0;  ///< of the best epoch; -1 until the run has finished
  bool finished = false;   ///< all epochs run or stopped early (not interrupted by stop_after)
  bool early_stopped = false;
  /// The training loss became NaN or infinite: training stopped at that epoch (early_stopped
  /// is set too), and the best epoch before it is the result (none: best_epoch 0).
  bool diverged = false;
  bool resumed = false;  ///< continued from a checkpoint
  int resumed_from_epoch = 0;
};

struct BlockInfo {
  std::string name;  ///< module path, e.g. "blocks.8"; "(own parameters)" for a flat module
  std::string type;  ///< module class name
  std::int64_t parameters = 0;
};

struct FinetuneResult {
  ModeSpec mode;
  std::int64_t classes = 0;
  std::vector<std::string> class_names;
  std::int64_t train_n = 0, val_n = 0, test_n = 0;
  std::int64_t features_dim = 0;
  std::vector<BlockInfo> blocks;          ///< of the backbone (not for linear from --features)
  std::vector<std::string> trainable;     ///< names of the blocks that train
  std::int64_t trainable_parameters = 0;  ///< in the backbone plus the head
  std::vector<FinetuneRun> runs;          ///< one per grid point (one without --grid)
  std::size_t best_run = 0;               ///< highest best_val_acc, first on ties
  std::vector<std::string> notes;
  double seconds = 0.0;
  /// The fine-tuned model (backbone and head, normalisation inside) as one TorchScript file,
  /// out/model.pt (of the best grid point); empty when none was written (an unfinished run, or
  /// --features without --model).
  std::string model_file;
};

/// Runs `tlkit finetune`: writes options.out/metrics.json and model.pt (and per grid point a
/// sub-folder with checkpoint.pt, metrics.json and model.pt). model.pt: forward(x [N,3,S,S] RGB in
/// [0,1], or texts) -> (features, logits), --mean/--std applied inside, the attributes
/// class_names (List[str]) and input_size (int). Throws tlkit::InputError for bad options or data.
FinetuneResult run_finetune(const FinetuneOptions& options);

/// The blocks of a TorchScript model by the definition above (input_size: S of the probe pass of
/// an image model; unused for a text model, whose forward takes List[str]).
std::vector<BlockInfo> list_blocks(const std::string& model_path, int input_size,
                                   int features_output = 0);

/// The backbone parameters ("name" -> float32 values) of a TorchScript model file, or of the last
/// epoch's state in a checkpoint.pt written by run_finetune (for tests and inspection); with
/// `buffers`, the buffers too (BatchNorm statistics), as "buffer:<name>".
std::map<std::string, std::vector<float>> model_parameters(const std::string& model_path,
                                                           bool buffers = false);
std::map<std::string, std::vector<float>> checkpoint_parameters(const std::string& checkpoint,
                                                                bool buffers = false);

/// The parameter shapes of each block of a TorchScript model (list_blocks' order): blocks with
/// equal lists can trade places (FinetuneOptions::block_order).
std::vector<std::vector<std::vector<std::int64_t>>> block_parameter_shapes(
    const std::string& model_path, int input_size, int features_output = 0);

/// Applies options' block surgery (block_order, reinit_blocks, reinit_init, seed) to
/// options.model and saves the edited TorchScript module to `out_path` (what run_finetune starts
/// training from). Throws tlkit::InputError naming the option for a bad index or permutation.
void save_edited_model(const FinetuneOptions& options, const std::string& out_path);

}  // namespace tlkit::model

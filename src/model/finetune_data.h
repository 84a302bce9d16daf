// Fine-tuning data (finetune_data.cpp): the train/val/test splits of an image folder or text file,
// their decoded images, augmentation, and the feature splits of --mode linear. Without LibTorch.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tlkit/core/linear_probe.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::model {
class TorchScriptModel;
}

namespace tlkit::model::finetune_detail {

struct Split {
  std::vector<ImageSample> samples;
  std::vector<float> images;  // n x 3 x S x S, preprocessed (image_dataset.h); empty for text
  std::int64_t n() const { return static_cast<std::int64_t>(samples.size()); }
};

struct Splits {
  std::vector<std::string> classes;
  Split train, val, test;
};

// Text data (finetune.h): --data a text file, or a folder whose --split-train is a text file.
bool is_text_data(const FinetuneOptions& o);

// The three splits: --split-* as given, else carved from the training split (sampling.h carve).
// Throws tlkit::InputError for differing classes, negative labels, an empty val or test split, or
// fewer than 2 training classes.
Splits make_splits(const FinetuneOptions& o);

// The number of classes: the class names, or 1 + the largest label when that is more.
std::int64_t num_classes(const Splits& s);

// Decodes the split's images at S = size on `threads` threads, normalised by --mean/--std.
void decode_split(Split& split, int size, int threads, const FinetuneOptions& o,
                  const std::string& phase);

// Random horizontal flip (p = 1/2) and random crop: the S x S image zero-padded by S/8 pixels
// on each side (4 at S = 32, the CIFAR recipe) and an S x S window taken at a uniform offset.
void augment_image(float* chw, int s, bool flip, bool crop, std::mt19937_64& rng,
                   std::vector<float>& tmp);

// Linear probe data: features of the three splits.
struct FeatureSplits {
  LabelledRows train, val, test;
  std::int64_t d = 0;
  std::int64_t classes = 0;
  std::vector<std::string> class_names;
};

// Reads a `tlkit extract` folder's features.npy and labels.npy (and files.txt into `names`).
void read_extract_dir(const std::string& dir, LabelledRows& rows, std::int64_t& d,
                      std::vector<std::string>* names);

// Moves the rows of `from` selected by carve() on pseudo-samples (one per row, its label).
LabelledRows carve_rows(LabelledRows& from, std::int64_t d, double fraction, std::uint64_t seed);

// The features of `samples` by `model` (extract_features), with progress under `phase`.
LabelledRows extract_rows(TorchScriptModel& model, const std::vector<ImageSample>& samples,
                          const FinetuneOptions& o, bool text, std::int64_t& d,
                          const std::string& phase);

}  // namespace tlkit::model::finetune_detail

// Predictions of a classifier in the tlkit model contract over a labelled dataset (`tlkit
// predict`, docs/predict.md), behind a header without LibTorch: the model runs through the
// extraction path (extractor.h: the same listing, preprocessing, batching and threads as `tlkit
// extract`), its logits become softmax probabilities, and each row keeps its top-K classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tlkit/model/extractor.h"

namespace tlkit::model {

struct PredictOptions {
  /// model, data, split, input_size (0: the model's input_size attribute, as tlkit finetune's
  /// model.pt stores it), batch, threads, subsampling, model outputs. logits_output kAutoOutput:
  /// output 1 for a model with a class_names attribute (tlkit finetune's model.pt, text models
  /// too), else extract's rule.
  ExtractOptions extract;
  /// Classes kept per row; 0: min(5, classes). More than the model's classes is an error.
  int top_k = 0;
};

struct PredictResult {
  /// Names of the logits' columns: the model's class_names attribute when it has one of the right
  /// length, else empty (columns are named by their index).
  std::vector<std::string> class_names;
  std::int64_t classes = 0;  ///< logits per row
  int top_k = 0;
  ExtractResult extract;  ///< the rows (extract.samples), their logits, timings, skipped images
  std::vector<std::int64_t> top;  ///< n x top_k class indices, most probable first
  std::vector<double> prob;       ///< n x top_k softmax probabilities, in the same order
  /// Per row, the data's label as a column of the logits (-1: the model has no such class): by
  /// name when both the model and the data name their classes, else the label's integer value.
  std::vector<std::int64_t> target;
  std::int64_t scored = 0;         ///< rows with target >= 0
  double accuracy = -1.0;          ///< top-1 accuracy in % over the scored rows (-1: none)
  double top_k_accuracy = -1.0;    ///< the label among the top K, in % (-1: none)
  std::vector<std::string> notes;  ///< warnings for people (labels the model does not know)

  /// The name of logits column `c` (its index as text without class names).
  std::string class_name(std::int64_t c) const;
  /// The data's label of row `i` as text (its class name, or the integer label).
  std::string label_name(std::size_t i) const;
};

/// Runs the model over the data. Throws tlkit::InputError naming the model for a model without
/// logits and naming --top-k for a K larger than its classes (and extract's errors).
PredictResult predict(const PredictOptions& options);

/// The predictions as CSV text: a header file,label,class_1,prob_1,...,class_K,prob_K and one
/// row per image (prob with 6 decimals); fields with a comma or a quote are quoted.
std::string predictions_csv(const PredictResult& result);

}  // namespace tlkit::model

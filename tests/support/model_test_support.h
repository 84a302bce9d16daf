// Helpers shared by the LibTorch-based model tests (tests/model).
#pragma once

#include <string>
#include <utility>

#include "test_support.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/finetune.h"

namespace tlkit::test {

/// Extracts `model`'s features of the toy dataset's train and test splits (tests/data/model/toy,
/// S = 8, one thread) into t/train and t/test, as `tlkit extract` writes them, and returns both.
inline std::pair<model::ExtractResult, model::ExtractResult> extract_toy_splits(
    const TempDir& t, const std::string& model_file) {
  model::ExtractOptions eo;
  eo.model = model_file;
  eo.data = data_path("model/toy");
  eo.input_size = 8;
  eo.threads = 1;
  eo.decode_threads = 1;
  eo.split = "train";
  model::ExtractResult tr = model::extract_features(eo);
  model::write_extract_outputs(tr, eo, t.file("train"));
  eo.split = "test";
  model::ExtractResult te = model::extract_features(eo);
  model::write_extract_outputs(te, eo, t.file("test"));
  return {std::move(tr), std::move(te)};
}

/// Fine-tuning options for the toy dataset (tests/data/model/toy, S = 8) on
/// tests/data/model/models/trainable.pt: 3 of the 12 training images per class for validation,
/// batch 4, lr 0.05, one thread, seed 7, no early stopping.
inline model::FinetuneOptions toy_finetune_options(const std::string& out, const std::string& mode,
                                                   int epochs) {
  model::FinetuneOptions o;
  o.model = data_path("model/models/trainable.pt");
  o.data = data_path("model/toy");
  o.split_train = "train";
  o.split_test = "test";
  o.val_fraction = 0.25;
  o.input_size = 8;
  o.mode = model::parse_mode(mode);
  o.epochs = epochs;
  o.batch = 4;
  o.lr = 0.05;
  o.patience = 0;
  o.threads = 1;
  o.decode_threads = 1;
  o.seed = 7;
  o.out = out;
  return o;
}

/// Fine-tuning options for the text fixture: tests/data/model/text/trec12.txt as train, val and
/// test (no carving, so no split draw) on tests/data/model/models/text_bag.pt.
inline model::FinetuneOptions text_toy_finetune_options(const std::string& out,
                                                        const std::string& mode) {
  model::FinetuneOptions o;
  o.model = data_path("model/models/text_bag.pt");
  o.data = data_path("model/text/trec12.txt");
  o.split_val = o.data;
  o.split_test = o.data;
  o.mode = model::parse_mode(mode);
  o.epochs = 2;
  o.batch = 5;
  o.lr = 0.1;
  o.patience = 0;
  o.threads = 1;
  o.seed = 3;
  o.out = out;
  return o;
}

}  // namespace tlkit::test

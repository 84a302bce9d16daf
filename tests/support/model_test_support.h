// Helpers shared by the LibTorch-based model tests (tests/model).
#pragma once

#include <string>
#include <utility>

#include "test_support.h"
#include "tlkit/model/extractor.h"

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

}  // namespace tlkit::test

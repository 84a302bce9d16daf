// From a zoo manifest to the commands that run one model (tlkit extract, finetune, probe with
// --zoo zoo.json --model-name NAME), and from fine-tuning runs back to the truth.csv of
// tlkit evaluate (tlkit truth).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tlkit/model/extractor.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model {

/// The entry named `name`. Throws tlkit::InputError naming the manifest and listing the valid
/// names when there is none.
const ZooModel& find_zoo_model(const ZooManifest& zoo, const std::string& name);

/// What the user stated on the command line besides --zoo/--model-name (nullopt: not given).
struct ZooModelFlags {
  std::optional<int> input_size;
  std::optional<int> features_output;
  std::optional<int> logits_output;  ///< an index or kNoOutput; kAutoOutput: not given
  std::optional<std::vector<float>> mean, std;
};

/// A zoo entry as run settings: the model file, the input size, the outputs, the normalisation.
struct ZooModelSettings {
  std::string name;
  std::string model;   ///< the resolved file
  std::string kind;    ///< image or text
  std::string source;  ///< "the zoo entry 'NAME' of PATH", for messages
  int input_size = 0;  ///< 0 for text models
  int features_output = 0;
  int logits_output = kNoOutput;  ///< the entry's logits_output when it states logits_dim
  std::int64_t feature_dim = 0;   ///< 0: not stated
  std::int64_t logits_dim = 0;    ///< 0: no logits
  std::vector<float> mean, std;
};

/// The settings of the entry `name`. A flag in `given` must agree with the entry: otherwise
/// tlkit::InputError names the flag, its value, the entry's field and value.
ZooModelSettings zoo_model_settings(const ZooManifest& zoo, const std::string& name,
                                    const ZooModelFlags& given);

/// Sets the model, input size, outputs, mean/std of `o`, and `o.expected` (the entry's
/// input_size, feature_dim, logits_dim, checked against what the model returns, as tlkit rank
/// does).
void apply_zoo_settings(const ZooModelSettings& s, ExtractOptions& o);

/// Sets the model, input size, features output and mean/std of `o`.
void apply_zoo_settings(const ZooModelSettings& s, FinetuneOptions& o);

/// Adds {"zoo_model": {"name": NAME, "manifest": PATH}} to `out`/metrics.json (written by
/// run_finetune) so that collect_truth names the run as tlkit rank names the entry. Atomic.
void record_zoo_model(const ZooModelSettings& s, const std::string& manifest,
                      const std::string& out);

/// One row of tlkit evaluate's truth.csv.
struct TruthRow {
  std::string model;  ///< the name tlkit rank gives the model
  double accuracy = 0;
  std::string source;  ///< the metrics.json it came from
};

/// Reads the metrics.json of tlkit finetune runs (a run folder or the file itself) and gives one
/// row per run: `metric` (test_acc or best_val_acc) of the run (of its best grid point for a
/// --grid folder). The model is named as tlkit rank names it: the zoo entry recorded by
/// record_zoo_model (a run of --zoo/--model-name); else the entry of `zoo` whose file is the run's
/// model file when `zoo` is given (an error when none or several are); else the model file's stem
/// (as tlkit rank --model). Throws tlkit::InputError naming the file for: no metrics.json, a run
/// without a model (--features), a metric that is null (an unfinished run), two runs of one
/// model.
std::vector<TruthRow> collect_truth(const std::vector<std::string>& runs, const std::string& metric,
                                    const ZooManifest* zoo);

/// "model,accuracy\n" and the rows, accuracies at full precision.
std::string truth_csv(const std::vector<TruthRow>& rows);

}  // namespace tlkit::model

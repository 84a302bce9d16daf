// A zoo manifest: the models `tlkit rank` scores, in the format of ../shared/kit/models/zoo.json.
//
//   {"models": [{"name": "resnet20", "file": "image/resnet20.pt", "kind": "image",
//                "input_size": 32, "feature_dim": 64, "logits_dim": 10, ...}, ...]}
//
// Fields: name (required; letters, digits and "._-+", unique), file (required; relative paths
// are resolved against the manifest's folder, then against its parent folder, the first that
// exists: the kit's zoo.json lives in models/ and names files "models/image/x.pt"), kind
// ("image" or "text", required), input_size (required for image models), feature_dim and
// logits_dim (optional; checked against what the model returns; a model without logits_dim
// gives no logits), and optionally features_output / logits_output (tuple indices, as the
// --features-output/--logits-output flags of tlkit extract), mean / std (3 values each:
// per-channel normalisation after scaling to [0, 1], for models that do not normalise inside).
// Other fields (pretraining, source, licence, ...) are kept as they are for the reports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tlkit::model {

struct ZooModel {
  std::string name;
  std::string file;  ///< resolved path
  std::string kind;  ///< "image" or "text"
  int input_size = 0;
  std::int64_t feature_dim = 0;  ///< 0: not stated
  std::int64_t logits_dim = 0;   ///< 0: the model's logits are not used; -1 (not from a
                                 ///< manifest: tlkit rank --model): whatever forward returns
  int features_output = 0;
  int logits_output = 1;  ///< used when logits_dim > 0
  std::vector<float> mean, std;
  std::string extra_json;  ///< the other fields, as a JSON object (text)
};

struct ZooManifest {
  std::string path;
  std::vector<ZooModel> models;
};

/// Reads and checks a manifest. Throws tlkit::InputError naming the manifest, the model (by
/// index and name) and the field for: unreadable or invalid JSON, no "models" array, a missing or
/// mistyped field, an unknown kind, a duplicate or unsafe name, a model file that does not exist,
/// an image model without input_size.
ZooManifest read_zoo_manifest(const std::string& path);

/// Parses manifest text; `path` names it in messages and anchors relative files.
ZooManifest parse_zoo_manifest(const std::string& text, const std::string& path);

}  // namespace tlkit::model

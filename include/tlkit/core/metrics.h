// The registry of transferability metrics: one declaration per metric (name, direction, inputs,
// parameters, implementation). The CLI's --metric choices, its per-metric flags
// (--<metric>-<param>) and --help, and the Python keyword arguments are all derived from it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tlkit {

/// Inputs a metric needs, as a bit set.
enum MetricInput : unsigned {
  kNeedsFeatures = 1u << 0,  ///< N x D features
  kNeedsLabels = 1u << 1,    ///< N class labels (classification)
  kNeedsProbs = 1u << 2,     ///< N x Cs source-class probabilities
};

/// A tunable parameter of a metric. `choices` empty: a real number.
struct MetricParam {
  std::string_view name;           ///< e.g. "mode"; CLI flag --<metric>-<name>, Python <metric>_<name>
  std::string_view default_value;  ///< as text, e.g. "exact" or "1e-4"
  std::string_view help;
  std::vector<std::string_view> choices;
};

class MetricContext;  // shared, lazily computed statistics of one scoring run (src/core)
struct MetricValue;

/// Computes one metric into `out` (score and details), using the shared context.
using MetricFn = void (*)(MetricContext& ctx, MetricValue& out);

struct MetricInfo {
  std::string_view name;         ///< identifier used on the command line and in JSON
  std::string_view title;        ///< one line for --help
  std::string_view paper;        ///< citation
  bool higher_is_better = true;
  unsigned inputs = 0;           ///< MetricInput bits
  bool supports_regression = false;
  bool streaming = false;        ///< computable from row chunks (--chunk-rows; gbc: pca_dims 0)
  std::vector<MetricParam> params;
  MetricFn compute = nullptr;
};

/// All metrics tlkit knows, in a stable order.
const std::vector<MetricInfo>& metric_registry();

/// The metric called `name`; throws InputError listing the known names otherwise.
const MetricInfo& find_metric(std::string_view name);

/// Parses "a,b,c" or "all" into registered metric names (duplicates removed, order kept).
/// `available_inputs` (MetricInput bits): with "all", metrics whose inputs are missing are skipped.
std::vector<std::string> parse_metric_list(const std::string& csv,
                                           unsigned available_inputs = ~0u);

/// Parameter values by "<metric>.<param>"; unset parameters take the registry default.
class MetricParams {
 public:
  /// Sets "<metric>.<param>" after checking that both exist and the value is valid.
  void set(const std::string& metric, const std::string& param, const std::string& value);
  std::string text(std::string_view metric, std::string_view param) const;
  double number(std::string_view metric, std::string_view param) const;

 private:
  std::map<std::string, std::string> values_;
};

/// tlkit's version string ("0.1.0").
const char* version();

}  // namespace tlkit

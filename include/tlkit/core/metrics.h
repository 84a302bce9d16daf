// The registry of transferability metrics: one declaration per metric, from which the CLI's
// --metric choices and help, and the Python keyword arguments, are derived.
#pragma once

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

struct MetricInfo {
  std::string_view name;         ///< identifier used on the command line and in JSON
  std::string_view title;        ///< one line for --help
  std::string_view paper;        ///< citation
  bool higher_is_better = true;
  unsigned inputs = 0;           ///< MetricInput bits
  bool supports_regression = false;
  bool streaming = false;        ///< computable from row chunks (--chunk-rows)
};

/// All metrics tlkit knows, in a stable order.
const std::vector<MetricInfo>& metric_registry();

/// The metric called `name`; throws InputError listing the known names otherwise.
const MetricInfo& find_metric(std::string_view name);

/// Parses "a,b,c" or "all" into registered metric names (duplicates removed, order kept).
std::vector<std::string> parse_metric_list(const std::string& csv);

/// tlkit's version string ("0.1.0").
const char* version();

}  // namespace tlkit

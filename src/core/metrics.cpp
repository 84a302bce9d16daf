#include "tlkit/core/metrics.h"

#include <algorithm>

#include "tlkit/core/error.h"

namespace tlkit {

const std::vector<MetricInfo>& metric_registry() {
  static const std::vector<MetricInfo> kRegistry = {
      {"logme", "LogME: log maximum evidence of Bayesian linear regression from features to labels",
       "You et al., LogME: Practical Assessment of Pre-trained Models for Transfer Learning, "
       "ICML 2021",
       /*higher_is_better=*/true, kNeedsFeatures | kNeedsLabels, /*supports_regression=*/true,
       /*streaming=*/true},
  };
  return kRegistry;
}

const MetricInfo& find_metric(std::string_view name) {
  const auto& reg = metric_registry();
  auto it = std::find_if(reg.begin(), reg.end(), [&](const MetricInfo& m) { return m.name == name; });
  if (it != reg.end()) return *it;
  std::string known;
  for (const auto& m : reg) known += (known.empty() ? "" : ", ") + std::string(m.name);
  TLKIT_THROW_ARG("--metric: unknown metric '{}' (known: {}, or all)", name, known);
}

std::vector<std::string> parse_metric_list(const std::string& csv) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= csv.size()) {
    const std::size_t comma = std::min(csv.find(',', start), csv.size());
    const std::string item = csv.substr(start, comma - start);
    if (item == "all") {
      for (const auto& m : metric_registry()) out.emplace_back(m.name);
    } else {
      TLKIT_CHECK_ARG(!item.empty(), "--metric: empty name in '{}'", csv);
      out.emplace_back(find_metric(item).name);
    }
    start = comma + 1;
  }
  std::vector<std::string> unique;
  for (auto& m : out)
    if (std::find(unique.begin(), unique.end(), m) == unique.end()) unique.push_back(m);
  return unique;
}

const char* version() { return TLKIT_VERSION_STRING; }

}  // namespace tlkit

#include "metric_options.h"

#include <fmt/format.h>

#include <algorithm>

namespace tlkit::cli {

std::string flag_for(std::string_view metric, std::string_view param) {
  std::string f = "--" + std::string(metric) + "-" + std::string(param);
  std::replace(f.begin() + 2, f.end(), '_', '-');
  return f;
}

std::string metric_list_help(const std::string& intro, const std::string& probs_hint) {
  std::string s = intro;
  for (const auto& m : metric_registry())
    s += fmt::format("\n  {:<14} {} [{} is better{}]", m.name, m.title,
                     m.higher_is_better ? "higher" : "lower",
                     (m.inputs & kNeedsProbs) ? "; " + probs_hint : "");
  return s;
}

void add_metric_param_options(CLI::App* cmd, std::map<std::string, std::string>& params) {
  for (const auto& m : metric_registry()) {
    for (const auto& p : m.params) {
      std::string help = fmt::format("{}: {} (default {})", m.name, p.help, p.default_value);
      const std::string key = std::string(m.name) + "." + std::string(p.name);
      cmd->add_option_function<std::string>(
          flag_for(m.name, p.name), [&params, key](const std::string& v) { params[key] = v; },
          help);
    }
  }
}

CLI::Option* add_metric_list_option(CLI::App* cmd, std::string& value, std::string& typed,
                                    const std::string& help) {
  CLI::Option* metric = cmd->add_option_function<std::string>(
      "--metric",
      [&value, &typed](const std::string& v) {
        value = v;
        typed = "--metric";
      },
      help);
  if (!value.empty()) metric->default_str(value);
  CLI::Option* alias = cmd->add_option_function<std::string>(
      "--metrics",
      [&value, &typed](const std::string& v) {
        value = v;
        typed = "--metrics";
      },
      "Same as --metric (one name on every command)");
  metric->excludes(alias);
  return metric;
}

MetricParams to_metric_params(const std::map<std::string, std::string>& params) {
  MetricParams out;
  for (const auto& [key, value] : params) {
    const auto dot = key.find('.');
    out.set(key.substr(0, dot), key.substr(dot + 1), value);
  }
  return out;
}

}  // namespace tlkit::cli

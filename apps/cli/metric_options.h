// Metric options shared by score and rank, all derived from the metric registry
// (tlkit/core/metrics.h): the --metric help text and one --<metric>-<param> flag per parameter.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"

namespace tlkit::cli {

/// "--<metric>-<param>" with '_' as '-'.
std::string flag_for(std::string_view metric, std::string_view param);

/// The --metric help: `intro`, then one line per registered metric (title, direction and, for
/// metrics needing source-class probabilities, `probs_hint`).
std::string metric_list_help(const std::string& intro, const std::string& probs_hint);

/// Registers --<metric>-<param> for every parameter of every metric; values land in
/// params["<metric>.<param>"].
void add_metric_param_options(CLI::App* cmd, std::map<std::string, std::string>& params);

/// The values given, checked against the registry (InputError for a bad value).
MetricParams to_metric_params(const std::map<std::string, std::string>& params);

/// The metric list of a command: --metric, or its alias --metrics (one name on every command;
/// they exclude each other). The list lands in `value` and the flag as typed in `typed`.
CLI::Option* add_metric_list_option(CLI::App* cmd, std::string& value, std::string& typed,
                                    const std::string& help);

/// Runs `f()`; an InputError about the metric list ("--metric: unknown metric 'x'", from the
/// library) is rethrown naming the flag the user typed.
template <class F>
auto naming_metric_flag(const std::string& typed, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputError& e) {
    const std::string m = e.what();
    if (typed.empty() || typed == "--metric" || m.rfind("--metric", 0) != 0 ||
        (m.size() > 8 && m[8] != ':' && m[8] != ' '))
      throw;
    throw InputError(typed + m.substr(8));
  }
}

}  // namespace tlkit::cli

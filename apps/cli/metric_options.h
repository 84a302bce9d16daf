// Metric options shared by score and rank, all derived from the metric registry
// (tlkit/core/metrics.h): the --metric help text and one --<metric>-<param> flag per parameter.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

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

}  // namespace tlkit::cli

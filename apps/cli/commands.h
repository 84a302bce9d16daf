// The CLI's subcommands. Each registers its options on a CLI11 app and runs against the library;
// none holds algorithmic code.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace tlkit::cli {

struct ScoreArgs {
  std::string features;
  std::string labels;
  std::string metric = "logme";
  std::string logme_mode = "exact";
  std::string format = "table";
  bool regression = false;
  std::int64_t chunk_rows = 0;
  int threads = 0;
};

CLI::App* add_score_command(CLI::App& app, ScoreArgs& args);
int run_score(const ScoreArgs& args);

}  // namespace tlkit::cli

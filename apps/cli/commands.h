// The CLI's subcommands. Each registers its options on a CLI11 app and runs against the library;
// none holds algorithmic code.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace tlkit::cli {

/// An integer option >= 0. (CLI11's NonNegativeNumber prints its range as a 300-digit double.)
inline const CLI::Validator kNonNegativeInteger(
    [](std::string& s) -> std::string {
      std::size_t digits = 0;
      while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
      return !s.empty() && digits == s.size() ? "" : "expected an integer >= 0, got '" + s + "'";
    },
    "INT>=0", "non-negative integer");

/// A registered subcommand and how to run it once parsed (returns the exit code).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

struct ScoreArgs {
  std::string features;
  std::string labels;
  std::string probs;
  std::string metric = "logme";
  std::map<std::string, std::string>
      params;  // "<metric>.<param>" -> value, from --<metric>-<param>
  std::string format = "table";
  bool regression = false;
  std::int64_t chunk_rows = 0;
  int threads = 0;
  std::uint64_t seed = 0;
  std::string max_memory;  // empty: default_memory_limit()
};

Command add_score_command(CLI::App& app);
int run_score(const ScoreArgs& args);

struct EvaluateArgs {
  std::string scores;  // CSV: model,metric,score
  std::string truth;   // CSV: model,accuracy
  std::string format = "table";
};

Command add_evaluate_command(CLI::App& app);
int run_evaluate(const EvaluateArgs& args);

// tlkit extract (built only with LibTorch: extract_command.cpp).
struct ExtractArgs {
  std::string model;
  std::string data;
  std::string split;
  int input_size = 0;
  std::string out;
  int batch = 32;
  int threads = 0;
  int decode_threads = 0;
  std::int64_t per_class = 0;
  std::int64_t limit = 0;
  std::uint64_t seed = 0;
  std::string on_bad_image = "fail";
  std::string features_output = "0";
  std::string logits_output = "auto";
  std::string optimize = "freeze";
  bool quiet = false;
};

Command add_extract_command(CLI::App& app);
int run_extract(const ExtractArgs& args);

}  // namespace tlkit::cli

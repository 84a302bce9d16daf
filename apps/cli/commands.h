// The CLI's subcommands. Each registers its options on a CLI11 app and runs against the library;
// none holds algorithmic code.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "tlkit/model/torchscript_model.h"

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
  std::string logits;  // N x Cs logits: --probs is their row-wise softmax
  std::string metric = "logme";
  std::string metric_flag = "--metric";  // as typed: --metric or its alias --metrics
  std::map<std::string, std::string>
      params;  // "<metric>.<param>" -> value, from --<metric>-<param>
  std::string format = "table";
  bool regression = false;
  std::int64_t chunk_rows = 0;
  int threads = 0;
  std::uint64_t seed = 0;
  std::string max_memory;  // empty: default_memory_limit()
  std::string device = "cpu";  // cpu, or cuda: the shared statistics on the GPU (docs/gpu.md)
};

Command add_score_command(CLI::App& app);
int run_score(const ScoreArgs& args);

struct EvaluateArgs {
  std::string scores;  // CSV: model,metric,score
  std::string truth;   // CSV: model,accuracy
  std::string format = "table";
  // Stability (--bootstrap K): K paired resamples of the target samples, scores recomputed from
  // the models' features in features_dir (one sub-folder per model).
  std::int64_t bootstrap = 0;
  bool bootstrap_given = false;
  std::string features_dir;
  std::uint64_t seed = 0;
  bool seed_given = false;
  double confidence = 0.95;
  bool confidence_given = false;
  std::string bootstrap_scheme = "subsample";
  bool scheme_given = false;
  double fraction = 0.5;  // --subsample-fraction
  bool fraction_given = false;
  std::string replicates_out;  // optional CSV of every replicate score
  int threads = 0;
};

Command add_evaluate_command(CLI::App& app);
int run_evaluate(const EvaluateArgs& args);

// Options shared by the commands that run models over a dataset (extract, rank; built only with
// LibTorch: extraction_options.cpp registers them and turns them into model::ExtractOptions).
struct ExtractionArgs {
  std::string split;
  int batch = 32;
  int threads = 0;
  int decode_threads = 0;
  std::int64_t per_class = 0;
  std::int64_t limit = 0;
  std::uint64_t seed = 0;
  std::string on_bad_image = "fail";
  std::string optimize = "freeze";
  bool channels_last = true;  // --no-channels-last: NCHW
  std::string precision = "fp32";
  double precision_tolerance = model::kDefaultPrecisionTolerance;
  std::string device = "cpu";  // cpu, cuda or cuda:N (model::parse_device)
  bool quiet = false;
};

// A model named by a zoo manifest entry instead of --model (extract, finetune, probe).
struct ZooArgs {
  std::string zoo;
  std::string model_name;
};

// tlkit extract (extract_command.cpp).
struct ExtractArgs {
  std::string model;
  ZooArgs zoo;
  std::string data;
  std::string task = "classification";
  int input_size = 0;
  std::string out;
  std::string features_output = "0";
  std::string logits_output = "auto";
  CLI::Option* features_output_flag = nullptr;  // to tell a value given from the default
  CLI::Option* logits_output_flag = nullptr;
  ExtractionArgs run;
};

Command add_extract_command(CLI::App& app);
int run_extract(const ExtractArgs& args);

// tlkit rank (rank_command.cpp).
struct RankArgs {
  std::string zoo;
  std::string model;  // a single model instead of --zoo
  std::string kind;   // of --model: image or text (default: the data's)
  int input_size = 0;
  std::string data;
  std::string task = "classification";
  std::string metrics;
  std::string metric_flag = "--metric";       // as typed: --metric or its alias --metrics
  std::map<std::string, std::string> params;  // "<metric>.<param>" -> value
  std::string models;                         // comma-separated subset of the zoo
  std::string cache = "tlkit-cache";
  bool no_cache = false;
  bool shard_data = false;  // mpirun: each model's samples split over the processes
  std::string format = "table";
  bool wide = false;  // the table with every metric column, however wide
  std::string out;    // scores.csv for tlkit evaluate
  ExtractionArgs run;
  // An HTML page of the ranking (tlkit report).
  std::string report;
  std::int64_t decode_cache_mb = 1024;  // decoded images kept for the zoo's next models
};

Command add_rank_command(CLI::App& app);
int run_rank(const RankArgs& args);
// tlkit finetune (built only with LibTorch: finetune_command.cpp).
Command add_finetune_command(CLI::App& app);
// tlkit probe (built only with LibTorch: probe_command.cpp).
Command add_probe_command(CLI::App& app);
// tlkit predict (built only with LibTorch: predict_command.cpp).
Command add_predict_command(CLI::App& app);
// tlkit truth (built only with LibTorch: truth_command.cpp).
Command add_truth_command(CLI::App& app);
// tlkit select (built only with LibTorch: select_command.cpp).
Command add_select_command(CLI::App& app);
// tlkit report (report_command.cpp; torch-free).
Command add_report_command(CLI::App& app);

}  // namespace tlkit::cli

// The options that extract and rank share (--split, --batch, --threads, --per-class, ...): one
// registration, one conversion to model::ExtractOptions, one output-index parser.
#pragma once

#include <string>

#include "commands.h"
#include "tlkit/model/extractor.h"

namespace tlkit::cli {

/// Registers --split, --batch, --threads, --decode-threads, --per-class, --limit, --seed,
/// --on-bad-image, --optimize, --channels-last, --precision, --precision-tolerance, --device and
/// --quiet on `cmd`.
void add_extraction_options(CLI::App* cmd, ExtractionArgs& a);

/// The shared part of model::ExtractOptions (model, data, input size and outputs are the
/// caller's). Throws tlkit::InputError for a bad value, and for a --device this LibTorch cannot
/// run on.
model::ExtractOptions to_extract_options(const ExtractionArgs& a);

/// Registers --task (classification, regression or multilabel: what the data's labels are).
void add_task_option(CLI::App* cmd, std::string& task);

/// Registers --zoo and --model-name on `cmd` (the model is --model or a zoo entry).
void add_zoo_options(CLI::App* cmd, ZooArgs& a);

/// Checks that exactly one of --model and --zoo/--model-name is given (`command`: the command's
/// name, for messages); returns true for a zoo entry.
bool zoo_model_wanted(const ZooArgs& a, const std::string& model, const char* command);

/// "--features-output"/"--logits-output" values: an index >= 0, or (allow_none) "auto"/"none".
int parse_output_index(const std::string& s, const char* flag, bool allow_none);

/// Prints an extraction's warnings to stderr: the listing's notes, the skipped images and the
/// model's notes, one "tlkit: warning:" line each.
void print_extract_warnings(const model::ExtractResult& r);

}  // namespace tlkit::cli

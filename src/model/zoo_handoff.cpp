// Zoo entries as run settings, and fine-tuning runs as truth.csv
// (include/tlkit/model/zoo_handoff.h).
#include "tlkit/model/zoo_handoff.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string show_output(int index) {
  return index == kNoOutput ? std::string("none") : std::to_string(index);
}

std::string show_floats(const std::vector<float>& v) {
  if (v.empty()) return "none";
  std::string s;
  for (float x : v) s += fmt::format("{}{}", s.empty() ? "" : ",", x);
  return s;
}

// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec) && !ec;
}

}  // namespace

const ZooModel& find_zoo_model(const ZooManifest& zoo, const std::string& name) {
  std::string names;
  for (const ZooModel& z : zoo.models) {
    if (z.name == name) return z;
    names += (names.empty() ? "" : ", ") + z.name;
  }
  TLKIT_THROW_ARG("--model-name {}: no model of that name in {} (its models: {})", name, zoo.path,
                  names.empty() ? "none" : names);
}

ZooModelSettings zoo_model_settings(const ZooManifest& zoo, const std::string& name,
                                    const ZooModelFlags& given) {
  const ZooModel& z = find_zoo_model(zoo, name);
  ZooModelSettings s;
  s.name = z.name;
  s.model = z.file;
  s.kind = z.kind;
  s.source = fmt::format("the zoo entry '{}' of {}", z.name, zoo.path);
  s.input_size = z.kind == "image" ? z.input_size : 0;
  s.features_output = z.features_output;
  s.feature_dim = z.feature_dim;
  s.logits_dim = std::max<std::int64_t>(0, z.logits_dim);
  s.logits_output = s.logits_dim > 0 ? z.logits_output : kNoOutput;
  s.mean = z.mean;
  s.std = z.std;
  if (given.input_size) {
    TLKIT_CHECK_ARG(z.kind == "image",
                    "--input-size {}: {} is a text model (no input_size); leave --input-size out",
                    *given.input_size, s.source);
    TLKIT_CHECK_ARG(*given.input_size == s.input_size,
                    "--input-size {} disagrees with {} (input_size {}); leave --input-size out or "
                    "fix the manifest",
                    *given.input_size, s.source, s.input_size);
  }
  if (given.features_output)
    TLKIT_CHECK_ARG(*given.features_output == s.features_output,
                    "--features-output {} disagrees with {} (features_output {}); leave "
                    "--features-output out or fix the manifest",
                    *given.features_output, s.source, s.features_output);
  if (given.logits_output && *given.logits_output != kAutoOutput)
    TLKIT_CHECK_ARG(*given.logits_output == s.logits_output,
                    "--logits-output {} disagrees with {} (logits output {}{}); leave "
                    "--logits-output out or fix the manifest",
                    show_output(*given.logits_output), s.source, show_output(s.logits_output),
                    s.logits_dim > 0 ? "" : ": no logits_dim");
  if (given.mean)
    TLKIT_CHECK_ARG(*given.mean == s.mean,
                    "--mean {} disagrees with {} (mean {}); leave --mean out or fix the manifest",
                    show_floats(*given.mean), s.source, show_floats(s.mean));
  if (given.std)
    TLKIT_CHECK_ARG(*given.std == s.std,
                    "--std {} disagrees with {} (std {}); leave --std out or fix the manifest",
                    show_floats(*given.std), s.source, show_floats(s.std));
  return s;
}

void apply_zoo_settings(const ZooModelSettings& s, ExtractOptions& o) {
  o.model = s.model;
  o.input_size = s.input_size;
  o.expected.input_size = s.input_size;
  o.expected.feature_dim = s.feature_dim;
  o.expected.logits_dim = s.logits_dim;
  o.expected_source = s.source;
  o.mean = s.mean;
  o.std = s.std;
  o.model_options.features_output = s.features_output;
  o.model_options.logits_output = s.logits_output;
}

void apply_zoo_settings(const ZooModelSettings& s, FinetuneOptions& o) {
  o.model = s.model;
  o.input_size = s.input_size;
  o.features_output = s.features_output;
  o.mean = s.mean;
  o.std = s.std;
}

void record_zoo_model(const ZooModelSettings& s, const std::string& manifest,
                      const std::string& out) {
  const std::string file = (fs::path(out) / "metrics.json").string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return;  // nothing written (an interrupted run)
  std::stringstream ss;
  ss << in.rdbuf();
  json m = json::parse(ss.str());
  m["zoo_model"] = {{"name", s.name}, {"manifest", manifest}};
  write_file_atomic(file, m.dump(2) + "\n");
}

std::vector<TruthRow> collect_truth(const std::vector<std::string>& runs, const std::string& metric,
                                    const ZooManifest* zoo) {
  TLKIT_CHECK_ARG(metric == "test_acc" || metric == "best_val_acc",
                  "--metric {}: expected test_acc or best_val_acc", metric);
  TLKIT_CHECK_ARG(!runs.empty(), "no run folders given");
  std::vector<TruthRow> rows;
  std::map<std::string, std::string> seen;  // model name -> metrics.json
  for (const std::string& run : runs) {
    const std::string file =
        fs::is_directory(run) ? (fs::path(run) / "metrics.json").string() : run;
    std::ifstream in(file, std::ios::binary);
    TLKIT_CHECK_ARG(in.good(), "{}: cannot read (a tlkit finetune --out folder holds metrics.json)",
                    file);
    std::stringstream ss;
    ss << in.rdbuf();
    json m;
    try {
      m = json::parse(ss.str());
    } catch (const json::exception& e) {
      TLKIT_THROW_ARG("{}: not valid JSON: {}", file, e.what());
    }
    TLKIT_CHECK_ARG(
        m.is_object() && m.contains(metric) && m.contains("config") && m["config"].is_object(),
        "{}: no '{}' and 'config' fields: not the metrics.json of a tlkit finetune run", file,
        metric);
    const json& v = m[metric];
    TLKIT_CHECK_ARG(!v.is_null(), "{}: {} is null: the run did not finish (rerun tlkit finetune)",
                    file, metric);
    TLKIT_CHECK_ARG(v.is_number() && std::isfinite(v.get<double>()), "{}: {}: not a number: {}",
                    file, metric, v.dump());
    const json mf = m["config"].value("model", json(""));
    const std::string model_file = mf.is_string() ? mf.get<std::string>() : std::string();
    TruthRow row;
    row.accuracy = v.get<double>();
    row.source = file;
    const json recorded = m.value("zoo_model", json::object()).value("name", json(""));
    if (recorded.is_string() && !recorded.get<std::string>().empty()) {
      row.model = recorded.get<std::string>();
    } else if (zoo != nullptr) {
      TLKIT_CHECK_ARG(!model_file.empty(),
                      "{}: config.model is empty (a --features run): no model to name", file);
      std::string names;
      for (const ZooModel& z : zoo->models)
        if (same_file(z.file, model_file)) names += (names.empty() ? "" : ", ") + z.name;
      TLKIT_CHECK_ARG(!names.empty(),
                      "{}: config.model {}: no entry of {} has that file (relative paths are "
                      "read from the current folder)",
                      file, model_file, zoo->path);
      TLKIT_CHECK_ARG(names.find(", ") == std::string::npos,
                      "{}: config.model {}: entries {} of {} all have that file; run tlkit "
                      "finetune with --zoo and --model-name to record which",
                      file, model_file, names, zoo->path);
      row.model = names;
    } else {
      TLKIT_CHECK_ARG(!model_file.empty(),
                      "{}: config.model is empty (a --features run): no model to name", file);
      row.model = fs::path(model_file).stem().string();
    }
    const auto [it, fresh] = seen.emplace(row.model, file);
    TLKIT_CHECK_ARG(fresh, "{}: model {} also has a run in {}: give one run per model", file,
                    row.model, it->second);
    rows.push_back(row);
  }
  return rows;
}

std::string truth_csv(const std::vector<TruthRow>& rows) {
  std::string s = "model,accuracy\n";
  for (const TruthRow& r : rows) s += fmt::format("{},{:.17g}\n", csv_field(r.model), r.accuracy);
  return s;
}

}  // namespace tlkit::model

// Zoo manifests (no LibTorch here: nlohmann-json only, so that the parser can be fuzzed alone).
#include "tlkit/model/zoo_manifest.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// JSON text for a message, with invalid UTF-8 replaced instead of throwing.
std::string show(const json& v) {
  return printable(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

bool safe_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-' && c != '+') return false;
  return true;
}

// The manifest's folder, then its parent: the first where `file` exists (see the header).
std::string resolve_file(const std::string& manifest, const std::string& file) {
  const fs::path f = file;
  if (f.is_absolute()) return f.string();
  const fs::path dir = fs::path(manifest).parent_path();
  std::error_code ec;
  for (const fs::path& base : {dir, dir.parent_path()}) {
    const fs::path p = (base / f).lexically_normal();
    if (fs::is_regular_file(p, ec)) return p.string();
    if (base.empty()) break;
  }
  return (dir / f).lexically_normal().string();
}

std::vector<float> three_floats(const json& m, const char* key, const std::string& where) {
  std::vector<float> v;
  if (!m.contains(key)) return v;
  const json& a = m.at(key);
  TLKIT_CHECK_ARG(a.is_array() && a.size() == 3, "{}: \"{}\" must be an array of 3 numbers", where,
                  key);
  for (const json& x : a) {
    // Within float's range: converting a larger double to float is undefined behaviour.
    TLKIT_CHECK_ARG(x.is_number() && std::abs(x.get<double>()) <= 1e30,
                    "{}: \"{}\" must be an array of 3 numbers (|x| <= 1e30), found {}", where, key,
                    show(x));
    v.push_back(x.get<float>());
  }
  return v;
}

std::int64_t integer(const json& m, const char* key, const std::string& where, std::int64_t lo,
                     std::int64_t hi, std::int64_t fallback) {
  if (!m.contains(key) || m.at(key).is_null()) return fallback;
  const json& v = m.at(key);
  TLKIT_CHECK_ARG(
      v.is_number_integer() && v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi,
      "{}: \"{}\" must be an integer in [{}, {}], found {}", where, key, lo, hi, show(v));
  return v.get<std::int64_t>();
}

std::string text_field(const json& m, const char* key, const std::string& where) {
  TLKIT_CHECK_ARG(m.contains(key), "{}: missing \"{}\"", where, key);
  TLKIT_CHECK_ARG(m.at(key).is_string(), "{}: \"{}\" must be a string, found {}", where, key,
                  show(m.at(key)));
  return m.at(key).get<std::string>();
}

}  // namespace

ZooManifest parse_zoo_manifest(const std::string& text, const std::string& path) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("1e999"; found by
    // fuzzing: tests/data/fuzz/zoo_manifest/crash-number-overflow.json).
    TLKIT_THROW_ARG("{}: not valid JSON ({})", path, printable(e.what()));
  }
  TLKIT_CHECK_ARG(doc.is_object() && doc.contains("models") && doc.at("models").is_array(),
                  "{}: expected an object with a \"models\" array (the format of the kit's "
                  "models/zoo.json)",
                  path);
  ZooManifest zoo;
  zoo.path = path;
  std::set<std::string> names;
  std::size_t index = 0;
  for (const json& m : doc.at("models")) {
    std::string where = fmt::format("{}: models[{}]", path, index++);
    TLKIT_CHECK_ARG(m.is_object(), "{}: expected an object, found {}", where, show(m));
    ZooModel z;
    z.name = text_field(m, "name", where);
    TLKIT_CHECK_ARG(safe_name(z.name),
                    "{}: name '{}' must be 1-200 letters, digits or ._-+ (it names cache folders "
                    "and report rows)",
                    where, printable(z.name));
    where += " (" + z.name + ")";
    TLKIT_CHECK_ARG(names.insert(z.name).second, "{}: duplicate name '{}'", where, z.name);
    z.kind = text_field(m, "kind", where);
    TLKIT_CHECK_ARG(z.kind == "image" || z.kind == "text",
                    "{}: kind '{}' is not one of image, text", where, printable(z.kind));
    const std::string file = text_field(m, "file", where);
    TLKIT_CHECK_ARG(!file.empty(), "{}: empty \"file\"", where);
    z.file = resolve_file(path, file);
    std::error_code ec;
    TLKIT_CHECK_ARG(fs::is_regular_file(z.file, ec), "{}: model file {} does not exist", where,
                    z.file);
    z.input_size = static_cast<int>(integer(m, "input_size", where, 1, 8192, 0));
    TLKIT_CHECK_ARG(z.kind != "image" || z.input_size > 0,
                    "{}: image models need \"input_size\" (the side S of their [N, 3, S, S] input)",
                    where);
    z.feature_dim = integer(m, "feature_dim", where, 1, 1LL << 31, 0);
    z.logits_dim = integer(m, "logits_dim", where, 1, 1LL << 31, 0);
    z.features_output = static_cast<int>(integer(m, "features_output", where, 0, 64, 0));
    z.logits_output = static_cast<int>(integer(m, "logits_output", where, 0, 64, 1));
    z.mean = three_floats(m, "mean", where);
    z.std = three_floats(m, "std", where);
    TLKIT_CHECK_ARG(z.mean.size() == z.std.size(), "{}: give both \"mean\" and \"std\", or neither",
                    where);
    for (float s : z.std) TLKIT_CHECK_ARG(s > 0, "{}: \"std\" values must be positive", where);
    json extra = json::object();
    for (const auto& [key, value] : m.items())
      if (key != "name" && key != "file" && key != "kind" && key != "input_size" &&
          key != "feature_dim" && key != "logits_dim" && key != "features_output" &&
          key != "logits_output" && key != "mean" && key != "std")
        extra[key] = value;
    z.extra_json = extra.dump(-1, ' ', false, json::error_handler_t::replace);
    zoo.models.push_back(std::move(z));
  }
  TLKIT_CHECK_ARG(!zoo.models.empty(), "{}: the \"models\" array is empty", path);
  return zoo;
}

ZooManifest read_zoo_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK_ARG(in.good(), "--zoo {}: cannot open the manifest", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_zoo_manifest(text, path);
}

}  // namespace tlkit::model

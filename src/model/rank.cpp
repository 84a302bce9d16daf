// tlkit rank: extraction (or the feature cache), scoring and ordering over a zoo. No LibTorch
// headers here: models run behind torchscript_model.h.
#include "tlkit/model/rank.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>

#include "sha256.h"
#include "tlkit/core/communicator.h"
#include "tlkit/core/error.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"
#include "tlkit/core/zoo.h"
#include "tlkit/model/decoded_images.h"
#include "tlkit/model/text_dataset.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The metrics asked for: registered per-model metrics (zoo-level names expanded to their
// components) and the zoo-level metrics to form at the end.
struct MetricPlan {
  std::vector<std::string> per_model;
  std::vector<std::string> zoo_level;
  bool all = false;  // "all": the metrics that apply to the zoo and the data, no others
};

MetricPlan plan_metrics(const std::string& csv) {
  MetricPlan plan;
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= csv.size()) {
    const std::size_t comma = std::min(csv.find(',', start), csv.size());
    items.push_back(csv.substr(start, comma - start));
    start = comma + 1;
  }
  std::string registered;
  for (const std::string& item : items) {
    if (item == "all") {  // every registered metric and every zoo-level one
      plan.all = true;
      for (const ZooMetric& z : zoo_metrics())
        if (std::find(plan.zoo_level.begin(), plan.zoo_level.end(), z.name) == plan.zoo_level.end())
          plan.zoo_level.push_back(z.name);
    }
    const auto zm = std::find_if(zoo_metrics().begin(), zoo_metrics().end(),
                                 [&](const ZooMetric& z) { return z.name == item; });
    if (zm != zoo_metrics().end()) {
      if (std::find(plan.zoo_level.begin(), plan.zoo_level.end(), zm->name) == plan.zoo_level.end())
        plan.zoo_level.push_back(zm->name);
      for (const auto& [component, weight] : zm->components) registered += "," + component;
    } else {
      registered += "," + item;
    }
  }
  if (!registered.empty())
    plan.per_model = parse_metric_list(registered.substr(1));  // checks the names
  return plan;
}

// Size and modification time of every listed file: a changed image invalidates the cache even
// when its name does not change.
std::string files_stat_sha256(const std::vector<ImageSample>& samples) {
  std::string text;
  std::error_code ec;
  for (const ImageSample& s : samples) {
    if (s.path.empty()) continue;
    const auto size = fs::file_size(s.path, ec);
    const auto mtime = fs::last_write_time(s.path, ec).time_since_epoch().count();
    text += fmt::format("{}\t{}\t{}\n", s.path, ec ? 0 : size, ec ? 0 : mtime);
  }
  return sha256_hex(text);
}

std::string cache_key(const std::string& model_sha, const std::string& listing_sha,
                      const std::string& stat_sha, const ExtractOptions& o,
                      const ImageListing& listing) {
  json k = {
      {"cache_format", 1},
      {"model_sha256", model_sha},
      {"listing_sha256", listing_sha},
      {"files_stat_sha256", stat_sha},
      {"preprocessing", json::parse(preprocessing_description(listing, o))},
      {"features_output", o.model_options.features_output},
      {"logits_output", o.model_options.logits_output},
      {"optimize", to_string(o.model_options.optimization)},
      {"channels_last", o.model_options.channels_last},
      {"on_bad_image", o.on_bad_image == BadImagePolicy::kSkip ? "skip" : "fail"},
  };
  // float32 keys are unchanged from before --precision existed.
  if (o.model_options.precision != Precision::kFp32)
    k["precision"] = to_string(o.model_options.precision);
  if (o.model_options.precision == Precision::kAuto)
    k["precision_tolerance"] = o.model_options.precision_tolerance;
  // GPU kernels (cuDNN's choice of algorithm, TF32 convolutions) round differently from the CPU's:
  // features from a GPU are cached apart. CPU keys are unchanged from before --device existed.
  if (o.model_options.device.is_cuda()) k["device"] = "cuda";
  // Regression and multi-label listings can list the same text as a class listing (integer
  // targets); their entries hold targets.npy instead of labels.npy. Classification keys are
  // unchanged.
  if (listing.task != Task::kClassification) k["task"] = to_string(listing.task);
  return sha256_hex(k.dump()).substr(0, 16);
}

// Features, logits and labels of one model, from extraction or from the cache.
struct ModelData {
  NpyArray features_file, logits_file;  // when read from the cache
  std::vector<float> features, logits;  // when extracted
  std::vector<std::int64_t> labels;
  std::vector<double> targets;  // regression and multi-label: n x num_targets
  std::int64_t n = 0, d = 0, logits_dim = 0, num_targets = 0;
  std::int64_t first = 0;  // samples split over processes: this process's first row of the files
  const float* features_ptr() const {
    return features.empty() ? static_cast<const float*>(features_file.data()) + first * d
                            : features.data();
  }
  const float* logits_ptr() const {
    return logits.empty() ? static_cast<const float*>(logits_file.data()) + first * logits_dim
                          : logits.data();
  }
};

// The cache entry when it is complete and was made with `key`; empty otherwise.
bool read_cache(const fs::path& dir, const std::string& key, ModelData* out) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "meta.json", ec)) return false;
  try {
    const json meta = json::parse(read_text_file((dir / "meta.json").string()));
    if (meta.value("cache_key", "") != key) return false;
    out->features_file = load_npy((dir / "features.npy").string());
    std::int64_t rows = 0;
    if (out->num_targets > 0) {
      std::int64_t k = 0;
      out->targets = load_npy((dir / "targets.npy").string()).targets(&k);
      if (k != out->num_targets) return false;
      rows = static_cast<std::int64_t>(out->targets.size()) / k;
    } else {
      out->labels = load_npy((dir / "labels.npy").string()).labels();
      rows = static_cast<std::int64_t>(out->labels.size());
    }
    if (out->features_file.header().type != NpyType::kFloat32 ||
        out->features_file.header().shape.size() != 2 ||
        out->features_file.header().fortran_order || out->features_file.rows() != rows)
      return false;
    out->n = out->features_file.rows();
    out->d = out->features_file.cols();
    // The key covers the logits output asked for, so the entry has logits exactly when an
    // extraction now would.
    if (fs::is_regular_file(dir / "logits.npy", ec)) {
      out->logits_file = load_npy((dir / "logits.npy").string());
      if (out->logits_file.header().type != NpyType::kFloat32 ||
          out->logits_file.header().shape.size() != 2 || out->logits_file.header().fortran_order ||
          out->logits_file.rows() != out->n)
        return false;
      out->logits_dim = out->logits_file.cols();
    }
    return true;
  } catch (const std::exception&) {
    return false;  // a damaged entry is redone, not trusted
  }
}

// Hashes the model file (once: the cache key, meta.json and the output all need it) into
// eo.model_sha256 and m's sha256; with a cache, sets eo.cache_key and m's cache_path and reads
// the entry into `data` when it is complete (m.cached). Returns the entry's folder (empty without
// a cache).
fs::path look_up_cache(const std::string& cache_dir, const ZooModel& z,
                       const std::string& listing_sha, const std::string& stat_sha,
                       const ImageListing& listing, ExtractOptions& eo, RankedModel& m,
                       ModelData* data) {
  eo.model_sha256 = file_sha256(z.file);
  m.sha256 = eo.model_sha256;
  if (cache_dir.empty()) return {};
  eo.cache_key = cache_key(eo.model_sha256, listing_sha, stat_sha, eo, listing);
  const fs::path entry = fs::path(cache_dir) / z.name / eo.cache_key;
  m.cache_path = entry.string();
  const auto tr = Clock::now();
  m.cached = read_cache(entry, eo.cache_key, data);
  if (m.cached) m.seconds["cache_read"] = seconds_since(tr);
  return entry;
}

// The widths the manifest states against what the model gave (fresh or cached).
void check_manifest_widths(const ZooModel& z, const ModelData& data) {
  TLKIT_CHECK_ARG(z.feature_dim == 0 || z.feature_dim == data.d,
                  "{}: features have {} values per sample but the manifest says feature_dim {}",
                  z.file, data.d, z.feature_dim);
  TLKIT_CHECK_ARG(z.logits_dim <= 0 || z.logits_dim == data.logits_dim,
                  "{}: logits have {} values per sample but the manifest says logits_dim {}",
                  z.file, data.logits_dim, z.logits_dim);
}

// Row-wise softmax in double: the source-class probabilities LEEP and NCE take.
std::vector<double> softmax_rows(const float* logits, std::int64_t n, std::int64_t c) {
  std::vector<double> p(static_cast<std::size_t>(n * c));
  for (std::int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * c;
    double* q = p.data() + i * c;
    const double m = *std::max_element(z, z + c);
    double sum = 0;
    for (std::int64_t j = 0; j < c; ++j) sum += q[j] = std::exp(static_cast<double>(z[j]) - m);
    for (std::int64_t j = 0; j < c; ++j) q[j] /= sum;
  }
  return p;
}

// Regression or multi-label targets: LogME's evidence over the target columns (their mean), the
// metric that takes real-valued targets.
void score_targets(const ModelData& data, const MetricPlan& plan, const RankOptions& o,
                   RankedModel* m) {
  for (const std::string& name : plan.per_model) {
    TLKIT_ASSERT(name == "logme");
    LogmeOptions lo;
    lo.mode = parse_logme_mode(o.params.text("logme", "mode"));
    lo.threads = o.extract.threads;
    const auto t0 = Clock::now();
    const LogmeResult res =
        logme(FeatureView::row_major(data.features_ptr(), data.n, data.d),
              TargetView{data.targets.data(), data.n, data.num_targets, data.num_targets, 1}, lo);
    m->score_seconds = seconds_since(t0);
    m->scores[name] = res.score;
    const auto unconverged = std::count(res.converged.begin(), res.converged.end(), false);
    if (unconverged > 0)
      m->notes.push_back(fmt::format("logme did not converge for {} of {} targets", unconverged,
                                     res.converged.size()));
  }
}

// `comm` (samples split over processes): `data` holds this process's rows, from `first_row` of
// all; every process calls this and gets the scores of all the rows.
void score_model(const ModelData& data, const MetricPlan& plan, const RankOptions& o,
                 RankedModel* m, Communicator* comm = nullptr, std::int64_t first_row = 0) {
  if (data.num_targets > 0) return score_targets(data, plan, o, m);
  std::vector<std::string> metrics;
  for (const std::string& name : plan.per_model) {
    if ((find_metric(name).inputs & kNeedsProbs) && data.logits_dim == 0) {
      m->scores[name] = kNaN;
      continue;
    }
    metrics.push_back(name);
  }
  if (metrics.size() < plan.per_model.size() && !o.metrics.empty())
    m->notes.push_back("no logits (the manifest gives no logits_dim): leep and nce need them");
  if (metrics.empty()) return;
  std::vector<double> probs;
  ScoreInputs in;
  in.features = FeatureView::row_major(data.features_ptr(), data.n, data.d);
  in.labels = LabelView{data.labels.data(), data.n};
  if (data.logits_dim > 0) {
    probs = softmax_rows(data.logits_ptr(), data.n, data.logits_dim);
    in.probs = FeatureView::row_major(probs.data(), data.n, data.logits_dim);
  }
  ScoreOptions so;
  so.params = o.params;
  so.seed = o.seed;
  so.threads = o.extract.threads;
  so.comm = comm;
  so.first_row = first_row;
  so.backend = o.statistics_backend;
  const auto t0 = Clock::now();
  std::vector<MetricValue> values;
  try {
    values = score(in, metrics, so).metrics;
  } catch (const InputError&) {
    // One metric that cannot run on this data (NLEEP's 5 C mixture components for fewer
    // samples, say) must not cost the model its other scores: score them one by one, and give
    // the ones that fail NaN and a note. When every one fails, the data itself is the problem.
    std::string first_error;
    std::size_t failed = 0;
    for (const std::string& name : metrics) {
      try {
        values.push_back(score(in, {name}, so).metrics.at(0));
      } catch (const InputError& e) {
        if (failed++ == 0) first_error = e.what();
        MetricValue v;
        v.name = name;
        v.score = kNaN;
        v.notes.push_back(std::string("not computed: ") + e.what());
        values.push_back(std::move(v));
      }
    }
    if (failed == metrics.size()) throw InputError(first_error);
  }
  m->score_seconds = seconds_since(t0);
  for (const MetricValue& v : values) {
    m->scores[v.name] = v.score;
    for (const std::string& note : v.notes) m->notes.push_back(v.name + ": " + note);
  }
}

}  // namespace

std::vector<std::string> rank_order(const std::vector<std::string>& names,
                                    const std::vector<double>& scores, bool higher_is_better) {
  TLKIT_ASSERT(names.size() == scores.size());
  std::vector<std::size_t> idx(names.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const double x = scores[a], y = scores[b];
    if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
    return higher_is_better ? x > y : x < y;
  });
  std::vector<std::string> out;
  for (std::size_t i : idx) out.push_back(names[i]);
  return out;
}

namespace {

// A RankedModel as JSON that reads back bit for bit (doubles as their 64-bit patterns: scores
// may be NaN or infinite).
std::string bits_of(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return fmt::format("{:016x}", u);
}
double from_bits(const std::string& hex) {
  const std::uint64_t u = std::stoull(hex, nullptr, 16);
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

json encode_model(std::size_t index, const RankedModel& m) {
  json scores = json::object();
  for (const auto& [k, v] : m.scores) scores[k] = bits_of(v);
  json seconds = json::object();
  for (const auto& [k, v] : m.seconds) seconds[k] = bits_of(v);
  return {{"index", index},
          {"name", m.name},
          {"kind", m.kind},
          {"file", m.file},
          {"sha256", m.sha256},
          {"extra_json", m.extra_json},
          {"cached", m.cached},
          {"cache_path", m.cache_path},
          {"n", m.n},
          {"d", m.d},
          {"logits_dim", m.logits_dim},
          {"extract_seconds", bits_of(m.extract_seconds)},
          {"score_seconds", bits_of(m.score_seconds)},
          {"items_per_second", bits_of(m.items_per_second)},
          {"seconds", seconds},
          {"scores", scores},
          {"notes", m.notes},
          {"error", m.error}};
}

RankedModel decode_model(const json& j) {
  RankedModel m;
  m.name = j.at("name");
  m.kind = j.at("kind");
  m.file = j.at("file");
  m.sha256 = j.at("sha256");
  m.extra_json = j.at("extra_json");
  m.cached = j.at("cached");
  m.cache_path = j.at("cache_path");
  m.n = j.at("n");
  m.d = j.at("d");
  m.logits_dim = j.at("logits_dim");
  m.extract_seconds = from_bits(j.at("extract_seconds"));
  m.score_seconds = from_bits(j.at("score_seconds"));
  m.items_per_second = from_bits(j.at("items_per_second"));
  for (const auto& [k, v] : j.at("scores").items()) m.scores[k] = from_bits(v);
  for (const auto& [k, v] : j.at("seconds").items()) m.seconds[k] = from_bits(v);
  m.notes = j.at("notes").get<std::vector<std::string>>();
  m.error = j.at("error");
  return m;
}

// The models spread over the processes of `comm` by a shared queue, largest model file first:
// each process takes the next model when it is free and ranks it with its own threads. Rank 0
// gathers the results and sends them to every process; all return them in `chosen`'s order.
template <typename RankOne>
std::vector<RankedModel> rank_distributed(Communicator& comm,
                                          const std::vector<const ZooModel*>& chosen,
                                          RankOne&& rank_one) {
  std::vector<std::uintmax_t> sizes;
  for (const ZooModel* z : chosen) {
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(z->file, ec);
    sizes.push_back(ec ? 0 : size);
  }
  std::vector<std::size_t> order(chosen.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return sizes[a] > sizes[b]; });
  json mine = json::array();
  {
    const std::unique_ptr<SharedCounter> queue = comm.make_counter();
    for (;;) {
      const std::int64_t k = queue->fetch_add(1);
      if (k >= static_cast<std::int64_t>(order.size())) break;
      const std::size_t i = order[static_cast<std::size_t>(k)];
      mine.push_back(encode_model(i, rank_one(i)));
    }
    comm.barrier();  // waits (sleeping) for the processes still ranking their last model
  }
  std::string all;
  const std::vector<std::string> parts = comm.gather(mine.dump());
  if (comm.is_root()) {
    json merged = json::array();
    for (const std::string& part : parts)
      for (auto& m : json::parse(part)) merged.push_back(std::move(m));
    all = merged.dump();
  }
  comm.broadcast(all, 0);
  std::vector<RankedModel> models(chosen.size());
  std::vector<bool> seen(chosen.size(), false);
  for (const json& j : json::parse(all)) {
    const std::size_t i = j.at("index");
    TLKIT_ASSERT(i < models.size() && !seen[i]);
    seen[i] = true;
    models[i] = decode_model(j);
  }
  TLKIT_ASSERT(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  return models;
}

}  // namespace

RankResult rank_zoo(const ZooManifest& zoo, const RankOptions& o, const RankEvents& events) {
  const auto t_start = Clock::now();
  MetricPlan plan = plan_metrics(o.metrics.empty() ? kDefaultRankMetrics : o.metrics);
  TLKIT_CHECK_ARG(!plan.per_model.empty(), "--metric {}: no metric to compute", o.metrics);
  const Task task = o.extract.task;
  std::vector<std::string> not_for_targets;  // metrics left out because they need classes
  if (task != Task::kClassification) {
    std::vector<std::string> keep;
    for (const std::string& name : plan.per_model)
      (find_metric(name).supports_regression ? keep : not_for_targets).push_back(name);
    for (const std::string& name : plan.zoo_level) not_for_targets.push_back(name);
    std::vector<std::string> takes;
    for (const MetricInfo& info : metric_registry())
      if (info.supports_regression) takes.emplace_back(info.name);
    // Asked for by name, a metric that cannot take targets is an error; the default list and
    // "all" mean the metrics that apply.
    if (!o.metrics.empty() && !plan.all && !not_for_targets.empty())
      TLKIT_THROW_ARG(
          "--metric {}: {} {} class labels, and these are {} targets (metrics that take them: "
          "{})",
          o.metrics, fmt::join(not_for_targets, ", "),
          not_for_targets.size() == 1 ? "needs" : "need", to_string(task), fmt::join(takes, ", "));
    plan.per_model = keep;
    plan.zoo_level.clear();
    TLKIT_CHECK_ARG(!plan.per_model.empty(), "--metric {}: no metric takes {} targets", o.metrics,
                    to_string(task));
  }

  // The models to rank: those of the data's kind (and of --models when given).
  RankResult r;
  const DataKind kind = detect_data_kind(o.data);
  r.kind = to_string(kind);
  std::set<std::string> wanted(o.models.begin(), o.models.end());
  for (const std::string& name : o.models)
    TLKIT_CHECK_ARG(std::any_of(zoo.models.begin(), zoo.models.end(),
                                [&](const ZooModel& z) { return z.name == name; }),
                    "--models {}: no model of that name in {}", name, zoo.path);
  std::vector<const ZooModel*> chosen;
  std::vector<std::string> other_kind;
  for (const ZooModel& z : zoo.models) {
    if (!wanted.empty() && !wanted.count(z.name)) continue;
    if (z.kind != r.kind)
      other_kind.push_back(z.name);
    else
      chosen.push_back(&z);
  }
  TLKIT_CHECK_ARG(!chosen.empty(), "{}: no {} models to rank on {} ({} data){}", zoo.path, r.kind,
                  o.data, r.kind,
                  other_kind.empty()
                      ? ""
                      : fmt::format(" (the {} others are of the other kind)", other_kind.size()));
  if (!other_kind.empty())
    r.notes.push_back(fmt::format("{} {} model(s) of the zoo left out: the data is {}",
                                  other_kind.size(), r.kind == "image" ? "text" : "image", r.kind));

  // One listing for all models.
  const ImageListing all = list_dataset(o.data, o.extract.split, task);
  const ImageListing listing = subsample(all, o.extract.sample);
  r.data = o.data;
  r.split = o.extract.split;
  r.format = listing.format;
  r.classes = listing.classes;
  r.listed = static_cast<std::int64_t>(all.samples.size());
  r.selected = static_cast<std::int64_t>(listing.samples.size());
  r.listing_sha256 = listing_sha256(listing.samples);
  for (const std::string& note : listing.notes) r.notes.push_back(note);
  const std::string stat_sha = o.cache_dir.empty() ? "" : files_stat_sha256(listing.samples);
  r.task = task;
  r.target_names = listing.target_names;
  if (!not_for_targets.empty())
    r.notes.push_back(fmt::format(
        "{} targets: scored with {}; left out (they need class labels): {}", to_string(task),
        fmt::join(plan.per_model, ", "), fmt::join(not_for_targets, ", ")));
  if (task == Task::kClassification) {
    std::set<std::int64_t> labels;
    for (const ImageSample& s : listing.samples) labels.insert(s.label);
    r.num_classes = static_cast<std::int64_t>(labels.size());
    TLKIT_CHECK_ARG(labels.size() >= 2,
                    "{}: the {} samples selected have {} class(es); ranking "
                    "needs at least 2",
                    o.data, listing.samples.size(), labels.size());
  }

  r.metrics = plan.per_model;
  for (const std::string& z : plan.zoo_level) r.metrics.push_back(z);
  // One thread count for the whole run, resolved once. Extraction sets LibTorch's and BLAS's
  // threads to it; a model read from the cache runs no extraction, so BLAS would otherwise keep
  // OpenBLAS's own default, and OpenBLAS splits its sums by thread count: a cached model scored
  // up to 4e-13 relative away from the same model freshly extracted with --threads 1.
  const int threads = o.extract.threads > 0 ? o.extract.threads : idle_cores();
  // The models of an image zoo share one pass of decoding, as far as the budget holds.
  std::shared_ptr<DecodedImageCache> decoded;
  if (kind == DataKind::kImage && o.decode_cache_bytes > 0)
    decoded = std::make_shared<DecodedImageCache>(o.decode_cache_bytes);
  // The extraction options of chosen[i], and its result's fields from the manifest.
  auto prepare = [&](std::size_t i, RankedModel& m) {
    const ZooModel& z = *chosen[i];
    m.name = z.name;
    m.kind = z.kind;
    m.file = z.file;
    m.extra_json = z.extra_json;
    ExtractOptions eo = o.extract;
    eo.model = z.file;
    eo.data = o.data;
    eo.input_size = z.input_size;
    // The manifest's sizes are checked against what the model gives (a wrong input_size gives
    // features of another width, which would be scored silently).
    eo.expected.input_size = z.input_size;
    eo.expected.feature_dim = z.feature_dim;
    eo.expected.logits_dim = std::max<std::int64_t>(0, z.logits_dim);
    eo.expected_source = fmt::format("the zoo entry '{}'", z.name);
    eo.mean = z.mean;
    eo.std = z.std;
    eo.model_options.features_output = z.features_output;
    eo.model_options.logits_output = z.logits_dim > 0   ? z.logits_output
                                     : z.logits_dim < 0 ? kAutoOutput
                                                        : kNoOutput;
    eo.progress = events.progress;
    eo.threads = threads;
    eo.decoded_images = decoded;
    return eo;
  };
  // Extracts (or reads from the cache) and scores chosen[i]; a model's InputError becomes its
  // `error` and NaN scores.
  auto rank_one = [&](std::size_t i) {
    const ZooModel& z = *chosen[i];
    RankedModel m;
    ExtractOptions eo = prepare(i, m);
    try {
      const auto t0 = Clock::now();
      ModelData data;
      data.num_targets = static_cast<std::int64_t>(listing.target_names.size());
      const fs::path entry =
          look_up_cache(o.cache_dir, z, r.listing_sha256, stat_sha, listing, eo, m, &data);
      if (!m.cached) {
        TorchScriptModel model(z.file, eo.model_options);
        ExtractResult x = extract_features(listing, model, eo);
        for (const SkippedImage& s : x.skipped) m.notes.push_back("skipped " + s.reason);
        for (const std::string& note : x.model_notes) m.notes.push_back(note);
        if (x.nonfinite_features > 0)
          m.notes.push_back(fmt::format("{} non-finite feature values", x.nonfinite_features));
        const auto tw = Clock::now();
        if (!entry.empty()) write_extract_outputs(x, eo, entry.string());
        m.seconds = {{"load_model", x.timings.load_model_s},
                     {"optimize", x.timings.optimize_s},
                     {"decode", x.timings.decode_s},
                     {"resize", x.timings.resize_s},
                     {"forward", x.timings.inference_s},
                     {"wait_for_decode", x.timings.wait_s},
                     {"cache_write", entry.empty() ? 0.0 : seconds_since(tw)}};
        m.items_per_second = x.images_per_second;
        data.features = std::move(x.features);
        data.logits = std::move(x.logits);
        data.labels = std::move(x.labels);
        data.targets = target_matrix(x.samples);
        data.n = x.n;
        data.d = x.features_dim;
        data.logits_dim = x.has_logits ? x.logits_dim : 0;
      }
      m.extract_seconds = seconds_since(t0);
      m.n = data.n;
      m.d = data.d;
      m.logits_dim = data.logits_dim;
      check_manifest_widths(z, data);
      set_blas_threads(threads);  // fresh or cached, the features score on the same threads
      score_model(data, plan, o, &m);
    } catch (const InputError& e) {
      m.error = e.what();
      for (const std::string& name : plan.per_model) m.scores[name] = kNaN;
    }
    return m;
  };
  Communicator* comm = o.comm != nullptr && o.comm->size() > 1 ? o.comm : nullptr;
  // Without --shard-data, fewer models than processes split their samples when the split loses
  // nothing: class labels, and more samples than any model's features (the manifest's
  // feature_dim), since LogME with N <= D needs every row in one process.
  const bool split_pays = task == Task::kClassification && comm != nullptr &&
                          static_cast<int>(chosen.size()) < comm->size() &&
                          std::all_of(chosen.begin(), chosen.end(), [&](const ZooModel* z) {
                            return z->feature_dim > 0 && z->feature_dim < r.selected;
                          });
  r.shard_data = comm != nullptr && (o.shard_data || split_pays);
  if (r.shard_data) {
    TLKIT_CHECK_ARG(task == Task::kClassification,
                    "--shard-data: {} targets are scored by LogME on all the rows at once; rank "
                    "them without --shard-data (the models spread over the processes)",
                    to_string(task));
  }
  // chosen[i] with its samples split over the processes of `comm` (r.shard_data): every process
  // calls it for the same model. Each extracts (or reads from the cache) its rows; failures are
  // agreed on before any other collective, so that a model failing on one share fails on all.
  auto rank_shard = [&](std::size_t i) {
    Communicator& c = *comm;
    const ZooModel& z = *chosen[i];
    RankedModel m;
    ExtractOptions eo = prepare(i, m);
    eo.progress = nullptr;
    const auto t0 = Clock::now();
    ModelData data;
    data.num_targets = 0;
    fs::path entry;
    std::string error;  // this process's InputError
    std::optional<ExtractResult> x;
    // Whole batches per process: a batch holds the samples a single process would put in it.
    const auto total = static_cast<std::int64_t>(listing.samples.size());
    const std::int64_t batch = std::max<std::int64_t>(1, eo.batch);
    const RowRange batches = row_range((total + batch - 1) / batch, c.rank(), c.size());
    const std::int64_t b0 = std::min(total, batches.begin * batch);
    const std::int64_t b1 = std::min(total, batches.end * batch);
    try {
      entry = look_up_cache(o.cache_dir, z, r.listing_sha256, stat_sha, listing, eo, m, &data);
    } catch (const InputError& e) {
      error = e.what();
    }
    // Failed somewhere, read from the cache everywhere.
    std::int64_t agree[2] = {error.empty() ? 0 : 1, m.cached ? 1 : 0};
    c.allreduce_sum(agree, 2);
    const bool all_cached = agree[1] == c.size();
    std::int64_t first_row = 0;
    if (agree[0] == 0 && all_cached) {
      const RowRange rows = row_range(data.n, c.rank(), c.size());
      data.first = rows.begin;
      first_row = rows.begin;
      data.labels = std::vector<std::int64_t>(data.labels.begin() + rows.begin,
                                              data.labels.begin() + rows.end);
      data.n = rows.count();
    } else if (agree[0] == 0) {
      m.cached = false;
      m.seconds.clear();
      data = ModelData{};
      first_row = b0;  // rows before skipped images: a name for messages only
      try {
        if (b1 > b0) {
          ImageListing share = listing;
          share.samples.assign(listing.samples.begin() + b0, listing.samples.begin() + b1);
          TorchScriptModel model(z.file, eo.model_options);
          x = extract_features(share, model, eo);
          m.seconds = {
              {"load_model", x->timings.load_model_s}, {"optimize", x->timings.optimize_s},
              {"decode", x->timings.decode_s},         {"resize", x->timings.resize_s},
              {"forward", x->timings.inference_s},     {"wait_for_decode", x->timings.wait_s}};
          m.items_per_second = x->images_per_second;
          data.features = std::move(x->features);
          data.logits = std::move(x->logits);
          data.labels = x->labels;
          data.n = x->n;
          data.d = x->features_dim;
          data.logits_dim = x->has_logits ? x->logits_dim : 0;
        }
      } catch (const InputError& e) {
        error = e.what();
      }
      std::int64_t failed = error.empty() ? 0 : 1;
      c.allreduce_sum(&failed, 1);
      agree[0] = failed;
    }
    if (agree[0] > 0) {
      // The first failure in row order, as a single process meets it.
      const std::vector<std::string> errors = c.gather(error);
      for (const std::string& e : errors)
        if (m.error.empty()) m.error = e;
      for (const std::string& name : plan.per_model) m.scores[name] = kNaN;
    } else {
      std::int64_t sizes[3] = {data.d, data.logits_dim, 0};
      c.allreduce_max(sizes, 3);
      std::int64_t n = data.n;
      c.allreduce_sum(&n, 1);
      const std::int64_t local_n = data.n;
      data.d = sizes[0];
      data.logits_dim = sizes[1];
      // The extraction notes in row order (skipped images of every share), then the model's
      // own notes (rank 0's, which ran the first batch); rank 0 also gathers the rows to write
      // the cache entry a single process would write.
      const bool write = !all_cached && !entry.empty();
      json mine = {{"skipped", json::array()}, {"nonfinite", 0}, {"kept", json::array()}};
      if (x) {
        for (const SkippedImage& sk : x->skipped)
          mine["skipped"].push_back({{"path", sk.path}, {"reason", sk.reason}});
        mine["nonfinite"] = x->nonfinite_features;
        if (write) {
          std::size_t at = 0;  // x->samples are the share's samples minus the skipped ones
          for (const ImageSample& sample : x->samples) {
            while (listing.samples[static_cast<std::size_t>(b0) + at].path != sample.path ||
                   listing.samples[static_cast<std::size_t>(b0) + at].text != sample.text)
              ++at;
            mine["kept"].push_back(b0 + static_cast<std::int64_t>(at++));
          }
        }
      }
      const std::vector<std::string> parts = c.gather(mine.dump());
      auto bytes_of = [](const std::vector<float>& v) {
        return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
      };
      std::vector<std::string> feature_parts, logit_parts;
      if (write) {
        feature_parts = c.gather(bytes_of(data.features));
        logit_parts = c.gather(bytes_of(data.logits));
      }
      std::int64_t nonfinite = 0;
      if (c.is_root()) {
        for (const std::string& part : parts) {
          const json p = json::parse(part);
          for (const json& sk : p["skipped"])
            m.notes.push_back("skipped " + sk["reason"].get<std::string>());
          nonfinite += p["nonfinite"].get<std::int64_t>();
        }
        if (x)
          for (const std::string& note : x->model_notes) m.notes.push_back(note);
        if (nonfinite > 0)
          m.notes.push_back(fmt::format("{} non-finite feature values", nonfinite));
      }
      m.extract_seconds = seconds_since(t0);
      m.n = n;
      m.d = data.d;
      m.logits_dim = data.logits_dim;
      try {
        check_manifest_widths(z, data);
        // score() checks each process's rows on its own: a non-finite value is agreed on first,
        // so that no process goes on into the reductions alone.
        std::int64_t bad = 0;
        for (std::int64_t k = 0; k < local_n * data.d; ++k)
          bad += !std::isfinite(data.features_ptr()[k]);
        for (std::int64_t k = 0; k < local_n * data.logits_dim; ++k)
          bad += !std::isfinite(data.logits_ptr()[k]);
        c.allreduce_sum(&bad, 1);
        TLKIT_CHECK_ARG(bad == 0,
                        "{}: {} non-finite values in the features or logits; the metrics need "
                        "finite ones",
                        z.file, bad);
        set_blas_threads(threads);
        data.n = local_n;
        score_model(data, plan, o, &m, &c, first_row);
        // Rank 0 alone writes, after the last collective: a failure here is its model's error,
        // which the others take from it below.
        if (write && c.is_root()) {
          const auto tw = Clock::now();
          ExtractResult all_rows = std::move(*x);
          all_rows.listing = listing;
          all_rows.listed = total;
          all_rows.samples.clear();
          all_rows.skipped.clear();
          all_rows.labels.clear();
          for (const std::string& part : parts) {
            const json p = json::parse(part);
            for (const json& k : p["kept"]) {
              const ImageSample& sample = listing.samples[k.get<std::size_t>()];
              all_rows.samples.push_back(sample);
              all_rows.labels.push_back(sample.label);
            }
            for (const json& sk : p["skipped"])
              all_rows.skipped.push_back(
                  {sk["path"].get<std::string>(), sk["reason"].get<std::string>()});
          }
          all_rows.n = n;
          all_rows.nonfinite_features = nonfinite;
          all_rows.features.clear();
          all_rows.logits.clear();
          for (const std::string& f : feature_parts)
            all_rows.features.insert(all_rows.features.end(),
                                     reinterpret_cast<const float*>(f.data()),
                                     reinterpret_cast<const float*>(f.data() + f.size()));
          for (const std::string& l : logit_parts)
            all_rows.logits.insert(all_rows.logits.end(), reinterpret_cast<const float*>(l.data()),
                                   reinterpret_cast<const float*>(l.data() + l.size()));
          write_extract_outputs(all_rows, eo, entry.string());
          m.seconds["cache_write"] = seconds_since(tw);
        } else if (!all_cached) {
          m.seconds["cache_write"] = 0.0;
        }
      } catch (const InputError& e) {
        m.error = e.what();
        for (const std::string& name : plan.per_model) m.scores[name] = kNaN;
      }
    }
    // Every process returns rank 0's account of the model.
    std::string mine = c.is_root() ? encode_model(i, m).dump() : std::string();
    c.broadcast(mine, 0);
    return decode_model(json::parse(mine));
  };
  if (r.shard_data) {
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      RankedModel m = rank_shard(i);
      if (comm->is_root() && events.model_finished) events.model_finished(m);
      r.models.push_back(std::move(m));
    }
  } else if (comm == nullptr) {
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      if (events.model_started) events.model_started(i, chosen.size(), *chosen[i]);
      RankedModel m = rank_one(i);
      if (events.model_finished) events.model_finished(m);
      r.models.push_back(std::move(m));
    }
  } else {
    r.models = rank_distributed(*comm, chosen, rank_one);
    if (comm->is_root() && events.model_finished)
      for (const RankedModel& m : r.models) events.model_finished(m);
  }
  std::string first_error;
  for (const RankedModel& m : r.models)
    if (first_error.empty() && !m.error.empty()) first_error = m.error;
  const bool all_failed = std::all_of(r.models.begin(), r.models.end(),
                                      [](const RankedModel& m) { return !m.error.empty(); });
  if (all_failed) throw InputError(first_error);

  // Zoo-level metrics from the per-model components of the models that have them.
  if (!plan.zoo_level.empty()) {
    std::map<std::string, std::map<std::string, double>> per_model;
    for (const RankedModel& m : r.models)
      for (const auto& [metric, value] : m.scores)
        if (std::isfinite(value)) per_model[m.name][metric] = value;
    const auto combined = combine_zoo_metrics(per_model);
    for (const std::string& zname : plan.zoo_level) {
      const auto it = combined.find(zname);
      for (RankedModel& m : r.models) {
        double v = kNaN;
        if (it != combined.end())
          if (auto mit = it->second.find(m.name); mit != it->second.end()) v = mit->second;
        m.scores[zname] = v;
      }
      if (it == combined.end() && !plan.all)
        r.notes.push_back(fmt::format("{} needs its components for at least 2 models", zname));
    }
  }
  if (o.metrics.empty() || plan.all) {
    // The default list has leep and nce "when available": drop them when no model has logits.
    // "all" keeps only the metrics that apply: not leep and nce without logits, not the
    // zoo-level ones for a single model.
    r.metrics.erase(std::remove_if(r.metrics.begin(), r.metrics.end(),
                                   [&](const std::string& metric) {
                                     return std::none_of(r.models.begin(), r.models.end(),
                                                         [&](const RankedModel& m) {
                                                           return !std::isnan(m.scores.at(metric));
                                                         });
                                   }),
                    r.metrics.end());
    if (r.metrics.empty()) r.metrics = plan.per_model;
  }
  std::vector<std::string> names;
  for (const RankedModel& m : r.models) names.push_back(m.name);
  for (const std::string& metric : r.metrics) {
    std::vector<double> scores;
    for (const RankedModel& m : r.models) scores.push_back(m.scores.at(metric));
    const bool zoo_level =
        std::find(plan.zoo_level.begin(), plan.zoo_level.end(), metric) != plan.zoo_level.end();
    r.ranking[metric] =
        rank_order(names, scores, zoo_level || find_metric(metric).higher_is_better);
  }
  if (decoded) {
    const DecodedImageCache::Stats st = decoded->stats();
    std::int64_t c[] = {st.decoded, st.hits, st.kept, st.bytes, st.not_kept};
    if (comm != nullptr) comm->allreduce_sum(c, 5);  // every process has its own
    r.decode_cache = {decoded->max_bytes(), c[0], c[1], c[2], c[3], c[4]};
  }
  r.seconds = seconds_since(t_start);
  return r;
}

}  // namespace tlkit::model

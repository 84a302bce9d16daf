// Ranking a zoo of pretrained models on a labelled target dataset (`tlkit rank`): list and
// subsample the data once, extract every model's features (or take them from the feature cache
// when the model file, the listing and the preprocessing are unchanged), score each model with
// the chosen transferability metrics, and order the models by each metric.
//
// Feature cache: <cache_dir>/<model name>/<key>/ holds what `tlkit extract` writes (features.npy,
// logits.npy, labels.npy or targets.npy, files.txt, meta.json last). The key (16 hex digits) is a
// SHA-256 of the model file's SHA-256, the listing's SHA-256 (names, labels, and texts for text
// data), the size and modification time of every listed image, the preprocessing (input size,
// mean/std), the output indices and the optimisation asked for; meta.json records it, and an entry
// is used only when its meta.json exists and records the same key. An interrupted extraction leaves
// no meta.json (it is written last), so the next run redoes that model and keeps the finished ones.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tlkit/core/metrics.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit {
class Communicator;
class StatisticsBackend;
}

namespace tlkit::model {

/// The metrics rank computes when none are asked for (leep and nce need the models' logits).
inline constexpr const char* kDefaultRankMetrics = "logme,leep,nce,hscore_shrink,transrate";

struct RankOptions {
  std::string data;  ///< images (folder or CSV) or texts (lines or CSV), text_dataset.h
  /// task (regression and multi-label targets are scored by the metrics that take real-valued
  /// targets, supports_regression, and the others are left out with a note), split, batch, threads,
  /// decode_threads, sample, on_bad_image, model_options.optimization, cancelled are used; model,
  /// data, input size, mean/std and output indices come per model.
  ExtractOptions extract;
  /// Comma-separated registered metrics, or zoo-level ones (etran, ncti: their per-model
  /// components are computed and combined across the zoo), or "all" (every registered and
  /// zoo-level metric that applies). Empty: kDefaultRankMetrics. Both leave out the metrics no
  /// model can compute (leep and nce when no model has logits; zoo-level ones for one model).
  std::string metrics;
  MetricParams params;
  std::uint64_t seed = 0;           ///< for metrics with random steps
  std::string cache_dir;            ///< empty: no cache
  std::vector<std::string> models;  ///< names to rank (empty: every model of the data's kind)
  /// Several processes (size() > 1; nullptr or size 1: this process ranks every model): every
  /// process calls rank_zoo() with the same options; the models are spread over them by a shared
  /// queue, largest model file first, each process ranking its models with its own threads, and
  /// every process returns the whole result (events.model_finished is called on rank 0 only,
  /// once all models are done; model_started and progress are not called).
  Communicator* comm = nullptr;
  /// With comm: the models go one after another, each on every process, its samples split
  /// over the processes (contiguous row ranges aligned to extract.batch, so that every batch is
  /// the one a single process would run), and score() reduces the statistics of the split rows
  /// (ScoreOptions::comm). Also taken when there are fewer models than processes, for class
  /// labels and more samples than every model's manifest feature_dim. A model that fails on one
  /// process's share fails on all; rank 0 gathers the features to write the cache entry a single
  /// process would write, and a cached model is read by every process, each taking its rows.
  bool shard_data = false;
  /// Decoded images kept in memory for the next models (bytes of pixels; 0: none), so that a zoo
  /// decodes each image once when they fit (decoded_images.h); image data only.
  std::int64_t decode_cache_bytes = std::int64_t{1} << 30;
  /// Where score()'s statistics are computed (ScoreOptions::backend; nullptr: the CPU). The
  /// command line sets the CUDA backend when the models run on a CUDA device and tlkit was built
  /// with it (docs/gpu.md).
  StatisticsBackend* statistics_backend = nullptr;
};

struct RankedModel {
  std::string name;
  std::string kind;
  std::string file;
  std::string sha256;      ///< SHA-256 (hex) of the model file
  std::string extra_json;  ///< the manifest's other fields (pretraining, licence, ...)
  bool cached = false;     ///< features came from the cache
  std::string cache_path;  ///< the cache entry (empty without a cache)
  std::int64_t n = 0;
  std::int64_t d = 0;
  std::int64_t logits_dim = 0;   ///< 0: no logits
  double extract_seconds = 0.0;  ///< load + optimise + extract, or reading the cache
  double score_seconds = 0.0;
  double items_per_second = 0.0;  ///< extraction speed (0 when cached)
  /// Where extract_seconds went: load_model, optimize, decode, resize (both summed over the
  /// decode threads), forward, wait_for_decode, cache_write; cache_read for a cached model.
  std::map<std::string, double> seconds;
  std::map<std::string, double> scores;  ///< metric -> score; NaN where it could not be computed
  std::vector<std::string> notes;        ///< warnings for people (skipped images, missing logits)
  std::string error;                     ///< non-empty: this model failed (the others went on)
};

struct RankResult {
  std::string data;
  std::string split;
  std::string kind;                       ///< "image" or "text"
  std::string format;                     ///< listing format (folder, csv, lines, text-csv)
  std::vector<std::string> classes;       ///< class names (empty for integer labels)
  std::int64_t num_classes = 0;           ///< distinct labels among the selected samples
  Task task = Task::kClassification;      ///< options.extract.task
  std::vector<std::string> target_names;  ///< regression and multi-label: the target columns
  std::int64_t listed = 0;                ///< samples before subsampling
  std::int64_t selected = 0;              ///< after
  std::string listing_sha256;
  std::vector<std::string> metrics;  ///< score columns: per-model metrics, then zoo-level ones
  std::vector<RankedModel> models;   ///< manifest order
  /// metric -> model names, best first (each metric's own direction; NaN scores last).
  std::map<std::string, std::vector<std::string>> ranking;
  std::vector<std::string> notes;  ///< models of the other kind left out, listing warnings, ...
  double seconds = 0.0;
  bool shard_data = false;  ///< each model's samples were split over the processes
  /// The decoded images shared by the models (image data with decode_cache_bytes > 0; summed
  /// over the processes, each of which has its own): files decoded, answers from memory, images
  /// kept and their bytes, images decoded but not kept (the budget was full).
  struct DecodeCache {
    std::int64_t max_bytes = 0, decoded = 0, hits = 0, kept = 0, bytes = 0, not_kept = 0;
  } decode_cache;
};

/// Called on the calling thread: a model starts (index in the ranked models, count), extraction
/// progress (done, total samples), a model is finished.
struct RankEvents {
  std::function<void(std::size_t, std::size_t, const ZooModel&)> model_started;
  std::function<void(std::int64_t, std::int64_t)> progress;
  std::function<void(const RankedModel&)> model_finished;
};

/// Ranks the models of `zoo` whose kind matches the data. A model that fails (its forward fails,
/// returns a shape other than the manifest's, ...) gets `error` and NaN scores and the others go
/// on; when every model fails the first failure is thrown. Throws tlkit::InputError for bad
/// options or data, tlkit::Interrupted when options.extract.cancelled() turns true.
RankResult rank_zoo(const ZooManifest& zoo, const RankOptions& options,
                    const RankEvents& events = {});

/// Model names ordered best first by `scores` (same order as names): descending when
/// higher_is_better, NaN last, ties in the given order.
std::vector<std::string> rank_order(const std::vector<std::string>& names,
                                    const std::vector<double>& scores, bool higher_is_better);

}  // namespace tlkit::model

// Scoring a model's features with several transferability metrics in one pass.
//
// score() computes the requested metrics for one model on one target dataset. Metrics that share
// work share it: the features are read once into per-class sufficient statistics (sums, the Gram
// matrix F^T F by SYRK), and one symmetric eigendecomposition of F^T F (LogME) and one of the
// centred scatter matrix (H-score, shrinkage H-score, TransRate) serve every metric that needs
// them. Inputs follow the data contract of matrix_view.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tlkit/core/logme.h"
#include "tlkit/core/matrix_view.h"
#include "tlkit/core/metrics.h"

namespace tlkit {

/// This process's feature rows read chunk by chunk (`tlkit score --chunk-rows`), so that only
/// one chunk is in memory: the metrics that pass over the rows in blocks (stream_limitation())
/// run on it, passing over the chunks once per pass.
class RowSource {
 public:
  virtual ~RowSource() = default;
  /// Calls fn(chunk, begin) for consecutive chunks from the first row; `begin` counts from it,
  /// and the chunk's data is valid during the call only.
  virtual void for_chunks(const std::function<void(const FeatureView&, std::int64_t)>& fn) = 0;
};

struct ScoreInputs {
  FeatureView features;  ///< N x D; may be empty (rows = 0) if only probability metrics are asked
  LabelView labels;      ///< N class labels (any integers; the distinct values are the classes)
  FeatureView probs;     ///< N x Cs source-class probabilities (rows = 0: not given)
  /// Optional (nullptr: every row is its own sample): N ids naming the original sample each row
  /// copies, as in a bootstrap resample (bootstrap.h). Rows with the same id are copies of one
  /// sample, and the metrics that compare samples with each other do not let a copy stand in for
  /// an unseen sample: knn excludes a row's copies from its neighbours, logistic puts all copies of
  /// a sample on the same side of its train/test split, parc leaves out the pairs of copies.
  const std::int64_t* sample_ids = nullptr;
  /// Optional: the feature rows streamed from here instead of held in `features`, which then
  /// gives only their shape (rows, cols; data nullptr).
  RowSource* feature_rows = nullptr;
};

class Communicator;
class StatisticsBackend;

struct ScoreOptions {
  MetricParams params;     ///< per-metric parameters (registry defaults otherwise)
  std::uint64_t seed = 0;  ///< for metrics with random steps (nleep, logistic split)
  int threads = 0;         ///< 0: the process's setting, and one thread for small inputs
  /// Rows split over processes: with a communicator of size() > 1, `inputs` hold this process's
  /// rows only (rows [first_row, first_row + N) of the whole data), every process calls score()
  /// with the same metrics and options, and each returns the report of all the rows. Only the
  /// metrics for which distributed_limitation() is empty run this way (InputError otherwise).
  Communicator* comm = nullptr;
  std::int64_t first_row = 0;  ///< this process's first row, for messages that name a row
  /// Where F^T F, the per-class sums and the decomposition of F^T F are computed (nullptr: the
  /// CPU). A GPU backend (tlkit::cuda, docs/gpu.md) gives the same statistics to rounding; the
  /// metrics use them unchanged.
  StatisticsBackend* backend = nullptr;
};

/// One metric's result. `details` holds named components (e.g. NCTI's parts, GBC's pair count).
struct MetricValue {
  std::string name;
  double score = 0.0;
  double seconds = 0.0;  ///< wall time of this metric, including shared work it triggered first
  bool converged = true;
  std::map<std::string, double> details;
  std::vector<std::string> notes;
};

struct ScoreReport {
  std::int64_t n = 0;
  std::int64_t d = 0;
  std::vector<std::int64_t> labels;  ///< the distinct labels (classes), ascending
  std::vector<MetricValue> metrics;  ///< in the requested order
  LogmeResult logme;                 ///< filled when "logme" was requested
  double shared_seconds = 0.0;       ///< one-pass statistics and decompositions, all metrics
  /// Rows split over processes (ScoreOptions::comm): seconds in operations between them (the
  /// reductions, and waiting there for the slowest process); 0 in one process.
  double communication_seconds = 0.0;
};

/// The report of LogME alone from its result `r` (moved in), computed in `seconds`: for the
/// paths that do not go through score() (streamed chunks, regression targets).
ScoreReport logme_report(LogmeResult r, double seconds);

/// Empty when `metric` runs with its rows split over several processes (ScoreOptions::comm):
/// computable from the reduced one-pass statistics plus, for some, further reduced sums.
/// Otherwise what it needs that a split run does not have (its per-row or pairwise work), for a
/// message that names it. `params` matters for gbc (only pca_dims 0 runs split).
std::string distributed_limitation(std::string_view metric, const MetricParams& params);

/// Empty when `metric` runs on streamed rows (ScoreInputs::feature_rows): it reads the features
/// only in blocks. Otherwise why not (it holds or revisits individual rows), for a message.
std::string stream_limitation(std::string_view metric, const MetricParams& params);

/// Computes `metrics` (registered names) on `inputs`. Throws InputError for invalid input or a
/// metric whose inputs are missing.
ScoreReport score(const ScoreInputs& inputs, const std::vector<std::string>& metrics,
                  const ScoreOptions& options = {});

}  // namespace tlkit

// Shared, lazily computed statistics of one scoring run (private to tlkit::core).
//
// Every metric reads what it needs from here, so one scoring run converts the features to float64
// and accumulates F^T F once, and decomposes it once, however many metrics use it.
#pragma once

#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "linalg.h"
#include "tlkit/core/communicator.h"
#include "tlkit/core/score.h"
#include "tlkit/core/score_statistics.h"

namespace tlkit {

/// NCTI's per-model components (src/core/metrics_ncti.cpp).
struct metrics_ncti_parts {
  double seli = 0.0, ncc = 0.0, vc = 0.0, shrinkage = 0.0;
};

class MetricContext {
 public:
  MetricContext(const ScoreInputs& inputs, const ScoreOptions& options);

  const ScoreInputs& inputs() const { return inputs_; }
  const ScoreOptions& options() const { return options_; }
  const MetricParams& params() const { return options_.params; }
  std::int64_t n() const { return n_; }
  std::int64_t d() const { return inputs_.features.cols; }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(labels_.size()); }
  const std::vector<std::int64_t>& labels() const { return labels_; }  ///< distinct, ascending
  const std::vector<int>& y() const { return y_; }  ///< class index per row of this process
  /// Rows of this process: n() in one process; its shard when the rows are split over several
  /// (ScoreOptions::comm). n(), labels() and counts() are always those of all the rows.
  std::int64_t rows() const { return static_cast<std::int64_t>(y_.size()); }
  /// True when the rows are split over several processes.
  bool sharded() const { return comm_ != nullptr; }
  /// Sums `data` over the processes in place (nothing to do in one process): a metric that
  /// accumulates its own sums over for_blocks() calls this once its local pass is done, so the
  /// same code serves one process and many.
  void reduce_sum(double* data, std::size_t count);
  void reduce_sum(double& value) { reduce_sum(&value, 1); }
  void reduce_sum(Eigen::MatrixXd& m) { reduce_sum(m.data(), static_cast<std::size_t>(m.size())); }
  void reduce_sum(Eigen::VectorXd& v) { reduce_sum(v.data(), static_cast<std::size_t>(v.size())); }
  const std::vector<std::int64_t>& counts() const { return counts_; }  ///< rows per class
  /// The original sample row i copies (ScoreInputs::sample_ids), or i when none were given.
  std::int64_t sample_id(std::int64_t i) const {
    return inputs_.sample_ids ? inputs_.sample_ids[i] : i;
  }

  /// Throws InputError if `metric` needs inputs that were not given.
  void require(unsigned inputs, std::string_view metric) const;

  /// First moments only: column sums and per-class sums, from an O(N D) pass when stats() has
  /// not run (metrics that need no Gram matrix, run alone, skip its O(N D^2) pass). The values
  /// are bit-identical to stats()'s whichever runs first.
  struct Moments {
    Eigen::VectorXd sum;         // D
    Eigen::MatrixXd class_sums;  // D x C
  };
  const Moments& moments();

  /// One pass over the features: F^T F (upper triangle), column sums, per-class sums. With the
  /// rows split over processes, each accumulates its rows (ScoreStatistics) and the sums are
  /// reduced over all of them; the metrics read the same Stats either way.
  struct Stats {
    Eigen::MatrixXd gram;        // D x D, upper triangle
    Eigen::VectorXd sum;         // D
    Eigen::MatrixXd class_sums;  // D x C
  };
  const Stats& stats();

  /// With ScoreOptions::backend set, stats() and gram_eigen() come from the backend (a GPU);
  /// moments() and scatter() always run here.
  ///
  /// N > D only: F^T F decomposed once (LogME's decomposition) with the projections of the
  /// per-class sums, V^T S (D x C). Covariance-based metrics use it through rank-one updates
  /// (T = F^T F - N mu mu^T) when it is well conditioned, saving a second decomposition.
  struct GramEigen {
    Eigen::VectorXd values;         // ascending
    Eigen::MatrixXd proj;           // V^T S
    Eigen::VectorXd mean;           // V^T mu
    bool well_conditioned = false;  // smallest eigenvalue > 1e-10 x largest
  };
  const GramEigen* gram_eigen();  // nullptr when N <= D

  /// The centred scatter T = sum (f - mu)(f - mu)^T = F^T F - N mu mu^T, decomposed once:
  /// eigenvalues (ascending) and the projections P = V^T B of the between-class factor
  /// B = [sqrt(n_c) (mu_c - mu)] (D x C), so that sum_c n_c (v^T (mu_c - mu))^2 = ||P row||^2.
  struct Scatter {
    Eigen::VectorXd mean;
    Eigen::VectorXd eigenvalues;  // of T, ascending
    Eigen::MatrixXd proj;
    double trace = 0.0;
    detail::SymmetricEigen eig;
  };
  const Scatter& scatter();

  /// The k principal directions of the features (eigenvectors of T for its k largest
  /// eigenvalues, largest first), D x k.
  Eigen::MatrixXd principal_directions(std::int64_t k);

  /// Centred features projected on `directions` (D x k): (F - mu) V, N x k. With the rows split
  /// over processes, each projects its rows and the N x k result is gathered on every process
  /// (k doubles per row are exchanged, not the D features).
  Eigen::MatrixXd project_centred(const Eigen::MatrixXd& directions);

  /// LogME as in logme(), with the mode from params ("logme.mode").
  const LogmeResult& logme();

  /// Calls fn(rows, begin, count) over float64 row blocks of this process's features (begin
  /// counts from its first row, and indexes y()).
  template <typename Fn>
  void for_blocks(Fn&& fn) {
    if (inputs_.feature_rows) {
      // Streamed rows: each chunk is checked as it is read and passed on in the same blocks.
      inputs_.feature_rows->for_chunks([&](const FeatureView& chunk, std::int64_t begin) {
        detail::check_finite(chunk, options_.first_row + begin, "features");
        detail::for_row_blocks(chunk, buffer_,
                               [&](const double* rows, std::int64_t b, std::int64_t cnt) {
                                 fn(rows, begin + b, cnt);
                               });
      });
      return;
    }
    detail::for_row_blocks(inputs_.features, buffer_, fn);
  }

  /// Class index of every row, all processes' rows in row order (y() in one process): for the
  /// metrics that work on gathered projected rows (project_centred()).
  const std::vector<int>& all_y();

  /// Rows of each class held by the processes before this one (zeros in one process): this
  /// process's rows are rows class_offsets()[c] + 0, 1, ... of their class in row order.
  std::vector<std::int64_t> class_offsets();

  /// Every process's `mine`, concatenated in rank order, on every process (`mine` in one
  /// process): rows of a fixed width concatenate into all the rows in row order.
  std::string all_gather(const std::string& mine);

  /// Calls fn(rows, first, count, y) for each process's rows, in rank order, on every process:
  /// float64 rows (count x d, row-major) that are rows [first, first + count) of all the rows,
  /// with their class indices (in one process, its rows in for_blocks()'s blocks). The owner sends
  /// its rows to the others (a broadcast per process), so each process sees every block once and
  /// holds one block at a time.
  template <typename Fn>
  void for_every_process_rows(Fn&& fn) {
    if (!comm_) {  // this process's rows, block by block
      for_blocks([&](const double* block, std::int64_t b, std::int64_t cnt) {
        fn(block, b, cnt, y_.data() + b);
      });
      return;
    }
    std::vector<double> mine;
    detail::copy_rows(inputs_.features, mine);
    const std::int64_t first = options_.first_row;
    for (int r = 0; r < comm_->size(); ++r) {
      std::string block;
      if (r == comm_->rank()) {
        const std::int64_t head[2] = {first, rows()};
        block.append(reinterpret_cast<const char*>(head), sizeof head);
        // An empty shard (more processes than rows) has no rows: no pointer to copy from.
        if (!y_.empty())
          block.append(reinterpret_cast<const char*>(y_.data()), y_.size() * sizeof(int));
        if (!mine.empty())
          block.append(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(double));
      }
      communicate([&] { comm_->broadcast(block, r); });
      std::int64_t head[2];
      std::memcpy(head, block.data(), sizeof head);
      const std::size_t off = sizeof head + static_cast<std::size_t>(head[1]) * sizeof(int);
      std::vector<int> y(static_cast<std::size_t>(head[1]));
      if (!y.empty()) std::memcpy(y.data(), block.data() + sizeof head, y.size() * sizeof(int));
      std::vector<double> rows_of(static_cast<std::size_t>(head[1] * d()));
      if (!rows_of.empty())
        std::memcpy(rows_of.data(), block.data() + off, rows_of.size() * sizeof(double));
      fn(rows_of.data(), head[0], head[1], y.data());
    }
  }

  /// Storage for NCTI's components, computed once for its three registry entries.
  std::optional<metrics_ncti_parts>& ncti_cache() { return ncti_; }

  /// Seconds spent in shared work (statistics, decompositions) so far.
  double shared_seconds() const { return shared_seconds_; }
  /// Seconds spent in operations between processes (0 in one process).
  double communication_seconds() const { return communication_seconds_; }

 private:
  class SharedTimer;

  const ScoreInputs& inputs_;
  const ScoreOptions& options_;
  Communicator* comm_ = nullptr;  // set when the rows are split over several processes
  std::int64_t n_ = 0;
  std::vector<std::int64_t> labels_;
  std::vector<int> y_;
  std::vector<std::int64_t> counts_;
  void add_class_sums(const double* rows, std::int64_t begin, std::int64_t count,
                      Eigen::MatrixXd& class_sums) const;
  void stats_from_backend(Stats& s);  // stats() through ScoreOptions::backend
  // stats()'s end: the first moments from `class_sums` (this pass's, summed over the processes)
  // unless an earlier moments() call has them, then stats_ = s.
  const Stats& keep_stats(Stats& s, Eigen::MatrixXd&& class_sums);

  std::optional<Moments> moments_;
  std::optional<Stats> stats_;
  std::optional<Scatter> scatter_;
  std::optional<GramEigen> gram_eigen_;
  std::optional<LogmeResult> logme_;
  std::optional<metrics_ncti_parts> ncti_;
  std::optional<std::vector<int>> all_y_;
  std::vector<double> buffer_;
  double shared_seconds_ = 0.0;
  double communication_seconds_ = 0.0;
  int shared_depth_ = 0;
  template <typename Fn>
  void communicate(Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    communication_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

// The metric implementations (one registry entry each, src/core/metrics.cpp).
namespace metrics {
void logme(MetricContext& ctx, MetricValue& out);
void leep(MetricContext& ctx, MetricValue& out);
void nce(MetricContext& ctx, MetricValue& out);
void hscore(MetricContext& ctx, MetricValue& out);
void hscore_shrink(MetricContext& ctx, MetricValue& out);
void transrate(MetricContext& ctx, MetricValue& out);
void knn(MetricContext& ctx, MetricValue& out);
void gbc(MetricContext& ctx, MetricValue& out);
void sfda(MetricContext& ctx, MetricValue& out);
void parc(MetricContext& ctx, MetricValue& out);
void logistic(MetricContext& ctx, MetricValue& out);
void nleep(MetricContext& ctx, MetricValue& out);
void etran_lda(MetricContext& ctx, MetricValue& out);
void etran_energy(MetricContext& ctx, MetricValue& out);
void ncti_seli(MetricContext& ctx, MetricValue& out);
void ncti_ncc(MetricContext& ctx, MetricValue& out);
void ncti_vc(MetricContext& ctx, MetricValue& out);
using NctiParts = metrics_ncti_parts;
const NctiParts& ncti_parts(MetricContext& ctx);

/// Adds a note to `out` when its score is within 1e-6 (relative) of the metric's maximum `top`:
/// the classes are linearly separable in these features (always possible when N <= D), and the
/// metric then ties every such model.
void note_if_saturated(MetricValue& out, double top, const MetricContext& ctx);

/// LEEP of probabilities `p` (N x Cs) for class indices y; log = false: without the log.
double leep_value(const FeatureView& p, const std::vector<int>& y, std::int64_t classes, bool log);
/// The same for this process's rows of split rows: the joint table and the final sum are
/// reduced through `ctx` (N = ctx.n()); in one process, leep_value() itself.
double leep_value(MetricContext& ctx, const FeatureView& p, const std::vector<int>& y, bool log);
}  // namespace metrics

}  // namespace tlkit

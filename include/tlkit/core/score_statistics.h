// The additive sufficient statistics of score()'s one-pass metrics, as a value that can be
// accumulated over a subset of the rows, merged with another subset's, and sent as bytes.
//
// For rows split into shards, merging the shards' statistics gives the statistics of all the rows
// (up to the order of the floating-point sums), which is how `mpirun -n P tlkit score` computes
// the metrics without gathering the features: each process accumulates its rows and the
// statistics are summed over the processes (docs/scaling.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tlkit/core/matrix_view.h"

namespace tlkit {

class Communicator;

struct ScoreStatistics {
  std::int64_t n = 0;                ///< rows accumulated
  std::int64_t d = 0;                ///< feature dimension
  std::vector<std::int64_t> labels;  ///< the classes, ascending distinct labels
  std::vector<std::int64_t> counts;  ///< rows per class (labels' order)
  std::vector<double> gram;          ///< F^T F, D x D column-major; upper triangle (lower: 0)
  std::vector<double> class_sums;    ///< per-class column sums, D x C column-major

  /// The statistics of `features` (N x D) with `labels` (N), over the classes `classes`
  /// (ascending distinct labels; every label must be one of them, and classes absent from these
  /// rows get zero counts). Accumulated in the same row blocks as score(), so they are
  /// bit-identical to the statistics score() computes on the same rows.
  static ScoreStatistics accumulate(const FeatureView& features, const LabelView& labels,
                                    const std::vector<std::int64_t>& classes);

  /// Adds `other`'s rows: the classes become the union of both, D must match (InputError).
  void merge(const ScoreStatistics& other);

  /// Sums the statistics of every process of `comm` in place (all processes must have the same
  /// D and classes): packed upper triangle, class sums and counts, two allreduce calls.
  void allreduce(Communicator& comm);

  /// A self-describing little-endian image ("TLKSTAT1", sizes, then the arrays).
  std::string to_bytes() const;
  /// The statistics of an image from to_bytes(); throws InputError naming `origin` for a wrong
  /// magic, a truncated or oversized image, or inconsistent sizes.
  static ScoreStatistics from_bytes(const std::string& bytes,
                                    const std::string& origin = "statistics");
};

}  // namespace tlkit

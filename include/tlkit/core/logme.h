// LogME: the logarithm of the maximum evidence of Bayesian linear regression from the features to
// each target, averaged over targets and divided by N.
//
//   You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer
//   Learning", ICML 2021. Extended in "Ranking and Tuning Pre-trained Models: A New Paradigm for
//   Exploiting Model Hubs", JMLR 2022 (arXiv 2110.10545).
//
// Per target y (length N): prior m ~ N(0, alpha^-1 I_D), likelihood y ~ N(F m, beta^-1 I_N),
//   L(alpha, beta) = D/2 ln alpha + N/2 ln beta - N/2 ln 2pi - beta/2 ||F m - y||^2
//                    - alpha/2 ||m||^2 - 1/2 ln|alpha I + beta F^T F|,   m = posterior mean,
// and LogME = mean over targets of max_{alpha,beta} L / N. Higher is better. Scores are only
// comparable between models on the same targets; they are log densities, not probabilities.
//
// Three modes (docs/logme.md has the derivations and a worked example):
// * kExact (default): the true maximum of L over alpha, beta > 0, with ln|alpha I + beta F^T F|
//   over all D eigenvalues. Found by a global search over t = alpha / beta of the profile evidence
//   (beta eliminated in closed form), so it is correct for N <= D and rank-deficient features.
//   Where the supremum is a limit (beta -> inf when the target lies in the span of the features
//   with rank N; alpha -> inf when the features do not help), the limit value is returned and
//   `boundary` says which.
// * kThuml: the default `LogME.fit` of github.com/thuml/LogME (fixed-point "Algorithm 3": at most
//   11 iterations, relative tolerance 1e-3, 1e-5 added in the updates, evidence at the previous t,
//   eigenvalues with sqrt(sigma) <= 1e-10 dropped). Reproduced, including its inflated score when
//   rank(F) < D (it sums ln(alpha + beta sigma) over the nonzero eigenvalues only).
// * kIcml: the ICML 2021 algorithm as in TLlib's `log_maximum_evidence` (MacKay updates, at most
//   11 iterations, tolerance 1e-2, all D eigenvalues, no epsilon).
//
// Computation: float64 throughout; one symmetric eigendecomposition shared by all targets (F^T F
// by SYRK when N > D, F F^T when N <= D; LAPACK dsyevd); per target only O(rank) scalar work.
// LogmeAccumulator computes the same from row chunks (sufficient statistics F^T F, F^T Y, Y^T Y,
// N), so memory does not grow with N.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tlkit/core/matrix_view.h"

namespace tlkit {

enum class LogmeMode { kExact, kThuml, kIcml };

/// "exact", "thuml" or "icml"; throws InputError for anything else.
LogmeMode parse_logme_mode(const std::string& name);
const char* to_string(LogmeMode mode);

/// Where the maximum of the evidence was found for one target.
enum class Boundary {
  kInterior,       ///< a stationary point with finite alpha, beta
  kBetaInfinite,   ///< sup at beta -> inf: target in the span of F with rank(F) = N (N <= D)
  kAlphaInfinite,  ///< sup at alpha -> inf: the features do not explain the target (m = 0)
  kNoiseFloor,     ///< target an exact linear function of F with rank(F) < N: the evidence is
                   ///< unbounded; the value at the float64 noise floor of the residual is given
  kNotApplicable   ///< the reference modes (thuml, icml) do not classify their end point
};
const char* to_string(Boundary b);

struct LogmeOptions {
  LogmeMode mode = LogmeMode::kExact;
  /// Worker threads for the per-target stage (0: all hardware threads). BLAS threads are set by
  /// the caller (set_blas_threads).
  int threads = 0;
};

/// Per-target results are in target order: ascending label for classification, column order for
/// regression. alpha or beta is +inf where the maximum is a limit (see Boundary).
struct LogmeResult {
  double score = 0.0;              ///< mean of per_target
  std::vector<double> per_target;  ///< max evidence / N per target
  std::vector<double> alpha;       ///< prior precision at the maximum
  std::vector<double> beta;        ///< noise precision at the maximum
  std::vector<int> iterations;     ///< fixed-point iterations, or bisection steps (exact)
  std::vector<bool> converged;     ///< false: iteration cap hit or a non-finite value arose
  std::vector<Boundary> boundary;
  std::int64_t n = 0;     ///< samples
  std::int64_t d = 0;     ///< feature dimension
  std::int64_t rank = 0;  ///< eigenvalues above the mode's cut
  LogmeMode mode = LogmeMode::kExact;
  std::vector<std::int64_t> labels;  ///< classification: the distinct labels, ascending
  bool regression = false;
};

/// LogME for classification: one-vs-rest 0/1 targets over the distinct labels present.
/// features: N x D (N >= 2, D >= 1), finite; labels: N integers with at least 2 distinct values.
LogmeResult logme(const FeatureView& features, const LabelView& labels,
                  const LogmeOptions& options = {});

/// LogME for regression or multi-label (pass the N x K 0/1 matrix): each column is a target.
LogmeResult logme(const FeatureView& features, const TargetView& targets,
                  const LogmeOptions& options = {});

/// LogME's posterior mean weights at the fitted alpha, beta of `fit` (a logme() result on the
/// same features and labels or targets): per target k, m_k = beta_k (alpha_k I + beta_k F^T F)^-1
/// F^T y_k, the D weights of the Bayesian linear model whose evidence LogME maximises (the
/// "ms" of thuml/LogME and TLlib, and the teacher heads of B-Tuning, You et al., JMLR 2022).
/// Computed in the eigenbasis of F^T F (or of F F^T when N <= D) over the eigenvalues the mode
/// keeps: m_k = V diag(1 / (t_k + w)) V^T F^T y_k with t_k = alpha_k / beta_k; beta = inf (the
/// noise-free boundary) gives the minimum-norm least-squares solution and alpha = inf gives 0.
/// Returns K x D, row-major (K = fit's targets: its labels' one-vs-rest 0/1 columns, ascending,
/// for classification). Throws tlkit::InputError when the shapes do not match `fit`.
std::vector<double> logme_weights(const FeatureView& features, const LabelView& labels,
                                  const LogmeResult& fit);
std::vector<double> logme_weights(const FeatureView& features, const TargetView& targets,
                                  const LogmeResult& fit);

/// Streaming sufficient statistics for LogME: feed row chunks, then ask for the result. The
/// result equals logme() on the concatenated rows up to rounding (the N <= D case differs only
/// in how eigenvalues at rounding level are treated, because F F^T is not available). Memory:
/// D^2 + D*K doubles, independent of N.
class LogmeAccumulator {
 public:
  /// Classification accumulator (targets are the labels seen so far).
  LogmeAccumulator();
  ~LogmeAccumulator();
  LogmeAccumulator(LogmeAccumulator&&) noexcept;
  LogmeAccumulator& operator=(LogmeAccumulator&&) noexcept;

  /// Adds rows with their labels (classification). All chunks must have the same D.
  void update(const FeatureView& features, const LabelView& labels);
  /// Adds rows with their targets (regression). All chunks must have the same D and K.
  void update(const FeatureView& features, const TargetView& targets);
  /// Adds another accumulator's statistics (for multi-process reduction).
  void merge(const LogmeAccumulator& other);
  /// The statistics as a self-describing little-endian image ("TLKLOGM1": kind, N, D, targets,
  /// the class labels in column order, the packed upper triangle of F^T F, F^T Y, Y^T Y), to send
  /// to another process and merge there.
  std::string to_bytes() const;
  /// An accumulator holding the statistics of a to_bytes() image; throws InputError naming
  /// `origin` for a wrong magic, a truncated or oversized image, or inconsistent sizes.
  static LogmeAccumulator from_bytes(const std::string& bytes,
                                     const std::string& origin = "LogME statistics");

  std::int64_t rows() const;
  std::int64_t dim() const;
  LogmeResult result(const LogmeOptions& options = {}) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Sets the number of BLAS/LAPACK threads (OpenBLAS) and OpenMP threads; 0 means idle_cores().
void set_blas_threads(int threads);

/// The cores not busy with other processes right now, at least 1: all cores minus the busy ones,
/// from the CPU time over 50 ms of the cores this process may run on (its affinity mask; Linux
/// /proc/stat's per-core lines: idle and iowait are idle; steal, time taken by other virtual
/// machines, is busy) less this process's own CPU time (its threads are not competition). All
/// cores where /proc is missing. (The load average lags and counts
/// tlkit's own previous run; /proc/loadavg's running count showed a phantom second task on an
/// idle machine.) The default thread count of tlkit's commands: on a 2-core machine with both
/// cores busy, two threads made scoring 10000 x 1280 features 14x slower than one (56 s vs 3.9 s)
/// because idle threads spin-wait for a core.
int idle_cores();

}  // namespace tlkit

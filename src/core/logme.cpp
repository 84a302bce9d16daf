#include "tlkit/core/logme.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <sys/resource.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "linalg.h"
#include "logme_internal.h"

namespace tlkit {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();
const double kLog2Pi = std::log(2.0 * M_PI);

// The spectral form of the problem that every mode works from: the eigenvalues of F^T F that the
// mode keeps (sigma, length k), the squared coordinates of each target on the matching unit
// eigenvectors of F F^T (x2, k x T), ||y||^2 and the energy outside the kept span
// (res = ||y||^2 - sum x2). num_zero = D - k eigenvalues are treated as exactly zero.
struct Spectrum {
  std::int64_t n = 0;
  std::int64_t d = 0;
  Eigen::VectorXd sigma;
  Eigen::MatrixXd x2;
  Eigen::VectorXd yy;
  Eigen::VectorXd res;
  bool full_row_rank = false;  // k == N: every target lies in the span of F
};

struct TargetFit {
  double evidence = 0.0;  // already divided by N
  double alpha = 0.0;
  double beta = 0.0;
  int iterations = 0;
  bool converged = true;
  Boundary boundary = Boundary::kNotApplicable;
};

// Which eigenvalues a mode keeps. thuml keeps sqrt(sigma) > 1e-10 on the Gram path (an absolute
// cut) and every singular value on its thin-SVD path (N <= D). The exact and icml modes drop what
// is indistinguishable from zero in float64: sigma <= sigma_max * max(N, D) * eps, the rounding
// level of an eigenvalue computed from F^T F (LAPACK's own rank tolerance).
// thuml takes singular values of the Gram matrix (np.linalg.svd), i.e. |eigenvalue|: rounding
// noise in the null space of a rank-deficient F comes out positive (~1e-13 sigma_max) and passes
// its 1e-20 cut. We use |w| the same way, so those directions are kept exactly as the reference
// keeps them (they then contribute ln(alpha) to its log-determinant).
double thuml_sigma(double w) { return std::abs(w); }

bool keep_eigenvalue(double w, double w_max, std::int64_t n, std::int64_t d, LogmeMode mode,
                     bool kernel_path) {
  if (mode == LogmeMode::kThuml) return kernel_path || std::sqrt(thuml_sigma(w)) > 1e-10;
  return w > w_max * static_cast<double>(std::max(n, d)) * kEps && w > 0.0;
}

// ---- exact mode ------------------------------------------------------------------------------
// With t = alpha / beta the optimal beta is N / E(t), E(t) = res + sum x2 t / (t + sigma) (the
// ridge residual plus penalty), and the profile log evidence is, up to the constant
// c = N/2 (ln N - 1 - ln 2pi),
//   l(t) = -1/2 sum_i ln(1 + sigma_i / t) - N/2 ln E(t),
// where the D - k zero eigenvalues have cancelled against D/2 ln alpha. Its derivative in
// s = ln t is g = (gamma - N t E'(t) / E(t)) / 2, gamma = sum sigma / (t + sigma),
// E'(t) = sum x2 sigma / (t + sigma)^2. We scan g on a grid in s that brackets every stationary
// point, refine each + to - sign change by bisection, and compare those maxima with the limits
// t -> 0 and t -> inf. The MacKay fixed point is not used: it can stop early or slowly, and it
// cannot see maxima at a boundary.
struct ExactProblem {
  const double* sigma;
  const double* x2;
  std::int64_t k;
  double res;
  double yy;
  double n;

  double g(double t) const {
    double gamma = 0.0, s = 0.0, ep = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      const double r = 1.0 / (t + sigma[i]);
      gamma += sigma[i] * r;
      s += x2[i] * r;
      ep += x2[i] * sigma[i] * r * r;
    }
    // res == 0: E = t S exactly, so t E' / E = E' / S (no cancellation near t -> 0).
    const double ratio = res > 0.0 ? t * ep / (res + t * s) : ep / s;
    return 0.5 * (gamma - n * ratio);
  }

  double profile(double t) const {  // l(t) without the constant
    double logs = 0.0, s = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      logs += std::log1p(sigma[i] / t);
      s += x2[i] / (t + sigma[i]);
    }
    const double e = res > 0.0 ? res + t * s : t * s;
    return -0.5 * logs - 0.5 * n * std::log(e);
  }

  double e_of(double t) const {
    double s = 0.0;
    for (std::int64_t i = 0; i < k; ++i) s += x2[i] / (t + sigma[i]);
    return res + t * s;
  }
};

TargetFit fit_exact(const double* sigma, const double* x2, std::int64_t k, double res, double yy,
                    std::int64_t n_int, bool full_row_rank) {
  const double n = static_cast<double>(n_int);
  const double c = 0.5 * n * (std::log(n) - 1.0 - kLog2Pi);
  TargetFit fit;
  fit.boundary = Boundary::kInterior;

  // Candidates: the limit t -> inf (alpha -> inf, m = 0, beta = N / ||y||^2) is always a
  // supremum candidate; its value is the model that ignores the features.
  double best_l = -0.5 * n * std::log(yy);
  double best_t = kInf;

  if (k == 0) {  // F = 0: the evidence does not depend on t.
    fit.evidence = (best_l + c) / n;
    fit.alpha = kInf;
    fit.beta = n / yy;
    fit.boundary = Boundary::kAlphaInfinite;
    return fit;
  }

  // The residual outside span(F). rank(F) = N puts every target in the span (res = 0 exactly).
  // Otherwise a residual at the rounding level of ||y||^2 - sum x2 means the target is an exact
  // linear function of F, whose evidence is unbounded (beta -> inf with rank < N); we keep the
  // float64 noise floor instead so the answer stays finite, and say so.
  bool noise_floor = false;
  const double floor_res = yy * static_cast<double>(std::max<std::int64_t>(n_int, k)) * kEps * 16;
  if (full_row_rank) {
    res = 0.0;
  } else if (!(res > floor_res)) {
    res = floor_res;
    noise_floor = true;
  }
  ExactProblem p{sigma, x2, k, res, yy, n};

  double smin = kInf, smax = 0.0, sum_x2_over_sigma = 0.0;
  for (std::int64_t i = 0; i < k; ++i) {
    smin = std::min(smin, sigma[i]);
    smax = std::max(smax, sigma[i]);
    sum_x2_over_sigma += x2[i] / sigma[i];
  }
  // Below t_lo, g > 0 when res > 0 (gamma > k (1 - 1e-6), N t E'/E < 1e-3), so no maximum lies
  // there; above t_hi, g has the sign of sum sigma - N sum x2 sigma / ||y||^2 to 1e-6.
  double t_lo = smin * 1e-6;
  if (res > 0.0 && sum_x2_over_sigma > 0.0)
    t_lo = std::min(t_lo, 1e-3 * res / (n * sum_x2_over_sigma));
  const double t_hi = smax * 1e6;
  const double h = 0.5;  // grid step in ln t: a factor of 1.65
  const double s_lo = std::log(t_lo), s_hi = std::log(t_hi);
  const int steps = static_cast<int>(std::ceil((s_hi - s_lo) / h));

  bool finite = true;
  double s_prev = s_lo;
  double g_prev = p.g(t_lo);
  if (!(g_prev > 0.0)) {
    // Decreasing at the bottom: the supremum may be the limit t -> 0. With res = 0 and k = N its
    // value is -1/2 sum ln sigma - N/2 ln sum(x2 / sigma); otherwise take t_lo itself.
    double l0;
    double t0;
    if (res == 0.0) {
      l0 = -0.5 * n * std::log(sum_x2_over_sigma);
      for (std::int64_t i = 0; i < k; ++i) l0 -= 0.5 * std::log(sigma[i]);
      t0 = 0.0;
    } else {
      l0 = p.profile(t_lo);
      t0 = t_lo;
    }
    if (l0 > best_l) {
      best_l = l0;
      best_t = t0;
    }
  }
  int best_iters = 0;
  for (int j = 1; j <= steps; ++j) {
    const double s_cur = std::min(s_lo + j * h, s_hi);
    const double g_cur = p.g(std::exp(s_cur));
    if (!std::isfinite(g_cur)) finite = false;
    if (g_prev > 0.0 && !(g_cur > 0.0)) {
      // A local maximum in (s_prev, s_cur]: bisection to 1e-12 in ln t (relative 1e-12 in t; the
      // evidence is stationary there, so its error is second order).
      double a = s_prev, b = s_cur;
      int iters = 0;
      while (b - a > 1e-12 && iters < 200) {
        const double mid = 0.5 * (a + b);
        if (p.g(std::exp(mid)) > 0.0)
          a = mid;
        else
          b = mid;
        ++iters;
      }
      const double t = std::exp(0.5 * (a + b));
      const double l = p.profile(t);
      if (!std::isfinite(l)) finite = false;
      if (l > best_l) {
        best_l = l;
        best_t = t;
        best_iters = iters;
      }
    }
    s_prev = s_cur;
    g_prev = g_cur;
  }

  fit.evidence = (best_l + c) / n;
  fit.iterations = best_iters;
  fit.converged = finite && std::isfinite(fit.evidence);
  if (best_t == kInf) {
    fit.alpha = kInf;
    fit.beta = n / yy;
    fit.boundary = Boundary::kAlphaInfinite;
  } else if (best_t == 0.0) {
    fit.alpha = n / sum_x2_over_sigma;
    fit.beta = kInf;
    fit.boundary = Boundary::kBetaInfinite;
  } else {
    fit.beta = n / p.e_of(best_t);
    fit.alpha = best_t * fit.beta;
    fit.boundary = noise_floor ? Boundary::kNoiseFloor : Boundary::kInterior;
  }
  return fit;
}

// ---- thuml mode: thuml/LogME LogME._fit_fixed_point, term by term ------------------------------
TargetFit fit_thuml(const double* sigma, const double* x2, std::int64_t k, double res_x2,
                    std::int64_t n_int, std::int64_t d_int) {
  const double n = static_cast<double>(n_int), d = static_cast<double>(d_int);
  double alpha = 1.0, beta = 1.0, t = 1.0, m2 = 0.0, res2 = 0.0;
  TargetFit fit;
  fit.converged = false;
  for (int it = 0; it < 11; ++it) {
    t = alpha / beta;
    double gamma = 0.0;
    m2 = 0.0;
    res2 = 0.0;
    for (std::int64_t i = 0; i < k; ++i) {
      gamma += sigma[i] / (sigma[i] + t);
      m2 += sigma[i] * x2[i] / ((t + sigma[i]) * (t + sigma[i]));
      const double q = 1.0 + sigma[i] / t;
      res2 += x2[i] / (q * q);
    }
    res2 += res_x2;
    alpha = gamma / (m2 + 1e-5);
    beta = (n - gamma) / (res2 + 1e-5);
    const double t_new = alpha / beta;
    fit.iterations = it + 1;
    if (std::abs(t_new - t) / t <= 1e-3) {
      fit.converged = true;
      break;
    }
  }
  // The reference evaluates the evidence with the new alpha, beta but m2, res2 of the old t, and
  // sums ln(alpha + beta sigma) over the k kept eigenvalues only, while D/2 ln alpha counts all D.
  double logdet = 0.0;
  for (std::int64_t i = 0; i < k; ++i) logdet += std::log(alpha + beta * sigma[i]);
  const double ev = d / 2.0 * std::log(alpha) + n / 2.0 * std::log(beta) - 0.5 * logdet -
                    beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * kLog2Pi;
  fit.evidence = ev / n;
  fit.alpha = alpha;
  fit.beta = beta;
  if (!std::isfinite(fit.evidence)) fit.converged = false;
  return fit;
}

// ---- icml mode: TLlib tllib/ranking/logme.py each_evidence (ICML 2021), in the eigenbasis -------
// m = V diag(beta / (alpha + beta sigma)) V^T F^T y, so ||m||^2 = sum sigma x2 beta^2 /
// (alpha + beta sigma)^2 and ||y - F m||^2 = res + sum x2 (alpha / (alpha + beta sigma))^2.
TargetFit fit_icml(const double* sigma, const double* x2, std::int64_t k, double res_x2,
                   std::int64_t n_int, std::int64_t d_int) {
  const double n = static_cast<double>(n_int), d = static_cast<double>(d_int);
  double alpha = 1.0, beta = 1.0, lam = 1.0, alpha_de = 0.0, beta_de = 0.0;
  TargetFit fit;
  fit.converged = false;
  for (int it = 0; it < 11; ++it) {
    double gamma = 0.0;
    alpha_de = 0.0;
    beta_de = res_x2;
    for (std::int64_t i = 0; i < k; ++i) {
      gamma += sigma[i] / (sigma[i] + lam);
      const double den = alpha + beta * sigma[i];
      alpha_de += sigma[i] * x2[i] * (beta / den) * (beta / den);
      beta_de += x2[i] * (alpha / den) * (alpha / den);
    }
    alpha = gamma / alpha_de;
    beta = (n - gamma) / beta_de;
    const double new_lam = alpha / beta;
    fit.iterations = it + 1;
    if (std::abs(new_lam - lam) / lam < 0.01) {
      fit.converged = true;
      break;
    }
    lam = new_lam;
  }
  // All D eigenvalues: the D - k zeros each contribute ln(alpha).
  double logdet = static_cast<double>(d_int - k) * std::log(alpha);
  for (std::int64_t i = 0; i < k; ++i) logdet += std::log(alpha + beta * sigma[i]);
  const double ev = d / 2.0 * std::log(alpha) + n / 2.0 * std::log(beta) - 0.5 * logdet -
                    beta / 2.0 * beta_de - alpha / 2.0 * alpha_de - n / 2.0 * kLog2Pi;
  fit.evidence = ev / n;
  fit.alpha = alpha;
  fit.beta = beta;
  if (!std::isfinite(fit.evidence)) fit.converged = false;
  return fit;
}

int resolve_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

LogmeResult solve(const Spectrum& sp, const LogmeOptions& options) {
  const std::int64_t targets = sp.yy.size();
  const std::int64_t k = sp.sigma.size();
  LogmeResult r;
  r.n = sp.n;
  r.d = sp.d;
  r.rank = k;
  r.mode = options.mode;
  r.per_target.resize(targets);
  r.alpha.resize(targets);
  r.beta.resize(targets);
  r.iterations.resize(targets);
  r.boundary.resize(targets);
  std::vector<char> converged(targets);
  // Per-target work is independent scalar loops over k eigenvalues; none of it throws.
#pragma omp parallel for schedule(dynamic) num_threads(resolve_threads(options.threads))
  for (std::int64_t c = 0; c < targets; ++c) {
    const double* x2 = sp.x2.col(c).data();
    TargetFit f;
    switch (options.mode) {
      case LogmeMode::kExact:
        f = fit_exact(sp.sigma.data(), x2, k, sp.res[c], sp.yy[c], sp.n, sp.full_row_rank);
        break;
      case LogmeMode::kThuml:
        f = fit_thuml(sp.sigma.data(), x2, k, sp.res[c], sp.n, sp.d);
        break;
      case LogmeMode::kIcml:
        f = fit_icml(sp.sigma.data(), x2, k, std::max(sp.res[c], 0.0), sp.n, sp.d);
        break;
    }
    r.per_target[c] = f.evidence;
    r.alpha[c] = f.alpha;
    r.beta[c] = f.beta;
    r.iterations[c] = f.iterations;
    r.boundary[c] = f.boundary;
    converged[c] = f.converged;
  }
  r.converged.assign(converged.begin(), converged.end());
  r.score =
      std::accumulate(r.per_target.begin(), r.per_target.end(), 0.0) / static_cast<double>(targets);
  return r;
}

// Keeps the eigenpairs a mode wants; `coords` (m x T) holds each target's coordinate on every
// eigenvector of the decomposed matrix *before* the division that makes them unit-norm in R^N
// (gram path: z = v^T F^T y, so x = z / sqrt(sigma); kernel path: x = u^T y directly).
Spectrum make_spectrum(const Eigen::VectorXd& w, const Eigen::MatrixXd& coords,
                       const Eigen::VectorXd& yy, std::int64_t n, std::int64_t d, LogmeMode mode,
                       bool kernel_path) {
  const double w_max = w.size() ? std::max(w.maxCoeff(), 0.0) : 0.0;
  std::vector<Eigen::Index> kept;
  for (Eigen::Index j = 0; j < w.size(); ++j)
    if (keep_eigenvalue(w[j], w_max, n, d, mode, kernel_path)) kept.push_back(j);
  Spectrum sp;
  sp.n = n;
  sp.d = d;
  const auto k = static_cast<Eigen::Index>(kept.size());
  sp.sigma.resize(k);
  sp.x2.resize(k, coords.cols());
  for (Eigen::Index i = 0; i < k; ++i) {
    const Eigen::Index j = kept[i];
    const double s = mode == LogmeMode::kThuml ? thuml_sigma(w[j]) : std::max(w[j], 0.0);
    sp.sigma[i] = s;
    for (Eigen::Index c = 0; c < coords.cols(); ++c) {
      const double z = coords(j, c);
      sp.x2(i, c) = kernel_path ? z * z : z * z / s;
    }
  }
  sp.yy = yy;
  sp.res = yy - sp.x2.colwise().sum().transpose();
  sp.full_row_rank = (k == n);
  if (mode != LogmeMode::kThuml) sp.res = sp.res.cwiseMax(0.0);
  return sp;
}

void check_shape(std::int64_t n, std::int64_t d, std::int64_t label_rows, const char* what) {
  TLKIT_CHECK_ARG(d >= 1, "features: need at least 1 feature column, got D = {}", d);
  TLKIT_CHECK_ARG(n == label_rows, "features have {} rows but {} has {} entries", n, what,
                  label_rows);
}

}  // namespace

LogmeMode parse_logme_mode(const std::string& name) {
  if (name == "exact") return LogmeMode::kExact;
  if (name == "thuml") return LogmeMode::kThuml;
  if (name == "icml") return LogmeMode::kIcml;
  TLKIT_THROW_ARG("logme mode: unknown value '{}' (expected exact, thuml or icml)", name);
}

const char* to_string(LogmeMode mode) {
  switch (mode) {
    case LogmeMode::kExact:
      return "exact";
    case LogmeMode::kThuml:
      return "thuml";
    case LogmeMode::kIcml:
      return "icml";
  }
  return "?";
}

const char* to_string(Boundary b) {
  switch (b) {
    case Boundary::kInterior:
      return "interior";
    case Boundary::kBetaInfinite:
      return "beta_infinite";
    case Boundary::kAlphaInfinite:
      return "alpha_infinite";
    case Boundary::kNoiseFloor:
      return "noise_floor";
    case Boundary::kNotApplicable:
      return "n/a";
  }
  return "?";
}

namespace {
// CPU time of the cores this process may run on (its affinity mask), from /proc/stat's per-core
// lines: idle (idle + iowait) and total, in ticks, and how many cores were counted. On a machine
// whose container is given some of the host's cores, the aggregate line would count the others.
bool cpu_ticks(long long& idle, long long& total, int& counted) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  const bool have_mask = sched_getaffinity(0, sizeof(mask), &mask) == 0;
  std::ifstream in("/proc/stat");
  idle = total = 0;
  counted = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 3, "cpu") != 0) break;  // the cpu lines come first
    int id = -1;
    if (std::sscanf(line.c_str(), "cpu%d", &id) != 1 || id < 0) continue;  // the aggregate line
    if (have_mask && (id >= CPU_SETSIZE || !CPU_ISSET(id, &mask))) continue;
    std::istringstream fields(line.substr(line.find(' ')));
    long long v = 0;
    // user nice system idle iowait irq softirq steal (steal: taken by other virtual machines)
    for (int field = 0; field < 8 && fields >> v; ++field) {
      total += v;
      if (field == 3 || field == 4) idle += v;
    }
    ++counted;
  }
  return counted > 0 && total > 0;
}
}  // namespace

// This process's CPU time so far (its own threads: startup work, BLAS threads still spinning).
double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int idle_cores() {
  const int cores = std::max(1, omp_get_num_procs());
  long long idle0 = 0, total0 = 0, idle1 = 0, total1 = 0;
  int counted0 = 0, counted1 = 0;
  const double self0 = self_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (!cpu_ticks(idle0, total0, counted0)) return cores;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!cpu_ticks(idle1, total1, counted1) || counted1 != counted0 || total1 <= total0) return cores;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Busy cores among ours, less this process's own CPU time (its threads are not competition).
  const double busy =
      static_cast<double>(counted1) *
      (1.0 - static_cast<double>(idle1 - idle0) / static_cast<double>(total1 - total0));
  const double others = busy - (self_cpu_seconds() - self0) / wall;
  return std::clamp(cores - static_cast<int>(std::lround(std::max(0.0, others))), 1, cores);
}

void set_blas_threads(int threads) {
  const int t = threads > 0 ? threads : idle_cores();
  openblas_set_num_threads(t);
  omp_set_num_threads(t);
}

// ---- streaming sufficient statistics --------------------------------------------------------
struct LogmeAccumulator::State {
  enum class Kind { kUnset, kClassification, kRegression } kind = Kind::kUnset;
  std::int64_t n = 0;
  std::int64_t d = -1;
  Eigen::MatrixXd gram;  // upper triangle of F^T F
  Eigen::MatrixXd fty;   // D x T: F^T y per target (per label column for classes)
  Eigen::VectorXd yy;    // ||y||^2 per target
  std::map<std::int64_t, Eigen::Index> label_column;  // classification: label -> column of fty
  std::vector<double> buffer;                         // float64 copy of the current block

  // The column of fty (and entry of yy) for a class label, appended (zero) on first sight.
  Eigen::Index column_of(std::int64_t label) {
    auto it = label_column.find(label);
    if (it != label_column.end()) return it->second;
    const Eigen::Index col = fty.cols();
    label_column.emplace(label, col);
    fty.conservativeResize(Eigen::NoChange, col + 1);
    fty.col(col).setZero();
    yy.conservativeResize(col + 1);
    yy[col] = 0.0;
    return col;
  }

  void start(const FeatureView& f, Kind k) {
    if (kind == Kind::kUnset) {
      kind = k;
      d = f.cols;
      TLKIT_CHECK_ARG(d >= 1, "features: need at least 1 feature column, got D = {}", d);
      gram = Eigen::MatrixXd::Zero(d, d);
      fty.resize(d, 0);
    }
    TLKIT_CHECK_ARG(kind == k,
                    "LogME accumulator: cannot mix classification and regression "
                    "chunks");
    TLKIT_CHECK_ARG(f.cols == d, "features chunk has {} columns, earlier chunks had {}", f.cols, d);
  }
};

LogmeAccumulator::LogmeAccumulator() : state_(std::make_unique<State>()) {}
LogmeAccumulator::~LogmeAccumulator() = default;
LogmeAccumulator::LogmeAccumulator(LogmeAccumulator&&) noexcept = default;
LogmeAccumulator& LogmeAccumulator::operator=(LogmeAccumulator&&) noexcept = default;

std::int64_t LogmeAccumulator::rows() const { return state_->n; }
std::int64_t LogmeAccumulator::dim() const { return state_->d; }

void LogmeAccumulator::update(const FeatureView& features, const LabelView& labels) {
  State& s = *state_;
  check_shape(features.rows, features.cols, labels.size, "labels");
  s.start(features, State::Kind::kClassification);
  // Validate the whole chunk before touching the statistics: a bad chunk leaves them as they were.
  detail::check_finite(features, s.n, "features");
  detail::for_row_blocks(
      features, s.buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
        detail::syrk_accumulate_rows(rows, cnt, s.d, s.gram.data());
        for (std::int64_t i = 0; i < cnt; ++i) {
          const std::int64_t label = labels.data[b + i];
          const Eigen::Index col = s.column_of(label);
          s.fty.col(col) += Eigen::Map<const Eigen::VectorXd>(rows + i * s.d, s.d);
          s.yy[col] += 1.0;
        }
      });
  s.n += features.rows;
}

void LogmeAccumulator::update(const FeatureView& features, const TargetView& targets) {
  State& s = *state_;
  check_shape(features.rows, features.cols, targets.rows, "targets");
  TLKIT_CHECK_ARG(targets.cols >= 1, "targets: need at least 1 column, got {}", targets.cols);
  const bool first = s.kind == State::Kind::kUnset;
  s.start(features, State::Kind::kRegression);
  if (first) {
    s.fty = Eigen::MatrixXd::Zero(s.d, targets.cols);
    s.yy = Eigen::VectorXd::Zero(targets.cols);
  }
  TLKIT_CHECK_ARG(targets.cols == s.fty.cols(),
                  "targets chunk has {} columns, earlier chunks had {}", targets.cols,
                  s.fty.cols());
  for (std::int64_t i = 0; i < targets.rows; ++i)
    for (std::int64_t c = 0; c < targets.cols; ++c)
      TLKIT_CHECK_ARG(std::isfinite(targets.at(i, c)),
                      "targets: non-finite value {} at row {}, column {}", targets.at(i, c),
                      s.n + i, c);
  detail::check_finite(features, s.n, "features");
  Eigen::MatrixXd yblock;
  detail::for_row_blocks(
      features, s.buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
        detail::syrk_accumulate_rows(rows, cnt, s.d, s.gram.data());
        yblock.resize(cnt, targets.cols);
        for (std::int64_t i = 0; i < cnt; ++i)
          for (std::int64_t c = 0; c < targets.cols; ++c) yblock(i, c) = targets.at(b + i, c);
        // fty += B^T Y with B row-major cnt x d, i.e. column-major d x cnt.
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(s.d),
                    static_cast<int>(targets.cols), static_cast<int>(cnt), 1.0, rows,
                    static_cast<int>(s.d), yblock.data(), static_cast<int>(cnt), 1.0, s.fty.data(),
                    static_cast<int>(s.d));
        s.yy += yblock.colwise().squaredNorm().transpose();
      });
  s.n += features.rows;
}

namespace {
constexpr char kLogmeMagic[8] = {'T', 'L', 'K', 'L', 'O', 'G', 'M', '1'};
}

std::string LogmeAccumulator::to_bytes() const {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the image is little-endian");
  const State& s = *state_;
  const std::int64_t d = std::max<std::int64_t>(s.d, 0), t = s.fty.cols();
  std::string out(kLogmeMagic, sizeof kLogmeMagic);
  const std::int64_t head[4] = {static_cast<std::int64_t>(s.kind), s.n, d, t};
  out.append(reinterpret_cast<const char*>(head), sizeof head);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(t), 0);
  for (const auto& [label, col] : s.label_column) labels[static_cast<std::size_t>(col)] = label;
  if (s.kind == State::Kind::kClassification && t > 0)
    out.append(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(std::int64_t));
  for (std::int64_t j = 0; j < d; ++j)
    out.append(reinterpret_cast<const char*>(s.gram.data() + j * d),
               static_cast<std::size_t>(j + 1) * sizeof(double));
  if (d * t > 0)
    out.append(reinterpret_cast<const char*>(s.fty.data()),
               static_cast<std::size_t>(d * t) * sizeof(double));
  if (t > 0)
    out.append(reinterpret_cast<const char*>(s.yy.data()),
               static_cast<std::size_t>(t) * sizeof(double));
  return out;
}

LogmeAccumulator LogmeAccumulator::from_bytes(const std::string& bytes, const std::string& origin) {
  const std::size_t head_size = sizeof kLogmeMagic + 4 * sizeof(std::int64_t);
  TLKIT_CHECK_ARG(
      bytes.size() >= head_size && std::memcmp(bytes.data(), kLogmeMagic, sizeof kLogmeMagic) == 0,
      "{}: not a tlkit LogME statistics image ({} bytes, expected the magic TLKLOGM1 and four "
      "sizes)",
      origin, bytes.size());
  std::int64_t head[4];
  std::memcpy(head, bytes.data() + sizeof kLogmeMagic, sizeof head);
  const std::int64_t kind = head[0], n = head[1], d = head[2], t = head[3];
  constexpr std::int64_t kMaxDim = std::int64_t{1} << 20, kMaxTargets = std::int64_t{1} << 24;
  TLKIT_CHECK_ARG(kind >= 0 && kind <= 2 && n >= 0 && d >= 0 && d <= kMaxDim && t >= 0 &&
                      t <= kMaxTargets && (kind != 0 || (n == 0 && d == 0 && t == 0)),
                  "{}: sizes out of range: kind = {}, n = {}, d = {}, targets = {}", origin, kind,
                  n, d, t);
  const bool classes = kind == static_cast<std::int64_t>(State::Kind::kClassification);
  const std::uint64_t expected =
      head_size + static_cast<std::uint64_t>(classes ? t : 0) * sizeof(std::int64_t) +
      static_cast<std::uint64_t>(d * (d + 1) / 2 + d * t + t) * sizeof(double);
  TLKIT_CHECK_ARG(bytes.size() == expected,
                  "{}: {} bytes, expected {} for d = {}, targets = {} (truncated or corrupt)",
                  origin, bytes.size(), expected, d, t);
  LogmeAccumulator acc;
  State& s = *acc.state_;
  s.kind = static_cast<State::Kind>(kind);
  s.n = n;
  s.d = kind == 0 ? -1 : d;
  const char* p = bytes.data() + head_size;
  if (classes) {
    for (std::int64_t c = 0; c < t; ++c) {
      std::int64_t label;
      std::memcpy(&label, p, sizeof label);
      p += sizeof label;
      TLKIT_CHECK_ARG(s.label_column.emplace(label, static_cast<Eigen::Index>(c)).second,
                      "{}: label {} appears twice", origin, label);
    }
  }
  s.gram = Eigen::MatrixXd::Zero(d, d);
  for (std::int64_t j = 0; j < d; ++j) {
    std::memcpy(s.gram.data() + j * d, p, static_cast<std::size_t>(j + 1) * sizeof(double));
    p += (j + 1) * sizeof(double);
  }
  s.fty.resize(d, t);
  s.yy.resize(t);
  // memcpy needs real pointers even for 0 bytes, and empty matrices have none.
  if (d * t > 0) std::memcpy(s.fty.data(), p, static_cast<std::size_t>(d * t) * sizeof(double));
  p += d * t * sizeof(double);
  if (t > 0) std::memcpy(s.yy.data(), p, static_cast<std::size_t>(t) * sizeof(double));
  return acc;
}

void LogmeAccumulator::merge(const LogmeAccumulator& other) {
  State& s = *state_;
  const State& o = *other.state_;
  if (o.kind == State::Kind::kUnset) return;
  if (s.kind == State::Kind::kUnset) {
    s = State{o.kind, o.n, o.d, o.gram, o.fty, o.yy, o.label_column, {}};
    return;
  }
  TLKIT_CHECK_ARG(s.kind == o.kind, "LogME accumulator merge: classification vs regression");
  TLKIT_CHECK_ARG(s.d == o.d, "LogME accumulator merge: D = {} vs D = {}", s.d, o.d);
  s.gram += o.gram;
  if (s.kind == State::Kind::kRegression) {
    TLKIT_CHECK_ARG(s.fty.cols() == o.fty.cols(), "LogME accumulator merge: K = {} vs K = {}",
                    s.fty.cols(), o.fty.cols());
    s.fty += o.fty;
    s.yy += o.yy;
  } else {
    for (const auto& [label, col] : o.label_column) {
      const Eigen::Index to = s.column_of(label);
      s.fty.col(to) += o.fty.col(col);
      s.yy[to] += o.yy[col];
    }
  }
  s.n += o.n;
}

LogmeResult LogmeAccumulator::result(const LogmeOptions& options) const {
  const State& s = *state_;
  TLKIT_CHECK_ARG(s.kind != State::Kind::kUnset, "LogME: no rows were given");
  TLKIT_CHECK_ARG(s.n >= 2, "LogME: need at least 2 samples, got N = {}", s.n);
  Eigen::MatrixXd fty;
  Eigen::VectorXd yy;
  std::vector<std::int64_t> labels;
  if (s.kind == State::Kind::kClassification) {
    TLKIT_CHECK_ARG(s.label_column.size() >= 2,
                    "labels: LogME needs at least 2 classes, found only label {}",
                    s.label_column.begin()->first);
    fty.resize(s.d, static_cast<Eigen::Index>(s.label_column.size()));
    yy.resize(fty.cols());
    Eigen::Index c = 0;
    for (const auto& [label, col] : s.label_column) {  // std::map: ascending labels
      labels.push_back(label);
      fty.col(c) = s.fty.col(col);
      yy[c] = s.yy[col];
      ++c;
    }
  } else {
    fty = s.fty;
    yy = s.yy;
    for (Eigen::Index c = 0; c < yy.size(); ++c)
      TLKIT_CHECK_ARG(yy[c] > 0.0, "targets: column {} is all zeros (its evidence is unbounded)",
                      c);
  }
  LogmeResult r = detail::logme_from_gram(s.gram, fty, yy, s.n, s.d, options);
  r.labels = std::move(labels);
  r.regression = s.kind == State::Kind::kRegression;
  return r;
}

namespace detail {
LogmeResult logme_from_gram(const Eigen::MatrixXd& gram_upper, const Eigen::MatrixXd& fty,
                            const Eigen::VectorXd& yy, std::int64_t n, std::int64_t d,
                            const LogmeOptions& options) {
  Eigen::MatrixXd a = gram_upper;
  Eigen::VectorXd w;
  Eigen::MatrixXd z;  // V^T F^T Y
  symmetric_eigen_project(a, fty, w, z);
  return logme_from_projection(w, z, yy, n, d, options);
}

LogmeResult logme_from_projection(const Eigen::VectorXd& eigenvalues, const Eigen::MatrixXd& vtfty,
                                  const Eigen::VectorXd& yy, std::int64_t n, std::int64_t d,
                                  const LogmeOptions& options) {
  const Spectrum sp = make_spectrum(eigenvalues, vtfty, yy, n, d, options.mode,
                                    /*kernel_path=*/false);
  return solve(sp, options);
}
}  // namespace detail

// ---- in-memory entry points ------------------------------------------------------------------
namespace {

// N <= D: decompose the N x N kernel F F^T instead of the larger D x D Gram matrix.
LogmeResult logme_kernel_path(const FeatureView& f, const Eigen::MatrixXd& y,
                              const LogmeOptions& options) {
  detail::check_finite(f, 0, "features");
  std::vector<double> rows;
  detail::copy_rows(f, rows);
  Eigen::MatrixXd k(f.rows, f.rows);
  detail::syrk_kernel(rows.data(), f.rows, f.cols, k.data());
  Eigen::VectorXd w;
  Eigen::MatrixXd x;  // U^T Y
  detail::symmetric_eigen_project(k, y, w, x);
  const Eigen::VectorXd yy = y.colwise().squaredNorm().transpose();
  const Spectrum sp = make_spectrum(w, x, yy, f.rows, f.cols, options.mode, /*kernel_path=*/true);
  return solve(sp, options);
}

}  // namespace

LogmeResult logme(const FeatureView& features, const LabelView& labels,
                  const LogmeOptions& options) {
  check_shape(features.rows, features.cols, labels.size, "labels");
  // The same threading rule as score() (linalg.h), so that both give the same bits.
  const detail::SingleThreadScope single(options.threads == 0 &&
                                         detail::small_problem(features.rows, features.cols));
  if (features.rows > features.cols) {
    LogmeAccumulator acc;
    acc.update(features, labels);
    return acc.result(options);
  }
  TLKIT_CHECK_ARG(features.rows >= 2, "LogME: need at least 2 samples, got N = {}", features.rows);
  std::map<std::int64_t, Eigen::Index> cols;
  for (std::int64_t i = 0; i < labels.size; ++i) cols.emplace(labels.data[i], 0);
  TLKIT_CHECK_ARG(cols.size() >= 2, "labels: LogME needs at least 2 classes, found only label {}",
                  cols.begin()->first);
  std::vector<std::int64_t> distinct;
  for (auto& [label, col] : cols) {
    col = static_cast<Eigen::Index>(distinct.size());
    distinct.push_back(label);
  }
  Eigen::MatrixXd y = Eigen::MatrixXd::Zero(features.rows, static_cast<Eigen::Index>(cols.size()));
  for (std::int64_t i = 0; i < labels.size; ++i) y(i, cols[labels.data[i]]) = 1.0;
  LogmeResult r = logme_kernel_path(features, y, options);
  r.labels = std::move(distinct);
  return r;
}

LogmeResult logme(const FeatureView& features, const TargetView& targets,
                  const LogmeOptions& options) {
  check_shape(features.rows, features.cols, targets.rows, "targets");
  // The same threading rule as score() (linalg.h), so that both give the same bits.
  const detail::SingleThreadScope single(options.threads == 0 &&
                                         detail::small_problem(features.rows, features.cols));
  if (features.rows > features.cols) {
    LogmeAccumulator acc;
    acc.update(features, targets);
    return acc.result(options);
  }
  TLKIT_CHECK_ARG(features.rows >= 2, "LogME: need at least 2 samples, got N = {}", features.rows);
  TLKIT_CHECK_ARG(targets.cols >= 1, "targets: need at least 1 column, got {}", targets.cols);
  Eigen::MatrixXd y(targets.rows, targets.cols);
  for (std::int64_t i = 0; i < targets.rows; ++i)
    for (std::int64_t c = 0; c < targets.cols; ++c) {
      y(i, c) = targets.at(i, c);
      TLKIT_CHECK_ARG(std::isfinite(y(i, c)), "targets: non-finite value {} at row {}, column {}",
                      y(i, c), i, c);
    }
  for (Eigen::Index c = 0; c < y.cols(); ++c)
    TLKIT_CHECK_ARG(y.col(c).squaredNorm() > 0.0,
                    "targets: column {} is all zeros (its evidence is unbounded)", c);
  LogmeResult r = logme_kernel_path(features, y, options);
  r.regression = true;
  return r;
}

// ---- posterior mean weights ------------------------------------------------------------------
namespace {

std::vector<double> weights_for(const FeatureView& f, const Eigen::MatrixXd& y,
                                const LogmeResult& fit) {
  TLKIT_CHECK_ARG(fit.n == f.rows && fit.d == f.cols,
                  "LogME weights: the fit was on N = {}, D = {} but the features are {} x {}",
                  fit.n, fit.d, f.rows, f.cols);
  TLKIT_CHECK_ARG(
      static_cast<std::size_t>(y.cols()) == fit.alpha.size() && fit.beta.size() == fit.alpha.size(),
      "LogME weights: the fit has {} targets but {} were given", fit.alpha.size(), y.cols());
  detail::check_finite(f, 0, "features");
  std::vector<double> rows;
  detail::copy_rows(f, rows);
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> fm(
      rows.data(), f.rows, f.cols);
  const bool kernel_path = f.rows <= f.cols;
  // The smaller Gram matrix: F^T F (D x D) or F F^T (N x N), and its eigenpairs.
  Eigen::MatrixXd gram =
      kernel_path ? Eigen::MatrixXd(fm * fm.transpose()) : Eigen::MatrixXd(fm.transpose() * fm);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
  if (eig.info() != Eigen::Success)
    throw std::runtime_error("LogME weights: the eigendecomposition did not converge");
  const Eigen::VectorXd& w = eig.eigenvalues();
  const double w_max = w.size() ? w.maxCoeff() : 0.0;
  // Coordinates of each target on the eigenvectors: V^T F^T y (Gram) or U^T y (kernel).
  const Eigen::MatrixXd coords =
      eig.eigenvectors().transpose() * (kernel_path ? y : Eigen::MatrixXd(fm.transpose() * y));
  Eigen::MatrixXd scaled = Eigen::MatrixXd::Zero(coords.rows(), coords.cols());
  for (Eigen::Index k = 0; k < y.cols(); ++k) {
    const double alpha = fit.alpha[static_cast<std::size_t>(k)];
    const double beta = fit.beta[static_cast<std::size_t>(k)];
    if (std::isinf(alpha)) continue;  // the prior wins: m = 0
    const double t = std::isinf(beta) ? 0.0 : alpha / beta;
    for (Eigen::Index i = 0; i < w.size(); ++i)
      if (keep_eigenvalue(w(i), w_max, f.rows, f.cols, fit.mode, kernel_path))
        scaled(i, k) = coords(i, k) / (t + w(i));
  }
  // m_k = V scaled_k (Gram), or F^T U scaled_k (kernel: the push-through identity).
  const Eigen::MatrixXd m = kernel_path
                                ? Eigen::MatrixXd(fm.transpose() * (eig.eigenvectors() * scaled))
                                : Eigen::MatrixXd(eig.eigenvectors() * scaled);  // D x K
  std::vector<double> out(static_cast<std::size_t>(y.cols() * f.cols));
  for (Eigen::Index k = 0; k < y.cols(); ++k)
    for (Eigen::Index j = 0; j < f.cols; ++j)
      out[static_cast<std::size_t>(k * f.cols + j)] = m(j, k);
  return out;
}

}  // namespace

std::vector<double> logme_weights(const FeatureView& features, const LabelView& labels,
                                  const LogmeResult& fit) {
  check_shape(features.rows, features.cols, labels.size, "labels");
  TLKIT_CHECK_ARG(!fit.regression && !fit.labels.empty(),
                  "LogME weights: the fit is not a classification fit");
  Eigen::MatrixXd y =
      Eigen::MatrixXd::Zero(features.rows, static_cast<Eigen::Index>(fit.labels.size()));
  for (std::int64_t i = 0; i < labels.size; ++i) {
    const auto it = std::lower_bound(fit.labels.begin(), fit.labels.end(), labels.data[i]);
    TLKIT_CHECK_ARG(it != fit.labels.end() && *it == labels.data[i],
                    "LogME weights: label {} at row {} is not one of the fit's labels",
                    labels.data[i], i);
    y(i, it - fit.labels.begin()) = 1.0;
  }
  return weights_for(features, y, fit);
}

std::vector<double> logme_weights(const FeatureView& features, const TargetView& targets,
                                  const LogmeResult& fit) {
  check_shape(features.rows, features.cols, targets.rows, "targets");
  Eigen::MatrixXd y(targets.rows, targets.cols);
  for (std::int64_t i = 0; i < targets.rows; ++i)
    for (std::int64_t c = 0; c < targets.cols; ++c) y(i, c) = targets.at(i, c);
  return weights_for(features, y, fit);
}

}  // namespace tlkit

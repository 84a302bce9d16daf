#include "tlkit/core/score.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "logme_internal.h"
#include "metric_context.h"
#include "tlkit/core/statistics_backend.h"

namespace tlkit {

// Times shared work once even when it nests (scatter() calls stats()).
class MetricContext::SharedTimer {
 public:
  explicit SharedTimer(MetricContext& c) : c_(c), t0_(std::chrono::steady_clock::now()) {
    ++c_.shared_depth_;
  }
  ~SharedTimer() {
    if (--c_.shared_depth_ == 0)
      c_.shared_seconds_ +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  MetricContext& c_;
  std::chrono::steady_clock::time_point t0_;
};

MetricContext::MetricContext(const ScoreInputs& inputs, const ScoreOptions& options)
    : inputs_(inputs),
      options_(options),
      comm_(options.comm && options.comm->size() > 1 ? options.comm : nullptr),
      n_(inputs.labels.size) {
  std::map<std::int64_t, int> index;
  for (std::int64_t i = 0; i < inputs.labels.size; ++i) index.emplace(inputs.labels.data[i], 0);
  if (comm_) {
    // The classes are the labels present in any process's rows: rank 0 forms the union and
    // sends it back, and every process maps its rows onto it.
    std::string mine;
    for (const auto& [label, idx] : index)
      mine.append(reinterpret_cast<const char*>(&label), sizeof label);
    std::string all;
    communicate([&] {
      for (const std::string& part : comm_->gather(mine)) all += part;
      comm_->broadcast(all, 0);
    });
    for (std::size_t k = 0; k + sizeof(std::int64_t) <= all.size(); k += sizeof(std::int64_t)) {
      std::int64_t label;
      std::memcpy(&label, all.data() + k, sizeof label);
      index.emplace(label, 0);
    }
    communicate([&] { comm_->allreduce_sum(&n_, 1); });
  }
  for (auto& [label, idx] : index) {
    idx = static_cast<int>(labels_.size());
    labels_.push_back(label);
  }
  counts_.assign(labels_.size(), 0);
  y_.resize(static_cast<std::size_t>(inputs.labels.size));
  for (std::int64_t i = 0; i < inputs.labels.size; ++i) {
    y_[i] = index[inputs.labels.data[i]];
    ++counts_[y_[i]];
  }
  if (comm_) communicate([&] { comm_->allreduce_sum(counts_.data(), counts_.size()); });
}

void MetricContext::reduce_sum(double* data, std::size_t count) {
  if (comm_) communicate([&] { comm_->allreduce_sum(data, count); });
}

std::string MetricContext::all_gather(const std::string& mine) {
  if (!comm_) return mine;
  std::string all;
  communicate([&] {
    for (const std::string& part : comm_->gather(mine)) all += part;
    comm_->broadcast(all, 0);
  });
  return all;
}

const std::vector<int>& MetricContext::all_y() {
  if (!comm_) return y_;
  if (!all_y_) {
    const std::string all =
        all_gather(std::string(reinterpret_cast<const char*>(y_.data()), y_.size() * sizeof(int)));
    std::vector<int> y(all.size() / sizeof(int));
    std::memcpy(y.data(), all.data(), y.size() * sizeof(int));
    TLKIT_ASSERT(static_cast<std::int64_t>(y.size()) == n_);
    all_y_ = std::move(y);
  }
  return *all_y_;
}

std::vector<std::int64_t> MetricContext::class_offsets() {
  const std::size_t c = labels_.size();
  std::vector<std::int64_t> offsets(c, 0);
  if (!comm_) return offsets;
  std::vector<std::int64_t> mine(c, 0);
  for (const int yi : y_) ++mine[static_cast<std::size_t>(yi)];
  const std::string all =
      all_gather(std::string(reinterpret_cast<const char*>(mine.data()), c * sizeof(std::int64_t)));
  for (int r = 0; r < comm_->rank(); ++r)
    for (std::size_t k = 0; k < c; ++k) {
      std::int64_t v;
      std::memcpy(&v, all.data() + (static_cast<std::size_t>(r) * c + k) * sizeof v, sizeof v);
      offsets[k] += v;
    }
  return offsets;
}

void MetricContext::require(unsigned needed, std::string_view metric) const {
  // A process whose share of split rows is empty still has the features' width.
  TLKIT_CHECK_ARG(!(needed & kNeedsFeatures) || inputs_.features.rows > 0 ||
                      (comm_ && inputs_.features.cols > 0),
                  "--metric {} needs features (--features)", metric);
  TLKIT_CHECK_ARG(
      !(needed & kNeedsProbs) || inputs_.probs.rows > 0 || (comm_ && inputs_.probs.cols > 0),
      "--metric {} needs source-class probabilities (--probs)", metric);
}

void MetricContext::add_class_sums(const double* rows, std::int64_t begin, std::int64_t count,
                                   Eigen::MatrixXd& class_sums) const {
  const std::int64_t d = this->d();
  for (std::int64_t i = 0; i < count; ++i)
    class_sums.col(y_[begin + i]) += Eigen::Map<const Eigen::VectorXd>(rows + i * d, d);
}

const MetricContext::Moments& MetricContext::moments() {
  if (moments_) return *moments_;
  SharedTimer timer(*this);
  Moments m;
  m.class_sums = Eigen::MatrixXd::Zero(d(), num_classes());
  for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    add_class_sums(rows, b, cnt, m.class_sums);
  });
  reduce_sum(m.class_sums);
  m.sum = m.class_sums.rowwise().sum();
  moments_ = std::move(m);
  return *moments_;
}

const MetricContext::Stats& MetricContext::stats() {
  if (stats_) return *stats_;
  SharedTimer timer(*this);
  const std::int64_t d = this->d();
  Stats s;
  if (options_.backend) {
    stats_from_backend(s);
    return *stats_;
  }
  if (comm_ && !inputs_.feature_rows) {
    // This process's rows, then the sums over every process.
    ScoreStatistics part = ScoreStatistics::accumulate(inputs_.features, inputs_.labels, labels_);
    communicate([&] { part.allreduce(*comm_); });
    s.gram = Eigen::Map<const Eigen::MatrixXd>(part.gram.data(), d, d);
    Eigen::MatrixXd class_sums;
    if (!moments_)
      class_sums = Eigen::Map<const Eigen::MatrixXd>(part.class_sums.data(), d, num_classes());
    return keep_stats(s, std::move(class_sums));
  }
  s.gram = Eigen::MatrixXd::Zero(d, d);
  // The moments come from this pass unless an earlier moments() call has them: the same
  // accumulation in the same blocks either way, so the bits do not depend on the metric order.
  const bool have_moments = moments_.has_value();
  Eigen::MatrixXd class_sums;
  if (!have_moments) class_sums = Eigen::MatrixXd::Zero(d, num_classes());
  for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    detail::syrk_accumulate_rows(rows, cnt, d, s.gram.data());
    if (!have_moments) add_class_sums(rows, b, cnt, class_sums);
  });
  // Streamed rows split over processes: this process's sums, then those of all of them.
  reduce_sum(s.gram);
  if (!have_moments) reduce_sum(class_sums);
  return keep_stats(s, std::move(class_sums));
}

const MetricContext::Stats& MetricContext::keep_stats(Stats& s, Eigen::MatrixXd&& class_sums) {
  if (!moments_) {
    Moments m;
    m.sum = class_sums.rowwise().sum();
    m.class_sums = std::move(class_sums);
    moments_ = std::move(m);
  }
  s.sum = moments_->sum;
  s.class_sums = moments_->class_sums;
  stats_ = std::move(s);
  return *stats_;
}

void MetricContext::stats_from_backend(Stats& s) {
  // The backend's sums of this process's rows (held or streamed chunk by chunk), then those of
  // all the processes. Class sums from an earlier moments() pass stay: both are the same sums
  // to rounding, and one run keeps one set.
  const std::int64_t d = this->d(), c = num_classes();
  StatisticsBackend& backend = *options_.backend;
  s.gram = Eigen::MatrixXd::Zero(d, d);
  Eigen::MatrixXd class_sums = Eigen::MatrixXd::Zero(d, c);
  if (inputs_.feature_rows) {
    inputs_.feature_rows->for_chunks([&](const FeatureView& chunk, std::int64_t begin) {
      detail::check_finite(chunk, options_.first_row + begin, "features");
      backend.accumulate(chunk, y_.data() + begin, c, s.gram.data(), class_sums.data());
    });
  } else if (rows() > 0) {
    backend.accumulate(inputs_.features, y_.data(), c, s.gram.data(), class_sums.data());
  }
  reduce_sum(s.gram);
  if (!moments_) reduce_sum(class_sums);
  keep_stats(s, std::move(class_sums));
}

const MetricContext::GramEigen* MetricContext::gram_eigen() {
  if (n_ <= d()) return nullptr;
  if (gram_eigen_) return &*gram_eigen_;
  SharedTimer timer(*this);
  const Stats& s = stats();
  GramEigen g;
  if (options_.backend) {
    const std::int64_t d = this->d();
    g.values.resize(d);
    g.proj.resize(d, num_classes());
    options_.backend->eigen_project(s.gram.data(), d, s.class_sums.data(), num_classes(),
                                    g.values.data(), g.proj.data());
  } else {
    const detail::SymmetricEigen eig(s.gram);
    g.values = eig.values();
    g.proj = eig.project(s.class_sums);
  }
  g.mean = g.proj.rowwise().sum() / static_cast<double>(n_);
  g.well_conditioned = g.values.size() > 0 && g.values[0] > 1e-10 * g.values.maxCoeff();
  gram_eigen_ = std::move(g);
  return &*gram_eigen_;
}

const MetricContext::Scatter& MetricContext::scatter() {
  if (scatter_) return *scatter_;
  SharedTimer timer(*this);
  const Stats& s = stats();
  const double n = static_cast<double>(n_);
  Scatter sc;
  sc.mean = s.sum / n;
  // T = F^T F - N mu mu^T (upper triangle is all dsytrd reads).
  Eigen::MatrixXd t = s.gram;
  t.triangularView<Eigen::Upper>() -= n * sc.mean * sc.mean.transpose();
  sc.trace = t.diagonal().sum();
  Eigen::MatrixXd b(d(), num_classes());
  for (std::int64_t c = 0; c < num_classes(); ++c) {
    const double nc = static_cast<double>(counts_[c]);
    b.col(c) = std::sqrt(nc) * (s.class_sums.col(c) / nc - sc.mean);
  }
  sc.eig = detail::SymmetricEigen(std::move(t));
  sc.eigenvalues = sc.eig.values();
  sc.proj = sc.eig.project(b);
  scatter_ = std::move(sc);
  return *scatter_;
}

Eigen::MatrixXd MetricContext::principal_directions(std::int64_t k) {
  const Scatter& sc = scatter();
  k = std::min<std::int64_t>(k, sc.eig.size());
  // Ascending eigenvalues: the k largest are the last k columns; reverse to largest first.
  return sc.eig.vectors(sc.eig.size() - k, k).rowwise().reverse();
}

Eigen::MatrixXd MetricContext::project_centred(const Eigen::MatrixXd& directions) {
  const Scatter& sc = scatter();
  const std::int64_t d = this->d(), k = directions.cols(), m = rows();
  Eigen::MatrixXd z(m, k);
  detail::RowMatrixXd block;
  for_blocks([&](const double* rows, std::int64_t b, std::int64_t cnt) {
    block = Eigen::Map<const detail::RowMatrixXd>(rows, cnt, d).rowwise() - sc.mean.transpose();
    // z rows [b, b + cnt) = block directions by BLAS: Eigen's own product ran ~10x slower here.
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(cnt), static_cast<int>(k),
                static_cast<int>(d), 1.0, block.data(), static_cast<int>(d), directions.data(),
                static_cast<int>(d), 0.0, z.data() + b, static_cast<int>(m));
  });
  if (!comm_) return z;
  // Split rows: every process's projected rows (k doubles each), in row order, on every process.
  const detail::RowMatrixXd mine = z;
  const std::string all = all_gather(std::string(reinterpret_cast<const char*>(mine.data()),
                                                 static_cast<std::size_t>(mine.size()) * 8));
  TLKIT_ASSERT(static_cast<std::int64_t>(all.size()) == n_ * k * 8);
  detail::RowMatrixXd gathered(n_, k);
  if (n_ * k > 0) std::memcpy(gathered.data(), all.data(), all.size());
  return gathered;
}

const LogmeResult& MetricContext::logme() {
  if (logme_) return *logme_;
  SharedTimer timer(*this);
  LogmeOptions opt;
  opt.mode = parse_logme_mode(params().text("logme", "mode"));
  opt.threads = options_.threads;
  if (n_ > d()) {
    // The same statistics and decomposition as logme(): F^T F and the per-class sums.
    const GramEigen& g = *gram_eigen();
    Eigen::VectorXd yy(num_classes());
    for (std::int64_t c = 0; c < num_classes(); ++c) yy[c] = static_cast<double>(counts_[c]);
    logme_ = detail::logme_from_projection(g.values, g.proj, yy, n_, d(), opt);
    logme_->labels = labels_;
  } else {
    TLKIT_ASSERT(!comm_);  // score() refuses split rows with N <= D
    logme_ = tlkit::logme(inputs_.features, inputs_.labels, opt);
  }
  return *logme_;
}

namespace {

void validate(const ScoreInputs& in, bool sharded, std::int64_t first_row) {
  const std::int64_t n = in.labels.size;
  TLKIT_CHECK_ARG(sharded || n >= 2, "labels: need at least 2 samples, got N = {}", n);
  if (in.features.rows > 0 || in.features.cols > 0) {
    TLKIT_CHECK_ARG(in.features.rows == n, "features have {} rows but labels has {} entries",
                    in.features.rows, n);
    TLKIT_CHECK_ARG(in.features.cols >= 1, "features: need at least 1 feature column, got D = {}",
                    in.features.cols);
    // Streamed rows are checked chunk by chunk as they are read (MetricContext::for_blocks).
    if (!in.feature_rows) detail::check_finite(in.features, first_row, "features");
  }
  if (in.probs.rows > 0 || in.probs.cols > 0) {
    TLKIT_CHECK_ARG(in.probs.rows == n, "probs have {} rows but labels has {} entries",
                    in.probs.rows, n);
    TLKIT_CHECK_ARG(in.probs.cols >= 1, "probs: need at least 1 column, got {}", in.probs.cols);
    detail::check_finite(in.probs, first_row, "probs");
    std::vector<double> buffer;
    detail::for_row_blocks(
        in.probs, buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
          const Eigen::Map<const detail::RowMatrixXd> block(rows, cnt, in.probs.cols);
          for (std::int64_t r = 0; r < cnt; ++r) {
            const std::int64_t i = first_row + b + r;
            if (block.row(r).minCoeff() < 0.0) {  // name the first negative value of the row
              Eigen::Index j = 0;
              while (block(r, j) >= 0.0) ++j;
              TLKIT_THROW_ARG(
                  "probs: negative value {} at row {}, column {} (pass "
                  "probabilities, e.g. softmax of the logits)",
                  block(r, j), i, j);
            }
            const double sum = block.row(r).sum();
            // float32 softmax rows over thousands of classes sum to 1 within ~1e-5.
            TLKIT_CHECK_ARG(std::abs(sum - 1.0) <= 1e-4,
                            "probs: row {} sums to {} (expected 1 within "
                            "1e-4; pass probabilities, e.g. softmax of the logits)",
                            i, sum);
          }
        });
  }
}

}  // namespace

ScoreReport logme_report(LogmeResult r, double seconds) {
  MetricValue v;
  v.name = "logme";
  v.score = r.score;
  v.seconds = seconds;
  v.converged = std::all_of(r.converged.begin(), r.converged.end(), [](bool c) { return c; });
  v.details["rank"] = static_cast<double>(r.rank);
  ScoreReport report;
  report.n = r.n;
  report.d = r.d;
  report.labels = r.labels;
  report.metrics.push_back(std::move(v));
  report.logme = std::move(r);
  return report;
}

std::string distributed_limitation(std::string_view metric, const MetricParams& params) {
  // Every metric runs split: the one-pass statistics are reduced, and the per-row work either
  // reduces its own sums, exchanges a few values per row (projected rows, energies) or passes
  // each process's rows to the others once (knn); docs/scaling.md lists what each exchanges.
  // Left as the one place to name a metric that cannot.
  static const std::map<std::string_view, std::string_view> kNeeds = {};
  (void)params;
  const auto it = kNeeds.find(metric);
  return it == kNeeds.end() ? std::string() : std::string(it->second);
}

std::string stream_limitation(std::string_view metric, const MetricParams& params) {
  static const std::map<std::string_view, std::string_view> kPasses =
      {
          {"logme", ""}, {"hscore", ""},    {"hscore_shrink", ""},
          {"sfda", ""},  {"etran_lda", ""}, {"etran_energy", ""},
          {"gbc", ""},   {"leep", ""},      {"nce", ""},  // the probabilities, held whole (N x Cs)
      };
  if (metric == "gbc" && params.number("gbc", "pca_dims") != 0.0)
    return "the rows projected on the principal directions (--gbc-pca-dims > 0)";
  if (kPasses.count(metric)) return std::string();
  return "the feature rows held whole (it compares, projects or fits individual rows)";
}

ScoreReport score(const ScoreInputs& inputs, const std::vector<std::string>& metrics,
                  const ScoreOptions& options) {
  TLKIT_CHECK_ARG(!metrics.empty(), "--metric: no metric requested");
  const bool sharded = options.comm && options.comm->size() > 1;
  if (sharded) {
    for (const auto& name : metrics) {
      const std::string needs = distributed_limitation(name, options.params);
      TLKIT_CHECK_ARG(needs.empty(),
                      "--metric {}: needs {}, which are not available with the rows split over "
                      "{} processes; run it with one process",
                      name, needs, options.comm->size());
    }
  }
  // Sample ids (bootstrap resamples) name copies across all the rows: one process only.
  TLKIT_CHECK_ARG(!sharded || inputs.sample_ids == nullptr,
                  "score: sample ids are not supported with the rows split over processes");
  if (inputs.feature_rows) {
    for (const auto& name : metrics) {
      const std::string needs = stream_limitation(name, options.params);
      TLKIT_CHECK_ARG(needs.empty(), "--metric {} cannot stream (--chunk-rows): it needs {}", name,
                      needs);
    }
  }
  validate(inputs, sharded, options.first_row);
  MetricContext ctx(inputs, options);
  TLKIT_CHECK_ARG(ctx.n() >= 2, "labels: need at least 2 samples, got N = {}", ctx.n());
  TLKIT_CHECK_ARG(ctx.num_classes() >= 2,
                  "labels: transferability metrics need at least 2 classes, found only label {}",
                  ctx.labels().front());
  TLKIT_CHECK_ARG(
      !inputs.feature_rows || ctx.n() > ctx.d() ||
          std::find(metrics.begin(), metrics.end(), "logme") == metrics.end(),
      "--metric logme: N = {} <= D = {} with the features streamed (--chunk-rows) along with "
      "other metrics needs the rows held whole; stream logme alone, or drop --chunk-rows",
      ctx.n(), ctx.d());
  TLKIT_CHECK_ARG(
      !sharded || ctx.n() > ctx.d() ||
          std::find(metrics.begin(), metrics.end(), "logme") == metrics.end(),
      "--metric logme: N = {} <= D = {} needs F F^T of all the rows, which is not available "
      "with the rows split over {} processes; run it with one process",
      ctx.n(), ctx.d(), options.comm->size());
  for (const auto& name : metrics) ctx.require(find_metric(name).inputs, name);
  // Small inputs run on one thread unless the caller set a thread count (linalg.h).
  const detail::SingleThreadScope single(options.threads == 0 &&
                                         detail::small_problem(ctx.n(), inputs.features.cols));
  ScoreReport report;
  report.n = ctx.n();
  report.d = inputs.features.cols;
  report.labels = ctx.labels();
  for (const auto& name : metrics) {
    const MetricInfo& info = find_metric(name);
    MetricValue v;
    v.name = name;
    const auto t0 = std::chrono::steady_clock::now();
    info.compute(ctx, v);
    v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (name == "logme") report.logme = ctx.logme();
    report.metrics.push_back(std::move(v));
  }
  report.shared_seconds = ctx.shared_seconds();
  report.communication_seconds = ctx.communication_seconds();
  return report;
}

}  // namespace tlkit

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "metric_options.h"
#include "statistics_backend.h"
#include "tlkit/core/bootstrap.h"
#include "tlkit/core/communicator.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/memory.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"
#include "world.h"

namespace tlkit::cli {
namespace {

// Distinct labels are contiguous when they are exactly 0..C-1.
bool contiguous(const std::vector<std::int64_t>& labels) {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

std::string labels_summary(const std::vector<std::int64_t>& labels) {
  if (contiguous(labels)) return fmt::format("labels 0..{}", labels.size() - 1);
  std::string s;
  const std::size_t shown = std::min<std::size_t>(labels.size(), 8);
  for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + std::to_string(labels[i]);
  if (shown < labels.size()) s += ", ...";
  return fmt::format("labels {{{}}}, not contiguous: each distinct label present is a class", s);
}

std::string fmt_num(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.6g}", v);
}

// Everything the output formats print: the report of score(), or LogME alone for regression and
// streaming.
struct Outcome {
  ScoreReport report;
  bool regression = false;
  bool has_logme = false;
};

// This process's rows [begin, end) of a .npy read `chunk` rows at a time, from the first row
// again on every pass (score()'s streamed features).
class NpyRangeSource final : public RowSource {
 public:
  NpyRangeSource(const std::string& spec, RowRange range, std::int64_t chunk)
      : reader_(spec), range_(range), chunk_(chunk) {}
  NpyRowReader& reader() { return reader_; }
  void for_chunks(const std::function<void(const FeatureView&, std::int64_t)>& fn) override {
    if (range_.count() == 0) return;
    reader_.seek(range_.begin);
    for (std::int64_t done = 0; done < range_.count();) {
      const FeatureView chunk = reader_.next(std::min(chunk_, range_.count() - done));
      fn(chunk, done);
      done += chunk.rows;
    }
  }

 private:
  NpyRowReader reader_;
  RowRange range_;
  std::int64_t chunk_;
};

// LogME alone by its accumulator: regression targets, or --chunk-rows with logme alone. Each
// process adds its rows (all of them in one process; in chunks with --chunk-rows), and with
// several processes the accumulators' images are exchanged and merged in rank order on every
// process (LogmeAccumulator::to_bytes / merge).
Outcome compute_logme_accumulated(const ScoreArgs& a, const LogmeOptions& opt,
                                  const NpyArray& label_file) {
  Communicator& comm = world();
  Outcome out;
  out.regression = a.regression;
  out.has_logme = true;
  std::vector<std::int64_t> labels;
  std::vector<double> targets;
  std::int64_t k = 0;
  if (a.regression)
    targets = label_file.targets(&k);
  else
    labels = label_file.labels();
  const std::int64_t n_labels = label_file.rows();
  const auto t0 = std::chrono::steady_clock::now();
  LogmeResult r;
  // In one process, N <= D is computed from all rows whatever --chunk-rows says: they take no
  // more memory than the D x D statistics a stream would hold, and LogME's N <= D path (F F^T;
  // the reference modes' own formulas there) needs them; streamed, --logme-mode thuml gave 4.44
  // whole and 0.193 in chunks on tests/data/logme/wide.
  const bool whole = comm.size() == 1 && (a.chunk_rows == 0 || [&] {
                       const NpyRowReader peek(a.features);
                       return peek.rows() <= peek.cols();
                     }());
  if (whole) {
    const NpyArray features = load_npy(a.features);
    const FeatureView f = features.features();
    TLKIT_CHECK_ARG(f.rows == n_labels, "{} has {} rows but {} has {} entries", a.features, f.rows,
                    a.labels, n_labels);
    r = a.regression ? logme(f, TargetView{targets.data(), n_labels, k, k, 1}, opt)
                     : logme(f, LabelView{labels.data(), n_labels}, opt);
  } else {
    const RowRange range = row_range(n_labels, comm.rank(), comm.size());
    NpyRangeSource source(
        a.features, range,
        a.chunk_rows > 0 ? a.chunk_rows : std::max<std::int64_t>(range.count(), 1));
    TLKIT_CHECK_ARG(source.reader().rows() == n_labels, "{} has {} rows but {} has {} entries",
                    a.features, source.reader().rows(), a.labels, n_labels);
    LogmeAccumulator acc;
    source.for_chunks([&](const FeatureView& chunk, std::int64_t begin) {
      const std::int64_t row = range.begin + begin;
      // The accumulator counts rows from this process's first: name a bad value by its row in
      // the file before it sees the chunk.
      if (comm.size() > 1)
        for (std::int64_t i = 0; i < chunk.rows; ++i)
          for (std::int64_t j = 0; j < chunk.cols; ++j)
            TLKIT_CHECK_ARG(std::isfinite(chunk.at(i, j)),
                            "features: non-finite value {} at row {}, column {}", chunk.at(i, j),
                            row + i, j);
      if (a.regression)
        acc.update(chunk, TargetView{targets.data() + row * k, chunk.rows, k, k, 1});
      else
        acc.update(chunk, LabelView{labels.data() + row, chunk.rows});
    });
    if (comm.size() > 1) {
      // Every process's statistics, merged in rank order on every process.
      std::string all_images;
      std::vector<std::string> parts = comm.gather(acc.to_bytes());
      if (comm.is_root()) {
        LogmeAccumulator merged;
        for (const std::string& part : parts)
          merged.merge(LogmeAccumulator::from_bytes(part, "LogME statistics of a process"));
        all_images = merged.to_bytes();
      }
      comm.broadcast(all_images, 0);
      acc = LogmeAccumulator::from_bytes(all_images, "merged LogME statistics");
    }
    r = acc.result(opt);
  }
  out.report = logme_report(
      std::move(r), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

// score() on this process's rows: rows split over the processes of an MPI job, or streamed
// (--chunk-rows) in one process or many. Each process reads only its range of the features and
// of the probabilities or logits (from its offset after the .npy header; with --chunk-rows the
// features chunk by chunk on every pass), score() reduces what the metrics need over the
// processes, and every process holds the report of all the rows.
Outcome compute_split(const ScoreArgs& a, ScoreOptions options,
                      const std::vector<std::string>& metrics, const NpyArray& label_file) {
  Communicator& comm = world();
  const std::vector<std::int64_t> labels = label_file.labels();
  const std::int64_t n = static_cast<std::int64_t>(labels.size());
  const RowRange range = row_range(n, comm.rank(), comm.size());
  // This process's rows of a row-per-sample .npy (features, probabilities or logits).
  auto read_range = [&](const std::string& spec, std::optional<NpyRowReader>& reader) {
    reader.emplace(spec);
    TLKIT_CHECK_ARG(reader->rows() == n, "{} has {} rows but {} has {} entries", spec,
                    reader->rows(), a.labels, n);
    if (range.count() > 0) {
      reader->seek(range.begin);
      return reader->next(range.count());
    }
    FeatureView none;  // more processes than rows: this one has none, but the width
    none.cols = reader->cols();
    none.row_stride = reader->cols();
    return none;
  };
  ScoreInputs in;
  std::optional<NpyRowReader> features, probs;
  std::optional<NpyRangeSource> streamed;
  std::vector<double> softmaxed;
  if (!a.features.empty() && a.chunk_rows > 0) {
    // --chunk-rows: only the shape here; the rows are read chunk by chunk on every pass.
    streamed.emplace(a.features, range, a.chunk_rows);
    TLKIT_CHECK_ARG(streamed->reader().rows() == n, "{} has {} rows but {} has {} entries",
                    a.features, streamed->reader().rows(), a.labels, n);
    in.features.rows = range.count();
    in.features.cols = streamed->reader().cols();
    in.features.row_stride = in.features.cols;
    in.feature_rows = &*streamed;
  } else if (!a.features.empty()) {
    in.features = read_range(a.features, features);
  }
  if (!a.probs.empty()) in.probs = read_range(a.probs, probs);
  if (!a.logits.empty()) {
    const FeatureView z = read_range(a.logits, probs);
    const NpyHeader& h = probs->header();
    TLKIT_CHECK_ARG(
        h.shape.size() == 2 && (h.type == NpyType::kFloat32 || h.type == NpyType::kFloat64),
        "{}: logits must be a 2-D float32 or float64 array (N, Cs), got shape {} {}", a.logits,
        h.shape_string(), to_string(h.type));
    for (std::int64_t i = 0; i < z.rows; ++i)
      for (std::int64_t j = 0; j < z.cols; ++j)
        TLKIT_CHECK_ARG(std::isfinite(z.at(i, j)), "{}: non-finite value {} at row {}, column {}",
                        a.logits, z.at(i, j), range.begin + i, j);
    softmaxed = softmax_rows(z);
    in.probs = FeatureView::row_major(softmaxed.data(), z.rows, z.cols);
  }
  in.labels = LabelView{labels.data() + range.begin, range.count()};
  options.comm = comm.size() > 1 ? &comm : nullptr;
  options.first_row = range.begin;
  Outcome out;
  out.report = score(in, metrics, options);
  out.has_logme = std::find(metrics.begin(), metrics.end(), "logme") != metrics.end();
  return out;
}

// Refuses, before anything is allocated, inputs whose arrays would take more than the memory
// limit: the .npy headers give the shapes. Streamed features (--chunk-rows) are not counted.
void check_memory(const ScoreArgs& a) {
  const std::uint64_t limit = a.max_memory.empty()
                                  ? default_memory_limit()
                                  : parse_memory_size(a.max_memory, "--max-memory");
  if (limit == 0) return;
  std::uint64_t total = 0;
  std::string largest;
  std::uint64_t largest_bytes = 0;
  for (const std::string* spec : {&a.labels, &a.features, &a.probs, &a.logits}) {
    if (spec->empty() || (spec == &a.features && a.chunk_rows > 0)) continue;
    const NpyHeader h = read_npy_header(*spec);
    std::uint64_t bytes =
        static_cast<std::uint64_t>(h.count()) * static_cast<std::uint64_t>(h.itemsize);
    // Split over processes, each holds its share of the feature rows.
    if (spec == &a.features && world().size() > 1 && !h.shape.empty() && h.shape[0] > 0)
      bytes =
          bytes / static_cast<std::uint64_t>(h.shape[0]) *
          static_cast<std::uint64_t>(row_range(h.shape[0], world().rank(), world().size()).count());
    total += bytes;
    if (bytes >= largest_bytes) {
      largest_bytes = bytes;
      largest = fmt::format("{} (shape {} {})", *spec, h.shape_string(), to_string(h.type));
    }
  }
  TLKIT_CHECK_ARG(total <= limit,
                  "{}: loading the inputs needs {}, over the memory limit of {} ({}); stream the "
                  "features with --chunk-rows 65536 (logme) or raise --max-memory",
                  largest, format_bytes(total), format_bytes(limit),
                  a.max_memory.empty() ? "80% of physical memory" : "--max-memory " + a.max_memory);
}

// The library names an input by its role ("features: non-finite value nan at row 7, column 1");
// the CLI names the file the user gave instead.
[[noreturn]] void rethrow_naming_files(const InputError& e, const ScoreArgs& a) {
  const std::string m = e.what();
  const std::pair<const char*, const std::string*> roles[] = {{"features:", &a.features},
                                                              {"labels:", &a.labels},
                                                              {"probs:", &a.probs},
                                                              {"targets:", &a.labels},
                                                              {"logits:", &a.logits}};
  for (const auto& [role, file] : roles) {
    const std::size_t len = std::strlen(role);
    if (m.compare(0, len, role) == 0 && !file->empty())
      throw InputError(*file + ":" + m.substr(len));
  }
  throw e;
}

std::vector<std::string> notes_for(const Outcome& o) {
  std::vector<std::string> notes;
  const ScoreReport& r = o.report;
  if (!o.regression && !contiguous(r.labels))
    notes.push_back(
        fmt::format("labels are not contiguous: the {} distinct labels present are "
                    "the classes, in ascending order",
                    r.labels.size()));
  if (o.has_logme && r.n <= r.d)
    notes.push_back(
        fmt::format("N = {} <= D = {}: every target lies in the span of the features "
                    "when they have rank N",
                    r.n, r.d));
  for (const auto& m : r.metrics)
    for (const auto& note : m.notes) notes.push_back(m.name + ": " + note);
  return notes;
}

void print_table(const Outcome& o) {
  const ScoreReport& r = o.report;
  const std::size_t targets = o.regression ? r.logme.per_target.size() : r.labels.size();
  fmt::print("tlkit score: N = {} samples, D = {} features, {} {}{}\n", r.n, r.d, targets,
             o.regression ? "regression targets" : "classes",
             o.regression ? "" : " (" + labels_summary(r.labels) + ")");
  for (const auto& note : notes_for(o)) fmt::print("note: {}\n", note);
  fmt::print("\n{:<14} {:>14} {:>10}  {}\n", "metric", "score", "seconds", "");
  for (const auto& m : r.metrics)
    fmt::print("{:<14} {:>14.6f} {:>10.3f}  {}\n", m.name, m.score, m.seconds,
               m.name == "logme" ? std::string("mode ") + to_string(r.logme.mode) : "");
  if (!o.has_logme) return;
  const LogmeResult& l = r.logme;
  const std::size_t t = l.per_target.size();
  if (t > 20) {
    fmt::print("\n(logme: {} per-target values: use --format json or csv)\n", t);
    return;
  }
  fmt::print("\nlogme per target:\n{:<8} {:>14} {:>12} {:>12} {:>6} {:>10}  {}\n",
             o.regression ? "target" : "label", "evidence/N", "alpha", "beta", "iters", "converged",
             "boundary");
  for (std::size_t c = 0; c < t; ++c)
    fmt::print("{:<8} {:>14.6f} {:>12} {:>12} {:>6} {:>10}  {}\n",
               o.regression ? std::to_string(c) : std::to_string(l.labels[c]), l.per_target[c],
               fmt_num(l.alpha[c]), fmt_num(l.beta[c]), l.iterations[c],
               l.converged[c] ? "yes" : "NO", to_string(l.boundary[c]));
}

void print_csv(const Outcome& o) {
  const ScoreReport& r = o.report;
  fmt::print("metric,target,label,score,alpha,beta,iterations,converged,boundary\n");
  for (const auto& m : r.metrics)
    fmt::print("{},mean,,{:.17g},,,,{},\n", m.name, m.score, m.converged ? "true" : "false");
  if (!o.has_logme) return;
  const LogmeResult& l = r.logme;
  for (std::size_t c = 0; c < l.per_target.size(); ++c)
    fmt::print("logme,{},{},{:.17g},{:.17g},{:.17g},{},{},{}\n", c,
               o.regression ? "" : std::to_string(l.labels[c]), l.per_target[c], l.alpha[c],
               l.beta[c], l.iterations[c], l.converged[c] ? "true" : "false",
               to_string(l.boundary[c]));
}

nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}

void print_json(const Outcome& o) {
  const ScoreReport& r = o.report;
  nlohmann::json j;
  j["schema_version"] = 1;
  j["n"] = r.n;
  j["d"] = r.d;
  j["targets"] = o.regression ? r.logme.per_target.size() : r.labels.size();
  j["task"] = o.regression ? "regression" : "classification";
  if (!o.regression) j["labels"] = r.labels;
  j["notes"] = notes_for(o);
  j["metrics"] = nlohmann::json::object();
  for (const auto& m : r.metrics) {
    nlohmann::json e;
    e["score"] = finite_or_null(m.score);
    e["seconds"] = m.seconds;
    e["converged"] = m.converged;
    for (const auto& [k, v] : m.details) e[k] = finite_or_null(v);
    if (m.name == "logme") {
      const LogmeResult& l = r.logme;
      e["mode"] = to_string(l.mode);
      e["per_target"] = l.per_target;
      // JSON has no infinity: an infinite alpha or beta (a supremum at a limit) is written as
      // null and explained by "boundary".
      nlohmann::json al = nlohmann::json::array(), be = nlohmann::json::array(),
                     bd = nlohmann::json::array();
      for (std::size_t c = 0; c < l.per_target.size(); ++c) {
        al.push_back(finite_or_null(l.alpha[c]));
        be.push_back(finite_or_null(l.beta[c]));
        bd.push_back(to_string(l.boundary[c]));
      }
      e["alpha"] = al;
      e["beta"] = be;
      e["iterations"] = l.iterations;
      e["converged"] = l.converged;
      e["boundary"] = bd;
    }
    j["metrics"][m.name] = e;
  }
  j["shared_seconds"] = r.shared_seconds;
  // Split over processes (mpirun): the time in reductions between them, waits included.
  if (world().size() > 1) j["communication_seconds"] = r.communication_seconds;
  fmt::print("{}\n", j.dump());
}

}  // namespace

static CLI::App* add_score_options(CLI::App& app, ScoreArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "score",
      "Score one model's features on a labelled target dataset with transferability metrics.\n"
      "Example: tlkit score --features feats.npy --labels labels.npy --metric logme,hscore\n"
      "Features are an N x D float32/float64 .npy (C or Fortran order) or an .npz member\n"
      "(file.npz:name); labels are N integers (any width; need not be contiguous).\n"
      "Under mpirun -n P (or srun --mpi=pmix) each process reads 1/P of the rows (features,\n"
      "probabilities, logits) and every metric runs on them: statistics are summed over the\n"
      "processes, and the metrics that need more exchange projected rows, energies or row\n"
      "blocks; logme with N <= D needs one process (docs/scaling.md).");
  cmd->add_option("--features", a.features, "Features: N x D .npy, or file.npz:member");
  cmd->add_option("--labels", a.labels,
                  "Labels: N integers (.npy or file.npz:member); with --regression an N or N x K "
                  "float matrix of targets")
      ->required();
  cmd->add_option("--probs", a.probs,
                  "Source-class probabilities of the pretrained model's own head, N x Cs, rows "
                  "summing to 1 (softmax of its logits), for leep and nce");
  cmd->add_option("--logits", a.logits,
                  "Instead of --probs: the pretrained model's logits, N x Cs (as tlkit extract "
                  "writes logits.npy); tlkit applies the softmax (row-wise, max subtracted) and "
                  "scores leep and nce on the probabilities")
      ->excludes("--probs");
  add_metric_list_option(cmd, a.metric, a.metric_flag,
                         metric_list_help("Metrics to compute, comma-separated, or 'all' (every "
                                          "metric whose inputs are given). Known:",
                                          "needs --probs or --logits"));
  cmd->add_flag("--regression", a.regression,
                "Treat --labels as continuous targets (N or N x K); for multi-label pass the "
                "N x K 0/1 matrix (logme only)");
  add_metric_param_options(cmd, a.params);
  cmd->add_option("--format", a.format, "Output: table (for people), json (one object), csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))
      ->capture_default_str();
  cmd->add_option("--chunk-rows", a.chunk_rows,
                  "Stream the features in chunks of this many rows, each process its own rows "
                  "(memory independent of N; logme, hscore, hscore_shrink, sfda, etran_lda, "
                  "etran_energy, gbc without PCA, leep, nce); 0 reads them whole")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option(
         "--threads", a.threads,
         "BLAS/OpenMP threads (0: the cores not busy with other processes, and one for small "
         "inputs, N*D*max(N, D) <= 2^36; on a busy machine extra threads make scoring 10-30x "
         "slower)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed for metrics with random steps")->capture_default_str();
  cmd->add_option("--device", a.device,
                  "Where F^T F, the class sums and the eigendecomposition of F^T F are computed: "
                  "cpu, or cuda (cuBLAS/cuSOLVER in float64 on GPU 0, for logme, hscore, "
                  "hscore_shrink, transrate and sfda; needs a build with -DTLKIT_CUDA=ON; "
                  "--regression runs on the CPU; docs/gpu.md)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--max-memory", a.max_memory,
                  "Refuse inputs whose arrays need more memory than this (e.g. 8G, 512M; default "
                  "80% of physical memory); checked from the .npy headers before loading");
  return cmd;
}

static int score_and_print(const ScoreArgs& a, const ScoreOptions& options,
                           const std::vector<std::string>& metrics);

// With several processes (mpirun -n P), the metrics that run with the rows split over them
// (distributed_limitation()): a metric named in --metric that cannot is refused; those that
// 'all' brought in are skipped with a note from rank 0. One process: `metrics` unchanged.
static std::vector<std::string> split_metrics(const ScoreArgs& a, const ScoreOptions& options,
                                              const std::vector<std::string>& metrics) {
  const Communicator& comm = world();
  if (comm.size() == 1) return metrics;
  const int p = comm.size();
  const bool from_all = ("," + a.metric + ",").find(",all,") != std::string::npos;
  std::vector<std::string> kept, refused;
  for (const auto& name : metrics) {
    const std::string needs = distributed_limitation(name, options.params);
    if (needs.empty())
      kept.push_back(name);
    else
      refused.push_back(fmt::format("{} (needs {})", name, needs));
  }
  std::string list;
  for (const auto& r : refused) list += (list.empty() ? "" : "; ") + r;
  TLKIT_CHECK_ARG(refused.empty() || from_all,
                  "{} {}: not available with the rows split over {} processes: {}; run {} with "
                  "one process (docs/scaling.md)",
                  a.metric_flag, a.metric, p, list, refused.size() == 1 ? "it" : "them");
  TLKIT_CHECK_ARG(!kept.empty(),
                  "{} {}: none of these metrics runs with the rows split over {} processes: {}",
                  a.metric_flag, a.metric, p, list);
  if (!refused.empty() && comm.is_root())
    fmt::print(stderr,
               "tlkit: note: {} {} with the rows split over {} processes skips {}; run them with "
               "one process\n",
               a.metric_flag, a.metric, p, list);
  return kept;
}

int run_score(const ScoreArgs& a) {
  set_blas_threads(a.threads);
  ScoreOptions options;
  options.threads = a.threads;
  options.seed = a.seed;
  options.params = to_metric_params(a.params);
  const bool has_probs = !a.probs.empty() || !a.logits.empty();
  const unsigned available = (a.features.empty() ? 0u : unsigned{kNeedsFeatures}) | kNeedsLabels |
                             (has_probs ? unsigned{kNeedsProbs} : 0u);
  const std::vector<std::string> metrics =
      naming_metric_flag(a.metric_flag, [&] { return parse_metric_list(a.metric, available); });
  TLKIT_CHECK_ARG(!metrics.empty(),
                  "{} {}: none of these metrics can run on the inputs "
                  "given (add --features, or --probs or --logits)",
                  a.metric_flag, a.metric);
  for (const auto& name : metrics) {
    const MetricInfo& info = find_metric(name);
    TLKIT_CHECK_ARG(!a.regression || info.supports_regression,
                    "{} {} does not support --regression", a.metric_flag, name);
    TLKIT_CHECK_ARG(a.chunk_rows == 0 || stream_limitation(name, options.params).empty(),
                    "{} {} cannot stream (--chunk-rows): it needs {}", a.metric_flag, name,
                    stream_limitation(name, options.params));
    TLKIT_CHECK_ARG(!(info.inputs & kNeedsFeatures) || !a.features.empty(),
                    "{} {} needs --features", a.metric_flag, name);
    TLKIT_CHECK_ARG(!(info.inputs & kNeedsProbs) || has_probs,
                    "{} {} needs --probs (softmax of the model's own logits) or --logits",
                    a.metric_flag, name);
  }
  const std::vector<std::string> run = split_metrics(a, options, metrics);
  const std::unique_ptr<StatisticsBackend> backend =
      required_statistics_backend(a.device == "cuda", 0);
  options.backend = backend.get();
  check_memory(a);
  try {
    return score_and_print(a, options, run);
  } catch (const InputError& e) {
    rethrow_naming_files(e, a);
  }
}

static int score_and_print(const ScoreArgs& a, const ScoreOptions& options,
                           const std::vector<std::string>& metrics) {
  const NpyArray label_file = load_npy(a.labels);
  TLKIT_CHECK_ARG(label_file.rows() >= 2, "{}: need at least 2 samples, got N = {}", a.labels,
                  label_file.rows());
  Outcome out;
  const bool logme_alone = metrics.size() == 1 && metrics.front() == "logme";
  // Streamed logme alone goes through score() with a backend, which takes the chunks (N > D;
  // N <= D is computed from all the rows on the CPU, as without one).
  const bool backend_streams = options.backend && a.chunk_rows > 0 && logme_alone && [&] {
    const NpyRowReader peek(a.features);
    return peek.rows() > peek.cols();
  }();
  if (a.regression || (a.chunk_rows > 0 && logme_alone && !backend_streams)) {
    LogmeOptions opt;
    opt.mode = parse_logme_mode(options.params.text("logme", "mode"));
    opt.threads = a.threads;
    out = compute_logme_accumulated(a, opt, label_file);
  } else if (world().size() > 1 || a.chunk_rows > 0) {
    out = compute_split(a, options, metrics, label_file);
  } else {
    const std::vector<std::int64_t> labels = label_file.labels();
    const std::int64_t n = static_cast<std::int64_t>(labels.size());
    std::optional<NpyArray> features, probs;
    std::vector<double> softmaxed;
    ScoreInputs in;
    in.labels = LabelView{labels.data(), n};
    if (!a.features.empty()) {
      features = load_npy(a.features);
      in.features = features->features();
      TLKIT_CHECK_ARG(in.features.rows == n, "{} has {} rows but {} has {} entries", a.features,
                      in.features.rows, a.labels, n);
    }
    if (!a.probs.empty()) {
      probs = load_npy(a.probs);
      in.probs = probs->features();
      TLKIT_CHECK_ARG(in.probs.rows == n, "{} has {} rows but {} has {} entries", a.probs,
                      in.probs.rows, a.labels, n);
    }
    if (!a.logits.empty()) {
      probs = load_npy(a.logits);
      const NpyHeader& h = probs->header();
      TLKIT_CHECK_ARG(
          h.shape.size() == 2 && (h.type == NpyType::kFloat32 || h.type == NpyType::kFloat64),
          "{}: logits must be a 2-D float32 or float64 array (N, Cs), got shape {} {}", a.logits,
          h.shape_string(), to_string(h.type));
      const FeatureView z = probs->features();
      TLKIT_CHECK_ARG(z.rows == n, "{} has {} rows but {} has {} entries", a.logits, z.rows,
                      a.labels, n);
      for (std::int64_t i = 0; i < z.rows; ++i)
        for (std::int64_t j = 0; j < z.cols; ++j)
          TLKIT_CHECK_ARG(std::isfinite(z.at(i, j)), "{}: non-finite value {} at row {}, column {}",
                          a.logits, z.at(i, j), i, j);
      softmaxed = softmax_rows(z);
      in.probs = FeatureView::row_major(softmaxed.data(), z.rows, z.cols);
    }
    out.report = score(in, metrics, options);
    out.has_logme = std::find(metrics.begin(), metrics.end(), "logme") != metrics.end();
  }
  if (out.has_logme) {
    std::size_t not_converged = 0;
    for (bool c : out.report.logme.converged) not_converged += !c;
    if (not_converged && world().is_root())
      fmt::print(stderr, "tlkit: warning: logme did not converge for {} of {} targets\n",
                 not_converged, out.report.logme.converged.size());
  }
  if (a.format == "json")
    print_json(out);
  else if (a.format == "csv")
    print_csv(out);
  else
    print_table(out);
  return 0;
}

}  // namespace tlkit::cli

namespace tlkit::cli {

Command add_score_command(CLI::App& app) {
  auto args = std::make_shared<ScoreArgs>();
  return {add_score_options(app, *args), [args] { return run_score(*args); }};
}

}  // namespace tlkit::cli

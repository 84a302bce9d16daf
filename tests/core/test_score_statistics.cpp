// Tests of ScoreStatistics (accumulate, merge, bytes) and of score() with its rows split over
// several processes, without MPI: the processes are threads joined by an in-process
// Communicator, so the split path is checked here against the one-process score() of the same
// rows (the MPI runs of the tlkit executable are tests/cli/test_cli_mpi.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "device_pipeline.h"
#include "host_device_ops.h"
#include "test_support.h"
#include "tlkit/core/communicator.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/score.h"
#include "tlkit/core/score_statistics.h"

namespace tlkit {
namespace {

using test::near_rel;

// The largest relative difference between two statistics' arrays (relative to the largest
// magnitude of each array).
double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double scale = 1e-300, diff = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    scale = std::max(scale, std::abs(a[i]));
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  return diff / scale;
}

struct Data {
  std::int64_t n, d;
  std::vector<std::int64_t> y;
  std::vector<double> f;
  Data(std::int64_t n_, std::int64_t d_, std::int64_t classes, unsigned seed)
      : n(n_),
        d(d_),
        y(test::make_labels(n_, classes, seed)),
        f(test::make_features(n_, d_, y, seed + 1)) {
    for (auto& v : y) v = 3 * v - 5;  // labels need not be contiguous
  }
  FeatureView rows(std::int64_t b, std::int64_t e) const {
    return FeatureView::row_major(f.data() + b * d, e - b, d);
  }
  LabelView labels(std::int64_t b, std::int64_t e) const { return LabelView{y.data() + b, e - b}; }
};

std::vector<std::int64_t> classes_of(const std::vector<std::int64_t>& y) {
  std::vector<std::int64_t> c(y);
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

// The statistics by definition, summed row by row in plain loops.
TEST(ScoreStatistics, AccumulateMatchesDefinition) {
  const Data x(57, 5, 3, 11);
  const auto classes = classes_of(x.y);
  const ScoreStatistics s = ScoreStatistics::accumulate(x.rows(0, x.n), x.labels(0, x.n), classes);
  ASSERT_EQ(s.n, x.n);
  ASSERT_EQ(s.d, x.d);
  EXPECT_EQ(s.labels, classes);
  std::vector<double> gram(static_cast<std::size_t>(x.d * x.d), 0.0),
      sums(static_cast<std::size_t>(x.d * 3), 0.0);
  std::vector<std::int64_t> counts(3, 0);
  for (std::int64_t i = 0; i < x.n; ++i) {
    const auto c = std::lower_bound(classes.begin(), classes.end(), x.y[i]) - classes.begin();
    ++counts[c];
    for (std::int64_t j = 0; j < x.d; ++j) {
      sums[c * x.d + j] += x.f[i * x.d + j];
      for (std::int64_t k = 0; k <= j; ++k)
        gram[j * x.d + k] += x.f[i * x.d + k] * x.f[i * x.d + j];
    }
  }
  EXPECT_EQ(s.counts, counts);
  EXPECT_LT(max_rel_diff(s.gram, gram), 1e-13);
  EXPECT_LT(max_rel_diff(s.class_sums, sums), 1e-13);
}

// Rows split into 2 and 3 shards (one shard missing a class) and merged equal one pass over all.
TEST(ScoreStatistics, MergedShardsEqualOnePass) {
  const Data x(400, 9, 4, 21);
  const auto classes = classes_of(x.y);
  const ScoreStatistics whole =
      ScoreStatistics::accumulate(x.rows(0, x.n), x.labels(0, x.n), classes);
  for (const std::vector<std::int64_t>& cuts :
       {std::vector<std::int64_t>{0, 170, 400}, std::vector<std::int64_t>{0, 1, 233, 400}}) {
    ScoreStatistics merged;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      const std::int64_t b = cuts[k], e = cuts[k + 1];
      // Each shard knows only its own labels: merge forms the union of the classes.
      const std::vector<std::int64_t> own(x.y.begin() + b, x.y.begin() + e);
      merged.merge(ScoreStatistics::accumulate(x.rows(b, e), x.labels(b, e), classes_of(own)));
    }
    EXPECT_EQ(merged.n, whole.n);
    EXPECT_EQ(merged.labels, whole.labels);
    EXPECT_EQ(merged.counts, whole.counts);
    EXPECT_LT(max_rel_diff(merged.gram, whole.gram), 1e-12);
    EXPECT_LT(max_rel_diff(merged.class_sums, whole.class_sums), 1e-12);
  }
}

TEST(ScoreStatistics, BytesRoundTripExactly) {
  const Data x(90, 6, 3, 31);
  const ScoreStatistics s =
      ScoreStatistics::accumulate(x.rows(0, x.n), x.labels(0, x.n), classes_of(x.y));
  const std::string bytes = s.to_bytes();
  // magic + 3 sizes + labels and counts + packed upper triangle + class sums
  EXPECT_EQ(bytes.size(), 8u + 24u + 2u * 3u * 8u + (6u * 7u / 2u + 6u * 3u) * 8u);
  const ScoreStatistics back = ScoreStatistics::from_bytes(bytes);
  EXPECT_EQ(back.n, s.n);
  EXPECT_EQ(back.d, s.d);
  EXPECT_EQ(back.labels, s.labels);
  EXPECT_EQ(back.counts, s.counts);
  EXPECT_EQ(back.gram, s.gram);  // bit-exact, lower triangle zero on both sides
  EXPECT_EQ(back.class_sums, s.class_sums);
  EXPECT_EQ(back.to_bytes(), bytes);
  // No rows, no classes, no columns: a rank without rows sends this.
  const ScoreStatistics empty = ScoreStatistics::from_bytes(ScoreStatistics().to_bytes());
  EXPECT_EQ(empty.n, 0);
  EXPECT_TRUE(empty.gram.empty());
}

TEST(ScoreStatistics, RefusesBadBytes) {
  const Data x(40, 3, 2, 41);
  const std::string good =
      ScoreStatistics::accumulate(x.rows(0, x.n), x.labels(0, x.n), classes_of(x.y)).to_bytes();
  auto error_of = [](const std::string& b) {
    return test::input_error_of([&] { ScoreStatistics::from_bytes(b, "shard.bin"); });
  };
  EXPECT_NE(error_of("").find("shard.bin: not a tlkit statistics image (0 bytes"),
            std::string::npos);
  std::string wrong_magic = good;
  wrong_magic[0] = 'X';
  EXPECT_NE(error_of(wrong_magic).find("not a tlkit statistics image"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, good.size() - 1)).find("truncated or corrupt"),
            std::string::npos);
  EXPECT_NE(error_of(good + "x").find("truncated or corrupt"), std::string::npos);
  std::string huge = good;
  const std::int64_t d = std::int64_t{1} << 40;
  std::memcpy(huge.data() + 16, &d, sizeof d);
  EXPECT_NE(error_of(huge).find("sizes out of range"), std::string::npos);
  std::string bad_count = good;  // first class count (after magic, sizes, 2 labels)
  const std::int64_t minus = -1;
  std::memcpy(bad_count.data() + 8 + 24 + 16, &minus, sizeof minus);
  EXPECT_NE(error_of(bad_count).find("class count -1 out of range"), std::string::npos);
}

TEST(ScoreStatistics, MergeRefusesOtherDimension) {
  const Data a(20, 3, 2, 51), b(20, 4, 2, 52);
  ScoreStatistics s = ScoreStatistics::accumulate(a.rows(0, 20), a.labels(0, 20), classes_of(a.y));
  const ScoreStatistics t =
      ScoreStatistics::accumulate(b.rows(0, 20), b.labels(0, 20), classes_of(b.y));
  EXPECT_NE(test::input_error_of([&] { s.merge(t); }).find("D = 3 vs D = 4"), std::string::npos);
}

// LogmeAccumulator's statistics of 3 shards, each sent as bytes and merged, give the LogME of
// the one-pass accumulator (to 1e-12), and the image round-trips bit for bit.
TEST(LogmeAccumulatorBytes, ShardsThroughBytesEqualOnePass) {
  const Data x(500, 7, 4, 91);
  LogmeAccumulator whole;
  whole.update(x.rows(0, x.n), x.labels(0, x.n));
  LogmeAccumulator merged;
  for (const auto& [b, e] :
       {std::pair<std::int64_t, std::int64_t>{0, 120}, {120, 121}, {121, 500}}) {
    LogmeAccumulator part;
    part.update(x.rows(b, e), x.labels(b, e));
    const std::string bytes = part.to_bytes();
    const LogmeAccumulator back = LogmeAccumulator::from_bytes(bytes);
    EXPECT_EQ(back.to_bytes(), bytes);
    merged.merge(back);
  }
  EXPECT_EQ(merged.rows(), x.n);
  const LogmeResult a = whole.result(), b = merged.result();
  EXPECT_TRUE(near_rel(b.score, a.score, 1e-12));
  ASSERT_EQ(b.labels, a.labels);
  for (std::size_t t = 0; t < a.per_target.size(); ++t)
    EXPECT_TRUE(near_rel(b.per_target[t], a.per_target[t], 1e-12));

  // Regression targets too, and an empty accumulator.
  std::vector<double> y(static_cast<std::size_t>(x.n * 2));
  for (std::int64_t i = 0; i < x.n; ++i) {
    y[i * 2] = x.f[i * x.d] + 0.1 * x.f[i * x.d + 1];
    y[i * 2 + 1] = static_cast<double>(x.y[i]);
  }
  LogmeAccumulator reg;
  reg.update(x.rows(0, x.n), TargetView{y.data(), x.n, 2, 2, 1});
  const LogmeAccumulator reg_back = LogmeAccumulator::from_bytes(reg.to_bytes());
  EXPECT_EQ(reg_back.result().score, reg.result().score);
  EXPECT_EQ(LogmeAccumulator::from_bytes(LogmeAccumulator().to_bytes()).rows(), 0);

  // Regression shards through bytes, merged in order with an empty one (a process without rows
  // under `mpirun -n P tlkit score --regression` when P > N), equal the whole accumulator.
  LogmeAccumulator reg_merged;
  for (const auto& [b, e] :
       {std::pair<std::int64_t, std::int64_t>{0, 0}, {0, 170}, {170, 333}, {333, 500}}) {
    LogmeAccumulator part;
    if (e > b) part.update(x.rows(b, e), TargetView{y.data() + b * 2, e - b, 2, 2, 1});
    reg_merged.merge(LogmeAccumulator::from_bytes(part.to_bytes()));
  }
  EXPECT_EQ(reg_merged.rows(), x.n);
  const LogmeResult ra = reg.result(), rb = reg_merged.result();
  EXPECT_TRUE(near_rel(rb.score, ra.score, 1e-12));
  ASSERT_EQ(rb.per_target.size(), 2u);
  for (std::size_t t = 0; t < 2; ++t)
    EXPECT_TRUE(near_rel(rb.per_target[t], ra.per_target[t], 1e-12));
}

TEST(LogmeAccumulatorBytes, RefusesBadBytes) {
  const Data x(40, 3, 2, 92);
  LogmeAccumulator acc;
  acc.update(x.rows(0, x.n), x.labels(0, x.n));
  const std::string good = acc.to_bytes();
  auto error_of = [](const std::string& b) {
    return test::input_error_of([&] { LogmeAccumulator::from_bytes(b, "part.bin"); });
  };
  EXPECT_NE(error_of("TLKSTAT1").find("part.bin: not a tlkit LogME statistics image"),
            std::string::npos);
  EXPECT_NE(error_of(good.substr(0, good.size() - 8)).find("truncated or corrupt"),
            std::string::npos);
  std::string twice = good;  // second label := first label
  std::memcpy(twice.data() + 8 + 32 + 8, twice.data() + 8 + 32, 8);
  EXPECT_NE(error_of(twice).find("appears twice"), std::string::npos);
  std::string kind = good;
  const std::int64_t seven = 7;
  std::memcpy(kind.data() + 8, &seven, 8);
  EXPECT_NE(error_of(kind).find("sizes out of range: kind = 7"), std::string::npos);
}

// P threads as the processes of a job: collectives meet at a generation barrier and sum in rank
// order, so every thread gets the same bits.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(static_cast<std::size_t>(size)) {}

  class Member final : public Communicator {
   public:
    Member(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return g_.size_; }
    void allreduce_sum(double* data, std::size_t count) override { reduce(data, count); }
    void allreduce_sum(std::int64_t* data, std::size_t count) override { reduce(data, count); }
    void allreduce_max(std::int64_t* data, std::size_t count) override {
      publish(data);
      std::vector<std::int64_t> out(data, data + count);
      for (int r = 0; r < g_.size_; ++r)
        for (std::size_t i = 0; i < count; ++i)
          out[i] = std::max(out[i], static_cast<const std::int64_t*>(g_.slots_[r])[i]);
      finish(data, out);
    }
    void broadcast(std::string& bytes, int root) override {
      publish(&bytes);
      std::string copy = *static_cast<const std::string*>(g_.slots_[root]);
      g_.wait();
      bytes = std::move(copy);
    }
    std::vector<std::string> gather(const std::string& bytes) override {
      publish(&bytes);
      std::vector<std::string> out;
      if (rank_ == 0)
        for (int r = 0; r < g_.size_; ++r)
          out.push_back(*static_cast<const std::string*>(g_.slots_[r]));
      g_.wait();
      return out;
    }
    void barrier() override { g_.wait(); }
    std::unique_ptr<SharedCounter> make_counter() override {
      class Counter final : public SharedCounter {
       public:
        explicit Counter(std::atomic<std::int64_t>& v) : v_(v) {}
        std::int64_t fetch_add(std::int64_t k) override { return v_.fetch_add(k); }

       private:
        std::atomic<std::int64_t>& v_;
      };
      if (rank_ == 0) g_.counter_ = 0;
      g_.wait();
      return std::make_unique<Counter>(g_.counter_);
    }
    [[noreturn]] void abort(int, const std::string& message) override {
      ADD_FAILURE() << "abort: " << message;
      std::abort();
    }

   private:
    void publish(const void* p) {
      g_.slots_[rank_] = p;
      g_.wait();
    }
    template <typename T>
    void reduce(T* data, std::size_t count) {
      publish(data);
      std::vector<T> out(count, T{0});
      for (int r = 0; r < g_.size_; ++r)
        for (std::size_t i = 0; i < count; ++i) out[i] += static_cast<const T*>(g_.slots_[r])[i];
      finish(data, out);
    }
    template <typename T>
    void finish(T* data, const std::vector<T>& out) {
      g_.wait();  // everyone has read every slot
      std::copy(out.begin(), out.end(), data);
    }
    ThreadGroup& g_;
    int rank_;
  };

  // Runs fn(comm) on `size` threads and waits for them.
  template <typename Fn>
  void run(Fn&& fn) {
    std::vector<std::thread> threads;
    std::vector<Member> members;
    for (int r = 0; r < size_; ++r) members.emplace_back(*this, r);
    for (int r = 0; r < size_; ++r) threads.emplace_back([&, r] { fn(members[r]); });
    for (auto& t : threads) t.join();
  }

 private:
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const long gen = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  int size_;
  std::vector<const void*> slots_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  long generation_ = 0;
  std::atomic<std::int64_t> counter_{0};
};

// Every metric on P = 2 and 3 shards against one process: scores and details to 1e-9 relative,
// the same n, labels and LogME details. Source-class probabilities (leep, nce) are split like the
// features. The second configuration takes gbc through its PCA (projected rows gathered) and parc
// through the raw rows (every process's rows passed to every process).
std::vector<double> softmax_probs(std::int64_t n, std::int64_t cs, unsigned seed) {
  const std::vector<std::int64_t> z = test::make_labels(n, cs, seed);
  const std::vector<double> g = test::make_features(n, cs, z, seed + 1);
  std::vector<double> p(g.size());
  for (std::int64_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < cs; ++j) sum += p[i * cs + j] = std::exp(g[i * cs + j]);
    for (std::int64_t j = 0; j < cs; ++j) p[i * cs + j] /= sum;
  }
  return p;
}

void expect_split_equals_one_process(const Data& x, const std::vector<double>& probs,
                                     std::int64_t cs, const std::vector<std::string>& metrics,
                                     const MetricParams& params) {
  ScoreInputs all;
  all.features = x.rows(0, x.n);
  all.labels = x.labels(0, x.n);
  all.probs = FeatureView::row_major(probs.data(), x.n, cs);
  ScoreOptions one;
  one.threads = 1;
  one.params = params;
  const ScoreReport ref = score(all, metrics, one);
  for (int p : {2, 3}) {
    ThreadGroup group(p);
    std::vector<ScoreReport> reports(static_cast<std::size_t>(p));
    group.run([&](Communicator& comm) {
      const RowRange r = row_range(x.n, comm.rank(), comm.size());
      ScoreInputs in;
      in.features = x.rows(r.begin, r.end);
      in.labels = x.labels(r.begin, r.end);
      in.probs = FeatureView::row_major(probs.data() + r.begin * cs, r.count(), cs);
      ScoreOptions opt;
      opt.threads = 1;
      opt.params = params;
      opt.comm = &comm;
      opt.first_row = r.begin;
      reports[comm.rank()] = score(in, metrics, opt);
    });
    for (const ScoreReport& rep : reports) {
      EXPECT_EQ(rep.n, ref.n);
      EXPECT_EQ(rep.d, ref.d);
      EXPECT_EQ(rep.labels, ref.labels);
      ASSERT_EQ(rep.metrics.size(), ref.metrics.size());
      for (std::size_t m = 0; m < ref.metrics.size(); ++m) {
        EXPECT_EQ(rep.metrics[m].name, ref.metrics[m].name);
        EXPECT_TRUE(std::isfinite(ref.metrics[m].score)) << ref.metrics[m].name;
        EXPECT_TRUE(near_rel(rep.metrics[m].score, ref.metrics[m].score, 1e-9))
            << "P = " << p << ", " << ref.metrics[m].name << ": " << rep.metrics[m].score
            << " against " << ref.metrics[m].score;
        EXPECT_EQ(rep.metrics[m].converged, ref.metrics[m].converged) << ref.metrics[m].name;
        for (const auto& [k, v] : ref.metrics[m].details) {
          // L-BFGS stops when its gradient test (1e-9 relative) is crossed, which gradients
          // summed in another order cross a few steps earlier or later; the fit, not the step
          // count, is what the accuracy depends on.
          if (ref.metrics[m].name == "logistic" && k == "iterations") continue;
          EXPECT_TRUE(near_rel(rep.metrics[m].details.at(k), v, 1e-9))
              << ref.metrics[m].name << "." << k;
        }
      }
      ASSERT_EQ(rep.logme.per_target.size(), ref.logme.per_target.size());
      for (std::size_t t = 0; t < ref.logme.per_target.size(); ++t)
        EXPECT_TRUE(near_rel(rep.logme.per_target[t], ref.logme.per_target[t], 1e-9));
    }
  }
}

TEST(ScoreSplit, EqualsOneProcess) {
  const Data x(600, 12, 5, 61);
  const std::vector<double> probs = softmax_probs(x.n, 7, 62);
  expect_split_equals_one_process(
      x, probs, 7,
      {"logme", "leep", "nce", "hscore", "hscore_shrink", "transrate", "nleep", "gbc", "sfda",
       "etran_lda", "etran_energy", "ncti_seli", "ncti_ncc", "ncti_vc", "parc", "knn", "logistic"},
      {});
  MetricParams other;
  other.set("gbc", "pca_dims", "4");
  other.set("parc", "pca_dims", "0");
  other.set("transrate", "weighting", "tllib");
  expect_split_equals_one_process(x, probs, 7, {"gbc", "parc", "transrate"}, other);
}

// Classes smaller than D take transrate's one-process path through Z_c Z_c^T; split, it sums
// Z_c^T Z_c (the same determinant).
TEST(ScoreSplit, TransrateWithClassesSmallerThanD) {
  const Data x(90, 40, 4, 63);
  expect_split_equals_one_process(x, softmax_probs(x.n, 3, 64), 3, {"transrate", "knn"}, {});
}

// More processes than rows of some classes: a shard without rows, and classes only some shards
// see, still give one process's scores.
TEST(ScoreSplit, EmptyShardAndMissingClasses) {
  Data x(13, 3, 3, 71);
  std::sort(x.y.begin(), x.y.end());  // shards see different classes
  ScoreInputs all;
  all.features = x.rows(0, x.n);
  all.labels = x.labels(0, x.n);
  const std::vector<std::string> metrics = {"logme",    "hscore",       "transrate", "knn",
                                            "logistic", "etran_energy", "ncti_ncc"};
  const ScoreReport ref = score(all, metrics);
  ThreadGroup group(3);
  std::vector<ScoreReport> got(3);
  group.run([&](Communicator& comm) {
    // rank 1 gets no rows
    const std::int64_t b = comm.rank() == 0 ? 0 : comm.rank() == 1 ? 6 : 6;
    const std::int64_t e = comm.rank() == 0 ? 6 : comm.rank() == 1 ? 6 : 13;
    ScoreInputs in;
    in.features = x.rows(b, e);
    in.labels = x.labels(b, e);
    ScoreOptions opt;
    opt.comm = &comm;
    opt.first_row = b;
    got[comm.rank()] = score(in, metrics, opt);
  });
  for (const ScoreReport& rep : got) {
    EXPECT_EQ(rep.labels, ref.labels);
    for (std::size_t m = 0; m < metrics.size(); ++m) {
      if (metrics[m] == "etran_energy") {  // N = 13 < 200: undefined either way
        EXPECT_TRUE(std::isnan(rep.metrics[m].score));
        EXPECT_EQ(rep.metrics[m].notes, ref.metrics[m].notes);
        continue;
      }
      EXPECT_TRUE(near_rel(rep.metrics[m].score, ref.metrics[m].score, 1e-9)) << metrics[m];
    }
  }
}

// Every metric runs split (distributed_limitation() is empty), except logme with N <= D, which
// needs F F^T of all the rows; sample ids (bootstrap resamples) are one-process only.
TEST(ScoreSplit, RefusesLogmeWithNAtMostD) {
  const Data x(30, 40, 2, 81);
  MetricParams pca;
  pca.set("gbc", "pca_dims", "64");
  for (const char* name : {"knn", "parc", "logistic", "nleep", "transrate", "etran_energy",
                           "ncti_seli", "leep", "nce", "logme", "hscore", "sfda", "gbc"}) {
    EXPECT_EQ(distributed_limitation(name, {}), "") << name;
    EXPECT_EQ(distributed_limitation(name, pca), "") << name;
  }
  ThreadGroup group(2);
  std::vector<std::string> logme(2), ids(2);
  const std::vector<std::int64_t> sample_ids(static_cast<std::size_t>(x.n), 0);
  group.run([&](Communicator& comm) {
    const RowRange r = row_range(x.n, comm.rank(), comm.size());
    ScoreInputs in;
    in.features = x.rows(r.begin, r.end);
    in.labels = x.labels(r.begin, r.end);
    ScoreOptions opt;
    opt.comm = &comm;
    logme[comm.rank()] = test::input_error_of([&] { score(in, {"logme"}, opt); });
    in.sample_ids = sample_ids.data();
    ids[comm.rank()] = test::input_error_of([&] { score(in, {"knn"}, opt); });
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(logme[r].find("N = 30 <= D = 40"), std::string::npos) << logme[r];
    EXPECT_NE(ids[r].find("sample ids"), std::string::npos) << ids[r];
  }
}

// Rows [begin, end) of a Data, handed out `chunk` rows at a time (as `score --chunk-rows` reads
// a file); counts the passes.
class ChunkSource final : public RowSource {
 public:
  ChunkSource(const Data& x, std::int64_t begin, std::int64_t end, std::int64_t chunk)
      : x_(x), begin_(begin), end_(end), chunk_(chunk) {}
  void for_chunks(const std::function<void(const FeatureView&, std::int64_t)>& fn) override {
    ++passes;
    for (std::int64_t b = begin_; b < end_; b += chunk_)
      fn(x_.rows(b, std::min(b + chunk_, end_)), b - begin_);
  }
  int passes = 0;

 private:
  const Data& x_;
  std::int64_t begin_, end_, chunk_;
};

ScoreInputs streamed_inputs(const Data& x, std::int64_t b, std::int64_t e, ChunkSource& source) {
  ScoreInputs in;
  in.features.rows = e - b;
  in.features.cols = x.d;
  in.features.row_stride = x.d;
  in.feature_rows = &source;
  in.labels = x.labels(b, e);
  return in;
}

// Streamed features (chunks of 7 rows, so no chunk boundary matches score()'s blocks) give the
// in-memory scores to 1e-9, in one process and split over 2 and 3; the streamable metrics only.
TEST(ScoreStreamed, EqualsInMemory) {
  const Data x(500, 10, 4, 91);
  const std::vector<std::string> metrics = {"logme",     "hscore", "hscore_shrink", "sfda",
                                            "etran_lda", "gbc",    "etran_energy"};
  for (const auto& m : metrics) EXPECT_EQ(stream_limitation(m, {}), "") << m;
  ScoreInputs all;
  all.features = x.rows(0, x.n);
  all.labels = x.labels(0, x.n);
  const ScoreReport ref = score(all, metrics);
  ChunkSource whole(x, 0, x.n, 7);
  const ScoreReport one = score(streamed_inputs(x, 0, x.n, whole), metrics);
  EXPECT_GE(whole.passes, 2);  // the statistics, then the second passes of the metrics
  for (std::size_t m = 0; m < metrics.size(); ++m)
    EXPECT_TRUE(near_rel(one.metrics[m].score, ref.metrics[m].score, 1e-9)) << metrics[m];
  for (int p : {2, 3}) {
    ThreadGroup group(p);
    std::vector<ScoreReport> reports(static_cast<std::size_t>(p));
    group.run([&](Communicator& comm) {
      const RowRange r = row_range(x.n, comm.rank(), comm.size());
      ChunkSource source(x, r.begin, r.end, 7);
      ScoreOptions opt;
      opt.comm = &comm;
      opt.first_row = r.begin;
      reports[comm.rank()] = score(streamed_inputs(x, r.begin, r.end, source), metrics, opt);
    });
    for (const ScoreReport& rep : reports)
      for (std::size_t m = 0; m < metrics.size(); ++m)
        EXPECT_TRUE(near_rel(rep.metrics[m].score, ref.metrics[m].score, 1e-9))
            << "P = " << p << ", " << metrics[m];
  }
}

// Metrics that hold, project or compare rows are refused on streamed features, naming what they
// need; logme with N <= D too (it needs F F^T of the rows). A non-finite value is named by its
// row in the whole data.
TEST(ScoreStreamed, RefusesRowMetricsAndNamesBadRows) {
  const Data x(60, 4, 3, 93);
  ChunkSource source(x, 0, x.n, 8);
  for (const char* name : {"knn", "parc", "logistic", "nleep", "transrate", "ncti_seli"}) {
    EXPECT_NE(stream_limitation(name, {}), "") << name;
    const std::string err =
        test::input_error_of([&] { score(streamed_inputs(x, 0, x.n, source), {name}); });
    EXPECT_NE(err.find(std::string("--metric ") + name + " cannot stream (--chunk-rows)"),
              std::string::npos)
        << err;
  }
  MetricParams pca;
  pca.set("gbc", "pca_dims", "2");
  EXPECT_NE(stream_limitation("gbc", pca), "");
  const Data wide(20, 30, 2, 94);
  ChunkSource wide_source(wide, 0, wide.n, 8);
  EXPECT_NE(test::input_error_of([&] {
              score(streamed_inputs(wide, 0, wide.n, wide_source), {"logme", "hscore"});
            }).find("N = 20 <= D = 30"),
            std::string::npos);
  Data bad(60, 4, 3, 93);
  bad.f[static_cast<std::size_t>(45 * bad.d + 2)] = std::nan("");
  ChunkSource bad_source(bad, 0, bad.n, 8);
  EXPECT_NE(test::input_error_of([&] {
              score(streamed_inputs(bad, 0, bad.n, bad_source), {"hscore"});
            }).find("non-finite value nan at row 45, column 2"),
            std::string::npos);
}

// A device backend (the host implementation of the device operations) with the rows split over
// processes, one of them without rows: each process's backend sums its own rows, the sums are
// reduced as on the CPU, and the scores are one process's on the CPU.
TEST(ScoreSplit, DeviceBackendEqualsOneProcessOnTheCpu) {
  const std::vector<std::string> metrics = {"logme", "hscore", "hscore_shrink", "transrate",
                                            "sfda"};
  Data sorted(13, 3, 3, 71);
  std::sort(sorted.y.begin(), sorted.y.end());  // shards see different classes
  const Data plain(300, 10, 4, 81);
  for (const Data* x : {&plain, static_cast<const Data*>(&sorted)}) {
    ScoreInputs all;
    all.features = x->rows(0, x->n);
    all.labels = x->labels(0, x->n);
    const ScoreReport ref = score(all, metrics);
    ThreadGroup group(3);
    std::vector<ScoreReport> got(3);
    group.run([&](Communicator& comm) {
      // The 13 rows: rank 1 gets none.
      const RowRange r = row_range(x->n, comm.rank(), comm.size());
      const std::int64_t b = x->n == 13 ? (comm.rank() == 0 ? 0 : 6) : r.begin;
      const std::int64_t e = x->n == 13 ? (comm.rank() == 2 ? 13 : 6) : r.end;
      detail::PipelineOptions chunks;
      chunks.chunk_rows = 7;
      detail::PipelineBackend backend(
          "host", std::make_unique<test::HostDeviceOps>(static_cast<unsigned>(comm.rank()) + 1, 2),
          chunks);
      ScoreInputs in;
      in.features = x->rows(b, e);
      in.labels = x->labels(b, e);
      ScoreOptions opt;
      opt.comm = &comm;
      opt.first_row = b;
      opt.backend = &backend;
      got[comm.rank()] = score(in, metrics, opt);
    });
    for (const ScoreReport& rep : got)
      for (std::size_t m = 0; m < metrics.size(); ++m)
        EXPECT_TRUE(near_rel(rep.metrics[m].score, ref.metrics[m].score, 1e-9))
            << "N = " << x->n << ", " << metrics[m];
  }
}

TEST(RowRange, BalancedConsecutiveBlocks) {
  std::int64_t next = 0;
  for (int r = 0; r < 4; ++r) {
    const RowRange range = row_range(10, r, 4);
    EXPECT_EQ(range.begin, next);
    EXPECT_EQ(range.count(), r < 2 ? 3 : 2);
    next = range.end;
  }
  EXPECT_EQ(next, 10);
  EXPECT_EQ(row_range(2, 2, 3).count(), 0);
}

}  // namespace
}  // namespace tlkit

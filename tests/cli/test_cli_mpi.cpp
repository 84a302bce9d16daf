// `tlkit` under mpirun (-n 2 and -n 3, oversubscribed on this machine): the split runs print what
// the one-process run prints, only rank 0 writes, refused metrics and a failing rank end the job
// with the one-process exit code and no output. Registered only when tlkit is built with MPI
// (TLKIT_MPI), label mpi. The reference is always the same tlkit run as one process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <thread>

#include "cli_support.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

using test::CliRun;

// Open MPI on these machines: root, more ranks than cores, shared memory and loopback only; no
// LeakSanitizer (Open MPI's own allocations are reported as leaks in every rank).
void set_mpi_environment() {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  ::setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  ::setenv("OMPI_MCA_btl", "self,vader", 1);
  ::setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
  const char* asan = std::getenv("ASAN_OPTIONS");
  ::setenv("ASAN_OPTIONS",
           (asan && *asan ? std::string(asan) + ":detect_leaks=0" : "detect_leaks=0").c_str(), 1);
}

// `mpirun -n p tlkit <args>`; --timeout ends a hung job (exit code != 0) instead of the test.
CliRun run_mpi(int p, const std::string& args) {
  set_mpi_environment();
  test::TempDir dir;
  const std::string err_file = dir.file("stderr");
  const std::string cmd = std::string(TLKIT_MPIEXEC) + " --timeout 120 --bind-to none -n " +
                          std::to_string(p) + " " + TLKIT_CLI + " " + args + " 2>" + err_file;
  CliRun r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, got);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = test::read_bytes(err_file);
  return r;
}

// A labelled float32 feature fixture (N x D, C classes with class-dependent means), written by
// tlkit's own .npy writer: both runs read the same file, so no external reference is needed.
struct Fixture {
  test::TempDir dir;
  std::string features, labels;
  Fixture(std::int64_t n, std::int64_t d, std::int64_t c, bool nan_in_last_row = false) {
    const std::vector<std::int64_t> y = test::make_labels(n, c, 5);
    const std::vector<double> f64 = test::make_features(n, d, y, 6);
    std::vector<float> f(f64.begin(), f64.end());
    if (nan_in_last_row) f[static_cast<std::size_t>((n - 1) * d + 1)] = std::nanf("");
    features = dir.file("features.npy");
    labels = dir.file("labels.npy");
    save_npy(features, f.data(), {n, d});
    save_npy(labels, y.data(), {n});
  }
  std::string args(const std::string& extra) const {
    return "score --features " + features + " --labels " + labels + " " + extra;
  }
};

// The scores of two `--format json` outputs agree to 1e-9 relative, metric by metric, with the
// same n, d, classes and LogME per-class values; `r` is a split run: only rank 0 printed.
void expect_same_scores(const CliRun& one, const CliRun& r, const std::string& what) {
  ASSERT_EQ(one.code, 0) << one.err;
  ASSERT_EQ(r.code, 0) << what << "\n" << r.err;
  EXPECT_EQ(r.err, "") << what;
  EXPECT_EQ(test::count_lines(r.out), 1) << "only rank 0 prints:\n" << r.out;
  const auto ref = nlohmann::json::parse(one.out);
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"n", "d", "targets", "labels", "task", "notes"}) {
    ASSERT_EQ(j.contains(key), ref.contains(key)) << what << ": " << key;
    if (ref.contains(key)) {
      EXPECT_EQ(j[key], ref[key]) << what << ": " << key;
    }
  }
  ASSERT_EQ(j["metrics"].size(), ref["metrics"].size()) << what;
  for (const auto& [name, m] : ref["metrics"].items()) {
    if (m["score"].is_null()) {  // undefined in one process: undefined split too
      EXPECT_TRUE(j["metrics"][name]["score"].is_null()) << what << ", " << name;
      continue;
    }
    const double want = m["score"].get<double>(), got = j["metrics"][name]["score"].get<double>();
    EXPECT_TRUE(test::near_rel(got, want, 1e-9))
        << what << ", " << name << ": " << got << " against " << want;
  }
  if (ref["metrics"].contains("logme")) {
    const auto& lw = ref["metrics"]["logme"]["per_target"];
    const auto& lg = j["metrics"]["logme"]["per_target"];
    ASSERT_EQ(lg.size(), lw.size());
    for (std::size_t t = 0; t < lw.size(); ++t)
      EXPECT_TRUE(test::near_rel(lg[t].get<double>(), lw[t].get<double>(), 1e-9));
  }
}

// Every metric (--metric all, with the source-class probabilities split like the features) on
// the metric fixture tall (N = 300, D = 20, 8 source classes), split over 2 and 3 processes.
TEST(Mpi, ScoreAllEqualsOneProcess) {
  const std::string t = test::data_path("metrics/tall_");
  const std::string args = "score --features " + t + "features.npy --labels " + t +
                           "labels.npy --probs " + t + "probs.npy --metric all --format json";
  const CliRun one = test::run_cli(args);
  ASSERT_EQ(nlohmann::json::parse(one.out)["metrics"].size(), 17u) << one.out;
  for (int p : {2, 3}) expect_same_scores(one, run_mpi(p, args), "P = " + std::to_string(p));
}

// float32 features with --logits (softmax per row on each process) and the metrics' options
// that change what is exchanged: gbc through its PCA, parc on the raw rows.
TEST(Mpi, ScoreWithLogitsAndOptionsEqualsOneProcess) {
  const Fixture fx(400, 16, 5);
  std::vector<double> logits(400 * 6);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(0.37 * i) * 3.0;
  const std::string z = fx.dir.file("logits.npy");
  save_npy(z, logits.data(), {400, 6});
  const std::string args =
      fx.args("--logits " + z +
              " --metric leep,nce,gbc,parc,knn,logistic,transrate --gbc-pca-dims 4 "
              "--parc-pca-dims 0 --format json");
  const CliRun one = test::run_cli(args);
  expect_same_scores(one, run_mpi(2, args), "P = 2");
}

// --chunk-rows within each process: the streamable metrics read their rows 16 at a time on
// every pass and equal one process reading the file whole; LogME alone streams through its
// accumulator, whose images are merged over the processes.
TEST(Mpi, ChunkRowsEqualsOneProcess) {
  const std::string t = test::data_path("metrics/tall_");
  const std::string base = "score --features " + t + "features.npy --labels " + t +
                           "labels.npy --probs " + t + "probs.npy --format json --metric ";
  const std::string streamable =
      "logme,hscore,hscore_shrink,sfda,etran_lda,gbc,etran_energy,"
      "leep,nce";
  const CliRun one = test::run_cli(base + streamable);
  for (int p : {2, 3})
    expect_same_scores(one, run_mpi(p, base + streamable + " --chunk-rows 16"),
                       "P = " + std::to_string(p) + ", --chunk-rows 16");
  expect_same_scores(test::run_cli(base + "logme"), run_mpi(3, base + "logme --chunk-rows 7"),
                     "logme alone, P = 3, --chunk-rows 7");
}

// --regression: LogME per target column from the merged statistics of every process, whole
// ranges or chunks (tests/data/logme regression fixture: N = 150, D = 10, K = 3).
TEST(Mpi, RegressionEqualsOneProcess) {
  const std::string args = "score --features " + test::data_path("logme/regression_features.npy") +
                           " --labels " + test::data_path("logme/regression_targets.npy") +
                           " --regression --format json";
  const CliRun one = test::run_cli(args);
  ASSERT_EQ(nlohmann::json::parse(one.out)["metrics"]["logme"]["per_target"].size(), 3u);
  expect_same_scores(one, run_mpi(2, args), "P = 2");
  expect_same_scores(one, run_mpi(3, args + " --chunk-rows 11"), "P = 3, --chunk-rows 11");
}

// --metric all runs every metric split: no note, no skipped metric.
TEST(Mpi, MetricAllRunsEveryMetric) {
  const Fixture fx(600, 8, 3);
  const CliRun r = run_mpi(2, fx.args("--metric all --format csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* ran : {"logme,mean", "knn,mean", "parc,mean", "logistic,mean", "nleep,mean",
                          "transrate,mean", "etran_energy,mean", "ncti_seli,mean"})
    EXPECT_NE(r.out.find(ran), std::string::npos) << ran;
}

// logme with N <= D needs F F^T of all the rows: refused under P > 1, naming what it needs.
TEST(Mpi, LogmeWithNAtMostDIsRefused) {
  const Fixture fx(20, 30, 2);
  const CliRun r = run_mpi(2, fx.args("--metric logme,knn"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("N = 20 <= D = 30 needs F F^T of all the rows"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("run it with one process"), std::string::npos) << r.err;
}

// Only the last rank reads the last row: its error ends the job with the one-process exit code,
// naming the row in the file also when the rank streams its rows (--chunk-rows, LogME's
// accumulator counts from the rank's first row).
TEST(Mpi, AFailingRankEndsTheJob) {
  const Fixture fx(300, 4, 2, /*nan_in_last_row=*/true);
  const CliRun one = test::run_cli(fx.args("--metric logme"));
  EXPECT_EQ(one.code, 2);
  EXPECT_NE(one.err.find("non-finite value nan at row 299, column 1"), std::string::npos)
      << one.err;
  for (const std::string extra :
       {"--metric logme", "--metric logme --chunk-rows 7", "--metric hscore,logme --chunk-rows 7"})
    for (int p : {2, 3}) {
      const CliRun r = run_mpi(p, fx.args(extra));
      EXPECT_EQ(r.code, 2) << r.err;
      EXPECT_EQ(r.out, "");
      EXPECT_NE(r.err.find("tlkit: error (rank " + std::to_string(p - 1) + " of " +
                           std::to_string(p) + "): "),
                std::string::npos)
          << r.err;
      EXPECT_NE(r.err.find("non-finite value nan at row 299, column 1"), std::string::npos)
          << extra << "\n"
          << r.err;
    }
}

#ifdef TLKIT_TEST_RANK
namespace fs = std::filesystem;

// The rank JSON without its timings (wall times and speeds differ from run to run).
// The output without what depends on how the work was shared: timings, and the decoded-image
// counters (each process decodes the images of its own models).
nlohmann::json without_timings(nlohmann::json j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto& [k, v] : j.items())
      if (k.find("seconds") == std::string::npos && k.find("per_second") == std::string::npos &&
          k != "decode_cache")
        out[k] = without_timings(v);
    return out;
  }
  if (j.is_array())
    for (auto& v : j) v = without_timings(v);
  return j;
}

std::string kit_rank_args(const std::string& extra) {
  const std::string kit = TLKIT_KIT_DIR;
  return "rank --zoo " + kit + "/models/zoo.json --models cifar10_resnet20,cifar10_resnet32 " +
         "--data " + kit + "/data/cifar10-test --per-class 6 --threads 1 --quiet " + extra;
}

// Two kit models ranked on 2 and 3 processes (one of them without a model): the same JSON apart
// from timings and the same --out CSV, byte for byte, as one process; the shared cache is
// complete afterwards and a second split run reads both models from it.
TEST(Mpi, RankEqualsOneProcess) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  const CliRun one =
      test::run_cli(kit_rank_args("--no-cache --format json --out " + t.file("one.csv")));
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = without_timings(nlohmann::json::parse(one.out));
  const std::string ref_csv = test::read_bytes(t.file("one.csv"));
  for (int p : {2, 3}) {
    const std::string csv = t.file("p" + std::to_string(p) + ".csv");
    const CliRun r = run_mpi(p, kit_rank_args("--no-cache --format json --out " + csv));
    ASSERT_EQ(r.code, 0) << "P = " << p << "\n" << r.err;
    // One JSON document (parse refuses trailing text): only rank 0 printed.
    EXPECT_EQ(without_timings(nlohmann::json::parse(r.out)), ref) << "P = " << p;
    EXPECT_EQ(test::read_bytes(csv), ref_csv) << "P = " << p;
  }
  const std::string cache = t.file("cache");
  const CliRun first = run_mpi(2, kit_rank_args("--cache " + cache + " --format json"));
  ASSERT_EQ(first.code, 0) << first.err;
  for (const char* model : {"cifar10_resnet20", "cifar10_resnet32"}) {
    int entries = 0;
    for (const auto& e : fs::directory_iterator(fs::path(cache) / model)) {
      ++entries;
      EXPECT_TRUE(fs::exists(e.path() / "meta.json")) << e.path();
    }
    EXPECT_EQ(entries, 1) << model;
  }
  const CliRun again = run_mpi(2, kit_rank_args("--cache " + cache + " --format json"));
  ASSERT_EQ(again.code, 0) << again.err;
  const auto j = nlohmann::json::parse(again.out);
  for (const auto& m : j["models"]) EXPECT_TRUE(m["cached"].get<bool>()) << m["name"];
  auto j_ref = without_timings(nlohmann::json::parse(first.out));
  auto j_got = without_timings(j);
  for (auto* x : {&j_ref, &j_got})
    for (auto& m : (*x)["models"]) m.erase("cached");
  EXPECT_EQ(j_got, j_ref);
}

// A rank killed while the job runs (SIGKILL, as an out-of-memory kill would) ends the whole job
// with a non-zero exit code and no --out file.
TEST(Mpi, AKilledRankEndsTheJobWithoutOutput) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  set_mpi_environment();
  test::TempDir t;
  const std::string out = t.file("scores.csv");
  const std::string kit = TLKIT_KIT_DIR;
  std::vector<std::string> args = {"--timeout", "120", "--bind-to", "none", "-n", "2", TLKIT_CLI};
  for (const char* a : {"rank", "--zoo"}) args.push_back(a);
  args.push_back(kit + "/models/zoo.json");
  for (const char* a : {"--models", "cifar10_resnet20,cifar10_resnet32", "--data"})
    args.push_back(a);
  args.push_back(kit + "/data/cifar10-test");
  for (const char* a : {"--threads", "1", "--quiet", "--no-cache", "--out"}) args.push_back(a);
  args.push_back(out);
  std::vector<char*> argv;
  std::string exe = TLKIT_MPIEXEC;
  argv.push_back(exe.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t mpirun = ::fork();
  if (mpirun == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::freopen("/dev/null", "w", stderr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // The ranks are mpirun's children running tlkit: kill the first one found once both run.
  pid_t victim = -1;
  for (int tries = 0; tries < 200 && victim < 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = test::read_bytes(e.path().string() + "/stat");
      const std::size_t close = stat.rfind(')');
      if (close == std::string::npos || stat.find("(tlkit)") == std::string::npos) continue;
      const long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
      if (ppid == mpirun) victim = static_cast<pid_t>(std::stol(name));
    }
  }
  ASSERT_GT(victim, 0) << "no rank of mpirun " << mpirun << " found";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // mid-run: the listing is done
  ::kill(victim, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(mpirun, &status, 0), mpirun);
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0) << "status " << status;
  EXPECT_FALSE(fs::exists(out));
}
#endif

}  // namespace
}  // namespace tlkit

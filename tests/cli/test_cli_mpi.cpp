// `tlkit` under mpirun (-n 2 and -n 3, oversubscribed on this machine): the split runs print what
// the one-process run prints, only rank 0 writes, refused metrics and a failing rank end the job
// with the one-process exit code and no output. Registered only when tlkit is built with MPI
// (TLKIT_MPI), label mpi. The reference is always the same tlkit run as one process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

std::string kit_rank_args(const std::string& extra, int per_class = 6) {
  const std::string kit = TLKIT_KIT_DIR;
  return "rank --zoo " + kit + "/models/zoo.json --models cifar10_resnet20,cifar10_resnet32 " +
         "--data " + kit + "/data/cifar10-test --per-class " + std::to_string(per_class) +
         " --threads 1 --quiet " + extra;
}

// The rank JSON with its scores compared to `rel` relative (the split runs reduce the metrics'
// statistics in another order) and everything else exactly, timings left out.
void expect_same_rank(const nlohmann::json& got, const nlohmann::json& ref, double rel,
                      const std::string& what) {
  auto rest = [](nlohmann::json j) {
    j = without_timings(j);
    for (auto& m : j["models"]) m.erase("scores");
    return j;
  };
  EXPECT_EQ(rest(got), rest(ref)) << what;
  ASSERT_EQ(got["models"].size(), ref["models"].size()) << what;
  for (std::size_t i = 0; i < ref["models"].size(); ++i) {
    const auto& a = got["models"][i]["scores"];
    const auto& b = ref["models"][i]["scores"];
    ASSERT_EQ(a.size(), b.size()) << what;
    for (const auto& [metric, v] : b.items()) {
      ASSERT_TRUE(a.contains(metric)) << what << " " << metric;
      if (v.is_null()) {
        EXPECT_TRUE(a[metric].is_null()) << what << " " << metric;
        continue;
      }
      const double x = a[metric].get<double>(), y = v.get<double>();
      EXPECT_NEAR(x, y, rel * std::abs(y))
          << what << " " << ref["models"][i]["name"] << " " << metric;
    }
  }
}

// The --out CSV (model,metric,score): the same rows in the same order, scores to `rel`.
void expect_same_scores_csv(const std::string& got, const std::string& ref, double rel,
                            const std::string& what) {
  auto rows = [](const std::string& text) {
    std::vector<std::pair<std::string, double>> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      const auto comma = line.rfind(',');
      const std::string value = line.substr(comma + 1);
      out.emplace_back(line.substr(0, comma), value == "score" ? 0.0 : std::stod(value));
    }
    return out;
  };
  const auto a = rows(got), b = rows(ref);
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << what;
    EXPECT_NEAR(a[i].second, b[i].second, rel * std::abs(b[i].second)) << what << " " << b[i].first;
  }
}

// Two kit models ranked on 2 and 3 processes (one of them without a model: 60 samples do not
// outnumber the 64 features, so the samples are not split by themselves): the same JSON apart
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
    EXPECT_EQ(r.err.find("samples are split"), std::string::npos) << r.err;
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

// --shard-data: the two kit models one after another, each with its 70 samples (7 per class:
// more than the 64 features, which LogME needs with the rows split) split over 2 and 3 processes
// in whole batches of 8 (5 + 4 and 3 + 3 + 3 batches), give one process's JSON (timings aside;
// scores to 1e-9 relative, the statistics being reduced in another order) and --out rows. The
// cache entries a split run writes are read by one process as its own: both models cached, the
// same scores bit for bit as one process extracting; a split run reads them again.
TEST(Mpi, RankShardDataEqualsOneProcess) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  const CliRun one = test::run_cli(
      kit_rank_args("--batch 8 --no-cache --format json --out " + t.file("one.csv"), 7));
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = nlohmann::json::parse(one.out);
  const std::string ref_csv = test::read_bytes(t.file("one.csv"));
  for (int p : {2, 3}) {
    const std::string csv = t.file("p" + std::to_string(p) + ".csv");
    const CliRun r = run_mpi(
        p, kit_rank_args("--shard-data --batch 8 --no-cache --format json --out " + csv, 7));
    ASSERT_EQ(r.code, 0) << "P = " << p << "\n" << r.err;
    const auto got = nlohmann::json::parse(r.out);
    expect_same_rank(got, ref, 1e-9, "P = " + std::to_string(p));
    // Split samples: each image decoded once in the whole job (on the process whose block holds
    // it) and answered from memory for the second model; models spread would decode 140.
    EXPECT_EQ(got["decode_cache"]["files_decoded"], 70) << got["decode_cache"];
    EXPECT_EQ(got["decode_cache"]["answered_from_memory"], 70) << got["decode_cache"];
    expect_same_scores_csv(test::read_bytes(csv), ref_csv, 1e-9, "P = " + std::to_string(p));
  }
  const std::string cache = t.file("cache");
  const CliRun split =
      run_mpi(3, kit_rank_args("--shard-data --batch 8 --cache " + cache + " --format json", 7));
  ASSERT_EQ(split.code, 0) << split.err;
  const CliRun reread =
      test::run_cli(kit_rank_args("--batch 8 --cache " + cache + " --format json", 7));
  ASSERT_EQ(reread.code, 0) << reread.err;
  const auto j = nlohmann::json::parse(reread.out);
  ASSERT_EQ(j["models"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(j["models"][i]["cached"].get<bool>()) << j["models"][i]["name"];
    EXPECT_EQ(j["models"][i]["scores"], ref["models"][i]["scores"]) << j["models"][i]["name"];
    EXPECT_EQ(j["models"][i]["n"], ref["models"][i]["n"]);
  }
  EXPECT_EQ(j["ranking"], ref["ranking"]);
  const CliRun again =
      run_mpi(2, kit_rank_args("--shard-data --batch 8 --cache " + cache + " --format json", 7));
  ASSERT_EQ(again.code, 0) << again.err;
  const auto k = nlohmann::json::parse(again.out);
  for (const auto& m : k["models"]) EXPECT_TRUE(m["cached"].get<bool>()) << m["name"];
  expect_same_rank(k, j, 1e-9, "P = 2 from the cache");
}

// One model on 2 processes (70 samples, 64 features) splits its samples without --shard-data,
// with a note, and gives one process's JSON (scores to 1e-9 relative).
TEST(Mpi, RankOneModelSplitsItsSamples) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  const std::string kit = TLKIT_KIT_DIR;
  const std::string args = "rank --zoo " + kit + "/models/zoo.json --models cifar10_resnet20 " +
                           "--data " + kit + "/data/cifar10-test --per-class 7 --threads 1 " +
                           "--quiet --batch 16 --no-cache --format json";
  const CliRun one = test::run_cli(args);
  ASSERT_EQ(one.code, 0) << one.err;
  const CliRun r = run_mpi(2, args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("1 model for 2 processes: each model's samples are split"),
            std::string::npos)
      << r.err;
  expect_same_rank(nlohmann::json::parse(r.out), nlohmann::json::parse(one.out), 1e-9, "P = 2");
}

// A model that fails (its manifest entry says 11 logits; the model gives 10) fails on every
// process and the next model goes on, split over 3 processes: one process's JSON (the failed
// model's error, NaN scores as null) and ranking of the other.
TEST(Mpi, RankShardDataFailedModelAndTheNext) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  const std::string models = fs::absolute(fs::path(TLKIT_KIT_DIR) / "models" / "image").string();
  auto entry = [&](const std::string& name, const std::string& file, int logits) {
    return "{\"name\": \"" + name + "\", \"file\": \"" + models + "/" + file +
           "\", \"kind\": \"image\", \"feature_dim\": 64, \"input_size\": 32, "
           "\"logits_dim\": " +
           std::to_string(logits) + "}";
  };
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [" + entry("wrong_logits", "cifar10_resnet20.pt", 11) + ", " +
                        entry("resnet32", "cifar10_resnet32.pt", 10) + "]}");
  const std::string args = "rank --zoo " + t.file("zoo.json") + " --data " +
                           std::string(TLKIT_KIT_DIR) +
                           "/data/cifar10-test --per-class 7 --threads 1 --quiet --no-cache "
                           "--format json";
  const CliRun one = test::run_cli(args);
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = nlohmann::json::parse(one.out);
  ASSERT_TRUE(ref["models"][0].contains("error")) << ref["models"][0];
  ASSERT_FALSE(ref["models"][1].contains("error")) << ref["models"][1];
  const CliRun r = run_mpi(3, args + " --shard-data");
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_rank(nlohmann::json::parse(r.out), ref, 1e-9, "P = 3");
  EXPECT_NE(r.err.find("wrong_logits failed"), std::string::npos) << r.err;
}

// Regression targets are not split (LogME on real-valued targets takes all the rows at once):
// --shard-data refuses them with exit 2 naming the flag, and one model on 2 processes without
// the flag is ranked whole by one process (no note, the run succeeds).
TEST(Mpi, RankShardDataRefusesTargets) {
  const fs::path kit_data = fs::path(TLKIT_KIT_DIR) / "data" / "cifar10-test" / "airplane";
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kit_data)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string csv = "path,y\n";
  for (std::size_t k = 0; k < 20; ++k) csv += files[k].string() + "," + std::to_string(k) + ".5\n";
  test::write_bytes(t.file("reg.csv"), csv);
  const std::string args = "rank --zoo " + std::string(TLKIT_KIT_DIR) +
                           "/models/zoo.json --models cifar10_resnet20 --data " +
                           t.file("reg.csv") +
                           " --task regression --threads 1 --quiet --no-cache --format csv";
  const CliRun refused = run_mpi(2, args + " --shard-data");
  EXPECT_EQ(refused.code, 2) << refused.err;
  EXPECT_NE(refused.err.find("--shard-data: regression targets"), std::string::npos) << refused.err;
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  const CliRun whole = run_mpi(2, args);
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(whole.err.find("samples are split"), std::string::npos) << whole.err;
  EXPECT_NE(whole.out.find("cifar10_resnet20,logme,"), std::string::npos) << whole.out;
}

// Bad images in both processes' shares (80 kit images of two classes and one unreadable file
// at the end of each class folder: rows 40 and 81, batches of 16 put them on rank 0 and rank 1).
// --on-bad-image skip: one process's JSON, the two "skipped" notes in row order. fail (the file
// of rank 0's share removed): the model fails on both processes, no hang, and as the only model
// the run ends with exit 2 and one process's error line.
TEST(Mpi, RankShardDataBadImages) {
  const fs::path kit_data = fs::path(TLKIT_KIT_DIR) / "data" / "cifar10-test";
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  const fs::path data = t.file("data");
  for (const char* cls : {"airplane", "automobile"}) {
    fs::create_directories(data / cls);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kit_data / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 40u);
    for (std::size_t k = 0; k < 40; ++k) fs::copy_file(files[k], data / cls / files[k].filename());
    test::write_bytes((data / cls / "zz_bad.jpg").string(), "not an image");
  }
  const std::string kit = TLKIT_KIT_DIR;
  const std::string base = "rank --zoo " + kit + "/models/zoo.json --models cifar10_resnet20 " +
                           "--data " + data.string() + " --threads 1 --quiet --batch 16 " +
                           "--no-cache --format json ";
  const CliRun one = test::run_cli(base + "--on-bad-image skip");
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = nlohmann::json::parse(one.out);
  const auto& notes = ref["models"][0]["notes"];
  ASSERT_GE(notes.size(), 2u);
  EXPECT_NE(notes[0].get<std::string>().find("airplane/zz_bad.jpg"), std::string::npos) << notes;
  EXPECT_NE(notes[1].get<std::string>().find("automobile/zz_bad.jpg"), std::string::npos) << notes;
  const CliRun skip = run_mpi(2, base + "--shard-data --on-bad-image skip");
  ASSERT_EQ(skip.code, 0) << skip.err;
  expect_same_rank(nlohmann::json::parse(skip.out), ref, 1e-9, "skip, P = 2");

  // fail, with the unreadable file in rank 1's share only (row 80): rank 0's share extracts,
  // rank 1's fails, and both agree that the model failed.
  fs::remove(data / "airplane" / "zz_bad.jpg");
  const CliRun fail_one = test::run_cli(base + "--on-bad-image fail");
  ASSERT_EQ(fail_one.code, 2) << fail_one.err;
  const auto at = fail_one.err.find("error: ");
  ASSERT_NE(at, std::string::npos) << fail_one.err;
  std::string message = fail_one.err.substr(at + 7);
  message = message.substr(0, message.find('\n'));
  const CliRun fail = run_mpi(2, base + "--shard-data --on-bad-image fail");
  EXPECT_EQ(fail.code, 2) << fail.err;
  EXPECT_NE(fail.err.find(message), std::string::npos) << fail.err << "\nexpected: " << message;
  EXPECT_TRUE(fail.out.empty()) << fail.out;
}

// `mpirun -n p tlkit <args>` started in the background, its output discarded.
pid_t spawn_mpi(int p, const std::vector<std::string>& tlkit_args) {
  set_mpi_environment();
  std::vector<std::string> args = {TLKIT_MPIEXEC, "--timeout",       "120",    "--bind-to", "none",
                                   "-n",          std::to_string(p), TLKIT_CLI};
  args.insert(args.end(), tlkit_args.begin(), tlkit_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t mpirun = ::fork();
  if (mpirun == 0) {
    ::freopen("/dev/null", "w", stdout);
    ::freopen("/dev/null", "w", stderr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return mpirun;
}

// A rank of `mpirun`: one of its children running tlkit (-1 while there is none yet).
pid_t find_rank(pid_t mpirun) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = test::read_bytes(e.path().string() + "/stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(tlkit)") == std::string::npos) continue;
    const long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
    if (ppid == mpirun) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// A rank killed while the job runs (SIGKILL, as an out-of-memory kill would) ends the whole job
// with a non-zero exit code and no --out file.
TEST(Mpi, AKilledRankEndsTheJobWithoutOutput) {
  if (!fs::exists(std::string(TLKIT_KIT_DIR) + "/models/zoo.json"))
    GTEST_SKIP() << "no kit at " << TLKIT_KIT_DIR;
  test::TempDir t;
  const std::string out = t.file("scores.csv");
  const std::string kit = TLKIT_KIT_DIR;
  const pid_t mpirun =
      spawn_mpi(2, {"rank", "--zoo", kit + "/models/zoo.json", "--models",
                    "cifar10_resnet20,cifar10_resnet32", "--data", kit + "/data/cifar10-test",
                    "--threads", "1", "--quiet", "--no-cache", "--out", out});
  // Kill the first rank found once one runs.
  pid_t victim = -1;
  for (int tries = 0; tries < 200 && victim < 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    victim = find_rank(mpirun);
  }
  ASSERT_GT(victim, 0) << "no rank of mpirun " << mpirun << " found";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // mid-run: the listing is done
  ::kill(victim, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(mpirun, &status, 0), mpirun);
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0) << "status " << status;
  EXPECT_FALSE(fs::exists(out));
}

// ---- finetune: grids shared among the processes, data-parallel training ----

// A JSON document without its timings ("seconds" keys), read from a file.
nlohmann::json json_file_without_timings(const std::string& path) {
  return without_timings(nlohmann::json::parse(test::read_bytes(path)));
}

// Fine-tuning on the toy fixture (tests/data/model/toy: 2 classes of 8 x 8 images) with one thread.
std::string toy_finetune(const std::string& model, const std::string& out,
                         const std::string& extra) {
  return "finetune --model " + test::data_path("model/models/" + model) + " --data " +
         test::data_path("model/toy") +
         " --split-train train --split-test test --input-size 8 --threads 1 --out " + out + " " +
         extra;
}

// The summary with `out` replaced by OUT and the total time dropped.
std::string summary(std::string text, const std::string& out) {
  for (std::size_t at; (at = text.find(out)) != std::string::npos;)
    text.replace(at, out.size(), "OUT");
  const std::size_t time = text.rfind(" (");
  return time == std::string::npos ? text : text.substr(0, time);
}

// A 2-point grid on 2 and 3 processes (3: one process without a point) prints and writes what
// one process does, apart from timings: the grid's metrics.json, each point's metrics.json and
// the summary with the same best point. Run again, every point resumes from its checkpoint.
TEST(Mpi, FinetuneGridEqualsOneProcess) {
  test::TempDir t;
  const std::string grid = "--mode top:2 --epochs 2 --batch 8 --grid 'lr=0.05,0.2'";
  const std::string points[] = {"lr=0.05", "lr=0.2"};
  const CliRun one = test::run_cli(toy_finetune("trainable.pt", t.file("one"), grid));
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = json_file_without_timings(t.file("one/metrics.json"));
  ASSERT_EQ(ref["points"].size(), 2u);
  for (int p : {2, 3}) {
    const std::string out = t.file("p" + std::to_string(p));
    const CliRun r = run_mpi(p, toy_finetune("trainable.pt", out, grid));
    ASSERT_EQ(r.code, 0) << "P = " << p << "\n" << r.err;
    EXPECT_EQ(r.err, "") << "P = " << p;
    EXPECT_EQ(summary(r.out, out), summary(one.out, t.file("one"))) << "P = " << p;
    EXPECT_EQ(json_file_without_timings(out + "/metrics.json"), ref) << "P = " << p;
    for (const auto& point : points)
      EXPECT_EQ(json_file_without_timings(out + "/" + point + "/metrics.json"),
                json_file_without_timings(t.file("one/" + point + "/metrics.json")))
          << "P = " << p << ", " << point;
    EXPECT_TRUE(fs::exists(out + "/model.pt"));
  }
  const CliRun again = run_mpi(2, toy_finetune("trainable.pt", t.file("p2"), grid));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(test::count_lines(again.out) - test::count_lines(one.out), 0) << again.out;
  for (const auto& point : points)
    EXPECT_NE(again.out.find(point + ": best epoch"), std::string::npos) << again.out;
  std::size_t resumed = 0;
  for (std::size_t at = 0;
       (at = again.out.find("(resumed after epoch 2)", at)) != std::string::npos; ++at)
    ++resumed;
  EXPECT_EQ(resumed, 2u) << again.out;
  EXPECT_EQ(json_file_without_timings(t.file("p2/metrics.json")), ref);
}

// Data-parallel training of a model without BatchNorm (tests/data/model/models/no_batchnorm.pt),
// --mode full, no augmentation, against one process with the same global batch and seed. The
// shares' gradients, weighted and summed, are the whole batch's gradient up to float32 rounding:
// each epoch's training loss within 1e-5 relative of one process (epoch 1 checks the loss summed
// over the shares; later epochs the steps taken), the accuracies equal (counts of the same
// predictions). --batch 64 is one step per epoch over the 21 training images; --batch 5 on 3
// processes takes 5 steps an epoch, shares of 2, 2 and 1, and a last batch of 1 image that two
// processes have no share of.
TEST(Mpi, FinetuneDataParallelEqualsOneProcess) {
  test::TempDir t;
  struct Setting {
    int p;
    std::string args;
  };
  for (const Setting& s :
       {Setting{2, "--batch 64 --epochs 3"}, Setting{3, "--batch 5 --epochs 2"}}) {
    const std::string args = "--mode full --augment none --lr 0.05 --patience 0 " + s.args;
    const std::string one_out = t.file("one" + std::to_string(s.p));
    const std::string dp_out = t.file("dp" + std::to_string(s.p));
    const CliRun one = test::run_cli(toy_finetune("no_batchnorm.pt", one_out, args));
    ASSERT_EQ(one.code, 0) << one.err;
    const CliRun dp =
        run_mpi(s.p, toy_finetune("no_batchnorm.pt", dp_out, args + " --data-parallel"));
    ASSERT_EQ(dp.code, 0) << "P = " << s.p << "\n" << dp.err;
    EXPECT_EQ(dp.err, "");
    const auto want = nlohmann::json::parse(test::read_bytes(one_out + "/metrics.json"));
    const auto got = nlohmann::json::parse(test::read_bytes(dp_out + "/metrics.json"));
    ASSERT_EQ(got["history"].size(), want["history"].size());
    for (std::size_t e = 0; e < want["history"].size(); ++e) {
      const auto& w = want["history"][e];
      const auto& g = got["history"][e];
      EXPECT_TRUE(
          test::near_rel(g["train_loss"].get<double>(), w["train_loss"].get<double>(), 1e-5))
          << "P = " << s.p << ", epoch " << e + 1;
      EXPECT_EQ(g["train_acc"], w["train_acc"]) << "P = " << s.p << ", epoch " << e + 1;
      EXPECT_EQ(g["val_acc"], w["val_acc"]) << "P = " << s.p << ", epoch " << e + 1;
    }
    EXPECT_GT(want["history"][0]["train_loss"].get<double>(),
              want["history"].back()["train_loss"].get<double>())
        << "the steps change the model";
    EXPECT_EQ(got["best_epoch"], want["best_epoch"]);
    EXPECT_EQ(got["test_acc"], want["test_acc"]);
    EXPECT_EQ(got["config_hash"], want["config_hash"]);
    EXPECT_TRUE(fs::exists(dp_out + "/model.pt"));
    EXPECT_TRUE(fs::exists(dp_out + "/checkpoint.pt"));
  }
  // Stopped after one epoch and resumed, data-parallel: the uninterrupted data-parallel run's
  // numbers bit for bit (the checkpoint holds the state every process starts from).
  const std::string args = toy_finetune("no_batchnorm.pt", t.file("dp-resumed"),
                                        "--mode full --augment none --lr 0.05 --patience 0 "
                                        "--batch 64 --epochs 3 --data-parallel");
  const CliRun first = run_mpi(2, args + " --stop-after 1");
  ASSERT_EQ(first.code, 0) << first.err;
  const CliRun rest = run_mpi(2, args);
  ASSERT_EQ(rest.code, 0) << rest.err;
  EXPECT_NE(rest.out.find("(resumed after epoch 1)"), std::string::npos) << rest.out;
  const auto whole = json_file_without_timings(t.file("dp2/metrics.json"));
  auto resumed = json_file_without_timings(t.file("dp-resumed/metrics.json"));
  EXPECT_EQ(resumed["history"], whole["history"]);
  EXPECT_EQ(resumed["test_acc"], whole["test_acc"]);
}

// Data-parallel training of a model with BatchNorm in train mode (trainable.pt, top:2, named by a
// zoo entry) runs and writes one run's files, the zoo entry recorded once in metrics.json by rank
// 0; its numbers differ from one process (each share normalises with its own statistics), so only
// their shape is checked.
TEST(Mpi, FinetuneDataParallelWithBatchNormRuns) {
  test::TempDir t;
  const std::string zoo = t.file("zoo.json");
  test::write_bytes(zoo, R"({"models": [{"name": "toy", "file": ")" +
                             test::data_path("model/models/trainable.pt") +
                             R"(", "kind": "image", "input_size": 8}]})");
  const CliRun r = run_mpi(
      2, "finetune --zoo " + zoo + " --model-name toy --data " + test::data_path("model/toy") +
             " --split-train train --split-test test --threads 1 --mode top:2 --epochs 2 "
             "--batch 8 --data-parallel --quiet --out " +
             t.file("dp"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const auto m = nlohmann::json::parse(test::read_bytes(t.file("dp/metrics.json")));
  EXPECT_EQ(m["history"].size(), 2u);
  EXPECT_TRUE(m["finished"].get<bool>());
  EXPECT_EQ(m["zoo_model"]["name"], "toy");
  EXPECT_EQ(m["data"]["trainable_blocks"], nlohmann::json({"blocks.0", "blocks.1"}));
}

TEST(Mpi, FinetuneRefusesWhatItCannotShare) {
  test::TempDir t;
  const CliRun single = run_mpi(2, toy_finetune("trainable.pt", t.file("a"), "--epochs 1"));
  EXPECT_EQ(single.code, 2);
  EXPECT_NE(single.err.find("give one of them"), std::string::npos) << single.err;
  const CliRun batch =
      run_mpi(3, toy_finetune("trainable.pt", t.file("b"), "--epochs 1 --batch 2 --data-parallel"));
  EXPECT_EQ(batch.code, 2);
  EXPECT_NE(batch.err.find("--batch 2: --data-parallel gives each of the 3 processes"),
            std::string::npos)
      << batch.err;
  const CliRun linear =
      run_mpi(2, toy_finetune("trainable.pt", t.file("c"), "--mode linear --grid c=1,10"));
  EXPECT_EQ(linear.code, 2);
  EXPECT_NE(linear.err.find("--mode linear runs in one process"), std::string::npos) << linear.err;
  for (const char* out : {"a", "b", "c"}) EXPECT_FALSE(fs::exists(t.file(out))) << out;
}

// tlkit probe's fine-tuning runs shared among 2 and 3 processes (tests/data/probe/probe_gap.pt on
// the toy fixture, 12 runs): the same summary, results.json apart from timings and the same SVG
// plots, byte for byte, as one process.
TEST(Mpi, ProbeEqualsOneProcess) {
  test::TempDir t;
  auto args = [&](const std::string& out) {
    return "probe --model " + test::data_path("probe/probe_gap.pt") + " --data " +
           test::data_path("model/toy") +
           " --split-train train --split-test test --val-fraction 0.25 --input-size 8 --batch 4 "
           "--epochs 1 --threads 1 --seeds 1 --analysis layers,reinit,block-reinit --sizes 6 "
           "--metrics logme --out " +
           out;
  };
  const CliRun one = test::run_cli(args(t.file("one")));
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_NE(one.out.find("12 fine-tuning runs"), std::string::npos) << one.out;
  const auto ref = json_file_without_timings(t.file("one/results.json"));
  for (int p : {2, 3}) {
    const std::string out = t.file("p" + std::to_string(p));
    const CliRun r = run_mpi(p, args(out));
    ASSERT_EQ(r.code, 0) << "P = " << p << "\n" << r.err;
    EXPECT_EQ(summary(r.out, out), summary(one.out, t.file("one"))) << "P = " << p;
    EXPECT_EQ(json_file_without_timings(out + "/results.json"), ref) << "P = " << p;
    for (const char* svg : {"reinit.svg", "layers-logme.svg", "block-reinit.svg"})
      EXPECT_EQ(test::read_bytes(out + "/" + svg), test::read_bytes(t.file("one/") + svg))
          << "P = " << p << ", " << svg;
  }
}

// A grid point that fails on the rank that took it (--resume without that point's checkpoint)
// ends the job with the one-process exit code and that rank's one-line error, and no grid
// metrics.json.
TEST(Mpi, AFailingGridPointEndsTheJobWithItsRanksError) {
  test::TempDir t;
  const std::string out = t.file("grid");
  const std::string args = "--mode top:2 --epochs 1 --batch 8";
  ASSERT_EQ(test::run_cli(toy_finetune("trainable.pt", out, args + " --grid lr=0.05")).code, 0);
  ASSERT_TRUE(fs::remove(out + "/metrics.json"));
  const CliRun r =
      run_mpi(2, toy_finetune("trainable.pt", out, args + " --grid lr=0.05,0.2 --resume"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  std::size_t errors = 0;
  for (std::size_t at = 0; (at = r.err.find("tlkit: error", at)) != std::string::npos; ++at)
    ++errors;
  EXPECT_EQ(errors, 1u) << r.err;
  EXPECT_NE(r.err.find("tlkit: error (rank "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lr=0.2 has no checkpoint.pt to resume from"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out + "/metrics.json"));
}

// A rank killed (SIGKILL) while a grid runs ends the job with a non-zero exit code and no grid
// metrics.json; the points finished before stay valid: a rerun resumes them from their
// checkpoints (and runs the others), then writes the grid's metrics.json.
TEST(Mpi, AKilledRankLeavesFinishedGridPointsToResume) {
  test::TempDir t;
  const std::string out = t.file("grid");
  const std::vector<std::string> args = {"finetune",
                                         "--model",
                                         test::data_path("model/models/trainable.pt"),
                                         "--data",
                                         test::data_path("model/toy"),
                                         "--split-train",
                                         "train",
                                         "--split-test",
                                         "test",
                                         "--input-size",
                                         "8",
                                         "--threads",
                                         "1",
                                         "--mode",
                                         "top:2",
                                         "--batch",
                                         "4",
                                         "--patience",
                                         "0",
                                         "--epochs",
                                         "40",
                                         "--grid",
                                         "lr=0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08",
                                         "--out",
                                         out};
  const pid_t mpirun = spawn_mpi(2, args);
  // Kill a rank once a point has finished (its metrics.json, written last, says so).
  auto finished_points = [&] {
    std::vector<std::string> done;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out, ec)) {
      const std::string m = e.path().string() + "/metrics.json";
      if (!fs::exists(m)) continue;
      const auto j = nlohmann::json::parse(test::read_bytes(m), nullptr, false);
      if (!j.is_discarded() && j.value("finished", false))
        done.push_back(e.path().filename().string());
    }
    return done;
  };
  pid_t victim = -1;
  for (int tries = 0; tries < 1200 && (victim < 0 || finished_points().empty()); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (victim < 0) victim = find_rank(mpirun);
  }
  ASSERT_GT(victim, 0) << "no rank of mpirun " << mpirun << " found";
  ::kill(victim, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(mpirun, &status, 0), mpirun);
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0) << "status " << status;
  EXPECT_FALSE(fs::exists(out + "/metrics.json"));
  const std::vector<std::string> done = finished_points();
  ASSERT_FALSE(done.empty());
  ASSERT_LT(done.size(), 8u) << "the grid finished before the kill";
  const CliRun again =
      run_mpi(2, toy_finetune("trainable.pt", out,
                              "--mode top:2 --batch 4 --patience 0 --epochs 40 "
                              "--grid lr=0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08"));
  ASSERT_EQ(again.code, 0) << again.err;
  for (const auto& point : done)
    EXPECT_NE(again.out.find(point + ": best epoch"), std::string::npos) << point;
  for (const auto& point : done) {
    const std::size_t line = again.out.find(point + ": best epoch");
    EXPECT_NE(
        again.out.substr(line, again.out.find('\n', line) - line).find("(resumed after epoch 40)"),
        std::string::npos)
        << point << " in\n"
        << again.out;
  }
  const auto m = nlohmann::json::parse(test::read_bytes(out + "/metrics.json"));
  EXPECT_EQ(m["points"].size(), 8u);
  for (const auto& p : m["points"]) EXPECT_TRUE(p["finished"].get<bool>()) << p;
}
#endif

}  // namespace
}  // namespace tlkit

// End-to-end tests of `tlkit score`: exit codes, the one-line error contract, output formats, and
// agreement with the library.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>

#include "cli_support.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

using test::CliRun;
using test::run_cli;

std::string fx(const std::string& name) { return test::data_path("logme/" + name); }

std::string score_args(const std::string& c) {
  return "score --features " + fx(c + "_features.npy") + " --labels " + fx(c + "_labels.npy");
}

int lines(const std::string& s) { return test::count_lines(s); }

TEST(CliScore, JsonHasTheDocumentedSchemaAndMatchesTheLibrary) {
  const CliRun r = run_cli(score_args("tall") + " --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["n"], 200);
  EXPECT_EQ(j["d"], 16);
  EXPECT_EQ(j["targets"], 5);
  const auto& m = j["metrics"]["logme"];
  for (const char* key :
       {"score", "per_target", "alpha", "beta", "iterations", "converged", "seconds"})
    EXPECT_TRUE(m.contains(key)) << key;
  const NpyArray f = load_npy(fx("tall_features.npy"));
  const auto y = load_npy(fx("tall_labels.npy")).labels();
  const LogmeResult lib =
      logme(f.features(), LabelView{y.data(), static_cast<std::int64_t>(y.size())});
  EXPECT_EQ(m["score"].get<double>(), lib.score);  // JSON round-trips doubles exactly
  EXPECT_EQ(lines(r.out), 1);
}

TEST(CliScore, ModesAndChunkedStreaming) {
  const auto score_of = [](const std::string& extra) {
    const CliRun r = run_cli(score_args("tall") + " --format json " + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["metrics"]["logme"]["score"].get<double>();
  };
  static const nlohmann::json refs = test::load_json(fx("refs.json"));
  for (const char* mode : {"exact", "thuml", "icml"}) {
    const double whole = score_of(std::string("--logme-mode ") + mode);
    EXPECT_TRUE(test::near_rel(whole, refs["tall"][mode]["score"].get<double>(), 1e-8)) << mode;
    EXPECT_TRUE(test::near_rel(score_of(std::string("--logme-mode ") + mode + " --chunk-rows 7"),
                               whole, 1e-9))
        << mode;
  }
  // N <= D: each mode's own N <= D formula, whole or "chunked" (the thuml reference's differs
  // from its D-space evidence: 4.44 against 0.193 here, which chunks used to give).
  const auto wide_of = [](const std::string& extra) {
    const CliRun r = run_cli(score_args("wide") + " --format json " + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["metrics"]["logme"]["score"].get<double>();
  };
  for (const char* mode : {"exact", "thuml", "icml"}) {
    const double whole = wide_of(std::string("--logme-mode ") + mode);
    EXPECT_TRUE(test::near_rel(whole, refs["wide"][mode]["score"].get<double>(), 1e-8)) << mode;
    EXPECT_EQ(wide_of(std::string("--logme-mode ") + mode + " --chunk-rows 4"), whole) << mode;
  }
}

TEST(CliScore, NonContiguousLabelsAreSaidInTheOutput) {
  const CliRun j = run_cli(score_args("noncontig") + " --format json");
  ASSERT_EQ(j.code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["labels"], (std::vector<int>{3, 7, 42}));
  EXPECT_NE(doc["notes"][0].get<std::string>().find("not contiguous"), std::string::npos);
  const CliRun t = run_cli(score_args("noncontig"));
  EXPECT_NE(t.out.find("not contiguous"), std::string::npos) << t.out;
}

TEST(CliScore, CsvHasAHeaderAndOneRowPerTarget) {
  const CliRun r = run_cli(score_args("binary") + " --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            "metric,target,label,score,alpha,beta,iterations,converged,boundary");
  EXPECT_EQ(lines(r.out), 1 + 1 + 2);
}

TEST(CliScore, RegressionTargetsAndNpzMembers) {
  const CliRun r =
      run_cli("score --regression --format json --features " + fx("regression_features.npy") +
              " --labels " + fx("regression_targets.npy"));
  ASSERT_EQ(r.code, 0) << r.err;
  static const nlohmann::json refs = test::load_json(fx("refs.json"));
  EXPECT_TRUE(
      test::near_rel(nlohmann::json::parse(r.out)["metrics"]["logme"]["score"].get<double>(),
                     refs["regression"]["exact"]["score"].get<double>(), 1e-9));
  const std::string npz = test::data_path("npy/stored.npz");
  const CliRun z = run_cli("score --features " + npz + ":features --labels " + npz + ":labels");
  EXPECT_EQ(z.code, 0) << z.err;  // 3 samples x 4 features, labels {3, 7, 42}: N < D
}

TEST(CliScore, HelpTeachesAndVersionPrints) {
  const CliRun h = run_cli("score --help");
  EXPECT_EQ(h.code, 0);
  for (const char* s :
       {"--features", "--labels", "--logme-mode", "--chunk-rows", "logme", "Example"})
    EXPECT_NE(h.out.find(s), std::string::npos) << s;
  const CliRun v = run_cli("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("tlkit 0.1.0"), std::string::npos);
}

// Peak resident memory (KiB) of one CLI run, from wait4's rusage; stdout/stderr discarded.
long peak_rss_kib(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    static std::string cli = TLKIT_CLI;
    argv.push_back(cli.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::execv(cli.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return ru.ru_maxrss;
}

// Streaming keeps D^2 + chunk x D doubles, not the N x D matrix: on a 64 MB feature file
// (500000 x 32 float32) the chunked run's peak memory must stay far below the in-memory run's,
// which has to hold the whole file.
TEST(CliScore, ChunkedPeakMemoryDoesNotGrowWithN) {
  test::TempDir dir;
  const std::int64_t n = 500000, d = 32;
  std::vector<std::int64_t> y(n);
  for (std::int64_t i = 0; i < n; ++i) y[i] = i % 3;
  std::vector<float> f(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      f[i * d + j] =
          static_cast<float>(std::sin(0.001 * i * (j + 1)) + (y[i] == j % 3 ? 0.5 : 0.0));
  save_npy(dir.file("f.npy"), f.data(), {n, d});
  save_npy(dir.file("y.npy"), y.data(), {n});
  f = {};
  const long whole = peak_rss_kib({"score", "--features", dir.file("f.npy"), "--labels",
                                   dir.file("y.npy"), "--format", "json"});
  const long chunked =
      peak_rss_kib({"score", "--features", dir.file("f.npy"), "--labels", dir.file("y.npy"),
                    "--format", "json", "--chunk-rows", "4096"});
  const long file_kib = n * d * 4 / 1024;  // 62500 KiB
  EXPECT_LT(chunked, whole - file_kib / 2) << "chunked " << chunked << " KiB, whole " << whole;
  RecordProperty("peak_rss_kib_whole", static_cast<int>(whole));
  RecordProperty("peak_rss_kib_chunked", static_cast<int>(chunked));
}

// ---- the error contract: exit 2, one line on stderr naming the input, nothing on stdout -------

using test::expect_usage_error;

TEST(CliScore, BadInputsExitTwoWithOneClearLine) {
  test::TempDir dir;
  const std::vector<double> nan_f = {1, 2, std::nan(""), 4, 5, 6};
  save_npy(dir.file("nan.npy"), nan_f.data(), {3, 2});
  const std::vector<std::int64_t> y3 = {0, 1, 0}, one = {1, 1, 1};
  save_npy(dir.file("y3.npy"), y3.data(), {3});
  save_npy(dir.file("one.npy"), one.data(), {3});
  const std::vector<double> ok_f = {1, 2, 3, 4, 5, 6};
  save_npy(dir.file("ok.npy"), ok_f.data(), {3, 2});
  test::write_bytes(dir.file("empty.npy"), "");

  expect_usage_error("score --features " + dir.file("nan.npy") + " --labels " + dir.file("y3.npy"),
                     "non-finite value nan at row 1, column 0");
  expect_usage_error("score --features " + dir.file("ok.npy") + " --labels " + dir.file("one.npy"),
                     "at least 2 classes, found only label 1");
  expect_usage_error(
      "score --features " + dir.file("ok.npy") + " --labels " + fx("tall_labels.npy"),
      "has 3 rows but");
  expect_usage_error(
      "score --features " + dir.file("empty.npy") + " --labels " + dir.file("y3.npy"),
      "empty.npy: empty file");
  expect_usage_error(
      "score --features " + dir.file("missing.npy") + " --labels " + dir.file("y3.npy"),
      "missing.npy: cannot open");
  expect_usage_error("score --features " + test::data_path("npy/f8_bigendian.npy") + " --labels " +
                         dir.file("y3.npy"),
                     "big-endian");
  expect_usage_error("score --features " + dir.file("ok.npy") + " --labels " +
                         test::data_path("npy/labels_f8.npy"),
                     "--regression");
  expect_usage_error(score_args("tall") + " --metric leap", "unknown metric 'leap'");
  expect_usage_error(score_args("tall") + " --logme-mode fast", "--logme-mode");
  expect_usage_error(score_args("tall") + " --bogus", "--bogus");
  expect_usage_error("score --labels " + fx("tall_labels.npy"), "--features");
  expect_usage_error("", "subcommand");
}

}  // namespace
}  // namespace tlkit

// ---- several metrics in one run (issue 3) ------------------------------------------------------
namespace tlkit {
namespace {

std::string mfx(const std::string& name) { return test::data_path("metrics/" + name); }

TEST(CliScoreMetrics, AllMetricsInOneJsonObject) {
  const CliRun r = run_cli("score --features " + mfx("tall_features.npy") + " --labels " +
                           mfx("tall_labels.npy") + " --probs " + mfx("tall_probs.npy") +
                           " --metric all --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto refs = test::load_json(mfx("refs.json"))["cases"]["tall"]["values"];
  for (const auto& m : metric_registry()) {
    const std::string name(m.name);
    ASSERT_TRUE(j["metrics"].contains(name)) << name;
    EXPECT_TRUE(j["metrics"][name].contains("seconds")) << name;
  }
  for (const char* name : {"leep", "nce", "hscore", "transrate", "sfda", "gbc", "knn"})
    EXPECT_TRUE(
        test::near_rel(j["metrics"][name]["score"].get<double>(), refs[name].get<double>(), 1e-9))
        << name;
}

TEST(CliScoreMetrics, RegistryFlagsReachTheMetrics) {
  const std::string base = "score --features " + mfx("tall_features.npy") + " --labels " +
                           mfx("tall_labels.npy") + " --format json --metric transrate";
  const auto refs = test::load_json(mfx("refs.json"))["cases"]["tall"]["values"];
  const CliRun r = run_cli(base + " --transrate-weighting tllib");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      test::near_rel(nlohmann::json::parse(r.out)["metrics"]["transrate"]["score"].get<double>(),
                     refs["transrate:tllib"].get<double>(), 1e-9));
  expect_usage_error(base + " --transrate-weighting fair",
                     "--transrate-weighting: unknown value 'fair'");
  expect_usage_error(base + " --transrate-eps abc",
                     "--transrate-eps: expected a number, got 'abc'");
}

TEST(CliScoreMetrics, ProbabilityMetricsWithoutFeatures) {
  const CliRun r = run_cli("score --labels " + mfx("tall_labels.npy") + " --probs " +
                           mfx("tall_probs.npy") + " --metric leep,nce --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("leep,mean,,"), std::string::npos);
  expect_usage_error("score --features " + mfx("tall_features.npy") + " --labels " +
                         mfx("tall_labels.npy") + " --metric leep",
                     "--metric leep needs --probs");
  expect_usage_error("score --features " + mfx("tall_features.npy") + " --labels " +
                         mfx("tall_labels.npy") + " --metric knn --chunk-rows 10",
                     "--metric knn cannot stream");
  // hscore passes over the rows in blocks: streamed in chunks of 10 it gives the whole-array
  // score.
  const std::string hs = "score --features " + mfx("tall_features.npy") + " --labels " +
                         mfx("tall_labels.npy") + " --metric hscore,sfda --format json";
  const CliRun whole = run_cli(hs), chunked = run_cli(hs + " --chunk-rows 10");
  ASSERT_EQ(whole.code, 0) << whole.err;
  ASSERT_EQ(chunked.code, 0) << chunked.err;
  const auto jw = nlohmann::json::parse(whole.out), jc = nlohmann::json::parse(chunked.out);
  for (const char* m : {"hscore", "sfda"})
    EXPECT_TRUE(test::near_rel(jc["metrics"][m]["score"].get<double>(),
                               jw["metrics"][m]["score"].get<double>(), 1e-9))
        << m;
}

// --logits: log(p) plus any per-row constant has softmax p, so the reference LEEP and NCE of the
// tall case (tools/make_metric_refs.py, computed from tall_probs.npy) must come out.
TEST(CliScoreMetrics, LogitsAreSoftmaxedIntoTheProbabilitiesOfLeepAndNce) {
  test::TempDir dir;
  const NpyArray p = load_npy(mfx("tall_probs.npy"));
  const FeatureView pv = p.features();
  std::vector<double> z(static_cast<std::size_t>(pv.rows * pv.cols));
  for (std::int64_t i = 0; i < pv.rows; ++i)
    for (std::int64_t j = 0; j < pv.cols; ++j)
      z[i * pv.cols + j] = std::log(pv.at(i, j)) + 40.0 * std::sin(static_cast<double>(i));
  save_npy(dir.file("logits.npy"), z.data(), {pv.rows, pv.cols});
  const auto refs = test::load_json(mfx("refs.json"))["cases"]["tall"]["values"];
  for (const char* flag : {"--metric", "--metrics"}) {
    const CliRun r = run_cli("score --labels " + mfx("tall_labels.npy") + " --logits " +
                             dir.file("logits.npy") + " " + flag + " all --format json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    // 'all' without --features: the metrics of probabilities and labels only.
    EXPECT_EQ(j["metrics"].size(), 2u) << j["metrics"].dump();
    for (const char* name : {"leep", "nce"})
      EXPECT_TRUE(
          test::near_rel(j["metrics"][name]["score"].get<double>(), refs[name].get<double>(), 1e-9))
          << name;
  }
  expect_usage_error("score --labels " + mfx("tall_labels.npy") + " --logits " +
                         dir.file("logits.npy") + " --probs " + mfx("tall_probs.npy") +
                         " --metric leep",
                     "--probs excludes --logits");
  expect_usage_error("score --labels " + mfx("tall_labels.npy") + " --logits " +
                         mfx("tall_labels.npy") + " --metric leep",
                     "tall_labels.npy: logits must be a 2-D float32 or float64 array (N, Cs), got "
                     "shape (300,) int64");
}

// One name for the metric list on every command: --metric, with --metrics as an alias; errors
// name the flag that was typed.
TEST(CliScoreMetrics, MetricsIsAnAliasOfMetricAndErrorsNameTheFlagTyped) {
  const std::string base = "score --features " + mfx("tall_features.npy") + " --labels " +
                           mfx("tall_labels.npy") + " --format csv ";
  const CliRun a = run_cli(base + "--metric logme,hscore");
  const CliRun b = run_cli(base + "--metrics logme,hscore");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find("\nhscore,mean,,"), std::string::npos) << a.out;
  EXPECT_EQ(a.out, b.out);
  expect_usage_error(base + "--metrics nope", "tlkit: error: --metrics: unknown metric 'nope'");
  expect_usage_error(base + "--metric nope", "tlkit: error: --metric: unknown metric 'nope'");
  expect_usage_error(base + "--metrics ,", "tlkit: error: --metrics: empty name in ','");
  expect_usage_error(base + "--metrics leep", "tlkit: error: --metrics leep needs --probs");
  expect_usage_error(base + "--metric logme --metrics hscore", "--metric excludes --metrics");
}

}  // namespace
}  // namespace tlkit

// `tlkit` under mpirun (-n 2 and -n 3, oversubscribed on this machine): the split runs print what
// the one-process run prints, only rank 0 writes, refused metrics and a failing rank end the job
// with the one-process exit code and no output. Registered only when tlkit is built with MPI
// (TLKIT_MPI), label mpi. The reference is always the same tlkit run as one process.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

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
  ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
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

const char* kSplitMetrics = "logme,hscore,hscore_shrink,sfda,etran_lda,gbc";

TEST(Mpi, ScoreEqualsOneProcess) {
  const Fixture fx(2000, 24, 5);
  const std::string args = fx.args(std::string("--metric ") + kSplitMetrics + " --format json");
  const CliRun one = test::run_cli(args);
  ASSERT_EQ(one.code, 0) << one.err;
  const auto ref = nlohmann::json::parse(one.out);
  for (int p : {2, 3}) {
    const CliRun r = run_mpi(p, args);
    ASSERT_EQ(r.code, 0) << "P = " << p << "\n" << r.err;
    EXPECT_EQ(r.err, "") << "P = " << p;
    EXPECT_EQ(test::count_lines(r.out), 1) << "only rank 0 prints:\n" << r.out;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"n", "d", "targets", "labels", "task", "notes"})
      EXPECT_EQ(j[key], ref[key]) << key;
    ASSERT_EQ(j["metrics"].size(), ref["metrics"].size());
    for (const auto& [name, m] : ref["metrics"].items()) {
      const double want = m["score"].get<double>(), got = j["metrics"][name]["score"].get<double>();
      EXPECT_TRUE(test::near_rel(got, want, 1e-9)) << "P = " << p << ", " << name;
    }
    const auto& lw = ref["metrics"]["logme"]["per_target"];
    const auto& lg = j["metrics"]["logme"]["per_target"];
    ASSERT_EQ(lg.size(), lw.size());
    for (std::size_t t = 0; t < lw.size(); ++t)
      EXPECT_TRUE(test::near_rel(lg[t].get<double>(), lw[t].get<double>(), 1e-9));
  }
}

TEST(Mpi, MetricAllRunsTheSplitMetricsAndNamesTheSkippedOnes) {
  const Fixture fx(600, 8, 3);
  const CliRun r = run_mpi(2, fx.args("--metric all --format csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;  // one note, from rank 0
  for (const char* skipped :
       {"knn", "parc", "logistic", "nleep", "transrate", "etran_energy", "ncti_seli"})
    EXPECT_NE(r.err.find(skipped), std::string::npos) << skipped << " in " << r.err;
  EXPECT_NE(r.err.find("run them with one process"), std::string::npos);
  for (const char* ran : {"logme,mean", "hscore,mean", "sfda,mean", "gbc,mean"})
    EXPECT_NE(r.out.find(ran), std::string::npos) << ran;
  EXPECT_EQ(r.out.find("knn,"), std::string::npos);
}

TEST(Mpi, AMetricThatNeedsTheRowsIsRefused) {
  const Fixture fx(200, 4, 2);
  const CliRun r = run_mpi(2, fx.args("--metric logme,knn"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("knn (needs all pairs of rows"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("run it with one process"), std::string::npos) << r.err;
}

// Only the last rank reads the last row: its error ends the job with the one-process exit code.
TEST(Mpi, AFailingRankEndsTheJob) {
  const Fixture fx(300, 4, 2, /*nan_in_last_row=*/true);
  const CliRun one = test::run_cli(fx.args("--metric logme"));
  EXPECT_EQ(one.code, 2);
  EXPECT_NE(one.err.find("non-finite value nan at row 299, column 1"), std::string::npos)
      << one.err;
  for (int p : {2, 3}) {
    const CliRun r = run_mpi(p, fx.args("--metric logme"));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("tlkit: error (rank " + std::to_string(p - 1) + " of " +
                         std::to_string(p) + "): "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("non-finite value nan at row 299, column 1"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace tlkit

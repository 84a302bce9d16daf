// End-to-end tests of `tlkit probe`: the one-line error contract for bad options (exit code 2,
// naming the option), and a run on the toy fixture writing results.json and the plots.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_support.h"
#include "test_support.h"

namespace tlkit {
namespace {

using test::CliRun;
using test::run_cli;

std::string toy_args(const std::string& out,
                     const std::string& model = test::data_path("probe/probe_gap.pt"),
                     const std::string& split_test = "--split-test test") {
  return "probe --model " + model + " --data " + test::data_path("model/toy") +
         " --split-train train " + split_test +
         " --val-fraction 0.25 --input-size 8 --batch 4 "
         "--epochs 1 --threads 1 --seeds 1 --out " +
         out;
}

using test::expect_usage_error;

TEST(CliProbe, RunsAndWritesResultsAndPlots) {
  test::TempDir t;
  const CliRun r =
      run_cli(toy_args(t.file("p")) + " --analysis layers,reinit --sizes 6 --metrics logme");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tlkit probe: 5 blocks, 2 classes (val 6, test 8), 6 fine-tuning runs"),
            std::string::npos)
      << r.out;
  for (const char* f : {"results.json", "reinit.svg", "layers-logme.svg"})
    EXPECT_TRUE(std::filesystem::exists(t.file(std::string("p/") + f))) << f;
  const auto j = test::load_json(t.file("p/results.json"));
  EXPECT_EQ(j["analyses"], nlohmann::json({"layers", "reinit"}));
  EXPECT_EQ(j["summary"]["reinit"]["6"].size(), 6u);  // k = 0..5
  EXPECT_EQ(j["summary"]["probe"]["6"].size(), 6u);   // depth 0..5
}

// A zoo entry stands for --model and --input-size: the run matches the --model run's summary, and
// flags that disagree with the entry are refused before anything runs.
TEST(CliProbe, AZooEntryStandsForTheModelAndItsSize) {
  test::TempDir t;
  const std::string zoo = t.file("zoo.json");
  const std::string pt = test::data_path("probe/probe_gap.pt");
  test::write_bytes(zoo, R"({"models": [{"name": "gap", "file": ")" + pt +
                             R"(", "kind": "image", "input_size": 8}, {"name": "norm", "file": ")" +
                             pt +
                             R"(", "kind": "image", "input_size": 8, "mean": [0.5, 0.5, 0.5],
                             "std": [0.5, 0.5, 0.5]}]})");
  const std::string rest = " --data " + test::data_path("model/toy") +
                           " --split-train train --split-test test --val-fraction 0.25 --batch 4 "
                           "--epochs 1 --threads 1 --seeds 1 --analysis reinit --sizes 6 "
                           "--metrics none --quiet --out ";
  const CliRun r = run_cli("probe --zoo " + zoo + " --model-name gap" + rest + t.file("z"));
  ASSERT_EQ(r.code, 0) << r.err;
  const CliRun m = run_cli("probe --model " + pt + " --input-size 8" + rest + t.file("m"));
  ASSERT_EQ(m.code, 0) << m.err;
  const auto jz = test::load_json(t.file("z/results.json"));
  const auto jm = test::load_json(t.file("m/results.json"));
  EXPECT_EQ(jz["summary"], jm["summary"]);  // the same model, size and seeds: the same runs
  expect_usage_error(
      "probe --zoo " + zoo + " --model-name gap --input-size 16" + rest + t.file("x"),
      "--input-size 16 disagrees with the zoo entry 'gap' of " + zoo + " (input_size 8)");
  expect_usage_error("probe --zoo " + zoo + " --model-name norm" + rest + t.file("x"),
                     "has mean/std");
  expect_usage_error("probe --zoo " + zoo + " --model-name gap --model " + pt + rest + t.file("x"),
                     "--model and --zoo: give one");
  expect_usage_error("probe --model " + pt + rest + t.file("x"),
                     "--input-size is required with --model");
  EXPECT_FALSE(std::filesystem::exists(t.file("x")));
}

TEST(CliProbe, BadOptionsAreOneLineErrors) {
  test::TempDir t;
  const std::string a = toy_args(t.file("p"));
  expect_usage_error(a + " --analysis layer", "--analysis layer");
  expect_usage_error(a + " --sizes 0", "--sizes 0");
  expect_usage_error(a + " --sizes 1", "--sizes 1");
  expect_usage_error(a + " --analysis block-reinit --block 9", "--block 9");
  expect_usage_error(a + " --init xavier", "--init");
  expect_usage_error(toy_args(t.file("p"), test::data_path("probe/probe_gap.pt"), ""),
                     "--split-test");
  // --metric names the metric list as on every command; --metrics is its alias, and the error
  // names the flag typed.
  expect_usage_error(a + " --metrics nope", "tlkit: error: --metrics: unknown metric 'nope'");
  expect_usage_error(a + " --metric nope", "tlkit: error: --metric: unknown metric 'nope'");
  expect_usage_error(a + " --metric logme --metrics hscore", "--metric excludes --metrics");
  expect_usage_error(
      toy_args(t.file("p"), test::data_path("model/models/tuple.pt")) + " --analysis layers",
      "cannot be split into layers");
}

}  // namespace
}  // namespace tlkit

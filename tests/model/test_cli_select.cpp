// End-to-end tests of `tlkit select` on the tiny zoo of tests/data/select (made by
// tools/export_select_fixtures.py): a zoo in which the frozen-feature ranking and the fine-tuned
// ranking disagree by construction (reference.json: `learner` has the worst frozen-feature probe
// and the best fine-tuned accuracy by an independent PyTorch/sklearn computation, `pixels2` the
// best frozen one). Checks that select recovers the fine-tuned best where the metric's top-1 is
// another model, the stage and epoch accounting against the formulas of select.h, resuming after an
// interruption (same choice, no finished run redone), the budget, the outputs (select.json,
// scores.csv read by tlkit evaluate, model.pt), and the one-line errors for bad options.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "cli_support.h"
#include "test_support.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using test::run_cli;

// Stage 1 trains 2 epochs at learning rates 0.1 and 0.01 (the fixture's learner needs 0.1).
std::string args(const test::TempDir& t, const std::string& out = "out") {
  return "select --zoo " + test::data_path("select/zoo.json") + " --data " +
         test::data_path("select/data") +
         " --split-train train --split-val val --split-test test --batch 8 --augment none "
         "--lr-grid 0.1,0.01 --first-epochs 2 --threads 1 --cache " +
         t.file("cache") + " --out " + t.file(out);
}

const nlohmann::json& entry(const nlohmann::json& sel, const std::string& name) {
  for (const auto& m : sel["models"])
    if (m["name"] == name) return m;
  ADD_FAILURE() << name << " not in select.json";
  static const nlohmann::json none;
  return none;
}

TEST(CliSelect, RecoversTheFineTunedBestThatTheMetricRanksSecond) {
  test::TempDir t;
  const CliRun r = run_cli(args(t) + " --keep 4");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = test::load_json(t.file("out/select.json"));
  const auto ref = test::load_json(test::data_path("select/reference.json"))["models"];
  // The construction (independent of tlkit): learner is the worst frozen, the best fine-tuned.
  for (const auto& [name, v] : ref.items()) {
    if (name == "learner") continue;
    ASSERT_LT(ref["learner"]["frozen_probe_test_acc"], v["frozen_probe_test_acc"]) << name;
    ASSERT_GT(ref["learner"]["finetuned_test_acc"], v["finetuned_test_acc"]) << name;
  }
  EXPECT_EQ(sel["schema_version"], 1);
  // The metric (LogME) puts pixels2 first and learner lower; select chooses learner.
  EXPECT_EQ(entry(sel, "pixels2")["metric_rank"], 1);
  EXPECT_GT(entry(sel, "learner")["metric_rank"].get<int>(), 1);
  EXPECT_EQ(sel["chosen"], "learner");
  EXPECT_EQ(sel["ordering"][0], "learner");
  // Its test accuracy beats every model's frozen-feature ceiling (the fixture's test split).
  double best_frozen = 0;
  for (const auto& [name, v] : ref.items())
    best_frozen = std::max(best_frozen, v["frozen_probe_test_acc"].get<double>());
  EXPECT_GT(sel["test_acc"].get<double>(), 100.0 * best_frozen);
  EXPECT_EQ(entry(sel, "learner")["lr"], 0.1);
  // Stages: 4 models x 2 learning rates x E_1 = 2 epochs, then 2 survivors x (E_2 - E_1) = 2.
  ASSERT_EQ(sel["stages"].size(), 2u);
  EXPECT_EQ(sel["stages"][0]["epochs"], 2);
  EXPECT_EQ(sel["stages"][0]["survivors"].size(), 4u);
  EXPECT_EQ(sel["stages"][0]["epochs_spent"], 4 * 2 * 2);
  EXPECT_EQ(sel["stages"][1]["epochs"], 4);
  EXPECT_EQ(sel["stages"][1]["survivors"].size(), 2u);
  EXPECT_EQ(sel["stages"][1]["epochs_spent"], 2 * (4 - 2));
  EXPECT_EQ(sel["epochs_spent"], 16 + 4);
  // The survivor continued from its stage-1 checkpoint: one run folder, 4 epochs of history.
  const auto learner_run = test::load_json(t.file("out/runs/learner/lr-0.1/metrics.json"));
  EXPECT_EQ(learner_run["history"].size(), 4u);
  EXPECT_EQ(learner_run["zoo_model"]["name"], "learner");
  EXPECT_TRUE(fs::exists(t.file("out/model.pt")));
  // Eliminated at stage 1: two epochs each, stage_reached 1.
  int out_at_1 = 0;
  for (const auto& m : sel["models"])
    if (m["eliminated_at"] == 1) {
      ++out_at_1;
      EXPECT_EQ(m["stage_reached"], 1);
      EXPECT_EQ(m["stage_val_acc"].size(), 1u);
    }
  EXPECT_EQ(out_at_1, 2);
  // scores.csv: the final ordering, read by tlkit evaluate against the reference accuracies.
  std::string truth = "model,accuracy\n";
  for (const auto& [name, v] : ref.items())
    truth += name + "," + std::to_string(v["finetuned_test_acc"].get<double>()) + "\n";
  test::write_bytes(t.file("truth.csv"), truth);
  const std::string csv = test::read_bytes(t.file("out/scores.csv"));
  EXPECT_EQ(csv.rfind("model,metric,score\nlearner,select,4\n", 0), 0u) << csv;
  const CliRun ev = run_cli("evaluate --scores " + t.file("out/scores.csv") + " --truth " +
                            t.file("truth.csv") + " --format csv");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_NE(ev.out.find("select,4,"), std::string::npos) << ev.out;
  // The summary names the choice.
  EXPECT_NE(r.out.find("tlkit select: chosen learner"), std::string::npos) << r.out;
}

TEST(CliSelect, KeepOneWithoutIntervalsFollowsTheMetric) {
  test::TempDir t;
  const CliRun r = run_cli(args(t) + " --keep 1 --bootstrap 0 --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = nlohmann::json::parse(r.out);
  EXPECT_EQ(sel["chosen"], "pixels2");
  ASSERT_EQ(sel["stages"].size(), 1u);
  EXPECT_EQ(sel["stages"][0]["epochs_spent"], 1 * 2 * 2);
  for (const auto& m : sel["models"]) {
    if (m["name"] != "pixels2") {
      EXPECT_EQ(m["eliminated_at"], 0) << m["name"];
    }
  }
  // Cut at stage 0: ordered by the metric after the survivor.
  std::vector<std::pair<int, std::string>> by_metric;
  for (const auto& m : sel["models"])
    if (m["name"] != "pixels2") by_metric.emplace_back(m["metric_rank"], m["name"]);
  std::sort(by_metric.begin(), by_metric.end());
  for (std::size_t i = 0; i < by_metric.size(); ++i)
    EXPECT_EQ(sel["ordering"][i + 1], by_metric[i].second);
}

TEST(CliSelect, IntervalOverlapKeepsWhatTheMetricCannotSeparateFromTheKth) {
  // On 60 images LogME cannot tell the four models apart: with --keep 1 the bootstrap intervals
  // (100 half-samples) of the others overlap pixels2's, so they survive stage 0 and learner still
  // wins.
  test::TempDir t;
  const CliRun r = run_cli(args(t) + " --keep 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = test::load_json(t.file("out/select.json"));
  const auto& kth = entry(sel, "pixels2");
  ASSERT_EQ(kth["metric_rank"], 1);
  EXPECT_FALSE(kth["kept_by_interval"].get<bool>());
  const double kth_lo = kth["score_interval"][0];
  for (const auto& m : sel["models"]) {
    const double lo = m["score_interval"][0], hi = m["score_interval"][1];
    EXPECT_LE(lo, hi) << m["name"];
    if (m["name"] == "pixels2") continue;
    // The rule (higher is better for LogME): kept when the interval reaches the K-th's lower end.
    EXPECT_EQ(m["kept_by_interval"].get<bool>(), hi >= kth_lo) << m["name"];
    EXPECT_EQ(m["eliminated_at"] == 0, hi < kth_lo) << m["name"];
  }
  EXPECT_TRUE(entry(sel, "learner")["kept_by_interval"].get<bool>());
  EXPECT_EQ(sel["chosen"], "learner");
}

TEST(CliSelect, ResumeAfterAnInterruptionGivesTheSameChoiceWithoutRedoingRuns) {
  test::TempDir t;
  const CliRun straight = run_cli(args(t, "straight") + " --keep 4 --quiet");
  ASSERT_EQ(straight.code, 0) << straight.err;
  // Stopped after 5 of the 10 runs, as Ctrl-C between runs.
  const CliRun first = run_cli(args(t) + " --keep 4 --quiet --stop-after-runs 5");
  EXPECT_EQ(first.code, 130) << first.err;
  const auto state = test::load_json(t.file("out/select-state.json"));
  ASSERT_EQ(state["runs"].size(), 5u);
  std::map<std::string, fs::file_time_type> written;
  for (const auto& run : state["runs"]) {
    const std::string ckpt = run["dir"].get<std::string>() + "/checkpoint.pt";
    written[ckpt] = fs::last_write_time(ckpt);
  }
  const CliRun second = run_cli(args(t) + " --keep 4");
  ASSERT_EQ(second.code, 0) << second.err;
  // The five finished runs are reported as done earlier, and the checkpoints of those that did
  // not go on to stage 2 are untouched; a stage-2 run continued from its stage-1 checkpoint.
  std::size_t earlier = 0;
  for (std::size_t p = 0; (p = second.err.find("done earlier", p)) != std::string::npos; ++p)
    ++earlier;
  EXPECT_EQ(earlier, 5u) << second.err;
  const auto state2 = test::load_json(t.file("out/select-state.json"));
  std::set<std::string> continued;
  for (const auto& run : state2["runs"]) {
    EXPECT_EQ(run["continued_from_epoch"], run["stage"] == 2 ? 2 : 0) << run;
    if (run["stage"] == 2) continued.insert(run["dir"].get<std::string>() + "/checkpoint.pt");
  }
  EXPECT_EQ(continued.size(), 2u);
  for (const auto& [ckpt, time] : written) {
    if (!continued.count(ckpt)) {
      EXPECT_EQ(fs::last_write_time(ckpt), time) << ckpt;
    }
  }
  const auto resumed = test::load_json(t.file("out/select.json"));
  const auto once = test::load_json(t.file("straight/select.json"));
  EXPECT_EQ(resumed["chosen"], once["chosen"]);
  EXPECT_EQ(resumed["ordering"], once["ordering"]);
  EXPECT_EQ(resumed["epochs_spent"], once["epochs_spent"]);
  EXPECT_EQ(state2["runs"].size(), 10u);
  std::set<std::string> keys;
  for (const auto& run : state2["runs"])
    keys.insert(run["model"].get<std::string>() + run["dir"].get<std::string>() +
                std::to_string(run["epochs"].get<int>()));
  EXPECT_EQ(keys.size(), 10u);  // no run twice
  // Another setting in the same --out is refused, naming it.
  test::expect_usage_error(args(t) + " --keep 3", "differs in: keep");
}

TEST(CliSelect, EpochBudgetLeavesOutTheRunThatWouldExceedIt) {
  test::TempDir t;
  // Stage 1 costs 16 epochs, stage 2 two runs of 2: a budget of 18 allows one of them.
  const CliRun r = run_cli(args(t) + " --keep 4 --budget-epochs 18 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = test::load_json(t.file("out/select.json"));
  EXPECT_EQ(sel["epochs_spent"], 18);
  EXPECT_TRUE(sel["budget_exhausted"].get<bool>());
  ASSERT_EQ(sel["stages"].size(), 2u);
  EXPECT_EQ(sel["stages"][1]["epochs_spent"], 2);
  // Stage 2 runs the survivors best first: the learner ran and is chosen.
  EXPECT_EQ(sel["chosen"], "learner");
  EXPECT_NE(r.err.find("tlkit: note: the budget ended the selection in stage 2"), std::string::npos)
      << r.err;
  // Below stage 1's cost: the runs that fit, then stop; never above the budget.
  test::TempDir t2;
  const CliRun small = run_cli(args(t2) + " --keep 4 --budget-epochs 5 --quiet");
  ASSERT_EQ(small.code, 0) << small.err;
  const auto s2 = test::load_json(t2.file("out/select.json"));
  EXPECT_EQ(s2["epochs_spent"], 4);  // two runs of 2 epochs; a third would make 6
}

TEST(CliSelect, WallClockBudgetShorterThanStageZeroRunsNothing) {
  test::TempDir t;
  const CliRun r = run_cli(args(t) + " --keep 4 --budget 0.001s --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = test::load_json(t.file("out/select.json"));
  EXPECT_TRUE(sel["chosen"].is_null());
  EXPECT_EQ(sel["epochs_spent"], 0);
  EXPECT_TRUE(sel["budget_exhausted"].get<bool>());
}

TEST(CliSelect, TextZooSelectsAsImageZoosDo) {
  // Two text fixture models (forward(List[str])): both fine-tune, and the one with the better
  // stage-1 validation accuracy is chosen.
  test::TempDir t;
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [{\"name\": \"bag\", \"file\": \"" +
                        test::data_path("model/models/text_bag.pt") +
                        "\", \"kind\": \"text\"}, {\"name\": \"stats\", \"file\": \"" +
                        test::data_path("model/models/text_stats.pt") +
                        "\", \"kind\": \"text\"}]}");
  const std::string data = test::data_path("model/text/trec12.txt");
  const CliRun r = run_cli("select --zoo " + t.file("zoo.json") + " --data " + data +
                           " --split-val " + data + " --split-test " + data +
                           " --batch 4 --threads 1 --keep 2 --bootstrap 0 --mode full --cache " +
                           t.file("cache") + " --out " + t.file("out") + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sel = test::load_json(t.file("out/select.json"));
  ASSERT_EQ(sel["stages"].size(), 1u);  // 2 models -> 1 survivor
  EXPECT_EQ(sel["stages"][0]["epochs_spent"], 2 * 2 * 1);
  const std::string chosen = sel["chosen"];
  const std::string other = chosen == "bag" ? "stats" : "bag";
  EXPECT_GE(entry(sel, chosen)["stage_val_acc"][0].get<double>(),
            entry(sel, other)["stage_val_acc"][0].get<double>());
  EXPECT_EQ(entry(sel, other)["eliminated_at"], 1);
  const auto run = test::load_json(entry(sel, chosen)["run"].get<std::string>() + "/metrics.json");
  EXPECT_EQ(run["data"]["data_kind"], "text");
  EXPECT_TRUE(fs::exists(t.file("out/model.pt")));
}

TEST(CliSelect, BadOptionsAreOneLineErrors) {
  test::TempDir t;
  test::expect_usage_error(args(t) + " --eta 1", "--eta 1: must be > 1");
  test::expect_usage_error(args(t) + " --eta 0.5", "--eta 0.5: must be > 1");
  test::expect_usage_error(args(t) + " --keep 0", "--keep 0: must be >= 1");
  test::expect_usage_error(args(t) + " --metric nosuch", "--metric nosuch: unknown metric");
  test::expect_usage_error(args(t) + " --budget 10x", "--budget '10x': expected a duration");
  test::expect_usage_error(args(t) + " --budget -5m", "--budget '-5m'");
  std::string bad_grid = args(t);
  bad_grid.replace(bad_grid.find("--lr-grid 0.1,0.01"), 18, "--lr-grid 0.1,abc");
  test::expect_usage_error(bad_grid, "'abc' is not a learning rate");
  test::expect_usage_error(args(t) + " --mode linear", "--mode linear");
  std::string no_test = args(t);
  no_test.replace(no_test.find(" --split-test test"), 18, "");
  test::expect_usage_error(no_test, "give --split-test, or --test-fraction F");
  // --device as tlkit finetune's (CUDA_VISIBLE_DEVICES= hides any GPU from a CUDA LibTorch).
  test::expect_usage_error(args(t) + " --device cuda:x",
                           "--device cuda:x: expected cpu, cuda or cuda:N (N >= 0)");
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  test::expect_usage_error(args(t) + " --device cuda", "--device cuda: this LibTorch (");
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_FALSE(fs::exists(t.file("out")));
}

}  // namespace
}  // namespace tlkit

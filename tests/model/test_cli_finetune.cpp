// End-to-end tests of `tlkit finetune`: exit codes and the one-line error contract for bad
// options, the summary and metrics.json of a run on the toy fixture (tests/data/model/toy), and
// of a text model on text/trec12.txt, and Ctrl-C (exit 130, the last checkpoint intact, no
// temporary left, a resume identical to a straight run), and `tlkit predict` on the model.pt a run
// writes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli_support.h"
#include "test_support.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/runtime.h"

extern char** environ;

namespace tlkit {
namespace {

namespace fs = std::filesystem;
using test::CliRun;
using test::run_cli;

std::string toy_args(const std::string& out) {
  return "finetune --model " + test::data_path("model/models/trainable.pt") + " --data " +
         test::data_path("model/toy") +
         " --split-train train --split-test test --val-fraction 0.25 --input-size 8 --batch 4 "
         "--epochs 2 --threads 1 --out " +
         out;
}

using test::expect_usage_error;

TEST(CliFinetune, RunsAndWritesMetrics) {
  test::TempDir t;
  const CliRun r = run_cli(toy_args(t.file("run")) + " --mode top:2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress bar
  EXPECT_NE(r.out.find("tlkit finetune: top:2 on 2 classes (train 18, val 6, test 8), features 8"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("4 blocks; training blocks.0, blocks.1"), std::string::npos) << r.out;
  const auto m = test::load_json(t.file("run") + "/metrics.json");
  EXPECT_EQ(m["history"].size(), 2u);
  EXPECT_TRUE(m["test_acc"].is_number());
  EXPECT_EQ(m["config"]["mode"], "top:2");
  EXPECT_TRUE(std::filesystem::exists(t.file("run") + "/checkpoint.pt"));
  // Run again: resumes the finished run and reports the same test accuracy.
  const CliRun again = run_cli(toy_args(t.file("run")) + " --mode top:2 --quiet");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(test::load_json(t.file("run") + "/metrics.json")["test_acc"], m["test_acc"]);
  // Another configuration in the same folder is refused.
  expect_usage_error(toy_args(t.file("run")) + " --mode top:1", "different configuration");
}

// The toy classes are linearly separable, so a huge C has no finite optimum and L-BFGS stops short
// of its tolerance: the warning names the model and gathers the C values in one line.
TEST(CliFinetune, NonConvergedLinearProbeFitsAreOneWarningNamingTheModel) {
  test::TempDir t;
  const CliRun r = run_cli(toy_args(t.file("run")) + " --mode linear --grid c=1e15,1e16 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("tlkit: warning: " + test::data_path("model/models/trainable.pt") +
                            ": the linear probe's L-BFGS did not converge for C = ",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("1000000000000000, 1e+16 ("), std::string::npos) << r.err;
}

TEST(CliFinetune, BadOptionsExitWithCodeTwo) {
  test::TempDir t;
  const std::string base = toy_args(t.file("out"));
  expect_usage_error(base + " --mode all", "--mode all: expected linear, top:K or full");
  expect_usage_error(base + " --mode top:0", "top:0");
  expect_usage_error(base + " --mode top:5", "has 4 blocks");
  expect_usage_error(base + " --grid 'lr=0.1;lr=0.2'", "given twice");
  expect_usage_error(base + " --grid 'lr=abc'", "not a number");
  expect_usage_error(base + " --grid 'momentum'", "is not key=value");
  expect_usage_error(base + " --grid 'depth=1'", "unknown key");
  expect_usage_error(base + " --augment rotate", "--augment rotate");
  test::write_bytes(t.file("afile"), "x");
  expect_usage_error(toy_args(t.file("afile")), "exists and is not a folder");
  const std::string no_test = "finetune --model " + test::data_path("model/models/trainable.pt") +
                              " --data " + test::data_path("model/toy") +
                              " --split-train train --input-size 8 --out " + t.file("o2");
  expect_usage_error(no_test, "no test split");
  expect_usage_error(no_test + " --split-test nosuch", "nosuch");
  expect_usage_error(base + " --features " + t.path(), "only --mode linear");
  expect_usage_error(base + " --mode linear --grid lr=0.1", "takes the key c");
  expect_usage_error("finetune --model " + test::data_path("model/models/trainable.pt") +
                         " --data " + test::data_path("model/toy") +
                         " --split-train train --split-test test --input-size 8",
                     "--out");
}

TEST(CliFinetune, ListsBlocksLastFirst) {
  const CliRun r = run_cli("finetune --model " + test::data_path("model/models/trainable.pt") +
                           " --input-size 8 --list-blocks");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("4 blocks of ", 0), 0u) << r.out;
  const auto top1 = r.out.find("top:1   blocks.1 (Block, 152 parameters)");
  const auto top4 = r.out.find("top:4   conv1 (Conv2d, 108 parameters)");
  EXPECT_NE(top1, std::string::npos) << r.out;
  EXPECT_NE(top4, std::string::npos) << r.out;
  EXPECT_LT(top1, top4);
  EXPECT_EQ(r.out.find("linear"), std::string::npos) << "the old classifier is not a block";
}

// --device takes extract's values (cpu, cuda, cuda:N) with its one-line errors, checked before
// any folder is made. CUDA_VISIBLE_DEVICES= hides any GPU, so the refusal holds with a CUDA
// LibTorch too.
TEST(CliFinetune, DeviceValuesAreCheckedBeforeAnythingIsWritten) {
  test::TempDir t;
  const std::string out = t.file("out");
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  for (const std::string d : {"cuda", "cuda:0", "cuda:3"}) {
    expect_usage_error(toy_args(out) + " --device " + d,
                       "--device " + d + ": this LibTorch (" + model::torch_version() +
                           ") has no CUDA support or sees no CUDA device; use --device cpu");
    EXPECT_FALSE(fs::exists(out)) << d;
  }
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  for (const std::string d : {"tpu", "cuda:x", "cuda:", "cuda:-1", "CPU", "gpu"}) {
    expect_usage_error(toy_args(out) + " --device " + d,
                       "--device " + d + ": expected cpu, cuda or cuda:N (N >= 0)");
    EXPECT_FALSE(fs::exists(out)) << d;
  }
  // probe shares the option and its check.
  expect_usage_error("probe --model " + test::data_path("model/models/trainable.pt") + " --data " +
                         test::data_path("model/toy") +
                         " --split-train train --split-test test --input-size 8 --device cuda:x "
                         "--out " +
                         out,
                     "--device cuda:x: expected cpu, cuda or cuda:N (N >= 0)");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliFinetune, TextModelRunsWithoutInputSize) {
  test::TempDir t;
  const std::string data = test::data_path("model/text/trec12.txt");
  const std::string args = "finetune --model " + test::data_path("model/models/text_bag.pt") +
                           " --data " + data + " --split-val " + data +
                           " --split-test trec12.txt --epochs 1 --batch 4 --threads 1 --out ";
  const CliRun r = run_cli(args + t.file("run") + " --mode full");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tlkit finetune: full on 6 classes (train 12, val 12, test 12), features 4"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("2 blocks; training emb, proj"), std::string::npos) << r.out;
  EXPECT_EQ(test::load_json(t.file("run") + "/metrics.json")["data"]["data_kind"], "text");
  const CliRun aug = run_cli(args + t.file("aug") + " --augment crop --quiet");
  ASSERT_EQ(aug.code, 0) << aug.err;
  EXPECT_NE(aug.err.find("tlkit: warning: --augment crop does not apply to text data"),
            std::string::npos)
      << aug.err;
  expect_usage_error(args + t.file("m") + " --mean 0.5,0.5,0.5 --std 0.2,0.2,0.2",
                     "they normalise images");
  expect_usage_error("finetune --model " + test::data_path("model/models/trainable.pt") +
                         " --data " + data + " --split-test " + data + " --out " + t.file("x"),
                     "is an image model");
  expect_usage_error("finetune --model " + test::data_path("model/models/text_bag.pt") +
                         " --data " + test::data_path("model/toy") +
                         " --split-train train --split-test test --input-size 8 --out " +
                         t.file("y"),
                     "is a text model");
  const CliRun blocks =
      run_cli("finetune --model " + test::data_path("model/models/text_bag.pt") + " --list-blocks");
  ASSERT_EQ(blocks.code, 0) << blocks.err;
  EXPECT_NE(blocks.out.find("top:1   proj (Linear, 28 parameters)"), std::string::npos)
      << blocks.out;
  EXPECT_NE(blocks.out.find("top:2   emb (Embedding, 384 parameters)"), std::string::npos)
      << blocks.out;
  expect_usage_error(
      "finetune --model " + test::data_path("model/models/trainable.pt") + " --list-blocks",
      "--input-size is required");
}

TEST(CliFinetune, MeanAndStdTakeThreeValues) {
  test::TempDir t;
  const CliRun r = run_cli(toy_args(t.file("run")) + " --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m = test::load_json(t.file("run") + "/metrics.json");
  EXPECT_EQ(m["config"]["mean"][0], 0.5);
  EXPECT_EQ(m["config"]["std"][2], 0.25);
  EXPECT_NE(run_cli(toy_args(t.file("bad")) + " --mean 0.5,0.5").code, 0);
  expect_usage_error(toy_args(t.file("bad")) + " --mean 0.5,0.5,0.5", "--mean and --std");
}

// Arguments for run_cli (the paths here have no characters the shell would split).
std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// metrics.json without its timings (which differ between runs).
nlohmann::json without_seconds(nlohmann::json m) {
  for (auto& e : m["history"]) e.erase("seconds");
  m.erase("totals");
  return m;
}

// --device cpu is the default: the same model.pt, byte for byte, and the same metrics.json
// (timings aside), which records the device.
TEST(CliFinetune, DeviceCpuEqualsTheDefault) {
  test::TempDir t;
  const CliRun a = run_cli(toy_args(t.file("default")) + " --mode full --quiet");
  ASSERT_EQ(a.code, 0) << a.err;
  const CliRun b = run_cli(toy_args(t.file("cpu")) + " --mode full --quiet --device cpu");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(test::read_bytes(t.file("default") + "/model.pt"),
            test::read_bytes(t.file("cpu") + "/model.pt"));
  const auto ma = without_seconds(test::load_json(t.file("default") + "/metrics.json"));
  const auto mb = without_seconds(test::load_json(t.file("cpu") + "/metrics.json"));
  EXPECT_EQ(ma, mb);
  EXPECT_EQ(ma["config"]["device"], "cpu");
}

TEST(CliFinetune, CtrlCKeepsTheLastCheckpointAndTheRerunEqualsAStraightRun) {
  test::TempDir t;
  // Many short epochs (18 images of 8 x 8, batch 2), no early stopping: the signal lands inside
  // training, after at least one checkpoint.
  auto args_for = [&](const std::string& out) {
    return std::vector<std::string>{"finetune",
                                    "--model",
                                    test::data_path("model/models/trainable.pt"),
                                    "--data",
                                    test::data_path("model/toy"),
                                    "--split-train",
                                    "train",
                                    "--split-test",
                                    "test",
                                    "--val-fraction",
                                    "0.25",
                                    "--input-size",
                                    "8",
                                    "--batch",
                                    "2",
                                    "--epochs",
                                    "60",
                                    "--patience",
                                    "0",
                                    "--threads",
                                    "1",
                                    "--seed",
                                    "7",
                                    "--mode",
                                    "full",
                                    "--out",
                                    out};
  };
  const std::string out = t.file("run"), ckpt = out + "/checkpoint.pt";
  const pid_t pid = test::spawn_cli(args_for(out), t.file("stdout"), t.file("stderr"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string err = test::read_bytes(t.file("stderr"));
  ASSERT_TRUE(WIFEXITED(status)) << err;
  if (WEXITSTATUS(status) == 0) GTEST_SKIP() << "all epochs finished before the signal";
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  EXPECT_EQ(err, "tlkit: interrupted (finished work is kept; run the command again to resume)\n");
  EXPECT_EQ(test::read_bytes(t.file("stdout")), "");
  // Nothing half-written: the checkpoint, no temporary, no metrics.json of an unfinished run.
  std::vector<std::string> left;
  for (const auto& e : fs::recursive_directory_iterator(out)) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"checkpoint.pt"});
  // The checkpoint loads (the last complete epoch's weights).
  const auto params = model::checkpoint_parameters(ckpt);
  EXPECT_FALSE(params.empty());

  // The rerun resumes and ends where a straight run ends, bit for bit.
  const CliRun resumed = run_cli(joined(args_for(out)));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("(resumed after epoch "), std::string::npos) << resumed.out;
  const CliRun straight = run_cli(joined(args_for(t.file("straight"))));
  ASSERT_EQ(straight.code, 0) << straight.err;
  const auto a = without_seconds(test::load_json(out + "/metrics.json"));
  const auto b = without_seconds(test::load_json(t.file("straight") + "/metrics.json"));
  EXPECT_EQ(a["history"].size(), 60u);
  EXPECT_EQ(a["history"], b["history"]);
  EXPECT_EQ(a["test_acc"], b["test_acc"]);
  EXPECT_EQ(a["best_epoch"], b["best_epoch"]);
  EXPECT_EQ(model::checkpoint_parameters(ckpt, true),
            model::checkpoint_parameters(t.file("straight") + "/checkpoint.pt", true));
}

// finetune writes model.pt; predict runs it over the test images (CSV to --out or stdout) and
// prints the accuracy finetune reported; its errors follow the one-line contract.
TEST(CliFinetune, PredictRunsTheFinetunedModel) {
  test::TempDir t;
  const CliRun r = run_cli(toy_args(t.file("run")) + " --mode top:1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("metrics.json and model.pt"), std::string::npos) << r.out;
  const std::string model = t.file("run") + "/model.pt";
  ASSERT_TRUE(fs::exists(model));
  const double test_acc = test::load_json(t.file("run") + "/metrics.json")["test_acc"];
  const std::string data = " --data " + test::data_path("model/toy") + " --split test --threads 1";
  const CliRun p = run_cli("predict --model " + model + data + " --out " + t.file("p.csv"));
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.err, "");
  EXPECT_NE(p.out.find("tlkit predict: 8 samples, 2 classes, top 2"), std::string::npos) << p.out;
  char want[128];
  std::snprintf(want, sizeof want, "accuracy %.2f%% (top-2 100.00%%) on the 8 labelled samples",
                test_acc);
  EXPECT_NE(p.out.find(want), std::string::npos) << p.out;
  const std::string csv = test::read_bytes(t.file("p.csv"));
  EXPECT_EQ(test::count_lines(csv), 9);
  EXPECT_EQ(csv.rfind("file,label,class_1,prob_1,class_2,prob_2\n", 0), 0u) << csv;
  // Without --out the CSV goes to stdout and the summary to stderr.
  const CliRun s = run_cli("predict --model " + model + data + " --top-k 1");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(test::count_lines(s.out), 9);
  EXPECT_EQ(s.out.rfind("file,label,class_1,prob_1\n", 0), 0u) << s.out;
  EXPECT_NE(s.err.find("tlkit predict: 8 samples"), std::string::npos) << s.err;
  expect_usage_error("predict --model " + model + data + " --top-k 3", "--top-k 3");
  expect_usage_error("predict --model " + test::data_path("model/models/features_only.pt") + data +
                         " --input-size 8",
                     "returns no logits");
  const CliRun help = run_cli("predict --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("class_i"), std::string::npos) << help.out;
}

// Two entries of one manifest on the toy model: fine-tuned from the zoo, collected by tlkit truth
// and fed to tlkit evaluate.
TEST(CliFinetune, AZooEntryStandsForTheModelAndTruthCollectsTheRuns) {
  test::TempDir t;
  const std::string zoo = t.file("zoo.json");
  const std::string pt = test::data_path("model/models/trainable.pt");
  test::write_bytes(
      zoo, R"({"models": [{"name": "toy_a", "file": ")" + pt +
               R"(", "kind": "image", "input_size": 8}, {"name": "toy_b", "file": ")" + pt +
               R"(", "kind": "image", "input_size": 8}]})");
  const std::string args = "finetune --data " + test::data_path("model/toy") +
                           " --split-train train --split-test test --val-fraction 0.25 --batch 4 "
                           "--epochs 1 --threads 1 --quiet --zoo " +
                           zoo;
  ASSERT_EQ(run_cli(args + " --model-name toy_a --mode top:1 --out " + t.file("a")).code, 0);
  const CliRun b =
      run_cli(args + " --model-name toy_b --mode top:2 --input-size 8 --out " + t.file("b"));
  ASSERT_EQ(b.code, 0) << b.err;
  const auto ma = test::load_json(t.file("a") + "/metrics.json");
  const auto mb = test::load_json(t.file("b") + "/metrics.json");
  EXPECT_EQ(ma["config"]["input_size"], 8);  // the entry's input_size, no --input-size given
  EXPECT_EQ(ma["config"]["model"], pt);
  EXPECT_EQ(ma["zoo_model"]["name"], "toy_a");
  EXPECT_EQ(mb["zoo_model"]["name"], "toy_b");

  const CliRun truth =
      run_cli("truth " + t.file("a") + " " + t.file("b") + " --out " + t.file("truth.csv"));
  ASSERT_EQ(truth.code, 0) << truth.err;
  EXPECT_EQ(truth.out, "tlkit truth: 2 models (test_acc) -> " + t.file("truth.csv") + "\n");
  const std::string csv = test::read_bytes(t.file("truth.csv"));
  ASSERT_EQ(csv.rfind("model,accuracy\ntoy_a,", 0), 0u) << csv;
  const std::size_t b_at = csv.find("\ntoy_b,");
  ASSERT_NE(b_at, std::string::npos) << csv;
  // The accuracies are metrics.json's test_acc, to the last digit.
  EXPECT_EQ(std::stod(csv.substr(21, b_at - 21)), ma["test_acc"].get<double>()) << csv;
  EXPECT_EQ(std::stod(csv.substr(b_at + 7)), mb["test_acc"].get<double>()) << csv;

  test::write_bytes(t.file("scores.csv"), "model,metric,score\ntoy_a,logme,1\ntoy_b,logme,2\n");
  const CliRun ev =
      run_cli("evaluate --scores " + t.file("scores.csv") + " --truth " + t.file("truth.csv"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_NE(ev.out.find("accuracies of 2 models"), std::string::npos) << ev.out;
  EXPECT_EQ(ev.err, "");  // every scored model has an accuracy

  expect_usage_error(
      args + " --model-name toy_a --input-size 16 --out " + t.file("c"),
      "--input-size 16 disagrees with the zoo entry 'toy_a' of " + zoo + " (input_size 8)");
  expect_usage_error(args + " --model-name toy_a --model " + pt + " --out " + t.file("c"),
                     "--model and --zoo: give one");
  expect_usage_error(args + " --model-name nope --out " + t.file("c"),
                     "(its models: toy_a, toy_b)");
  EXPECT_FALSE(std::filesystem::exists(t.file("c")));
  expect_usage_error("truth " + t.file("a") + " " + t.file("a"), "also has a run in");
  expect_usage_error("truth " + t.file("c"), "cannot read");
}

}  // namespace
}  // namespace tlkit

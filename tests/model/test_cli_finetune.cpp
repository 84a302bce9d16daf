// End-to-end tests of `tlkit finetune`: exit codes and the one-line error contract for bad
// options, the summary and metrics.json of a run on the toy fixture (tests/data/model/toy), and
// of a text model on text/trec12.txt.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_support.h"
#include "test_support.h"

namespace tlkit {
namespace {

using test::CliRun;
using test::run_cli;

std::string toy_args(const std::string& out) {
  return "finetune --model " + test::data_path("model/models/trainable.pt") + " --data " +
         test::data_path("model/toy") +
         " --split-train train --split-test test --val-fraction 0.25 --input-size 8 --batch 4 "
         "--epochs 2 --threads 1 --out " +
         out;
}

void expect_usage_error(const std::string& args, const std::string& needle) {
  const CliRun r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("tlkit: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
}

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

TEST(CliFinetune, CudaWithoutCudaIsAUsageError) {
  test::TempDir t;
  const CliRun r = run_cli(toy_args(t.file("out")) + " --device cuda");
  if (r.code == 0) GTEST_SKIP() << "this LibTorch has CUDA";
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--device cuda: this LibTorch"), std::string::npos) << r.err;
  expect_usage_error(toy_args(t.file("out")) + " --device tpu", "--device tpu");
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
  const CliRun r =
      run_cli(toy_args(t.file("run")) + " --mean 0.5,0.5,0.5 --std 0.25,0.25,0.25");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m = test::load_json(t.file("run") + "/metrics.json");
  EXPECT_EQ(m["config"]["mean"][0], 0.5);
  EXPECT_EQ(m["config"]["std"][2], 0.25);
  EXPECT_NE(run_cli(toy_args(t.file("bad")) + " --mean 0.5,0.5").code, 0);
  expect_usage_error(toy_args(t.file("bad")) + " --mean 0.5,0.5,0.5", "--mean and --std");
}

}  // namespace
}  // namespace tlkit

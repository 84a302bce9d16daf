// End-to-end tests of `tlkit rank`: outputs (table, JSON schema, CSV for tlkit evaluate), the cache
// across runs, the single-model form, bad usage, Ctrl-C (exit 130, finished models kept, resume),
// and the kit's real zoos (skipped when ../shared/kit is absent).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "cli_support.h"
#include "test_support.h"

extern char** environ;

namespace tlkit {
namespace {

namespace fs = std::filesystem;

using test::CliRun;
using test::run_cli;

std::string fixture(const std::string& name) {
  return test::data_path("model/models/" + name + ".pt");
}

// A zoo of the fixture models: two image models (different features; "plain" without its logits)
// and a text model.
std::string write_zoo(const test::TempDir& t) {
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [{\"name\": \"tuple\", \"file\": \"" + fixture("tuple") +
                        "\", \"kind\": \"image\", \"input_size\": 32, \"logits_dim\": 3},"
                        " {\"name\": \"plain\", \"file\": \"" +
                        fixture("relu6_pool") +
                        "\", \"kind\": \"image\", \"input_size\": 32},"
                        " {\"name\": \"words\", \"file\": \"" +
                        fixture("text_stats") + "\", \"kind\": \"text\"}]}");
  return t.file("zoo.json");
}

std::string images() { return test::data_path("model/images") + " --split train"; }

TEST(CliRank, JsonFollowsTheSchemaAndTheCsvFeedsEvaluate) {
  test::TempDir t;
  const std::string zoo = write_zoo(t);
  const CliRun r =
      run_cli("rank --zoo " + zoo + " --data " + images() + " --cache " + t.file("cache") +
              " --metrics logme,leep --format json --out " + t.file("scores.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["dataset"]["kind"], "image");
  EXPECT_EQ(j["dataset"]["selected"], 6);
  ASSERT_EQ(j["models"].size(), 2u);
  for (const auto& m : j["models"]) {
    for (const char* key : {"name", "n", "d", "extract_seconds", "scores", "cached"})
      EXPECT_TRUE(m.contains(key)) << key;
    EXPECT_EQ(m["n"], 6);
    EXPECT_EQ(m["d"], 8);
    EXPECT_TRUE(m["scores"]["logme"].is_number());
  }
  EXPECT_TRUE(j["models"][1]["scores"]["leep"].is_null());  // no logits
  EXPECT_EQ(j["ranking"]["leep"], (nlohmann::json{"tuple", "plain"}));
  const auto& ranking = j["ranking"]["logme"];
  ASSERT_EQ(ranking.size(), 2u);
  const bool tuple_first = j["models"][0]["scores"]["logme"].get<double>() >
                           j["models"][1]["scores"]["logme"].get<double>();
  EXPECT_EQ(ranking[0].get<std::string>(), tuple_first ? "tuple" : "plain");

  // The CSV is what tlkit evaluate reads (accuracies here exercise the format only).
  const std::string csv = test::read_bytes(t.file("scores.csv"));
  EXPECT_EQ(csv.rfind("model,metric,score\ntuple,logme,", 0), 0u) << csv;
  EXPECT_NE(csv.find("tuple,leep,"), std::string::npos) << csv;
  EXPECT_EQ(csv.find("plain,leep"), std::string::npos) << csv;  // no score (no logits): no row
  test::write_bytes(t.file("truth.csv"), "model,accuracy\ntuple,0.5\nplain,0.4\n");
  const CliRun logme_only =
      run_cli("rank --zoo " + zoo + " --data " + images() + " --cache " + t.file("cache") +
              " --metrics logme --quiet --out " + t.file("logme.csv"));
  ASSERT_EQ(logme_only.code, 0) << logme_only.err;
  const CliRun e = run_cli("evaluate --scores " + t.file("logme.csv") + " --truth " +
                           t.file("truth.csv") + " --format json");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(nlohmann::json::parse(e.out)["metrics"]["logme"]["top1_relative_accuracy"],
            tuple_first ? 1.0 : 0.8);

  // The second run reads every model from the cache and prints the same scores.
  const CliRun again = run_cli("rank --zoo " + zoo + " --data " + images() + " --cache " +
                               t.file("cache") + " --metrics logme,leep --format csv");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, csv);
  EXPECT_NE(again.err.find("tuple: 6 x 8 features from the cache"), std::string::npos) << again.err;
}

TEST(CliRank, TableMarkdownSingleModelAndText) {
  test::TempDir t;
  const std::string zoo = write_zoo(t);
  const CliRun table = run_cli("rank --zoo " + zoo + " --data " + images() + " --no-cache");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("2 image models"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ranked by logme"), std::string::npos) << table.out;
  EXPECT_NE(table.err.find("1 text model(s) of the zoo left out"), std::string::npos);
  EXPECT_FALSE(fs::exists("tlkit-cache/tuple"));  // --no-cache keeps nothing

  const CliRun md = run_cli("rank --zoo " + zoo + " --data " + images() +
                            " --no-cache --quiet --format md --metrics logme");
  ASSERT_EQ(md.code, 0) << md.err;
  EXPECT_EQ(md.out.rfind("| rank | model | n | d | extract s | logme |\n|---|", 0), 0u) << md.out;

  const CliRun one = run_cli("rank --model " + fixture("tuple") + " --input-size 32 --data " +
                             images() + " --no-cache --format json");
  ASSERT_EQ(one.code, 0) << one.err;
  const auto j = nlohmann::json::parse(one.out);
  EXPECT_EQ(j["models"][0]["name"], "tuple");
  EXPECT_EQ(j["models"][0]["logits_dim"], 3);  // a single model's logits are used when present

  const CliRun text =
      run_cli("rank --zoo " + zoo + " --data " + test::data_path("model/text/trec12.txt") +
              " --no-cache --format json --quiet");
  ASSERT_EQ(text.code, 0) << text.err;
  const auto tj = nlohmann::json::parse(text.out);
  EXPECT_EQ(tj["dataset"]["kind"], "text");
  EXPECT_EQ(tj["models"][0]["name"], "words");
  // Default metrics without leep/nce: no text model has logits.
  EXPECT_EQ(tj["metrics"], (nlohmann::json{"logme", "hscore_shrink", "transrate"}));
}

TEST(CliRank, BadUsageIsExitCode2WithOneLine) {
  test::TempDir t;
  const std::string zoo = write_zoo(t);
  fs::create_directories(t.file("dir"));
  test::write_bytes(t.file("missing.json"),
                    "{\"models\": [{\"name\": \"a\", \"file\": \"gone.pt\", \"kind\": \"image\", "
                    "\"input_size\": 8}]}");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rank --data " + images(), "give --zoo"},
      {"rank --zoo " + zoo + " --model " + fixture("tuple") + " --data " + images(), "excludes"},
      {"rank --model " + fixture("tuple") + " --data " + images(), "needs --input-size"},
      {"rank --zoo " + t.file("missing.json") + " --data " + images(), "gone.pt does not exist"},
      {"rank --zoo " + t.file("nope.json") + " --data " + images(), "cannot open the manifest"},
      {"rank --zoo " + zoo + " --data " + images() + " --out " + t.file("dir"), "is a folder"},
      {"rank --zoo " + zoo + " --data " + images() + " --format xml", "--format"},
      {"rank --zoo " + zoo + " --data " + images() + " --metrics logme,bogus", "bogus"},
      {"rank --zoo " + zoo + " --data " + images() + " --models tuple,nope", "--models nope"},
      {"rank --zoo " + zoo + " --data " + t.file("nothing"), "no such file or folder"},
      {"rank --zoo " + zoo + " --data " + images() + " --no-cache --cache x", "excludes"},
  };
  for (const auto& [args, expect] : cases) {
    const CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("tlkit: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.out, "") << args;
  }
}

TEST(CliRank, CtrlCKeepsFinishedModelsAndTheNextRunResumes) {
  test::TempDir t;
  const std::string zoo = write_zoo(t);
  // Many rows (the same six images again and again) so that the second model takes a while.
  std::string csv = "path,label\n";
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(test::data_path("model/images/train")))
    if (e.is_regular_file()) files.push_back(e.path().string());
  for (int i = 0; i < 1500; ++i)
    csv += files[static_cast<std::size_t>(i) % files.size()] + "," +
           fs::path(files[static_cast<std::size_t>(i) % files.size()])
               .parent_path()
               .filename()
               .string() +
           "\n";
  test::write_bytes(t.file("many.csv"), csv);
  const std::vector<std::string> args = {
      "rank",    "--zoo", zoo,        "--data",      t.file("many.csv"), "--cache", t.file("cache"),
      "--batch", "2",     "--models", "tuple,plain", "--metrics",        "logme"};
  const std::string err = t.file("err");
  const pid_t pid = test::spawn_cli(args, "/dev/null", err);
  // Wait until the first model is done, then interrupt the second.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (test::read_bytes(err).find("tuple: 1500 x 8 features extracted") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << test::read_bytes(err);
  if (WEXITSTATUS(status) == 0) GTEST_SKIP() << "the second model finished before the signal";
  EXPECT_EQ(WEXITSTATUS(status), 130) << test::read_bytes(err);
  EXPECT_NE(test::read_bytes(err).find("tlkit: interrupted"), std::string::npos);
  // Nothing half-written: no temporary files, no meta.json for the interrupted model.
  for (const auto& e : fs::recursive_directory_iterator(t.file("cache"))) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    if (e.path().filename() == "meta.json") {
      EXPECT_NE(e.path().string().find("/tuple/"), std::string::npos) << e.path();
    }
  }
  const CliRun again =
      run_cli("rank --zoo " + zoo + " --data " + t.file("many.csv") + " --cache " +
              t.file("cache") + " --models tuple,plain --metrics logme --batch 64");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("tuple: 1500 x 8 features from the cache"), std::string::npos)
      << again.err;
  EXPECT_NE(again.err.find("plain: 1500 x 8 features extracted"), std::string::npos) << again.err;
}

// The kit's real zoo (../shared/kit): every image model on a few clothing photos per class, and
// the three text models on TREC questions, with finite scores.
TEST(CliRankKit, AllImageAndTextModelsGetFiniteScores) {
  const std::string kit = TLKIT_KIT_DIR;
  if (!fs::exists(kit + "/models/zoo.json")) GTEST_SKIP() << "no kit at " << kit;
  test::TempDir t;
  const CliRun r = run_cli("rank --zoo " + kit + "/models/zoo.json --data " + kit +
                           "/data/clothing-small-160 --split train --per-class 3 --no-cache "
                           "--format json --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["models"].size(), 13u);
  const auto all_finite = [](const nlohmann::json& models) {
    for (const auto& m : models)
      for (const auto& [metric, v] : m["scores"].items())
        EXPECT_TRUE(v.is_number()) << m["name"] << " " << metric;
  };
  all_finite(j["models"]);
  for (const auto& m : j["models"]) EXPECT_EQ(m["n"], 30) << m["name"];
  EXPECT_EQ(j["ranking"]["logme"].size(), 13u);

  const CliRun text = run_cli("rank --zoo " + kit + "/models/zoo.json --data " + kit +
                              "/data/text-classification/TREC.train.all --per-class 10 "
                              "--no-cache --format json --quiet");
  ASSERT_EQ(text.code, 0) << text.err;
  const auto tj = nlohmann::json::parse(text.out);
  ASSERT_EQ(tj["models"].size(), 3u);
  all_finite(tj["models"]);
}

}  // namespace
}  // namespace tlkit

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

#include "../../apps/cli/progress.h"
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

// --metric names the list on every command (--metrics is an alias, errors name the flag typed);
// 'all' is every metric that applies, the zoo-level ones included; per-model notes are grouped;
// the table keeps within 120 columns unless --wide.
TEST(CliRank, MetricAliasAllGroupedNotesAndTableWidth) {
  test::TempDir t;
  const std::string zoo = write_zoo(t);
  const std::string base =
      "rank --zoo " + zoo + " --data " + images() + " --cache " + t.file("cache") + " --quiet ";
  const CliRun a = run_cli(base + "--metric logme,leep --format csv");
  const CliRun b = run_cli(base + "--metrics logme,leep --format csv");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find("\ntuple,leep,"), std::string::npos) << a.out;
  EXPECT_EQ(a.out, b.out);
  test::expect_usage_error(base + "--metrics nope",
                           "tlkit: error: --metrics: unknown metric 'nope'");
  test::expect_usage_error(base + "--metric nope", "tlkit: error: --metric: unknown metric 'nope'");

  const CliRun all = run_cli(base + "--metric all --format json");
  ASSERT_EQ(all.code, 0) << all.err;
  const auto j = nlohmann::json::parse(all.out);
  std::vector<std::string> metrics = j["metrics"];
  // The zoo-level NCTI (its components need only features) and LEEP (tuple has logits) apply.
  for (const char* m : {"logme", "leep", "nce", "hscore", "ncti_seli", "ncti"})
    EXPECT_NE(std::find(metrics.begin(), metrics.end(), m), metrics.end()) << m;
  // Every metric listed has a score for some model: 'all' leaves out what does not apply.
  for (const std::string& m : metrics) {
    bool scored = false;
    for (const auto& model : j["models"]) scored = scored || model["scores"][m].is_number();
    EXPECT_TRUE(scored) << m << " has no score";
  }
  // The note about plain's missing logits: once, naming the model.
  const std::string no_logits =
      "tlkit: warning: no logits (the manifest gives no logits_dim): leep and nce need them "
      "(model plain)\n";
  EXPECT_NE(all.err.find(no_logits), std::string::npos) << all.err;
  EXPECT_EQ(all.err.find("warning: plain: "), std::string::npos) << all.err;
  // A note both models share is one line naming both.
  EXPECT_NE(all.err.find("(models tuple, plain)\n"), std::string::npos) << all.err;

  const CliRun table = run_cli(base + "--metric all");
  ASSERT_EQ(table.code, 0) << table.err;
  // Every line after the title (which holds the data's path) keeps within 120 columns.
  std::size_t widest = 0, lines = 0;
  for (std::size_t at = table.out.find('\n') + 1; at < table.out.size(); ++lines) {
    const std::size_t end = table.out.find('\n', at);
    widest = std::max(widest, end - at);
    at = end + 1;
  }
  EXPECT_LE(widest, 120u) << table.out;
  EXPECT_NE(table.out.find("more metric columns not shown: "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("every score)\n"), std::string::npos) << table.out;
  const CliRun wide = run_cli(base + "--metric all --wide");
  ASSERT_EQ(wide.code, 0) << wide.err;
  EXPECT_EQ(wide.out.find("not shown"), std::string::npos) << wide.out;
  const std::string header = wide.out.substr(wide.out.find("\nrank") + 1);
  for (const std::string& m : metrics)
    EXPECT_NE(header.substr(0, header.find('\n')).find(" " + m), std::string::npos) << m;
  EXPECT_GT(header.find('\n'), 120u);
}

// The bar's count never goes back within a task (batches finish out of order), and a label
// change keeps it (rank's one bar over the zoo).
TEST(CliProgress, TheCountNeverGoesBack) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    cli::ProgressBar bar(true, "item", f, std::chrono::milliseconds(0));
    bar.set_label("[1/2] a");
    bar.update(4, 20);
    bar.update(2, 20);  // an earlier batch finishing late
    bar.set_label("[2/2] b");
    bar.update(10, 20);
    bar.update(20, 20);
  }
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out.push_back(static_cast<char>(c));
  std::fclose(f);
  std::vector<std::string> counts;
  for (std::size_t at = 1; (at = out.find("] ", at)) != std::string::npos; at += 2)
    if (out[at - 1] == '#' || out[at - 1] == '.')  // the bar's end, not the label's "[1/2]"
      counts.push_back(out.substr(at + 2, out.find(' ', at + 2) - at - 2));
  EXPECT_EQ(counts, (std::vector<std::string>{"4/20", "4/20", "10/20", "20/20"})) << out;
  EXPECT_NE(out.find("[2/2] b ["), std::string::npos) << out;
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

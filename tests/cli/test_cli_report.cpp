// tlkit report from the command line, on the committed fixtures of tests/data/report (real tlkit
// outputs; README there): the sections each input adds, the help, and what a bad input leaves.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_support.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

std::string fx(const std::string& name) { return test::data_path("report/" + name); }

bool has_section(const std::string& page, const std::string& id) {
  return page.find("<section id=\"" + id + "\">") != std::string::npos;
}

TEST(CliReport, EachInputAddsItsSection) {
  test::TempDir dir;
  const std::string out = dir.file("r.html");
  // The ranking alone: ranking, agreement between metrics, provenance.
  test::CliRun r = test::run_cli("report --rank " + fx("rank.json") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind("tlkit: wrote " + out + " (", 0), 0u) << r.out;
  std::string page = test::read_bytes(out);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(has_section(page, "ranking"));
  EXPECT_TRUE(has_section(page, "metrics"));
  EXPECT_TRUE(has_section(page, "provenance"));
  for (const char* id : {"agreement", "stability", "select", "probe", "finetune"})
    EXPECT_FALSE(has_section(page, id)) << id;
  // The command line is on the page (provenance).
  EXPECT_NE(page.find("tlkit report --rank " + fx("rank.json")), std::string::npos);

  // Evaluate without --bootstrap: agreement, no stability; without --truth no scatter.
  r = test::run_cli("report --rank " + fx("rank.json") + " --evaluate " + fx("eval.json") +
                    " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  page = test::read_bytes(out);
  EXPECT_TRUE(has_section(page, "agreement"));
  EXPECT_FALSE(has_section(page, "stability"));
  EXPECT_EQ(page.find("score against fine-tuned accuracy"), std::string::npos);
  EXPECT_NE(page.find("Give <code>--truth</code>"), std::string::npos);

  // Everything.
  r = test::run_cli("report --rank " + fx("rank.json") + " --evaluate " +
                    fx("eval-bootstrap.json") + " --truth " + fx("truth.csv") + " --select " +
                    fx("select") + " --probe " + fx("probe") + " --finetune " + fx("ft-resnet20") +
                    " " + fx("ft-mobilenet") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  page = test::read_bytes(out);
  for (const char* id : {"ranking", "agreement", "stability", "metrics", "select", "probe",
                         "finetune", "provenance"})
    EXPECT_TRUE(has_section(page, id)) << id;
  // One scatter per metric of the evaluation (4), each with its data table.
  std::size_t scatters = 0;
  for (std::size_t at = page.find("score against fine-tuned accuracy</title>");
       at != std::string::npos; at = page.find("score against fine-tuned accuracy</title>", at + 1))
    ++scatters;
  EXPECT_EQ(scatters, 4u);
  // Both fine-tuning runs are named (zoo_model.name of their metrics.json).
  EXPECT_NE(page.find("imagenet_mobilenet_v1_025_128 (validation)"), std::string::npos);
  EXPECT_NE(page.find("cifar10_resnet20 (training)"), std::string::npos);
}

TEST(CliReport, BadInputLeavesAnEarlierPageIntact) {
  test::TempDir dir;
  const std::string out = dir.file("r.html");
  test::write_bytes(out, "earlier page");
  test::expect_usage_error(
      "report --rank " + fx("rank.json") + " --probe " + dir.file("none") + " --out " + out,
      "--probe " + dir.file("none") + ": no such folder");
  EXPECT_EQ(test::read_bytes(out), "earlier page");
  // No temporary left next to it.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(CliReport, UnwritableOutIsAnEnvironmentError) {
  test::TempDir dir;
  const test::CliRun r = test::run_cli("report --rank " + fx("rank.json") + " --out " +
                                       dir.file("no/such/folder/r.html"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("r.html"), std::string::npos) << r.err;
}

TEST(CliReport, HelpTeaches) {
  const test::CliRun r = test::run_cli("report --help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"--rank", "--evaluate", "--truth", "--select", "--probe", "--finetune",
                        "--out", "Example:", "tlkit rank --report", "docs/report.md"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  EXPECT_NE(test::run_cli("--help").out.find("report"), std::string::npos);
}

TEST(CliReport, RankIsRequired) {
  test::expect_usage_error("report --out r.html", "--rank is required");
}

}  // namespace
}  // namespace tlkit

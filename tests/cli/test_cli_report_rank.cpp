// tlkit rank --report (built with LibTorch): the page a ranking writes straight away is the page
// tlkit report makes of that ranking's JSON, section for section.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "test_support.h"

namespace tlkit {
namespace {

std::string fixture(const std::string& name) {
  return test::data_path("model/models/" + name + ".pt");
}

std::string section(const std::string& page, const std::string& id) {
  const std::size_t at = page.find("<section id=\"" + id + "\">");
  if (at == std::string::npos) return "";
  return page.substr(at, page.find("</section>", at) - at);
}

TEST(CliRankReport, IsTheReportOfItsJson) {
  test::TempDir t;
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [{\"name\": \"tuple\", \"file\": \"" + fixture("tuple") +
                        "\", \"kind\": \"image\", \"input_size\": 32, \"logits_dim\": 3},"
                        " {\"name\": \"plain\", \"file\": \"" +
                        fixture("relu6_pool") + "\", \"kind\": \"image\", \"input_size\": 32}]}");
  const test::CliRun r = test::run_cli(
      "rank --zoo " + t.file("zoo.json") + " --data " + test::data_path("model/images") +
      " --split train --no-cache --quiet --metrics logme,leep,hscore --format json --report " +
      t.file("rank.html"));
  ASSERT_EQ(r.code, 0) << r.err;
  test::write_bytes(t.file("rank.json"), r.out);
  const test::CliRun rep =
      test::run_cli("report --rank " + t.file("rank.json") + " --out " + t.file("report.html"));
  ASSERT_EQ(rep.code, 0) << rep.err;
  const std::string a = test::read_bytes(t.file("rank.html"));
  const std::string b = test::read_bytes(t.file("report.html"));
  for (const char* id : {"ranking", "metrics"}) {
    EXPECT_NE(section(a, id), "") << id;
    EXPECT_EQ(section(a, id), section(b, id)) << id;
  }
  EXPECT_NE(section(a, "provenance").find("tlkit rank --zoo " + t.file("zoo.json")),
            std::string::npos);
  // Each model file's SHA-256, as rank.json records it (also without a cache), is on both pages.
  const auto j = nlohmann::json::parse(r.out);
  for (const auto& m : j.at("models")) {
    const std::string sha = m.at("sha256");
    EXPECT_EQ(sha.size(), 64u) << sha;
    EXPECT_NE(section(a, "provenance").find(sha), std::string::npos) << sha;
    EXPECT_NE(section(b, "provenance").find(sha), std::string::npos) << sha;
  }
  for (const char* name : {">tuple<", ">plain<", ">logme<", ">leep<", ">hscore<"})
    EXPECT_NE(a.find(name), std::string::npos) << name;
}

TEST(CliRankReport, AFolderIsRefusedBeforeAnyWork) {
  test::TempDir t;
  test::expect_usage_error("rank --model " + fixture("tuple") + " --input-size 32 --data " +
                               test::data_path("model/images") + " --split train --report " +
                               t.path(),
                           "--report " + t.path() + ": is a folder");
}

}  // namespace
}  // namespace tlkit

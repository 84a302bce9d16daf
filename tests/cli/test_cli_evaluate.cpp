// End-to-end tests of `tlkit evaluate`: the TLlib CIFAR10 reproduction, output formats, CSV
// dialect, notes, and the error contract (exit 2, exactly one stderr line naming file/line/column).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <string>

#include "cli_support.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"

namespace tlkit {
namespace {

using test::CliRun;
using test::run_cli;

int lines(const std::string& s) { return test::count_lines(s); }

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string evaluate_args(const std::string& scores, const std::string& truth) {
  return "evaluate --scores " + quote(scores) + " --truth " + quote(truth);
}

const std::string kTllibScores = test::data_path("correlation/tllib_cifar10_scores.csv");
const std::string kTllibTruth = test::data_path("correlation/tllib_cifar10_truth.csv");

// Parsed keeping the key order of the output (metrics come best weighted tau first).
nlohmann::ordered_json run_json(const std::string& scores, const std::string& truth) {
  const CliRun r = run_cli(evaluate_args(scores, truth) + " --format json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(lines(r.out), 1);
  return nlohmann::ordered_json::parse(r.out);
}

TEST(CliEvaluate, ReproducesTheTllibCifar10WeightedTau) {
  // thuml/Transfer-Learning-Library examples/model_selection/README.md, CIFAR10 (see
  // tests/data/correlation/README.md): the printed "Weighted Tau" row, and SciPy on the same table.
  const std::map<std::string, double> printed{
      {"HScore", 0.800}, {"LEEP", 0.638}, {"LogME", 0.785}, {"NCE", 0.714}};
  const auto refs = test::load_json(test::data_path("correlation/refs.json"))["tllib_cifar10"];
  const nlohmann::ordered_json j = run_json(kTllibScores, kTllibTruth);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["n_truth_models"], 10);
  EXPECT_EQ(j["notes"], nlohmann::ordered_json::array());
  ASSERT_EQ(j["metrics"].size(), 4u);
  for (const auto& [metric, tau] : printed) {
    const auto& m = j["metrics"][metric];
    EXPECT_EQ(m["n_models"], 10) << metric;
    EXPECT_NEAR(m["weighted_tau"].get<double>(), tau, 0.0005) << metric;
    EXPECT_NEAR(m["weighted_tau"].get<double>(), refs[metric]["weighted_tau"].get<double>(), 1e-12);
    EXPECT_NEAR(m["kendall_tau"].get<double>(), refs[metric]["kendall_tau_b"].get<double>(), 1e-12);
    EXPECT_NEAR(m["spearman"].get<double>(), refs[metric]["spearman"].get<double>(), 1e-12);
    EXPECT_NEAR(m["pearson"].get<double>(), refs[metric]["pearson"].get<double>(), 1e-12);
  }
  // Top-1: HScore and LogME score ResNet152 highest, the best model (97.9): 1. LEEP and NCE pick
  // ResNet101 (97.7): 97.7 / 97.9.
  EXPECT_EQ(j["metrics"]["HScore"]["top1_model"], "ResNet152");
  EXPECT_EQ(j["metrics"]["HScore"]["top1_relative_accuracy"], 1.0);
  EXPECT_EQ(j["metrics"]["LogME"]["top1_model"], "ResNet152");
  EXPECT_EQ(j["metrics"]["LEEP"]["top1_model"], "ResNet101");
  EXPECT_NEAR(j["metrics"]["LEEP"]["top1_relative_accuracy"].get<double>(), 97.7 / 97.9, 1e-15);
  EXPECT_EQ(j["metrics"]["NCE"]["top1_models"], nlohmann::ordered_json::array({"ResNet101"}));
  // Metrics come best weighted tau first: HScore 0.800, LogME 0.785, NCE 0.714, LEEP 0.638.
  std::vector<std::string> order;
  for (const auto& [name, v] : j["metrics"].items()) order.push_back(name);
  EXPECT_EQ(order, (std::vector<std::string>{"HScore", "LogME", "NCE", "LEEP"}));
}

TEST(CliEvaluate, TableIsSortedByWeightedTauAndNamesTheTopModel) {
  const CliRun r = run_cli(evaluate_args(kTllibScores, kTllibTruth));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("tlkit evaluate: 4 metrics against the accuracies of 10 models"),
            std::string::npos)
      << r.out;
  const std::size_t hscore = r.out.find("\nHScore "), logme = r.out.find("\nLogME "),
                    nce = r.out.find("\nNCE "), leep = r.out.find("\nLEEP ");
  ASSERT_NE(leep, std::string::npos) << r.out;
  EXPECT_LT(hscore, logme);
  EXPECT_LT(logme, nce);
  EXPECT_LT(nce, leep);
  const std::string hscore_line = r.out.substr(hscore + 1, r.out.find('\n', hscore + 1) - hscore);
  EXPECT_NE(hscore_line.find("0.7997"), std::string::npos) << hscore_line;  // 0.79974...
  EXPECT_NE(hscore_line.find("ResNet152"), std::string::npos) << hscore_line;
}

TEST(CliEvaluate, CsvHasAHeaderAndAgreesWithJson) {
  const CliRun r = run_cli(evaluate_args(kTllibScores, kTllibTruth) + " --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const CsvTable t = parse_csv_table(r.out, "stdout");
  EXPECT_EQ(t.header, (std::vector<std::string>{"metric", "n_models", "weighted_tau", "kendall_tau",
                                                "spearman", "pearson", "top1_relative_accuracy",
                                                "top1_model"}));
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(lines(r.out), 5);
  const nlohmann::ordered_json j = run_json(kTllibScores, kTllibTruth);
  for (std::size_t i = 0; i < t.rows.size(); ++i) {
    const auto& m = j["metrics"][t.rows[i][0]];
    EXPECT_EQ(t.number(i, 1), m["n_models"].get<double>());
    // %.17g round-trips a double exactly.
    EXPECT_EQ(t.number(i, 2), m["weighted_tau"].get<double>());
    EXPECT_EQ(t.number(i, 6), m["top1_relative_accuracy"].get<double>());
    EXPECT_EQ(t.rows[i][7], m["top1_model"].get<std::string>());
  }
  EXPECT_EQ(t.rows[0][0], "HScore");
}

TEST(CliEvaluate, ColumnOrderCrlfQuotingAndWhitespaceDoNotChangeTheResult) {
  // The TLlib table rewritten: columns reordered, an extra column, CRLF, a BOM, quoted names with
  // commas, padding; the result must equal the canonical file's, bit for bit.
  const CsvTable canon = read_csv_table(kTllibScores);
  test::TempDir dir;
  std::string scores = "\xEF\xBB\xBFscore , note,metric,model\r\n";
  for (std::size_t r = 0; r < canon.rows.size(); ++r)
    scores += "  " + canon.rows[r][2] + " ,\"x, y\"," + canon.rows[r][1] + ",\"" +
              canon.rows[r][0] + "\"\r\n";
  test::write_bytes(dir.file("scores.csv"), scores);
  test::write_bytes(
      dir.file("truth.csv"), "accuracy,model\n" + [&] {
        std::string s;
        const CsvTable t = read_csv_table(kTllibTruth);
        for (const auto& row : t.rows) s += row[1] + ", " + row[0] + "\n\n";
        return s;
      }());
  const nlohmann::ordered_json a = run_json(kTllibScores, kTllibTruth);
  const nlohmann::ordered_json b = run_json(dir.file("scores.csv"), dir.file("truth.csv"));
  EXPECT_EQ(a, b);

  // Model and metric names with commas and quotes survive into every output.
  test::write_bytes(dir.file("odd.csv"),
                    "model,metric,score\n\"m,1\",\"say \"\"hi\"\"\",2\nm2,\"say \"\"hi\"\"\",1\n");
  test::write_bytes(dir.file("odd_truth.csv"), "model,accuracy\n\"m,1\",0.9\nm2,0.8\n");
  const nlohmann::ordered_json o = run_json(dir.file("odd.csv"), dir.file("odd_truth.csv"));
  EXPECT_EQ(o["metrics"]["say \"hi\""]["top1_model"], "m,1");
  const CliRun c =
      run_cli(evaluate_args(dir.file("odd.csv"), dir.file("odd_truth.csv")) + " --format csv");
  ASSERT_EQ(c.code, 0) << c.err;
  const CsvTable ct = parse_csv_table(c.out, "stdout");
  EXPECT_EQ(ct.rows.at(0).at(0), "say \"hi\"");
  EXPECT_EQ(ct.rows.at(0).at(7), "m,1");
}

TEST(CliEvaluate, MetricsWithMissingModelsAreEvaluatedOnTheIntersectionWithANote) {
  test::TempDir dir;
  // Truth has 4 models; metric "a" scores all, "b" only three (w, x, y).
  test::write_bytes(dir.file("truth.csv"), "model,accuracy\nw,60\nx,70\ny,80\nz,90\n");
  test::write_bytes(dir.file("scores.csv"),
                    "model,metric,score\nw,a,1\nx,a,2\ny,a,3\nz,a,4\nw,b,3\nx,b,1\ny,b,2\n");
  const nlohmann::ordered_json j = run_json(dir.file("scores.csv"), dir.file("truth.csv"));
  EXPECT_EQ(j["metrics"]["a"]["n_models"], 4);
  EXPECT_EQ(j["metrics"]["a"]["weighted_tau"], 1.0);
  EXPECT_EQ(j["metrics"]["b"]["n_models"], 3);
  // b on {w: 3, x: 1, y: 2} vs {60, 70, 80} equals the library on the same three pairs; top-1 is
  // w (60) over the best of the three (80), not of all four.
  EXPECT_EQ(j["metrics"]["b"]["weighted_tau"].get<double>(), weighted_tau({3, 1, 2}, {60, 70, 80}));
  EXPECT_NEAR(j["metrics"]["b"]["top1_relative_accuracy"].get<double>(), 60.0 / 80, 1e-15);
  ASSERT_EQ(j["notes"].size(), 3u);
  EXPECT_EQ(j["notes"][0], "metric 'b': evaluated on the 3 of 4 models in " +
                               dir.file("truth.csv") + " that it scores (no score for z)");
  // Fewer than 5 models: a note per zoo size (2/3! = 0.33, 2/4! = 0.083).
  EXPECT_EQ(j["notes"][1].get<std::string>().substr(0, 46),
            "only 3 models (metric b): with fewer than 5, e");
  EXPECT_NE(j["notes"][1].get<std::string>().find("probability 2/3! = 0.33,"), std::string::npos);
  EXPECT_EQ(j["notes"][2].get<std::string>().substr(0, 24), "only 4 models (metric a)");
  const CliRun t = run_cli(evaluate_args(dir.file("scores.csv"), dir.file("truth.csv")));
  EXPECT_NE(t.out.find("note: metric 'b': evaluated on the 3 of 4 models"), std::string::npos);
}

TEST(CliEvaluate, ALowerIsBetterMetricOfTheRegistryIsRankedByItsNegatedScore) {
  test::TempDir dir;
  // ncti_vc is registered lower-is-better; "custom" is unknown, so higher-is-better.
  test::write_bytes(dir.file("truth.csv"), "model,accuracy\nw,60\nx,70\ny,80\nz,90\n");
  test::write_bytes(dir.file("scores.csv"),
                    "model,metric,score\nw,ncti_vc,4\nx,ncti_vc,2\ny,ncti_vc,3\nz,ncti_vc,1\n"
                    "w,custom,4\nx,custom,2\ny,custom,3\nz,custom,1\n");
  const nlohmann::ordered_json j = run_json(dir.file("scores.csv"), dir.file("truth.csv"));
  const std::vector<double> acc{60, 70, 80, 90};
  EXPECT_EQ(j["metrics"]["ncti_vc"]["weighted_tau"].get<double>(),
            weighted_tau({-4, -2, -3, -1}, acc));
  EXPECT_EQ(j["metrics"]["custom"]["weighted_tau"].get<double>(), weighted_tau({4, 2, 3, 1}, acc));
  EXPECT_GT(j["metrics"]["ncti_vc"]["kendall_tau"].get<double>(), 0.5);
  EXPECT_LT(j["metrics"]["custom"]["kendall_tau"].get<double>(), -0.5);
  EXPECT_EQ(j["metrics"]["ncti_vc"]["top1_model"], "z");  // the lowest score
  EXPECT_EQ(j["metrics"]["ncti_vc"]["top1_relative_accuracy"], 1.0);
  EXPECT_EQ(j["metrics"]["custom"]["top1_model"], "w");
  ASSERT_EQ(j["notes"].size(), 2u);
  EXPECT_EQ(j["notes"][0],
            "metric 'ncti_vc': lower is better, so the correlations use its "
            "negated score");
  EXPECT_EQ(j["notes"][1].get<std::string>().substr(0, 42),
            "only 4 models (metrics custom, ncti_vc): w");
}

TEST(CliEvaluate, ConstantScoresAndTopTiesAreNotedAndUndefinedIsNull) {
  test::TempDir dir;
  test::write_bytes(dir.file("truth.csv"), "model,accuracy\np,0.5\nq,0.7\nr,0.9\n");
  test::write_bytes(dir.file("scores.csv"),
                    "model,metric,score\np,flat,1\nq,flat,1\nr,flat,1\n"
                    "p,tied,5\nq,tied,5\nr,tied,2\n");
  const nlohmann::ordered_json j = run_json(dir.file("scores.csv"), dir.file("truth.csv"));
  const auto& flat = j["metrics"]["flat"];
  for (const char* k : {"weighted_tau", "kendall_tau", "spearman", "pearson"})
    EXPECT_TRUE(flat[k].is_null()) << k;
  // All three tie for the top: mean accuracy 0.7 over the best 0.9.
  EXPECT_NEAR(flat["top1_relative_accuracy"].get<double>(), 0.7 / 0.9, 1e-15);
  EXPECT_EQ(flat["top1_models"], nlohmann::ordered_json::array({"p", "q", "r"}));
  // p and q tie: (0.5 + 0.7) / 2 / 0.9.
  EXPECT_NEAR(j["metrics"]["tied"]["top1_relative_accuracy"].get<double>(), 0.6 / 0.9, 1e-15);
  EXPECT_EQ(j["metrics"]["tied"]["top1_model"], "p; q");
  // The undefined metric sorts last.
  EXPECT_EQ(j["metrics"].begin().key(), "tied");
  const std::string notes = j["notes"].dump();
  EXPECT_NE(notes.find("metric 'flat': all 3 models have the same score"), std::string::npos);
  EXPECT_NE(notes.find("metric 'tied': 2 models tie for the top score (p, q)"), std::string::npos);
  const CliRun t = run_cli(evaluate_args(dir.file("scores.csv"), dir.file("truth.csv")));
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("nan"), std::string::npos) << t.out;
  const CliRun c =
      run_cli(evaluate_args(dir.file("scores.csv"), dir.file("truth.csv")) + " --format csv");
  EXPECT_NE(c.out.find("flat,3,nan,nan,nan,nan,"), std::string::npos) << c.out;
}

TEST(CliEvaluate, ScoresOfModelsWithoutAnAccuracyAreLeftOutWithAWarning) {
  // The TLlib table with scores for two more models than truth.csv has: the result is the
  // table's own, and one warning names the extra models.
  test::TempDir dir;
  std::string scores = test::read_bytes(kTllibScores);
  if (scores.back() != '\n') scores += '\n';
  scores += "Extra1,LogME,99\nExtra1,LEEP,99\nExtra2,HScore,-5\n";
  test::write_bytes(dir.file("more.csv"), scores);
  const CliRun r = run_cli(evaluate_args(dir.file("more.csv"), kTllibTruth) + " --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "tlkit: warning: " + dir.file("more.csv") +
                       ": 2 models with scores but no accuracy in " + kTllibTruth +
                       ", left out: Extra1, Extra2\n");
  const CliRun ref = run_cli(evaluate_args(kTllibScores, kTllibTruth) + " --format json");
  ASSERT_EQ(ref.code, 0) << ref.err;
  EXPECT_EQ(r.out, ref.out);
}

TEST(CliEvaluate, FewerThanFiveModelsAreNotedAndFiveAreNot) {
  test::TempDir dir;
  test::write_bytes(dir.file("truth.csv"), "model,accuracy\nv,50\nw,60\nx,70\ny,80\nz,90\n");
  test::write_bytes(dir.file("five.csv"),
                    "model,metric,score\nv,a,0\nw,a,1\nx,a,2\ny,a,3\nz,a,4\n");
  test::write_bytes(dir.file("four.csv"), "model,metric,score\nw,a,1\nx,a,2\ny,a,3\nz,a,4\n");
  EXPECT_EQ(run_json(dir.file("five.csv"), dir.file("truth.csv"))["notes"],
            nlohmann::ordered_json::array());
  const CliRun t = run_cli(evaluate_args(dir.file("four.csv"), dir.file("truth.csv")));
  ASSERT_EQ(t.code, 0) << t.err;
  // 2/4! = 1/12.
  EXPECT_NE(t.out.find("note: only 4 models (metric a): with fewer than 5, even a ranking in "
                       "perfect agreement with the accuracies (tau = 1) arises by chance with "
                       "probability 2/4! = 0.083, so the correlations cannot show that a metric "
                       "works; rank more models\n"),
            std::string::npos)
      << t.out;
}

// ---- the error contract: exit 2, one line on stderr naming the input, nothing on stdout -------

void expect_usage_error(const std::string& args, const std::string& expected_line) {
  const CliRun r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err, expected_line + "\n");
  EXPECT_EQ(r.out, "");
}

TEST(CliEvaluate, BadInputsExitTwoWithOneLineNamingFileLineAndColumn) {
  test::TempDir dir;
  const std::string truth = dir.file("truth.csv");
  test::write_bytes(truth, "model,accuracy\na,0.5\nb,0.6\nc,0.7\n");
  const auto with_scores = [&](const std::string& name, const std::string& text) {
    test::write_bytes(dir.file(name), text);
    return evaluate_args(dir.file(name), truth);
  };
  const std::string e = "tlkit: error: ";
  expect_usage_error(
      with_scores("nocol.csv", "model,metric,value\na,m,1\n"),
      e + dir.file("nocol.csv") + ": missing column 'score' (the header is: model,metric,value)");
  expect_usage_error(with_scores("nan.csv", "model,metric,score\na,m,1\nb,m,0.3x\n"),
                     e + dir.file("nan.csv") + ": line 3: column 'score': not a number: '0.3x'");
  expect_usage_error(with_scores("dup.csv", "model,metric,score\na,m,1\nb,m,2\n\na,m,3\n"),
                     e + dir.file("dup.csv") +
                         ": line 5: a second score for model 'a', metric 'm' (the first is on "
                         "line 2)");
  expect_usage_error(with_scores("unknown.csv", "model,metric,score\nx,m,2\ny,m,3\nx,n,1\n"),
                     e + dir.file("unknown.csv") + ": none of its 2 models has an accuracy in " +
                         truth + " (scores for x, y; accuracies for a, b, c)");
  // Left out, the models without an accuracy leave 'm' with one model.
  expect_usage_error(with_scores("unknown1.csv", "model,metric,score\na,m,1\nx,m,2\ny,m,3\n"),
                     e + dir.file("unknown1.csv") +
                         ": metric 'm' has a score for only 1 model; a ranking needs at least 2");
  expect_usage_error(
      with_scores("one.csv", "model,metric,score\na,m,1\nb,m,2\na,solo,1\n"),
      e + dir.file("one.csv") +
          ": metric 'solo' has a score for only 1 model; a ranking needs at least 2");
  expect_usage_error(with_scores("quote.csv", "model,metric,score\na,m,1\n\"b,m,2\n"),
                     e + dir.file("quote.csv") +
                         ": line 3: the quoted field 1 is not closed before the end of the file");
  expect_usage_error(
      with_scores("width.csv", "model,metric,score\na,m\n"),
      e + dir.file("width.csv") + ": line 2: 2 fields, but the header has 3 columns");
  expect_usage_error(with_scores("empty_model.csv", "model,metric,score\n,m,1\n"),
                     e + dir.file("empty_model.csv") + ": line 2: column 'model' is empty");
  expect_usage_error(with_scores("header_only.csv", "model,metric,score\n"),
                     e + dir.file("header_only.csv") + ": no scores (the file has only a header)");
  expect_usage_error(
      with_scores("inf.csv", "model,metric,score\na,m,1\nb,m,-inf\n"),
      e + dir.file("inf.csv") + ": line 3: column 'score': not a finite number: '-inf'");
  // A newline inside a quoted value is escaped, so the message stays on one line.
  expect_usage_error(with_scores("nl.csv", "model,metric,score\na,m,\"1\n2\"\n"),
                     e + dir.file("nl.csv") + ": line 2: column 'score': not a number: '1\\n2'");

  // The truth file.
  const std::string ok_scores = dir.file("ok.csv");
  test::write_bytes(ok_scores, "model,metric,score\na,m,1\nb,m,2\n");
  const auto with_truth = [&](const std::string& name, const std::string& text) {
    test::write_bytes(dir.file(name), text);
    return evaluate_args(ok_scores, dir.file(name));
  };
  expect_usage_error(
      with_truth("t1.csv", "model,acc\na,1\n"),
      e + dir.file("t1.csv") + ": missing column 'accuracy' (the header is: model,acc)");
  expect_usage_error(
      with_truth("t2.csv", "model,accuracy\na,1\nb,\n"),
      e + dir.file("t2.csv") + ": line 3: column 'accuracy' is empty (expected a number)");
  expect_usage_error(with_truth("t3.csv", "model,accuracy\na,1\nb,2\na,3\n"),
                     e + dir.file("t3.csv") +
                         ": line 4: a second accuracy for model 'a' (the first is on line 2)");
  expect_usage_error(with_truth("t4.csv", "model,accuracy\na,0\nb,-1\n"),
                     e + dir.file("t4.csv") +
                         ": the best accuracy of the models scored by metric 'm' is 0; top-1 "
                         "relative accuracy needs a positive maximum");
  expect_usage_error(evaluate_args(ok_scores, dir.file("absent.csv")),
                     e + dir.file("absent.csv") + ": cannot open: No such file or directory");
}

TEST(CliEvaluate, UsageErrorsExitTwo) {
  const CliRun missing = run_cli("evaluate --scores " + kTllibScores);
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(lines(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("--truth"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("tlkit evaluate --help"), std::string::npos) << missing.err;
  const CliRun fmt = run_cli(evaluate_args(kTllibScores, kTllibTruth) + " --format xml");
  EXPECT_EQ(fmt.code, 2);
  EXPECT_EQ(lines(fmt.err), 1) << fmt.err;
  EXPECT_NE(fmt.err.find("xml"), std::string::npos) << fmt.err;
  const CliRun bootstrap = run_cli(evaluate_args(kTllibScores, kTllibTruth) + " --bootstrap 10");
  EXPECT_EQ(bootstrap.code, 2);  // not an option (yet)
  const CliRun help = run_cli("evaluate --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--scores"), std::string::npos);
  EXPECT_NE(help.out.find("model,metric,score"), std::string::npos);
}

}  // namespace
}  // namespace tlkit

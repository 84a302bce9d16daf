// End-to-end tests of `tlkit evaluate --bootstrap`: a zoo of three real models (subsets of the
// bundled examples/clothing-features) laid out as `tlkit extract` writes them, the three output
// formats, determinism, the replicate file, and the error contract (exit 2, one stderr line,
// nothing on stdout).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "cli_support.h"
#include "tlkit/core/bootstrap.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace tlkit {
namespace {

using test::CliRun;
using test::run_cli;

const std::string kClothing = std::string(TLKIT_EXAMPLES_DIR) + "/clothing-features";

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Ridge-probe accuracies of examples/clothing-features/README.md (a linear probe, not
// fine-tuning; real measurements, used here only as a ranking to compare with).
const std::map<std::string, double> kProbe{{"imagenet_mobilenet_v1_075_192", 0.76},
                                           {"imagenet_mobilenet_v1_025_128", 0.65},
                                           {"cifar10_resnet20", 0.47}};

// A features folder: per model the first 40 rows of each class (400 rows) of its real features,
// labels.npy, and logits.npy where the example has it; scores.csv with etran_lda, etran_energy
// (etran_energy needs N >= 200, so a half-sample of 400 rows) and knn computed by the library on
// the same rows, and truth.csv.
class Zoo {
 public:
  Zoo() {
    const std::vector<std::int64_t> all = load_npy(kClothing + "/labels.npy").labels();
    std::vector<std::int64_t> rows;
    std::map<std::int64_t, int> taken;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(all.size()); ++i)
      if (taken[all[i]]++ < 40) rows.push_back(i);
    for (auto r : rows) labels_.push_back(all[r]);
    const std::int64_t n = static_cast<std::int64_t>(rows.size());
    std::string scores = "model,metric,score\n", truth = "model,accuracy\n";
    for (const auto& [model, acc] : kProbe) {
      const std::string out = dir_.path() + "/feats/" + model;
      std::filesystem::create_directories(out);
      const NpyArray arr = load_npy(kClothing + "/" + model + "/features.npy");
      const FeatureView f = arr.features();
      std::vector<float> sub;
      for (auto r : rows)
        for (std::int64_t j = 0; j < f.cols; ++j) sub.push_back(static_cast<float>(f.at(r, j)));
      save_npy(out + "/features.npy", sub.data(), {n, f.cols});
      save_npy(out + "/labels.npy", labels_.data(), {n});
      const ScoreReport rep = score(
          ScoreInputs{
              FeatureView::row_major(sub.data(), n, f.cols), LabelView{labels_.data(), n}, {}},
          {"etran_lda", "etran_energy", "knn"});
      for (const auto& m : rep.metrics)
        scores += fmt::format("{},{},{:.17g}\n", model, m.name, m.score);
      truth += fmt::format("{},{}\n", model, acc);
    }
    test::write_bytes(dir_.file("scores.csv"), scores);
    test::write_bytes(dir_.file("truth.csv"), truth);
  }
  std::string dir(const std::string& sub = "feats") const { return dir_.path() + "/" + sub; }
  std::string file(const std::string& name) const { return dir_.file(name); }
  std::string args(const std::string& scores = "scores.csv") const {
    return "evaluate --scores " + quote(file(scores)) + " --truth " + quote(file("truth.csv"));
  }
  std::string boot(int k, const std::string& extra = "") const {
    return args() + " --bootstrap " + std::to_string(k) + " --features-dir " + quote(dir()) + " " +
           extra;
  }
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  test::TempDir dir_;
  std::vector<std::int64_t> labels_;
};

const Zoo& zoo() {
  static const Zoo z;
  return z;
}

nlohmann::ordered_json json_of(const CliRun& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(test::count_lines(r.out), 1);
  return nlohmann::ordered_json::parse(r.out);
}

TEST(CliEvaluateBootstrap, JsonAddsABootstrapObjectAndKeepsEveryOtherKey) {
  const auto plain = json_of(run_cli(zoo().args() + " --format json"));
  auto j = json_of(run_cli(zoo().boot(8, "--format json --seed 3")));
  ASSERT_TRUE(j.contains("bootstrap"));
  const auto b = j["bootstrap"];
  j.erase("bootstrap");
  EXPECT_EQ(j, plain);
  EXPECT_EQ(b["replicates"], 8);
  EXPECT_EQ(b["scheme"], "subsample");
  EXPECT_EQ(b["subsample_fraction"], 0.5);
  EXPECT_EQ(b["replicate_samples"], 200);
  EXPECT_EQ(b["seed"], 3);
  EXPECT_EQ(b["confidence"], 0.95);
  EXPECT_EQ(b["n_samples"], 400);
  // The scores match and nothing is skipped: only the note on the subsample size.
  ASSERT_EQ(b["notes"].size(), 1u) << b["notes"];
  EXPECT_EQ(b["notes"][0].get<std::string>().rfind(
                "bootstrap: replicate scores are computed on 200 of the 400 samples", 0),
            0u);
  // etran_lda, etran_energy, knn and the zoo-level etran.
  ASSERT_EQ(b["metrics"].size(), 4u);
  EXPECT_TRUE(b["metrics"]["etran"]["zoo"].get<bool>());
  for (const auto& [metric, m] : b["metrics"].items()) {
    EXPECT_EQ(m["n_models"], 3) << metric;
    EXPECT_EQ(m["valid_replicates"], 8) << metric;
    EXPECT_NEAR(m["weighted_tau"].get<double>(),
                plain["metrics"][metric]["weighted_tau"].get<double>(), 1e-12)
        << metric;
    double total = 0;
    for (const auto& [model, e] : m["models"].items()) {
      const double mean = e["mean"].get<double>();
      EXPECT_LE(e["interval"][0].get<double>(), mean) << metric << " " << model;
      EXPECT_GE(e["interval"][1].get<double>(), mean) << metric << " " << model;
      if (!m["zoo"].get<bool>()) {
        EXPECT_NEAR(e["score"].get<double>(), e["scores_csv"].get<double>(), 1e-12);
      }
      total += e["p_first"].get<double>();
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << metric;
    EXPECT_LE(m["weighted_tau_interval"][0].get<double>(), m["weighted_tau_mean"].get<double>());
    EXPECT_GE(m["weighted_tau_interval"][1].get<double>(), m["weighted_tau_mean"].get<double>());
  }
  // MobileNetV1 0.75 dominates ResNet-20 at 32 px on these photos (etran_lda 0.75 vs 0.25 on the
  // full 1000 rows): first in every replicate, and the probe's best model.
  const auto& lda = b["metrics"]["etran_lda"];
  EXPECT_EQ(lda["models"]["imagenet_mobilenet_v1_075_192"]["p_first"], 1.0);
  EXPECT_EQ(lda["p_top1_best"], 1.0);
  EXPECT_EQ(lda["models"].begin().key(), "imagenet_mobilenet_v1_075_192");  // best score first
}

TEST(CliEvaluateBootstrap, SameSeedSameOutputOtherSeedOtherReplicates) {
  const CliRun a = run_cli(zoo().boot(5, "--seed 1 --format csv"));
  const CliRun b = run_cli(zoo().boot(5, "--seed 1 --format csv"));
  const CliRun c = run_cli(zoo().boot(5, "--seed 2 --format csv"));
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  // The first block (the evaluation of scores.csv) does not depend on the seed.
  EXPECT_EQ(a.out.substr(0, a.out.find("\n\n")), c.out.substr(0, c.out.find("\n\n")));
}

TEST(CliEvaluateBootstrap, CsvAppendsALongFormatBlockAfterTheUnchangedOne) {
  const CliRun plain = run_cli(zoo().args() + " --format csv");
  const CliRun r = run_cli(zoo().boot(4, "--format csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::size_t gap = r.out.find("\n\n");
  ASSERT_NE(gap, std::string::npos);
  EXPECT_EQ(r.out.substr(0, gap + 1), plain.out);
  const std::string block = r.out.substr(gap + 2);
  EXPECT_EQ(block.substr(0, block.find('\n')),
            "metric,quantity,model,original,mean,lower,upper,probability,replicates");
  // 4 metrics x (weighted_tau + kendall_tau + 3 models) rows after the header.
  EXPECT_EQ(test::count_lines(block), 1 + 4 * 5);
}

TEST(CliEvaluateBootstrap, TableShowsTheBootstrapSections) {
  const CliRun r = run_cli(zoo().boot(3));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bootstrap: 3 replicates (subsamples of 200 of the N = 400 target samples, "
                       "50% of each class without replacement, seed 0), 95% percentile intervals"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("P(first)"), std::string::npos);
  EXPECT_NE(r.out.find("P(top1=best)"), std::string::npos);
}

TEST(CliEvaluateBootstrap, WithReplacementSchemesKeepNAndNoteShiftedMetrics) {
  const auto j = json_of(run_cli(zoo().boot(6, "--format json --bootstrap-scheme stratified")));
  EXPECT_EQ(j["bootstrap"]["scheme"], "stratified");
  EXPECT_FALSE(j["bootstrap"].contains("subsample_fraction"));
  EXPECT_EQ(j["bootstrap"]["replicate_samples"], 400);
  // Every note is a shift note whose claim holds: |mean - original| > sd for the named models.
  for (const auto& note : j["bootstrap"]["notes"]) {
    const std::string text = note.get<std::string>();
    EXPECT_NE(text.find("further from the original score than one replicate standard"),
              std::string::npos)
        << text;
  }
  int shifted = 0;
  for (const auto& [metric, m] : j["bootstrap"]["metrics"].items())
    for (const auto& [model, e] : m["models"].items())
      if (std::abs(e["mean"].get<double>() - e["score"].get<double>()) > e["sd"].get<double>()) {
        ++shifted;
        EXPECT_NE(j["bootstrap"]["notes"].dump().find("metric '" + metric + "'"), std::string::npos)
            << metric;
      }
  EXPECT_GT(shifted, 0);  // etran_lda gains from the tighter resampled classes
  const CliRun iid = run_cli(zoo().boot(2, "--format csv --bootstrap-scheme iid"));
  EXPECT_EQ(iid.code, 0) << iid.err;
  const CliRun t = run_cli(zoo().boot(2, "--bootstrap-scheme stratified"));
  EXPECT_NE(t.out.find("bootstrap: 2 replicates (stratified resampling of the N = 400 target "
                       "samples, seed 0)"),
            std::string::npos)
      << t.out;
}

TEST(CliEvaluateBootstrap, SubsampleFractionSetsTheReplicateSize) {
  const CliRun t = run_cli(zoo().boot(2, "--subsample-fraction 0.75 --format json"));
  const auto j = json_of(t);
  EXPECT_EQ(j["bootstrap"]["subsample_fraction"], 0.75);
  EXPECT_EQ(j["bootstrap"]["replicate_samples"], 300);
}

TEST(CliEvaluateBootstrap, ReplicateFileHoldsEveryScoreAndAgreesWithTheSummary) {
  test::TempDir out;
  const std::string path = out.file("reps.csv");
  const auto j = json_of(run_cli(
      zoo().boot(6, "--format json --confidence 0.8 --bootstrap-replicates " + quote(path))));
  const CsvTable t = read_csv_table(path);
  ASSERT_EQ(t.rows.size(), 6u * 3 * 4);
  std::map<std::pair<std::string, std::string>, std::vector<double>> v;
  for (std::size_t r = 0; r < t.rows.size(); ++r)
    v[{t.nonempty(r, t.column("metric")), t.nonempty(r, t.column("model"))}].push_back(
        t.number(r, t.column("score")));
  for (const auto& [metric, m] : j["bootstrap"]["metrics"].items())
    for (const auto& [model, e] : m["models"].items()) {
      const auto& x = v.at({metric, model});
      ASSERT_EQ(x.size(), 6u);
      double mean = 0;
      for (double s : x) mean += s / 6;
      EXPECT_NEAR(e["mean"].get<double>(), mean, 1e-12 * std::max(1.0, std::abs(mean)));
      // numpy.percentile(x, [10, 90]) (linear) == the interval at confidence 0.8.
      EXPECT_NEAR(e["interval"][0].get<double>(), percentile_linear(x, 10), 1e-12);
      EXPECT_NEAR(e["interval"][1].get<double>(), percentile_linear(x, 90), 1e-12);
    }
}

TEST(CliEvaluateBootstrap, UnknownMetricsAreNotedAndSkippedAndMismatchesNoted) {
  std::string scores = test::read_bytes(zoo().file("scores.csv"));
  for (const auto& [model, acc] : kProbe)
    scores += model + ",my_metric," + std::to_string(acc) + "\n";
  // A knn score that the features do not give.
  scores.replace(scores.find(",knn,"), 5, ",knn,1");
  test::write_bytes(zoo().file("scores_extra.csv"), scores);
  const auto j = json_of(run_cli(zoo().args("scores_extra.csv") + " --bootstrap 2 --features-dir " +
                                 quote(zoo().dir()) + " --format json"));
  EXPECT_FALSE(j["bootstrap"]["metrics"].contains("my_metric"));
  EXPECT_TRUE(j["metrics"].contains("my_metric"));
  const std::string notes = j["bootstrap"]["notes"].dump();
  EXPECT_NE(notes.find("not in tlkit's metric registry"), std::string::npos) << notes;
  EXPECT_NE(notes.find("my_metric"), std::string::npos) << notes;
  EXPECT_NE(notes.find("differs from"), std::string::npos) << notes;
}

TEST(CliEvaluateBootstrap, SharedLabelsFileAndLogitsForLeepAsInTheExample) {
  // examples/clothing-features: one labels.npy for all models, logits.npy for two of them.
  test::TempDir dir;
  const std::vector<std::int64_t> y = load_npy(kClothing + "/labels.npy").labels();
  std::string scores = "model,metric,score\n";
  for (const std::string model : {"cifar10_resnet20", "human_faceres"}) {
    const NpyArray logits = load_npy(kClothing + "/" + model + "/logits.npy");
    const FeatureView lv = logits.features();
    // Softmax written out here, independently of tlkit::softmax_rows.
    std::vector<double> p(static_cast<std::size_t>(lv.rows * lv.cols));
    for (std::int64_t i = 0; i < lv.rows; ++i) {
      double mx = lv.at(i, 0), sum = 0;
      for (std::int64_t j = 1; j < lv.cols; ++j) mx = std::max(mx, lv.at(i, j));
      for (std::int64_t j = 0; j < lv.cols; ++j) sum += std::exp(lv.at(i, j) - mx);
      for (std::int64_t j = 0; j < lv.cols; ++j)
        p[i * lv.cols + j] = std::exp(lv.at(i, j) - mx) / sum;
    }
    ScoreInputs in;
    in.labels = LabelView{y.data(), static_cast<std::int64_t>(y.size())};
    in.probs = FeatureView::row_major(p.data(), lv.rows, lv.cols);
    scores += fmt::format("{},leep,{:.17g}\n", model, score(in, {"leep"}).metrics[0].score);
  }
  test::write_bytes(dir.file("scores.csv"), scores);
  test::write_bytes(dir.file("truth.csv"),
                    "model,accuracy\ncifar10_resnet20,0.47\nhuman_faceres,0.38\n");
  const auto j =
      json_of(run_cli("evaluate --scores " + quote(dir.file("scores.csv")) + " --truth " +
                      quote(dir.file("truth.csv")) + " --bootstrap 2 --features-dir " +
                      quote(kClothing) + " --format json"));
  const auto& leep = j["bootstrap"]["metrics"]["leep"];
  for (const auto& [model, e] : leep["models"].items())
    EXPECT_NEAR(e["score"].get<double>(), e["scores_csv"].get<double>(),
                1e-9 * std::abs(e["scores_csv"].get<double>()))
        << model;
  EXPECT_EQ(j["bootstrap"]["notes"].dump().find("differs from"), std::string::npos);
}

using test::expect_usage_error;

// tlkit rank's feature cache as --features-dir: DIR/<model>/<key>/ entries with meta.json. Each
// model's entry for the listing every model has (the most recent such listing) is read, so the
// output is the extract layout's; an older listing of one model, a regression entry and an
// unfinished entry (no meta.json) are passed over; models with no common listing are an error.
TEST(CliEvaluateBootstrap, ReadsRankFeatureCacheEntriesOfTheSharedListing) {
  namespace fs = std::filesystem;
  const Zoo& z = zoo();
  test::TempDir c;
  const std::string cache = c.path() + "/cache";
  auto entry = [&](const std::string& model, const std::string& key, const std::string& listing,
                   const std::string& task, bool meta) {
    const std::string e = cache + "/" + model + "/" + key;
    fs::create_directories(e);
    fs::copy_file(z.dir() + "/" + model + "/features.npy", e + "/features.npy");
    fs::copy_file(z.dir() + "/" + model + "/labels.npy",
                  e + (task == "classification" ? "/labels.npy" : "/targets.npy"));
    if (meta)
      test::write_bytes(e + "/meta.json", "{\"data\": {\"listing_sha256\": \"" + listing +
                                              "\", \"task\": \"" + task + "\"}}");
  };
  // An old listing (written first) that only one model has, garbage-free other entries.
  entry("cifar10_resnet20", "00000000000000aa", "0ld0", "classification", true);
  // Older features of another listing, shared by all, then the shared newest one.
  for (const auto& [model, acc] : kProbe)
    entry(model, "1111111111111111", "aaaa", "classification", true);
  for (const auto& [model, acc] : kProbe)
    entry(model, "2222222222222222", "bbbb", "classification", true);
  // Corrupt the older shared listing's features: reading them would change the output.
  for (const auto& [model, acc] : kProbe) {
    const std::vector<float> zeros(400 * 4, 0.0f);
    save_npy(cache + "/" + model + "/1111111111111111/features.npy", zeros.data(), {400, 4});
  }
  entry("cifar10_resnet20", "3333333333333333", "cccc", "regression", true);
  entry("cifar10_resnet20", "4444444444444444", "dddd", "classification", false);
  // Make "bbbb" the newest listing whatever the file system's time resolution.
  for (const auto& [model, acc] : kProbe)
    fs::last_write_time(cache + "/" + model + "/2222222222222222/meta.json",
                        fs::file_time_type::clock::now() + std::chrono::hours(1));
  const CliRun from_extract = run_cli(z.boot(4, "--format csv"));
  const CliRun from_cache =
      run_cli(z.args() + " --bootstrap 4 --features-dir " + quote(cache) + " --format csv");
  ASSERT_EQ(from_cache.code, 0) << from_cache.err;
  EXPECT_EQ(from_cache.out, from_extract.out);
  // The JSON output's bootstrap notes say which listing was read.
  const auto j = json_of(
      run_cli(z.args() + " --bootstrap 4 --features-dir " + quote(cache) + " --format json"));
  const std::string notes = j["bootstrap"]["notes"].dump();
  EXPECT_NE(notes.find("read as tlkit rank's feature cache (3 model(s)); listing bbbb, the most "
                       "recently written of the 2 listing(s) every model has"),
            std::string::npos)
      << notes;

  // No listing common to every model.
  test::TempDir d;
  const std::string apart = d.path() + "/cache";
  fs::copy(cache, apart, fs::copy_options::recursive);
  for (const char* key : {"1111111111111111", "2222222222222222"})
    fs::remove_all(apart + "/cifar10_resnet20/" + key);
  expect_usage_error(z.args() + " --bootstrap 2 --features-dir " + quote(apart),
                     "the models' feature-cache entries describe no common dataset listing");
}

TEST(CliEvaluateBootstrap, BadInputsExitTwoWithOneLineAndNothingOnStdout) {
  const Zoo& z = zoo();
  expect_usage_error(z.boot(0), "--bootstrap: the number of replicates must be at least 1, got 0");
  expect_usage_error(z.boot(-3), "at least 1, got -3");
  expect_usage_error(z.args() + " --bootstrap 5", "--bootstrap needs --features-dir");
  expect_usage_error(z.args() + " --features-dir " + quote(z.dir()),
                     "--features-dir is only used with --bootstrap K");
  expect_usage_error(z.args() + " --seed 4", "--seed is only used with --bootstrap K");
  expect_usage_error(z.boot(2, "--confidence 1.5"), "--confidence");
  expect_usage_error(z.boot(2, "--bootstrap-scheme bayesian"), "unknown scheme 'bayesian'");
  expect_usage_error(z.boot(2, "--bootstrap-scheme stratified --subsample-fraction 0.3"),
                     "--subsample-fraction is only used with --bootstrap-scheme subsample");
  expect_usage_error(z.boot(2, "--bootstrap-scheme subsample --subsample-fraction 0"),
                     "--subsample-fraction: must be in (0, 1], got 0");
  expect_usage_error(z.args() + " --bootstrap 2 --features-dir " + quote(z.file("nowhere")),
                     "is not a folder");

  // A model folder missing.
  test::TempDir d;
  std::filesystem::copy(z.dir(), d.path() + "/feats", std::filesystem::copy_options::recursive);
  std::filesystem::remove_all(d.path() + "/feats/cifar10_resnet20");
  expect_usage_error(z.args() + " --bootstrap 2 --features-dir " + quote(d.path() + "/feats"),
                     "no folder for model 'cifar10_resnet20'");

  // Labels of one model in another order.
  test::TempDir e;
  std::filesystem::copy(z.dir(), e.path() + "/feats", std::filesystem::copy_options::recursive);
  std::vector<std::int64_t> shuffled = z.labels();
  std::swap(shuffled[0], shuffled.back());
  const std::string bad = e.path() + "/feats/imagenet_mobilenet_v1_075_192/labels.npy";
  save_npy(bad, shuffled.data(), {static_cast<std::int64_t>(shuffled.size())});
  expect_usage_error(z.args() + " --bootstrap 2 --features-dir " + quote(e.path() + "/feats"),
                     "model 'imagenet_mobilenet_v1_075_192': " + bad + " differs from");

  // Fewer labels in one model.
  save_npy(bad, shuffled.data(), {static_cast<std::int64_t>(shuffled.size()) - 1});
  expect_usage_error(z.args() + " --bootstrap 2 --features-dir " + quote(e.path() + "/feats"),
                     "has 399 labels but");

  // leep needs logits.npy, which the folder lacks.
  std::string scores = "model,metric,score\n";
  for (const auto& [model, acc] : kProbe) scores += model + ",leep,-1\n";
  test::write_bytes(d.file("leep.csv"), scores);
  expect_usage_error("evaluate --scores " + quote(d.file("leep.csv")) + " --truth " +
                         quote(z.file("truth.csv")) + " --bootstrap 2 --features-dir " +
                         quote(z.dir()),
                     "logits.npy does not exist");
}

}  // namespace
}  // namespace tlkit

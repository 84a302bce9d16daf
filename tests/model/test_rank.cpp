// tlkit rank's library: zoo manifests, the feature cache (reuse, invalidation, interruption and
// resume), per-model failures, agreement with score() on the same features, and the ordering.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "model/sha256.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"
#include "tlkit/model/image_dataset.h"
#include "tlkit/model/rank.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return test::data_path("model/models/" + name + ".pt");
}

std::string entry(const std::string& name, const std::string& file, const std::string& kind,
                  const std::string& more = "") {
  return "{\"name\": \"" + name + "\", \"file\": \"" + file + "\", \"kind\": \"" + kind + "\"" +
         more + "}";
}

std::string manifest(const std::vector<std::string>& entries) {
  std::string s = "{\"models\": [";
  for (std::size_t i = 0; i < entries.size(); ++i) s += (i ? ", " : "") + entries[i];
  return s + "]}";
}

ZooManifest image_zoo(const test::TempDir& t, const std::string& tuple_path) {
  test::write_bytes(t.file("zoo.json"),
                    manifest({entry("tuple", tuple_path, "image",
                                    ", \"input_size\": 32, \"feature_dim\": 8, \"logits_dim\": 3"),
                              entry("plain", fixture("features_only"), "image",
                                    ", \"input_size\": 32, \"feature_dim\": 8"),
                              entry("words", fixture("text_stats"), "text")}));
  return read_zoo_manifest(t.file("zoo.json"));
}

RankOptions image_options(const std::string& cache) {
  RankOptions o;
  o.data = test::data_path("model/images");
  o.extract.split = "train";
  o.extract.batch = 4;
  o.metrics = "logme,leep,hscore";
  o.cache_dir = cache;
  return o;
}

TEST(ZooManifest, ResolvesFilesAndKeepsTheOtherFields) {
  test::TempDir t;
  fs::create_directories(t.file("models/image"));
  fs::copy_file(fixture("tuple"), t.file("models/image/a.pt"));
  fs::copy_file(fixture("tuple"), t.file("models/b.pt"));
  // The kit's layout: zoo.json in models/, files named from the folder above ("models/...").
  test::write_bytes(t.file("models/zoo.json"),
                    manifest({entry("a", "models/image/a.pt", "image",
                                    ", \"input_size\": 32, \"licence\": \"MIT\""),
                              entry("b", "b.pt", "image",
                                    ", \"input_size\": 16, \"mean\": [0.5, 0.5, 0.5], \"std\": "
                                    "[0.25, 0.25, 0.25]")}));
  const ZooManifest z = read_zoo_manifest(t.file("models/zoo.json"));
  ASSERT_EQ(z.models.size(), 2u);
  EXPECT_TRUE(fs::equivalent(z.models[0].file, t.file("models/image/a.pt")));
  EXPECT_TRUE(fs::equivalent(z.models[1].file, t.file("models/b.pt")));
  EXPECT_EQ(z.models[0].extra_json, "{\"licence\":\"MIT\"}");
  EXPECT_EQ(z.models[1].input_size, 16);
  EXPECT_EQ(z.models[1].mean, (std::vector<float>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(z.models[0].logits_dim, 0);
}

TEST(ZooManifest, BadManifestsNameTheModelAndTheField) {
  const std::string ok = entry("a", fixture("tuple"), "image", ", \"input_size\": 32");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"models\": [", "not valid JSON"},
      {"[]", "\"models\" array"},
      {"{\"models\": []}", "is empty"},
      {manifest({entry("a", "missing.pt", "image", ", \"input_size\": 32")}),
       "models[0] (a): model file"},
      {manifest({ok, ok}), "models[1] (a): duplicate name 'a'"},
      {manifest({entry("a", fixture("tuple"), "audio")}), "kind 'audio' is not one of image, text"},
      {manifest({entry("a", fixture("tuple"), "image")}), "image models need \"input_size\""},
      {manifest({entry("a/b", fixture("tuple"), "image", ", \"input_size\": 32")}),
       "name 'a/b' must be"},
      {manifest({entry("a", fixture("tuple"), "image", ", \"input_size\": \"32\"")}),
       "\"input_size\" must be an integer"},
      {manifest({entry("a", fixture("tuple"), "image", ", \"input_size\": 32, \"mean\": [1, 2]")}),
       "\"mean\" must be an array of 3 numbers"},
      {manifest(
           {entry("a", fixture("tuple"), "image", ", \"input_size\": 32, \"mean\": [1, 2, 3]")}),
       "both \"mean\" and \"std\""},
      {"{\"models\": [{\"file\": \"x.pt\", \"kind\": \"image\"}]}", "models[0]: missing \"name\""},
  };
  for (const auto& [text, expect] : cases) {
    const std::string e = test::input_error_of([&] { parse_zoo_manifest(text, "z.json"); });
    EXPECT_NE(e.find(expect), std::string::npos) << text << "\n" << e;
    EXPECT_EQ(e.rfind("z.json", 0), 0u) << e;
  }
}

TEST(Rank, ScoresEqualScoreOnTheSameFeaturesAndTheCacheGivesTheSameAnswer) {
  test::TempDir t;
  const ZooManifest zoo = image_zoo(t, fixture("tuple"));
  const RankOptions o = image_options(t.file("cache"));
  const RankResult a = rank_zoo(zoo, o);
  EXPECT_EQ(a.kind, "image");
  ASSERT_EQ(a.models.size(), 2u);  // the text model is left out, with a note
  ASSERT_FALSE(a.notes.empty());
  EXPECT_NE(a.notes.back().find("1 text model(s)"), std::string::npos) << a.notes.back();
  for (const RankedModel& m : a.models) {
    EXPECT_FALSE(m.cached);
    EXPECT_TRUE(m.error.empty()) << m.error;
    // The cache entry is what tlkit extract writes; score() on it gives the same numbers.
    const NpyArray f = load_npy(m.cache_path + "/features.npy");
    const std::vector<std::int64_t> y = load_npy(m.cache_path + "/labels.npy").labels();
    ScoreInputs in{f.features(), LabelView{y.data(), static_cast<std::int64_t>(y.size())}, {}};
    const ScoreReport s = score(in, {"logme", "hscore"});
    EXPECT_EQ(m.scores.at("logme"), s.metrics[0].score) << m.name;
    EXPECT_EQ(m.scores.at("hscore"), s.metrics[1].score) << m.name;
    // meta.json records the model's hash (computed once, for the key and for meta.json).
    const auto meta = nlohmann::json::parse(test::read_bytes(m.cache_path + "/meta.json"));
    EXPECT_EQ(meta["model"]["sha256"], file_sha256(m.file)) << m.name;
    EXPECT_EQ(m.sha256, file_sha256(m.file)) << m.name;  // in the output too (provenance)
  }
  EXPECT_TRUE(std::isfinite(a.models[0].scores.at("leep")));
  EXPECT_TRUE(std::isnan(a.models[1].scores.at("leep")));  // no logits: NaN, ranked last
  EXPECT_EQ(a.ranking.at("leep").back(), "plain");

  const RankResult b = rank_zoo(zoo, o);
  for (std::size_t i = 0; i < b.models.size(); ++i) {
    EXPECT_TRUE(b.models[i].cached) << b.models[i].name;
    for (const std::string& metric : a.metrics) {
      const double x = a.models[i].scores.at(metric), y = b.models[i].scores.at(metric);
      EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y))) << metric;
    }
  }
  EXPECT_EQ(a.ranking, b.ranking);
}

TEST(Rank, TheCacheIsRedoneWhenTheModelTheSamplesOrThePreprocessingChange) {
  test::TempDir t;
  fs::copy_file(fixture("tuple"), t.file("m.pt"));
  const ZooManifest zoo = image_zoo(t, t.file("m.pt"));
  RankOptions o = image_options(t.file("cache"));
  o.models = {"tuple"};
  EXPECT_FALSE(rank_zoo(zoo, o).models[0].cached);
  EXPECT_TRUE(rank_zoo(zoo, o).models[0].cached);
  o.extract.sample.limit = 5;  // other samples
  EXPECT_FALSE(rank_zoo(zoo, o).models[0].cached);
  EXPECT_TRUE(rank_zoo(zoo, o).models[0].cached);
  o.extract.model_options.optimization = Optimization::kNone;  // other preprocessing/run
  EXPECT_FALSE(rank_zoo(zoo, o).models[0].cached);
  // Another model under the same file name (same shapes, other weights).
  fs::copy_file(fixture("relu6_pool"), t.file("m.pt"), fs::copy_options::overwrite_existing);
  const RankResult r = rank_zoo(zoo, o);
  EXPECT_FALSE(r.models[0].cached);
  EXPECT_EQ(fs::path(r.models[0].cache_path).parent_path().filename(), "tuple");
  // A damaged entry (features.npy truncated) is redone, not trusted.
  test::write_bytes(r.models[0].cache_path + "/features.npy", "\x93NUMPY");
  EXPECT_FALSE(rank_zoo(zoo, o).models[0].cached);
}

TEST(Rank, AnInterruptedRunKeepsTheFinishedModelsAndResumes) {
  test::TempDir t;
  const ZooManifest zoo = image_zoo(t, fixture("tuple"));
  RankOptions o = image_options(t.file("cache"));
  int finished = 0;
  RankEvents ev;
  ev.model_finished = [&](const RankedModel&) { ++finished; };
  o.extract.cancelled = [&] { return finished >= 1; };  // Ctrl-C during the second model
  EXPECT_THROW(rank_zoo(zoo, o, ev), Interrupted);
  EXPECT_EQ(finished, 1);
  // The second model's entry has no meta.json (written last), so it does not count as done.
  bool second_complete = false;
  if (fs::exists(t.file("cache/plain")))
    for (const auto& e : fs::recursive_directory_iterator(t.file("cache/plain")))
      second_complete = second_complete || e.path().filename() == "meta.json";
  EXPECT_FALSE(second_complete);
  o.extract.cancelled = nullptr;
  const RankResult r = rank_zoo(zoo, o);
  EXPECT_TRUE(r.models[0].cached);
  EXPECT_FALSE(r.models[1].cached);
}

TEST(Rank, AFailingModelIsReportedAndTheOthersAreRanked) {
  test::TempDir t;
  test::write_bytes(t.file("zoo.json"),
                    manifest({entry("bad", fixture("throws"), "image", ", \"input_size\": 32"),
                              entry("shape", fixture("tuple"), "image",
                                    ", \"input_size\": 32, \"feature_dim\": 9"),
                              entry("good", fixture("tuple"), "image", ", \"input_size\": 32")}));
  const ZooManifest zoo = read_zoo_manifest(t.file("zoo.json"));
  const RankResult r = rank_zoo(zoo, image_options(""));
  ASSERT_EQ(r.models.size(), 3u);
  EXPECT_NE(r.models[0].error.find("forward failed"), std::string::npos) << r.models[0].error;
  EXPECT_NE(r.models[1].error.find("the zoo entry 'shape' says feature_dim 9"), std::string::npos)
      << r.models[1].error;
  EXPECT_TRUE(r.models[2].error.empty());
  EXPECT_TRUE(r.models[2].cache_path.empty());  // no cache asked for
  EXPECT_EQ(r.ranking.at("logme").front(), "good");
  // Every model failing is an error (the first failure).
  RankOptions o = image_options("");
  o.models = {"bad"};
  EXPECT_NE(test::input_error_of([&] { rank_zoo(zoo, o); }).find("forward failed"),
            std::string::npos);
  o.models = {"nope"};
  EXPECT_NE(test::input_error_of([&] { rank_zoo(zoo, o); }).find("--models nope"),
            std::string::npos);
  o.models = {};
  o.metrics = "logme,nonsense";
  EXPECT_NE(test::input_error_of([&] { rank_zoo(zoo, o); }).find("nonsense"), std::string::npos);
}

TEST(Rank, AMetricThatCannotRunIsNaNWithANoteAndTheOthersAreKept) {
  test::TempDir t;
  const ZooManifest zoo = image_zoo(t, fixture("tuple"));
  RankOptions o = image_options("");
  // NLEEP needs 5 C mixture components: more than the fixture's few images.
  o.metrics = "logme,nleep,hscore";
  const RankResult r = rank_zoo(zoo, o);
  ASSERT_EQ(r.models.size(), 2u);
  for (const RankedModel& m : r.models) {
    EXPECT_TRUE(m.error.empty()) << m.error;
    EXPECT_TRUE(std::isnan(m.scores.at("nleep"))) << m.name;
    EXPECT_TRUE(std::isfinite(m.scores.at("logme"))) << m.name;
    EXPECT_TRUE(std::isfinite(m.scores.at("hscore"))) << m.name;
    bool noted = false;
    for (const std::string& note : m.notes)
      noted = noted || note.find("nleep: not computed: nleep: ") == 0;
    EXPECT_TRUE(noted) << m.name;
  }
  // The same scores as without the failing metric.
  o.metrics = "logme,hscore";
  const RankResult ok = rank_zoo(zoo, o);
  for (std::size_t i = 0; i < ok.models.size(); ++i) {
    EXPECT_EQ(ok.models[i].scores.at("logme"), r.models[i].scores.at("logme"));
    EXPECT_EQ(ok.models[i].scores.at("hscore"), r.models[i].scores.at("hscore"));
  }
  // Every metric failing fails the model, and a zoo of failed models is an error.
  o.metrics = "nleep";
  EXPECT_NE(test::input_error_of([&] { rank_zoo(zoo, o); }).find("mixture components"),
            std::string::npos);
}

TEST(Rank, TextZoosRankOnTextAndZooLevelMetricsAreFormed) {
  test::TempDir t;
  test::write_bytes(
      t.file("zoo.json"),
      manifest({entry("words", fixture("text_stats"), "text"),
                entry("words2", fixture("text_stats"), "text", ", \"features_output\": 1"),
                entry("img", fixture("tuple"), "image", ", \"input_size\": 32")}));
  RankOptions o;
  o.data = test::data_path("model/text/trec12.txt");
  o.metrics = "logme,ncti";
  const ZooManifest zoo = read_zoo_manifest(t.file("zoo.json"));
  const RankResult r = rank_zoo(zoo, o);
  EXPECT_EQ(r.kind, "text");
  ASSERT_EQ(r.models.size(), 2u);
  EXPECT_EQ(r.models[0].d, 5);
  EXPECT_EQ(r.models[1].d, 2);  // the second output
  EXPECT_EQ(r.metrics,
            (std::vector<std::string>{"logme", "ncti_seli", "ncti_ncc", "ncti_vc", "ncti"}));
  // NCTI = minmax(seli) + minmax(ncc) - minmax(vc) over the two models: each min-max term is 0
  // for the smaller and 1 for the larger component.
  const auto& a = r.models[0].scores;
  const auto& b = r.models[1].scores;
  const auto term = [](double x, double y) { return x > y ? 1.0 : 0.0; };
  EXPECT_EQ(a.at("ncti"), term(a.at("ncti_seli"), b.at("ncti_seli")) +
                              term(a.at("ncti_ncc"), b.at("ncti_ncc")) -
                              term(a.at("ncti_vc"), b.at("ncti_vc")));
  EXPECT_EQ(b.at("ncti"), term(b.at("ncti_seli"), a.at("ncti_seli")) +
                              term(b.at("ncti_ncc"), a.at("ncti_ncc")) -
                              term(b.at("ncti_vc"), a.at("ncti_vc")));
  // ETran's energy term is undefined below 200 samples: no etran, and a note says why.
  o.metrics = "etran";
  const RankResult e = rank_zoo(zoo, o);
  EXPECT_TRUE(std::isnan(e.models[0].scores.at("etran")));
  EXPECT_NE(e.notes.back().find("etran needs its components"), std::string::npos);
}

// The bundled real example (examples/zoo: three pretrained models, examples/clothing-images: 120
// photos). A model read back from the cache runs no extraction, which is what set LibTorch's and
// BLAS's threads; before rank set the BLAS threads itself, the cached run scored on OpenBLAS's
// default thread count and differed from the fresh run by up to 4e-13 relative with --threads 1.
// The BLAS threads are left at 2 between the runs, as OpenBLAS starts on a 2-core machine.
// Regression and multi-label CSV listings: every model is scored by LogME over the target
// columns (the metric that takes real-valued targets), the others are left out with a note, and
// the cache holds targets.npy, keyed apart from a class listing of the same file.
TEST(Rank, RegressionAndMultiLabelTargetsAreScoredByLogmeAndTheRestLeftOut) {
  test::TempDir t;
  const ZooManifest zoo = image_zoo(t, fixture("tuple"));
  const ImageListing images = list_images(test::data_path("model/images"), "train");
  std::string reg = "path,size,weight\n", multi = "path,round,dark\n", classes = "path,label\n";
  std::vector<double> want;
  for (std::size_t i = 0; i < images.samples.size(); ++i) {
    const ImageSample& s = images.samples[i];
    const double size = 0.5 * static_cast<double>(s.label) + 0.25 * static_cast<double>(i % 3);
    const double weight = -1.5 + static_cast<double>(i % 5);
    reg += fmt::format("{},{},{}\n", s.path, size, weight);
    multi += fmt::format("{},{},{}\n", s.path, s.label % 2, i % 3 == 0 ? 1 : 0);
    classes += fmt::format("{},{}\n", s.path, i % 2);
    want.insert(want.end(), {size, weight});
  }
  test::write_bytes(t.file("reg.csv"), reg);
  test::write_bytes(t.file("multi.csv"), multi);
  RankOptions o = image_options(t.file("cache"));
  o.data = t.file("reg.csv");
  o.extract.split.clear();
  o.extract.task = Task::kRegression;
  o.metrics.clear();  // the default list: logme applies, leep, nce, ... do not
  const RankResult a = rank_zoo(zoo, o);
  EXPECT_EQ(a.task, Task::kRegression);
  EXPECT_EQ(a.target_names, (std::vector<std::string>{"size", "weight"}));
  EXPECT_EQ(a.metrics, std::vector<std::string>{"logme"});
  const auto note = std::find_if(a.notes.begin(), a.notes.end(), [](const std::string& n) {
    return n.rfind(
               "regression targets: scored with logme; left out (they need class labels): "
               "leep, nce",
               0) == 0;
  });
  EXPECT_NE(note, a.notes.end()) << ::testing::PrintToString(a.notes);
  ASSERT_EQ(a.models.size(), 2u);
  for (const RankedModel& m : a.models) {
    ASSERT_TRUE(m.error.empty()) << m.error;
    // The entry holds the CSV's targets, and LogME on them is the model's score.
    std::int64_t k = 0;
    const std::vector<double> targets = load_npy(m.cache_path + "/targets.npy").targets(&k);
    EXPECT_EQ(k, 2);
    EXPECT_EQ(targets, want);
    EXPECT_FALSE(fs::exists(m.cache_path + "/labels.npy"));
    const NpyArray f = load_npy(m.cache_path + "/features.npy");
    const LogmeResult l =
        logme(f.features(), TargetView{targets.data(), f.rows(), k, k, 1}, LogmeOptions{});
    // (rank's BLAS thread count may differ from this test's: equal to rounding)
    EXPECT_TRUE(test::near_rel(m.scores.at("logme"), l.score, 1e-12)) << m.name;
    EXPECT_EQ(m.scores.size(), 1u);
  }
  const RankResult cached = rank_zoo(zoo, o);
  for (std::size_t i = 0; i < a.models.size(); ++i) {
    EXPECT_TRUE(cached.models[i].cached);
    EXPECT_EQ(cached.models[i].scores.at("logme"), a.models[i].scores.at("logme"));
  }
  // Named metrics that need classes are refused, naming them.
  RankOptions named = o;
  named.metrics = "logme,hscore";
  EXPECT_NE(test::input_error_of([&] { rank_zoo(zoo, named); })
                .find("--metric logme,hscore: hscore needs class labels, and these are "
                      "regression targets (metrics that take them: logme)"),
            std::string::npos);
  // "all" means the metrics that apply.
  RankOptions all = o;
  all.metrics = "all";
  EXPECT_EQ(rank_zoo(zoo, all).metrics, std::vector<std::string>{"logme"});

  // Multi-label 0/1 columns: the same scoring, on other targets.
  RankOptions m = o;
  m.data = t.file("multi.csv");
  m.extract.task = Task::kMultiLabel;
  const RankResult b = rank_zoo(zoo, m);
  EXPECT_EQ(b.task, Task::kMultiLabel);
  EXPECT_EQ(b.target_names, (std::vector<std::string>{"round", "dark"}));
  EXPECT_NE(b.models[0].cache_path, a.models[0].cache_path);
  EXPECT_NE(b.models[0].scores.at("logme"), a.models[0].scores.at("logme"));

  // The same file as a class listing (integer values) and as one regression target: the same
  // files.txt text, two cache entries.
  test::write_bytes(t.file("int.csv"), classes);
  RankOptions c = image_options(t.file("cache"));
  c.data = t.file("int.csv");
  c.extract.split.clear();
  c.metrics = "logme";
  RankOptions r = c;
  r.extract.task = Task::kRegression;
  const RankResult as_classes = rank_zoo(zoo, c), as_targets = rank_zoo(zoo, r);
  EXPECT_NE(as_classes.models[0].cache_path, as_targets.models[0].cache_path);
  EXPECT_TRUE(fs::exists(as_classes.models[0].cache_path + "/labels.npy"));
  EXPECT_TRUE(fs::exists(as_targets.models[0].cache_path + "/targets.npy"));
}

TEST(Rank, FreshAndCachedScoresAreBitIdentical) {
  const std::string examples = TLKIT_EXAMPLES_DIR;
  if (!fs::exists(examples + "/zoo/zoo.json") || !fs::exists(examples + "/clothing-images"))
    GTEST_SKIP() << "no bundled example zoo in " << examples;
  test::TempDir t;
  const ZooManifest zoo = read_zoo_manifest(examples + "/zoo/zoo.json");
  RankOptions o;
  o.data = examples + "/clothing-images";
  o.metrics = "all";
  o.cache_dir = t.file("cache");
  o.extract.threads = 1;
  const RankResult fresh = rank_zoo(zoo, o);
  set_blas_threads(2);
  const RankResult cached = rank_zoo(zoo, o);
  ASSERT_EQ(fresh.models.size(), cached.models.size());
  ASSERT_GE(fresh.models.size(), 2u);
  int compared = 0;
  for (std::size_t i = 0; i < fresh.models.size(); ++i) {
    EXPECT_FALSE(fresh.models[i].cached);
    EXPECT_TRUE(cached.models[i].cached) << cached.models[i].name;
    for (const auto& [metric, x] : fresh.models[i].scores) {
      const double y = cached.models[i].scores.at(metric);
      if (std::isnan(x) && std::isnan(y)) continue;
      // Bit-identical: compare the representations, not within a tolerance.
      EXPECT_EQ(std::memcmp(&x, &y, sizeof x), 0)
          << fresh.models[i].name << " " << metric << ": " << x << " fresh, " << y << " cached";
      ++compared;
    }
  }
  EXPECT_GE(compared, 30);
  EXPECT_EQ(fresh.ranking, cached.ranking);
}

// A logistic fit that reaches its iteration cap keeps its score and says so in the model's notes.
TEST(Rank, AnUnconvergedLogisticFitIsANoteOnItsModel) {
  test::TempDir t;
  const ZooManifest zoo = image_zoo(t, fixture("tuple"));
  RankOptions o = image_options("");
  o.metrics = "logistic";
  o.params.set("logistic", "max_iterations", "1");
  const RankResult r = rank_zoo(zoo, o);
  for (const RankedModel& m : r.models) {
    EXPECT_TRUE(m.error.empty()) << m.error;
    EXPECT_TRUE(std::isfinite(m.scores.at("logistic"))) << m.name;
    ASSERT_EQ(m.notes.size(), 1u) << m.name;
    EXPECT_EQ(m.notes[0].rfind("logistic: not converged: L-BFGS reached "
                               "--logistic-max-iterations 1",
                               0),
              0u)
        << m.notes[0];
  }
}

TEST(Rank, OrderIsByDirectionWithNaNLastAndTiesStable) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  EXPECT_EQ(rank_order(names, {1, nan, 3, 1}, true),
            (std::vector<std::string>{"c", "a", "d", "b"}));
  EXPECT_EQ(rank_order(names, {1, nan, 3, 1}, false),
            (std::vector<std::string>{"a", "d", "c", "b"}));
}

}  // namespace
}  // namespace tlkit::model

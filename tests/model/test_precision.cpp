// Tests of --precision (src/model/torchscript_model.cpp): bfloat16 forward under LibTorch's CPU
// autocast, the automatic choice on the first batch, the cache key and the ranking.
//
// References: float32 features of the same fixture models (tests/data/model/models, made by
// tools/export_test_models.py; the float32 path equals PyTorch's outputs, test_extractor.cpp).
// bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.002 per value); through a few
// layers the fixtures' features move by 0.26-0.39 % in relative Frobenius norm (measured with
// tlkit extract on the 6 fixture images), so they must stay within kDefaultPrecisionTolerance
// (0.02) of float32's, and must differ from them (which shows that bfloat16 was applied at all).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/rank.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;
using tlkit::test::data_path;
using tlkit::test::TempDir;

ExtractOptions options(const std::string& model, Precision p,
                       Optimization o = Optimization::kFreeze) {
  ExtractOptions opt;
  opt.model = data_path("model/models/" + model + ".pt");
  opt.data = data_path("model/images");
  opt.split = "train";
  opt.input_size = 32;
  opt.batch = 4;
  opt.threads = 1;
  opt.decode_threads = 1;
  opt.model_options.optimization = o;
  opt.model_options.precision = p;
  return opt;
}

// ||a - b||_F / ||b||_F in double.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

const char* const kModels[] = {"tuple", "features_only", "relu6_pool", "no_batchnorm"};

TEST(Precision, ParsesAndPrintsTheNames) {
  for (Precision p : {Precision::kFp32, Precision::kBf16, Precision::kAuto})
    EXPECT_EQ(parse_precision(to_string(p)), p);
  const std::string e = test::input_error_of([] { parse_precision("fp16"); });
  EXPECT_NE(e.find("--precision fp16: expected fp32, bf16 or auto"), std::string::npos) << e;
}

TEST(Precision, Bf16FeaturesAreCloseToFp32ButNotEqual) {
  for (const char* name : kModels) {
    for (Optimization o : {Optimization::kNone, Optimization::kFreeze}) {
      const ExtractResult a = extract_features(options(name, Precision::kFp32, o));
      const ExtractResult b = extract_features(options(name, Precision::kBf16, o));
      EXPECT_EQ(a.precision, Precision::kFp32);
      EXPECT_EQ(b.precision, Precision::kBf16);
      EXPECT_FALSE(b.precision_check.measured);
      ASSERT_EQ(a.features.size(), b.features.size()) << name;
      const double err = relative_error(b.features, a.features);
      EXPECT_GT(err, 0.0) << name << ": bfloat16 was not applied";
      EXPECT_LE(err, kDefaultPrecisionTolerance) << name;
      if (a.has_logits) {
        const double lerr = relative_error(b.logits, a.logits);
        EXPECT_GT(lerr, 0.0) << name;
        EXPECT_LE(lerr, kDefaultPrecisionTolerance) << name;
      }
      EXPECT_EQ(a.labels, b.labels);
    }
  }
}

// The autocast state is scoped: a float32 run after a bfloat16 one in the same process gives the
// float32 features bit for bit, as does --precision fp32 given explicitly and the default.
TEST(Precision, Fp32IsUnchangedAndAutocastDoesNotLeak) {
  for (const char* name : kModels) {
    ExtractOptions d = options(name, Precision::kFp32);
    d.model_options = ModelOptions{};  // the defaults
    d.model_options.optimization = Optimization::kFreeze;
    EXPECT_EQ(d.model_options.precision, Precision::kFp32);
    const ExtractResult a = extract_features(d);
    const ExtractResult b = extract_features(options(name, Precision::kBf16));
    const ExtractResult c = extract_features(options(name, Precision::kFp32));
    EXPECT_EQ(a.features, c.features) << name;
    EXPECT_EQ(a.logits, c.logits) << name;
    EXPECT_NE(a.features, b.features) << name;
  }
}

TEST(Precision, AutoPicksFp32AtToleranceZeroAndBf16AtALargeOne) {
  for (const char* name : kModels) {
    const ExtractResult fp32 = extract_features(options(name, Precision::kFp32));
    const ExtractResult bf16 = extract_features(options(name, Precision::kBf16));
    ExtractOptions o = options(name, Precision::kAuto);
    o.model_options.precision_tolerance = 0.0;
    const ExtractResult a = extract_features(o);
    EXPECT_EQ(a.precision, Precision::kFp32) << name;
    ASSERT_TRUE(a.precision_check.measured);
    EXPECT_EQ(a.precision_check.chosen, Precision::kFp32);
    EXPECT_EQ(a.precision_check.tolerance, 0.0);
    EXPECT_GT(a.precision_check.relative_error, 0.0);
    EXPECT_LE(a.precision_check.min_cosine, 1.0 + 1e-12);
    EXPECT_GT(a.precision_check.min_cosine, 0.99);
    EXPECT_EQ(a.features, fp32.features) << name;  // every batch in float32
    ASSERT_FALSE(a.model_notes.empty());
    EXPECT_NE(a.model_notes.back().find("--precision auto"), std::string::npos);

    o.model_options.precision_tolerance = 1.0;
    const ExtractResult b = extract_features(o);
    EXPECT_EQ(b.precision, Precision::kBf16) << name;
    EXPECT_EQ(b.precision_check.chosen, Precision::kBf16);
    EXPECT_EQ(b.features, bf16.features) << name;  // every batch, the first too, in bfloat16
    // Both measured the same first batch; the measurement is the Frobenius error of its rows.
    EXPECT_NEAR(b.precision_check.relative_error, a.precision_check.relative_error, 1e-12);
    const std::size_t first = static_cast<std::size_t>(4 * fp32.features_dim);
    EXPECT_NEAR(b.precision_check.relative_error,
                relative_error({bf16.features.begin(), bf16.features.begin() + first},
                               {fp32.features.begin(), fp32.features.begin() + first}),
                1e-6);
  }
}

// optimize_for_inference's oneDNN operators are outside autocast: bf16 with kFull would be float32
// in disguise, so the model runs frozen, with a note.
TEST(Precision, Bf16WithFullOptimizationRunsFrozen) {
  for (Precision p : {Precision::kBf16, Precision::kAuto}) {
    ExtractOptions o = options("tuple", p, Optimization::kFull);
    o.model_options.precision_tolerance = 1.0;
    const ExtractResult r = extract_features(o);
    EXPECT_EQ(r.optimization, Optimization::kFreeze);
    EXPECT_EQ(r.precision, Precision::kBf16);
    ASSERT_FALSE(r.model_notes.empty());
    EXPECT_NE(r.model_notes.front().find("with --optimize full"), std::string::npos)
        << r.model_notes.front();
    EXPECT_EQ(r.features, extract_features(options("tuple", Precision::kBf16)).features);
  }
}

TEST(Precision, AutoAndItsMeasurementAreInMetaJson) {
  TempDir t;
  ExtractOptions o = options("tuple", Precision::kAuto);
  o.model_options.precision_tolerance = 1.0;
  const ExtractResult r = extract_features(o);
  write_extract_outputs(r, o, t.file("out"));
  const nlohmann::json meta = tlkit::test::load_json(t.file("out/meta.json"));
  EXPECT_EQ(meta["model"]["precision_requested"], "auto");
  EXPECT_EQ(meta["model"]["precision"], "bf16");
  EXPECT_EQ(meta["model"]["precision_check"]["chosen"], "bf16");
  EXPECT_EQ(meta["model"]["precision_check"]["tolerance"], 1.0);
  EXPECT_EQ(meta["model"]["precision_check"]["relative_error"].get<double>(),
            r.precision_check.relative_error);
}

TEST(Precision, RefusesANegativeTolerance) {
  ExtractOptions o = options("tuple", Precision::kAuto);
  o.model_options.precision_tolerance = -0.1;
  const std::string e = test::input_error_of([&] { extract_features(o); });
  EXPECT_NE(e.find("--precision-tolerance must be a finite number >= 0, got -0.1"),
            std::string::npos)
      << e;
}

// The fixture models as a zoo; `plain` (features_only) has the features of `tuple`, so it is left
// out where the order matters.
ZooManifest zoo(const TempDir& t, bool with_plain = true) {
  const auto entry = [](const std::string& name, const std::string& model, const char* more) {
    return "{\"name\": \"" + name + "\", \"file\": \"" +
           data_path("model/models/" + model + ".pt") +
           "\", \"kind\": \"image\", \"input_size\": 32" + more + "}";
  };
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [" + entry("tuple", "tuple", "") + ", " +
                        (with_plain ? entry("plain", "features_only", "") + ", " : "") +
                        entry("relu6", "relu6_pool", "") + ", " +
                        entry("nobn", "no_batchnorm", "") + "]}");
  return read_zoo_manifest(t.file("zoo.json"));
}

RankOptions rank_options(const std::string& cache, Precision p) {
  RankOptions o;
  o.data = data_path("model/images");
  o.extract.split = "train";
  o.extract.batch = 4;
  o.extract.model_options.precision = p;
  o.metrics = "logme";
  o.cache_dir = cache;
  return o;
}

TEST(Precision, TheCacheKeyHoldsThePrecision) {
  TempDir t;
  const ZooManifest z = zoo(t);
  const RankResult a = rank_zoo(z, rank_options(t.file("cache"), Precision::kFp32));
  const RankResult b = rank_zoo(z, rank_options(t.file("cache"), Precision::kBf16));
  const RankResult c = rank_zoo(z, rank_options(t.file("cache"), Precision::kBf16));
  const RankResult d = rank_zoo(z, rank_options(t.file("cache"), Precision::kFp32));
  RankOptions auto_options = rank_options(t.file("cache"), Precision::kAuto);
  const RankResult e = rank_zoo(z, auto_options);
  auto_options.extract.model_options.precision_tolerance = 0.5;
  const RankResult f = rank_zoo(z, auto_options);
  for (std::size_t i = 0; i < z.models.size(); ++i) {
    EXPECT_FALSE(a.models[i].cached);
    EXPECT_FALSE(b.models[i].cached) << "bf16 took fp32's cache entry";
    EXPECT_TRUE(c.models[i].cached);
    EXPECT_TRUE(d.models[i].cached);
    EXPECT_FALSE(e.models[i].cached);
    EXPECT_FALSE(f.models[i].cached) << "another tolerance, another entry";
    EXPECT_NE(a.models[i].cache_path, b.models[i].cache_path);
    EXPECT_EQ(a.models[i].cache_path, d.models[i].cache_path);
    EXPECT_EQ(b.models[i].cache_path, c.models[i].cache_path);
    // The automatic choice is a note of the model in rank's results.
    bool said = false;
    for (const auto& n : e.models[i].notes) said |= n.find("--precision auto") != std::string::npos;
    EXPECT_TRUE(said) << z.models[i].name;
  }
}

// The LogME order of the fixture zoo is the same in bfloat16: float32 scores nobn -0.5538, tuple
// -0.5756, relu6 -0.5872 (0.012-0.022 apart), which bfloat16 moves by less than 0.001.
TEST(Precision, Bf16KeepsTheLogmeRankingOfTheFixtureZoo) {
  TempDir t;
  const ZooManifest z = zoo(t, false);
  const RankResult a = rank_zoo(z, rank_options("", Precision::kFp32));
  const RankResult b = rank_zoo(z, rank_options("", Precision::kBf16));
  ASSERT_EQ(a.ranking.at("logme").size(), 3u);
  EXPECT_EQ(a.ranking.at("logme"), b.ranking.at("logme"));
  for (std::size_t i = 0; i < z.models.size(); ++i) {
    const double x = a.models[i].scores.at("logme"), y = b.models[i].scores.at("logme");
    EXPECT_NE(x, y) << z.models[i].name;
    EXPECT_NEAR(x, y, 0.005) << z.models[i].name;
  }
}

}  // namespace
}  // namespace tlkit::model

// tlkit/core/bootstrap.h: resampling (determinism, class counts, pairing across models), the
// duplicate rule of knn against a brute-force computation, and the summary statistics against
// NumPy/SciPy (tests/data/bootstrap/refs.json, tools/bootstrap_refs.py). Real features: the
// bundled examples/clothing-features (8 pretrained models on 1000 real photos).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "test_support.h"
#include "tlkit/core/bootstrap.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace tlkit {
namespace {

const std::string kClothing = std::string(TLKIT_EXAMPLES_DIR) + "/clothing-features";

// Features of one example model, restricted to `per_class` rows of each class (the first ones).
struct Subset {
  std::vector<float> features;
  std::vector<std::int64_t> labels;
  std::int64_t n = 0, d = 0;
  FeatureView view() const { return FeatureView::row_major(features.data(), n, d); }
  LabelView label_view() const { return LabelView{labels.data(), n}; }
};

Subset load_subset(const std::string& model, std::int64_t per_class) {
  const NpyArray f = load_npy(kClothing + "/" + model + "/features.npy");
  const std::vector<std::int64_t> all = load_npy(kClothing + "/labels.npy").labels();
  const FeatureView v = f.features();
  Subset s;
  s.d = v.cols;
  std::map<std::int64_t, std::int64_t> taken;
  for (std::int64_t i = 0; i < v.rows; ++i) {
    if (taken[all[i]]++ >= per_class) continue;
    for (std::int64_t j = 0; j < v.cols; ++j) s.features.push_back(static_cast<float>(v.at(i, j)));
    s.labels.push_back(all[i]);
    ++s.n;
  }
  return s;
}

TEST(Bootstrap, UniformIndexStaysInRangeAndCoversIt) {
  std::mt19937_64 rng(1);
  std::vector<int> seen(7, 0);
  for (int t = 0; t < 7000; ++t) {
    const std::uint64_t x = uniform_index(rng, 7);
    ASSERT_LT(x, 7u);
    ++seen[x];
  }
  for (int c : seen) EXPECT_GT(c, 800);  // expected 1000 each
  EXPECT_EQ(uniform_index(rng, 1), 0u);
}

TEST(Bootstrap, StratifiedKeepsEveryClassCountAndDrawsWithinTheClass) {
  const std::vector<std::int64_t> labels{5, 5, 2, 9, 2, 5, 9, 9, 9, 2, 5, 5};
  const LabelView lv{labels.data(), static_cast<std::int64_t>(labels.size())};
  std::mt19937_64 rng(3);
  std::map<std::int64_t, int> expected;
  for (auto l : labels) ++expected[l];
  bool some_duplicate = false;
  for (int r = 0; r < 50; ++r) {
    const auto idx = bootstrap_indices(lv, BootstrapScheme::kStratified, rng);
    ASSERT_EQ(idx.size(), labels.size());
    EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
    std::map<std::int64_t, int> got;
    for (auto i : idx) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, 12);
      ++got[labels[i]];
    }
    EXPECT_EQ(got, expected);
    some_duplicate |= std::adjacent_find(idx.begin(), idx.end()) != idx.end();
  }
  EXPECT_TRUE(some_duplicate);  // with replacement
}

TEST(Bootstrap, SubsampleDrawsDistinctRowsAFractionOfEachClass) {
  const std::vector<std::int64_t> labels{5, 5, 2, 9, 2, 5, 9, 9, 9, 2, 5, 5, 2};
  const LabelView lv{labels.data(), static_cast<std::int64_t>(labels.size())};
  std::mt19937_64 rng(4);
  // Classes: 2 x4, 5 x5, 9 x4; half of each rounds to 2, 3 (llround(2.5) = 3), 2.
  const std::map<std::int64_t, int> expected{{2, 2}, {5, 3}, {9, 2}};
  std::set<std::vector<std::int64_t>> seen;
  for (int r = 0; r < 30; ++r) {
    const auto idx = bootstrap_indices(lv, BootstrapScheme::kSubsample, rng, nullptr, 0.5);
    ASSERT_EQ(idx.size(), 7u);
    EXPECT_TRUE(std::adjacent_find(idx.begin(), idx.end(), std::greater_equal<>()) == idx.end());
    std::map<std::int64_t, int> got;
    for (auto i : idx) ++got[labels[i]];
    EXPECT_EQ(got, expected);
    seen.insert(idx);
  }
  EXPECT_GT(seen.size(), 10u);
  // Fraction 1 is the whole sample; a tiny fraction still keeps one row per class.
  EXPECT_EQ(bootstrap_indices(lv, BootstrapScheme::kSubsample, rng, nullptr, 1.0).size(), 13u);
  EXPECT_EQ(bootstrap_indices(lv, BootstrapScheme::kSubsample, rng, nullptr, 0.01).size(), 3u);
  EXPECT_THROW(bootstrap_indices(lv, BootstrapScheme::kSubsample, rng, nullptr, 0.0), InputError);
}

TEST(Bootstrap, IidRedrawsReplicatesThatMissAClass) {
  // One sample of class 7 among 20: an iid resample misses it with probability (19/20)^20 = 36%.
  std::vector<std::int64_t> labels(20, 0);
  labels[13] = 7;
  const LabelView lv{labels.data(), 20};
  std::mt19937_64 rng(0);
  std::int64_t redrawn = 0;
  for (int r = 0; r < 40; ++r) {
    const auto idx = bootstrap_indices(lv, BootstrapScheme::kIid, rng, &redrawn);
    ASSERT_EQ(idx.size(), 20u);
    EXPECT_TRUE(std::count(idx.begin(), idx.end(), 13) >= 1);
  }
  EXPECT_GT(redrawn, 0);
}

TEST(Bootstrap, SameSeedSameIndicesOtherSeedOtherIndices) {
  const std::vector<std::int64_t> labels = test::make_labels(200, 4, 1);
  const LabelView lv{labels.data(), 200};
  std::mt19937_64 a(42), b(42), c(43);
  for (int r = 0; r < 5; ++r) {
    const auto ia = bootstrap_indices(lv, BootstrapScheme::kStratified, a);
    EXPECT_EQ(ia, bootstrap_indices(lv, BootstrapScheme::kStratified, b));
    EXPECT_NE(ia, bootstrap_indices(lv, BootstrapScheme::kStratified, c));
  }
}

TEST(Bootstrap, SoftmaxRowsSumToOneAndKeepOrder) {
  const std::vector<float> logits{1.f, 2.f, 3.f, 1000.f, 0.f, -1000.f};
  const auto p = softmax_rows(FeatureView::row_major(logits.data(), 2, 3));
  const double e = std::exp(1.0), z = 1 + e + e * e;
  EXPECT_NEAR(p[0], 1 / z, 1e-15);
  EXPECT_NEAR(p[2], e * e / z, 1e-15);
  EXPECT_DOUBLE_EQ(p[3], 1.0);  // no overflow
  EXPECT_EQ(p[5], 0.0);
}

// knn on a resample with sample ids: a row's copies are not its neighbours. Checked against a
// brute-force leave-copies-out 1-NN written here (float64 distances, lowest index on ties).
TEST(Bootstrap, KnnExcludesCopiesOfTheSameSampleBruteForce) {
  const Subset s = load_subset("cifar10_resnet20", 12);  // 120 real rows, 10 classes, D = 64
  std::mt19937_64 rng(7);
  for (int r = 0; r < 3; ++r) {
    const auto idx = bootstrap_indices(s.label_view(), BootstrapScheme::kStratified, rng);
    const std::int64_t n = s.n, d = s.d;
    std::vector<float> f(static_cast<std::size_t>(n * d));
    std::vector<std::int64_t> y(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      std::copy_n(s.features.begin() + idx[i] * d, d, f.begin() + i * d);
      y[i] = s.labels[idx[i]];
    }
    int correct = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      double best = std::numeric_limits<double>::infinity();
      std::int64_t arg = -1;
      for (std::int64_t j = 0; j < n; ++j) {
        if (idx[j] == idx[i]) continue;  // itself or a copy of the same photo
        double dist = 0;
        for (std::int64_t k = 0; k < d; ++k) {
          const double t = static_cast<double>(f[i * d + k]) - f[j * d + k];
          dist += t * t;
        }
        if (dist < best) best = dist, arg = j;
      }
      correct += y[arg] == y[i];
    }
    ScoreInputs in;
    in.features = FeatureView::row_major(f.data(), n, d);
    in.labels = LabelView{y.data(), n};
    in.sample_ids = idx.data();
    const double with_ids = score(in, {"knn"}).metrics[0].score;
    EXPECT_NEAR(with_ids, 100.0 * correct / n, 1e-9) << "replicate " << r;
    // Without the ids a duplicated row finds its copy at distance 0 (same label): higher.
    in.sample_ids = nullptr;
    EXPECT_GT(score(in, {"knn"}).metrics[0].score, with_ids + 5.0);
  }
}

TEST(Bootstrap, SampleIdsOfDistinctRowsChangeNothing) {
  const Subset s = load_subset("cifar10_resnet20", 10);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(s.n));
  for (std::int64_t i = 0; i < s.n; ++i) ids[i] = 1000 + 3 * i;  // all distinct
  ScoreInputs in{s.view(), s.label_view(), {}};
  const auto plain = score(in, {"knn", "logistic", "parc"});
  in.sample_ids = ids.data();
  const auto with_ids = score(in, {"knn", "logistic", "parc"});
  for (std::size_t m = 0; m < 3; ++m)
    EXPECT_EQ(plain.metrics[m].score, with_ids.metrics[m].score) << plain.metrics[m].name;
}

TEST(Bootstrap, LogisticKeepsCopiesOnOneSideOfTheSplit) {
  // Every sample twice, copies adjacent. With ids, the split is that of the 60 distinct samples
  // with each row doubled: the training loss doubles (the same fit as C = 2 on the single rows)
  // and each test sample counts twice, so the accuracy equals logistic with C = 2 on the single
  // rows. Without ids, the alternating split puts one copy of every sample in training and the
  // other in test: the probe is tested on its own training rows.
  const Subset s = load_subset("cifar10_resnet20", 6);  // 60 real rows, 10 classes, D = 64
  std::vector<float> f;
  std::vector<std::int64_t> y, ids;
  for (std::int64_t i = 0; i < s.n; ++i)
    for (int copy = 0; copy < 2; ++copy) {
      f.insert(f.end(), s.features.begin() + i * s.d, s.features.begin() + (i + 1) * s.d);
      y.push_back(s.labels[i]);
      ids.push_back(i);
    }
  const std::int64_t n = 2 * s.n;
  ScoreInputs in{FeatureView::row_major(f.data(), n, s.d), LabelView{y.data(), n}, {}};
  in.sample_ids = ids.data();
  const auto doubled = score(in, {"logistic"}).metrics[0];
  ScoreOptions c2;
  c2.params.set("logistic", "c", "2");
  const auto single = score(ScoreInputs{s.view(), s.label_view(), {}}, {"logistic"}, c2).metrics[0];
  EXPECT_EQ(doubled.details.at("train_samples"), 2 * single.details.at("train_samples"));
  EXPECT_EQ(doubled.details.at("test_samples"), 2 * single.details.at("test_samples"));
  EXPECT_NEAR(doubled.score, single.score, 1e-9);
  in.sample_ids = nullptr;
  const auto leaked = score(in, {"logistic"}).metrics[0];
  EXPECT_GT(leaked.score, doubled.score + 20.0);
}

BootstrapModel model_of(const std::string& name, const Subset& s,
                        std::vector<std::string> metrics) {
  return BootstrapModel{name, s.view(), {}, std::move(metrics)};
}

TEST(Bootstrap, PairedModelsWithIdenticalFeaturesGetIdenticalScoresInEveryReplicate) {
  const Subset a = load_subset("imagenet_mobilenet_v1_025_128", 20);  // 200 rows, D = 256
  const Subset b = load_subset("cifar10_resnet20", 20);
  const std::vector<std::string> metrics{"etran_lda", "knn", "hscore"};
  BootstrapOptions opt;
  opt.replicates = 6;
  opt.seed = 11;
  opt.scheme = BootstrapScheme::kStratified;  // with copies, the harder case for pairing
  const BootstrapResult r = bootstrap_scores(
      {model_of("a", a, metrics), model_of("a_copy", a, metrics), model_of("b", b, metrics)},
      a.label_view(), opt);
  ASSERT_EQ(r.metrics.size(), 3u);
  for (const auto& s : r.metrics) {
    ASSERT_EQ(s.models, (std::vector<std::string>{"a", "a_copy", "b"}));
    EXPECT_EQ(s.original[0], s.original[1]);
    bool varies = false;
    for (std::int64_t k = 0; k < r.replicates; ++k) {
      EXPECT_EQ(s.replicate(k, 0), s.replicate(k, 1)) << s.metric << " replicate " << k;
      varies |= s.replicate(k, 0) != s.original[0];
    }
    EXPECT_TRUE(varies) << s.metric;
  }
}

TEST(Bootstrap, ReplicateEqualsScoreOnTheGatheredRows) {
  // Replicate k is score() on the rows of the k-th index draw from mt19937_64(seed).
  const Subset a = load_subset("darknet_tiny_imagenet", 15);
  for (const auto scheme : {BootstrapScheme::kStratified, BootstrapScheme::kSubsample}) {
    BootstrapOptions opt;
    opt.replicates = 3;
    opt.seed = 5;
    opt.scheme = scheme;
    opt.fraction = 0.6;
    const BootstrapResult r =
        bootstrap_scores({model_of("m", a, {"logme", "knn", "gbc"})}, a.label_view(), opt);
    std::mt19937_64 rng(5);
    for (std::int64_t k = 0; k < 3; ++k) {
      const auto idx = bootstrap_indices(a.label_view(), scheme, rng, nullptr, 0.6);
      const std::int64_t n = static_cast<std::int64_t>(idx.size());
      EXPECT_EQ(n, scheme == BootstrapScheme::kSubsample ? 90 : 150);
      EXPECT_EQ(r.replicate_rows, n);
      std::vector<float> f;
      std::vector<std::int64_t> y;
      for (auto i : idx) {
        f.insert(f.end(), a.features.begin() + i * a.d, a.features.begin() + (i + 1) * a.d);
        y.push_back(a.labels[i]);
      }
      ScoreInputs in{FeatureView::row_major(f.data(), n, a.d), LabelView{y.data(), n}, {}};
      in.sample_ids = idx.data();
      const ScoreReport rep = score(in, {"logme", "knn", "gbc"});
      for (std::size_t m = 0; m < 3; ++m)
        EXPECT_EQ(r.metrics[m].replicate(k, 0), rep.metrics[m].score)
            << rep.metrics[m].name << " " << to_string(scheme);
    }
  }
}

TEST(Bootstrap, DeterministicForASeedAndDifferentForAnother) {
  const Subset a = load_subset("cifar10_resnet20", 15);
  const Subset b = load_subset("doodlenet_quickdraw", 15);
  auto run = [&](std::uint64_t seed) {
    BootstrapOptions opt;
    opt.replicates = 4;
    opt.seed = seed;
    return bootstrap_scores(
        {model_of("a", a, {"knn", "etran_lda"}), model_of("b", b, {"knn", "etran_lda"})},
        a.label_view(), opt);
  };
  const BootstrapResult r1 = run(9), r2 = run(9), r3 = run(10);
  for (std::size_t m = 0; m < r1.metrics.size(); ++m) {
    EXPECT_EQ(r1.metrics[m].values, r2.metrics[m].values);
    EXPECT_NE(r1.metrics[m].values, r3.metrics[m].values);
    EXPECT_EQ(r1.metrics[m].original, r3.metrics[m].original);  // the original sample is fixed
  }
}

TEST(Bootstrap, DominantModelIsFirstInEveryReplicateAndZooMetricsAreRecombined) {
  // Real features: MobileNetV1 0.75 (ImageNet) against ResNet-20 at 32 px (CIFAR-10) on clothing
  // photos; etran_lda 0.754 vs 0.248 on all 1000 rows (examples/clothing-features).
  // 40 per class: the default half-samples keep the 200 rows etran_energy needs.
  const Subset good = load_subset("imagenet_mobilenet_v1_075_192", 40);
  const Subset poor = load_subset("cifar10_resnet20", 40);
  const Subset mid = load_subset("imagenet_mobilenet_v1_025_128", 40);
  const std::vector<std::string> metrics{"etran_lda", "etran_energy"};
  BootstrapOptions opt;
  opt.replicates = 10;
  const BootstrapResult r =
      bootstrap_scores({model_of("good", good, metrics), model_of("poor", poor, metrics),
                        model_of("mid", mid, metrics)},
                       good.label_view(), opt);
  ASSERT_EQ(r.metrics.size(), 3u);
  EXPECT_EQ(r.metrics[2].metric, "etran");
  EXPECT_TRUE(r.metrics[2].zoo);
  const std::map<std::string, double> truth{{"good", 0.76}, {"poor", 0.47}, {"mid", 0.65}};
  const auto sums = summarise_bootstrap(r, truth, 0.95);
  const auto& lda = sums[0];
  ASSERT_EQ(lda.metric, "etran_lda");
  EXPECT_EQ(lda.valid_replicates, 10);
  EXPECT_EQ(lda.models[0].p_first, 1.0);
  EXPECT_EQ(lda.models[1].p_first, 0.0);
  EXPECT_EQ(lda.p_top1_best, 1.0);
  for (const auto& s : sums) {
    double total = 0;
    for (const auto& m : s.models) {
      total += m.p_first;
      EXPECT_LE(m.score.lo, m.score.mean) << s.metric << " " << m.model;
      EXPECT_LE(m.score.mean, m.score.hi) << s.metric << " " << m.model;
      EXPECT_EQ(m.score.count, 10);
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << s.metric;
    EXPECT_LE(s.weighted_tau_boot.lo, s.weighted_tau_boot.mean);
    EXPECT_LE(s.weighted_tau_boot.mean, s.weighted_tau_boot.hi);
  }
}

TEST(Bootstrap, AMetricThatRefusesAResampleIsUndefinedThereAndTheOthersAreKept) {
  // 2 classes x 2 samples, with replacement: in about 1/4 of the replicates each class holds
  // copies of a single sample, so logistic (whose copies stay on one side) has no test sample and
  // refuses; knn is defined in every replicate.
  const std::vector<std::int64_t> y{0, 0, 1, 1};
  const std::vector<double> f = test::make_features(4, 3, y, 2);
  BootstrapOptions opt;
  opt.replicates = 40;
  opt.scheme = BootstrapScheme::kStratified;
  const BootstrapResult r = bootstrap_scores(
      {BootstrapModel{"m", FeatureView::row_major(f.data(), 4, 3), {}, {"knn", "logistic"}}},
      LabelView{y.data(), 4}, opt);
  ASSERT_EQ(r.metrics.size(), 2u);
  EXPECT_EQ(r.metrics[0].failed, 0);
  for (double v : r.metrics[0].values) EXPECT_FALSE(std::isnan(v));
  const auto& lg = r.metrics[1];
  EXPECT_GT(lg.failed, 3);
  EXPECT_LT(lg.failed, 25);
  EXPECT_NE(lg.first_failure.find("no test samples"), std::string::npos) << lg.first_failure;
  EXPECT_EQ(
      std::count_if(lg.values.begin(), lg.values.end(), [](double v) { return std::isnan(v); }),
      lg.failed);
}

TEST(Bootstrap, BadInputs) {
  const Subset a = load_subset("cifar10_resnet20", 5);
  BootstrapOptions opt;
  opt.replicates = 0;
  EXPECT_THROW(bootstrap_scores({model_of("a", a, {"knn"})}, a.label_view(), opt), InputError);
  opt.replicates = 2;
  EXPECT_THROW(bootstrap_scores({}, a.label_view(), opt), InputError);
  const LabelView short_labels{a.labels.data(), a.n - 1};
  EXPECT_THROW(bootstrap_scores({model_of("a", a, {"knn"})}, short_labels, opt), InputError);
  EXPECT_THROW(bootstrap_scores({model_of("a", a, {"nope"})}, a.label_view(), opt), InputError);
  EXPECT_THROW(parse_bootstrap_scheme("bayesian"), InputError);
  EXPECT_EQ(parse_bootstrap_scheme("subsample"), BootstrapScheme::kSubsample);
  opt.scheme = BootstrapScheme::kSubsample;
  opt.fraction = 1.5;
  EXPECT_THROW(bootstrap_scores({model_of("a", a, {"knn"})}, a.label_view(), opt), InputError);
  EXPECT_THROW(bootstrap_interval({1.0, 2.0}, 1.0), InputError);
  EXPECT_THROW(bootstrap_interval({1.0, 2.0}, 0.0), InputError);
}

TEST(Bootstrap, PercentileMatchesNumpyLinear) {
  const auto refs = test::load_json(test::data_path("bootstrap/refs.json"));
  ASSERT_GT(refs["percentile"].size(), 30u);
  for (const auto& c : refs["percentile"]) {
    const auto v = c["values"].get<std::vector<double>>();
    const double q = c["q"].get<double>();
    EXPECT_NEAR(percentile_linear(v, q), c["expected"].get<double>(), 1e-12)
        << "n = " << v.size() << ", q = " << q;
  }
  EXPECT_TRUE(std::isnan(percentile_linear({}, 50)));
}

TEST(Bootstrap, SummaryMatchesNumpyAndScipy) {
  const auto refs = test::load_json(test::data_path("bootstrap/refs.json"));
  ASSERT_EQ(refs["summary"].size(), 4u);
  for (const auto& c : refs["summary"]) {
    const auto reps = c["replicates"].get<std::vector<std::vector<double>>>();
    const auto acc = c["accuracy"].get<std::vector<double>>();
    BootstrapResult r;
    r.replicates = static_cast<std::int64_t>(reps.size());
    BootstrapSeries s;
    s.metric = "m";
    s.higher_is_better = c["higher_is_better"].get<bool>();
    s.original = c["original"].get<std::vector<double>>();
    std::map<std::string, double> truth;
    for (std::size_t i = 0; i < acc.size(); ++i) {
      s.models.push_back("model" + std::to_string(i));
      truth[s.models.back()] = acc[i];
    }
    for (const auto& row : reps) s.values.insert(s.values.end(), row.begin(), row.end());
    r.metrics.push_back(s);
    const auto sum = summarise_bootstrap(r, truth, c["confidence"].get<double>());
    ASSERT_EQ(sum.size(), 1u);
    const auto& e = c["expected"];
    const auto& got = sum[0];
    for (std::size_t i = 0; i < acc.size(); ++i) {
      EXPECT_NEAR(got.models[i].score.mean, e["models"][i]["mean"].get<double>(), 1e-12);
      EXPECT_NEAR(got.models[i].score.lo, e["models"][i]["lo"].get<double>(), 1e-12);
      EXPECT_NEAR(got.models[i].score.sd, e["models"][i]["sd"].get<double>(), 1e-12);
      EXPECT_NEAR(got.models[i].score.hi, e["models"][i]["hi"].get<double>(), 1e-12);
      EXPECT_NEAR(got.models[i].p_first, e["models"][i]["p_first"].get<double>(), 1e-12);
    }
    EXPECT_NEAR(got.weighted_tau, e["weighted_tau"].get<double>(), 1e-12);
    EXPECT_NEAR(got.weighted_tau_boot.mean, e["weighted_tau_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(got.weighted_tau_boot.lo, e["weighted_tau_lo"].get<double>(), 1e-12);
    EXPECT_NEAR(got.weighted_tau_boot.hi, e["weighted_tau_hi"].get<double>(), 1e-12);
    EXPECT_NEAR(got.kendall_tau, e["kendall_tau"].get<double>(), 1e-12);
    EXPECT_NEAR(got.kendall_tau_boot.mean, e["kendall_tau_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(got.kendall_tau_boot.lo, e["kendall_tau_lo"].get<double>(), 1e-12);
    EXPECT_NEAR(got.kendall_tau_boot.hi, e["kendall_tau_hi"].get<double>(), 1e-12);
    EXPECT_NEAR(got.p_top1_best, e["p_top1_best"].get<double>(), 1e-12);
    EXPECT_EQ(got.valid_replicates, r.replicates);
  }
}

TEST(Bootstrap, UndefinedReplicateScoresAreLeftOutOfRankings) {
  BootstrapResult r;
  r.replicates = 3;
  BootstrapSeries s;
  s.metric = "m";
  s.models = {"x", "y"};
  s.original = {2.0, 1.0};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.values = {2.0, 1.0, nan, 3.0, 1.0, 4.0};
  r.metrics.push_back(s);
  const auto sum = summarise_bootstrap(r, {{"x", 0.9}, {"y", 0.8}}, 0.9);
  EXPECT_EQ(sum[0].valid_replicates, 2);
  EXPECT_EQ(sum[0].models[0].p_first, 0.5);
  EXPECT_EQ(sum[0].models[1].p_first, 0.5);
  EXPECT_EQ(sum[0].models[0].score.count, 2);
  EXPECT_EQ(sum[0].models[1].score.count, 3);
  EXPECT_DOUBLE_EQ(sum[0].models[0].score.mean, 1.5);
}

}  // namespace
}  // namespace tlkit

// Tests of zoo-level metrics (src/core/zoo.cpp).
#include <gtest/gtest.h>

#include "test_support.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"
#include "tlkit/core/zoo.h"

namespace tlkit {
namespace {

// lda (.9, .8, .7) -> minmax (1, .5, 0); energy (2, 4, 3) -> (0, 1, .5);
// ETran = .85 lda + .15 energy = (.85, .575, .075). Model D lacks energy and is left out.
TEST(Zoo, EtranCombinesMinMaxNormalisedComponents) {
  const std::map<std::string, std::map<std::string, double>> per_model = {
      {"A", {{"etran_lda", .9}, {"etran_energy", 2}}},
      {"B", {{"etran_lda", .8}, {"etran_energy", 4}}},
      {"C", {{"etran_lda", .7}, {"etran_energy", 3}, {"logme", 1}}},
      {"D", {{"etran_lda", .95}}},
  };
  const auto r = combine_zoo_metrics(per_model);
  ASSERT_EQ(r.count("etran"), 1u);
  const auto& e = r.at("etran");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_NEAR(e.at("A"), .85, 1e-15);
  EXPECT_NEAR(e.at("B"), .575, 1e-15);
  EXPECT_NEAR(e.at("C"), .075, 1e-15);
}

TEST(Zoo, NeedsTwoModelsAndHandlesTies) {
  EXPECT_TRUE(combine_zoo_metrics({{"A", {{"etran_lda", .9}, {"etran_energy", 2}}}}).empty());
  EXPECT_EQ(minmax_normalise({3, 3, 3}), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(minmax_normalise({1, 3, 2}), (std::vector<double>{0, 1, 0.5}));
}

// A zoo of four feature sets for one label set, scored by score() and combined, against
// tools/metrics_numpy.py's ncti_components / etran_components and ncti_combine / etran_combine
// (tests/data/metrics/zoo.json, tools/make_metric_refs.py): NCTI = minmax(S_seli) + minmax(S_ncc)
// - minmax(S_vc), ETran = 0.85 minmax(S_lda) + 0.15 minmax(S_en). The components match to 1e-9
// relative (the per-model fixtures' bound); the zoo scores, in [-1, 2], to 1e-8 absolute.
TEST(Zoo, NctiAndEtranMatchNumpyOnAZoo) {
  const nlohmann::json ref = test::load_json(test::data_path("metrics/zoo.json"));
  const auto labels =
      load_npy(test::data_path("metrics/" + ref.at("labels").get<std::string>())).labels();
  const std::vector<std::string> comps = {"ncti_seli", "ncti_ncc", "ncti_vc", "etran_lda",
                                          "etran_energy"};
  std::map<std::string, std::map<std::string, double>> per_model;
  for (const auto& [model, info] : ref.at("models").items()) {
    const NpyArray f = load_npy(test::data_path("metrics/zoo_" + model + "_features.npy"));
    ScoreInputs in;
    in.features = f.features();
    in.labels = LabelView{labels.data(), static_cast<std::int64_t>(labels.size())};
    const ScoreReport r = score(in, comps, ScoreOptions{});
    for (std::size_t i = 0; i < comps.size(); ++i) {
      const double want = info.at("components").at(comps[i]).get<double>();
      EXPECT_TRUE(test::near_rel(r.metrics.at(i).score, want, 1e-9)) << model << " " << comps[i];
      per_model[model][comps[i]] = r.metrics.at(i).score;
    }
  }
  ASSERT_EQ(per_model.size(), 4u);
  const auto zoo = combine_zoo_metrics(per_model);
  for (const char* name : {"ncti", "etran"}) {
    ASSERT_EQ(zoo.count(name), 1u) << name;
    ASSERT_EQ(zoo.at(name).size(), per_model.size()) << name;
    for (const auto& [model, want] : ref.at(name).items())
      EXPECT_NEAR(zoo.at(name).at(model), want.get<double>(), 1e-8) << name << " " << model;
  }
}

}  // namespace
}  // namespace tlkit

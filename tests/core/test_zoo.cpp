// Tests of zoo-level metrics (src/core/zoo.cpp).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tlkit

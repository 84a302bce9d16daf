// Tests of the metric registry (src/core/metrics.cpp).
#include <gtest/gtest.h>

#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"

namespace tlkit {
namespace {

TEST(Metrics, RegistryHasLogmeWithItsMetadata) {
  const MetricInfo& m = find_metric("logme");
  EXPECT_TRUE(m.higher_is_better);
  EXPECT_TRUE(m.inputs & kNeedsFeatures);
  EXPECT_TRUE(m.inputs & kNeedsLabels);
  EXPECT_FALSE(m.inputs & kNeedsProbs);
  EXPECT_TRUE(m.supports_regression);
  EXPECT_TRUE(m.streaming);
}

TEST(Metrics, NamesAreUnique) {
  const auto& reg = metric_registry();
  for (std::size_t i = 0; i < reg.size(); ++i)
    for (std::size_t j = i + 1; j < reg.size(); ++j) EXPECT_NE(reg[i].name, reg[j].name);
}

TEST(Metrics, ParseListExpandsAllAndDropsDuplicates) {
  EXPECT_EQ(parse_metric_list("logme"), std::vector<std::string>{"logme"});
  EXPECT_EQ(parse_metric_list("logme,logme"), std::vector<std::string>{"logme"});
  EXPECT_EQ(parse_metric_list("all").size(), metric_registry().size());
}

TEST(Metrics, UnknownNamesListTheKnownOnes) {
  try {
    parse_metric_list("logme,leap");
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "--metric: unknown metric 'leap' (known: logme, or all)");
  }
  EXPECT_THROW(parse_metric_list("logme,"), InputError);
}

}  // namespace
}  // namespace tlkit

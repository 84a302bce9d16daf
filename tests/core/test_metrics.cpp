// Tests of the metric registry (src/core/metrics.cpp).
#include <gtest/gtest.h>

#include <algorithm>

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

TEST(Metrics, EveryMetricHasAnImplementationAndValidDefaults) {
  for (const auto& m : metric_registry()) {
    EXPECT_NE(m.compute, nullptr) << m.name;
    MetricParams p;
    for (const auto& param : m.params) {
      // The default must be accepted by the same validation as a user's value.
      EXPECT_NO_THROW(p.set(std::string(m.name), std::string(param.name),
                            std::string(param.default_value)))
          << m.name << "." << param.name;
    }
  }
}

TEST(Metrics, ParamsAreValidated) {
  MetricParams p;
  EXPECT_EQ(p.text("logme", "mode"), "exact");
  p.set("logme", "mode", "thuml");
  EXPECT_EQ(p.text("logme", "mode"), "thuml");
  EXPECT_THROW(p.set("logme", "mode", "fast"), InputError);
  EXPECT_THROW(p.set("logme", "speed", "1"), InputError);
  EXPECT_DOUBLE_EQ(p.number("transrate", "eps"), 1e-4);
  EXPECT_THROW(p.set("transrate", "eps", "1e-4x"), InputError);
  p.set("transrate", "eps", "0.01");
  EXPECT_DOUBLE_EQ(p.number("transrate", "eps"), 0.01);
}

TEST(Metrics, AllSkipsMetricsWhoseInputsAreMissing) {
  const auto no_probs = parse_metric_list("all", kNeedsFeatures | kNeedsLabels);
  EXPECT_EQ(std::count(no_probs.begin(), no_probs.end(), "leep"), 0);
  EXPECT_EQ(std::count(no_probs.begin(), no_probs.end(), "logme"), 1);
  const auto only_probs = parse_metric_list("all", kNeedsProbs | kNeedsLabels);
  EXPECT_EQ(std::count(only_probs.begin(), only_probs.end(), "logme"), 0);
  EXPECT_EQ(std::count(only_probs.begin(), only_probs.end(), "nce"), 1);
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
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("--metric: unknown metric 'leap' (known: logme, leep, ", 0), 0u) << msg;
    EXPECT_NE(msg.find(", or all)"), std::string::npos) << msg;
  }
  EXPECT_THROW(parse_metric_list("logme,"), InputError);
}

}  // namespace
}  // namespace tlkit

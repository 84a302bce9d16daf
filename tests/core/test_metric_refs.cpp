// The metrics of score() against independent NumPy implementations (tools/metrics_numpy.py),
// values in tests/data/metrics/refs.json made by tools/make_metric_refs.py (provenance in
// tests/data/metrics/README.md). The references were checked against scikit-learn and SciPy;
// their own rounding sensitivity is below 1e-12, so 1e-9 relative is a safe bound.
#include <gtest/gtest.h>

#include <optional>

#include "test_support.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace tlkit {
namespace {

struct RefCase {
  NpyArray features, probs;
  std::vector<std::int64_t> labels;
  nlohmann::json values;
  bool has_probs = false;
};

const nlohmann::json& refs() {
  static const nlohmann::json r = test::load_json(test::data_path("metrics/refs.json"));
  return r;
}

RefCase load(const std::string& name) {
  RefCase c;
  const std::string base = test::data_path("metrics/" + name);
  c.features = load_npy(base + "_features.npy");
  c.labels = load_npy(base + "_labels.npy").labels();
  c.values = refs().at("cases").at(name).at("values");
  c.has_probs = !refs()["cases"][name]["probs_shape"].is_null();
  if (c.has_probs) c.probs = load_npy(base + "_probs.npy");
  return c;
}

// key in refs.json -> (metric, parameter settings)
struct Key {
  std::string key, metric;
  std::vector<std::pair<std::string, std::string>> params;
};

const std::vector<Key>& keys() {
  static const std::vector<Key> k = {
      {"leep", "leep", {}},
      {"nce", "nce", {}},
      {"hscore", "hscore", {}},
      {"hscore:google", "hscore", {{"variant", "google"}}},
      {"hscore_shrink", "hscore_shrink", {}},
      {"transrate", "transrate", {}},
      {"transrate:tllib", "transrate", {{"weighting", "tllib"}}},
      {"gbc", "gbc", {}},
      {"gbc:diagonal", "gbc", {{"gaussian", "diagonal"}}},
      {"gbc:spherical_google", "gbc", {{"log_term", "once"}}},
      {"gbc:pca64", "gbc", {{"pca_dims", "64"}}},
      {"sfda", "sfda", {}},
      {"knn", "knn", {}},
      {"parc", "parc", {}},
      {"logistic", "logistic", {}},
      {"etran:lda", "etran_lda", {}},
      {"ncti:seli", "ncti_seli", {}},
      {"ncti:ncc", "ncti_ncc", {}},
      {"ncti:vc", "ncti_vc", {}},
      {"etran:energy", "etran_energy", {}},
      {"logistic:seed1", "logistic", {}},
  };
  return k;
}

class MetricRefs : public ::testing::TestWithParam<std::string> {};

TEST_P(MetricRefs, MatchNumpyReferences) {
  const RefCase c = load(GetParam());
  int checked = 0;
  for (const Key& k : keys()) {
    if (!c.values.contains(k.key) || c.values[k.key].is_null()) continue;
    const MetricInfo& info = find_metric(k.metric);
    if ((info.inputs & kNeedsProbs) && !c.has_probs) continue;
    ScoreInputs in;
    in.labels = LabelView{c.labels.data(), static_cast<std::int64_t>(c.labels.size())};
    in.features = c.features.features();
    if (c.has_probs) in.probs = c.probs.features();
    ScoreOptions opt;
    for (const auto& [p, v] : k.params) opt.params.set(k.metric, p, v);
    if (k.key == "logistic:seed1") opt.seed = 1;
    const double got = score(in, {k.metric}, opt).metrics.at(0).score;
    EXPECT_TRUE(test::near_rel(got, c.values[k.key].get<double>(), 1e-9))
        << GetParam() << " " << k.key;
    ++checked;
  }
  EXPECT_GE(checked, 8) << "too few reference values exercised for " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MetricRefs,
                         ::testing::Values("tall", "f32", "wide", "binary", "singleton",
                                           "noncontig", "smallvar"));

}  // namespace
}  // namespace tlkit

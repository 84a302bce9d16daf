// Metrics defined relative to a zoo of models: each model gets per-model components from
// score(), and the metric's value is formed across the zoo by min-max normalising each component
// and adding them with weights:
//   ETran (Gholami et al., ICCV 2023) = 0.85 minmax(etran_lda) + 0.15 minmax(etran_energy)
//   NCTI (Wang et al., ICCV 2023)     = minmax(ncti_seli) + minmax(ncti_ncc) - minmax(ncti_vc)
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tlkit {

/// A zoo-level metric: name, and the weight of each per-model component (registered metrics).
struct ZooMetric {
  std::string name;
  std::vector<std::pair<std::string, double>> components;
};

/// The zoo-level metrics tlkit knows.
const std::vector<ZooMetric>& zoo_metrics();

/// (v - min) / (max - min); all zeros when every value is equal (no model is distinguished).
std::vector<double> minmax_normalise(const std::vector<double>& v);

/// For each zoo metric whose components are all present for at least 2 models in `per_model`
/// (model -> component -> score), the combined score of each such model (model -> value).
std::map<std::string, std::map<std::string, double>> combine_zoo_metrics(
    const std::map<std::string, std::map<std::string, double>>& per_model);

}  // namespace tlkit

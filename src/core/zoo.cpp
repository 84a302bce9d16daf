#include "tlkit/core/zoo.h"

#include <algorithm>
#include <cmath>

namespace tlkit {

const std::vector<ZooMetric>& zoo_metrics() {
  static const std::vector<ZooMetric> kZoo = {
      {"etran", {{"etran_lda", 0.85}, {"etran_energy", 0.15}}},
      {"ncti", {{"ncti_seli", 1.0}, {"ncti_ncc", 1.0}, {"ncti_vc", -1.0}}},
  };
  return kZoo;
}

std::vector<double> minmax_normalise(const std::vector<double>& v) {
  std::vector<double> out(v.size(), 0.0);
  if (v.empty()) return out;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  if (!(*hi > *lo)) return out;
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = (v[i] - *lo) / (*hi - *lo);
  return out;
}

std::map<std::string, std::map<std::string, double>> combine_zoo_metrics(
    const std::map<std::string, std::map<std::string, double>>& per_model) {
  std::map<std::string, std::map<std::string, double>> result;
  for (const ZooMetric& zm : zoo_metrics()) {
    std::vector<std::string> models;
    for (const auto& [model, comps] : per_model) {
      bool all = true;
      for (const auto& [c, w] : zm.components) {
        auto it = comps.find(c);
        all = all && it != comps.end() && std::isfinite(it->second);
      }
      if (all) models.push_back(model);
    }
    if (models.size() < 2) continue;
    std::vector<double> total(models.size(), 0.0);
    for (const auto& [c, w] : zm.components) {
      std::vector<double> col;
      for (const auto& m : models) col.push_back(per_model.at(m).at(c));
      const std::vector<double> norm = minmax_normalise(col);
      for (std::size_t i = 0; i < models.size(); ++i) total[i] += w * norm[i];
    }
    for (std::size_t i = 0; i < models.size(); ++i) result[zm.name][models[i]] = total[i];
  }
  return result;
}

}  // namespace tlkit

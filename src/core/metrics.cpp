#include "tlkit/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "metric_context.h"
#include "tlkit/core/error.h"

namespace tlkit {

const std::vector<MetricInfo>& metric_registry() {
  static const std::vector<MetricInfo> kRegistry = {
      {"logme",
       "LogME: log maximum evidence of Bayesian linear regression from features to labels",
       "You et al., LogME: Practical Assessment of Pre-trained Models for Transfer Learning, "
       "ICML 2021",
       /*higher_is_better=*/true, kNeedsFeatures | kNeedsLabels, /*supports_regression=*/true,
       /*streaming=*/true,
       {{"mode", "exact",
         "exact: the true maximum evidence; thuml: github.com/thuml/LogME's default code, "
         "reproduced; icml: the ICML 2021 algorithm (TLlib)",
         {"exact", "thuml", "icml"}}},
       &metrics::logme},
      {"leep", "LEEP: log expected empirical prediction from source-class probabilities",
       "Nguyen et al., LEEP: A New Measure to Evaluate Transferability of Learned "
       "Representations, ICML 2020",
       true, kNeedsProbs | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::leep},
      {"nce", "NCE: negative conditional entropy of target labels given source argmax labels",
       "Tran et al., Transferability and Hardness of Supervised Classification Tasks, ICCV 2019",
       true, kNeedsProbs | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::nce},
      {"hscore", "H-score: tr(pinv(cov f) cov E[f|y])",
       "Bao et al., An Information-Theoretic Approach to Transferability in Task Transfer "
       "Learning, ICIP 2019",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true,
       {{"variant", "paper",
         "paper: tr(pinv(cov f) cov g) (TLlib); google: google-research's element-wise "
         "sum of pinv(cov f, rcond 1e-5) * cov g, which only equals it for diagonal covariances",
         {"paper", "google"}}},
       &metrics::hscore},
      {"hscore_shrink", "H-score with a Ledoit-Wolf shrunk feature covariance",
       "Ibrahim, Ponomareva, Mazumder, Newer is not always better: Rethinking transferability "
       "metrics, their peculiarities, stability and performance, ECML-PKDD 2022",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::hscore_shrink},
      {"transrate", "TransRate: coding rate of the features minus that within each class",
       "Huang et al., Frustratingly Easy Transferability Estimation, ICML 2022",
       true, kNeedsFeatures | kNeedsLabels, false, false,
       {{"eps", "1e-4", "distortion eps of the coding rate R(Z, eps)", {}},
        {"weighting", "paper",
         "class term: paper = sum_c (n_c / n) R(Z_c); tllib = unweighted mean over classes",
         {"paper", "tllib"}}},
       &metrics::transrate},
      {"nleep", "NLEEP: LEEP on Gaussian-mixture posteriors of the PCA-reduced features (iterative)",
       "Li et al., Ranking Neural Checkpoints, CVPR 2021",
       true, kNeedsFeatures | kNeedsLabels, false, false,
       {{"variance", "0.8", "PCA keeps the fewest directions explaining more than this fraction", {}},
        {"components_per_class", "5", "mixture components per target class", {}},
        {"log", "yes", "yes: LEEP with the log (the paper); no: without (TencentARC/SFDA's code)",
         {"yes", "no"}},
        {"init", "greedy",
         "k-means++ seeding of the mixture: greedy = sklearn's (the best of 2 + ln K draws per "
         "centre); random = one draw per centre",
         {"greedy", "random"}}},
       &metrics::nleep},
      {"gbc", "GBC: Gaussian Bhattacharyya coefficient between classes (negated overlap)",
       "Pandy et al., Transferability Estimation using Bhattacharyya Class Separability, CVPR 2022",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true,
       {{"gaussian", "spherical", "per-class covariance: spherical or diagonal",
         {"spherical", "diagonal"}},
        {"pca_dims", "0",
         "project the centred features on this many principal directions first, at most "
         "N - 1 and D (asking for D or more still rotates onto the principal axes; 0: no PCA; "
         "the authors' experiments use 64)",
         {}},
        {"log_term", "dims",
         "spherical log-variance term: dims = the Bhattacharyya distance (counted once per "
         "dimension); once = google-research's gbc.py (counted once)",
         {"dims", "once"}}},
       &metrics::gbc},
      {"sfda", "SFDA: self-challenging Fisher discriminant analysis (mean p(y|x) after ConfMix)",
       "Shao et al., Not All Models Are Equal: Predicting Model Transferability in a "
       "Self-challenging Fisher Space, ECCV 2022",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::sfda},
      {"etran_lda",
       "ETran component: mean p(y|x) of the reference's LDA (a nearest-class-mean softmax); "
       "tlkit evaluate combines it with etran_energy across the zoo",
       "Gholami et al., ETran: Energy-Based Transferability Estimation, ICCV 2023",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::etran_lda},
      {"etran_energy",
       "ETran component: mean of the lowest 0.5 % of logsumexp over each feature row (N >= 200)",
       "Gholami et al., ETran: Energy-Based Transferability Estimation, ICCV 2023",
       true, kNeedsFeatures | kNeedsLabels, false, /*streaming=*/true, {}, &metrics::etran_energy},
      {"ncti_seli",
       "NCTI component: nuclear norm of the centred LDA projection of the 64-d PCA features "
       "(tlkit evaluate combines the three NCTI components across the zoo)",
       "Wang et al., How Far Pre-trained Models Are from Neural Collapse on the Target Dataset "
       "Informs their Transferability, ICCV 2023",
       true, kNeedsFeatures | kNeedsLabels, false, false, {}, &metrics::ncti_seli},
      {"ncti_ncc", "NCTI component: mean LDA probability of the true class",
       "Wang et al., ICCV 2023", true, kNeedsFeatures | kNeedsLabels, false, false, {},
       &metrics::ncti_ncc},
      {"ncti_vc",
       "NCTI component: log of the summed nuclear norms of each class's probability rows "
       "(enters NCTI negatively)",
       "Wang et al., ICCV 2023", false, kNeedsFeatures | kNeedsLabels, false, false, {},
       &metrics::ncti_vc},
      {"parc", "PARC: Spearman correlation of feature and label dissimilarity matrices (x100, O(N^2))",
       "Bolya, Mittapalli, Hoffman, Scalable Diverse Model Selection for Accessible Transfer "
       "Learning, NeurIPS 2021",
       true, kNeedsFeatures | kNeedsLabels, false, false,
       {{"pca_dims", "32", "principal directions kept before comparing samples (0: none)", {}}},
       &metrics::parc},
      {"knn", "kNN proxy: leave-one-out 1-nearest-neighbour accuracy in percent (O(N^2 D))",
       "Bolya et al., Scalable Diverse Model Selection for Accessible Transfer Learning, "
       "NeurIPS 2021 (kNN baseline)",
       true, kNeedsFeatures | kNeedsLabels, false, false, {}, &metrics::knn},
      {"logistic",
       "Linear-probe proxy: held-out accuracy (percent) of multinomial logistic regression on a "
       "class-stratified half (--seed picks the half)",
       "Bolya et al., NeurIPS 2021 (SplitLogistic baseline), fitted to convergence",
       true, kNeedsFeatures | kNeedsLabels, false, false,
       {{"c", "1", "inverse L2 regularisation strength (sklearn's C)", {}},
        {"max_iterations", "10000",
         "L-BFGS iteration cap (0: none); when reached, converged: false and a note, and the "
         "accuracy of the fit so far is the score",
         {}}},
       &metrics::logistic},
  };
  return kRegistry;
}

const MetricInfo& find_metric(std::string_view name) {
  const auto& reg = metric_registry();
  auto it = std::find_if(reg.begin(), reg.end(), [&](const MetricInfo& m) { return m.name == name; });
  if (it != reg.end()) return *it;
  std::string known;
  for (const auto& m : reg) known += (known.empty() ? "" : ", ") + std::string(m.name);
  TLKIT_THROW_ARG("--metric: unknown metric '{}' (known: {}, or all)", name, known);
}

std::vector<std::string> parse_metric_list(const std::string& csv, unsigned available_inputs) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= csv.size()) {
    const std::size_t comma = std::min(csv.find(',', start), csv.size());
    const std::string item = csv.substr(start, comma - start);
    if (item == "all") {
      for (const auto& m : metric_registry())
        if ((m.inputs & available_inputs) == m.inputs) out.emplace_back(m.name);
    } else {
      TLKIT_CHECK_ARG(!item.empty(), "--metric: empty name in '{}'", csv);
      out.emplace_back(find_metric(item).name);
    }
    start = comma + 1;
  }
  std::vector<std::string> unique;
  for (auto& m : out)
    if (std::find(unique.begin(), unique.end(), m) == unique.end()) unique.push_back(m);
  return unique;
}

namespace {
const MetricParam& find_param(std::string_view metric, std::string_view param) {
  const MetricInfo& info = find_metric(metric);
  for (const auto& p : info.params)
    if (p.name == param) return p;
  std::string known;
  for (const auto& p : info.params) known += (known.empty() ? "" : ", ") + std::string(p.name);
  TLKIT_THROW_ARG("metric {} has no parameter '{}' (parameters: {})", metric, param,
                  known.empty() ? "none" : known);
}

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}
}  // namespace

void MetricParams::set(const std::string& metric, const std::string& param,
                       const std::string& value) {
  const MetricParam& p = find_param(metric, param);
  // Messages name the option as the CLI spells it (--gbc-pca-dims for gbc.pca_dims).
  std::string flag = "--" + metric + "-" + param;
  std::replace(flag.begin() + 2, flag.end(), '_', '-');
  if (p.choices.empty()) {
    double v;
    TLKIT_CHECK_ARG(parse_number(value, &v), "{}: expected a number, got '{}'", flag, value);
  } else {
    std::string allowed;
    for (const auto& c : p.choices) allowed += (allowed.empty() ? "" : ", ") + std::string(c);
    TLKIT_CHECK_ARG(std::find(p.choices.begin(), p.choices.end(), value) != p.choices.end(),
                    "{}: unknown value '{}' (expected {})", flag, value, allowed);
  }
  values_[metric + "." + param] = value;
}

std::string MetricParams::text(std::string_view metric, std::string_view param) const {
  auto it = values_.find(std::string(metric) + "." + std::string(param));
  if (it != values_.end()) return it->second;
  return std::string(find_param(metric, param).default_value);
}

double MetricParams::number(std::string_view metric, std::string_view param) const {
  double v = 0.0;
  const std::string s = text(metric, param);
  TLKIT_ASSERT(parse_number(s, &v));  // validated by set(), or a registry default
  return v;
}

const char* version() { return TLKIT_VERSION_STRING; }

}  // namespace tlkit

namespace tlkit::metrics {

void note_if_saturated(MetricValue& out, double top, const MetricContext& ctx) {
  if (!(std::abs(out.score - top) <= 1e-6 * std::abs(top))) return;
  out.notes.push_back(fmt::format(
      "at its maximum ({}): the classes are linearly separable in these features{}, so every such "
      "model ties; rank them by another metric (logme, knn, parc)",
      top,
      ctx.n() <= ctx.d()
          ? fmt::format(" (as any labelling is with N = {} <= D = {})", ctx.n(), ctx.d())
          : ""));
}

}  // namespace tlkit::metrics

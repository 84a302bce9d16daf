#include "tlkit/core/bootstrap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "tlkit/core/correlation.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/zoo.h"

namespace tlkit {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

BootstrapScheme parse_bootstrap_scheme(const std::string& s) {
  if (s == "stratified") return BootstrapScheme::kStratified;
  if (s == "iid") return BootstrapScheme::kIid;
  if (s == "subsample") return BootstrapScheme::kSubsample;
  TLKIT_THROW_ARG("--bootstrap-scheme: unknown scheme '{}' (expected stratified, iid or subsample)",
                  s);
}

const char* to_string(BootstrapScheme s) {
  switch (s) {
    case BootstrapScheme::kStratified:
      return "stratified";
    case BootstrapScheme::kIid:
      return "iid";
    case BootstrapScheme::kSubsample:
      return "subsample";
  }
  return "?";
}

std::uint64_t uniform_index(std::mt19937_64& rng, std::uint64_t m) {
  TLKIT_ASSERT(m >= 1);
  // 2^64 mod m, computed in 64 bits as (2^64 - m) mod m.
  const std::uint64_t rem = (0 - m) % m;
  const std::uint64_t limit = rem == 0 ? 0 : 0 - rem;  // 0: every x is accepted
  for (;;) {
    const std::uint64_t x = rng();
    if (limit == 0 || x < limit) return x % m;
  }
}

std::vector<std::int64_t> bootstrap_indices(LabelView labels, BootstrapScheme scheme,
                                            std::mt19937_64& rng, std::int64_t* redrawn,
                                            double fraction) {
  const std::int64_t n = labels.size;
  TLKIT_CHECK_ARG(n >= 1, "labels: need at least 1 sample to resample, got N = {}", n);
  std::map<std::int64_t, std::vector<std::int64_t>> members;  // label -> rows, ascending
  for (std::int64_t i = 0; i < n; ++i) members[labels.data[i]].push_back(i);
  std::vector<std::int64_t> idx;
  idx.reserve(static_cast<std::size_t>(n));
  if (scheme == BootstrapScheme::kSubsample) {
    TLKIT_CHECK_ARG(fraction > 0.0 && fraction <= 1.0,
                    "--subsample-fraction: must be in (0, 1], got {}", fraction);
    for (const auto& [label, rows] : members) {
      // Partial Fisher-Yates: the first m of a uniformly shuffled copy of the class's rows.
      std::vector<std::int64_t> pool = rows;
      const std::size_t m = std::clamp<std::size_t>(
          static_cast<std::size_t>(std::llround(fraction * static_cast<double>(rows.size()))), 1,
          rows.size());
      for (std::size_t t = 0; t < m; ++t) {
        const std::size_t j = t + uniform_index(rng, pool.size() - t);
        std::swap(pool[t], pool[j]);
        idx.push_back(pool[t]);
      }
    }
  } else if (scheme == BootstrapScheme::kStratified) {
    for (const auto& [label, rows] : members)
      for (std::size_t k = 0; k < rows.size(); ++k)
        idx.push_back(rows[uniform_index(rng, rows.size())]);
  } else {
    for (;;) {
      idx.clear();
      std::set<std::int64_t> present;
      for (std::int64_t k = 0; k < n; ++k) {
        idx.push_back(static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(n))));
        present.insert(labels.data[idx.back()]);
      }
      if (present.size() == members.size()) break;
      if (redrawn) ++*redrawn;
    }
  }
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<double> softmax_rows(const FeatureView& logits) {
  const std::int64_t n = logits.rows, c = logits.cols;
  std::vector<double> p(static_cast<std::size_t>(n * c));
  for (std::int64_t i = 0; i < n; ++i) {
    double mx = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < c; ++j) mx = std::max(mx, logits.at(i, j));
    TLKIT_CHECK_ARG(std::isfinite(mx), "logits: row {} has a non-finite maximum ({})", i, mx);
    double sum = 0.0;
    for (std::int64_t j = 0; j < c; ++j) sum += p[i * c + j] = std::exp(logits.at(i, j) - mx);
    for (std::int64_t j = 0; j < c; ++j) p[i * c + j] /= sum;
  }
  return p;
}

namespace {

// Rows `idx` of `v` gathered into `buf` (reused across replicates), in v's dtype, row-major.
FeatureView gather_rows(const FeatureView& v, const std::vector<std::int64_t>& idx,
                        std::vector<double>& buf) {
  if (v.rows == 0) return v;
  const std::int64_t n = static_cast<std::int64_t>(idx.size()), d = v.cols;
  // A double buffer holds float32 rows too (float's alignment divides double's).
  const std::size_t elems = static_cast<std::size_t>(n * d);
  if (v.dtype == Real::kFloat32) {
    buf.resize((elems + 1) / 2);
    float* out = reinterpret_cast<float*>(buf.data());
    const float* in = static_cast<const float*>(v.data);
    for (std::int64_t r = 0; r < n; ++r) {
      const float* src = in + idx[r] * v.row_stride;
      if (v.col_stride == 1)
        std::memcpy(out + r * d, src, sizeof(float) * static_cast<std::size_t>(d));
      else
        for (std::int64_t j = 0; j < d; ++j) out[r * d + j] = src[j * v.col_stride];
    }
    return FeatureView::row_major(out, n, d);
  }
  buf.resize(elems);
  const double* in = static_cast<const double*>(v.data);
  for (std::int64_t r = 0; r < n; ++r) {
    const double* src = in + idx[r] * v.row_stride;
    if (v.col_stride == 1)
      std::memcpy(buf.data() + r * d, src, sizeof(double) * static_cast<std::size_t>(d));
    else
      for (std::int64_t j = 0; j < d; ++j) buf[r * d + j] = src[j * v.col_stride];
  }
  return FeatureView::row_major(buf.data(), n, d);
}

}  // namespace

BootstrapResult bootstrap_scores(const std::vector<BootstrapModel>& models, LabelView labels,
                                 const BootstrapOptions& options) {
  const std::int64_t n = labels.size, k = options.replicates;
  TLKIT_CHECK_ARG(k >= 1, "--bootstrap: the number of replicates must be at least 1, got {}", k);
  TLKIT_CHECK_ARG(!models.empty(), "bootstrap: no models given");
  TLKIT_CHECK_ARG(options.fraction > 0.0 && options.fraction <= 1.0,
                  "--subsample-fraction: must be in (0, 1], got {}", options.fraction);
  for (const auto& m : models) {
    TLKIT_CHECK_ARG(m.features.rows == 0 || m.features.rows == n,
                    "model '{}': features have {} rows but the labels have {}", m.name,
                    m.features.rows, n);
    TLKIT_CHECK_ARG(m.probs.rows == 0 || m.probs.rows == n,
                    "model '{}': probabilities have {} rows but the labels have {}", m.name,
                    m.probs.rows, n);
  }

  // Registered metrics in first-request order; series index by metric name.
  BootstrapResult result;
  result.n = n;
  result.replicates = k;
  std::map<std::string, std::size_t> series_of;
  for (const auto& m : models)
    for (const auto& name : m.metrics) {
      const MetricInfo& info = find_metric(name);
      auto [it, added] = series_of.emplace(name, result.metrics.size());
      if (added) {
        BootstrapSeries s;
        s.metric = name;
        s.higher_is_better = info.higher_is_better;
        result.metrics.push_back(std::move(s));
      }
      result.metrics[it->second].models.push_back(m.name);
    }
  const std::size_t n_registered = result.metrics.size();

  // Per model: score() on given inputs; one score per (metric, model) appended to `scores`.
  auto score_model = [&](const BootstrapModel& m, const ScoreInputs& in,
                         std::map<std::string, std::map<std::string, double>>* per_model,
                         bool original) {
    if (m.metrics.empty()) return;
    ScoreReport rep;
    try {
      rep = score(in, m.metrics, options.score);
    } catch (const InputError& e) {
      if (original) throw InputError(fmt::format("model '{}': {}", m.name, e.what()));
      // One metric refused this resample: score the metrics one by one so that only the ones
      // that fail are undefined here.
      for (const auto& name : m.metrics) {
        try {
          rep.metrics.push_back(score(in, {name}, options.score).metrics.at(0));
        } catch (const InputError& e1) {
          BootstrapSeries& s = result.metrics[series_of.at(name)];
          if (s.failed++ == 0) s.first_failure = e1.what();
          (*per_model)[m.name][name] = kNaN;
        }
      }
    }
    for (const auto& v : rep.metrics) {
      BootstrapSeries& s = result.metrics[series_of.at(v.name)];
      double value = v.score;
      if (!std::isfinite(value)) {
        if (original)
          TLKIT_THROW_ARG("model '{}': metric {} is not finite ({}) on the original sample", m.name,
                          v.name, value);
        if (s.failed++ == 0) s.first_failure = fmt::format("score {}", value);
        value = kNaN;
      }
      (*per_model)[m.name][v.name] = value;
    }
  };

  // Collects one replicate's (or the original's) per-model scores into the series.
  auto store = [&](const std::map<std::string, std::map<std::string, double>>& per_model,
                   bool original) {
    for (std::size_t s = 0; s < n_registered; ++s) {
      BootstrapSeries& ser = result.metrics[s];
      for (const auto& model : ser.models) {
        const double v = per_model.at(model).at(ser.metric);
        (original ? ser.original : ser.values).push_back(v);
      }
    }
  };

  // Zoo-level combinations present on the original sample.
  auto combine = [&](const std::map<std::string, std::map<std::string, double>>& per_model,
                     bool original) {
    const auto zoo = combine_zoo_metrics(per_model);
    if (original) {
      for (const auto& [name, by_model] : zoo) {
        BootstrapSeries s;
        s.metric = name;
        s.zoo = true;
        for (const auto& [model, v] : by_model) {
          s.models.push_back(model);
          s.original.push_back(v);
        }
        result.metrics.push_back(std::move(s));
      }
      return;
    }
    for (std::size_t s = n_registered; s < result.metrics.size(); ++s) {
      BootstrapSeries& ser = result.metrics[s];
      const auto it = zoo.find(ser.metric);
      for (const auto& model : ser.models) {
        double v = kNaN;
        if (it != zoo.end())
          if (auto jt = it->second.find(model); jt != it->second.end()) v = jt->second;
        // A model whose component failed in this replicate drops out of the combination, which
        // would renormalise the others: the whole replicate is undefined for this metric.
        if (it == zoo.end() || it->second.size() != ser.models.size()) v = kNaN;
        if (std::isnan(v)) ++ser.failed;
        ser.values.push_back(v);
      }
      if (ser.failed > 0 && ser.first_failure.empty())
        ser.first_failure = "a component failed in the replicate";
    }
  };

  // The original sample.
  {
    std::map<std::string, std::map<std::string, double>> per_model;
    for (const auto& m : models) {
      ScoreInputs in;
      in.features = m.features;
      in.probs = m.probs;
      in.labels = labels;
      score_model(m, in, &per_model, true);
    }
    store(per_model, true);
    combine(per_model, true);
  }

  // The replicates: one index draw per replicate, shared by every model (paired).
  std::mt19937_64 rng(options.seed);
  std::vector<std::int64_t> rep_labels(static_cast<std::size_t>(n));
  std::vector<double> fbuf, pbuf;
  for (auto& s : result.metrics) s.values.reserve(static_cast<std::size_t>(k) * s.models.size());
  for (std::int64_t r = 0; r < k; ++r) {
    const std::vector<std::int64_t> idx =
        bootstrap_indices(labels, options.scheme, rng, &result.redrawn, options.fraction);
    const std::int64_t rows = static_cast<std::int64_t>(idx.size());
    result.replicate_rows = rows;
    rep_labels.resize(idx.size());
    for (std::int64_t i = 0; i < rows; ++i) rep_labels[i] = labels.data[idx[i]];
    std::map<std::string, std::map<std::string, double>> per_model;
    for (const auto& m : models) {
      ScoreInputs in;
      in.labels = LabelView{rep_labels.data(), rows};
      in.features = gather_rows(m.features, idx, fbuf);
      in.probs = gather_rows(m.probs, idx, pbuf);
      in.sample_ids = idx.data();
      score_model(m, in, &per_model, false);
    }
    store(per_model, false);
    combine(per_model, false);
    if (options.progress) options.progress(r + 1, k);
  }
  return result;
}

double percentile_linear(std::vector<double> values, double q) {
  TLKIT_CHECK_ARG(q >= 0.0 && q <= 100.0, "percentile: q must be in [0, 100], got {}", q);
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const double h = static_cast<double>(values.size() - 1) * (q / 100.0);
  const double lo = std::floor(h);
  const std::size_t i = static_cast<std::size_t>(lo);
  if (i + 1 >= values.size()) return values.back();
  return values[i] + (h - lo) * (values[i + 1] - values[i]);
}

BootstrapInterval bootstrap_interval(const std::vector<double>& values, double confidence) {
  TLKIT_CHECK_ARG(confidence > 0.0 && confidence < 1.0,
                  "--confidence: must be between 0 and 1 (exclusive), got {}", confidence);
  std::vector<double> v;
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  BootstrapInterval out;
  out.count = static_cast<std::int64_t>(v.size());
  if (v.empty()) return out;
  double sum = 0.0;
  for (double x : v) sum += x;
  out.mean = sum / static_cast<double>(v.size());
  if (v.size() >= 2) {
    double ss = 0.0;
    for (double x : v) ss += (x - out.mean) * (x - out.mean);
    out.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  out.lo = percentile_linear(v, 50.0 * (1.0 - confidence));
  out.hi = percentile_linear(v, 50.0 * (1.0 + confidence));
  return out;
}

std::vector<BootstrapMetricSummary> summarise_bootstrap(const BootstrapResult& result,
                                                        const std::map<std::string, double>& truth,
                                                        double confidence) {
  std::vector<BootstrapMetricSummary> out;
  for (const BootstrapSeries& s : result.metrics) {
    const std::size_t m = s.models.size();
    BootstrapMetricSummary sum;
    sum.metric = s.metric;
    sum.zoo = s.zoo;
    sum.higher_is_better = s.higher_is_better;
    const double sign = s.higher_is_better ? 1.0 : -1.0;
    std::vector<double> acc;
    if (!truth.empty()) {
      for (const auto& model : s.models) {
        const auto it = truth.find(model);
        TLKIT_CHECK_ARG(it != truth.end(), "bootstrap: no accuracy for model '{}'", model);
        acc.push_back(it->second);
      }
    }
    const bool ranked = m >= 2 && !acc.empty();
    std::vector<char> best(m, 0);
    if (ranked) {
      const double top = *std::max_element(acc.begin(), acc.end());
      for (std::size_t i = 0; i < m; ++i) best[i] = acc[i] == top;
      std::vector<double> x(m);
      for (std::size_t i = 0; i < m; ++i) x[i] = sign * s.original[i];
      sum.weighted_tau = weighted_tau(x, acc);
      sum.kendall_tau = kendall_tau_b(x, acc);
    }
    std::vector<double> first(m, 0.0), wt, kt;
    double top1_best = 0.0;
    std::vector<double> x(m);
    for (std::int64_t r = 0; r < result.replicates; ++r) {
      bool valid = true;
      for (std::size_t i = 0; i < m; ++i) {
        x[i] = sign * s.replicate(r, i);
        valid = valid && !std::isnan(x[i]);
      }
      if (!valid) continue;
      ++sum.valid_replicates;
      const std::vector<std::size_t> tops = top_indices(x);
      double hit = 0.0;
      for (std::size_t t : tops) {
        first[t] += 1.0 / static_cast<double>(tops.size());
        if (ranked && best[t]) hit += 1.0 / static_cast<double>(tops.size());
      }
      top1_best += hit;
      if (ranked) {
        wt.push_back(weighted_tau(x, acc));
        kt.push_back(kendall_tau_b(x, acc));
      }
    }
    const double valid = static_cast<double>(sum.valid_replicates);
    for (std::size_t i = 0; i < m; ++i) {
      BootstrapModelSummary ms;
      ms.model = s.models[i];
      ms.original = s.original[i];
      std::vector<double> col(static_cast<std::size_t>(result.replicates));
      for (std::int64_t r = 0; r < result.replicates; ++r) col[r] = s.replicate(r, i);
      ms.score = bootstrap_interval(col, confidence);
      ms.p_first = valid > 0 ? first[i] / valid : kNaN;
      sum.models.push_back(std::move(ms));
    }
    if (ranked) {
      sum.weighted_tau_boot = bootstrap_interval(wt, confidence);
      sum.kendall_tau_boot = bootstrap_interval(kt, confidence);
      sum.p_top1_best = valid > 0 ? top1_best / valid : kNaN;
    }
    out.push_back(std::move(sum));
  }
  return out;
}

}  // namespace tlkit

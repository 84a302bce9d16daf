// Checks of a StatisticsBackend against the CPU path, shared by the pipeline test on the host
// (tests/core/test_device_pipeline.cpp) and the GPU test (tests/cuda/test_cuda_backend.cpp).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "metric_context.h"
#include "test_support.h"
#include "tlkit/core/score.h"
#include "tlkit/core/statistics_backend.h"

namespace tlkit::test {

/// Rows of a row-major N x D vector handed out `chunk` rows at a time (--chunk-rows' RowSource).
class VectorRows : public RowSource {
 public:
  VectorRows(const std::vector<double>& f, std::int64_t n, std::int64_t d, std::int64_t chunk)
      : f_(f), n_(n), d_(d), chunk_(chunk) {}
  void for_chunks(const std::function<void(const FeatureView&, std::int64_t)>& fn) override {
    for (std::int64_t b = 0; b < n_; b += chunk_)
      fn(FeatureView::row_major(f_.data() + b * d_, std::min(chunk_, n_ - b), d_), b);
  }

 private:
  const std::vector<double>& f_;
  std::int64_t n_, d_, chunk_;
};

/// The metrics that read the backend's statistics (stats() or gram_eigen()).
inline const std::vector<std::string>& backend_metrics() {
  static const std::vector<std::string> m = {"logme", "hscore", "hscore_shrink", "transrate",
                                             "sfda"};
  return m;
}

/// max |a - b| / max |a| over two arrays of the same size.
inline double max_rel_diff(const double* a, const double* b, std::int64_t count) {
  double scale = 1e-300, diff = 0.0;
  for (std::int64_t i = 0; i < count; ++i) {
    scale = std::max(scale, std::abs(a[i]));
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  return diff / scale;
}

/// MetricContext's statistics and decomposition with `backend` against those of the CPU: the
/// Gram matrix (upper triangle), column and class sums, the eigenvalues and V^T S (each row up to
/// its sign, the eigenvectors' own ambiguity), all to `rtol` relative to the largest entry.
inline void expect_statistics_match(StatisticsBackend& backend, const ScoreInputs& in,
                                    double rtol) {
  ScoreOptions cpu_opt, dev_opt;
  dev_opt.backend = &backend;
  MetricContext cpu(in, cpu_opt), dev(in, dev_opt);
  const auto& a = cpu.stats();
  const auto& b = dev.stats();
  const std::int64_t d = cpu.d();
  Eigen::MatrixXd ga = a.gram.triangularView<Eigen::Upper>(),
                  gb = b.gram.triangularView<Eigen::Upper>();
  EXPECT_LE(max_rel_diff(ga.data(), gb.data(), d * d), rtol) << "F^T F";
  EXPECT_LE(max_rel_diff(a.class_sums.data(), b.class_sums.data(), a.class_sums.size()), rtol)
      << "class sums";
  EXPECT_LE(max_rel_diff(a.sum.data(), b.sum.data(), d), rtol) << "column sums";
  const auto* ea = cpu.gram_eigen();
  const auto* eb = dev.gram_eigen();
  ASSERT_EQ(ea == nullptr, eb == nullptr);
  if (!ea) return;
  EXPECT_LE(max_rel_diff(ea->values.data(), eb->values.data(), d), rtol) << "eigenvalues";
  Eigen::MatrixXd pb = eb->proj;
  for (std::int64_t i = 0; i < d; ++i)
    if (pb.row(i).dot(ea->proj.row(i)) < 0) pb.row(i) *= -1.0;
  EXPECT_LE(max_rel_diff(ea->proj.data(), pb.data(), ea->proj.size()), rtol) << "V^T S";
}

/// score() of every metric that reads the backend's statistics, all in one run and each alone,
/// with `backend` against the CPU, to `rtol` relative.
inline void expect_scores_match(StatisticsBackend& backend, const ScoreInputs& in, double rtol) {
  ScoreOptions cpu_opt, dev_opt;
  dev_opt.backend = &backend;
  const ScoreReport all_cpu = score(in, backend_metrics(), cpu_opt);
  const ScoreReport all_dev = score(in, backend_metrics(), dev_opt);
  for (std::size_t k = 0; k < backend_metrics().size(); ++k) {
    const std::string& name = backend_metrics()[k];
    EXPECT_TRUE(near_rel(all_dev.metrics[k].score, all_cpu.metrics[k].score, rtol)) << name;
    const ScoreReport one_dev = score(in, {name}, dev_opt);
    EXPECT_TRUE(near_rel(one_dev.metrics[0].score, all_cpu.metrics[k].score, rtol))
        << name << " alone";
  }
}

}  // namespace tlkit::test

// The device statistics pipeline (src/core/device_pipeline.h) on the host: HostDeviceOps runs
// each stream's work late and in a random interleaving, so the chunking, the double buffers and
// the events are checked here, on the CPU, against MetricContext's CPU statistics (F^T F, the
// class sums, the decomposition) and ScoreStatistics, on random and edge shapes. The same
// comparisons on a GPU are tests/cuda/test_cuda_backend.cpp.
#include <gtest/gtest.h>

#include <memory>
#include <numeric>

#include "backend_check.h"
#include "device_pipeline.h"
#include "host_device_ops.h"
#include "test_support.h"
#include "tlkit/core/score_statistics.h"

namespace tlkit {
namespace {

using detail::PipelineOptions;

struct Case {
  std::int64_t n, d, classes, chunk;
};

// Pipeline sums of `f` (row-major n x d) against ScoreStatistics::accumulate (the CPU sums,
// bit-identical to MetricContext::stats()) over `classes` classes, of which some may be absent.
void check_sums(const std::vector<double>& f, const std::vector<std::int64_t>& labels,
                std::int64_t n, std::int64_t d, std::int64_t classes, const FeatureView& view,
                test::HostDeviceOps& ops, const PipelineOptions& opt) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(classes));
  std::iota(all.begin(), all.end(), 0);
  const ScoreStatistics ref =
      ScoreStatistics::accumulate(FeatureView::row_major(f.data(), n, d), {labels.data(), n}, all);
  std::vector<int> y(labels.begin(), labels.end());
  // The pipeline adds to what is there: start from a known offset in both triangles.
  std::vector<double> gram(static_cast<std::size_t>(d * d), 0.5),
      sums(static_cast<std::size_t>(d * classes), -0.25);
  detail::pipeline_accumulate(ops, view, y.data(), classes, gram.data(), sums.data(), opt);
  double scale = 1e-300, diff = 0.0;
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t i = 0; i < d; ++i) {
      const double want = i <= j ? ref.gram[j * d + i] + 0.5 : 0.5;  // the lower one untouched
      scale = std::max(scale, std::abs(want));
      diff = std::max(diff, std::abs(gram[j * d + i] - want));
    }
  EXPECT_LE(diff / scale, 1e-13) << "F^T F, n = " << n << ", d = " << d;
  std::vector<double> want_sums(ref.class_sums);
  for (double& v : want_sums) v -= 0.25;
  EXPECT_LE(test::max_rel_diff(want_sums.data(), sums.data(), d * classes), 1e-13)
      << "class sums, n = " << n << ", d = " << d;
}

class PipelineShapes : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineShapes, SumsEqualTheCpuStatisticsInEveryLayoutAndInterleaving) {
  const Case c = GetParam();
  // Labels over the first classes - 1 classes only when there are several: the last is absent.
  const std::int64_t used = c.classes > 1 ? c.classes - 1 : 1;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(c.n));
  for (std::int64_t i = 0; i < c.n; ++i) labels[i] = (i * 7 + 3) % used;
  const std::vector<double> f = test::make_features(c.n, c.d, labels, 11, 3.0);
  std::vector<float> f32(f.begin(), f.end());
  std::vector<double> f64_of_f32(f32.begin(), f32.end());
  std::vector<double> fortran(f.size());
  for (std::int64_t i = 0; i < c.n; ++i)
    for (std::int64_t j = 0; j < c.d; ++j) fortran[j * c.n + i] = f[i * c.d + j];
  PipelineOptions opt;
  opt.chunk_rows = c.chunk;
  for (unsigned seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const int eager = seed % 2 ? 0 : 3;  // lazy, or a few steps after each call
    {                                    // pageable float64 rows: packed into the pinned buffers
      test::HostDeviceOps ops(seed, eager);
      check_sums(f, labels, c.n, c.d, c.classes, FeatureView::row_major(f.data(), c.n, c.d), ops,
                 opt);
    }
    {  // float32 rows, converted while packed
      test::HostDeviceOps ops(seed, eager);
      check_sums(f64_of_f32, labels, c.n, c.d, c.classes,
                 FeatureView::row_major(f32.data(), c.n, c.d), ops, opt);
    }
    {  // column-major (Fortran order)
      test::HostDeviceOps ops(seed, eager);
      check_sums(f, labels, c.n, c.d, c.classes, FeatureView::col_major(fortran.data(), c.n, c.d),
                 ops, opt);
    }
    {  // pinned float64 rows: uploaded from where they are, no packing
      test::HostDeviceOps ops(seed, eager);
      ops.pin(f.data(), f.size() * sizeof(double));
      check_sums(f, labels, c.n, c.d, c.classes, FeatureView::row_major(f.data(), c.n, c.d), ops,
                 opt);
    }
    {  // rows on the device: only the one-hot classes are uploaded
      test::HostDeviceOps ops(seed, eager);
      void* dev = ops.to_device(f.data(), f.size() * sizeof(double));
      PipelineOptions on_device = opt;
      on_device.features_on_device = true;
      check_sums(f, labels, c.n, c.d, c.classes,
                 FeatureView::row_major(static_cast<const double*>(dev), c.n, c.d), ops, on_device);
      EXPECT_EQ(ops.uploaded_bytes(), static_cast<std::size_t>(c.n * c.classes) * sizeof(double));
      ops.device_free(dev);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PipelineShapes,
                         ::testing::Values(Case{50, 6, 4, 7},      // N not a multiple of the chunk
                                           Case{1, 5, 3, 4},       // one row
                                           Case{9, 1, 2, 2},       // D = 1
                                           Case{6, 12, 3, 4},      // N <= D
                                           Case{64, 8, 5, 16},     // N a multiple of the chunk
                                           Case{40, 3, 1, 1000},   // one chunk, one class
                                           Case{200, 16, 9, 0}));  // the default chunk

// The chunk count: one upload of rows and one of classes per chunk, each chunk once.
TEST(Pipeline, UploadsEachChunkOnce) {
  const std::int64_t n = 103, d = 4, classes = 3;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % classes;
  const std::vector<double> f = test::make_features(n, d, labels, 5);
  test::HostDeviceOps ops(3, 2);
  PipelineOptions opt;
  opt.chunk_rows = 10;
  check_sums(f, labels, n, d, classes, FeatureView::row_major(f.data(), n, d), ops, opt);
  EXPECT_EQ(ops.uploads(), 2 * 11);
  EXPECT_EQ(ops.uploaded_bytes(), static_cast<std::size_t>(n * (d + classes)) * sizeof(double));
}

TEST(Pipeline, DefaultChunkRowsStayWithinBounds) {
  EXPECT_EQ(detail::pipeline_chunk_rows(4096, {}), 8192);  // 256 MiB of float64 rows
  EXPECT_EQ(detail::pipeline_chunk_rows(1, {}), 65536);
  EXPECT_EQ(detail::pipeline_chunk_rows(std::int64_t{1} << 24, {}), 64);
  PipelineOptions o;
  o.chunk_rows = 5;
  EXPECT_EQ(detail::pipeline_chunk_rows(100, o), 5);
}

// The eigendecomposition through the device operations against LAPACK's (MetricContext's CPU
// path), and every metric that reads the backend's statistics, to 1e-9 relative: the same
// comparison as the GPU test, here with the host operations.
struct ScoreCase {
  std::int64_t n, d, classes, chunk;
};
class PipelineBackendScores : public ::testing::TestWithParam<ScoreCase> {};

TEST_P(PipelineBackendScores, StatisticsAndScoresEqualTheCpu) {
  const ScoreCase c = GetParam();
  const std::vector<std::int64_t> labels = test::make_labels(c.n, c.classes, 21);
  const std::vector<double> f = test::make_features(c.n, c.d, labels, 22);
  ScoreInputs in;
  in.features = FeatureView::row_major(f.data(), c.n, c.d);
  in.labels = {labels.data(), c.n};
  PipelineOptions opt;
  opt.chunk_rows = c.chunk;
  detail::PipelineBackend backend("host", std::make_unique<test::HostDeviceOps>(7, 2), opt);
  test::expect_statistics_match(backend, in, 1e-12);
  test::expect_scores_match(backend, in, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PipelineBackendScores,
                         ::testing::Values(ScoreCase{300, 20, 4, 64},  // N > D: LogME's Gram path
                                           ScoreCase{97, 9, 3, 10},    // N not a chunk multiple
                                           ScoreCase{30, 40, 3, 8},    // N <= D
                                           ScoreCase{500, 1, 2, 0}));  // D = 1

// Streamed rows (--chunk-rows) reach the backend chunk by chunk: the same sums.
TEST(PipelineBackend, StreamedRowsGiveTheSameLogme) {
  const std::int64_t n = 250, d = 12;
  const std::vector<std::int64_t> labels = test::make_labels(n, 5, 31);
  const std::vector<double> f = test::make_features(n, d, labels, 32);
  ScoreInputs held;
  held.features = FeatureView::row_major(f.data(), n, d);
  held.labels = {labels.data(), n};
  test::VectorRows rows(f, n, d, 33);
  ScoreInputs streamed = held;
  streamed.features.data = nullptr;
  streamed.feature_rows = &rows;
  detail::PipelineBackend backend("host", std::make_unique<test::HostDeviceOps>(9, 1));
  ScoreOptions opt;
  opt.backend = &backend;
  const ScoreReport a = score(held, {"logme", "hscore"}, {});
  const ScoreReport b = score(streamed, {"logme", "hscore"}, opt);
  EXPECT_TRUE(test::near_rel(b.metrics[0].score, a.metrics[0].score, 1e-9));
  EXPECT_TRUE(test::near_rel(b.metrics[1].score, a.metrics[1].score, 1e-9));
}

}  // namespace
}  // namespace tlkit

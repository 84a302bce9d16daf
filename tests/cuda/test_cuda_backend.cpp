// The CUDA statistics backend against the CPU: F^T F, the class sums, the eigenvalues and V^T S to
// 1e-11 relative, and every metric that reads them (logme, hscore, hscore_shrink, transrate,
// sfda) to 1e-9 relative, on random and edge shapes, float32 and Fortran-order input, rows in
// pinned memory and streamed rows. Every test skips with a message where no CUDA device can be
// used, except the one that checks the message such a machine gives.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include "backend_check.h"
#include "device_pipeline.h"
#include "test_support.h"
#include "tlkit/cuda/backend.h"

namespace tlkit {
namespace {

#define TLKIT_NEEDS_GPU()                                                                 \
  do {                                                                                    \
    const std::string why = cuda::device_unavailable_reason();                            \
    if (!why.empty()) GTEST_SKIP() << "no CUDA device (" << why << "): GPU test skipped"; \
  } while (false)

struct Shape {
  std::int64_t n, d, classes, chunk;
};

class CudaShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(CudaShapes, StatisticsAndScoresEqualTheCpu) {
  TLKIT_NEEDS_GPU();
  const Shape s = GetParam();
  const std::vector<std::int64_t> labels = test::make_labels(s.n, s.classes, 41);
  const std::vector<double> f = test::make_features(s.n, s.d, labels, 42, 2.0);
  ScoreInputs in;
  in.features = FeatureView::row_major(f.data(), s.n, s.d);
  in.labels = {labels.data(), s.n};
  cuda::BackendOptions opt;
  opt.chunk_rows = s.chunk;
  const auto backend = cuda::make_statistics_backend(opt);
  test::expect_statistics_match(*backend, in, 1e-11);
  test::expect_scores_match(*backend, in, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaShapes,
                         ::testing::Values(Shape{4000, 64, 10, 0},        // one chunk
                                           Shape{20000, 256, 100, 3000},  // N not a multiple
                                           Shape{997, 33, 7, 64},         // many small chunks
                                           Shape{30, 40, 3, 8},           // N <= D
                                           Shape{500, 1, 2, 0},           // D = 1
                                           Shape{3, 2, 2, 1}));           // tiny, one row a chunk

TEST(CudaBackend, Float32FortranAndPinnedRowsGiveTheCpuStatistics) {
  TLKIT_NEEDS_GPU();
  const std::int64_t n = 3001, d = 48;
  const std::vector<std::int64_t> labels = test::make_labels(n, 6, 51);
  std::vector<double> f = test::make_features(n, d, labels, 52);
  const std::vector<float> f32(f.begin(), f.end());
  std::vector<double> fortran(f.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) fortran[j * n + i] = f[i * d + j];
  cuda::BackendOptions opt;
  opt.chunk_rows = 500;
  const auto backend = cuda::make_statistics_backend(opt);
  ScoreInputs in;
  in.labels = {labels.data(), n};
  in.features = FeatureView::row_major(f32.data(), n, d);
  test::expect_statistics_match(*backend, in, 1e-11);
  in.features = FeatureView::col_major(fortran.data(), n, d);
  test::expect_statistics_match(*backend, in, 1e-11);
  // Pinned (registered) float64 rows are uploaded from where they are.
  ASSERT_EQ(cudaHostRegister(f.data(), f.size() * sizeof(double), cudaHostRegisterDefault),
            cudaSuccess);
  in.features = FeatureView::row_major(f.data(), n, d);
  test::expect_statistics_match(*backend, in, 1e-11);
  test::expect_scores_match(*backend, in, 1e-9);
  cudaHostUnregister(f.data());
}

TEST(CudaBackend, StreamedRowsGiveTheCpuScores) {
  TLKIT_NEEDS_GPU();
  const std::int64_t n = 5000, d = 96;
  const std::vector<std::int64_t> labels = test::make_labels(n, 12, 61);
  const std::vector<double> f = test::make_features(n, d, labels, 62);
  ScoreInputs held;
  held.features = FeatureView::row_major(f.data(), n, d);
  held.labels = {labels.data(), n};
  test::VectorRows rows(f, n, d, 777);
  ScoreInputs streamed = held;
  streamed.features.data = nullptr;
  streamed.feature_rows = &rows;
  const auto backend = cuda::make_statistics_backend();
  ScoreOptions opt;
  opt.backend = backend.get();
  const std::vector<std::string> metrics = {"logme", "hscore", "hscore_shrink", "sfda"};
  const ScoreReport a = score(held, metrics, {});
  const ScoreReport b = score(streamed, metrics, opt);
  for (std::size_t k = 0; k < metrics.size(); ++k)
    EXPECT_TRUE(test::near_rel(b.metrics[k].score, a.metrics[k].score, 1e-9)) << metrics[k];
}

TEST(CudaBackend, AMissingDeviceIndexIsAnError) {
  TLKIT_NEEDS_GPU();
  cuda::BackendOptions opt;
  opt.device = 1000;
  try {
    cuda::make_statistics_backend(opt);
    FAIL() << "no error for device 1000";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("device 1000 does not exist"), std::string::npos)
        << e.what();
  }
}

// Runs where no device can be used (a machine without a GPU or driver): the backend refuses with
// one line naming the reason, and nothing crashes.
TEST(CudaBackend, NoDeviceIsAOneLineError) {
  const std::string why = cuda::device_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "a CUDA device is present: the no-device message is not shown";
  try {
    cuda::make_statistics_backend();
    FAIL() << "no error without a device";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("--device cuda: no CUDA device (", 0), 0u) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace tlkit

// tlkit_cuda_bench: timings of the CUDA statistics backend (docs/gpu.md), run by
// tools/device_check.sh on a GPU machine. Not a test: it asserts nothing about time.
//
//   tlkit_cuda_bench NxDxC[:cpu] ...     e.g. 20000x2048x100:cpu 1000000x4096x100
//
// For each case: Gaussian features generated on the device (cuRAND), random labels; then
//  * on-device: LogME with the features already in device memory: F^T F and the class sums
//    (pipeline, SYRK + GEMM), syevd + V^T S, and LogME's evidence on the CPU;
//  * end to end: the same from float64 rows in pinned host memory, streamed in chunks on two
//    streams, against the time of one plain host-to-device copy of the rows;
//  * with ":cpu", score() on the CPU against score() with the CUDA backend, for every metric that
//    reads the backend's statistics (the relative difference of each score).
// Each timing is the best of --repeats (3) runs after one warm-up. Prints one `key value` line per
// measurement and `bench_ok` at the end; prints `no CUDA device (...)` and exits 0 when none.
#include <cuda_runtime_api.h>
#include <curand.h>
#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_ops.h"
#include "device_pipeline.h"
#include "logme_internal.h"
#include "tlkit/core/score.h"
#include "tlkit/cuda/backend.h"

namespace {

using tlkit::FeatureView;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Case {
  std::int64_t n = 0, d = 0, classes = 0;
  bool cpu = false;
};

bool parse_case(const std::string& s, Case& c) {
  long long n = 0, d = 0, k = 0;
  char tail[8] = {0};
  const int got = std::sscanf(s.c_str(), "%lldx%lldx%lld%7s", &n, &d, &k, tail);
  if (got < 3 || n < 2 || d < 1 || k < 2) return false;
  c.n = n;
  c.d = d;
  c.classes = k;
  c.cpu = std::string(tail) == ":cpu";
  return got == 3 || c.cpu;
}

struct Timing {
  double gram = 0, eigen = 0, logme = 0, total = 0, score = 0;
};

// LogME from the statistics through `ops`, timed piece by piece; `gram_out` keeps F^T F.
Timing logme_once(tlkit::detail::DeviceOps& ops, const FeatureView& f, const std::vector<int>& y,
                  std::int64_t classes, const tlkit::detail::PipelineOptions& opt,
                  Eigen::MatrixXd& gram_out, double& score) {
  const std::int64_t d = f.cols;
  Timing t;
  const auto t0 = Clock::now();
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(d, d), sums = Eigen::MatrixXd::Zero(d, classes);
  tlkit::detail::pipeline_accumulate(ops, f, y.data(), classes, gram.data(), sums.data(), opt);
  t.gram = seconds_since(t0);
  const auto t1 = Clock::now();
  Eigen::VectorXd values(d);
  Eigen::MatrixXd proj(d, classes);
  tlkit::detail::pipeline_eigen_project(ops, gram.data(), d, sums.data(), classes, values.data(),
                                        proj.data());
  t.eigen = seconds_since(t1);
  const auto t2 = Clock::now();
  Eigen::VectorXd yy(classes);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(classes), 0);
  for (int c : y) ++counts[static_cast<std::size_t>(c)];
  for (std::int64_t c = 0; c < classes; ++c) yy[c] = static_cast<double>(counts[c]);
  const tlkit::LogmeResult r =
      tlkit::detail::logme_from_projection(values, proj, yy, f.rows, d, tlkit::LogmeOptions{});
  t.logme = seconds_since(t2);
  t.total = seconds_since(t0);
  score = r.score;
  gram_out = std::move(gram);
  return t;
}

Timing best_of(int repeats, const std::function<Timing()>& fn) {
  fn();  // warm-up: cuBLAS/cuSOLVER initialisation, first allocations
  Timing best;
  best.total = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const Timing t = fn();
    if (t.total < best.total) best = t;
  }
  return best;
}

int run_case(const Case& c, int repeats) {
  using tlkit::cuda::check;
  const std::string tag = fmt::format("n{}_d{}_c{}", c.n, c.d, c.classes);
  const std::size_t count = static_cast<std::size_t>(c.n * c.d);
  const std::size_t bytes = count * sizeof(double);
  fmt::print("case {} rows_GB {:.2f}\n", tag, bytes / 1e9);
  std::fflush(stdout);
  tlkit::cuda::CudaOps ops(0);
  // Features on the device: cuRAND normals (an even count, as cuRAND's normal generator needs).
  void* dev_block = nullptr;
  check(cudaMalloc(&dev_block, (count + 1) * sizeof(double)), "cudaMalloc features");
  double* dev = static_cast<double*>(dev_block);
  curandGenerator_t gen;
  if (curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS ||
      curandSetPseudoRandomGeneratorSeed(gen, 1234) != CURAND_STATUS_SUCCESS ||
      curandGenerateNormalDouble(gen, dev, count + (count % 2), 0.0, 1.0) !=
          CURAND_STATUS_SUCCESS) {
    fmt::print("error cuRAND failed\n");
    return 1;
  }
  curandDestroyGenerator(gen);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  std::vector<int> y(static_cast<std::size_t>(c.n));
  std::mt19937_64 rng(99);
  for (auto& v : y) v = static_cast<int>(rng() % static_cast<std::uint64_t>(c.classes));
  for (std::int64_t k = 0; k < c.classes && k < c.n; ++k)
    y[static_cast<std::size_t>(k)] = static_cast<int>(k);

  // On the device.
  tlkit::detail::PipelineOptions on_device;
  on_device.features_on_device = true;
  Eigen::MatrixXd gram_dev, gram_host;
  double score_dev = 0, score_host = 0;
  const FeatureView fdev = FeatureView::row_major(dev, c.n, c.d);
  const Timing td = best_of(
      repeats, [&] { return logme_once(ops, fdev, y, c.classes, on_device, gram_dev, score_dev); });
  fmt::print(
      "{} device_gram_s {:.4f}\n{} device_syevd_s {:.4f}\n{} device_logme_cpu_s {:.4f}\n"
      "{} device_total_s {:.4f}\n{} logme {:.10g}\n",
      tag, td.gram, tag, td.eigen, tag, td.logme, tag, td.total, tag, score_dev);
  std::fflush(stdout);

  // From pinned host memory.
  void* host_block = nullptr;
  auto t_pin = Clock::now();
  check(cudaMallocHost(&host_block, bytes), "cudaMallocHost (pinned rows)");
  double* host = static_cast<double*>(host_block);
  fmt::print("{} pin_alloc_s {:.3f}\n", tag, seconds_since(t_pin));
  check(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
  double h2d = 1e300;
  for (int r = 0; r < std::max(repeats, 1); ++r) {
    const auto t0 = Clock::now();
    check(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    h2d = std::min(h2d, seconds_since(t0));
  }
  const FeatureView fhost = FeatureView::row_major(host, c.n, c.d);
  tlkit::detail::PipelineOptions streamed;
  const Timing th = best_of(repeats, [&] {
    return logme_once(ops, fhost, y, c.classes, streamed, gram_host, score_host);
  });
  fmt::print("{} h2d_copy_s {:.4f} ({:.1f} GB/s)\n", tag, h2d, bytes / h2d / 1e9);
  fmt::print("{} host_gram_s {:.4f}\n{} host_syevd_s {:.4f}\n{} host_total_s {:.4f}\n", tag,
             th.gram, tag, th.eigen, tag, th.total);
  fmt::print("{} host_total_over_h2d {:.3f}\n{} host_gram_over_h2d {:.3f}\n", tag, th.total / h2d,
             tag, th.gram / h2d);
  const Eigen::MatrixXd gd = gram_dev.triangularView<Eigen::Upper>();
  const Eigen::MatrixXd gh = gram_host.triangularView<Eigen::Upper>();
  fmt::print("{} gram_device_vs_host_rel {:.3e}\n{} logme_device_vs_host_rel {:.3e}\n", tag,
             (gd - gh).cwiseAbs().maxCoeff() / gd.cwiseAbs().maxCoeff(), tag,
             std::abs(score_dev - score_host) / std::abs(score_dev));
  std::fflush(stdout);

  if (c.cpu) {
    // score() on the CPU against score() with the CUDA backend (pageable rows).
    std::vector<double> rows(host, host + count);
    std::vector<std::int64_t> labels(y.begin(), y.end());
    tlkit::ScoreInputs in;
    in.features = FeatureView::row_major(rows.data(), c.n, c.d);
    in.labels = {labels.data(), c.n};
    const std::vector<std::string> metrics = {"logme", "hscore", "hscore_shrink", "transrate",
                                              "sfda"};
    auto t0 = Clock::now();
    const tlkit::ScoreReport cpu = tlkit::score(in, metrics, {});
    const double cpu_s = seconds_since(t0);
    const auto backend = tlkit::cuda::make_statistics_backend();
    tlkit::ScoreOptions opt;
    opt.backend = backend.get();
    t0 = Clock::now();
    const tlkit::ScoreReport gpu = tlkit::score(in, metrics, opt);
    const double gpu_s = seconds_since(t0);
    double worst = 0;
    for (std::size_t k = 0; k < metrics.size(); ++k) {
      const double a = cpu.metrics[k].score, b = gpu.metrics[k].score;
      const double rel = std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300});
      worst = std::max(worst, rel);
      fmt::print("{} agree_{} cpu {:.12g} gpu {:.12g} rel {:.3e}\n", tag, metrics[k], a, b, rel);
    }
    fmt::print("{} score_cpu_s {:.3f}\n{} score_gpu_s {:.3f} (shared {:.3f})\n", tag, cpu_s, tag,
               gpu_s, gpu.shared_seconds);
    fmt::print("{} agree_worst_rel {:.3e} {}\n", tag, worst, worst <= 1e-9 ? "PASS" : "FAIL");
  }
  cudaFreeHost(host);
  cudaFree(dev);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Case> cases;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) {
      repeats = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    Case c;
    if (!parse_case(a, c)) {
      std::fprintf(stderr, "tlkit_cuda_bench: bad case '%s' (expected NxDxC or NxDxC:cpu)\n",
                   a.c_str());
      return 2;
    }
    cases.push_back(c);
  }
  if (cases.empty()) cases = {{20000, 2048, 100, true}, {1000000, 4096, 100, false}};
  const std::string why = tlkit::cuda::device_unavailable_reason();
  if (!why.empty()) {
    fmt::print("no CUDA device ({}): benchmark skipped\n", why);
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  fmt::print("device {} ({} SMs, {:.0f} GiB)\n", prop.name, prop.multiProcessorCount,
             prop.totalGlobalMem / 1073741824.0);
  for (const Case& c : cases) {
    try {
      if (run_case(c, repeats) != 0) return 1;
    } catch (const std::exception& e) {
      fmt::print("error {}\n", e.what());
      return 1;
    }
  }
  fmt::print("bench_ok\n");
  return 0;
}

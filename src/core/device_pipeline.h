// The streaming pipeline of a device statistics backend (private to tlkit; docs/gpu.md), kept
// apart from the device calls so that it runs and is tested on the CPU.
//
// The rows go to the device in chunks through two pinned host buffers, on two streams: the copy
// stream uploads chunk i + 1 while the compute stream adds chunk i to F^T F (SYRK) and to the
// class sums (GEMM with the chunk's one-hot class matrix). Events order the two: a chunk's
// compute waits for its upload, an upload into a device buffer waits until the compute of the
// chunk that used it before is done, and the host refills a pinned buffer only once its last
// upload has finished. The chunks are added in row order into one Gram matrix, so the sums do
// not depend on how the streams are scheduled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "tlkit/core/matrix_view.h"
#include "tlkit/core/statistics_backend.h"

namespace tlkit::detail {

/// The device operations the pipeline uses. CUDA implements them with cudart, cuBLAS and
/// cuSOLVER (src/cuda/); the tests implement them on the host with a scheduler that runs each
/// stream's work late and in a random interleaving, so that a missing wait shows as a wrong sum.
/// Device and pinned memory are opaque pointers that only these operations touch. Matrices are
/// column-major float64.
class DeviceOps {
 public:
  enum Stream { kCopy = 0, kCompute = 1 };
  virtual ~DeviceOps() = default;

  virtual void* device_alloc(std::size_t bytes) = 0;  ///< zero-filled
  virtual void device_free(void* p) = 0;
  virtual void* pinned_alloc(std::size_t bytes) = 0;
  virtual void pinned_free(void* p) = 0;
  /// True when host memory `p` (bytes long) can be uploaded from directly (pinned memory).
  virtual bool is_pinned(const void* p, std::size_t bytes) = 0;

  /// Enqueues a copy of `bytes` from host memory to device memory on `stream`. From pinned memory
  /// the copy overlaps with the host; pageable memory is staged before the call returns.
  virtual void upload(void* dst, const void* src, std::size_t bytes, Stream stream) = 0;
  /// Copies device memory to host memory once all enqueued work is done (synchronous).
  virtual void download(void* dst, const void* src, std::size_t bytes) = 0;

  /// Events 0 .. kEvents - 1: record marks a point in a stream; wait makes a stream's later work
  /// wait for the most recent record of the event; host_wait blocks the host until it is done.
  static constexpr int kEvents = 8;
  virtual void record(int event, Stream stream) = 0;
  virtual void wait(Stream stream, int event) = 0;
  virtual void host_wait(int event) = 0;

  /// On the compute stream: C (n x n, upper triangle) += A A^T for A n x k (lda).
  virtual void syrk(double* c, const double* a, std::int64_t n, std::int64_t k,
                    std::int64_t lda) = 0;
  /// On the compute stream: C (m x n) += A B^T for A m x k (lda), B n x k (ldb).
  virtual void gemm_nt(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
                       std::int64_t k, std::int64_t lda, std::int64_t ldb) = 0;
  /// On the compute stream: C (m x n) = A^T B for A k x m, B k x n (lda = ldb = k).
  virtual void gemm_tn(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
                       std::int64_t k) = 0;
  /// On the compute stream: eigenvalues `w` (ascending) of the symmetric n x n matrix whose upper
  /// triangle `a` holds; `a` is overwritten by the eigenvectors (columns).
  virtual void syevd(double* a, double* w, std::int64_t n) = 0;
};

/// Pipeline settings.
struct PipelineOptions {
  /// Rows per chunk (0: about 256 MiB of float64 rows, at least 64 and at most 65536 rows).
  std::int64_t chunk_rows = 0;
  /// The features are in device memory already (float64, row-major): no upload of them.
  bool features_on_device = false;
};

/// Rows per chunk for D features under `options`.
std::int64_t pipeline_chunk_rows(std::int64_t d, const PipelineOptions& options);

/// gram (D x D, upper triangle) += F^T F and class_sums (D x classes) += per-class row sums of
/// `features` (class index y[i] for row i) through `ops`. Float64 row-major rows in pinned host
/// memory (or on the device) are uploaded from where they are; any other layout or dtype is
/// converted chunk by chunk into the pinned buffers.
void pipeline_accumulate(DeviceOps& ops, const FeatureView& features, const int* y,
                         std::int64_t classes, double* gram, double* class_sums,
                         const PipelineOptions& options = {});

/// Eigenvalues (ascending) of the symmetric matrix whose upper triangle `a` holds (D x D) and
/// V^T B (D x cols) through `ops` (syevd, then a GEMM on the device).
void pipeline_eigen_project(DeviceOps& ops, const double* a, std::int64_t d, const double* b,
                            std::int64_t cols, double* values, double* vtb);

/// A StatisticsBackend over a DeviceOps: the CUDA backend is this over its CUDA operations.
class PipelineBackend : public StatisticsBackend {
 public:
  PipelineBackend(std::string name, std::unique_ptr<DeviceOps> ops, PipelineOptions options = {})
      : name_(std::move(name)), ops_(std::move(ops)), options_(options) {}
  std::string name() const override { return name_; }
  void accumulate(const FeatureView& features, const int* y, std::int64_t classes, double* gram,
                  double* class_sums) override {
    pipeline_accumulate(*ops_, features, y, classes, gram, class_sums, options_);
  }
  void eigen_project(const double* a, std::int64_t d, const double* b, std::int64_t cols,
                     double* values, double* vtb) override {
    pipeline_eigen_project(*ops_, a, d, b, cols, values, vtb);
  }
  DeviceOps& ops() { return *ops_; }

 private:
  std::string name_;
  std::unique_ptr<DeviceOps> ops_;
  PipelineOptions options_;
};

}  // namespace tlkit::detail

// DeviceOps on CUDA (cudart streams and events, cuBLAS, cuSOLVER); private to tlkit::cuda and
// its tests and benchmark.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <map>

#include "device_pipeline.h"

namespace tlkit::cuda {

/// Throws std::runtime_error naming `what` when `status` is an error.
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);
void check(cusolverStatus_t status, const char* what);

class CudaOps : public detail::DeviceOps {
 public:
  explicit CudaOps(int device);
  ~CudaOps() override;
  CudaOps(const CudaOps&) = delete;
  CudaOps& operator=(const CudaOps&) = delete;

  void* device_alloc(std::size_t bytes) override;
  void device_free(void* p) override;
  void* pinned_alloc(std::size_t bytes) override;
  void pinned_free(void* p) override;
  bool is_pinned(const void* p, std::size_t bytes) override;
  void upload(void* dst, const void* src, std::size_t bytes, Stream s) override;
  void download(void* dst, const void* src, std::size_t bytes) override;
  void record(int event, Stream s) override;
  void wait(Stream s, int event) override;
  void host_wait(int event) override;
  void syrk(double* c, const double* a, std::int64_t n, std::int64_t k, std::int64_t lda) override;
  void gemm_nt(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
               std::int64_t k, std::int64_t lda, std::int64_t ldb) override;
  void gemm_tn(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
               std::int64_t k) override;
  void syevd(double* a, double* w, std::int64_t n) override;

  /// Waits for both streams.
  void synchronize();
  cudaStream_t stream(Stream s) const { return streams_[s]; }

 private:
  int device_;
  cudaStream_t streams_[2] = {nullptr, nullptr};
  cudaEvent_t events_[kEvents] = {};
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  // Pinned buffers kept for reuse by size: page-locking hundreds of MiB takes tens of
  // milliseconds, and every accumulate() call asks for the same two buffers again.
  std::multimap<std::size_t, void*> pinned_pool_;
  std::map<void*, std::size_t> pinned_size_;
};

}  // namespace tlkit::cuda

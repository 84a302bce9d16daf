#include "cuda_ops.h"

#include <fmt/format.h>

#include <limits>
#include <stdexcept>

#include "tlkit/core/error.h"

namespace tlkit::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(fmt::format("CUDA: {} failed: {} ({})", what,
                                         cudaGetErrorString(status), cudaGetErrorName(status)));
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(
        fmt::format("cuBLAS: {} failed: {}", what, cublasGetStatusString(status)));
}

void check(cusolverStatus_t status, const char* what) {
  if (status != CUSOLVER_STATUS_SUCCESS)
    throw std::runtime_error(
        fmt::format("cuSOLVER: {} failed: status {}", what, static_cast<int>(status)));
}

CudaOps::CudaOps(int device) : device_(device) {
  check(cudaSetDevice(device_), "cudaSetDevice");
  for (auto& s : streams_) check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  for (auto& e : events_) check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "event");
  check(cublasCreate(&blas_), "cublasCreate");
  check(cublasSetStream(blas_, streams_[kCompute]), "cublasSetStream");
  // Float64 SYRK and GEMM, never a reduced-precision mode.
  check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  check(cusolverDnCreate(&solver_), "cusolverDnCreate");
  check(cusolverDnSetStream(solver_, streams_[kCompute]), "cusolverDnSetStream");
}

CudaOps::~CudaOps() {
  // Nothing may throw here: errors on the way out are dropped.
  cudaSetDevice(device_);
  for (auto& s : streams_)
    if (s) cudaStreamSynchronize(s);
  for (const auto& [p, bytes] : pinned_size_) cudaFreeHost(p);
  if (solver_) cusolverDnDestroy(solver_);
  if (blas_) cublasDestroy(blas_);
  for (auto& e : events_)
    if (e) cudaEventDestroy(e);
  for (auto& s : streams_)
    if (s) cudaStreamDestroy(s);
}

void* CudaOps::device_alloc(std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  // On the compute stream, which is the first to use any device buffer (uploads into a buffer
  // come after a wait on that stream's events or on this synchronisation).
  check(cudaMemsetAsync(p, 0, bytes, streams_[kCompute]), "cudaMemsetAsync");
  check(cudaStreamSynchronize(streams_[kCompute]), "cudaStreamSynchronize");
  return p;
}

// The frees run in destructors, also while an error unwinds: they never throw.
void CudaOps::device_free(void* p) {
  for (auto& s : streams_) cudaStreamSynchronize(s);
  cudaFree(p);
}

void* CudaOps::pinned_alloc(std::size_t bytes) {
  if (const auto it = pinned_pool_.find(bytes); it != pinned_pool_.end()) {
    void* p = it->second;
    pinned_pool_.erase(it);
    return p;
  }
  void* p = nullptr;
  check(cudaMallocHost(&p, bytes), "cudaMallocHost");
  pinned_size_[p] = bytes;
  return p;
}

void CudaOps::pinned_free(void* p) {
  for (auto& s : streams_) cudaStreamSynchronize(s);  // no upload still reads it
  pinned_pool_.emplace(pinned_size_.at(p), p);
}

bool CudaOps::is_pinned(const void* p, std::size_t bytes) {
  auto pinned = [](const void* q) {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, q) != cudaSuccess) {
      cudaGetLastError();  // clear the error of an unknown pointer
      return false;
    }
    return attr.type == cudaMemoryTypeHost;
  };
  return bytes > 0 && pinned(p) && pinned(static_cast<const char*>(p) + bytes - 1);
}

void CudaOps::upload(void* dst, const void* src, std::size_t bytes, Stream s) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, streams_[s]), "cudaMemcpyAsync");
}

void CudaOps::download(void* dst, const void* src, std::size_t bytes) {
  synchronize();
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
}

void CudaOps::record(int event, Stream s) {
  check(cudaEventRecord(events_[event], streams_[s]), "cudaEventRecord");
}

void CudaOps::wait(Stream s, int event) {
  check(cudaStreamWaitEvent(streams_[s], events_[event], 0), "cudaStreamWaitEvent");
}

void CudaOps::host_wait(int event) {
  check(cudaEventSynchronize(events_[event]), "cudaEventSynchronize");
}

void CudaOps::synchronize() {
  for (auto& s : streams_) check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

void CudaOps::syrk(double* c, const double* a, std::int64_t n, std::int64_t k, std::int64_t lda) {
  const double one = 1.0;
  check(cublasDsyrk_64(blas_, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, n, k, &one, a, lda, &one, c, n),
        "cublasDsyrk");
}

void CudaOps::gemm_nt(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
                      std::int64_t k, std::int64_t lda, std::int64_t ldb) {
  const double one = 1.0;
  check(cublasDgemm_64(blas_, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &one, a, lda, b, ldb, &one, c, m),
        "cublasDgemm");
}

void CudaOps::gemm_tn(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
                      std::int64_t k) {
  const double one = 1.0, zero = 0.0;
  check(cublasDgemm_64(blas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, k, b, k, &zero, c, m),
        "cublasDgemm");
}

void CudaOps::syevd(double* a, double* w, std::int64_t n) {
  TLKIT_ASSERT(n <= std::numeric_limits<int>::max());
  const int ni = static_cast<int>(n);
  int lwork = 0;
  check(cusolverDnDsyevd_bufferSize(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, ni,
                                    a, ni, w, &lwork),
        "cusolverDnDsyevd_bufferSize");
  void* block = nullptr;
  check(cudaMalloc(&block, static_cast<std::size_t>(lwork) * sizeof(double) + sizeof(double)),
        "cudaMalloc");
  double* work = static_cast<double*>(block);
  int* info_dev = reinterpret_cast<int*>(work + lwork);
  int info = 0;
  cusolverStatus_t status =
      cusolverDnDsyevd(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_UPPER, ni, a, ni, w,
                       work, lwork, info_dev);
  cudaError_t copied = cudaSuccess;
  if (status == CUSOLVER_STATUS_SUCCESS)
    copied =
        cudaMemcpyAsync(&info, info_dev, sizeof info, cudaMemcpyDeviceToHost, streams_[kCompute]);
  const cudaError_t synced = cudaStreamSynchronize(streams_[kCompute]);
  cudaFree(work);
  check(status, "cusolverDnDsyevd");
  check(copied, "cudaMemcpyAsync");
  check(synced, "cudaStreamSynchronize");
  if (info != 0)
    throw std::runtime_error(fmt::format(
        "cuSOLVER: syevd failed to converge (info = {}) on a {}x{} matrix", info, n, n));
}

}  // namespace tlkit::cuda

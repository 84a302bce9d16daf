#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <stdexcept>

#include "cuda_ops.h"
#include "tlkit/cuda/backend.h"

namespace tlkit::cuda {

std::string device_unavailable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("cudaGetDeviceCount: {}", cudaGetErrorString(status));
  }
  if (count == 0) return "cudaGetDeviceCount found no device";
  return "";
}

std::unique_ptr<StatisticsBackend> make_statistics_backend(const BackendOptions& options) {
  const std::string why = device_unavailable_reason();
  if (!why.empty()) throw std::runtime_error("--device cuda: no CUDA device (" + why + ")");
  int count = 0;
  cudaGetDeviceCount(&count);
  if (options.device < 0 || options.device >= count)
    throw std::runtime_error(
        fmt::format("--device cuda: device {} does not exist ({} found)", options.device, count));
  detail::PipelineOptions pipeline;
  pipeline.chunk_rows = options.chunk_rows;
  return std::make_unique<detail::PipelineBackend>(
      "cuda", std::make_unique<CudaOps>(options.device), pipeline);
}

}  // namespace tlkit::cuda

#include "statistics_backend.h"

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "tlkit/core/error.h"
#ifdef TLKIT_HAVE_CUDA
#include "tlkit/cuda/backend.h"
#endif

namespace tlkit::cli {

std::unique_ptr<StatisticsBackend> required_statistics_backend(bool cuda, int cuda_index) {
  if (!cuda) return nullptr;
#ifdef TLKIT_HAVE_CUDA
  try {
    cuda::BackendOptions o;
    o.device = cuda_index;
    return cuda::make_statistics_backend(o);
  } catch (const std::runtime_error& e) {
    throw std::system_error(ENODEV, std::generic_category(), e.what());
  }
#else
  (void)cuda_index;
  TLKIT_THROW_ARG(
      "--device cuda: this tlkit was built without CUDA (configure with -DTLKIT_CUDA=ON; "
      "docs/gpu.md)");
#endif
}

std::unique_ptr<StatisticsBackend> optional_statistics_backend(bool cuda, int cuda_index) {
  if (!cuda) return nullptr;
#ifdef TLKIT_HAVE_CUDA
  if (!cuda::device_unavailable_reason().empty()) return nullptr;
  try {
    cuda::BackendOptions o;
    o.device = cuda_index;
    return cuda::make_statistics_backend(o);
  } catch (const std::runtime_error&) {
    return nullptr;  // the models' own device check reports what is wrong
  }
#else
  (void)cuda_index;
  return nullptr;
#endif
}

}  // namespace tlkit::cli

#include "tlkit/model/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <thread>

namespace tlkit::model {

std::string torch_version() { return TORCH_VERSION; }

bool cuda_available() { return torch::cuda::is_available(); }

void set_torch_threads(int threads) {
  const int t =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(t);
}

int torch_threads() { return at::get_num_threads(); }

}  // namespace tlkit::model

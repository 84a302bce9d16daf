#include "tlkit/model/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "tlkit/core/logme.h"

namespace tlkit::model {

std::string torch_version() { return TORCH_VERSION; }

bool cuda_available() { return torch::cuda::is_available(); }

void set_torch_threads(int threads) {
  // 0: the idle cores (tlkit/core/logme.h): LibTorch's OpenMP threads spin-wait for busy cores
  // as BLAS's do (docs/finetune.md: 3-10x slower with --threads 2 on a loaded 2-core machine).
  // The same count serves the BLAS work of the same command (scoring in rank, linear probes).
  const int t = threads > 0 ? threads : idle_cores();
  at::set_num_threads(t);
  set_blas_threads(t);
}

int torch_threads() { return at::get_num_threads(); }

}  // namespace tlkit::model

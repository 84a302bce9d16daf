// tlkit::model: the LibTorch layer (models, data, extraction, fine-tuning, probing).
// This header is the part that exists today: facts about the LibTorch runtime tlkit runs on.
#pragma once

#include <string>

namespace tlkit::model {

/// The LibTorch version tlkit was built against, e.g. "1.13.1".
std::string torch_version();

/// Whether LibTorch sees a usable CUDA device.
bool cuda_available();

/// Sets LibTorch's intra-op threads, and the BLAS/OpenMP threads with them (0: idle_cores(),
/// tlkit/core/logme.h). LibTorch 1.13 on Debian defaults to 1.
void set_torch_threads(int threads);

/// LibTorch's current intra-op thread count.
int torch_threads();

}  // namespace tlkit::model

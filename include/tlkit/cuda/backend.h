// The CUDA statistics backend (built with -DTLKIT_CUDA=ON; docs/gpu.md): F^T F by cuBLAS SYRK and
// the per-class sums by GEMM, in float64, streamed from host memory through pinned buffers on two
// streams, and the eigendecomposition of F^T F by cuSOLVER syevd. Set it in ScoreOptions::backend.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tlkit/core/statistics_backend.h"

namespace tlkit::cuda {

struct BackendOptions {
  int device = 0;               ///< CUDA device index
  std::int64_t chunk_rows = 0;  ///< rows per streamed chunk (0: about 256 MiB of float64 rows)
};

/// Empty when a CUDA device can be used; otherwise why not, from the CUDA runtime
/// (cudaGetDeviceCount's error, or no device found), for a one-line message.
std::string device_unavailable_reason();

/// The backend on `options.device`. Throws std::runtime_error ("no CUDA device: <reason>") when
/// no device can be used.
std::unique_ptr<StatisticsBackend> make_statistics_backend(const BackendOptions& options = {});

}  // namespace tlkit::cuda

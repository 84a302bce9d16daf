// The scoring statistics backend a command's --device asks for (score, rank): none for the CPU,
// the CUDA one (tlkit::cuda, docs/gpu.md) for a CUDA device when tlkit was built with it.
#pragma once

#include <memory>

#include "tlkit/core/statistics_backend.h"

namespace tlkit::cli {

/// score --device: nullptr for the CPU; for a CUDA device the cuBLAS/cuSOLVER backend on
/// `cuda_index`. A build without CUDA is a usage error (InputError); no usable device is an
/// environment failure (std::system_error ENODEV, exit 1).
std::unique_ptr<StatisticsBackend> required_statistics_backend(bool cuda, int cuda_index);

/// rank --device: the models run on the device (LibTorch) and the scoring statistics follow them
/// when they can: the CUDA backend on `cuda_index` when tlkit was built with it and the device
/// answers, otherwise nullptr (the CPU, the same values to rounding).
std::unique_ptr<StatisticsBackend> optional_statistics_backend(bool cuda, int cuda_index);

}  // namespace tlkit::cli

// The LibTorch side of tlkit/model/device.h (internal; not installed): torch::Device, moving
// modules and batches, bfloat16 autocast on either device. Written against the API that LibTorch
// 1.13 and 2.x share; where they differ (autocast's state functions, 2.4+) TLKIT_TORCH_AT_LEAST
// picks the spelling.
//
// How model code uses it (extraction and probing do; fine-tuning can):
//   const torch::Device dev = to_torch(device);              // device:
//   parse_device/device_from_flag torch::jit::Module m = torch::jit::load(path, dev);      //
//   map_location: weights land there HostBuffer buf(n * 3 * s * s, device);                   //
//   pinned when CUDA: decode into it at::Tensor x = to_device(host_view(buf, {n, 3, s, s}), dev,
//   channels_last); { AutocastBf16 bf16(dev.type(), on); out = m.forward({x}); } at::Tensor f =
//   to_host(features);                        // float32 on the CPU, synchronises
// The copy to the device is asynchronous from pinned memory: the host buffer must stay untouched
// until something synchronises with the device's stream (to_host does).
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <torch/version.h>

#include <vector>

#include "tlkit/model/device.h"

#define TLKIT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||        \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace tlkit::model {

/// cpu -> torch::kCPU, cuda:N -> {torch::kCUDA, N}.
c10::Device to_torch(const Device& d);

/// A [sizes] float32 tensor over the first values of `buffer` (no copy; the buffer must outlive
/// it and hold enough values).
at::Tensor host_view(HostBuffer& buffer, const std::vector<std::int64_t>& sizes);

/// `host` (a CPU tensor) on `device`: on the CPU the tensor itself (channels-last: converted), on
/// CUDA a copy, asynchronous (non_blocking) when `host` is pinned, converted to channels-last on
/// the device when asked (one contiguous copy over the bus, the layout change on the GPU).
at::Tensor to_device(const at::Tensor& host, const c10::Device& device, bool channels_last);

/// A float32 contiguous CPU tensor with the values of `t` (a blocking copy from a device, which
/// waits for the work queued before it).
at::Tensor to_host(const at::Tensor& t);

/// LibTorch's autocast to bfloat16 for `device_type` (CPU or CUDA) for the lifetime of the object,
/// the previous state restored after (as Python's torch.autocast(device_type, torch.bfloat16)).
/// Autocast acts in the dispatcher, so it applies to the operators the TorchScript interpreter
/// runs, frozen modules included. `on` false: does nothing.
class AutocastBf16 {
 public:
  AutocastBf16(c10::DeviceType device_type, bool on);
  ~AutocastBf16();
  AutocastBf16(const AutocastBf16&) = delete;
  AutocastBf16& operator=(const AutocastBf16&) = delete;

 private:
  c10::DeviceType type_;
  bool on_ = false;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace tlkit::model

// --device for LibTorch work (tlkit/model/device.h) and its LibTorch side (torch_device.h).
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "tlkit/core/error.h"
#include "tlkit/model/runtime.h"
#include "torch_device.h"

namespace tlkit::model {

Device parse_device(const std::string& s, const std::string& flag) {
  if (s == "cpu") return {};
  if (s == "cuda") return {Device::Type::kCuda, 0};
  const std::string prefix = "cuda:";
  const std::string digits = s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0
                                 ? s.substr(prefix.size())
                                 : std::string();
  TLKIT_CHECK_ARG(!digits.empty() && digits.size() <= 4 &&
                      digits.find_first_not_of("0123456789") == std::string::npos &&
                      std::atoi(digits.c_str()) < 1024,
                  "{} {}: expected cpu, cuda or cuda:N (N >= 0)", flag, s);
  return {Device::Type::kCuda, std::atoi(digits.c_str())};
}

std::string to_string(const Device& d) {
  return d.is_cuda() ? fmt::format("cuda:{}", d.index) : "cpu";
}

int cuda_device_count() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

void check_device(const Device& d, const std::string& flag, const std::string& given) {
  if (!d.is_cuda()) return;
  const std::string what = given.empty() ? to_string(d) : given;
  const int count = cuda_device_count();
  TLKIT_CHECK_ARG(count > 0,
                  "{} {}: this LibTorch ({}) has no CUDA support or sees no CUDA device; use "
                  "--device cpu",
                  flag, what, torch_version());
  TLKIT_CHECK_ARG(d.index < count, "{} {}: LibTorch sees {} CUDA device{}: use {}", flag, what,
                  count, count == 1 ? "" : "s",
                  count == 1 ? std::string("cuda:0") : fmt::format("cuda:0 .. cuda:{}", count - 1));
}

Device device_from_flag(const std::string& s, const std::string& flag) {
  const Device d = parse_device(s, flag);
  check_device(d, flag, s);
  return d;
}

HostBuffer::HostBuffer(std::size_t floats, const Device& device) : size_(floats) {
  if (device.is_cuda()) {
    auto* t = new at::Tensor(at::empty({static_cast<std::int64_t>(floats)},
                                       at::TensorOptions().dtype(at::kFloat).pinned_memory(true)));
    holder_ = std::shared_ptr<void>(t, [](void* p) { delete static_cast<at::Tensor*>(p); });
    data_ = t->data_ptr<float>();
    pinned_ = true;
  } else {
    std::shared_ptr<float> a(new float[floats > 0 ? floats : 1], std::default_delete<float[]>());
    data_ = a.get();
    holder_ = std::move(a);
  }
}

c10::Device to_torch(const Device& d) {
  return d.is_cuda() ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(d.index))
                     : c10::Device(c10::kCPU);
}

at::Tensor host_view(HostBuffer& buffer, const std::vector<std::int64_t>& sizes) {
  std::int64_t n = 1;
  for (std::int64_t s : sizes) n *= s;
  TLKIT_ASSERT(n >= 0 && static_cast<std::size_t>(n) <= buffer.size());
  return at::from_blob(buffer.data(), sizes, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor to_device(const at::Tensor& host, const c10::Device& device, bool channels_last) {
  if (device.is_cpu())
    return channels_last ? host.contiguous(at::MemoryFormat::ChannelsLast) : host;
  at::Tensor t = host.to(device, host.scalar_type(), /*non_blocking=*/host.is_pinned());
  return channels_last ? t.contiguous(at::MemoryFormat::ChannelsLast) : t;
}

at::Tensor to_host(const at::Tensor& t) { return t.to(at::kCPU, at::kFloat).contiguous(); }

namespace {

// Autocast's per-device state: LibTorch 2.4 made it one set of functions taking the device type
// (and deprecated the per-device names of 1.13, which still exist there with a warning).
bool autocast_enabled(c10::DeviceType t) {
#if TLKIT_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(t);
#else
  return t == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast_enabled(c10::DeviceType t, bool on) {
#if TLKIT_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(t, on);
#else
  if (t == c10::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
#endif
}

at::ScalarType autocast_dtype(c10::DeviceType t) {
#if TLKIT_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(t);
#else
  return t == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast_dtype(c10::DeviceType t, at::ScalarType dtype) {
#if TLKIT_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(t, dtype);
#else
  if (t == c10::kCUDA)
    at::autocast::set_autocast_gpu_dtype(dtype);
  else
    at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}

}  // namespace

AutocastBf16::AutocastBf16(c10::DeviceType device_type, bool on) : type_(device_type), on_(on) {
  if (!on_) return;
  was_enabled_ = autocast_enabled(type_);
  was_dtype_ = autocast_dtype(type_);
  set_autocast_enabled(type_, true);
  set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastBf16::~AutocastBf16() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(type_, was_enabled_);
  set_autocast_dtype(type_, was_dtype_);
}

}  // namespace tlkit::model

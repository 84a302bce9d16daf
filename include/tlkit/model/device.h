// Where tlkit's LibTorch work runs (--device cpu|cuda|cuda:N) and the host buffers that feed it,
// behind a header without LibTorch. The LibTorch side (torch::Device, moving modules and batches)
// is src/model/torch_device.h, for the model code (extraction, probing, fine-tuning).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace tlkit::model {

/// The CPU or one CUDA device.
struct Device {
  enum class Type { kCpu, kCuda };
  Type type = Type::kCpu;
  int index = 0;  ///< the CUDA device's ordinal ("cuda" is cuda:0); 0 for the CPU
  bool is_cuda() const { return type == Type::kCuda; }
  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && a.index == b.index;
  }
  friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
};

/// "cpu", "cuda" (device 0) or "cuda:N" (N: decimal digits, 0 .. 1023). Throws tlkit::InputError
/// "<flag> <s>: expected cpu, cuda or cuda:N (N >= 0)" otherwise. Does not look for devices.
Device parse_device(const std::string& s, const std::string& flag = "--device");

/// "cpu" or "cuda:N".
std::string to_string(const Device& d);

/// The CUDA devices this LibTorch sees: 0 when it was built without CUDA or none is visible.
int cuda_device_count();

/// Throws tlkit::InputError naming `flag` and the value as given (`given`: the text typed, e.g.
/// "cuda"; empty: to_string(d)) when `d` is a CUDA device this LibTorch cannot run on: one line,
/// "<flag> cuda: this LibTorch (<version>) has no CUDA support or sees no CUDA device; use --device
/// cpu", or for cuda:N past the last device, how many it sees.
void check_device(const Device& d, const std::string& flag = "--device",
                  const std::string& given = "");

/// parse_device, then check_device: the device a command-line value names, usable here.
Device device_from_flag(const std::string& s, const std::string& flag = "--device");

/// Float storage for batches on their way to a device. For a CUDA device the memory is
/// page-locked ("pinned", LibTorch's pinned-memory allocator), so that the copy to the device can
/// run asynchronously (non_blocking) from it; otherwise it is ordinary memory. Copies share the
/// storage.
class HostBuffer {
 public:
  HostBuffer() = default;
  /// `floats` values (uninitialised), pinned when `device` is CUDA.
  HostBuffer(std::size_t floats, const Device& device);

  float* data() { return data_; }
  const float* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool pinned() const { return pinned_; }

 private:
  std::shared_ptr<void> holder_;  // the LibTorch tensor (pinned) or a float array
  float* data_ = nullptr;
  std::size_t size_ = 0;
  bool pinned_ = false;
};

}  // namespace tlkit::model

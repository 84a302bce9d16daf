// Shared by the fine-tuning sources (finetune*.cpp; include/tlkit/model/finetune.h): seeds, the
// configuration JSON, timing. Without LibTorch.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace tlkit::model::finetune_detail {

using json = nlohmann::ordered_json;

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One 64-bit seed per (seed, purpose, epoch) (splitmix64 finaliser of a combination).
inline std::uint64_t mix(std::uint64_t seed, std::uint64_t purpose, std::uint64_t epoch = 0) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + purpose * 0xBF58476D1CE4E5B9ULL + epoch + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum Purpose : std::uint64_t { kSplitTest = 1, kSplitVal, kOrder, kAugment, kTorch, kHead };

// Pretty-printed JSON, written atomically (write_file_atomic, tlkit/core/npy.h).
void write_json(const std::string& path, const json& j);

// True when the TorchScript model at `model_path` takes texts (forward(List[str])); throws
// tlkit::InputError when it cannot be loaded (finetune_blocks.cpp).
bool model_takes_texts(const std::string& model_path);

}  // namespace tlkit::model::finetune_detail

// Seeded sampling shared by dataset subsampling (image_dataset.cpp), fine-tuning splits, data
// order and augmentation (finetune.cpp) and probe subsets (probe.cpp). The draw sequence is part
// of the contract stated in include/tlkit/model/image_dataset.h (subsamples, splits and resumed
// runs must repeat exactly), so every user calls this one code rather than the standard
// library's distributions, whose output differs between implementations.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "tlkit/model/image_dataset.h"

namespace tlkit::model {

/// Unbiased integer in [0, bound): draws r = rng() until r >= (2^64 - bound) mod bound, returns
/// r mod bound.
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

/// Fisher-Yates: for i = n-1 down to 1, swap v[i] with v[uniform_below(i + 1)].
template <typename T>
void fisher_yates(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

/// Moves round(fraction * m) samples of each class (at least 1 and at most m - 1 when m >= 2,
/// none when m = 1) from `from` to the returned vector, chosen by a Fisher-Yates shuffle (seeded
/// by `seed`) of the class's samples in listing order; both keep listing order.
std::vector<ImageSample> carve(std::vector<ImageSample>& from, double fraction, std::uint64_t seed);

}  // namespace tlkit::model

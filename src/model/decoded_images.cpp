// The decoded-image memo shared by the models of one run (tlkit/model/decoded_images.h).
#include "tlkit/model/decoded_images.h"

#include "tlkit/core/error.h"

namespace tlkit::model {

std::shared_ptr<const RgbImage> DecodedImageCache::get(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = entries_.find(path);
    if (it != entries_.end()) {
      ++stats_.hits;
      if (!it->second.error.empty()) throw InputError(it->second.error);
      return it->second.image;
    }
  }
  // Decoded outside the lock: the model's decode threads work on different files at once.
  std::shared_ptr<const RgbImage> image;
  std::string error;
  try {
    image = std::make_shared<const RgbImage>(decode_image(path));
  } catch (const InputError& e) {
    error = e.what();
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.decoded;
  const std::int64_t bytes =
      image ? static_cast<std::int64_t>(image->pixels.size()) : static_cast<std::int64_t>(0);
  if (stats_.bytes + bytes <= max_bytes_ && max_bytes_ > 0) {
    if (entries_.emplace(path, Entry{image, error}).second) {
      stats_.bytes += bytes;
      stats_.kept += image ? 1 : 0;
    }
  } else if (image) {
    ++stats_.not_kept;
  }
  if (!error.empty()) throw InputError(error);
  return image;
}

DecodedImageCache::Stats DecodedImageCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace tlkit::model

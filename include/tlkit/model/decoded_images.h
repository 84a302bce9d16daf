// Decoded images kept in memory for the models of one run, so that a zoo of M image models
// decodes each file once rather than M times (tlkit rank, tlkit select's stage 0).
//
// Each model resizes the kept pixels to its own input size, so its input is byte-identical to
// decoding the file again: only the decode (file read, JPEG/PNG decoding, colour conversion) is
// shared. The memory is bounded: images are kept until `max_bytes` of pixels are held, and the
// images beyond that are decoded anew by each model that needs them. A file that fails to decode
// is remembered with its message, so every model reports the same error without reading it again.
// Thread-safe: a model's decode threads share it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tlkit/model/image_dataset.h"

namespace tlkit::model {

class DecodedImageCache {
 public:
  /// Keeps at most `max_bytes` of pixels (3 bytes per pixel); 0 keeps nothing.
  explicit DecodedImageCache(std::int64_t max_bytes) : max_bytes_(max_bytes) {}

  /// The decoded image of `path`: the kept one, or decode_image(path) (kept when it fits).
  /// Throws tlkit::InputError, with decode_image's message, for a file that cannot be decoded.
  std::shared_ptr<const RgbImage> get(const std::string& path);

  struct Stats {
    std::int64_t hits = 0;      ///< get() answered from memory (images and remembered errors)
    std::int64_t decoded = 0;   ///< files decoded (kept or not)
    std::int64_t kept = 0;      ///< images held
    std::int64_t bytes = 0;     ///< their pixels' bytes
    std::int64_t not_kept = 0;  ///< decoded images left out because the budget was full
  };
  Stats stats() const;
  std::int64_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    std::shared_ptr<const RgbImage> image;
    std::string error;  // non-empty: the file could not be decoded
  };
  const std::int64_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  Stats stats_;
};

}  // namespace tlkit::model

// SHA-256 (FIPS 180-4), for the provenance hashes in meta.json (model files, dataset listings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tlkit::model {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  /// The digest as 64 lowercase hex digits; the object must not be updated afterwards.
  std::string hex();

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

inline std::string sha256_hex(const std::string& bytes) {
  Sha256 s;
  s.update(bytes.data(), bytes.size());
  return s.hex();
}

}  // namespace tlkit::model

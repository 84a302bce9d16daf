// The image-listing CSV entry point (needs src/model/image_dataset.cpp, which uses no LibTorch);
// see entries.h for the contract.
#pragma once

#include "entries.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::fuzz {

/// A "path,label" listing CSV read by list_image_csv, then subsampled and hashed as extract does.
inline void image_csv(const std::uint8_t* data, std::size_t size) {
  TempInput file(data, size, ".csv");
  const model::ImageListing listing = model::list_image_csv(file.path());
  for (const auto& s : listing.samples)
    if (!listing.classes.empty() &&
        (s.label < 0 || s.label >= static_cast<std::int64_t>(listing.classes.size())))
      std::abort();  // class-name labels are numbered 0..C-1
  model::SubsampleOptions o;
  o.per_class = 2;
  o.limit = 3;
  o.seed = size;
  const model::ImageListing sub = model::subsample(listing, o);
  if (sub.samples.size() > 3) std::abort();
  volatile std::size_t sink = model::listing_text(sub.samples).size();
  sink = sink + model::listing_sha256(listing.samples).size();
}

}  // namespace tlkit::fuzz

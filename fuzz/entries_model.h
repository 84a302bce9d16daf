// Entry points of the zoo-manifest and text-dataset readers (src/model/zoo_manifest.cpp and
// src/model/text_dataset.cpp, which use no LibTorch); see entries.h for the contract.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "tlkit/model/text_dataset.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::fuzz {

// A folder holding an (empty) model file "m.pt" and "sub/m.pt", made once per process and removed
// at exit, so that manifests naming those files get past the existence check to the fields after
// it.
inline const std::string& zoo_folder() {
  struct Folder {
    std::string path;
    Folder() {
      const std::filesystem::path d =
          std::filesystem::temp_directory_path() / ("tlkit-fuzz-zoo-" + std::to_string(::getpid()));
      std::filesystem::create_directories(d / "sub");
      for (const char* f : {"m.pt", "sub/m.pt"}) std::fclose(std::fopen((d / f).c_str(), "wb"));
      path = d.string();
    }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder;
  return folder.path;
}

/// A zoo manifest (JSON), parsed as tlkit rank --zoo reads it; every field of every model used.
inline void zoo_manifest(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const model::ZooManifest zoo = model::parse_zoo_manifest(text, zoo_folder() + "/sub/zoo.json");
  if (zoo.models.empty()) std::abort();  // the parser refuses an empty zoo
  volatile std::size_t sink = 0;
  for (const model::ZooModel& m : zoo.models) {
    if (m.name.empty() || (m.kind != "image" && m.kind != "text")) std::abort();
    if (m.kind == "image" && m.input_size <= 0) std::abort();
    if (m.mean.size() != m.std.size()) std::abort();
    sink = sink + m.file.size() + m.extra_json.size() + static_cast<std::size_t>(m.feature_dim) +
           static_cast<std::size_t>(m.logits_dim + m.features_output + m.logits_output);
    for (float v : m.mean) sink = sink + static_cast<std::size_t>(v != 0);
  }
}

/// A text dataset from memory: the first byte picks the format (even: '<label> <text>' lines;
/// odd: a text,label CSV), the rest is the file. Labels must come out in [0, C) for named classes.
inline void text_dataset(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const bool csv = (data[0] & 1) != 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const model::ImageListing l = model::parse_texts(bytes, csv ? "fuzz.csv" : "fuzz.txt", csv);
  if (l.samples.empty()) std::abort();  // the readers refuse a file without samples
  volatile std::size_t sink = 0;
  for (const auto& s : l.samples) {
    if (!l.classes.empty() &&
        (s.label < 0 || s.label >= static_cast<std::int64_t>(l.classes.size())))
      std::abort();
    sink = sink + s.text.size() + s.name.size();
  }
  sink = sink + model::listing_sha256(l.samples).size();
}

}  // namespace tlkit::fuzz

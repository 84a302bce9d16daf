// Entry points shared by the libFuzzer targets (fuzz/fuzz_*.cpp) and their regression tests
// (tests/core/test_fuzz_corpus.cpp, tests/model/test_fuzz_corpus_image.cpp): each parses one
// untrusted input and touches everything the parser returned. The contract under test: an input
// either parses or throws tlkit::InputError; anything else (a crash, a sanitizer report, another
// exception type) is a bug.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "tlkit/core/csv.h"
#include "tlkit/core/npy.h"

namespace tlkit::fuzz {

// Reads every element of `v` so that the sanitizers check the view's bounds.
inline double touch(const FeatureView& v) {
  double s = 0.0;
  for (std::int64_t i = 0; i < v.rows; ++i)
    for (std::int64_t j = 0; j < v.cols; ++j) s += v.at(i, j);
  return s;
}

// Uses an array the way the CLI does: as features, as labels, as regression targets.
inline void use_array(const NpyArray& a) {
  volatile double sink = 0.0;
  const NpyHeader& h = a.header();
  if ((h.type == NpyType::kFloat32 || h.type == NpyType::kFloat64) && h.shape.size() == 2)
    sink = sink + touch(a.features());
  try {
    for (std::int64_t l : a.labels()) sink = sink + static_cast<double>(l);
  } catch (const InputError&) {
  }
  try {
    std::int64_t k = 0;
    for (double t : a.targets(&k)) sink = sink + t;
  } catch (const InputError&) {
  }
}

/// An .npy image, parsed from memory.
inline void npy(const std::uint8_t* data, std::size_t size) {
  use_array(load_npy_bytes(data, size, "fuzz.npy"));
}

/// An .npz archive, parsed from memory: its only member, else the member "x".
inline void npz(const std::uint8_t* data, std::size_t size) {
  NpyArray a;
  try {
    a = load_npz_bytes(data, size, "", "fuzz.npz");
  } catch (const InputError&) {
    a = load_npz_bytes(data, size, "x", "fuzz.npz");
  }
  use_array(a);
}

/// A temporary file holding `data`, removed on destruction (for readers that take a path).
class TempInput {
 public:
  TempInput(const std::uint8_t* data, std::size_t size, const char* suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/tlkit-fuzz-" + std::to_string(::getpid()) +
            suffix;
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
  }
  ~TempInput() { std::remove(path_.c_str()); }
  TempInput(const TempInput&) = delete;
  TempInput& operator=(const TempInput&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// An .npy file streamed by NpyRowReader in chunks of 1, 2, 3, ... rows (C or Fortran order).
inline void npy_rows(const std::uint8_t* data, std::size_t size) {
  TempInput file(data, size, ".npy");
  NpyRowReader reader(file.path());
  volatile double sink = 0.0;
  std::int64_t done = 0;
  for (std::int64_t chunk = 1;; ++chunk) {
    const FeatureView v = reader.next(chunk);
    if (v.rows == 0) break;
    sink = sink + touch(v);
    done += v.rows;
  }
  if (done != reader.rows()) std::abort();  // every row exactly once
}

/// A CSV table parsed from memory, then every field read as a number and as text.
inline void csv(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const CsvTable t = parse_csv_table(text, "fuzz.csv");
  volatile std::size_t sink = 0;
  for (const auto& h : t.header) sink = sink + csv_field(h).size() + printable(h).size();
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    if (t.rows[r].size() != t.header.size()) std::abort();  // the documented invariant
    for (std::size_t c = 0; c < t.header.size(); ++c) {
      try {
        sink = sink + static_cast<std::size_t>(t.number(r, c) != 0.0);
      } catch (const InputError&) {
      }
      try {
        sink = sink + t.nonempty(r, c).size();
      } catch (const InputError&) {
      }
    }
  }
  if (!t.header.empty()) sink = sink + t.column(t.header.back());
  t.column("model");  // throws InputError when absent, as for a real file
}

}  // namespace tlkit::fuzz

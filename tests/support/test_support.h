// Helpers shared by tlkit's tests: temporary directories, fixture paths, tolerances.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace tlkit::test {

inline std::string data_path(const std::string& rel) {
  return std::string(TLKIT_TEST_DATA) + "/" + rel;
}

/// A fresh directory under the system temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tlkit-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// How many times `what` occurs in `s` (overlapping occurrences counted).
inline std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// |a - b| <= rtol * max(|a|, |b|, floor): relative error with a floor for values near zero.
inline ::testing::AssertionResult near_rel(double a, double b, double rtol, double floor = 1e-12) {
  const double scale = std::max({std::abs(a), std::abs(b), floor});
  if (std::abs(a - b) <= rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << a << " vs " << b << ": relative error " << std::abs(a - b) / scale << " > " << rtol;
}

/// Deterministic Gaussian features with class-dependent means (so LogME has signal).
inline std::vector<double> make_features(std::int64_t n, std::int64_t d,
                                         const std::vector<std::int64_t>& labels, unsigned seed,
                                         double shift = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> f(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      f[i * d + j] = g(rng) + (labels.empty() ? 0.0 : shift * std::sin(1.0 + labels[i] * (j + 1)));
  return f;
}

inline std::vector<std::int64_t> make_labels(std::int64_t n, std::int64_t classes, unsigned seed) {
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) y[i] = i % classes;  // every class present
  std::mt19937_64 rng(seed);
  std::shuffle(y.begin(), y.end(), rng);
  return y;
}

/// The message of the tlkit::InputError that `fn` throws, or "<no InputError>".
template <typename Fn>
std::string input_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no InputError>";
}

// max |a - b| <= rtol * max |b|.
inline ::testing::AssertionResult close_to(const std::vector<float>& a, const std::vector<float>& b,
                                           double rtol = 1e-4) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  if (diff <= rtol * scale) return ::testing::AssertionSuccess() << "max difference " << diff;
  return ::testing::AssertionFailure()
         << "max difference " << diff << " > " << rtol << " x " << scale;
}

}  // namespace tlkit::test

// Replays the fuzzing regression corpus (tests/data/fuzz/<target>/, found by tools/fuzz.sh) through
// the same entry points as the libFuzzer targets (fuzz/entries.h), in the normal build: every
// input must parse or throw tlkit::InputError, never crash or throw anything else. Under
// TLKIT_SANITIZE the sanitizers check each input too.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "entries.h"
#include "test_support.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

using Entry = std::function<void(const std::uint8_t*, std::size_t)>;

// Feeds every file of tests/data/fuzz/<target> to `entry`; returns how many there were.
std::size_t replay(const std::string& target, const Entry& entry) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(test::data_path("fuzz/" + target)))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const std::string bytes = test::read_bytes(f.string());
    SCOPED_TRACE(f.string());
    try {
      entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const InputError&) {
      // the expected outcome for a bad input
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not an InputError: " << e.what();
    }
  }
  return files.size();
}

TEST(FuzzCorpus, NpyFromMemory) { EXPECT_GT(replay("npy", fuzz::npy), 0u); }
TEST(FuzzCorpus, NpzFromMemory) { EXPECT_GT(replay("npz", fuzz::npz), 0u); }
TEST(FuzzCorpus, NpyRowReader) { EXPECT_GT(replay("npy_rows", fuzz::npy_rows), 0u); }
TEST(FuzzCorpus, Csv) { EXPECT_GT(replay("csv", fuzz::csv), 0u); }

}  // namespace
}  // namespace tlkit

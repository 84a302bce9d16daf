// Replays tests/data/fuzz/image_csv/ (tools/fuzz.sh) through model::list_image_csv, as the
// libFuzzer target does (fuzz/entries_image.h): parse or tlkit::InputError, nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "entries_image.h"
#include "test_support.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

TEST(FuzzCorpus, ImageListingCsv) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(test::data_path("fuzz/image_csv")))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    const std::string bytes = test::read_bytes(f.string());
    SCOPED_TRACE(f.string());
    try {
      fuzz::image_csv(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const InputError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not an InputError: " << e.what();
    }
  }
}

}  // namespace
}  // namespace tlkit

// Replays tests/data/fuzz/{image_csv,zoo_manifest,text}/ (tools/fuzz.sh) through the entry points
// of the libFuzzer targets (fuzz/entries_image.h, fuzz/entries_model.h): model::list_image_csv,
// model::parse_zoo_manifest and model::parse_texts must parse or throw tlkit::InputError, nothing
// else.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "entries_image.h"
#include "entries_model.h"
#include "test_support.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

// Feeds every file of tests/data/fuzz/<target> to `entry`; returns how many there were.
template <typename Entry>
std::size_t replay(const std::string& target, Entry entry) {
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
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not an InputError: " << e.what();
    }
  }
  return files.size();
}

TEST(FuzzCorpus, ImageListingCsv) { EXPECT_GT(replay("image_csv", fuzz::image_csv), 0u); }
TEST(FuzzCorpus, ZooManifest) { EXPECT_GT(replay("zoo_manifest", fuzz::zoo_manifest), 0u); }
TEST(FuzzCorpus, TextDataset) { EXPECT_GT(replay("text", fuzz::text_dataset), 0u); }

// The seeds parse as intended (so the replay above exercises the readers past their first check).
TEST(FuzzCorpus, SeedsReachTheFields) {
  const std::string zoo = test::read_bytes(test::data_path("fuzz/zoo_manifest/seed_two.json"));
  const auto m = model::parse_zoo_manifest(zoo, fuzz::zoo_folder() + "/sub/zoo.json");
  ASSERT_EQ(m.models.size(), 2u);
  EXPECT_EQ(m.models[0].kind, "text");
  EXPECT_EQ(m.models[1].input_size, 8);
  const std::string csv = test::read_bytes(test::data_path("fuzz/text/seed_quoted.csv"));
  const auto l = model::parse_texts(csv.substr(1), "q.csv", true);
  ASSERT_EQ(l.samples.size(), 2u);
  EXPECT_EQ(l.samples[0].text, "a, quoted \"text\"");
  EXPECT_EQ(l.classes, (std::vector<std::string>{"neg", "pos"}));
}

}  // namespace
}  // namespace tlkit

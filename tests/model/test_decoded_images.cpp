// The decoded images shared by a zoo's models (tlkit/model/decoded_images.h): the same pixels and
// errors as decoding the file, the budget, and concurrent use; and rank_zoo with and without it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/model/decoded_images.h"
#include "tlkit/model/image_dataset.h"
#include "tlkit/model/rank.h"
#include "tlkit/model/zoo_manifest.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> train_images() {
  std::vector<std::string> v;
  for (const auto& s : list_images(test::data_path("model/images"), "train").samples)
    v.push_back(s.path);
  return v;
}

std::string error_of(DecodedImageCache& c, const std::string& path) {
  try {
    c.get(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DecodedImages, GivesDecodeImagesPixelsAndCountsWhatItKept) {
  const std::vector<std::string> paths = train_images();
  ASSERT_GE(paths.size(), 4u);
  DecodedImageCache cache(std::int64_t{1} << 30);
  std::int64_t bytes = 0;
  for (const auto& p : paths) {
    const RgbImage direct = decode_image(p);
    const auto kept = cache.get(p);
    EXPECT_EQ(kept->width, direct.width);
    EXPECT_EQ(kept->height, direct.height);
    EXPECT_EQ(kept->pixels, direct.pixels) << p;
    EXPECT_EQ(cache.get(p).get(), kept.get());  // the second answer is the kept image
    bytes += static_cast<std::int64_t>(direct.pixels.size());
  }
  const auto st = cache.stats();
  EXPECT_EQ(st.decoded, static_cast<std::int64_t>(paths.size()));
  EXPECT_EQ(st.hits, static_cast<std::int64_t>(paths.size()));
  EXPECT_EQ(st.kept, static_cast<std::int64_t>(paths.size()));
  EXPECT_EQ(st.bytes, bytes);
  EXPECT_EQ(st.not_kept, 0);
}

TEST(DecodedImages, KeepsNoMoreThanItsBudgetAndDecodesTheRestAgain) {
  const std::vector<std::string> paths = train_images();
  const auto first = static_cast<std::int64_t>(decode_image(paths[0]).pixels.size());
  DecodedImageCache cache(first);  // room for the first image only
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& p : paths) EXPECT_EQ(cache.get(p)->pixels, decode_image(p).pixels);
  const auto st = cache.stats();
  EXPECT_LE(st.bytes, first);
  EXPECT_EQ(st.kept, 1);
  EXPECT_EQ(st.hits, 1);  // the first image, on the second pass
  EXPECT_EQ(st.decoded, 2 * static_cast<std::int64_t>(paths.size()) - 1);
  EXPECT_EQ(st.not_kept, st.decoded - 1);
  DecodedImageCache none(0);
  EXPECT_EQ(none.get(paths[0])->pixels, decode_image(paths[0]).pixels);
  EXPECT_EQ(none.get(paths[0])->pixels, decode_image(paths[0]).pixels);
  EXPECT_EQ(none.stats().decoded, 2);
  EXPECT_EQ(none.stats().kept, 0);
}

TEST(DecodedImages, RemembersAFileThatCannotBeDecodedWithItsMessage) {
  const std::string truncated = test::data_path("model/images/special/truncated.jpg");
  std::string direct;
  try {
    decode_image(truncated);
  } catch (const InputError& e) {
    direct = e.what();
  }
  ASSERT_FALSE(direct.empty());
  DecodedImageCache cache(std::int64_t{1} << 20);
  EXPECT_EQ(error_of(cache, truncated), direct);
  EXPECT_EQ(error_of(cache, truncated), direct);
  EXPECT_EQ(cache.stats().decoded, 1);  // read once
  EXPECT_EQ(cache.stats().hits, 1);
  EXPECT_EQ(cache.stats().kept, 0);
}

TEST(DecodedImages, ThreadsSharingItGetTheSamePixels) {
  const std::vector<std::string> paths = train_images();
  DecodedImageCache cache(std::int64_t{1} << 30);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (std::size_t i = 0; i < paths.size(); ++i) {
          const std::string& p = paths[(i + static_cast<std::size_t>(t)) % paths.size()];
          wrong[static_cast<std::size_t>(t)] += cache.get(p)->pixels != decode_image(p).pixels;
        }
    });
  for (auto& th : threads) th.join();
  for (const int w : wrong) EXPECT_EQ(w, 0);
  const auto st = cache.stats();
  // Two threads may decode the same file at once; one copy is kept.
  EXPECT_EQ(st.kept, static_cast<std::int64_t>(paths.size()));
  EXPECT_EQ(st.decoded + st.hits, 4 * 3 * static_cast<std::int64_t>(paths.size()));
}

// Two image models at different input sizes: with the shared decode, each file is decoded once
// for the zoo, and the features are bit-identical to decoding per model.
TEST(DecodedImages, RankDecodesEachImageOnceForTheZooWithTheSameFeatures) {
  test::TempDir t;
  const std::string models = test::data_path("model/models/");
  test::write_bytes(t.file("zoo.json"),
                    "{\"models\": [{\"name\": \"a\", \"file\": \"" + models +
                        "features_only.pt\", \"kind\": \"image\", \"input_size\": 32}, "
                        "{\"name\": \"b\", \"file\": \"" +
                        models +
                        "features_only.pt\", \"kind\": \"image\", \"input_size\": 20}, "
                        "{\"name\": \"c\", \"file\": \"" +
                        models + "tuple.pt\", \"kind\": \"image\", \"input_size\": 32}]}");
  const ZooManifest zoo = read_zoo_manifest(t.file("zoo.json"));
  RankOptions o;
  o.data = test::data_path("model/images");
  o.extract.split = "train";
  o.extract.batch = 3;
  o.metrics = "logme,hscore";
  o.cache_dir = t.file("shared");
  const RankResult shared = rank_zoo(zoo, o);
  o.cache_dir = t.file("alone");
  o.decode_cache_bytes = 0;
  const RankResult alone = rank_zoo(zoo, o);
  const auto n = static_cast<std::int64_t>(train_images().size());
  EXPECT_EQ(shared.decode_cache.decoded, n);
  EXPECT_EQ(shared.decode_cache.hits, 2 * n);
  EXPECT_EQ(shared.decode_cache.kept, n);
  EXPECT_EQ(alone.decode_cache.max_bytes, 0);
  ASSERT_EQ(shared.models.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(shared.models[i].error.empty()) << shared.models[i].error;
    // The arrays' files byte for byte (header and float32 data).
    EXPECT_EQ(test::read_bytes(shared.models[i].cache_path + "/features.npy"),
              test::read_bytes(alone.models[i].cache_path + "/features.npy"))
        << shared.models[i].name;
    EXPECT_EQ(shared.models[i].scores, alone.models[i].scores);
    // Where the time went, per model.
    for (const char* k : {"load_model", "decode", "resize", "forward", "cache_write"})
      EXPECT_TRUE(shared.models[i].seconds.count(k)) << k;
  }
  // The same zoo again: from the feature cache, nothing decoded.
  o.cache_dir = t.file("shared");
  o.decode_cache_bytes = std::int64_t{1} << 30;
  const RankResult again = rank_zoo(zoo, o);
  EXPECT_EQ(again.decode_cache.decoded, 0);
  for (const auto& m : again.models) EXPECT_TRUE(m.seconds.count("cache_read")) << m.name;
}

}  // namespace
}  // namespace tlkit::model

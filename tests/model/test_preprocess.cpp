// Tests of image decoding and preprocessing (src/model/image_preprocess.cpp) against the Python
// tool's PIL pipeline: reference/preprocess_S.npy were written by tools/export_test_models.py with
// tools/extract_features_py.py's load_image.
#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::model {
namespace {

using tlkit::test::data_path;
using tlkit::test::read_bytes;
using tlkit::test::TempDir;
using tlkit::test::write_bytes;

std::vector<std::string> reference_images() {
  std::vector<std::string> v;
  std::ifstream in(data_path("model/reference/images.txt"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(line);
  return v;
}

// PIL's preprocessing is 8-bit until the final x / 255, so the C++ floats must be exactly the
// reference bytes / 255: Pillow's bilinear filter is reimplemented with its fixed-point
// arithmetic, and OpenCV and PIL decode with the same libjpeg-turbo and libpng.
TEST(Preprocess, EqualsThePythonPilPipelineExactly) {
  const std::vector<std::string> images = reference_images();
  ASSERT_EQ(images.size(), 9u);
  for (int size : {32, 45, 64}) {
    const NpyArray ref =
        load_npy(data_path(fmt::format("model/reference/preprocess_{}.npy", size)));
    ASSERT_EQ(ref.header().type, NpyType::kUInt8);
    ASSERT_EQ(ref.header().shape,
              (std::vector<std::int64_t>{static_cast<std::int64_t>(images.size()), 3, size, size}));
    const auto* bytes = static_cast<const std::uint8_t*>(ref.data());
    const std::size_t item = 3u * size * size;
    std::vector<float> x(item);
    for (std::size_t i = 0; i < images.size(); ++i) {
      load_image(data_path("model/images/" + images[i]), size, x.data());
      std::size_t differ = 0;
      for (std::size_t k = 0; k < item; ++k)
        differ += x[k] != static_cast<float>(bytes[i * item + k]) / 255.0f;
      EXPECT_EQ(differ, 0u) << images[i] << " at S = " << size;
    }
  }
}

// Images whose longer side scales to an exact tie at S = 32 (64 x 65 and 65 x 64: 32.5; 64 x 67:
// 33.5): Python's round() goes to the even neighbour (32, 32, 34), rounding half away from zero
// would give 33, 33, 34 and truncation 32, 32, 33; each of those changes about 1800 of the 3072
// reference bytes (reference/preprocess_ties_32.npy, tools/export_test_models.py).
TEST(Preprocess, TiesOfTheScaledSideRoundToEvenAsPython) {
  std::vector<std::string> names;
  {
    std::ifstream in(data_path("model/reference/resize_ties.txt"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) names.push_back(line);
  }
  ASSERT_EQ(names, (std::vector<std::string>{"64x65.png", "65x64.png", "64x67.png"}));
  const int size = 32;
  const NpyArray ref = load_npy(data_path("model/reference/preprocess_ties_32.npy"));
  ASSERT_EQ(ref.header().type, NpyType::kUInt8);
  ASSERT_EQ(ref.header().shape, (std::vector<std::int64_t>{3, 3, size, size}));
  const auto* bytes = static_cast<const std::uint8_t*>(ref.data());
  const std::size_t item = 3u * size * size;
  std::vector<float> x(item);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string path = data_path("model/reference/resize_ties/" + names[i]);
    const RgbImage img = decode_image(path);
    EXPECT_EQ(fmt::format("{}x{}.png", img.width, img.height), names[i]);
    load_image(path, size, x.data());
    std::size_t differ = 0;
    for (std::size_t k = 0; k < item; ++k)
      differ += x[k] != static_cast<float>(bytes[i * item + k]) / 255.0f;
    EXPECT_EQ(differ, 0u) << names[i] << " at S = " << size;
  }
}

TEST(Preprocess, ConvertsGrayAndAlphaToRgb) {
  const RgbImage gray = decode_image(data_path("model/images/special/gray.png"));
  ASSERT_GT(gray.width, 0);
  for (std::size_t p = 0; p < gray.pixels.size(); p += 3) {
    ASSERT_EQ(gray.pixels[p], gray.pixels[p + 1]);
    ASSERT_EQ(gray.pixels[p], gray.pixels[p + 2]);
  }
  // alpha.png is longsleeve's JPEG with an alpha gradient added: the colours are the JPEG's.
  const RgbImage alpha = decode_image(data_path("model/images/special/alpha.png"));
  const RgbImage jpeg = decode_image(
      data_path("model/images/train/longsleeve/021bfd37-1620-4aac-916c-8575c4d3af6b.jpg"));
  EXPECT_EQ(alpha.width, jpeg.width);
  EXPECT_EQ(alpha.height, jpeg.height);
  EXPECT_EQ(alpha.pixels, jpeg.pixels);
}

TEST(Preprocess, RefusesBadImagesNamingThePath) {
  TempDir t;
  const auto message = [](const std::string& path) {
    try {
      decode_image(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("decoded");
  };
  const std::string truncated = data_path("model/images/special/truncated.jpg");
  EXPECT_EQ(message(truncated),
            truncated + ": truncated JPEG (the data ends before the end-of-image marker)");
  // A JPEG cut just before its end-of-image marker is truncated too; one with bytes after it is
  // fine (cameras append data).
  const std::string jpeg = read_bytes(data_path("model/images/train/cat/0000.jpg"));
  write_bytes(t.file("no_eoi.jpg"), jpeg.substr(0, jpeg.size() - 2));
  EXPECT_NE(message(t.file("no_eoi.jpg")).find("truncated JPEG"), std::string::npos);
  write_bytes(t.file("trailing.jpg"), jpeg + "trailing bytes");
  EXPECT_EQ(message(t.file("trailing.jpg")), "decoded");
  // A PNG cut short, or with a damaged chunk, is refused before libpng sees it (which would print
  // "libpng error: ..." on stderr).
  const std::string png = read_bytes(data_path("model/images/special/gray.png"));
  write_bytes(t.file("cut.png"), png.substr(0, png.size() / 2));
  EXPECT_EQ(message(t.file("cut.png")),
            t.file("cut.png") + ": truncated PNG (the data ends before the IEND chunk)");
  std::string damaged = png;
  damaged[png.size() / 2] = static_cast<char>(damaged[png.size() / 2] ^ 0x55);
  write_bytes(t.file("damaged.png"), damaged);
  EXPECT_NE(message(t.file("damaged.png")).find("corrupt PNG (CRC error in a IDAT chunk)"),
            std::string::npos)
      << message(t.file("damaged.png"));
  write_bytes(t.file("text.jpg"), "not an image at all");
  EXPECT_NE(message(t.file("text.jpg")).find(t.file("text.jpg") + ": cannot decode"),
            std::string::npos);
  write_bytes(t.file("empty.png"), "");
  EXPECT_NE(message(t.file("empty.png")).find("empty file"), std::string::npos);
  EXPECT_NE(message(t.file("missing.jpg")).find(t.file("missing.jpg") + ": cannot open"),
            std::string::npos);
}

TEST(Preprocess, ResizeIsIdentityAtTheSameSizeAndKeepsConstantImages) {
  RgbImage img;
  img.width = 7;
  img.height = 5;
  img.pixels.assign(7 * 5 * 3, 0);
  for (std::size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = static_cast<std::uint8_t>(i * 37);
  EXPECT_EQ(resize_bilinear_pil(img, 7, 5).pixels, img.pixels);
  RgbImage flat = img;
  std::fill(flat.pixels.begin(), flat.pixels.end(), 200);
  for (auto [w, h] : {std::pair{3, 2}, std::pair{20, 13}, std::pair{1, 1}, std::pair{7, 11}}) {
    const RgbImage r = resize_bilinear_pil(flat, w, h);
    ASSERT_EQ(r.width, w);
    ASSERT_EQ(r.height, h);
    for (auto v : r.pixels) ASSERT_EQ(v, 200);
  }
  EXPECT_THROW(resize_bilinear_pil(img, 0, 3), InputError);
}

TEST(Preprocess, ResizesTheShorterSideAndCropsTheCentre) {
  // A 4 x 2 image whose columns are 0, 85, 170, 255: S = 2 keeps the height and crops columns
  // 1..2 of the 4 x 2 image (no resize).
  RgbImage img;
  img.width = 4;
  img.height = 2;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) img.pixels.push_back(static_cast<std::uint8_t>(85 * x));
  std::vector<float> out(3 * 2 * 2);
  preprocess_rgb(img, 2, out.data());
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out[c * 4 + 0], 85.0f / 255.0f);
    EXPECT_EQ(out[c * 4 + 1], 170.0f / 255.0f);
    EXPECT_EQ(out[c * 4 + 3], 170.0f / 255.0f);
  }
  EXPECT_THROW(preprocess_rgb(img, 0, out.data()), InputError);
}

}  // namespace
}  // namespace tlkit::model

// Tests of dataset listing, subsampling and hashing (src/model/image_dataset.cpp, sha256.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "model/sha256.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/model/image_dataset.h"
#include "tlkit/model/text_dataset.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;
using tlkit::test::data_path;
using tlkit::test::TempDir;
using tlkit::test::write_bytes;

std::string images_dir() { return data_path("model/images"); }

// A folder dataset of empty files (listing never opens them): class -> file names.
void make_tree(const std::string& root, const std::map<std::string, std::vector<std::string>>& t) {
  for (const auto& [cls, files] : t) {
    fs::create_directories(root + "/" + cls);
    for (const auto& f : files) write_bytes(root + "/" + cls + "/" + f, "x");
  }
}

TEST(Sha256, MatchesFipsVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // A million 'a', fed in uneven pieces through the buffering path.
  Sha256 h;
  const std::string chunk(997, 'a');
  std::size_t left = 1000000;
  while (left > 0) {
    const std::size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(ImageListing, ListsAnImageFolderWithASplitLikeTorchvision) {
  const ImageListing l = list_images(images_dir(), "train");
  EXPECT_EQ(l.format, "folder");
  EXPECT_EQ(l.classes, (std::vector<std::string>{"cat", "longsleeve", "ship", "shorts", "skirt"}));
  ASSERT_EQ(l.samples.size(), 6u);
  EXPECT_EQ(l.samples[0].name, "train/cat/0000.jpg");
  EXPECT_EQ(l.samples[1].name, "train/cat/0001.jpg");
  EXPECT_EQ(l.samples[2].label, 1);
  EXPECT_EQ(l.samples[3].name, "train/ship/0000.jpg");
  EXPECT_EQ(l.samples[5].label, 4);
  EXPECT_TRUE(fs::exists(l.samples[5].path));
  // The same listing as the Python tool's files.txt (reference/images.txt holds its rows).
  std::string expected;
  std::ifstream in(data_path("model/reference/images.txt"));
  for (std::string line; std::getline(in, line) && line.rfind("train/", 0) == 0;)
    expected += line + "\n";
  std::string names;
  for (const auto& s : l.samples) names += s.name + "\n";
  EXPECT_EQ(names, expected);
}

TEST(ImageListing, ListsWithoutASplit) {
  const ImageListing l = list_images(images_dir() + "/train");
  ASSERT_EQ(l.samples.size(), 6u);
  EXPECT_EQ(l.samples[0].name, "cat/0000.jpg");
}

TEST(ImageListing, FiltersExtensionsAndSortsByteWise) {
  TempDir t;
  make_tree(t.path(), {{"b", {"Z.JPG", "a.png", "c.jpeg", "notes.txt", "x.gif"}},
                       {"a", {"1.jpg"}},
                       {"C", {"k.Png"}}});
  fs::create_directories(t.path() + "/b/sub.jpg");  // a folder named like an image is skipped
  const ImageListing l = list_image_folder(t.path());
  EXPECT_EQ(l.classes, (std::vector<std::string>{"C", "a", "b"}));
  std::vector<std::string> names;
  for (const auto& s : l.samples) names.push_back(s.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"C/k.Png", "a/1.jpg", "b/Z.JPG", "b/a.png", "b/c.jpeg"}));
}

TEST(ImageListing, EmptyClassIsANoteAndKeepsItsLabel) {
  TempDir t;
  make_tree(t.path(), {{"a", {"1.jpg"}}, {"b", {}}, {"c", {"2.jpg"}}});
  const ImageListing l = list_image_folder(t.path());
  ASSERT_EQ(l.samples.size(), 2u);
  EXPECT_EQ(l.samples[1].label, 2);
  ASSERT_EQ(l.notes.size(), 1u);
  EXPECT_NE(l.notes[0].find("'b'"), std::string::npos);
}

TEST(ImageListing, RefusesBadFoldersNamingThem) {
  TempDir t;
  EXPECT_THROW(list_images(t.file("missing")), InputError);
  try {
    list_images(t.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no class sub-folders"), std::string::npos) << e.what();
  }
  try {
    list_images(images_dir(), "validation");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no split folder 'validation' (sub-folders: special, "
                                         "train)"),
              std::string::npos)
        << e.what();
  }
  // Split folders given as the data root: say to pass --split.
  make_tree(t.path() + "/splits/train", {{"a", {"1.jpg"}}});
  make_tree(t.path() + "/splits/test", {{"a", {"2.jpg"}}});
  try {
    list_images(t.path() + "/splits");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("pass --split (one of: test, train)"), std::string::npos)
        << e.what();
  }
}

// Like torchvision's ImageFolder: every file below a class folder with one of its extensions
// (any case), sub-folders included and labelled by the class folder; the rest is skipped and said.
TEST(ImageListing, FoldersTakeImageFolderExtensionsAndSubFoldersAndSaySkippedFiles) {
  TempDir t;
  make_tree(t.path(), {{"cat", {"a.webp", "b.BMP", "c.tif", "d.gif", "notes.txt", "e.jpg"}},
                       {"dog", {"f.png", "g.ppm", "h.pgm", "i.tiff", "j.jpeg"}}});
  make_tree(t.path() + "/cat", {{"more", {"k.png", "l.svg"}}, {"more/deeper", {"m.jpg"}}});
  const ImageListing l = list_images(t.path());
  EXPECT_EQ(l.classes, (std::vector<std::string>{"cat", "dog"}));
  std::vector<std::string> names;
  for (const auto& s : l.samples) names.push_back(s.name + ":" + std::to_string(s.label));
  EXPECT_EQ(names, (std::vector<std::string>{"cat/a.webp:0", "cat/b.BMP:0", "cat/c.tif:0",
                                             "cat/e.jpg:0", "cat/more/deeper/m.jpg:0",
                                             "cat/more/k.png:0", "dog/f.png:1", "dog/g.ppm:1",
                                             "dog/h.pgm:1", "dog/i.tiff:1", "dog/j.jpeg:1"}));
  EXPECT_EQ(l.samples[4].path, t.path() + "/cat/more/deeper/m.jpg");
  ASSERT_EQ(l.notes.size(), 2u);
  EXPECT_NE(l.notes[0].find("2 image(s) are in sub-folders of the class folders"),
            std::string::npos)
      << l.notes[0];
  EXPECT_NE(l.notes[1].find("skipped 3 file(s) that are not images by their extension (1 .gif, "
                            "1 .svg, 1 .txt)"),
            std::string::npos)
      << l.notes[1];
  // Only unreadable kinds: the error lists the extensions that are read.
  TempDir u;
  make_tree(u.path(), {{"a", {"x.gif"}}});
  try {
    list_images(u.path());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no image files (.bmp/.jpeg/.jpg/.pgm/.png/.ppm/.tif/"
                                         ".tiff/.webp) in the class folders (a)"),
              std::string::npos)
        << e.what();
  }
}

// The data a CSV listing holds, or the error it gives.
std::string csv_outcome(const TempDir& t, const std::string& text) {
  write_bytes(t.file("list.csv"), text);
  try {
    const ImageListing l = list_images(t.file("list.csv"));
    std::string out;
    for (const auto& s : l.samples) out += s.name + ":" + std::to_string(s.label) + " ";
    for (const auto& c : l.classes) out += "[" + c + "]";
    return out;
  } catch (const InputError& e) {
    return e.what();
  }
}

TEST(ImageListing, CsvHeadersAreReadInEitherOrderAndOtherFirstRowsAreNotImages) {
  TempDir t;
  EXPECT_EQ(csv_outcome(t, "label,path\n3,a.jpg\n5,b.jpg\n"), "a.jpg:3 b.jpg:5 ");
  EXPECT_EQ(csv_outcome(t, "Image,Class\na.jpg,dog\nb.jpg,cat\n"), "a.jpg:1 b.jpg:0 [cat][dog]");
  EXPECT_EQ(csv_outcome(t, "filename,target\na.jpg,0\n"), "a.jpg:0 ");
  // A typo in the header is not read as an image of class "lable".
  const std::string typo = csv_outcome(t, "path,lable\na.jpg,dog\nb.jpg,cat\n");
  EXPECT_NE(typo.find(t.file("list.csv") + ":1: the first row 'path,lable' looks like a header "
                                           "but is not one tlkit reads"),
            std::string::npos)
      << typo;
  // A first row that is an image is data, with or without an image extension when it exists.
  EXPECT_EQ(csv_outcome(t, "a.jpg,dog\nb.jpg,cat\n"), "a.jpg:1 b.jpg:0 [cat][dog]");
  write_bytes(t.file("photo"), "x");
  EXPECT_EQ(csv_outcome(t, "photo,dog\nb.jpg,cat\n"), "photo:1 b.jpg:0 [cat][dog]");
  EXPECT_EQ(csv_outcome(t, "img_0001,7\n"), "img_0001:7 ");
}

TEST(ImageListing, RealValuedLabelsAreRefusedNotMadeIntoClasses) {
  TempDir t;
  const std::string msg = csv_outcome(t, "path,label\na.jpg,1\nb.jpg,0.37\nc.jpg,2.5\n");
  EXPECT_NE(msg.find(t.file("list.csv") + ":3: label '0.37' is a real number, and every label is "
                                          "a number: classification needs integer labels or "
                                          "class names (3 distinct values would make 3 classes)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("tlkit score --regression"), std::string::npos) << msg;
  EXPECT_NE(csv_outcome(t, "a.jpg,1.0\nb.jpg,-2e-3\n").find(":1: label '1.0' is a real number"),
            std::string::npos);
  // Names that merely contain numbers, and integers, are classes as before.
  EXPECT_EQ(csv_outcome(t, "a.jpg,v1.5\nb.jpg,2\n"), "a.jpg:1 b.jpg:0 [2][v1.5]");
  EXPECT_EQ(csv_outcome(t, "a.jpg,nan\nb.jpg,inf\n"), "a.jpg:1 b.jpg:0 [inf][nan]");
  EXPECT_EQ(csv_outcome(t, "a.jpg,-1\nb.jpg,+4\n"), "a.jpg:-1 b.jpg:4 ");
}

TEST(ImageListing, ReadsACsvWithClassNames) {
  TempDir t;
  write_bytes(t.file("list.csv"),
              "\xEF\xBB\xBFpath,label\r\nimg/b.jpg,dog\r\n\"img/with, comma.jpg\",cat\r\n\r\n"
              "/abs/c.png, dog \r\n");
  const ImageListing l = list_images(t.file("list.csv"));
  EXPECT_EQ(l.format, "csv");
  EXPECT_EQ(l.classes, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(l.samples.size(), 3u);
  EXPECT_EQ(l.samples[0].name, "img/b.jpg");
  EXPECT_EQ(l.samples[0].path, t.path() + "/img/b.jpg");
  EXPECT_EQ(l.samples[0].label, 1);
  EXPECT_EQ(l.samples[1].name, "img/with, comma.jpg");
  EXPECT_EQ(l.samples[1].label, 0);
  EXPECT_EQ(l.samples[2].path, "/abs/c.png");
  EXPECT_EQ(l.samples[2].label, 1);
}

TEST(ImageListing, ReadsACsvWithIntegerLabelsAsTheyAre) {
  TempDir t;
  write_bytes(t.file("l.csv"), "a.jpg,7\nb.jpg,-2\nc.jpg,+7\n");
  const ImageListing l = list_images(t.file("l.csv"));
  EXPECT_TRUE(l.classes.empty());
  ASSERT_EQ(l.samples.size(), 3u);
  EXPECT_EQ(l.samples[0].label, 7);
  EXPECT_EQ(l.samples[1].label, -2);
  EXPECT_EQ(l.samples[2].label, 7);
}

TEST(ImageListing, RefusesMalformedCsvNamingTheLine) {
  TempDir t;
  const auto message = [&](const std::string& text) {
    write_bytes(t.file("bad.csv"), text);
    try {
      list_images(t.file("bad.csv"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("a.jpg,1\nb.jpg,2,3\n").find("bad.csv:2: expected 2 fields"),
            std::string::npos);
  EXPECT_NE(message("a.jpg,1\nb.jpg\n").find("bad.csv:2: expected 2 fields 'path,label', found 1"),
            std::string::npos);
  EXPECT_NE(message("a.jpg,\n").find("bad.csv:1: empty label"), std::string::npos);
  EXPECT_NE(message("\"a.jpg,1\n").find("unterminated"), std::string::npos);
  EXPECT_NE(message("path,label\n").find("no path,label rows"), std::string::npos);
  EXPECT_THROW(list_images(t.file("bad.csv"), "train"), InputError);  // CSVs have no splits
}

std::vector<std::string> names_of(const ImageListing& l) {
  std::vector<std::string> v;
  for (const auto& s : l.samples) v.push_back(s.name);
  return v;
}

TEST(Subsample, PerClassIsDeterministicSortedAndSeedDependent) {
  TempDir t;
  std::map<std::string, std::vector<std::string>> tree;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 20; ++i)
      tree["c" + std::to_string(c)].push_back(fmt::format("{:03}.jpg", i));
  make_tree(t.path(), tree);
  const ImageListing all = list_image_folder(t.path());
  const ImageListing a = subsample(all, {5, 0, 42});
  const ImageListing b = subsample(all, {5, 0, 42});
  const ImageListing c = subsample(all, {5, 0, 43});
  EXPECT_EQ(names_of(a), names_of(b));
  EXPECT_NE(names_of(a), names_of(c));
  ASSERT_EQ(a.samples.size(), 15u);
  for (int k = 0; k < 3; ++k) {  // 5 per class, in listing (sorted) order, distinct
    for (int i = 0; i < 5; ++i) EXPECT_EQ(a.samples[5 * k + i].label, k);
    for (int i = 1; i < 5; ++i) EXPECT_LT(a.samples[5 * k + i - 1].name, a.samples[5 * k + i].name);
  }
  // The documented algorithm, written out: one mt19937_64, Fisher-Yates per class.
  std::mt19937_64 rng(42);
  for (int k = 0; k < 3; ++k) {
    std::vector<std::string> names = tree["c" + std::to_string(k)];
    for (std::size_t i = names.size(); i > 1; --i) {
      const std::uint64_t bound = i, threshold = (0 - bound) % bound;
      std::uint64_t r;
      do r = rng();
      while (r < threshold);
      std::swap(names[i - 1], names[r % bound]);
    }
    std::vector<std::string> chosen(names.begin(), names.begin() + 5);
    std::sort(chosen.begin(), chosen.end());
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(a.samples[5 * k + i].name, "c" + std::to_string(k) + "/" + chosen[i]);
  }
}

TEST(Subsample, IndependentOfTheFileSystemOrder) {
  // Per class the candidates are sorted by name first, so a CSV in any row order gives the same
  // choice (kept rows stay in the CSV's order).
  TempDir t;
  std::string fwd = "path,label\n", rev = "path,label\n";
  for (int i = 0; i < 30; ++i) fwd += fmt::format("{:02}.jpg,{}\n", i, i % 2);
  for (int i = 29; i >= 0; --i) rev += fmt::format("{:02}.jpg,{}\n", i, i % 2);
  write_bytes(t.file("f.csv"), fwd);
  write_bytes(t.file("r.csv"), rev);
  const ImageListing a = subsample(list_images(t.file("f.csv")), {4, 0, 7});
  const ImageListing b = subsample(list_images(t.file("r.csv")), {4, 0, 7});
  std::set<std::string> sa, sb;
  for (const auto& s : a.samples) sa.insert(s.name);
  for (const auto& s : b.samples) sb.insert(s.name);
  EXPECT_EQ(sa.size(), 8u);
  EXPECT_EQ(sa, sb);
}

TEST(Subsample, LimitTakesAUniformSampleAfterPerClass) {
  TempDir t;
  std::map<std::string, std::vector<std::string>> tree;
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 10; ++i) tree["c" + std::to_string(c)].push_back(fmt::format("{}.jpg", i));
  make_tree(t.path(), tree);
  const ImageListing all = list_image_folder(t.path());
  EXPECT_EQ(subsample(all, {0, 100, 1}).samples.size(), 40u);  // more than there are: all
  const ImageListing l = subsample(all, {0, 12, 1});
  ASSERT_EQ(l.samples.size(), 12u);
  EXPECT_EQ(names_of(l), names_of(subsample(all, {0, 12, 1})));
  std::set<std::int64_t> labels;
  for (std::size_t i = 0; i < l.samples.size(); ++i) {
    labels.insert(l.samples[i].label);
    if (i) {
      EXPECT_LT(std::make_pair(l.samples[i - 1].label, l.samples[i - 1].name),
                std::make_pair(l.samples[i].label, l.samples[i].name));
    }
  }
  EXPECT_GE(labels.size(), 2u);  // not the first 12 rows
  const ImageListing both = subsample(all, {3, 5, 9});
  EXPECT_EQ(both.samples.size(), 5u);
  EXPECT_THROW(subsample(all, {-1, 0, 0}), InputError);
}

TEST(Subsample, ShortClassesAreANote) {
  TempDir t;
  make_tree(t.path(), {{"a", {"1.jpg", "2.jpg"}}, {"b", {"1.jpg", "2.jpg", "3.jpg", "4.jpg"}}});
  const ImageListing l = subsample(list_image_folder(t.path()), {3, 0, 0});
  EXPECT_EQ(l.samples.size(), 5u);
  ASSERT_EQ(l.notes.size(), 1u);
  EXPECT_NE(l.notes[0].find("label 0 has only 2"), std::string::npos);
}

TEST(ListingHash, IsTheSha256OfFilesTxt) {
  const ImageListing l = list_images(images_dir(), "train");
  const std::string text = listing_text(l.samples);
  EXPECT_EQ(text.substr(0, 21), "train/cat/0000.jpg\t0\n");
  EXPECT_EQ(listing_sha256(l.samples), sha256_hex(text));
  TempDir t;
  write_bytes(t.file("f"), text);
  EXPECT_EQ(file_sha256(t.file("f")), sha256_hex(text));
  EXPECT_THROW(file_sha256(t.file("missing")), InputError);
}

// Regression and multi-label listings: a CSV with a header naming the sample column and the
// target columns.
ImageListing targets_of(const TempDir& t, const std::string& text, Task task,
                        const std::string& name = "t.csv") {
  write_bytes(t.file(name), text);
  return list_dataset(t.file(name), "", task);
}

std::string target_error(const TempDir& t, const std::string& text, Task task,
                         const std::string& name = "t.csv") {
  return test::input_error_of([&] { targets_of(t, text, task, name); });
}

TEST(TargetListing, ReadsRealValuedColumnsInHeaderOrder) {
  TempDir t;
  const ImageListing l =
      targets_of(t, "size,path,noise\n0.5,a.jpg,1e-3\n-2,img/b.jpg,3\n", Task::kRegression);
  EXPECT_EQ(l.format, "csv");
  EXPECT_EQ(l.task, Task::kRegression);
  EXPECT_EQ(l.target_names, (std::vector<std::string>{"size", "noise"}));
  EXPECT_TRUE(l.classes.empty());
  ASSERT_EQ(l.samples.size(), 2u);
  EXPECT_EQ(l.samples[0].name, "a.jpg");
  EXPECT_EQ(l.samples[1].path, t.path() + "/img/b.jpg");
  EXPECT_EQ(l.samples[0].targets, (std::vector<double>{0.5, 1e-3}));
  EXPECT_EQ(l.samples[1].targets, (std::vector<double>{-2.0, 3.0}));
  EXPECT_EQ(target_matrix(l.samples), (std::vector<double>{0.5, 1e-3, -2.0, 3.0}));
  // files.txt (and the cache key) carry the targets, shortest round-trip form.
  EXPECT_EQ(listing_text(l.samples), "a.jpg\t0.5\t0.001\nimg/b.jpg\t-2\t3\n");
  // The other names of the image column, and one target.
  EXPECT_EQ(targets_of(t, "y,image\n1.25,a.jpg\n", Task::kRegression).target_names,
            std::vector<std::string>{"y"});
  // Text: the text column and the targets.
  const ImageListing x =
      targets_of(t, "text,score\nhello there,0.75\nbye,-1\n", Task::kRegression, "t2.csv");
  EXPECT_EQ(x.format, "text-csv");
  ASSERT_EQ(x.samples.size(), 2u);
  EXPECT_EQ(x.samples[0].text, "hello there");
  EXPECT_EQ(x.samples[1].targets, std::vector<double>{-1.0});
}

TEST(TargetListing, MultiLabelColumnsAreZeroOrOne) {
  TempDir t;
  const ImageListing l =
      targets_of(t, "file,cat,dog\na.jpg,1,0\nb.jpg,0,1\nc.jpg,1,1\n", Task::kMultiLabel);
  EXPECT_EQ(l.task, Task::kMultiLabel);
  EXPECT_EQ(target_matrix(l.samples), (std::vector<double>{1, 0, 0, 1, 1, 1}));
  EXPECT_NE(target_error(t, "file,cat,dog\na.jpg,1,0\nb.jpg,2,1\n", Task::kMultiLabel)
                .find("t.csv:3: column 'cat': multi-label targets are 0 or 1, got '2'"),
            std::string::npos);
  EXPECT_NE(target_error(t, "file,cat\na.jpg,0.5\n", Task::kMultiLabel).find("got '0.5'"),
            std::string::npos);
}

TEST(TargetListing, BadListingsNameTheFileLineColumnAndValue) {
  TempDir t;
  // No header: the first row is not one.
  EXPECT_NE(target_error(t, "a.jpg,0.5\nb.jpg,1\n", Task::kRegression)
                .find("t.csv: --task regression needs a header naming the image column (path, "
                      "file, filename or image) and the target columns; the header read is "
                      "'a.jpg,0.5'"),
            std::string::npos);
  EXPECT_NE(target_error(t, "path\na.jpg\n", Task::kRegression)
                .find("needs at least one target column besides 'path'"),
            std::string::npos);
  const std::string nan_target =
      target_error(t, "path,y\na.jpg,0.5\nb.jpg,tall\n", Task::kRegression);
  EXPECT_NE(nan_target.find("t.csv"), std::string::npos) << nan_target;
  EXPECT_NE(nan_target.find("tall"), std::string::npos) << nan_target;
  EXPECT_NE(nan_target.find("'y'"), std::string::npos) << nan_target;
  // A folder's labels are classes.
  make_tree(t.file("folder"), {{"a", {"1.jpg"}}, {"b", {"2.jpg"}}});
  EXPECT_NE(test::input_error_of([&] {
              list_dataset(t.file("folder"), "", Task::kRegression);
            }).find("--task regression needs a CSV listing"),
            std::string::npos);
  // Several columns without --task get the hint.
  EXPECT_NE(csv_outcome(t, "a.jpg,1,0\n").find("--task regression or --task multilabel"),
            std::string::npos);
  EXPECT_NE(csv_outcome(t, "a.jpg,0.5\nb.jpg,1\n").find("--task regression"), std::string::npos);
}

TEST(TargetListing, NotesAnUnnamedColumnAndAConstantTarget) {
  TempDir t;
  const ImageListing l = targets_of(t, ",path,y,z\n0,a.jpg,1,5\n1,b.jpg,2,5\n", Task::kRegression);
  EXPECT_EQ(l.target_names, (std::vector<std::string>{"y", "z"}));
  ASSERT_EQ(l.notes.size(), 2u);
  EXPECT_NE(l.notes[0].find("column(s) 1 have no name"), std::string::npos) << l.notes[0];
  EXPECT_EQ(l.notes[1], "target 'z' is 5 for every sample");
}

TEST(TargetListing, SubsamplesByLimitOnly) {
  TempDir t;
  const ImageListing l =
      targets_of(t, "path,y\na.jpg,1\nb.jpg,2\nc.jpg,3\nd.jpg,4\n", Task::kRegression);
  SubsampleOptions per_class;
  per_class.per_class = 2;
  EXPECT_NE(test::input_error_of([&] { subsample(l, per_class); })
                .find("--per-class 2: samples per class need class labels, and these are "
                      "regression targets (use --limit N)"),
            std::string::npos);
  SubsampleOptions limit;
  limit.limit = 2;
  limit.seed = 3;
  const ImageListing s = subsample(l, limit);
  ASSERT_EQ(s.samples.size(), 2u);
  EXPECT_EQ(s.task, Task::kRegression);
  for (const ImageSample& x : s.samples)  // each sample keeps its own target
    EXPECT_EQ(x.targets[0], x.name[0] - 'a' + 1.0) << x.name;
}

}  // namespace
}  // namespace tlkit::model

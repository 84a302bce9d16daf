// Text datasets: the two formats, labels, names, errors, the data-kind rule, and text models run
// through forward(List[str]) against PyTorch's outputs (tests/data/model/README.md).
#include <gtest/gtest.h>

#include <algorithm>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/text_dataset.h"

namespace tlkit::model {
namespace {

std::string text_file(const std::string& name) { return test::data_path("model/text/" + name); }

TEST(TextDataset, LinesGiveLabelsTextsAndFileOrderNames) {
  const ImageListing l = list_texts(text_file("trec12.txt"));
  EXPECT_EQ(l.format, "lines");
  ASSERT_EQ(l.samples.size(), 12u);
  EXPECT_TRUE(l.classes.empty());  // integer labels are used as they are
  EXPECT_EQ(l.samples[0].label, 0);
  EXPECT_EQ(l.samples[1].label, 1);
  EXPECT_EQ(l.samples[0].text, "How did serfdom develop in and then leave Russia ?");
  EXPECT_EQ(l.samples[0].name, "000000001");
  EXPECT_EQ(l.samples[11].name, "000000012");
  EXPECT_TRUE(l.samples[0].path.empty());
  EXPECT_TRUE(is_text_listing(l));
  const std::vector<std::int64_t> ref =
      load_npy(test::data_path("model/reference/text_stats_labels.npy")).labels();
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(l.samples[i].label, ref[i]);
}

TEST(TextDataset, CsvWithNamedClassesMatchesTheLines) {
  const ImageListing lines = list_texts(text_file("trec12.txt"));
  const ImageListing csv = list_texts(text_file("trec12.csv"));
  EXPECT_EQ(csv.format, "text-csv");
  ASSERT_EQ(csv.samples.size(), lines.samples.size());
  // c0 < c1 < ... sort like the numbers they stand for, so the labels agree.
  for (std::size_t i = 0; i < csv.samples.size(); ++i) {
    EXPECT_EQ(csv.samples[i].text, lines.samples[i].text) << i;
    EXPECT_EQ(csv.classes[static_cast<std::size_t>(csv.samples[i].label)],
              "c" + std::to_string(lines.samples[i].label));
  }
  EXPECT_EQ(csv.samples[0].name, "000000002");  // the CSV line (after the header)
}

TEST(TextDataset, BlankLinesAreSkippedAndBadLinesNamed) {
  test::TempDir t;
  test::write_bytes(t.file("a.txt"), "pos good film\r\n\n  \nneg\tbad one  \n");
  const ImageListing l = list_texts(t.file("a.txt"));
  ASSERT_EQ(l.samples.size(), 2u);
  EXPECT_EQ(l.classes, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(l.samples[0].label, 1);
  EXPECT_EQ(l.samples[0].text, "good film");
  EXPECT_EQ(l.samples[1].text, "bad one");
  EXPECT_EQ(l.samples[1].name, "000000004");

  test::write_bytes(t.file("b.txt"), "1 fine\n2\n");
  EXPECT_NE(test::input_error_of([&] { list_texts(t.file("b.txt")); }).find("b.txt:2"),
            std::string::npos);
  test::write_bytes(t.file("c.txt"), "\n\n");
  EXPECT_NE(test::input_error_of([&] { list_texts(t.file("c.txt")); }).find("no '<label> <text>'"),
            std::string::npos);
  test::write_bytes(t.file("d.csv"), "text,lab\nhello,1\n");
  EXPECT_NE(test::input_error_of([&] { list_texts(t.file("d.csv")); }).find("label"),
            std::string::npos);
  EXPECT_NE(test::input_error_of([&] { list_texts(t.file("none.txt")); }).find("none.txt"),
            std::string::npos);
}

TEST(TextDataset, DataKindRule) {
  test::TempDir t;
  test::write_bytes(t.file("images.csv"), "path,label\na.jpg,1\n");
  test::write_bytes(t.file("texts.csv"), "label,text\n1,hello\n");
  EXPECT_EQ(detect_data_kind(test::data_path("model/images")), DataKind::kImage);
  EXPECT_EQ(detect_data_kind(t.file("images.csv")), DataKind::kImage);
  EXPECT_EQ(detect_data_kind(t.file("texts.csv")), DataKind::kText);
  EXPECT_EQ(detect_data_kind(text_file("trec12.txt")), DataKind::kText);
  EXPECT_NE(test::input_error_of([&] { detect_data_kind(t.file("nope")); }).find("no such"),
            std::string::npos);
  EXPECT_NE(test::input_error_of([&] {
              list_dataset(text_file("trec12.txt"), "train");
            }).find("no splits"),
            std::string::npos);
}

TEST(TextDataset, ListingHashCoversTheTexts) {
  ImageListing l = list_texts(text_file("trec12.txt"));
  const std::string h = listing_sha256(l.samples);
  l.samples[3].text += "!";
  EXPECT_NE(listing_sha256(l.samples), h);
  // Subsampling applies to texts as to images: per class, deterministic, file order kept.
  SubsampleOptions so;
  so.per_class = 1;
  so.seed = 3;
  const ImageListing a = subsample(list_texts(text_file("trec12.txt")), so);
  const ImageListing b = subsample(list_texts(text_file("trec12.txt")), so);
  EXPECT_EQ(listing_sha256(a.samples), listing_sha256(b.samples));
  EXPECT_TRUE(std::is_sorted(a.samples.begin(), a.samples.end(),
                             [](const auto& x, const auto& y) { return x.name < y.name; }));
}

TEST(TextModel, FeaturesEqualPyTorchAndBatchingDoesNotMatter) {
  const NpyArray ref = load_npy(test::data_path("model/reference/text_stats_features.npy"));
  for (int batch : {1, 5, 12}) {
    ExtractOptions o;
    o.model = test::data_path("model/models/text_stats.pt");
    o.data = text_file("trec12.txt");
    o.batch = batch;
    const ExtractResult r = extract_features(o);
    ASSERT_EQ(r.n, 12);
    ASSERT_EQ(r.features_dim, 5);
    EXPECT_FALSE(r.has_logits);  // auto: a text model's second output is not class scores
    const auto* want = static_cast<const float*>(ref.data());
    for (std::size_t i = 0; i < r.features.size(); ++i)
      EXPECT_EQ(r.features[i], want[i]) << "batch " << batch << " value " << i;
  }
}

TEST(TextModel, AnImageModelOnTextsFailsNamingTheModel) {
  ExtractOptions o;
  o.model = test::data_path("model/models/tuple.pt");
  o.data = text_file("trec12.txt");
  const std::string e = test::input_error_of([&] { extract_features(o); });
  EXPECT_NE(e.find("tuple.pt: forward failed on a batch of 12 texts"), std::string::npos) << e;
}

}  // namespace
}  // namespace tlkit::model

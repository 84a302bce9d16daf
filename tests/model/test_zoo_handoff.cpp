// Zoo entries as run settings (tlkit extract/finetune/probe --zoo --model-name) and fine-tuning
// runs as truth.csv (tlkit truth): the mapping of every field, the refusal of a flag that
// disagrees with the entry, and the naming of runs.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"
#include "tlkit/model/zoo_handoff.h"

namespace tlkit {
namespace {

using model::ZooModelFlags;

std::string tuple_pt() { return test::data_path("model/models/tuple.pt"); }

// Two entries on the fixture models: one with logits and mean/std, one stating neither.
model::ZooManifest fixture_zoo() {
  const std::string text = R"({"models": [
    {"name": "tuple", "file": ")" +
                           tuple_pt() +
                           R"(", "kind": "image", "input_size": 32, "feature_dim": 8,
     "logits_dim": 3, "features_output": 0, "logits_output": 1,
     "mean": [0.5, 0.25, 0.125], "std": [2, 4, 8]},
    {"name": "plain", "file": ")" +
                           test::data_path("model/models/trainable.pt") +
                           R"(", "kind": "image", "input_size": 8}]})";
  return model::parse_zoo_manifest(text, "/zoo/zoo.json");
}

TEST(ZooHandoff, AnEntryMapsToItsFileSizeOutputsAndNormalisation) {
  const auto s = model::zoo_model_settings(fixture_zoo(), "tuple", {});
  EXPECT_EQ(s.model, tuple_pt());
  EXPECT_EQ(s.input_size, 32);
  EXPECT_EQ(s.features_output, 0);
  EXPECT_EQ(s.logits_output, 1);
  EXPECT_EQ(s.feature_dim, 8);
  EXPECT_EQ(s.logits_dim, 3);
  EXPECT_EQ(s.mean, (std::vector<float>{0.5f, 0.25f, 0.125f}));
  EXPECT_EQ(s.std, (std::vector<float>{2, 4, 8}));
  EXPECT_EQ(s.source, "the zoo entry 'tuple' of /zoo/zoo.json");

  model::ExtractOptions eo;
  model::apply_zoo_settings(s, eo);
  EXPECT_EQ(eo.model, tuple_pt());
  EXPECT_EQ(eo.input_size, 32);
  EXPECT_EQ(eo.expected.input_size, 32);
  EXPECT_EQ(eo.expected.feature_dim, 8);
  EXPECT_EQ(eo.expected.logits_dim, 3);
  EXPECT_EQ(eo.expected_source, s.source);
  EXPECT_EQ(eo.model_options.features_output, 0);
  EXPECT_EQ(eo.model_options.logits_output, 1);
  EXPECT_EQ(eo.mean, s.mean);

  model::FinetuneOptions fo;
  model::apply_zoo_settings(s, fo);
  EXPECT_EQ(fo.model, tuple_pt());
  EXPECT_EQ(fo.input_size, 32);
  EXPECT_EQ(fo.std, s.std);
}

TEST(ZooHandoff, AnEntryWithoutLogitsDimGivesNoLogits) {
  const auto s = model::zoo_model_settings(fixture_zoo(), "plain", {});
  EXPECT_EQ(s.logits_output, model::kNoOutput);
  EXPECT_EQ(s.logits_dim, 0);
  EXPECT_TRUE(s.mean.empty());
  model::ExtractOptions eo;
  model::apply_zoo_settings(s, eo);
  EXPECT_EQ(eo.model_options.logits_output, model::kNoOutput);
  EXPECT_EQ(eo.expected.feature_dim, 0);  // not stated: not checked
}

TEST(ZooHandoff, AnUnknownNameListsTheValidOnes) {
  const std::string e =
      test::input_error_of([] { model::zoo_model_settings(fixture_zoo(), "resnet", {}); });
  EXPECT_NE(e.find("--model-name resnet: no model of that name in /zoo/zoo.json (its models: "
                   "tuple, plain)"),
            std::string::npos)
      << e;
}

TEST(ZooHandoff, FlagsThatAgreeAreAcceptedAndOthersRefusedNamingBoth) {
  ZooModelFlags same;
  same.input_size = 32;
  same.features_output = 0;
  same.logits_output = 1;
  same.mean = std::vector<float>{0.5f, 0.25f, 0.125f};
  same.std = std::vector<float>{2, 4, 8};
  EXPECT_EQ(model::zoo_model_settings(fixture_zoo(), "tuple", same).input_size, 32);
  ZooModelFlags auto_logits;
  auto_logits.logits_output = model::kAutoOutput;  // "auto" defers to the entry
  EXPECT_EQ(model::zoo_model_settings(fixture_zoo(), "tuple", auto_logits).logits_output, 1);

  const auto error = [](const char* name, const ZooModelFlags& f) {
    return test::input_error_of([&] { model::zoo_model_settings(fixture_zoo(), name, f); });
  };
  ZooModelFlags f;
  f.input_size = 64;
  EXPECT_NE(error("tuple", f)
                .find("--input-size 64 disagrees with the zoo entry 'tuple' of "
                      "/zoo/zoo.json (input_size 32)"),
            std::string::npos)
      << error("tuple", f);
  f = {};
  f.features_output = 1;
  EXPECT_NE(error("tuple", f).find("--features-output 1 disagrees with the zoo entry 'tuple'"),
            std::string::npos);
  f = {};
  f.logits_output = 1;
  EXPECT_NE(error("plain", f)
                .find("--logits-output 1 disagrees with the zoo entry 'plain' of "
                      "/zoo/zoo.json (logits output none: no logits_dim)"),
            std::string::npos)
      << error("plain", f);
  f = {};
  f.mean = std::vector<float>{0.5f, 0.5f, 0.5f};
  EXPECT_NE(error("tuple", f)
                .find("--mean 0.5,0.5,0.5 disagrees with the zoo entry 'tuple' of "
                      "/zoo/zoo.json (mean 0.5,0.25,0.125)"),
            std::string::npos)
      << error("tuple", f);
  f = {};
  f.std = std::vector<float>{1, 1, 1};
  EXPECT_NE(error("plain", f).find("(std none)"), std::string::npos) << error("plain", f);
}

// A metrics.json with the fields tlkit truth reads, as run_finetune writes them.
void write_run(const std::string& dir, const std::string& model_file, const std::string& test_acc,
               const std::string& extra = "") {
  std::filesystem::create_directories(dir);
  test::write_bytes(dir + "/metrics.json", R"({"config": {"model": ")" + model_file +
                                               R"("}, "best_val_acc": 50.0, "test_acc": )" +
                                               test_acc + extra + "}");
}

TEST(ZooHandoff, TruthNamesRunsByZooEntryRecordedNameOrFileStem) {
  test::TempDir t;
  const auto zoo = fixture_zoo();
  write_run(t.file("a"), tuple_pt(), "87.5");
  write_run(t.file("b"), test::data_path("model/models/trainable.pt"), "62.25",
            R"(, "zoo_model": {"name": "recorded", "manifest": "z.json"})");
  const auto rows =
      model::collect_truth({t.file("a"), t.file("b") + "/metrics.json"}, "test_acc", &zoo);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].model, "tuple");  // the entry whose file the run fine-tuned
  EXPECT_EQ(rows[0].accuracy, 87.5);
  EXPECT_EQ(rows[1].model, "recorded");  // the name finetune --zoo recorded wins
  EXPECT_EQ(model::truth_csv(rows), "model,accuracy\ntuple,87.5\nrecorded,62.25\n");
  // Without a zoo: the file's stem, as tlkit rank --model names it; best_val_acc on request.
  const auto stems = model::collect_truth({t.file("a")}, "best_val_acc", nullptr);
  EXPECT_EQ(model::truth_csv(stems), "model,accuracy\ntuple,50\n");
}

TEST(ZooHandoff, TruthRefusesUnfinishedDuplicateUnknownAndMissingRuns) {
  test::TempDir t;
  const auto zoo = fixture_zoo();
  write_run(t.file("a"), tuple_pt(), "87.5");
  write_run(t.file("a2"), tuple_pt(), "80");
  write_run(t.file("null"), tuple_pt(), "null");
  write_run(t.file("other"), "/elsewhere/m.pt", "1");
  write_run(t.file("features"), "", "1");
  const auto error = [&](std::vector<std::string> runs, const model::ZooManifest* z) {
    return test::input_error_of([&] { model::collect_truth(runs, "test_acc", z); });
  };
  EXPECT_NE(error({t.file("null")}, &zoo).find("test_acc is null: the run did not finish"),
            std::string::npos);
  EXPECT_NE(
      error({t.file("a"), t.file("a2")}, &zoo)
          .find("a2/metrics.json: model tuple also has a run in " + t.file("a") + "/metrics.json"),
      std::string::npos)
      << error({t.file("a"), t.file("a2")}, &zoo);
  EXPECT_NE(error({t.file("other")}, &zoo)
                .find("config.model /elsewhere/m.pt: no entry of /zoo/zoo.json has that file"),
            std::string::npos);
  EXPECT_NE(error({t.file("features")}, nullptr).find("config.model is empty"), std::string::npos);
  EXPECT_NE(error({t.file("none")}, nullptr).find("none: cannot read"), std::string::npos);
  EXPECT_NE(test::input_error_of([&] {
              model::collect_truth({t.file("a")}, "val", nullptr);
            }).find("--metric val: expected test_acc or best_val_acc"),
            std::string::npos);
}

}  // namespace
}  // namespace tlkit

// Tests of TorchScript models and feature extraction (src/model/torchscript_model.cpp,
// extractor.cpp) on the fixture models of tools/export_test_models.py and, when ../shared/kit is
// present, on real pretrained models against the Python tool's outputs.
//
// Tolerances: PyTorch (Python) and LibTorch share one libtorch build here, so the model as loaded
// gives the same float32 results up to summation order; freezing folds BatchNorm into the
// convolutions and oneDNN reorders sums, which moves results by about 1e-6 relative to the largest
// output (measured: 5e-7 on cifar10_resnet20, 2e-6 on darknet_tiny_imagenet). The checks allow
// 1e-4 of the largest value: 50x the measured error, 1000x below a real difference (a wrong
// optimisation is off by 0.1-0.8 of it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/torchscript_optimize.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;
using tlkit::test::close_to;
using tlkit::test::data_path;
using tlkit::test::read_bytes;
using tlkit::test::TempDir;
using tlkit::test::write_bytes;

std::string model_path(const std::string& name) {
  return data_path("model/models/" + name + ".pt");
}

ExtractOptions fixture_options(const std::string& model, Optimization o = Optimization::kNone) {
  ExtractOptions opt;
  opt.model = model_path(model);
  opt.data = data_path("model/images");
  opt.split = "train";
  opt.input_size = 32;
  opt.batch = 4;
  opt.threads = 2;
  opt.decode_threads = 2;
  opt.model_options.optimization = o;
  return opt;
}

std::vector<float> npy_floats(const std::string& path, std::int64_t* rows = nullptr,
                              std::int64_t* cols = nullptr) {
  const NpyArray a = load_npy(path);
  const FeatureView f = a.features();
  if (rows) *rows = f.rows;
  if (cols) *cols = f.cols;
  std::vector<float> v(static_cast<std::size_t>(f.rows * f.cols));
  for (std::int64_t i = 0; i < f.rows; ++i)
    for (std::int64_t j = 0; j < f.cols; ++j) v[i * f.cols + j] = static_cast<float>(f.at(i, j));
  return v;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  return tlkit::test::input_error_of(std::forward<Fn>(fn));
}

TEST(Extract, TupleModelEqualsPythonWithEveryOptimization) {
  const std::vector<float> ref_f = npy_floats(data_path("model/reference/tuple_features.npy"));
  const std::vector<float> ref_l = npy_floats(data_path("model/reference/tuple_logits.npy"));
  const std::vector<std::int64_t> ref_y =
      load_npy(data_path("model/reference/tuple_labels.npy")).labels();
  for (Optimization o : {Optimization::kNone, Optimization::kFreeze, Optimization::kFull}) {
    const ExtractResult r = extract_features(fixture_options("tuple", o));
    EXPECT_EQ(r.optimization, o);
    EXPECT_TRUE(r.model_notes.empty()) << r.model_notes.front();
    ASSERT_EQ(r.n, 6);
    EXPECT_EQ(r.features_dim, 8);
    ASSERT_TRUE(r.has_logits);
    EXPECT_EQ(r.logits_dim, 3);
    EXPECT_TRUE(close_to(r.features, ref_f)) << to_string(o);
    EXPECT_TRUE(close_to(r.logits, ref_l)) << to_string(o);
    EXPECT_EQ(r.labels, ref_y);
    EXPECT_EQ(r.samples[2].name, "train/longsleeve/021bfd37-1620-4aac-916c-8575c4d3af6b.jpg");
    EXPECT_TRUE(r.skipped.empty());
    EXPECT_EQ(r.threads, 2);
  }
}

TEST(Extract, ResultsDoNotDependOnBatchSizeOrThreads) {
  ExtractOptions o = fixture_options("tuple");
  o.batch = 1;
  o.decode_threads = 1;
  const ExtractResult a = extract_features(o);
  o.batch = 5;
  o.decode_threads = 3;
  o.threads = 1;
  const ExtractResult b = extract_features(o);
  o.batch = 100;
  const ExtractResult c = extract_features(o);
  EXPECT_TRUE(close_to(a.features, b.features, 1e-6));
  EXPECT_TRUE(close_to(a.features, c.features, 1e-6));
  EXPECT_EQ(a.labels, c.labels);
}

TEST(Extract, ChannelsLastGivesTheSameFeatures) {
  for (const char* name : {"tuple", "features_only", "relu6_pool"}) {
    ExtractOptions o = fixture_options(name);
    const ExtractResult a = extract_features(o);
    o.model_options.channels_last = true;
    const ExtractResult b = extract_features(o);
    EXPECT_TRUE(close_to(a.features, b.features, 1e-5)) << name;
    EXPECT_TRUE(close_to(a.logits, b.logits, 1e-5)) << name;
  }
}

TEST(Extract, FeaturesOnlyModelIsFlattenedAndHasNoLogits) {
  const ExtractResult r = extract_features(fixture_options("features_only"));
  EXPECT_FALSE(r.has_logits);
  EXPECT_EQ(r.features_dim, 8);  // [N, 8, 1, 1] -> [N, 8]
  EXPECT_TRUE(close_to(r.features, npy_floats(data_path("model/reference/tuple_features.npy"))));
  ExtractOptions o = fixture_options("features_only");
  o.model_options.logits_output = 1;
  EXPECT_NE(error_of([&] { extract_features(o); })
                .find("--logits-output 1 but forward returns "
                      "one tensor"),
            std::string::npos);
}

TEST(Extract, OutputIndicesAreConfigurable) {
  ExtractOptions o = fixture_options("tuple");
  o.model_options.features_output = 1;  // the logits as features
  o.model_options.logits_output = kNoOutput;
  const ExtractResult r = extract_features(o);
  EXPECT_FALSE(r.has_logits);
  EXPECT_EQ(r.features_dim, 3);
  EXPECT_TRUE(close_to(r.features, npy_floats(data_path("model/reference/tuple_logits.npy"))));
  o.model_options.features_output = 2;
  EXPECT_NE(error_of([&] { extract_features(o); })
                .find("--features-output 2 but forward "
                      "returns 2 outputs (indices 0..1)"),
            std::string::npos);
}

TEST(Extract, AModelWhoseForwardThrowsIsAnInputErrorOnOneLine) {
  for (Optimization o : {Optimization::kNone, Optimization::kFull}) {
    const std::string msg = error_of([&] { extract_features(fixture_options("throws", o)); });
    EXPECT_NE(msg.find(model_path("throws") + ": forward failed on an input of shape "
                                              "[4, 3, 32, 32]"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("tlkit test model: forward always fails"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Extract, AModelWithTheWrongBatchDimensionIsRefused) {
  for (Optimization o : {Optimization::kNone, Optimization::kFull}) {
    const std::string msg = error_of([&] { extract_features(fixture_options("wrong_shape", o)); });
    EXPECT_NE(msg.find("output 0 (features) has shape [5, 8] for an input of shape [4, 3, 32, 32]"
                       ": its first dimension must be the batch size 4"),
              std::string::npos)
        << msg;
  }
}

TEST(Extract, MissingOrBrokenModelFilesAreInputErrors) {
  TempDir t;
  EXPECT_NE(error_of([&] { TorchScriptModel m(t.file("none.pt")); }).find("no such model file"),
            std::string::npos);
  write_bytes(t.file("junk.pt"), "this is not a zip archive");
  EXPECT_NE(error_of([&] {
              TorchScriptModel m(t.file("junk.pt"));
            }).find(t.file("junk.pt") + ": not a loadable TorchScript model"),
            std::string::npos);
  ModelOptions bad;
  bad.features_output = -1;
  EXPECT_THROW(TorchScriptModel(model_path("tuple"), bad), InputError);
}

// Optimisation steps that are wrong by construction (src/model/torchscript_optimize.h): the
// fallback is tested on tlkit's behaviour (verify, detect, fall back, say so), not on whether
// LibTorch's optimize_for_inference happens to be wrong on this processor.

// The module as loaded with every parameter shifted by 0.5, frozen: a different function.
torch::jit::Module perturbed(const torch::jit::Module& loaded) {
  torch::jit::Module m = loaded.clone();  // a deep copy: `loaded` keeps its weights
  torch::NoGradGuard no_grad;
  for (at::Tensor p : m.parameters()) p.add_(0.5);
  return torch::jit::freeze(m);
}

torch::jit::Module wrong_when_full(const torch::jit::Module& loaded, Optimization o) {
  return o == Optimization::kFull ? perturbed(loaded) : detail::default_optimize(loaded, o);
}

torch::jit::Module always_wrong(const torch::jit::Module& loaded, Optimization) {
  return perturbed(loaded);
}

torch::jit::Module throws_when_full(const torch::jit::Module& loaded, Optimization o) {
  if (o == Optimization::kFull) throw std::runtime_error("injected failure");
  return detail::default_optimize(loaded, o);
}

// Installs an optimisation step for one scope.
class OptimizeStepScope {
 public:
  explicit OptimizeStepScope(detail::OptimizeFunction f)
      : previous_(detail::set_optimize_function(f)) {}
  ~OptimizeStepScope() { detail::set_optimize_function(previous_); }

 private:
  detail::OptimizeFunction previous_;
};

TEST(Extract, AWrongOptimizationIsCaughtAndUndone) {
  const std::vector<float> ref = npy_floats(data_path("model/reference/relu6_pool_features.npy"));
  const ExtractResult plain = extract_features(fixture_options("relu6_pool", Optimization::kNone));
  EXPECT_TRUE(close_to(plain.features, ref));
  OptimizeStepScope wrong(&wrong_when_full);
  // The injected step really is wrong: run alone (no check with kFreeze), it changes the features.
  {
    OptimizeStepScope alone(&always_wrong);
    const ExtractResult r = extract_features(fixture_options("relu6_pool", Optimization::kFreeze));
    EXPECT_FALSE(close_to(r.features, ref, 1e-2));
  }
  const ExtractResult r = extract_features(fixture_options("relu6_pool", Optimization::kFull));
  EXPECT_TRUE(close_to(r.features, ref));
  EXPECT_EQ(r.optimization, Optimization::kFreeze);
  ASSERT_EQ(r.model_notes.size(), 1u);
  EXPECT_NE(r.model_notes[0].find("--optimize full: the optimised model disagrees with the model "
                                  "as loaded on an input of shape [4, 3, 32, 32] (features differ "
                                  "by up to"),
            std::string::npos)
      << r.model_notes[0];
  EXPECT_NE(r.model_notes[0].find("running it frozen only"), std::string::npos) << r.model_notes[0];
}

TEST(Extract, AFrozenModelThatIsWrongTooFallsBackToTheModelAsLoaded) {
  const std::vector<float> ref = npy_floats(data_path("model/reference/relu6_pool_features.npy"));
  OptimizeStepScope wrong(&always_wrong);
  ModelOptions mo;
  mo.optimization = Optimization::kFull;
  TorchScriptModel m(model_path("relu6_pool"), mo);
  EXPECT_EQ(m.optimization(), Optimization::kFull);  // nothing checked before the first batch
  const ExtractResult r = extract_features(fixture_options("relu6_pool", Optimization::kFull));
  EXPECT_TRUE(close_to(r.features, ref));
  EXPECT_EQ(r.optimization, Optimization::kNone);
  ASSERT_EQ(r.model_notes.size(), 2u);
  EXPECT_NE(r.model_notes[0].find("--optimize full: the optimised model disagrees"),
            std::string::npos)
      << r.model_notes[0];
  EXPECT_NE(r.model_notes[1].find("--optimize freeze: the optimised model disagrees"),
            std::string::npos)
      << r.model_notes[1];
  EXPECT_NE(r.model_notes[1].find("running it as loaded"), std::string::npos) << r.model_notes[1];
}

TEST(Extract, AFailingOptimizationFallsBackToFreezingAndSaysSo) {
  const std::vector<float> ref = npy_floats(data_path("model/reference/relu6_pool_features.npy"));
  OptimizeStepScope failing(&throws_when_full);
  const ExtractResult r = extract_features(fixture_options("relu6_pool", Optimization::kFull));
  EXPECT_TRUE(close_to(r.features, ref));
  EXPECT_EQ(r.optimization, Optimization::kFreeze);
  ASSERT_EQ(r.model_notes.size(), 1u);
  EXPECT_NE(r.model_notes[0].find("--optimize full failed (injected failure): running the model "
                                  "frozen"),
            std::string::npos)
      << r.model_notes[0];
}

// With LibTorch's own step, whatever this processor makes of relu6_pool, the features are right
// and a fallback is said.
TEST(Extract, FullOptimizationGivesTheModelsFeaturesOnThisProcessor) {
  const std::vector<float> ref = npy_floats(data_path("model/reference/relu6_pool_features.npy"));
  const ExtractResult r = extract_features(fixture_options("relu6_pool", Optimization::kFull));
  EXPECT_TRUE(close_to(r.features, ref));
  bool said = false;
  for (const auto& note : r.model_notes) said = said || note.rfind("--optimize full", 0) == 0;
  EXPECT_EQ(r.optimization == Optimization::kFull, !said) << to_string(r.optimization);
}

// A folder with good and bad images: images/train plus special/truncated.jpg, a text file named
// .jpg, and the special PNGs (good).
std::string make_mixed_dataset(const TempDir& t) {
  const std::string root = t.path() + "/data";
  fs::copy(data_path("model/images/train"), root, fs::copy_options::recursive);
  fs::create_directories(root + "/special");
  for (const char* f : {"alpha.png", "gray.png", "truncated.jpg"})
    fs::copy_file(data_path(std::string("model/images/special/") + f), root + "/special/" + f);
  write_bytes(root + "/ship/zz_text.jpg", "not an image");
  return root;
}

TEST(Extract, BadImagesFailTheRunByDefaultNamingThePath) {
  TempDir t;
  ExtractOptions o = fixture_options("tuple");
  o.data = make_mixed_dataset(t);
  o.split = "";
  const std::string msg = error_of([&] { extract_features(o); });
  EXPECT_NE(msg.find(o.data + "/ship/zz_text.jpg: cannot decode the image"), std::string::npos)
      << msg;  // the first bad image in listing order (ship < special)
  EXPECT_NE(msg.find("--on-bad-image skip"), std::string::npos) << msg;
}

TEST(Extract, BadImagesAreSkippedWhenAsked) {
  TempDir t;
  ExtractOptions o = fixture_options("tuple");
  o.data = make_mixed_dataset(t);
  o.split = "";
  o.on_bad_image = BadImagePolicy::kSkip;
  o.batch = 3;
  const ExtractResult r = extract_features(o);
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0].path, o.data + "/ship/zz_text.jpg");
  EXPECT_EQ(r.skipped[1].path, o.data + "/special/truncated.jpg");
  EXPECT_NE(r.skipped[1].reason.find("truncated JPEG"), std::string::npos);
  EXPECT_EQ(r.listing.samples.size(), 10u);  // 7 in the train classes, 3 in special
  ASSERT_EQ(r.n, 8);
  ASSERT_EQ(r.samples.size(), 8u);
  for (const auto& s : r.samples) EXPECT_EQ(s.name.find("zz_text"), std::string::npos);
  // The rows of the good train images equal the clean run's (the same images, other batches).
  const ExtractResult clean = extract_features(fixture_options("tuple"));
  std::vector<float> rows;
  for (std::int64_t i = 0; i < r.n; ++i)
    if (r.samples[i].name.rfind("special/", 0) != 0)
      rows.insert(rows.end(), r.features.begin() + i * 8, r.features.begin() + (i + 1) * 8);
  EXPECT_TRUE(close_to(rows, clean.features, 1e-6));
  // Labels follow the sorted class folders: cat, longsleeve, ship, shorts, skirt, special.
  EXPECT_EQ(r.labels.back(), 5);
}

TEST(Extract, AllImagesBadIsAnError) {
  TempDir t;
  fs::create_directories(t.path() + "/a");
  write_bytes(t.path() + "/a/x.jpg", "junk");
  ExtractOptions o = fixture_options("tuple");
  o.data = t.path();
  o.split = "";
  o.on_bad_image = BadImagePolicy::kSkip;
  EXPECT_NE(error_of([&] { extract_features(o); }).find("none of the 1 images could be decoded"),
            std::string::npos);
}

TEST(Extract, SubsamplesAndReportsProgress) {
  ExtractOptions o = fixture_options("tuple");
  o.sample.per_class = 1;
  o.sample.seed = 3;
  o.batch = 2;
  std::vector<std::int64_t> done;
  o.progress = [&](std::int64_t d, std::int64_t total) {
    EXPECT_EQ(total, 5);
    done.push_back(d);
  };
  const ExtractResult r = extract_features(o);
  EXPECT_EQ(r.n, 5);
  EXPECT_EQ(r.listed, 6);
  EXPECT_EQ(r.labels, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(done, (std::vector<std::int64_t>{2, 4, 5}));
  const ExtractResult again = extract_features(o);
  EXPECT_EQ(r.samples[0].name, again.samples[0].name);
}

TEST(Extract, RefusesBadOptions) {
  ExtractOptions o = fixture_options("tuple");
  o.input_size = 0;
  EXPECT_NE(error_of([&] { extract_features(o); })
                .find("--input-size is required for image models that do not record their input "
                      "size, got 0"),
            std::string::npos);
  o = fixture_options("tuple");
  o.batch = 0;
  EXPECT_THROW(extract_features(o), InputError);
  EXPECT_THROW(parse_bad_image_policy("ignore"), InputError);
  EXPECT_THROW(parse_optimization("fast"), InputError);
  EXPECT_EQ(parse_optimization("freeze"), Optimization::kFreeze);
}

// Models as users bring them (tools/export_test_models.py, make_user_models): each either works
// as the contract says or is refused or flagged, never silently taken for something else.
TEST(ExtractUserModels, ATorchSaveFileIsRefusedSayingHowToExport) {
  const std::string msg = error_of([&] { TorchScriptModel m(model_path("state_dict")); });
  EXPECT_NE(msg.find(model_path("state_dict") + ": not a loadable TorchScript model: it is a "
                                                "torch.save file (a state_dict or a pickled "
                                                "nn.Module"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("torch.jit.trace(model.eval()"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tools/export_torchvision.py"), std::string::npos) << msg;
}

TEST(ExtractUserModels, APlainClassifiersLogitsAreFlaggedAsNotFeatures) {
  const ExtractResult r = extract_features(fixture_options("classifier_only"));
  EXPECT_EQ(r.features_dim, 3);
  EXPECT_FALSE(r.has_logits);
  // They are the tuple model's logits, taken as features: said so.
  EXPECT_TRUE(close_to(r.features, npy_floats(data_path("model/reference/tuple_logits.npy"))));
  ASSERT_EQ(r.model_notes.size(), 1u);
  EXPECT_NE(r.model_notes[0].find("forward returns one tensor of width 3, the output width of the "
                                  "model's last Linear layer 'fc': these look like a "
                                  "classifier's logits"),
            std::string::npos)
      << r.model_notes[0];
  // The contract's models are not flagged: features with logits, or pooled features alone.
  EXPECT_TRUE(extract_features(fixture_options("tuple")).model_notes.empty());
  EXPECT_TRUE(extract_features(fixture_options("features_only")).model_notes.empty());
}

TEST(ExtractUserModels, TheInputSizeAModelRecordsIsUsedAndChecked) {
  ExtractOptions o = fixture_options("records_size");
  o.input_size = 0;  // taken from the model's tlkit.json
  const ExtractResult r = extract_features(o);
  EXPECT_EQ(r.input_size, 32);
  EXPECT_TRUE(close_to(r.features, npy_floats(data_path("model/reference/tuple_features.npy"))));
  EXPECT_TRUE(r.model_notes.empty());
  o.input_size = 45;
  std::string msg = error_of([&] { extract_features(o); });
  EXPECT_NE(msg.find(model_path("records_size") + ": --input-size 45, but " +
                     model_path("records_size") + "'s tlkit.json says input_size 32"),
            std::string::npos)
      << msg;
  // What the caller knows (a zoo.json entry) is checked the same way and named.
  o = fixture_options("tuple");
  o.expected.feature_dim = 9;
  o.expected_source = "zoo.json entry 'tiny'";
  msg = error_of([&] { extract_features(o); });
  EXPECT_NE(msg.find(model_path("tuple") + ": the features have 8 values per sample, but zoo.json "
                                           "entry 'tiny' says feature_dim 9 (is --input-size 32 "
                                           "the size the model expects?)"),
            std::string::npos)
      << msg;
  o.expected = {};
  o.expected.logits_dim = 4;
  EXPECT_NE(error_of([&] { extract_features(o); }).find("the logits have 3 values per sample"),
            std::string::npos);
  // A malformed record is refused when the model is loaded.
  msg = error_of([&] { TorchScriptModel m(model_path("bad_record")); });
  EXPECT_NE(msg.find(model_path("bad_record") + ": tlkit.json field input_size must be a positive "
                                                "integer, got \"large\""),
            std::string::npos)
      << msg;
}

TEST(ExtractUserModels, OutputWidthsThatChangeWithTheInputSizeAreSaidWhenNothingIsKnown) {
  // Features 8 x 2 x 2 at S = 32; at the probe's S = 48, 8 x 3 x 3.
  ExtractOptions o = fixture_options("fixed_flatten");
  ExtractResult r = extract_features(o);
  EXPECT_EQ(r.features_dim, 32);
  ASSERT_EQ(r.model_notes.size(), 1u);
  EXPECT_NE(r.model_notes[0].find("the output widths change with the input size (features 32, "
                                  "logits 3 at --input-size 32; features 72, logits 3 at 48)"),
            std::string::npos)
      << r.model_notes[0];
  // A size stated by the caller alone (a zoo entry without feature_dim) is still probed: such an
  // entry's input_size may be wrong.
  o.expected.input_size = 32;
  o.expected_source = "zoo.json";
  EXPECT_EQ(extract_features(o).model_notes.size(), 1u);
  // A stated feature width settles it: nothing is probed and nothing said.
  o.expected.feature_dim = 32;
  r = extract_features(o);
  EXPECT_TRUE(r.model_notes.empty());
  // The pooled fixture keeps its widths at the probe's size.
  EXPECT_TRUE(extract_features(fixture_options("tuple")).model_notes.empty());
  // Too small for the model: LibTorch's message, and the hint.
  o = fixture_options("fixed_flatten");
  o.input_size = 8;
  const std::string msg = error_of([&] { extract_features(o); });
  EXPECT_NE(msg.find("forward failed on an input of shape [4, 3, 8, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(is --input-size the size this model expects?)"), std::string::npos) << msg;
}

TEST(ExtractOutputs, AreCompleteAndMatchTheResult) {
  TempDir t;
  const ExtractOptions o = fixture_options("tuple", Optimization::kFull);
  const ExtractResult r = extract_features(o);
  const std::string dir = t.file("out/tuple");
  write_extract_outputs(r, o, dir);
  for (const char* f : {"features.npy", "logits.npy", "labels.npy", "files.txt", "meta.json"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  std::int64_t rows = 0, cols = 0;
  EXPECT_EQ(npy_floats(dir + "/features.npy", &rows, &cols), r.features);
  EXPECT_EQ(rows, 6);
  EXPECT_EQ(cols, 8);
  EXPECT_EQ(npy_floats(dir + "/logits.npy"), r.logits);
  const NpyArray labels = load_npy(dir + "/labels.npy");
  EXPECT_EQ(labels.header().type, NpyType::kInt64);
  EXPECT_EQ(labels.labels(), r.labels);
  EXPECT_EQ(read_bytes(dir + "/files.txt"), listing_text(r.samples));
  const nlohmann::json meta = tlkit::test::load_json(dir + "/meta.json");
  EXPECT_EQ(meta["schema_version"], 1);
  EXPECT_EQ(meta["model"]["name"], "tuple");
  EXPECT_EQ(meta["model"]["sha256"], file_sha256(model_path("tuple")));
  EXPECT_EQ(meta["model"]["optimize"], "full");
  EXPECT_EQ(meta["data"]["listing_sha256"], listing_sha256(r.listing.samples));
  EXPECT_EQ(meta["data"]["classes"].size(), 5u);
  EXPECT_EQ(meta["data"]["split"], "train");
  EXPECT_EQ(meta["preprocessing"]["input_size"], 32);
  EXPECT_EQ(meta["outputs"]["n"], 6);
  EXPECT_EQ(meta["outputs"]["features_dim"], 8);
  EXPECT_EQ(meta["outputs"]["logits_dim"], 3);
  EXPECT_GT(meta["run"]["images_per_second"].get<double>(), 0.0);
  EXPECT_FALSE(meta["torch_version"].get<std::string>().empty());
  for (const auto& e : fs::directory_iterator(dir))  // no temporaries left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // Rewriting the folder with a features-only model removes the stale logits.npy.
  const ExtractOptions o2 = fixture_options("features_only");
  write_extract_outputs(extract_features(o2), o2, dir);
  EXPECT_FALSE(fs::exists(dir + "/logits.npy"));
  EXPECT_TRUE(tlkit::test::load_json(dir + "/meta.json")["outputs"]["logits_dim"].is_null());
}

TEST(ExtractOutputs, RefusesAnOutputPathThatIsAFile) {
  TempDir t;
  write_bytes(t.file("file"), "x");
  const ExtractOptions o = fixture_options("tuple");
  const ExtractResult r = extract_features(o);
  EXPECT_NE(error_of([&] {
              write_extract_outputs(r, o, t.file("file"));
            }).find("--out " + t.file("file") + ": cannot create the folder"),
            std::string::npos);
  EXPECT_EQ(default_output_dir("/models/cifar10_resnet20.pt"), "tlkit-features/cifar10_resnet20");
}

// ---- Real models of ../shared/kit (skipped when it is absent) ----

std::string kit(const std::string& rel) { return std::string(TLKIT_KIT_DIR) + "/" + rel; }

#define SKIP_WITHOUT_KIT()                                                           \
  do {                                                                               \
    if (!fs::exists(kit("models/zoo.json")))                                         \
      GTEST_SKIP() << "kit not found at " << TLKIT_KIT_DIR << " (integration test)"; \
  } while (false)

// The Python tool's pipeline and LibTorch agree end to end on 20 CIFAR-10 test images.
TEST(KitExtract, Resnet20EqualsThePythonTool) {
  SKIP_WITHOUT_KIT();
  TempDir t;
  std::string csv = "path,label\n";
  std::vector<std::int64_t> labels;
  std::ifstream in(data_path("model/reference/kit_resnet20_files.txt"));
  for (std::string line; std::getline(in, line);) {
    const std::size_t tab = line.find('\t');
    csv += kit("data/cifar10-test/" + line.substr(0, tab)) + "," + line.substr(tab + 1) + "\n";
    labels.push_back(std::stoll(line.substr(tab + 1)));
  }
  ASSERT_EQ(labels.size(), 20u);
  write_bytes(t.file("list.csv"), csv);
  for (int variant = 0; variant < 3; ++variant) {
    // As loaded; optimised for inference; frozen in channels-last format.
    const Optimization o = variant == 0   ? Optimization::kNone
                           : variant == 1 ? Optimization::kFull
                                          : Optimization::kFreeze;
    ExtractOptions opt;
    opt.model = kit("models/image/cifar10_resnet20.pt");
    opt.data = t.file("list.csv");
    opt.input_size = 32;
    opt.batch = 8;
    opt.model_options.optimization = o;
    opt.model_options.channels_last = variant == 2;
    const ExtractResult r = extract_features(opt);
    EXPECT_EQ(r.optimization, o);
    EXPECT_EQ(r.labels, labels);
    EXPECT_EQ(r.features_dim, 64);
    EXPECT_EQ(r.logits_dim, 10);
    EXPECT_TRUE(
        close_to(r.features, npy_floats(data_path("model/reference/kit_resnet20_features.npy"))))
        << to_string(o);
    EXPECT_TRUE(
        close_to(r.logits, npy_floats(data_path("model/reference/kit_resnet20_logits.npy"))))
        << to_string(o);
  }
}

// The same preprocessed tensor (the PIL reference) through LibTorch and PyTorch.
TEST(KitExtract, Resnet20OnThePythonTensorEqualsPyTorch) {
  SKIP_WITHOUT_KIT();
  const NpyArray x8 = load_npy(data_path("model/reference/preprocess_32.npy"));
  const auto* bytes = static_cast<const std::uint8_t*>(x8.data());
  std::vector<float> x(static_cast<std::size_t>(x8.header().count()));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(bytes[i]) / 255.0f;
  TorchScriptModel m(kit("models/image/cifar10_resnet20.pt"));
  const ModelOutputs out = m.forward(x.data(), x8.rows(), 32, 32);
  EXPECT_TRUE(close_to(
      out.features,
      npy_floats(data_path("model/reference/kit_resnet20_on_preprocess_32_features.npy"))));
}

std::vector<float> synthetic_input(std::int64_t n, int size) {
  std::vector<float> x(static_cast<std::size_t>(n * 3 * size * size));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(static_cast<double>((static_cast<std::int64_t>(i) * 7919) % 1009) /
                              1008.0);
  return x;
}

// Traced ImageNet models on a synthetic input, with every optimisation: where LibTorch 1.13's
// optimize_for_inference is wrong for the MobileNetV1 (on some processors), it must be caught.
TEST(KitExtract, TracedImagenetModelsEqualPyTorchWithEveryOptimization) {
  SKIP_WITHOUT_KIT();
  for (const auto& [name, size] :
       {std::pair<std::string, int>{"imagenet_mobilenet_v1_025_128", 128},
        std::pair<std::string, int>{"darknet_tiny_imagenet", 224}}) {
    const std::vector<float> ref_f =
        npy_floats(data_path("model/reference/kit_" + name + "_synthetic_features.npy"));
    const std::vector<float> ref_l =
        npy_floats(data_path("model/reference/kit_" + name + "_synthetic_logits.npy"));
    const std::vector<float> x = synthetic_input(2, size);
    for (Optimization o : {Optimization::kNone, Optimization::kFreeze, Optimization::kFull}) {
      ModelOptions mo;
      mo.optimization = o;
      TorchScriptModel m(kit("models/image/" + name + ".pt"), mo);
      const ModelOutputs out = m.forward(x.data(), 2, size, size);
      EXPECT_TRUE(close_to(out.features, ref_f)) << name << " " << to_string(o);
      EXPECT_TRUE(close_to(out.logits, ref_l)) << name << " " << to_string(o);
      // A second call of the same shape runs the verified module alone.
      EXPECT_TRUE(close_to(m.forward(x.data(), 2, size, size).features, ref_f));
      // Whether optimize_for_inference is wrong here depends on the processor (wrong on the
      // Intel Xeons tried, right on an AMD EPYC): a fallback must be said, whichever happens.
      if (m.optimization() != o) {
        EXPECT_FALSE(m.notes().empty()) << name << " " << to_string(o);
      }
    }
  }
}

}  // namespace
}  // namespace tlkit::model

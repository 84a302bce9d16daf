// tlkit::model probe (tlkit/model/probe.h) and the block surgery of finetune.h
// (FinetuneOptions::reinit_blocks, block_order): on the scripted fixture tests/data/probe/
// probe_gap.pt, whose per-layer features tools/export_probe_fixtures.py computed with PyTorch
// forward hooks (independently of tlkit's graph cutting); plus one small kit run (skipped
// without the kit).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/probe.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;
using Params = std::map<std::string, std::vector<float>>;

std::string gap() { return test::data_path("probe/probe_gap.pt"); }

std::vector<float> npy_floats(const std::string& file) {
  const NpyArray a = load_npy(test::data_path("probe/" + file));
  std::int64_t n = 1;
  for (const auto d : a.header().shape) n *= d;
  const float* p = static_cast<const float*>(a.data());
  return std::vector<float>(p, p + n);
}

FinetuneOptions edit(const std::string& model = gap()) {
  FinetuneOptions o;
  o.model = model;
  o.input_size = 8;
  o.seed = 5;
  return o;
}

Params edited(const FinetuneOptions& o, const test::TempDir& dir, const std::string& name) {
  save_edited_model(o, dir.file(name));
  return model_parameters(dir.file(name), true);
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

template <class F>
void expect_input_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no InputError (expected one mentioning " << needle << ")";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Probe, ParsesAnalysesAndSizes) {
  EXPECT_EQ(parse_analyses("all"),
            (std::vector<std::string>{"layers", "reinit", "block-reinit", "reorder"}));
  EXPECT_EQ(parse_analyses("reorder,layers"), (std::vector<std::string>{"layers", "reorder"}));
  EXPECT_EQ(parse_sizes("500,5000,all"), (std::vector<std::int64_t>{500, 5000, 0}));
  for (const char* bad : {"", "layer", "layers,", "layers,foo"})
    expect_input_error([&] { parse_analyses(bad); }, "--analysis");
  for (const char* bad : {"", "0", "-5", "10,10", "1e3", "x", "all,all"})
    expect_input_error([&] { parse_sizes(bad); }, "--sizes");
}

TEST(Probe, BlocksOfTheFixture) {
  const auto blocks = list_blocks(gap(), 8);
  std::vector<std::string> names;
  for (const auto& b : blocks) names.push_back(b.name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "bn1", "blocks.0", "blocks.1", "blocks.2"}));
}

TEST(Probe, ReinitChangesExactlyTheChosenBlocks) {
  test::TempDir dir;
  const Params before = model_parameters(gap(), true);
  FinetuneOptions o = edit();
  o.reinit_blocks = {2, 0};  // conv1 and blocks.0
  const Params after = edited(o, dir, "r.pt");
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, v] : before) {
    const bool chosen = starts_with(name, "conv1.") || starts_with(name, "blocks.0.") ||
                        starts_with(name, "buffer:blocks.0.bn.");
    const std::vector<float>& w = after.at(name);
    ASSERT_EQ(v.size(), w.size()) << name;
    if (!chosen) {
      EXPECT_EQ(v, w) << name << " changed but is not in a re-initialised block";
      continue;
    }
    if (name == "buffer:blocks.0.bn.num_batches_tracked") continue;
    EXPECT_NE(v, w) << name << " was not re-initialised";
  }
  // PyTorch's defaults: BatchNorm weight 1, bias 0, statistics (0, 1); convolution weights
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in of blocks.0.conv: 4 * 3 * 3; of conv1: 3 * 3 * 3,
  // its bias from the same bound).
  for (const float x : after.at("blocks.0.bn.weight")) EXPECT_EQ(x, 1.0f);
  for (const float x : after.at("blocks.0.bn.bias")) EXPECT_EQ(x, 0.0f);
  for (const float x : after.at("buffer:blocks.0.bn.running_mean")) EXPECT_EQ(x, 0.0f);
  for (const float x : after.at("buffer:blocks.0.bn.running_var")) EXPECT_EQ(x, 1.0f);
  auto within = [&](const std::string& name, double bound) {
    double maxabs = 0;
    for (const float x : after.at(name)) maxabs = std::max(maxabs, std::abs(double(x)));
    EXPECT_LE(maxabs, bound) << name;
    EXPECT_GT(maxabs, 0.5 * bound) << name << ": too narrow for U(-b, b)";
  };
  within("blocks.0.conv.weight", 1.0 / 6.0);
  within("conv1.weight", 1.0 / std::sqrt(27.0));
  within("conv1.bias", 1.0 / std::sqrt(27.0));
  // Same seed, same draw; another seed, another draw.
  EXPECT_EQ(edited(o, dir, "r2.pt").at("conv1.weight"), after.at("conv1.weight"));
  o.seed = 6;
  EXPECT_NE(edited(o, dir, "r3.pt").at("conv1.weight"), after.at("conv1.weight"));
}

TEST(Probe, TruncNormalReinit) {
  test::TempDir dir;
  FinetuneOptions o = edit();
  o.reinit_blocks = {4};  // blocks.2: conv 6x4x3x3, bn, shortcut conv 6x4x1x1 with bias
  o.reinit_init = "trunc-normal";
  const Params before = model_parameters(gap(), true), after = edited(o, dir, "t.pt");
  const auto& w = after.at("blocks.2.conv.weight");
  double sum = 0, sq = 0;
  for (const float x : w) {
    EXPECT_LE(std::abs(x), 0.04f);
    sum += x;
    sq += double(x) * x;
  }
  const double n = static_cast<double>(w.size()), sd = std::sqrt(sq / n - (sum / n) * (sum / n));
  EXPECT_GT(sd, 0.012);  // N(0, 0.02^2) truncated at 2 sigma has sd 0.0176
  EXPECT_LT(sd, 0.022);
  for (const float x : after.at("blocks.2.shortcut.bias")) EXPECT_EQ(x, 0.0f);
  for (const float x : after.at("blocks.2.bn.weight")) EXPECT_EQ(x, 1.0f);
  EXPECT_EQ(after.at("blocks.1.conv.weight"), before.at("blocks.1.conv.weight"));
}

TEST(Probe, PermutationThenInverseRestoresTheModel) {
  test::TempDir dir;
  const auto shapes = block_parameter_shapes(gap(), 8);
  ASSERT_EQ(shapes.size(), 5u);
  EXPECT_EQ(shapes[2], shapes[3]);  // blocks.0 and blocks.1 can trade places
  EXPECT_NE(shapes[3], shapes[4]);
  const std::vector<int> p = random_block_order(shapes, 1);
  EXPECT_EQ(p, (std::vector<int>{0, 1, 3, 2, 4}));  // the only non-identity one
  const Params before = model_parameters(gap(), true);
  FinetuneOptions o = edit();
  o.block_order = p;
  const Params permuted = edited(o, dir, "p.pt");
  for (const char* t : {"conv.weight", "bn.weight", "bn.bias"}) {
    EXPECT_EQ(permuted.at(std::string("blocks.0.") + t), before.at(std::string("blocks.1.") + t));
    EXPECT_EQ(permuted.at(std::string("blocks.1.") + t), before.at(std::string("blocks.0.") + t));
  }
  EXPECT_EQ(permuted.at("buffer:blocks.0.bn.running_var"),
            before.at("buffer:blocks.1.bn.running_var"));
  EXPECT_NE(permuted, before);
  FinetuneOptions back = edit(dir.file("p.pt"));
  back.block_order = invert_permutation(p);
  EXPECT_EQ(edited(back, dir, "back.pt"), before);  // parameters and buffers, bit for bit
  // The model computes the same function again.
  const std::vector<float> x = npy_floats("input.npy");
  LayerRunner a(gap()), b(dir.file("back.pt")), c(dir.file("p.pt"));
  EXPECT_EQ(a.model_features(x.data(), 5, 8), b.model_features(x.data(), 5, 8));
  EXPECT_NE(a.model_features(x.data(), 5, 8), c.model_features(x.data(), 5, 8));
}

TEST(Probe, RunFinetuneStartsFromTheEditedModel) {
  // top:1 trains only blocks.2 (and the head): the re-initialised conv1 stays as
  // save_edited_model draws it, the other frozen blocks stay pretrained.
  test::TempDir dir;
  FinetuneOptions o = edit();
  o.reinit_blocks = {0};
  const Params want = edited(o, dir, "e.pt"), before = model_parameters(gap(), true);
  o.data = test::data_path("model/toy");
  o.split_train = "train";
  o.split_test = "test";
  o.val_fraction = 0.25;
  o.mode = parse_mode("top:1");
  o.epochs = 1;
  o.batch = 4;
  o.threads = 1;
  o.decode_threads = 1;
  o.out = dir.file("run");
  run_finetune(o);
  const Params got = checkpoint_parameters(dir.file("run/checkpoint.pt"), true);
  EXPECT_EQ(got.at("conv1.weight"), want.at("conv1.weight"));
  EXPECT_NE(got.at("conv1.weight"), before.at("conv1.weight"));
  EXPECT_EQ(got.at("blocks.0.conv.weight"), before.at("blocks.0.conv.weight"));
  EXPECT_EQ(got.at("buffer:bn1.running_mean"), before.at("buffer:bn1.running_mean"));
  EXPECT_NE(got.at("blocks.2.conv.weight"), before.at("blocks.2.conv.weight"));
  // Part of the configuration: the same folder with another edit is refused, not resumed.
  const auto m = test::load_json(dir.file("run/metrics.json"));
  EXPECT_EQ(m["config"]["reinit_blocks"], nlohmann::json({0}));
  o.reinit_blocks = {1};
  expect_input_error([&] { run_finetune(o); }, "reinit_blocks");
}

TEST(Probe, InversePermutation) {
  EXPECT_EQ(invert_permutation({2, 0, 1}), (std::vector<int>{1, 2, 0}));
  EXPECT_THROW(invert_permutation({0, 0}), InputError);
  // random_block_order keeps each block within its shape class.
  const std::vector<std::vector<std::vector<std::int64_t>>> shapes = {{{1}}, {{2}}, {{1}},
                                                                      {{2}}, {{1}}, {{3}}};
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const auto p = random_block_order(shapes, seed);
    for (std::size_t i = 0; i < p.size(); ++i) EXPECT_EQ(shapes[i], shapes[p[i]]);
    EXPECT_EQ(invert_permutation(invert_permutation(p)), p);
    EXPECT_NE(p, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  }
}

TEST(Probe, BadEditsNameTheOption) {
  test::TempDir dir;
  FinetuneOptions o = edit();
  o.reinit_blocks = {5};
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "--reinit-blocks");
  o.reinit_blocks = {1, 1};
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "--reinit-blocks");
  o.reinit_blocks = {1};
  o.reinit_init = "xavier";
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "--init");
  o = edit();
  o.block_order = {0, 1, 2, 3};
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "--block-order");
  o.block_order = {0, 1, 2, 2, 4};
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "--block-order");
  o.block_order = {0, 1, 4, 3, 2};  // blocks.0 and blocks.2 differ in shape
  expect_input_error([&] { save_edited_model(o, dir.file("x.pt")); }, "parameter shapes differ");
}

TEST(Probe, LayerFeaturesMatchPyTorchHooks) {
  LayerRunner r(gap());
  EXPECT_EQ(r.kind(), "graph");
  const std::vector<float> x = npy_floats("input.npy");
  const LayerFeatures f = r.run(x.data(), 5, 8);
  EXPECT_EQ(f.names, (std::vector<std::string>{"input", "conv1", "bn1", "blocks.0", "blocks.1",
                                               "blocks.2"}));
  ASSERT_EQ(f.values.size(), 6u);
  for (std::size_t l = 0; l < 6; ++l) {
    const std::vector<float> ref = npy_floats("layer_" + std::to_string(l) + ".npy");
    ASSERT_EQ(f.values[l].size(), ref.size()) << f.names[l];
    EXPECT_EQ(f.dims[l] * 5, static_cast<std::int64_t>(ref.size()));
    for (std::size_t i = 0; i < ref.size(); ++i)
      EXPECT_NEAR(f.values[l][i], ref[i], 1e-5) << f.names[l] << " [" << i << "]";
  }
  // The last block's pooled features are the model's own features output.
  const std::vector<float> own = r.model_features(x.data(), 5, 8);
  const std::vector<float> ref = npy_floats("features.npy");
  ASSERT_EQ(own.size(), f.values.back().size());
  for (std::size_t i = 0; i < own.size(); ++i) {
    EXPECT_EQ(f.values.back()[i], own[i]) << i;
    EXPECT_NEAR(own[i], ref[i], 1e-5);
  }
}

TEST(Probe, LayerFeaturesFromAModelThatReturnsThem) {
  // probe_list.pt: probe_gap's weights, forward -> (features, [conv1, bn1 + ReLU, blocks...]).
  LayerRunner r(test::data_path("probe/probe_list.pt"), 0);
  EXPECT_EQ(r.kind(), "list");
  const std::vector<float> x = npy_floats("input.npy");
  const LayerFeatures f = r.run(x.data(), 5, 8);
  ASSERT_EQ(f.values.size(), 6u);
  EXPECT_EQ(f.names[1], "layer 1");
  for (std::size_t l = 0; l < 6; ++l) {
    const std::vector<float> ref = npy_floats("layer_" + std::to_string(l) + ".npy");
    ASSERT_EQ(f.values[l].size(), ref.size()) << l;
    for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(f.values[l][i], ref[i], 1e-5) << l;
  }
}

TEST(Probe, RefusesModelsThatCannotBeSplit) {
  expect_input_error([] { LayerRunner r(test::data_path("model/models/tuple.pt")); },
                     "cannot be split into layers");
  expect_input_error([] { LayerRunner r(test::data_path("model/models/nope.pt")); },
                     "no such model file");
}

ProbeOptions toy_probe(const std::string& out) {
  ProbeOptions o;
  o.model = gap();
  o.data = test::data_path("model/toy");
  o.split_train = "train";
  o.split_test = "test";
  o.val_fraction = 0.25;
  o.input_size = 8;
  o.analyses = parse_analyses("all");
  o.sizes = {6};
  o.seeds = 1;
  o.block = 2;
  o.metrics = "logme";
  o.out = out;
  o.finetune.epochs = 1;
  o.finetune.batch = 4;
  o.finetune.lr = 0.05;
  o.finetune.threads = 1;
  o.finetune.decode_threads = 1;
  return o;
}

TEST(Probe, RunsEveryAnalysisOnTheToyData) {
  test::TempDir dir;
  const ProbeOptions o = toy_probe(dir.path());
  const ProbeResult r = run_probe(o);
  EXPECT_EQ(r.blocks.size(), 5u);
  // reinit: k = 0..5 (6 runs, the pretrained one shared with reorder), block-reinit: 4 windows
  // x 2, reorder: the pretrained order again + 1 permutation.
  EXPECT_EQ(r.finetune_runs, 6 + 8 + 2);
  const auto j = test::load_json(dir.file("results.json"));
  ASSERT_EQ(j["reinit"].size(), 6u);
  for (const auto& e : j["reinit"]) {
    const int k = e["kept"];
    EXPECT_EQ(e["reinit_blocks"].size(), static_cast<std::size_t>(5 - k));
    EXPECT_TRUE(e["test_acc"].is_number());
  }
  EXPECT_EQ(j["block_reinit"].size(), 8u);
  EXPECT_EQ(j["reorder"].size(), 2u);
  EXPECT_EQ(j["reorder"][1]["block_order"], nlohmann::json({0, 1, 3, 2, 4}));
  ASSERT_EQ(j["layers"].size(), 1u);
  EXPECT_EQ(j["layers"][0]["train"], 6);
  ASSERT_EQ(j["layers"][0]["layers"].size(), 6u);
  // The toy classes are red and blue images: the input's channel means separate them.
  EXPECT_EQ(j["layers"][0]["layers"][0]["probe"]["test_acc"], 100.0);
  EXPECT_TRUE(j["layers"][0]["layers"][0]["metrics"]["logme"].is_number());
  EXPECT_LE(j["last_layer_vs_model_features_max_abs_diff"].get<double>(), 1e-6);
  for (const char* f : {"reinit.svg", "block-reinit.svg", "reorder.svg", "layers-logme.svg"}) {
    const std::string svg = test::read_bytes(dir.file(f));
    EXPECT_NE(svg.find("<svg"), std::string::npos) << f;
    EXPECT_NE(svg.find("probe_gap on toy"), std::string::npos) << f;
  }
  // The training subset is class-balanced: 3 red, 3 blue.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.file("data/n6-s0/train/red")), {}), 3);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.file("data/n6-s0/train/blue")), {}), 3);
  // A second run resumes every fine-tuning run from its checkpoint: same numbers.
  run_probe(o);
  const auto j2 = test::load_json(dir.file("results.json"));
  EXPECT_EQ(j2["reinit"], j["reinit"]);
  EXPECT_EQ(j2["summary"], j["summary"]);
}

TEST(Probe, BadOptionsNameTheOption) {
  test::TempDir dir;
  ProbeOptions o = toy_probe(dir.path());
  o.sizes = {1};
  expect_input_error([&] { run_probe(o); }, "--sizes");
  o = toy_probe(dir.path());
  o.block = 5;
  expect_input_error([&] { run_probe(o); }, "--block");
  o = toy_probe(dir.path());
  o.split_test = "";
  expect_input_error([&] { run_probe(o); }, "--split-test");
  o = toy_probe(dir.path());
  o.metrics = "logme,nope";
  expect_input_error([&] { run_probe(o); }, "nope");
  o = toy_probe(dir.path());
  o.seeds = 0;
  expect_input_error([&] { run_probe(o); }, "--seeds");
  o = toy_probe(dir.path());
  o.model = test::data_path("model/models/tuple.pt");
  o.analyses = {"layers"};
  expect_input_error([&] { run_probe(o); }, "cannot be split into layers");
}

// The layers analysis alone: a per-layer table to print, and a probe plot that is not called a
// fine-tuning plot, since no fine-tuning ran.
TEST(Probe, LayersAloneGiveATableAndNoFineTuningPlot) {
  test::TempDir dir;
  ProbeOptions o = toy_probe(dir.path());
  o.analyses = {"layers"};
  const ProbeResult r = run_probe(o);
  EXPECT_EQ(r.finetune_runs, 0);
  EXPECT_TRUE(fs::exists(dir.file("layers-probe.svg")));
  EXPECT_FALSE(fs::exists(dir.file("reinit.svg")));
  EXPECT_EQ(fs::path(r.files.at(1)).filename(), "layers-probe.svg");
  // One header and one row per depth (0..B), each row's probe accuracy as results.json's summary.
  const auto json = test::load_json(dir.file("results.json"));
  const auto& probe = json["summary"]["probe"]["6"];
  ASSERT_EQ(probe.size(), r.blocks.size() + 1) << json["summary"].dump();
  EXPECT_NE(r.layers_table.find("layers, 6 images (one seed):"), std::string::npos)
      << r.layers_table;
  EXPECT_NE(r.layers_table.find("probe %        logme"), std::string::npos) << r.layers_table;
  for (std::size_t k = 0; k < probe.size(); ++k) {
    const std::string depth = k == 0 ? "0: none" : fmt::format("{}: {}", k, r.blocks[k - 1]);
    const std::size_t at = r.layers_table.find("  " + depth + " ");
    ASSERT_NE(at, std::string::npos) << depth << "\n" << r.layers_table;
    const std::string row = r.layers_table.substr(at, r.layers_table.find('\n', at) - at);
    EXPECT_NE(row.find(fmt::format("{:.2f}", probe[k]["mean"].get<double>())), std::string::npos)
        << row;
  }
}

// A refused probe leaves nothing behind: the --out folder it created, holding only the linked
// data folders made before the layers analysis was refused, is removed; one that existed before is
// kept.
TEST(Probe, ARefusedProbeLeavesNothingBehind) {
  test::TempDir dir;
  ProbeOptions o = toy_probe(dir.file("new/out"));
  o.model = test::data_path("model/models/tuple.pt");
  o.analyses = {"layers"};
  expect_input_error([&] { run_probe(o); }, "cannot be split into layers");
  EXPECT_FALSE(fs::exists(dir.file("new/out")));
  // An --out that was there before stays, with what the run linked (regenerated on the next run).
  fs::create_directories(dir.file("kept"));
  o.out = dir.file("kept");
  expect_input_error([&] { run_probe(o); }, "cannot be split into layers");
  EXPECT_TRUE(fs::exists(dir.file("kept/data")));
}

std::string kit() { return TLKIT_KIT_DIR; }

TEST(ProbeKit, ResNet20LayersAndReorderOnCifar) {
  const std::string model = kit() + "/models/image/cifar10_resnet20.pt";
  if (!fs::exists(model)) GTEST_SKIP() << "no kit at " << kit();
  test::TempDir dir;
  ProbeOptions o;
  o.model = model;
  o.data = kit() + "/data/cifar10-test";
  o.test_fraction = 0.5;
  o.eval_per_class = 3;
  o.input_size = 32;
  o.analyses = {"layers", "reorder"};
  o.sizes = {20};
  o.seeds = 1;
  o.metrics = "logme";
  o.out = dir.path();
  o.finetune.epochs = 1;
  o.finetune.threads = 1;
  o.finetune.decode_threads = 1;
  const ProbeResult r = run_probe(o);
  ASSERT_EQ(r.blocks.size(), 11u);
  const auto j = test::load_json(dir.file("results.json"));
  const auto& layers = j["layers"][0]["layers"];
  ASSERT_EQ(layers.size(), 12u);
  EXPECT_EQ(layers[1]["name"], "conv1");
  EXPECT_EQ(layers[11]["name"], "blocks.8");
  EXPECT_EQ(layers[11]["dim"], 64);
  EXPECT_EQ(layers[3]["dim"], 16);
  EXPECT_LE(j["last_layer_vs_model_features_max_abs_diff"].get<double>(), 1e-5);
  // Stages of 3 blocks; the first block of stages 2 and 3 changes shape.
  EXPECT_EQ(j["reorder_shape_classes"], nlohmann::json({{"blocks.0", "blocks.1", "blocks.2"},
                                                        {"blocks.4", "blocks.5"},
                                                        {"blocks.7", "blocks.8"}}));
  EXPECT_EQ(j["reorder"].size(), 2u);
  // A traced kit model cannot be split.
  const std::string traced = kit() + "/models/image/imagenet_mobilenet_v1_025_128.pt";
  if (fs::exists(traced))
    expect_input_error([&] { LayerRunner lr(traced); }, "cannot be split into layers");
}

}  // namespace
}  // namespace tlkit::model

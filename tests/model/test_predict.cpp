// The fine-tuned model (model.pt of tlkit finetune) and tlkit::model::predict, on the tiny scripted
// model tests/data/model/models/trainable.pt with the toy images tests/data/model/toy/ and the
// text model models/text_bag.pt with text/trec12.txt (tools/export_finetune_fixtures.py,
// tools/export_text_finetune_fixtures.py). References: the core logistic-regression probe fit in
// the test on the same features, the original model's features on inputs normalised in the test,
// the run's own checkpoint and reported test accuracy, and PyTorch (torch.jit.load in
// /usr/bin/python3, skipped without torch); and the kit's cifar10_resnet20 on clothing-small-160.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "model_test_support.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/image_dataset.h"
#include "tlkit/model/predict.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;

std::string trainable() { return test::data_path("model/models/trainable.pt"); }

FinetuneOptions toy(const std::string& out, const std::string& mode) {
  return test::toy_finetune_options(out, mode, 1);
}

// predict() over toy/test with the model as loaded (no freezing: the same arithmetic as training).
PredictOptions toy_predict(const std::string& model, int top_k = 0) {
  PredictOptions p;
  p.extract.model = model;
  p.extract.data = test::data_path("model/toy");
  p.extract.split = "test";
  p.extract.threads = 1;
  p.extract.decode_threads = 1;
  p.extract.model_options.optimization = Optimization::kNone;
  p.top_k = top_k;
  return p;
}

// The toy test images, [N, 3, 8, 8] in [0, 1], in listing order.
std::vector<float> toy_test_images(std::int64_t& n) {
  const ImageListing l = list_images(test::data_path("model/toy"), "test");
  n = static_cast<std::int64_t>(l.samples.size());
  std::vector<float> x(static_cast<std::size_t>(n * 3 * 64));
  for (std::int64_t i = 0; i < n; ++i) load_image(l.samples[i].path, 8, x.data() + i * 3 * 64);
  return x;
}

// --mode linear from extract folders with --model: model.pt is the original model with the core
// probe's head (fit here on the same features) on top.
TEST(FinetuneModel, LinearModelIsTheBackboneWithTheCoreProbeHead) {
  test::TempDir t;
  const auto [tr, te] = test::extract_toy_splits(t, trainable());
  FinetuneOptions o;
  o.mode = parse_mode("linear");
  o.model = trainable();
  o.input_size = 8;
  o.features_dir = t.file("train");
  o.features_val_dir = t.file("test");
  o.features_test_dir = t.file("test");
  o.out = t.file("out");
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.model_file, t.file("out") + "/model.pt");
  ASSERT_TRUE(fs::exists(r.model_file));
  EXPECT_EQ(test::load_json(t.file("out") + "/metrics.json")["model_file"], "model.pt");
  LabelledRows a{{tr.features.begin(), tr.features.end()}, tr.labels};
  LabelledRows b{{te.features.begin(), te.features.end()}, te.labels};
  const LinearProbeResult ref =
      linear_probe(a, b, b, tr.features_dim, 2, default_linear_probe_cs());
  const auto params = model_parameters(r.model_file);
  ASSERT_EQ(params.at("head_weight").size(), ref.model.weights.size());
  for (std::size_t i = 0; i < ref.model.weights.size(); ++i)
    EXPECT_EQ(params.at("head_weight")[i], static_cast<float>(ref.model.weights[i]));
  for (std::size_t i = 0; i < ref.model.bias.size(); ++i)
    EXPECT_EQ(params.at("head_bias")[i], static_cast<float>(ref.model.bias[i]));
  // Its backbone is the original model, parameter for parameter.
  for (const auto& [name, v] : model_parameters(trainable()))
    EXPECT_EQ(params.at("backbone." + name), v);

  // forward -> (features, logits): the extracted features, and the probe's scores on them.
  std::int64_t n = 0;
  const std::vector<float> x = toy_test_images(n);
  TorchScriptModel m(r.model_file, ModelOptions{0, 1, Optimization::kNone});
  // Its tlkit.json records the input size and widths, for tlkit extract and rank.
  EXPECT_EQ(m.record().input_size, 8);
  EXPECT_EQ(m.record().feature_dim, te.features_dim);
  EXPECT_EQ(m.record().logits_dim, 2);
  const ModelOutputs out = m.forward(x.data(), n, 8, 8);
  ASSERT_TRUE(out.has_logits);
  ASSERT_EQ(out.features_dim, te.features_dim);
  ASSERT_EQ(out.logits_dim, 2);
  for (std::size_t i = 0; i < out.features.size(); ++i)
    EXPECT_NEAR(out.features[i], te.features[i], 1e-5f * (1.0f + std::fabs(te.features[i])));
  const std::vector<std::int64_t> want = predict_logistic(ref.model, b.x.data(), n);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t c = 0; c < 2; ++c) {
      double z = ref.model.bias[c];
      for (std::int64_t d = 0; d < te.features_dim; ++d)
        z += ref.model.weights[c * te.features_dim + d] * b.x[i * te.features_dim + d];
      EXPECT_NEAR(out.logits[i * 2 + c], z, 1e-4 * (1.0 + std::fabs(z))) << i << " " << c;
    }
    EXPECT_EQ(out.logits[i * 2 + 1] > out.logits[i * 2] ? 1 : 0, want[i]) << i;
  }
  // predict() reports the run's test accuracy.
  const PredictResult p = predict(toy_predict(r.model_file));
  EXPECT_EQ(p.extract.n, n);
  EXPECT_EQ(p.accuracy, r.runs[r.best_run].test_acc);
  EXPECT_EQ(p.accuracy, ref.test_accuracy);
  EXPECT_TRUE(p.class_names.empty());  // from features: no class names
  EXPECT_EQ(p.class_name(1), "1");
}

// --mean/--std go inside model.pt: on raw [0, 1] images it gives the original model's features on
// the images normalised here.
TEST(FinetuneModel, NormalisationIsInsideTheModel) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "linear");
  o.mean = {0.5f, 0.4f, 0.3f};
  o.std = {0.2f, 0.25f, 0.3f};
  const FinetuneResult r = run_finetune(o);
  ASSERT_FALSE(r.model_file.empty());
  std::int64_t n = 0;
  const std::vector<float> x = toy_test_images(n);
  std::vector<float> xn = x;
  for (std::int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 64; ++k) {
        float& v = xn[static_cast<std::size_t>((i * 3 + c) * 64 + k)];
        v = (v - o.mean[c]) / o.std[c];
      }
  TorchScriptModel finetuned(r.model_file, ModelOptions{0, 1, Optimization::kNone});
  TorchScriptModel original(trainable(), ModelOptions{0, kNoOutput, Optimization::kNone});
  const ModelOutputs a = finetuned.forward(x.data(), n, 8, 8);
  const ModelOutputs b = original.forward(xn.data(), n, 8, 8);
  ASSERT_EQ(a.features.size(), b.features.size());
  for (std::size_t i = 0; i < a.features.size(); ++i) EXPECT_EQ(a.features[i], b.features[i]) << i;
  // And differs from the features of the raw images (the normalisation does something here).
  const ModelOutputs raw = original.forward(x.data(), n, 8, 8);
  EXPECT_NE(raw.features, a.features);
  const PredictResult p = predict(toy_predict(r.model_file));
  EXPECT_EQ(p.accuracy, r.runs[r.best_run].test_acc);
  EXPECT_EQ(p.class_names, (std::vector<std::string>{"blue", "red"}));
}

// top:1: model.pt holds the trained backbone (the checkpoint's state) and reproduces the test
// accuracy the run reports; predict reads the input size and class names from it.
TEST(FinetuneModel, TopOneModelReproducesTheReportedTestAccuracy) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "top:1");
  o.mean = {0.5f, 0.4f, 0.3f};
  o.std = {0.2f, 0.25f, 0.3f};
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.model_file, t.path() + "/model.pt");
  ASSERT_TRUE(fs::exists(r.model_file));
  // One epoch: the best epoch is the last, whose state the checkpoint holds.
  const auto params = model_parameters(r.model_file, true);
  const auto ckpt = checkpoint_parameters(t.path() + "/checkpoint.pt", true);
  const auto original = model_parameters(trainable());
  std::size_t changed = 0;
  for (const auto& [name, v] : ckpt) {
    const std::string key =
        name.rfind("buffer:", 0) == 0 ? "buffer:backbone." + name.substr(7) : "backbone." + name;
    ASSERT_TRUE(params.count(key)) << key;
    EXPECT_EQ(params.at(key), v) << name;
    changed += original.count(name) && original.at(name) != v;
  }
  EXPECT_GT(changed, 0u);  // top:1 trained something
  const PredictResult p = predict(toy_predict(r.model_file, 2));
  EXPECT_EQ(p.extract.n, 8);
  EXPECT_EQ(p.scored, 8);
  EXPECT_EQ(p.accuracy, r.runs[0].test_acc);
  EXPECT_EQ(p.top_k_accuracy, 100.0);  // both classes listed
  EXPECT_EQ(p.class_names, (std::vector<std::string>{"blue", "red"}));
}

TEST(FinetuneModel, UnfinishedRunsWriteNoModelAndAGridKeepsTheBestPoints) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "top:1");
  o.epochs = 2;
  o.stop_after = 1;
  const FinetuneResult stopped = run_finetune(o);
  EXPECT_TRUE(stopped.model_file.empty());
  EXPECT_FALSE(fs::exists(t.path() + "/model.pt"));
  o.stop_after = 0;
  const FinetuneResult resumed = run_finetune(o);
  EXPECT_TRUE(fs::exists(t.path() + "/model.pt"));
  EXPECT_EQ(predict(toy_predict(resumed.model_file)).accuracy, resumed.runs[0].test_acc);

  test::TempDir g;
  FinetuneOptions og = toy(g.path(), "top:1");
  og.grid = "lr=0.05,0.001";
  const FinetuneResult r = run_finetune(og);
  ASSERT_EQ(r.runs.size(), 2u);
  for (const auto& run : r.runs) EXPECT_TRUE(fs::exists(run.out + "/model.pt")) << run.out;
  EXPECT_EQ(test::read_bytes(g.path() + "/model.pt"),
            test::read_bytes(r.runs[r.best_run].out + "/model.pt"));
}

TEST(FinetuneModel, TextModelTakesTexts) {
  for (const std::string mode : {"linear", "top:1"}) {
    test::TempDir t;
    const FinetuneOptions o = test::text_toy_finetune_options(t.path(), mode);
    const FinetuneResult r = run_finetune(o);
    ASSERT_FALSE(r.model_file.empty()) << mode;
    PredictOptions p;
    p.extract.model = r.model_file;
    p.extract.data = o.data;
    p.extract.threads = 1;
    p.extract.model_options.optimization = Optimization::kNone;
    const PredictResult pr = predict(p);
    EXPECT_EQ(pr.extract.n, 12) << mode;
    EXPECT_EQ(pr.classes, 6) << mode;  // labels 0..5
    EXPECT_EQ(pr.top_k, 5) << mode;
    EXPECT_EQ(pr.accuracy, r.runs[r.best_run].test_acc) << mode;
  }
}

// Top-K: probabilities in descending order of the logits, softmax ratios, a whole row sums to 1.
TEST(Predict, TopKAreTheLargestSoftmaxProbabilities) {
  test::TempDir t;
  const FinetuneResult r = run_finetune(toy(t.path(), "top:1"));
  const PredictResult p = predict(toy_predict(r.model_file, 2));
  ASSERT_EQ(p.top_k, 2);
  for (std::int64_t i = 0; i < p.extract.n; ++i) {
    const float* l = p.extract.logits.data() + i * 2;
    const std::int64_t best = l[1] > l[0] ? 1 : 0;
    EXPECT_EQ(p.top[i * 2], best);
    EXPECT_EQ(p.top[i * 2 + 1], 1 - best);
    EXPECT_NEAR(p.prob[i * 2] + p.prob[i * 2 + 1], 1.0, 1e-12);
    EXPECT_GE(p.prob[i * 2], p.prob[i * 2 + 1]);
    EXPECT_NEAR(std::log(p.prob[i * 2] / p.prob[i * 2 + 1]),
                static_cast<double>(l[best]) - l[1 - best], 1e-9);
  }
  const PredictResult one = predict(toy_predict(r.model_file, 1));
  EXPECT_EQ(one.top_k, 1);
  EXPECT_EQ(one.accuracy, p.accuracy);
  EXPECT_EQ(one.top_k_accuracy, one.accuracy);
  // The CSV: a header and one row per image, the class names as written by the fine-tuning run.
  const std::string csv = predictions_csv(p);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "file,label,class_1,prob_1,class_2,prob_2");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 9);
  EXPECT_NE(csv.find("\ntest/blue/00.png,blue,"), std::string::npos) << csv;
}

TEST(Predict, RefusesModelsWithoutLogitsAndATopKAboveTheClasses) {
  PredictOptions p = toy_predict(test::data_path("model/models/features_only.pt"));
  p.extract.input_size = 8;
  EXPECT_NE(test::input_error_of([&] { predict(p); }).find("returns no logits"), std::string::npos);
  test::TempDir t;
  const FinetuneResult r = run_finetune(toy(t.path(), "linear"));
  const std::string e = test::input_error_of([&] { predict(toy_predict(r.model_file, 3)); });
  EXPECT_NE(e.find("--top-k 3"), std::string::npos) << e;
  EXPECT_NE(e.find("2 classes"), std::string::npos) << e;
  // tuple.pt (no class names): the error comes after running it, from the logits' width.
  PredictOptions q = toy_predict(test::data_path("model/models/tuple.pt"), 1000);
  q.extract.input_size = 8;
  EXPECT_NE(test::input_error_of([&] { predict(q); }).find("--top-k 1000"), std::string::npos);
  PredictOptions m = toy_predict(t.file("missing.pt"));
  EXPECT_NE(test::input_error_of([&] { predict(m); }).find("no such model file"),
            std::string::npos);
}

// PyTorch loads model.pt (torch.jit.load) and gives tlkit's logits on the same input, with the
// class names and input size as attributes.
TEST(FinetuneModel, LoadsInPythonWithTheSameLogits) {
  if (std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no /usr/bin/python3 with torch and numpy";
  test::TempDir t;
  FinetuneOptions o = toy(t.file("run"), "top:1");
  o.mean = {0.5f, 0.4f, 0.3f};
  o.std = {0.2f, 0.25f, 0.3f};
  const FinetuneResult r = run_finetune(o);
  std::int64_t n = 0;
  const std::vector<float> x = toy_test_images(n);
  TorchScriptModel m(r.model_file, ModelOptions{0, 1, Optimization::kNone});
  const ModelOutputs out = m.forward(x.data(), n, 8, 8);
  save_npy(t.file("x.npy"), x.data(), {n, 3, 8, 8});
  save_npy(t.file("logits.npy"), out.logits.data(), {n, out.logits_dim});
  test::write_bytes(t.file("check.py"),
                    "import sys, numpy as np, torch\n"
                    "m = torch.jit.load(sys.argv[1])\n"
                    "assert list(m.class_names) == ['blue', 'red'], m.class_names\n"
                    "assert m.input_size == 8, m.input_size\n"
                    "with torch.no_grad():\n"
                    "    f, z = m(torch.from_numpy(np.load(sys.argv[2])))\n"
                    "want = np.load(sys.argv[3])\n"
                    "assert z.shape == want.shape, (z.shape, want.shape)\n"
                    "err = float(np.abs(z.numpy() - want).max())\n"
                    "assert err <= 1e-5 * (1 + float(np.abs(want).max())), err\n");
  const std::string cmd = "/usr/bin/python3 " + t.file("check.py") + " " + r.model_file + " " +
                          t.file("x.npy") + " " + t.file("logits.npy");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// The kit's ResNet-20, top:1 for one epoch on 10 clothing images per class: model.pt run as loaded
// gives the test accuracy the run reports on the same subsample (--per-class with the same seed);
// frozen (predict's default) the same to float32 rounding. Skipped without the kit.
TEST(FinetuneModelKit, Resnet20ModelReproducesTheTestAccuracy) {
  const std::string kit = TLKIT_KIT_DIR;
  if (!fs::exists(kit + "/models/image/cifar10_resnet20.pt")) GTEST_SKIP() << "no kit at " << kit;
  test::TempDir t;
  FinetuneOptions o;
  o.model = kit + "/models/image/cifar10_resnet20.pt";
  o.data = kit + "/data/clothing-small-160";
  o.split_train = "train";
  o.split_test = "test";
  o.per_class = 10;
  o.seed = 5;
  o.input_size = 32;
  o.mode = parse_mode("top:1");
  o.epochs = 1;
  o.batch = 16;
  o.lr = 0.01;
  o.threads = 1;
  o.out = t.path();
  const FinetuneResult r = run_finetune(o);
  PredictOptions p;
  p.extract.model = r.model_file;
  p.extract.data = o.data;
  p.extract.split = "test";
  p.extract.sample.per_class = 10;
  p.extract.sample.seed = 5;
  p.extract.threads = 1;
  p.extract.model_options.optimization = Optimization::kNone;
  const PredictResult loaded = predict(p);
  EXPECT_EQ(loaded.extract.n, 100);
  EXPECT_EQ(loaded.scored, 100);
  EXPECT_EQ(loaded.accuracy, r.runs[0].test_acc);
  // Frozen (conv-BN folded): float32 rounding only, at most one near-tie may flip.
  p.extract.model_options.optimization = Optimization::kFreeze;
  EXPECT_NEAR(predict(p).accuracy, r.runs[0].test_acc, 1.0);
  EXPECT_EQ(loaded.class_names.size(), 10u);
}

// Labels are matched to the model's classes by name; samples of a class the model does not know
// are left out of the accuracy, with a note naming it.
TEST(Predict, CountsOnlyLabelsTheModelKnows) {
  test::TempDir t;
  const FinetuneResult r = run_finetune(toy(t.file("run"), "linear"));
  const ImageListing l = list_images(test::data_path("model/toy"), "test");
  std::string csv = "path,label\n";
  std::int64_t blue = 0;
  for (const auto& smp : l.samples) {
    const bool is_blue = l.classes[static_cast<std::size_t>(smp.label)] == "blue";
    blue += is_blue;
    csv += smp.path + "," + (is_blue ? "blue" : "purple") + "\n";
  }
  test::write_bytes(t.file("data.csv"), csv);
  PredictOptions p = toy_predict(r.model_file);
  p.extract.data = t.file("data.csv");
  p.extract.split.clear();
  const PredictResult pr = predict(p);
  EXPECT_EQ(pr.extract.n, 8);
  EXPECT_EQ(pr.scored, blue);
  ASSERT_EQ(pr.notes.size(), 1u);
  EXPECT_NE(pr.notes[0].find("(purple)"), std::string::npos) << pr.notes[0];
  for (std::size_t i = 0; i < pr.target.size(); ++i)
    EXPECT_EQ(pr.target[i], pr.label_name(i) == "blue" ? 0 : -1) << i;
}

}  // namespace
}  // namespace tlkit::model

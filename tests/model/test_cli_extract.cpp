// End-to-end tests of `tlkit extract`: exit codes, the one-line error contract, the output folder
// (complete or absent), and agreement with the Python tool's reference outputs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_support.h"
#include "test_support.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

using test::CliRun;
using test::run_cli;

int lines(const std::string& s) { return test::count_lines(s); }

std::string model(const std::string& name) {
  return test::data_path("model/models/" + name + ".pt");
}

std::string base_args(const std::string& name, const std::string& out) {
  return "extract --model " + model(name) + " --data " + test::data_path("model/images") +
         " --split train --input-size 32 --batch 4 --out " + out;
}

TEST(CliExtract, WritesTheOutputFolderMatchingPython) {
  test::TempDir t;
  const std::string out = t.file("feats");
  const CliRun r = run_cli(base_args("tuple", out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress bar, and nothing to warn about
  EXPECT_NE(r.out.find("tlkit extract: 6 images (0 skipped), features 6 x 8, logits 6 x 3"),
            std::string::npos)
      << r.out;
  const NpyArray f = load_npy(out + "/features.npy");
  const NpyArray ref = load_npy(test::data_path("model/reference/tuple_features.npy"));
  ASSERT_EQ(f.header().shape, ref.header().shape);
  const FeatureView a = f.features(), b = ref.features();
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t j = 0; j < a.cols; ++j) EXPECT_NEAR(a.at(i, j), b.at(i, j), 1e-5);
  EXPECT_EQ(load_npy(out + "/labels.npy").labels(),
            load_npy(test::data_path("model/reference/tuple_labels.npy")).labels());
  const auto meta = test::load_json(out + "/meta.json");
  EXPECT_EQ(meta["outputs"]["n"], 6);
  EXPECT_EQ(meta["run"]["batch"], 4);
}

// A manifest naming tuple.pt with its size and widths (the kit's zoo.json format).
std::string write_zoo(const test::TempDir& t) {
  const std::string zoo = t.file("zoo.json");
  test::write_bytes(zoo, R"({"models": [{"name": "tup", "file": ")" + model("tuple") +
                             R"(", "kind": "image", "input_size": 32, "feature_dim": 8,
                             "logits_dim": 3}, {"name": "small", "file": ")" +
                             model("features_only") + R"(", "kind": "image", "input_size": 16}]})");
  return zoo;
}

TEST(CliExtract, AZooEntryStandsForTheModelAndItsSize) {
  test::TempDir t;
  const std::string zoo = write_zoo(t), out = t.file("feats");
  const std::string args = "extract --zoo " + zoo + " --model-name tup --data " +
                           test::data_path("model/images") + " --split train --batch 4 --out ";
  const CliRun r = run_cli(args + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tlkit extract: 6 images (0 skipped), features 6 x 8, logits 6 x 3"),
            std::string::npos)
      << r.out;
  // The same features as --model tuple.pt --input-size 32 (PyTorch's reference).
  const NpyArray f = load_npy(out + "/features.npy");
  const NpyArray ref = load_npy(test::data_path("model/reference/tuple_features.npy"));
  ASSERT_EQ(f.header().shape, ref.header().shape);
  const FeatureView a = f.features(), b = ref.features();
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t j = 0; j < a.cols; ++j) EXPECT_NEAR(a.at(i, j), b.at(i, j), 1e-5);
  // A flag that agrees with the entry is accepted.
  EXPECT_EQ(run_cli(args + t.file("same") + " --input-size 32 --logits-output 1 --quiet").code, 0);
}

TEST(CliExtract, ZooFlagsAreRefusedWhenTheyClash) {
  test::TempDir t;
  const std::string zoo = write_zoo(t), out = t.file("feats");
  const std::string data = " --data " + test::data_path("model/images") + " --split train --out ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"extract --zoo " + zoo + " --model-name tup --model " + model("tuple") + data + out,
       "--model and --zoo: give one"},
      {"extract --model-name tup" + data + out, "--model-name tup needs --zoo"},
      {"extract --zoo " + zoo + data + out, "needs --model-name NAME"},
      {"extract" + data + out,
       "tlkit extract needs --model M.pt, or --zoo zoo.json with "
       "--model-name NAME"},
      {"extract --zoo " + zoo + " --model-name resnet" + data + out,
       "--model-name resnet: no model of that name in " + zoo + " (its models: tup, small)"},
      {"extract --zoo " + zoo + " --model-name tup --input-size 64" + data + out,
       "--input-size 64 disagrees with the zoo entry 'tup' of " + zoo + " (input_size 32)"},
      {"extract --zoo " + zoo + " --model-name small --logits-output 1" + data + out,
       "--logits-output 1 disagrees with the zoo entry 'small'"},
  };
  for (const auto& [args, expect] : cases) {
    const CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
}

TEST(CliExtract, QuietPrintsNothingAndTheDefaultFolderIsNamedAfterTheModel) {
  test::TempDir t;
  const std::string cmd = "cd " + t.path() + " && " + std::string(TLKIT_CLI) + " extract --model " +
                          model("features_only") + " --data " +
                          test::data_path("model/images/train") + " --input-size 16 --quiet >" +
                          t.file("o") + " 2>" + t.file("e");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(t.file("e"));
  EXPECT_EQ(test::read_bytes(t.file("o")), "");
  EXPECT_EQ(test::read_bytes(t.file("e")), "");
  const std::string dir = t.path() + "/tlkit-features/features_only";
  EXPECT_TRUE(fs::exists(dir + "/meta.json"));
  EXPECT_FALSE(fs::exists(dir + "/logits.npy"));
}

TEST(CliExtract, BadInputIsExitCode2WithOneLineAndNoOutputFolder) {
  test::TempDir t;
  const std::string out = t.file("feats");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {base_args("throws", out), "forward failed"},
      {base_args("wrong_shape", out), "first dimension must be the batch size"},
      {base_args("tuple", out) + " --features-output 5", "--features-output 5"},
      {base_args("tuple", out) + " --logits-output x", "--logits-output x"},
      {"extract --model " + model("tuple") + " --data " + test::data_path("model/images") +
           " --split nope --input-size 32 --out " + out,
       "no split folder 'nope'"},
      {"extract --model " + t.file("none.pt") + " --data " + test::data_path("model/images") +
           " --split train --input-size 32 --out " + out,
       "no such model file"},
      {"extract --model " + model("tuple") + " --data x --out " + out, "x: no such file"},
      {"extract --model " + model("tuple") + " --data " + test::data_path("model/images") +
           " --split train --out " + out,
       "--input-size is required for image models that do not record their input size"},
      {base_args("tuple", out) + " --on-bad-image ignore", "--on-bad-image"},
      {base_args("tuple", out) + " --optimize fast", "--optimize"},
      {base_args("tuple", out) + " --precision fp16", "--precision"},
      {base_args("tuple", out) + " --precision auto --precision-tolerance -1",
       "--precision-tolerance"},
  };
  for (const auto& [args, expect] : cases) {
    const CliRun r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("tlkit: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;  // nothing written on failure
  }
}

TEST(CliExtract, SkippedImagesAreWarningsAndTheRestIsWritten) {
  test::TempDir t;
  const std::string data = t.file("data");
  fs::copy(test::data_path("model/images/train"), data, fs::copy_options::recursive);
  fs::copy_file(test::data_path("model/images/special/truncated.jpg"), data + "/cat/bad.jpg");
  const std::string out = t.file("feats");
  const std::string args =
      "extract --model " + model("tuple") + " --data " + data + " --input-size 32 --out " + out;
  const CliRun failed = run_cli(args);
  EXPECT_EQ(failed.code, 2);
  EXPECT_NE(failed.err.find(data + "/cat/bad.jpg: truncated JPEG"), std::string::npos)
      << failed.err;
  EXPECT_FALSE(fs::exists(out));
  const CliRun r = run_cli(args + " --on-bad-image skip");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "tlkit: warning: skipped " + data +
                       "/cat/bad.jpg: truncated JPEG (the data ends before the end-of-image "
                       "marker)\n");
  EXPECT_EQ(load_npy(out + "/features.npy").rows(), 6);
  EXPECT_EQ(test::load_json(out + "/meta.json")["outputs"]["skipped"].size(), 1u);
}

TEST(CliExtract, AWrongOptimizationIsAWarning) {
  test::TempDir t;
  const CliRun r = run_cli(base_args("relu6_pool", t.file("o")) + " --optimize full");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("tlkit: warning: --optimize full: the optimised model disagrees"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("optimize freeze"), std::string::npos) << r.out;
  EXPECT_EQ(test::load_json(t.file("o") + "/meta.json")["model"]["optimize"], "freeze");
}

TEST(CliExtract, PrecisionAutoSaysWhatItMeasuredAndChose) {
  test::TempDir t;
  const CliRun r =
      run_cli(base_args("tuple", t.file("o")) + " --precision auto --precision-tolerance 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("tlkit: warning: --precision auto: bf16 features differ from fp32 by "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("tolerance 0: running fp32"), std::string::npos) << r.err;
  const auto meta = test::load_json(t.file("o") + "/meta.json");
  EXPECT_EQ(meta["model"]["precision_requested"], "auto");
  EXPECT_EQ(meta["model"]["precision"], "fp32");
  EXPECT_GT(meta["model"]["precision_check"]["relative_error"].get<double>(), 0.0);
  // The default run has the same features, bit for bit.
  ASSERT_EQ(run_cli(base_args("tuple", t.file("d"))).code, 0);
  EXPECT_EQ(test::read_bytes(t.file("o") + "/features.npy"),
            test::read_bytes(t.file("d") + "/features.npy"));
  EXPECT_EQ(test::load_json(t.file("d") + "/meta.json")["model"]["precision"], "fp32");
}

// --device cpu is the default: the same arrays, byte for byte, and meta.json records the device.
// --device cuda on a LibTorch without CUDA (or with the GPUs hidden) is one line and no folder.
TEST(CliExtract, DeviceCpuIsTheDefaultAndCudaIsRefusedWithoutAGpu) {
  test::TempDir t;
  ASSERT_EQ(run_cli(base_args("tuple", t.file("d"))).code, 0);
  const CliRun r = run_cli(base_args("tuple", t.file("c")) + " --device cpu --channels-last");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(run_cli(base_args("tuple", t.file("dc")) + " --channels-last").code, 0);
  for (const char* f : {"/features.npy", "/logits.npy", "/labels.npy", "/files.txt"})
    EXPECT_EQ(test::read_bytes(t.file("c") + f), test::read_bytes(t.file("dc") + f)) << f;
  EXPECT_EQ(test::load_json(t.file("d") + "/meta.json")["model"]["device"], "cpu");
  EXPECT_EQ(test::load_json(t.file("c") + "/meta.json")["model"]["device"], "cpu");
  EXPECT_EQ(r.out.find(", on cuda"), std::string::npos) << r.out;
  // Hides any GPU from the child (it inherits the environment), so this holds on a CUDA build.
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string saved = visible ? visible : "";
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  const CliRun g = run_cli(base_args("tuple", t.file("g")) + " --device cuda:0");
  if (visible)
    ::setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
  else
    ::unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(g.code, 2);
  EXPECT_EQ(lines(g.err), 1) << g.err;
  EXPECT_EQ(g.err.rfind("tlkit: error: --device cuda:0: this LibTorch (", 0), 0u) << g.err;
  EXPECT_FALSE(fs::exists(t.file("g")));
}

// A regression listing of the same images: the same features, targets.npy (N x T float64) with
// the CSV's values instead of labels.npy, and meta.json saying so; the hint's score command runs.
TEST(CliExtract, RegressionTargetsAreWrittenAsTargetsNpy) {
  test::TempDir t;
  const CliRun classes = run_cli(base_args("tuple", t.file("classes")));
  ASSERT_EQ(classes.code, 0) << classes.err;
  // files.txt names the images in listing order; give each a target pair.
  std::istringstream files(test::read_bytes(t.file("classes/files.txt")));
  std::string csv = "path,size,weight\n", line;
  std::vector<double> want;
  for (int i = 0; std::getline(files, line); ++i) {
    const std::string name = line.substr(0, line.find('\t'));
    csv += test::data_path("model/images/" + name) + "," + std::to_string(i) + ".5," +
           std::to_string(-i) + "\n";
    want.insert(want.end(), {i + 0.5, -1.0 * i});
  }
  test::write_bytes(t.file("reg.csv"), csv);
  const std::string out = t.file("reg");
  const CliRun r = run_cli("extract --model " + model("tuple") + " --data " + t.file("reg.csv") +
                           " --task regression --input-size 32 --batch 4 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + out +
                       "/ (features.npy, logits.npy, targets.npy, files.txt, "
                       "meta.json)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("2 regression target(s) (size, weight); score them with: tlkit score"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(out + "/labels.npy"));
  std::int64_t k = 0;
  EXPECT_EQ(load_npy(out + "/targets.npy").targets(&k), want);
  EXPECT_EQ(k, 2);
  const NpyArray a = load_npy(out + "/features.npy"), b = load_npy(t.file("classes/features.npy"));
  ASSERT_EQ(a.header().shape, b.header().shape);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.header().shape[0] * a.header().shape[1] * 4), 0);
  const auto meta = test::load_json(out + "/meta.json");
  EXPECT_EQ(meta["data"]["task"], "regression");
  EXPECT_EQ(meta["data"]["targets"], nlohmann::json({"size", "weight"}));
  EXPECT_EQ(meta["outputs"]["files"], nlohmann::json({"features.npy", "logits.npy", "targets.npy",
                                                      "files.txt", "meta.json"}));
  const CliRun s = run_cli("score --features " + out + "/features.npy --labels " + out +
                           "/targets.npy --regression --format csv");
  EXPECT_EQ(s.code, 0) << s.err;
  // The same folder rewritten for classes drops the stale targets.npy.
  const CliRun again = run_cli(base_args("tuple", out));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_FALSE(fs::exists(out + "/targets.npy"));
  EXPECT_TRUE(fs::exists(out + "/labels.npy"));
}

TEST(CliExtract, HelpListsTheOptions) {
  const CliRun r = run_cli("extract --help");
  EXPECT_EQ(r.code, 0);
  for (const char* opt : {"--model",
                          "--data",
                          "--split",
                          "--input-size",
                          "--out",
                          "--batch",
                          "--threads",
                          "--per-class",
                          "--limit",
                          "--seed",
                          "--on-bad-image",
                          "--quiet",
                          "--features-output",
                          "--logits-output",
                          "--optimize",
                          "--precision",
                          "--precision-tolerance",
                          "--task",
                          "--device",
                          "--channels-last"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

}  // namespace
}  // namespace tlkit

// Tests of --device (src/model/device.cpp) and of models run on a CUDA device
// (torchscript_model.cpp, extractor.cpp, probe.cpp's LayerRunner).
//
// The parser and the refusal of an unusable CUDA device run everywhere. The tests named Gpu* need
// a CUDA LibTorch that sees a device and skip with a message otherwise. Their references are the
// PyTorch outputs of the fixture models (tests/data/model/reference, tests/data/probe: made by
// tools/export_test_models.py and tools/export_probe_fixtures.py on the CPU). On a GPU, cuDNN
// may run float32 convolutions in TF32 (LibTorch's default: 10 explicit mantissa bits, relative
// rounding 2^-11 per product), so float32 features are compared within 1e-2 of the largest
// reference value, 10x the TF32 rounding through the fixtures' 2-3 layers and far below a wrong
// result (features of another image or model differ by 0.1-1 of it); bfloat16 within
// kDefaultPrecisionTolerance in relative Frobenius norm, as on the CPU (test_precision.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/device.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/probe.h"
#include "tlkit/model/runtime.h"

namespace tlkit::model {
namespace {

using tlkit::test::close_to;
using tlkit::test::data_path;

template <typename Fn>
std::string error_of(Fn&& fn) {
  return tlkit::test::input_error_of(std::forward<Fn>(fn));
}

TEST(Device, ParsesCpuCudaAndCudaN) {
  EXPECT_EQ(parse_device("cpu"), Device());
  EXPECT_FALSE(parse_device("cpu").is_cuda());
  EXPECT_EQ(parse_device("cuda"), (Device{Device::Type::kCuda, 0}));
  EXPECT_EQ(parse_device("cuda:0"), (Device{Device::Type::kCuda, 0}));
  EXPECT_EQ(parse_device("cuda:3"), (Device{Device::Type::kCuda, 3}));
  EXPECT_EQ(parse_device("cuda:1023"), (Device{Device::Type::kCuda, 1023}));
  EXPECT_EQ(parse_device("cuda:007").index, 7);
  EXPECT_EQ(to_string(parse_device("cpu")), "cpu");
  EXPECT_EQ(to_string(parse_device("cuda")), "cuda:0");
  EXPECT_EQ(to_string(parse_device("cuda:12")), "cuda:12");
  EXPECT_NE(parse_device("cuda:1"), parse_device("cuda:0"));
}

TEST(Device, RefusesAnythingElseNamingTheFlagAndValue) {
  for (const char* bad :
       {"", "gpu", "CUDA", "Cpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda:1x", "cuda: 1",
        " cuda", "cuda ", "cuda:1024", "cuda:99999", "cpu:0", "cuda0", "mps", "cuda:0:0"}) {
    const std::string e = error_of([&] { parse_device(bad, "--device"); });
    EXPECT_EQ(e, fmt::format("--device {}: expected cpu, cuda or cuda:N (N >= 0)", bad)) << bad;
  }
  const std::string e = error_of([] { parse_device("tpu", "--layers-device"); });
  EXPECT_EQ(e.rfind("--layers-device tpu: ", 0), 0u) << e;
}

TEST(Device, TheCpuIsAlwaysUsable) {
  EXPECT_NO_THROW(check_device(Device()));
  EXPECT_EQ(device_from_flag("cpu"), Device());
}

// An unusable CUDA device is refused when it is asked for, before anything runs, in one line that
// names the flag as given and says what to do.
TEST(Device, CudaWithoutADeviceIsOneLineNamingTheFlag) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "LibTorch sees a CUDA device here";
  EXPECT_FALSE(cuda_available());
  for (const char* given : {"cuda", "cuda:0", "cuda:2"}) {
    const std::string e = error_of([&] { device_from_flag(given, "--device"); });
    EXPECT_EQ(e, fmt::format("--device {}: this LibTorch ({}) has no CUDA support or sees no CUDA "
                             "device; use --device cpu",
                             given, torch_version()));
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  // The model refuses it too (library callers that skip the CLI's check).
  ModelOptions mo;
  mo.device = parse_device("cuda");
  const std::string e =
      error_of([&] { TorchScriptModel m(data_path("model/models/tuple.pt"), mo); });
  EXPECT_NE(e.find("--device cuda:0: this LibTorch"), std::string::npos) << e;
  const std::string l =
      error_of([] { LayerRunner r(data_path("probe/probe_gap.pt"), 0, parse_device("cuda")); });
  EXPECT_EQ(l.rfind("--device cuda:0: this LibTorch", 0), 0u) << l;
}

TEST(Device, HostBuffersForTheCpuAreOrdinaryMemory) {
  HostBuffer b(1000, Device());
  EXPECT_EQ(b.size(), 1000u);
  EXPECT_FALSE(b.pinned());
  ASSERT_NE(b.data(), nullptr);
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = static_cast<float>(i);
  const HostBuffer copy = b;  // copies share the storage
  EXPECT_EQ(copy.data(), b.data());
  EXPECT_EQ(copy.data()[999], 999.0f);
  EXPECT_EQ(HostBuffer().size(), 0u);
}

ExtractOptions fixture(const std::string& model, const Device& d, Precision p = Precision::kFp32,
                       bool channels_last = false) {
  ExtractOptions o;
  o.model = data_path("model/models/" + model + ".pt");
  o.data = data_path("model/images");
  o.split = "train";
  o.input_size = 32;
  o.batch = 4;  // 6 images: a full batch and a partial one
  o.threads = 1;
  o.decode_threads = 2;
  o.model_options.optimization = Optimization::kFreeze;
  o.model_options.precision = p;
  o.model_options.channels_last = channels_last;
  o.model_options.device = d;
  return o;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// False in a build without OpenCV (TLKIT_WITH_OPENCV=OFF), whose decoder throws.
bool can_decode_images() {
  try {
    decode_image(data_path("model/images/train/cat/0000.jpg"));
  } catch (const std::runtime_error&) {
    return false;
  }
  return true;
}

// --device cpu is the default, so the same computation: the same bytes.
TEST(Device, CpuGivesTheDefaultsFeaturesByteForByte) {
  if (!can_decode_images()) GTEST_SKIP() << "tlkit was built without OpenCV";
  for (bool cl : {false, true}) {
    ExtractOptions def = fixture("tuple", Device(), Precision::kFp32, cl);
    def.model_options = ModelOptions();
    def.model_options.optimization = Optimization::kFreeze;
    def.model_options.channels_last = cl;
    const ExtractResult a = extract_features(def);
    const ExtractResult b =
        extract_features(fixture("tuple", parse_device("cpu"), Precision::kFp32, cl));
    EXPECT_TRUE(same_bytes(a.features, b.features)) << "channels_last " << cl;
    EXPECT_TRUE(same_bytes(a.logits, b.logits)) << "channels_last " << cl;
  }
}

std::vector<float> npy_floats(const std::string& path) {
  const NpyArray a = load_npy(path);
  const FeatureView f = a.features();
  std::vector<float> v(static_cast<std::size_t>(f.rows * f.cols));
  for (std::int64_t i = 0; i < f.rows; ++i)
    for (std::int64_t j = 0; j < f.cols; ++j) v[i * f.cols + j] = static_cast<float>(f.at(i, j));
  return v;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

#define TLKIT_NEEDS_CUDA()                                                                       \
  if (cuda_device_count() == 0)                                                                  \
  GTEST_SKIP() << "no CUDA device: this LibTorch (" << torch_version()                           \
               << ") has no CUDA support or sees none (docs/gpu-models.md builds tlkit against " \
                  "a CUDA LibTorch)"

constexpr double kTf32Tolerance = 1e-2;

// The 6 training images of tests/data/model/images as the models' float input (k / 255), from
// the Python tool's preprocessing (reference/preprocess_32.npy, uint8, rows in the order of
// tuple_features.npy): the GPU tests run without decoding images (a build without OpenCV too).
std::vector<float> fixture_inputs() {
  const NpyArray a = load_npy(data_path("model/reference/preprocess_32.npy"));  // [9, 3, 32, 32]
  const auto* u = static_cast<const std::uint8_t*>(a.data());
  std::vector<float> x(6 * 3 * 32 * 32);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(u[i]) / 255.0f;
  return x;
}

ModelOutputs run(const std::string& model, const Device& d, Precision p = Precision::kFp32,
                 bool channels_last = false) {
  ModelOptions mo;
  mo.device = d;
  mo.precision = p;
  mo.channels_last = channels_last;
  TorchScriptModel m(data_path("model/models/" + model + ".pt"), mo);
  const std::vector<float> x = fixture_inputs();
  return m.forward(x.data(), 6, 32, 32);
}

TEST(Device, TheFixtureInputsGiveThePythonFeaturesOnTheCpu) {
  // The premise of the GPU tests below: these inputs are the ones the references were made from.
  const ModelOutputs o = run("tuple", Device());
  EXPECT_TRUE(
      close_to(o.features, npy_floats(data_path("model/reference/tuple_features.npy")), 1e-5));
}

TEST(Device, GpuFeaturesMatchPyTorch) {
  TLKIT_NEEDS_CUDA();
  const std::vector<float> ref_f = npy_floats(data_path("model/reference/tuple_features.npy"));
  const std::vector<float> ref_l = npy_floats(data_path("model/reference/tuple_logits.npy"));
  for (bool cl : {false, true}) {
    const ModelOutputs o = run("tuple", parse_device("cuda"), Precision::kFp32, cl);
    ASSERT_EQ(o.n, 6);
    EXPECT_TRUE(close_to(o.features, ref_f, kTf32Tolerance)) << "channels_last " << cl;
    EXPECT_TRUE(close_to(o.logits, ref_l, kTf32Tolerance)) << "channels_last " << cl;
  }
  EXPECT_TRUE(close_to(run("relu6_pool", parse_device("cuda:0")).features,
                       npy_floats(data_path("model/reference/relu6_pool_features.npy")),
                       kTf32Tolerance));
}

TEST(Device, GpuBf16IsCloseToFp32ButNotEqual) {
  TLKIT_NEEDS_CUDA();
  for (const char* name : {"tuple", "features_only", "relu6_pool", "no_batchnorm"}) {
    const ModelOutputs a = run(name, Device());
    const ModelOutputs b = run(name, parse_device("cuda"), Precision::kBf16);
    ASSERT_EQ(a.features.size(), b.features.size()) << name;
    const double err = relative_error(b.features, a.features);
    EXPECT_GT(err, 0.0) << name << ": bfloat16 was not applied";
    EXPECT_LE(err, kDefaultPrecisionTolerance) << name;
  }
  // auto measures on the first batch and keeps bf16 (the fixtures are within the tolerance).
  ModelOptions mo;
  mo.device = parse_device("cuda");
  mo.precision = Precision::kAuto;
  TorchScriptModel m(data_path("model/models/tuple.pt"), mo);
  const std::vector<float> x = fixture_inputs();
  m.forward(x.data(), 6, 32, 32);
  EXPECT_TRUE(m.precision_check().measured);
  EXPECT_EQ(m.precision(), Precision::kBf16);
  EXPECT_GT(m.precision_check().relative_error, 0.0);
}

TEST(Device, GpuHostBuffersArePinned) {
  TLKIT_NEEDS_CUDA();
  HostBuffer b(3 * 32 * 32 * 4, parse_device("cuda"));
  EXPECT_TRUE(b.pinned());
  EXPECT_EQ(b.size(), 3u * 32 * 32 * 4);
  // forward reads the pinned batch (asynchronously) and gives the same outputs as from ordinary
  // memory.
  ModelOptions mo;
  mo.device = parse_device("cuda");
  TorchScriptModel m(data_path("model/models/tuple.pt"), mo);
  std::vector<float> plain(b.size());
  for (std::size_t i = 0; i < b.size(); ++i)
    plain[i] = b.data()[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  const ModelOutputs x = m.forward(b.data(), 4, 32, 32);
  const ModelOutputs y = m.forward(plain.data(), 4, 32, 32);
  EXPECT_TRUE(same_bytes(x.features, y.features));
}

TEST(Device, GpuRefusesADevicePastTheLast) {
  TLKIT_NEEDS_CUDA();
  const int n = cuda_device_count();
  const std::string given = fmt::format("cuda:{}", n);
  const std::string e = error_of([&] { device_from_flag(given); });
  EXPECT_EQ(
      e.rfind("--device " + given + ": LibTorch sees " + std::to_string(n) + " CUDA device", 0), 0u)
      << e;
}

TEST(Device, GpuRefusesTextModels) {
  TLKIT_NEEDS_CUDA();
  ModelOptions mo;
  mo.device = parse_device("cuda");
  TorchScriptModel m(data_path("model/models/text_bag.pt"), mo);
  const std::string e = error_of([&] { m.forward_texts({"a question"}); });
  EXPECT_NE(e.find("text models build their input tensors inside forward"), std::string::npos) << e;
}

TEST(Device, GpuLayerFeaturesMatchPyTorchHooks) {
  TLKIT_NEEDS_CUDA();
  LayerRunner r(data_path("probe/probe_gap.pt"), 0, parse_device("cuda"));
  const NpyArray in = load_npy(data_path("probe/input.npy"));  // float32 [5, 3, 8, 8]
  const float* p = static_cast<const float*>(in.data());
  std::vector<float> x(p, p + 5 * 3 * 8 * 8);
  const LayerFeatures f = r.run(x.data(), 5, 8);
  ASSERT_EQ(f.values.size(), 6u);
  for (std::size_t l = 0; l < 6; ++l)
    EXPECT_TRUE(close_to(f.values[l],
                         npy_floats(data_path("probe/layer_" + std::to_string(l) + ".npy")),
                         kTf32Tolerance))
        << f.names[l];
}

}  // namespace
}  // namespace tlkit::model

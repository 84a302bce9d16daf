// B-Tuning (src/model/btuning.h, tlkit/model/btuning.h): pi against a hand-worked softmax, one
// SGD step of the B-Tuning loss against PyTorch (tests/data/btuning/step, made by
// tools/make_btuning_fixture.py), a student taught by itself (distillation loss exactly 0), the
// teacher checks, a run_finetune run with teachers that is interrupted and resumed, and --grid.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model/btuning.h"
#include "model/finetune_blocks.h"
#include "model_test_support.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/btuning.h"
#include "tlkit/model/finetune.h"

namespace tlkit::model::finetune_detail {
namespace {

using test::data_path;

at::Tensor npy_tensor(const std::string& rel) {
  const NpyArray a = load_npy(data_path("btuning/step/" + rel));
  std::vector<std::int64_t> shape(a.header().shape.begin(), a.header().shape.end());
  if (a.header().type == NpyType::kInt64)
    return torch::from_blob(const_cast<void*>(a.data()), shape, torch::kInt64).clone();
  if (a.header().type == NpyType::kFloat64)
    return torch::from_blob(const_cast<void*>(a.data()), shape, torch::kFloat64).clone();
  return torch::from_blob(const_cast<void*>(a.data()), shape, torch::kFloat32).clone();
}
double npy_scalar(const std::string& rel) { return npy_tensor(rel).item<double>(); }

void expect_tensor_near(const at::Tensor& got, const at::Tensor& want, double rtol,
                        const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor g = got.to(torch::kFloat64).flatten(), w = want.to(torch::kFloat64).flatten();
  const double scale = std::max(1e-6, w.abs().max().item<double>());
  for (std::int64_t i = 0; i < g.numel(); ++i)
    EXPECT_NEAR(g[i].item<double>(), w[i].item<double>(), rtol * scale) << what << "[" << i << "]";
}

Teacher fixture_teacher(const std::string& name, int size, std::vector<float> mean,
                        std::vector<float> std, const at::Tensor& weights) {
  Teacher t;
  t.name = name;
  t.module = torch::jit::load(data_path("btuning/" + name + ".pt"));
  t.input_size = size;
  t.mean = std::move(mean);
  t.std = std::move(std);
  t.weights = weights;
  return t;
}

// Hand-worked: scores (1.0, 0.9, 0.5) at temperature 0.1 give exp(0), exp(-1), exp(-5) after
// subtracting the maximum, i.e. 1, 0.36787944117, 0.00673794700 with sum 1.37461738817, so
// pi = (0.72747515680, 0.26762315415, 0.00490168905).
TEST(BTuningPi, HandWorked) {
  const std::vector<double> pi = btuning_pi({1.0, 0.9, 0.5}, 0.1);
  ASSERT_EQ(pi.size(), 3u);
  EXPECT_NEAR(pi[0], 0.72747515680, 1e-10);
  EXPECT_NEAR(pi[1], 0.26762315415, 1e-10);
  EXPECT_NEAR(pi[2], 0.00490168905, 1e-10);
}

TEST(BTuningPi, ShiftInvariantOneTeacherAndTorchSoftmax) {
  const std::vector<double> a = btuning_pi({-3.0, -3.2}, 0.5), b = btuning_pi({997.0, 996.8}, 0.5);
  EXPECT_NEAR(a[0], b[0], 1e-12);  // large scores do not overflow
  EXPECT_NEAR(a[0] + a[1], 1.0, 1e-15);
  EXPECT_EQ(btuning_pi({-42.0}, 0.1), std::vector<double>{1.0});
  const std::vector<double> even = btuning_pi({0.2, 0.2, 0.2, 0.2}, 0.1);
  for (const double p : even) EXPECT_DOUBLE_EQ(p, 0.25);
  // torch.softmax(scores / 0.1) of the step fixture.
  const at::Tensor scores = npy_tensor("scores.npy"), want = npy_tensor("pi.npy");
  const std::vector<double> pi =
      btuning_pi({scores[0].item<double>(), scores[1].item<double>()}, 0.1);
  EXPECT_NEAR(pi[0], want[0].item<double>(), 1e-15);
  EXPECT_NEAR(pi[1], want[1].item<double>(), 1e-15);
}

TEST(BTuningPi, BadInputs) {
  EXPECT_THROW(btuning_pi({}, 0.1), InputError);
  EXPECT_THROW(btuning_pi({0.1}, 0.0), InputError);
  EXPECT_THROW(btuning_pi({0.1}, -1.0), InputError);
  EXPECT_THROW(btuning_pi({0.1, std::nan("")}, 0.1), InputError);
}

// One step: the loss (cross-entropy + 100 x MSE to the pi-mixed teachers, each teacher fed the
// batch at its own size and normalisation) and every parameter after SGD(lr 0.05) equal PyTorch's.
TEST(BTuning, OneSgdStepMatchesPyTorch) {
  torch::manual_seed(0);
  torch::jit::Module student = torch::jit::load(data_path("btuning/student.pt"));
  student.train();
  torch::nn::Linear head(8, 3);
  {
    torch::NoGradGuard ng;
    head->weight.copy_(npy_tensor("head_weight.npy"));
    head->bias.copy_(npy_tensor("head_bias.npy"));
  }
  const at::Tensor scores = npy_tensor("scores.npy");
  const std::vector<double> pi =
      btuning_pi({scores[0].item<double>(), scores[1].item<double>()}, 0.1);
  std::vector<Teacher> teachers;
  teachers.push_back(fixture_teacher("teacher_a", 6, {0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f},
                                     npy_tensor("m_a.npy")));
  teachers.push_back(fixture_teacher("teacher_b", 12, {}, {}, npy_tensor("m_b.npy")));
  BTuning bt(std::move(teachers), pi, npy_tensor("m_s.npy"), 100.0, {}, {});

  const at::Tensor x = npy_tensor("x.npy"), y = npy_tensor("y.npy");
  std::vector<at::Tensor> params;
  std::vector<std::string> names;
  for (const auto& p : student.named_parameters(true)) {
    params.push_back(p.value);
    names.push_back(p.name);
  }
  for (const auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.05));
  opt.zero_grad();
  const at::Tensor feats = select_features(student.forward({x}), 0, "student.pt");
  const at::Tensor ce = torch::nn::functional::cross_entropy(head->forward(feats), y);
  const at::Tensor distill = bt.loss(feats, x);
  const at::Tensor loss = ce + distill;
  EXPECT_TRUE(test::near_rel(ce.item<double>(), npy_scalar("ce.npy"), 1e-5));
  EXPECT_TRUE(test::near_rel(distill.item<double>(), npy_scalar("distill.npy"), 1e-5));
  EXPECT_TRUE(test::near_rel(loss.item<double>(), npy_scalar("loss.npy"), 1e-5));
  loss.backward();
  opt.step();
  for (std::size_t i = 0; i < names.size(); ++i)
    expect_tensor_near(params[i], npy_tensor("after_" + names[i] + ".npy"), 1e-5, names[i]);
  expect_tensor_near(head->weight, npy_tensor("after_head_weight.npy"), 1e-5, "head.weight");
  expect_tensor_near(head->bias, npy_tensor("after_head_bias.npy"), 1e-5, "head.bias");
}

// Random 8 x 8 training images of 3 classes (4 each) for prepare_btuning.
Split random_split(std::int64_t n) {
  Split sp;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  sp.images.resize(static_cast<std::size_t>(n * 3 * 8 * 8));
  for (float& v : sp.images) v = u(rng);
  for (std::int64_t i = 0; i < n; ++i) {
    ImageSample s;
    s.name = "img" + std::to_string(i);
    s.label = i % 3;
    sp.samples.push_back(s);
  }
  return sp;
}

FinetuneOptions fixture_options(const std::string& out) {
  FinetuneOptions o;
  o.model = data_path("btuning/student.pt");
  o.input_size = 8;
  o.batch = 5;
  o.out = out;
  o.teachers_zoo = data_path("btuning/zoo.json");
  return o;
}

// A student taught by one teacher that is itself: the same features, the same LogME weights
// (fitted on the same features), pi = 1, so the distillation term is exactly 0 at the start.
TEST(BTuning, SelfTeacherGivesZeroDistillationLoss) {
  test::TempDir dir;
  FinetuneOptions o = fixture_options(dir.path());
  o.teacher_names = {"self"};
  ZooModel self;
  self.name = "self";
  self.file = o.model;
  self.kind = "image";
  self.input_size = 8;
  torch::jit::Module student = torch::jit::load(o.model);
  student.eval();
  const auto features = [&](const at::Tensor& x) {
    return select_features(student.forward({x}), 0, o.model);
  };
  const Split train = random_split(12);
  BTuningSetup s = prepare_btuning(o, {self}, train, 3, features, torch::kCPU);
  ASSERT_EQ(s.info["teachers"].size(), 1u);
  EXPECT_EQ(s.info["teachers"][0]["pi"].get<double>(), 1.0);
  EXPECT_EQ(s.info["teachers"][0]["logme"].get<double>(), s.info["student"]["logme"].get<double>());
  EXPECT_EQ(s.info["student"]["shape"], nlohmann::ordered_json::parse("[3, 8]"));
  const at::Tensor x =
      torch::from_blob(const_cast<float*>(train.images.data()), {5, 3, 8, 8}, torch::kFloat32);
  EXPECT_EQ(s.bt->loss(features(x), x).item<double>(), 0.0);
  // A different batch: still 0 (the weights coincide, not just the first rows).
  const at::Tensor x2 = torch::from_blob(const_cast<float*>(train.images.data()) + 5 * 3 * 64,
                                         {7, 3, 8, 8}, torch::kFloat32);
  EXPECT_EQ(s.bt->loss(features(x2), x2).item<double>(), 0.0);
  // Stored and reused as they are.
  EXPECT_FALSE(s.info["reused"].get<bool>());
  BTuningSetup again = prepare_btuning(o, {self}, train, 3, features, torch::kCPU);
  EXPECT_TRUE(again.info["reused"].get<bool>());
  EXPECT_EQ(again.info["teachers"], s.info["teachers"]);
  EXPECT_EQ(again.bt->loss(features(x), x).item<double>(), 0.0);
}

// Cached targets (no augmentation) equal the targets computed per batch.
TEST(BTuning, CachedTargetsEqualComputed) {
  test::TempDir dir;
  FinetuneOptions o = fixture_options(dir.path());
  o.teachers_top = 2;
  const std::vector<ZooModel> cands = btuning_candidates(o, false);
  torch::jit::Module student = torch::jit::load(o.model);
  student.eval();
  const auto features = [&](const at::Tensor& x) {
    return select_features(student.forward({x}), 0, o.model);
  };
  const Split train = random_split(12);
  BTuningSetup s = prepare_btuning(o, cands, train, 3, features, torch::kCPU);
  ASSERT_EQ(s.info["teachers"].size(), 2u);
  const at::Tensor x =
      torch::from_blob(const_cast<float*>(train.images.data()), {12, 3, 8, 8}, torch::kFloat32);
  const at::Tensor f = features(x);
  const std::vector<std::int64_t> rows = {3, 0, 7, 11};
  const at::Tensor idx = torch::tensor(rows, torch::kInt64);
  const double direct = s.bt->loss(f.index_select(0, idx), x.index_select(0, idx)).item<double>();
  s.bt->cache_targets(train.images, 12, 8, 5, torch::kCPU);
  ASSERT_TRUE(s.bt->cached());
  const double cached =
      s.bt->loss(f.index_select(0, idx), at::Tensor(), rows.data(), 4).item<double>();
  EXPECT_TRUE(test::near_rel(cached, direct, 1e-6));
  EXPECT_GT(direct, 0.0);
}

TEST(BTuning, CandidatesLeaveOutTheStudent) {
  test::TempDir dir;
  FinetuneOptions o = fixture_options(dir.path());
  o.teachers_top = 2;
  const std::vector<ZooModel> c = btuning_candidates(o, false);
  ASSERT_EQ(c.size(), 2u);  // student.pt is in the zoo and left out
  EXPECT_EQ(c[0].name, "teacher_a");
  EXPECT_EQ(c[1].name, "teacher_b");
  o.teachers_top = 0;
  o.teacher_names = {"teacher_b"};
  const std::vector<ZooModel> named = btuning_candidates(o, false);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].name, "teacher_b");
  EXPECT_TRUE(btuning_candidates(FinetuneOptions{}, false).empty());
}

// The message of the InputError thrown by btuning_candidates(o), or "" when none.
std::string candidates_error(const FinetuneOptions& o, bool text = false) {
  try {
    btuning_candidates(o, text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(BTuning, BadTeacherListsAreOneLineErrors) {
  test::TempDir dir;
  const FinetuneOptions base = fixture_options(dir.path());
  FinetuneOptions o = base;
  o.teachers_top = 3;  // two teachers besides the student
  EXPECT_NE(candidates_error(o).find("has 2 image models besides the student (student left out)"),
            std::string::npos)
      << candidates_error(o);
  o = base;  // default K = 3: the same
  EXPECT_NE(candidates_error(o).find("--teachers-top 3"), std::string::npos);
  o = base;
  o.teacher_names = {"teacher_c"};
  EXPECT_NE(candidates_error(o).find("--teacher teacher_c: "), std::string::npos);
  EXPECT_NE(candidates_error(o).find("has no model of that name (student, teacher_a, teacher_b)"),
            std::string::npos);
  o.teacher_names = {"student"};
  EXPECT_NE(candidates_error(o).find("is the student's own file"), std::string::npos);
  o.teacher_names = {"teacher_a", "teacher_a"};
  EXPECT_NE(candidates_error(o).find("named twice"), std::string::npos);
  o.teacher_names = {"teacher_a"};
  o.teachers_top = 1;
  EXPECT_NE(candidates_error(o).find("exclude each other"), std::string::npos);
  o = base;
  EXPECT_NE(candidates_error(o, true).find("needs an image model as the student"),
            std::string::npos);
  o.teachers_zoo.clear();
  o.teacher_names = {"teacher_a"};
  EXPECT_NE(candidates_error(o).find("needs --teachers"), std::string::npos);
  // A text model cannot teach an image model.
  const std::string zoo = dir.file("zoo.json");
  test::write_bytes(zoo, "{\"models\": [{\"name\": \"words\", \"file\": \"" +
                             data_path("model/models/text_bag.pt") + "\", \"kind\": \"text\"}]}");
  o = base;
  o.teachers_zoo = zoo;
  o.teacher_names = {"words"};
  EXPECT_NE(candidates_error(o).find("--teacher words: a text model cannot teach the image model"),
            std::string::npos);
  EXPECT_EQ(candidates_error(o).find('\n'), std::string::npos) << candidates_error(o);
}

// run_finetune with two teachers, interrupted after one epoch and resumed: metrics.json records
// the teachers, their LogME, pi and the weight shapes; the resumed run reuses the stored state
// and ends where an uninterrupted run ends.
TEST(BTuning, FinetuneWithTeachersResumes) {
  test::TempDir dir;
  auto opts = [&](const std::string& out) {
    FinetuneOptions o = test::toy_finetune_options(out, "full", 2);
    o.teachers_zoo = data_path("btuning/zoo.json");
    o.teachers_top = 2;
    return o;
  };
  FinetuneOptions whole = opts(dir.file("whole"));
  const FinetuneResult a = run_finetune(whole);
  FinetuneOptions part = opts(dir.file("part"));
  part.stop_after = 1;
  run_finetune(part);
  part.stop_after = 0;
  const FinetuneResult b = run_finetune(part);
  ASSERT_TRUE(b.runs[0].resumed);
  const auto ma = test::load_json(dir.file("whole/metrics.json"));
  const auto mb = test::load_json(dir.file("part/metrics.json"));
  ASSERT_TRUE(ma.contains("btuning"));
  const auto& t = ma["btuning"]["teachers"];
  ASSERT_EQ(t.size(), 2u);
  EXPECT_NEAR(t[0]["pi"].get<double>() + t[1]["pi"].get<double>(), 1.0, 1e-12);
  EXPECT_GE(t[0]["logme"].get<double>(), t[1]["logme"].get<double>());  // best first
  for (const auto& x : t) {
    EXPECT_EQ(x["shape"][0].get<int>(), 2);                 // the toy's 2 classes
    const std::string name = x["name"].get<std::string>();  // trainable.pt is the student here
    EXPECT_EQ(x["shape"][1].get<int>(), name == "teacher_a" ? 5 : name == "teacher_b" ? 6 : 8);
    EXPECT_TRUE(
        std::filesystem::exists(dir.file("whole/btuning/" + x["weights"].get<std::string>())));
  }
  EXPECT_EQ(ma["btuning"]["student"]["shape"][1].get<int>(), 8);
  EXPECT_TRUE(mb["btuning"]["reused"].get<bool>());
  EXPECT_EQ(mb["btuning"]["teachers"], ma["btuning"]["teachers"]);
  EXPECT_EQ(checkpoint_parameters(dir.file("whole/checkpoint.pt")),
            checkpoint_parameters(dir.file("part/checkpoint.pt")));
  EXPECT_EQ(a.runs[0].test_acc, b.runs[0].test_acc);
}

// --grid: every point trains with the same teachers (one <out>/btuning/ for the command) and
// records them; a checkpoint of plain fine-tuning is not resumed with teachers.
TEST(BTuning, GridSharesTheTeachersAndPlainCheckpointsAreRefused) {
  test::TempDir dir;
  FinetuneOptions o = test::toy_finetune_options(dir.file("grid"), "top:1", 1);
  o.teachers_zoo = data_path("btuning/zoo.json");
  o.teacher_names = {"teacher_b"};
  o.grid = "lr=0.05,0.01";
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.runs.size(), 2u);
  for (const auto& run : r.runs) {
    const auto m = test::load_json(run.out + "/metrics.json");
    ASSERT_TRUE(m.contains("btuning")) << run.out;
    ASSERT_EQ(m["btuning"]["teachers"].size(), 1u);
    EXPECT_EQ(m["btuning"]["teachers"][0]["name"], "teacher_b");
    EXPECT_EQ(m["btuning"]["teachers"][0]["pi"].get<double>(), 1.0);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.file("grid/btuning/teacher_teacher_b.npy")));

  FinetuneOptions plain = test::toy_finetune_options(dir.file("plain"), "top:1", 2);
  plain.stop_after = 1;
  run_finetune(plain);
  FinetuneOptions taught = test::toy_finetune_options(dir.file("plain"), "top:1", 2);
  taught.teachers_zoo = data_path("btuning/zoo.json");
  taught.teacher_names = {"teacher_b"};
  try {
    run_finetune(taught);
    ADD_FAILURE() << "a plain checkpoint was resumed with teachers";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("differs in: btuning"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tlkit::model::finetune_detail

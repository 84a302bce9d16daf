// tlkit::model fine-tuning (tlkit/model/finetune.h) on the tiny scripted model
// tests/data/model/models/trainable.pt and the separable toy images tests/data/model/toy/
// (tools/export_finetune_fixtures.py), on the trainable text model models/text_bag.pt and the 12
// TREC questions text/trec12.txt (tools/export_text_finetune_fixtures.py), plus small kit runs
// (skipped without the kit).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

#include "model/finetune_grid.h"
#include "model_test_support.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/finetune.h"
#include "tlkit/model/runtime.h"

namespace tlkit::model {
namespace {

namespace fs = std::filesystem;

std::string trainable() { return test::data_path("model/models/trainable.pt"); }

FinetuneOptions toy(const std::string& out, const std::string& mode = "top:1") {
  return test::toy_finetune_options(out, mode, 3);
}

void expect_same_history(const FinetuneRun& a, const FinetuneRun& b) {
  ASSERT_EQ(a.history.size(), b.history.size());
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    EXPECT_EQ(a.history[i].epoch, b.history[i].epoch);
    EXPECT_EQ(a.history[i].lr, b.history[i].lr);
    EXPECT_EQ(a.history[i].train_loss, b.history[i].train_loss) << "epoch " << i + 1;
    EXPECT_EQ(a.history[i].train_acc, b.history[i].train_acc);
    EXPECT_EQ(a.history[i].val_acc, b.history[i].val_acc);
  }
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(a.test_acc, b.test_acc);
}

TEST(Finetune, ParsesModesAndGrids) {
  EXPECT_EQ(parse_mode("linear").mode, FinetuneMode::kLinear);
  EXPECT_EQ(parse_mode("full").mode, FinetuneMode::kFull);
  EXPECT_EQ(parse_mode("top:3").top_k, 3);
  for (const char* bad : {"top:0", "top:", "top:x", "top:-1", "top:2x", "all", ""})
    EXPECT_THROW(parse_mode(bad), InputError) << bad;
  const auto g = parse_grid("lr=1e-2,1e-3;weight-decay=0,5e-4", FinetuneMode::kTop);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].key, "lr");
  EXPECT_EQ(g[0].values, (std::vector<double>{1e-2, 1e-3}));
  EXPECT_EQ(g[1].values, (std::vector<double>{0.0, 5e-4}));
  EXPECT_EQ(parse_grid("c=0.1,10", FinetuneMode::kLinear)[0].values.size(), 2u);
  for (const char* bad :
       {"lr", "lr=", "lr=1,,2", "lr=x", "lr=1;lr=2", "foo=1", "=1", "lr=0", "lr=1e-2;c=1", "lr=-1"})
    EXPECT_THROW(parse_grid(bad, FinetuneMode::kTop), InputError) << bad;
  EXPECT_THROW(parse_grid("lr=0.1", FinetuneMode::kLinear), InputError);
}

TEST(Finetune, BlocksOfTheScriptedFixture) {
  // conv1, bn1, the two Blocks of the Sequential; `linear` (the old classifier) feeds only the
  // logits and is dropped.
  const auto b = list_blocks(trainable(), 8);
  std::vector<std::string> names;
  for (const auto& x : b) names.push_back(x.name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1", "bn1", "blocks.0", "blocks.1"}));
  EXPECT_EQ(b[0].parameters, 4 * 3 * 9);
  EXPECT_EQ(b[1].parameters, 8);
  EXPECT_EQ(b[3].parameters, 4 * 4 * 9 + 8);
}

// Parameters of blocks.1 change, every other one stays bit-identical (top:1); full changes all
// on the feature path and leaves the old classifier alone.
TEST(Finetune, FreezingChangesExactlyTheUnfrozenParameters) {
  const auto before = model_parameters(trainable());
  for (const std::string mode : {"top:1", "top:3", "full"}) {
    test::TempDir t;
    run_finetune(toy(t.path(), mode));
    const auto after = checkpoint_parameters(t.path() + "/checkpoint.pt");
    ASSERT_EQ(after.size(), before.size());
    for (const auto& [name, v] : before) {
      const bool trains =
          name.rfind("linear.", 0) != 0 && (mode == "full" || name.rfind("blocks.1.", 0) == 0 ||
                                            (mode == "top:3" && name.rfind("blocks.", 0) == 0) ||
                                            (mode == "top:3" && name.rfind("bn1.", 0) == 0));
      if (trains)
        EXPECT_NE(after.at(name), v) << mode << ": " << name << " did not train";
      else
        EXPECT_EQ(after.at(name), v) << mode << ": " << name << " changed";
    }
  }
}

// BatchNorm statistics update in unfrozen blocks only (train mode there, eval mode elsewhere).
TEST(Finetune, BatchNormStatisticsUpdateOnlyInUnfrozenBlocks) {
  const auto before = model_parameters(trainable(), true);
  for (const std::string mode : {"top:1", "full"}) {
    test::TempDir t;
    run_finetune(toy(t.path(), mode));
    const auto after = checkpoint_parameters(t.path() + "/checkpoint.pt", true);
    for (const std::string stat : {"running_mean", "running_var"}) {
      for (const std::string bn : {"bn1.", "blocks.0.bn.", "blocks.1.bn."}) {
        const std::string key = "buffer:" + bn + stat;
        ASSERT_TRUE(before.count(key)) << key;
        if (mode == "full" || bn == "blocks.1.bn.")
          EXPECT_NE(after.at(key), before.at(key)) << mode << ": " << key;
        else
          EXPECT_EQ(after.at(key), before.at(key)) << mode << ": " << key;
      }
    }
  }
}

TEST(Finetune, TwoRunsAreIdentical) {
  test::TempDir a, b;
  FinetuneOptions o = toy(a.path(), "full");
  const FinetuneResult ra = run_finetune(o);
  o.out = b.path();
  const FinetuneResult rb = run_finetune(o);
  expect_same_history(ra.runs[0], rb.runs[0]);
  EXPECT_EQ(checkpoint_parameters(a.path() + "/checkpoint.pt", true),
            checkpoint_parameters(b.path() + "/checkpoint.pt", true));
  // Another seed draws another head, order and augmentation.
  test::TempDir c;
  o.out = c.path();
  o.seed = 8;
  const FinetuneResult rc = run_finetune(o);
  EXPECT_NE(rc.runs[0].history[0].train_loss, ra.runs[0].history[0].train_loss);
}

TEST(Finetune, ResumeEqualsAStraightRun) {
  test::TempDir straight, split, more;
  FinetuneOptions o = toy(straight.path(), "top:2");
  o.epochs = 4;
  const FinetuneRun s = run_finetune(o).runs[0];
  ASSERT_TRUE(s.finished);
  // Interrupted after 2 epochs (cosine schedule over 4), then resumed.
  o.out = split.path();
  o.stop_after = 2;
  const FinetuneRun first = run_finetune(o).runs[0];
  EXPECT_FALSE(first.finished);
  EXPECT_EQ(first.history.size(), 2u);
  o.stop_after = 0;
  o.resume = true;
  const FinetuneRun second = run_finetune(o).runs[0];
  EXPECT_TRUE(second.resumed);
  EXPECT_EQ(second.resumed_from_epoch, 2);
  expect_same_history(s, second);
  EXPECT_EQ(checkpoint_parameters(straight.path() + "/checkpoint.pt", true),
            checkpoint_parameters(split.path() + "/checkpoint.pt", true));
  // With a constant schedule, 2 epochs then --epochs 4 equals 4 epochs straight.
  o = toy(straight.path() + "/c4", "top:2");
  o.schedule = "constant";
  o.epochs = 4;
  const FinetuneRun c4 = run_finetune(o).runs[0];
  o.out = more.path();
  o.epochs = 2;
  run_finetune(o);
  o.epochs = 4;
  const FinetuneRun c2to4 = run_finetune(o).runs[0];
  expect_same_history(c4, c2to4);
  EXPECT_EQ(checkpoint_parameters(straight.path() + "/c4/checkpoint.pt", true),
            checkpoint_parameters(more.path() + "/checkpoint.pt", true));
  const auto m = test::load_json(more.path() + "/metrics.json");
  EXPECT_EQ(m["history"].size(), 4u);
  EXPECT_EQ(m["test_acc"].get<double>(), c4.test_acc);
}

// Each epoch trains at the rate of the schedule (docs/finetune.md; the formulas themselves are
// tested in test_finetune_schedule.cpp): cosine over E = 4 with W = 1 warm-up epoch and lr 0.04
// gives 0.04 / 2 in the warm-up epoch, then with n = 3: 0.04, 0.04 ½ (1 + cos(π/3)) = 0.03 and
// 0.04 ½ (1 + cos(2π/3)) = 0.01. The history and metrics.json record those rates, and the last
// epoch, at 0.01, changes every trained parameter (a rate of 0 would leave them as they were).
TEST(Finetune, EveryEpochTrainsAtTheScheduledRate) {
  test::TempDir t, three;
  FinetuneOptions o = toy(t.path(), "top:2");
  o.epochs = 4;
  o.warmup_epochs = 1;
  o.lr = 0.04;
  const FinetuneRun r = run_finetune(o).runs[0];
  const std::vector<double> want{0.02, 0.04, 0.03, 0.01};
  ASSERT_EQ(r.history.size(), want.size());
  const auto m = test::load_json(t.path() + "/metrics.json");
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(r.history[i].lr, want[i], 1e-15) << "epoch " << i + 1;
    EXPECT_NEAR(m["history"][i]["lr"].get<double>(), want[i], 1e-15) << "epoch " << i + 1;
  }
  o.out = three.path();
  o.stop_after = 3;
  run_finetune(o);
  const auto after3 = checkpoint_parameters(three.path() + "/checkpoint.pt");
  const auto after4 = checkpoint_parameters(t.path() + "/checkpoint.pt");
  int trained = 0;
  for (const auto& [name, v] : after4) {
    if (name.rfind("blocks.", 0) != 0) continue;  // top:2: blocks.0 and blocks.1
    ++trained;
    EXPECT_NE(v, after3.at(name)) << name << " did not change in the last epoch";
  }
  EXPECT_GT(trained, 0);
}

TEST(Finetune, RefusesACheckpointOfAnotherConfiguration) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path());
  o.epochs = 1;
  run_finetune(o);
  o.lr = 0.01;
  try {
    run_finetune(o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("different configuration (differs in: lr)"),
              std::string::npos)
        << e.what();
  }
  o.lr = 0.05;
  o.resume = true;
  o.out = t.path() + "/fresh";
  EXPECT_THROW(run_finetune(o), InputError);  // --resume with nothing to resume
}

TEST(Finetune, LossDecreasesAndTheToyIsLearnt) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "full");
  o.epochs = 6;
  o.lr = 0.003;
  o.augment = "none";
  const FinetuneRun r = run_finetune(o).runs[0];
  ASSERT_EQ(r.history.size(), 6u);
  EXPECT_LT(r.history.back().train_loss, 0.7 * r.history.front().train_loss);
  EXPECT_GE(r.test_acc, 87.5);  // 8 test images, red vs blue
  const auto m = test::load_json(t.path() + "/metrics.json");
  EXPECT_EQ(m["best_epoch"].get<int>(), r.best_epoch);
  EXPECT_EQ(m["history"][0]["epoch"], 1);
  for (const char* k : {"lr", "train_loss", "train_acc", "val_acc", "seconds"})
    EXPECT_TRUE(m["history"][0].contains(k)) << k;
}

TEST(Finetune, ADivergedRunStopsKeepsTheBestEpochBeforeItAndSaysSo) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "full");
  o.epochs = 5;
  o.lr = 1e30;  // float32 weights overflow within the first steps
  const FinetuneResult res = run_finetune(o);
  const FinetuneRun& r = res.runs[0];
  EXPECT_TRUE(r.diverged);
  EXPECT_TRUE(r.early_stopped);
  EXPECT_TRUE(r.finished);
  ASSERT_LT(r.history.size(), 5u);  // stopped at the first non-finite epoch
  EXPECT_FALSE(std::isfinite(r.history.back().train_loss));
  for (std::size_t i = 0; i + 1 < r.history.size(); ++i)
    EXPECT_TRUE(std::isfinite(r.history[i].train_loss));
  EXPECT_LT(r.best_epoch, r.history.back().epoch);
  ASSERT_EQ(res.notes.size(), 1u);
  EXPECT_NE(res.notes[0].find("became non-finite in epoch"), std::string::npos) << res.notes[0];
  const auto m = test::load_json(t.path() + "/metrics.json");
  EXPECT_TRUE(m["diverged"].get<bool>());
  EXPECT_TRUE(m["history"].back()["train_loss"].is_null());
  // The checkpoint with the null loss resumes as the same finished, diverged run.
  const FinetuneResult again = run_finetune(o);
  EXPECT_TRUE(again.runs[0].resumed);
  EXPECT_TRUE(again.runs[0].diverged);
  EXPECT_EQ(again.runs[0].history.size(), r.history.size());
  EXPECT_EQ(again.runs[0].test_acc, r.test_acc);
  // A sane learning rate does not diverge.
  test::TempDir t2;
  o.out = t2.path();
  o.lr = 0.003;
  o.epochs = 2;
  EXPECT_FALSE(run_finetune(o).runs[0].diverged);
}

TEST(Finetune, GridWritesOneFolderPerPointAndPicksTheBestByValidation) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "top:1");
  o.epochs = 1;
  o.grid = "lr=0.05,0.001;weight-decay=0,0.01";
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.runs.size(), 4u);
  for (const auto& run : r.runs) {
    EXPECT_TRUE(fs::exists(run.out + "/checkpoint.pt")) << run.out;
    EXPECT_LE(run.best_val_acc, r.runs[r.best_run].best_val_acc);
  }
  EXPECT_TRUE(fs::exists(t.path() + "/lr=0.05,weight-decay=0/metrics.json"));
  const auto m = test::load_json(t.path() + "/metrics.json");
  EXPECT_EQ(m["points"].size(), 4u);
  EXPECT_EQ(m["best_val_acc"].get<double>(), r.runs[r.best_run].best_val_acc);
}

// --mode linear from `tlkit extract` folders equals the core probe on the same features.
TEST(Finetune, LinearFromExtractedFeaturesMatchesTheCoreProbe) {
  test::TempDir t;
  const auto [tr, te] = test::extract_toy_splits(t, trainable());
  FinetuneOptions o;
  o.mode = parse_mode("linear");
  o.features_dir = t.file("train");
  o.features_val_dir = t.file("test");  // val = test: makes the choice checkable below
  o.features_test_dir = t.file("test");
  o.out = t.file("out");
  const FinetuneResult r = run_finetune(o);
  LabelledRows a{{tr.features.begin(), tr.features.end()}, tr.labels};
  LabelledRows b{{te.features.begin(), te.features.end()}, te.labels};
  const LinearProbeResult ref =
      linear_probe(a, b, b, tr.features_dim, 2, default_linear_probe_cs());
  ASSERT_EQ(r.runs.size(), ref.grid.size());
  EXPECT_EQ(r.best_run, ref.best);
  EXPECT_EQ(r.runs[r.best_run].test_acc, ref.test_accuracy);
  const auto m = test::load_json(t.file("out") + "/metrics.json");
  EXPECT_EQ(m["test_acc"].get<double>(), ref.test_accuracy);
  EXPECT_EQ(m["grid"].size(), ref.grid.size());
}

TEST(Finetune, LinearOnTheFlyCarvesATestFraction) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "linear");
  o.split_test.clear();
  o.test_fraction = 0.25;
  const FinetuneResult r = run_finetune(o);
  EXPECT_EQ(r.test_n, 6);  // 3 of 12 per class
  EXPECT_EQ(r.val_n, 4);   // 0.25 of the 9 left per class, rounded: 2
  EXPECT_EQ(r.train_n, 14);
  EXPECT_GE(r.runs[r.best_run].test_acc, 0.0);
}

TEST(Finetune, BadOptionsThrow) {
  test::TempDir t;
  FinetuneOptions o = toy(t.path(), "top:5");  // 4 blocks
  EXPECT_THROW(run_finetune(o), InputError);
  o = toy(t.path());
  o.device = "cuda";
  if (!cuda_available()) {
    EXPECT_THROW(run_finetune(o), InputError);
  }
}

// --- --device
// -------------------------------------------------------------------------------------

// Values extract's --device refuses are refused here too, before the output folder is made.
TEST(FinetuneDevice, BadDevicesThrowBeforeAnythingIsWritten) {
  test::TempDir t;
  for (const std::string d : {"gpu", "cuda:x", "cuda:", "cuda:-1", "cuda:1024"}) {
    FinetuneOptions o = toy(t.path() + "/out");
    o.device = d;
    try {
      run_finetune(o);
      ADD_FAILURE() << d << " was accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), "--device " + d + ": expected cpu, cuda or cuda:N (N >= 0)");
    }
    EXPECT_FALSE(fs::exists(t.path() + "/out")) << d;
  }
  if (cuda_available()) return;
  for (const std::string d : {"cuda", "cuda:0", "cuda:2"}) {
    FinetuneOptions o = toy(t.path() + "/out");
    o.device = d;
    EXPECT_THROW(run_finetune(o), InputError) << d;
    EXPECT_FALSE(fs::exists(t.path() + "/out")) << d;
  }
}

// The largest difference between two parameter maps, relative to the larger magnitude (at least 1).
double max_relative_difference(const std::map<std::string, std::vector<float>>& a,
                               const std::map<std::string, std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, va] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.size() != va.size()) {
      ADD_FAILURE() << name << " differs in shape";
      return std::numeric_limits<double>::infinity();
    }
    for (std::size_t i = 0; i < va.size(); ++i) {
      const double x = va[i], y = it->second[i];
      worst = std::max(worst, std::abs(x - y) / std::max({1.0, std::abs(x), std::abs(y)}));
    }
  }
  return worst;
}

// A few SGD steps (3 epochs of the 18 toy images, batch 4: 15 steps, all blocks) on the GPU
// against the CPU. cuDNN may run float32 convolutions in TF32 (10 mantissa bits), so the runs
// agree to a tolerance, not bit for bit: losses within 1e-2, weights within 1e-2 relative.
TEST(FinetuneDevice, GpuTrainsAsTheCpuDoes) {
  if (!cuda_available()) GTEST_SKIP() << "this LibTorch has no CUDA support or sees no GPU";
  test::TempDir cpu, gpu;
  FinetuneOptions o = toy(cpu.path(), "full");
  const FinetuneRun rc = run_finetune(o).runs[0];
  o.out = gpu.path();
  o.device = "cuda";
  const FinetuneRun rg = run_finetune(o).runs[0];
  ASSERT_EQ(rc.history.size(), rg.history.size());
  for (std::size_t i = 0; i < rc.history.size(); ++i)
    EXPECT_NEAR(rc.history[i].train_loss, rg.history[i].train_loss, 1e-2) << "epoch " << i + 1;
  EXPECT_LT(max_relative_difference(checkpoint_parameters(cpu.path() + "/checkpoint.pt", true),
                                    checkpoint_parameters(gpu.path() + "/checkpoint.pt", true)),
            1e-2);
  EXPECT_LT(max_relative_difference(model_parameters(cpu.path() + "/model.pt"),
                                    model_parameters(gpu.path() + "/model.pt")),
            1e-2);
  EXPECT_EQ(test::load_json(gpu.path() + "/metrics.json")["config"]["device"], "cuda:0");
}

// A run interrupted on the CPU resumes on the GPU, and one interrupted there resumes on the CPU
// (checkpoints hold CPU tensors; the device is outside the configuration hash); the result is
// the straight CPU run's, to the tolerance above.
TEST(FinetuneDevice, GpuResumesAcrossDevices) {
  if (!cuda_available()) GTEST_SKIP() << "this LibTorch has no CUDA support or sees no GPU";
  test::TempDir straight, split;
  FinetuneOptions o = toy(straight.path(), "top:2");
  o.epochs = 3;
  const FinetuneRun s = run_finetune(o).runs[0];
  o.out = split.path();
  o.stop_after = 1;
  run_finetune(o);  // epoch 1 on the CPU
  o.resume = true;
  o.device = "cuda:0";
  const FinetuneRun on_gpu = run_finetune(o).runs[0];  // epoch 2 on the GPU
  EXPECT_TRUE(on_gpu.resumed);
  EXPECT_EQ(on_gpu.resumed_from_epoch, 1);
  o.device = "cpu";
  o.stop_after = 0;
  const FinetuneRun back = run_finetune(o).runs[0];  // epoch 3 on the CPU
  EXPECT_EQ(back.resumed_from_epoch, 2);
  ASSERT_TRUE(back.finished);
  ASSERT_EQ(back.history.size(), s.history.size());
  for (std::size_t i = 0; i < s.history.size(); ++i)
    EXPECT_NEAR(s.history[i].train_loss, back.history[i].train_loss, 1e-2) << "epoch " << i + 1;
  EXPECT_LT(max_relative_difference(checkpoint_parameters(straight.path() + "/checkpoint.pt", true),
                                    checkpoint_parameters(split.path() + "/checkpoint.pt", true)),
            1e-2);
}

// --- Text models -------------------------------------------------------------------------------

std::string text_bag() { return test::data_path("model/models/text_bag.pt"); }

// trec12.txt as train, val and test (no carving: the tests below depend on no split draw).
FinetuneOptions text_toy(const std::string& out, const std::string& mode = "top:1") {
  return test::text_toy_finetune_options(out, mode);
}

std::vector<float> npy_floats(const std::string& rel) {
  const NpyArray a = load_npy(test::data_path(rel));
  EXPECT_EQ(a.header().type, NpyType::kFloat32) << rel;
  const auto* p = static_cast<const float*>(a.data());
  return {p, p + a.header().count()};
}

TEST(FinetuneText, BlocksOfTheTextFixture) {
  // `out` (the old head) feeds only the second output and is dropped; no --input-size needed.
  const auto b = list_blocks(text_bag(), 0);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].name, "emb");
  EXPECT_EQ(b[0].type, "Embedding");
  EXPECT_EQ(b[0].parameters, 64 * 6);
  EXPECT_EQ(b[1].name, "proj");
  EXPECT_EQ(b[1].parameters, 6 * 4 + 4);
  // text_stats.pt keeps its one parameter in the root module: one block, split by use.
  EXPECT_EQ(list_blocks(test::data_path("model/models/text_stats.pt"), 0).size(), 1u);
}

TEST(FinetuneText, AllModesRunAndRepeatExactly) {
  for (const std::string mode : {"linear", "top:1", "full"}) {
    test::TempDir a, b;
    FinetuneOptions o = text_toy(a.path(), mode);
    const FinetuneResult ra = run_finetune(o);
    EXPECT_EQ(ra.train_n, 12) << mode;
    EXPECT_EQ(ra.test_n, 12) << mode;
    EXPECT_EQ(ra.features_dim, 4) << mode;
    EXPECT_EQ(ra.classes, 6) << mode;  // labels 0..5 (4 absent)
    o.out = b.path();
    const FinetuneResult rb = run_finetune(o);
    ASSERT_EQ(ra.runs.size(), rb.runs.size()) << mode;
    EXPECT_EQ(ra.runs[ra.best_run].test_acc, rb.runs[rb.best_run].test_acc) << mode;
    EXPECT_GE(ra.runs[ra.best_run].test_acc, 0.0) << mode;
    if (mode == "linear") continue;
    expect_same_history(ra.runs[0], rb.runs[0]);
    EXPECT_EQ(checkpoint_parameters(a.path() + "/checkpoint.pt"),
              checkpoint_parameters(b.path() + "/checkpoint.pt"))
        << mode;
    const auto m = test::load_json(a.path() + "/metrics.json");
    EXPECT_EQ(m["data"]["data_kind"], "text");
    EXPECT_EQ(m["config"]["augment"], "none");
    EXPECT_EQ(m["history"].size(), 2u);
  }
}

// top:1 trains proj only: emb and the old head stay bit-identical; full trains emb and proj.
TEST(FinetuneText, FreezingChangesExactlyTheUnfrozenParameters) {
  const auto before = model_parameters(text_bag());
  for (const std::string mode : {"top:1", "full"}) {
    test::TempDir t;
    run_finetune(text_toy(t.path(), mode));
    const auto after = checkpoint_parameters(t.path() + "/checkpoint.pt");
    ASSERT_EQ(after.size(), before.size());
    for (const auto& [name, v] : before) {
      const bool trains =
          name.rfind("proj.", 0) == 0 || (mode == "full" && name.rfind("emb.", 0) == 0);
      if (trains)
        EXPECT_NE(after.at(name), v) << mode << ": " << name << " did not train";
      else
        EXPECT_EQ(after.at(name), v) << mode << ": " << name << " changed";
    }
  }
}

// One SGD step (all 12 questions in one batch, one epoch) equals PyTorch's, computed by
// tools/export_text_finetune_fixtures.py with the same head draw and hyper-parameters.
TEST(FinetuneText, OneSgdStepMatchesPyTorch) {
  for (const std::string mode : {"top:1", "full"}) {
    test::TempDir t;
    FinetuneOptions o = text_toy(t.path(), mode);
    o.epochs = 1;
    o.batch = 12;
    o.lr = 0.1;
    o.head_lr_mult = 10;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    run_finetune(o);
    const auto before = model_parameters(text_bag());
    const auto after = checkpoint_parameters(t.path() + "/checkpoint.pt");
    const std::string tag = mode == "full" ? "full" : "top1";
    for (const std::string name : {"emb.weight", "proj.weight", "proj.bias"}) {
      const std::vector<float> ref =
          npy_floats("model/reference/text_bag_sgd_" + tag + "_" + name + ".npy");
      const std::vector<float>& got = after.at(name);
      ASSERT_EQ(got.size(), ref.size()) << name;
      float moved = 0;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        EXPECT_NEAR(got[i], ref[i], 1e-5) << mode << " " << name << "[" << i << "]";
        moved = std::max(moved, std::abs(ref[i] - before.at(name)[i]));
      }
      if (mode == "full" || name != "emb.weight") {
        EXPECT_GT(moved, 1e-3) << mode << " " << name << ": the reference step moves it";
      }
    }
  }
}

TEST(FinetuneText, SplitsAreFilesNextToDataOrInADataFolder) {
  test::TempDir a, b;
  // --split-test as a bare name: found next to --data.
  FinetuneOptions o = text_toy(a.path(), "top:1");
  o.split_val.clear();
  o.split_test = "trec12.txt";
  o.val_fraction = 0.25;
  o.epochs = 1;
  const FinetuneResult r = run_finetune(o);
  EXPECT_EQ(r.test_n, 12);
  EXPECT_EQ(r.val_n, 3);    // round(0.25 * m) but at least 1 of classes 0, 3 (4 each), 1 (2 each)
  EXPECT_EQ(r.train_n, 9);  // classes 2 and 5 have 1 question: none carved
  // The same with the folder as --data and the files as splits.
  o.out = b.path();
  o.data = test::data_path("model/text");
  o.split_train = "trec12.txt";
  const FinetuneResult f = run_finetune(o);
  EXPECT_EQ(f.train_n, 9);
  expect_same_history(r.runs[0], f.runs[0]);
  // A CSV of text,label with class names, a test fraction carved.
  test::TempDir c;
  o = text_toy(c.path(), "linear");
  o.data = test::data_path("model/text/trec12.csv");
  o.split_val.clear();
  o.split_test.clear();
  o.test_fraction = 0.25;
  const FinetuneResult csv = run_finetune(o);
  EXPECT_EQ(csv.class_names, (std::vector<std::string>{"c0", "c1", "c2", "c3", "c5"}));
  EXPECT_EQ(csv.classes, 5);
  EXPECT_EQ(csv.train_n + csv.val_n + csv.test_n, 12);
}

TEST(FinetuneText, BadInputsThrowClearInputErrors) {
  test::TempDir t;
  // Text data with an image model.
  for (const std::string mode : {"linear", "top:1"}) {
    FinetuneOptions o = text_toy(t.path(), mode);
    o.model = trainable();
    EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("is an image model"),
              std::string::npos)
        << mode;
  }
  // Image data with a text model.
  for (const std::string mode : {"linear", "top:1"}) {
    FinetuneOptions o = toy(t.path(), mode);
    o.model = text_bag();
    EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("is a text model"),
              std::string::npos)
        << mode;
  }
  FinetuneOptions o = text_toy(t.path());
  o.split_train = "trec12.txt";  // --data is a file: it is the training split
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("itself the training split"),
            std::string::npos);
  o = text_toy(t.path());
  o.split_test = "no_such_split.txt";
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("no_such_split.txt"),
            std::string::npos);
  o = text_toy(t.path());
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {0.5f, 0.5f, 0.5f};
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("--mean/--std"), std::string::npos);
  o = text_toy(t.path(), "top:3");  // 2 blocks
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("has 2 blocks"), std::string::npos);
  o = text_toy(t.path());
  o.device = "cuda";
  EXPECT_THROW(run_finetune(o), InputError);
  // A line without text.
  test::write_bytes(t.file("bad.txt"), "0 a question ?\n1\n");
  o = text_toy(t.path());
  o.data = t.file("bad.txt");
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("bad.txt:2"), std::string::npos);
  // An explicit augmentation is ignored with a note.
  o = text_toy(t.file("aug"));
  o.augment = "flip";
  o.epochs = 1;
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("does not apply to text data"), std::string::npos) << r.notes[0];
}

// A model whose tensors are buffers (text_buffer.pt) has nothing for top:K or full to train; the
// linear probe on its fixed features works.
TEST(FinetuneText, AModelWithoutParametersTrainsOnlyLinearly) {
  test::TempDir t;
  FinetuneOptions o = text_toy(t.path(), "full");
  o.model = test::data_path("model/models/text_buffer.pt");
  const std::string e = test::input_error_of([&] { run_finetune(o); });
  EXPECT_NE(e.find("no parameter of the model reaches its features output"), std::string::npos)
      << e;
  EXPECT_NE(e.find("--mode linear"), std::string::npos) << e;
  o.mode = parse_mode("linear");
  const FinetuneResult r = run_finetune(o);
  EXPECT_EQ(r.features_dim, 4);
  EXPECT_GE(r.runs[r.best_run].test_acc, 0.0);
}

// --mean/--std for image models: the identity normalisation changes nothing, another one
// changes the run; a bad normalisation is refused.
TEST(Finetune, MeanAndStdNormaliseTheImages) {
  test::TempDir a, b, c;
  FinetuneOptions o = toy(a.path(), "top:1");
  o.epochs = 1;
  const FinetuneResult plain = run_finetune(o);
  o.out = b.path();
  o.mean = {0, 0, 0};
  o.std = {1, 1, 1};
  const FinetuneResult identity = run_finetune(o);
  expect_same_history(plain.runs[0], identity.runs[0]);
  EXPECT_EQ(checkpoint_parameters(a.path() + "/checkpoint.pt", true),
            checkpoint_parameters(b.path() + "/checkpoint.pt", true));
  o.out = c.path();
  o.mean = {0.5f, 0.4f, 0.3f};
  o.std = {0.2f, 0.25f, 0.3f};
  const FinetuneResult other = run_finetune(o);
  EXPECT_NE(other.runs[0].history[0].train_loss, plain.runs[0].history[0].train_loss);
  EXPECT_EQ(test::load_json(c.path() + "/metrics.json")["config"]["mean"].size(), 3u);
  // Linear mode extracts with the same normalisation: the identity leaves it unchanged.
  test::TempDir d, e;
  FinetuneOptions l = toy(d.path(), "linear");
  const FinetuneResult lp = run_finetune(l);
  l.out = e.path();
  l.mean = {0, 0, 0};
  l.std = {1, 1, 1};
  EXPECT_EQ(run_finetune(l).runs[lp.best_run].test_acc, lp.runs[lp.best_run].test_acc);
  o.mean = {0.5f, 0.5f};
  o.std = {0.5f, 0.5f};
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("3 values"), std::string::npos);
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {0.5f, 0.0f, 0.5f};
  EXPECT_NE(test::input_error_of([&] { run_finetune(o); }).find("positive"), std::string::npos);
}

TEST(FinetuneKit, Resnet20TopOneLearnsClothingInOneEpoch) {
  const std::string kit = TLKIT_KIT_DIR;
  if (!fs::exists(kit + "/models/image/cifar10_resnet20.pt")) GTEST_SKIP() << "no kit at " << kit;
  test::TempDir t;
  FinetuneOptions o;
  o.model = kit + "/models/image/cifar10_resnet20.pt";
  o.data = kit + "/data/clothing-small-160";
  o.split_train = "train";
  o.split_test = "test";
  o.per_class = 10;  // 100 training images (10 classes), 100 test
  o.input_size = 32;
  o.mode = parse_mode("top:1");
  o.epochs = 1;
  o.batch = 16;
  o.lr = 0.01;
  o.threads = 1;  // LibTorch's threads spin on a loaded machine; one is fastest for this size
  o.out = t.path();
  const FinetuneResult r = run_finetune(o);
  EXPECT_EQ(r.blocks.size(), 11u);
  EXPECT_EQ(r.trainable, std::vector<std::string>{"blocks.8"});
  EXPECT_GT(r.runs[0].test_acc, 100.0 / 10 + 5) << "chance is 10%";
}

// A converted model keeps all its parameters in one ParameterDict: blocks are the graph nodes
// that first use them. MobileNet v1 has 27 convolutions (the 28th, the classifier, does not reach
// the features); each block here is one convolution's weight and bias.
TEST(FinetuneKit, BlocksOfAFlatConvertedModelAreItsConvolutions) {
  const std::string kit = TLKIT_KIT_DIR;
  const std::string m = kit + "/models/image/imagenet_mobilenet_v1_025_128.pt";
  if (!fs::exists(m)) GTEST_SKIP() << "no kit at " << kit;
  const auto b = list_blocks(m, 128);
  ASSERT_EQ(b.size(), 27u);
  for (const auto& x : b) {
    EXPECT_EQ(x.type, "aten::_convolution") << x.name;
    EXPECT_EQ(x.name.rfind("net.params.", 0), 0u) << x.name;
  }
  EXPECT_EQ(b.front().parameters, 3 * 3 * 3 * 8 + 8);  // the stem: 8 filters 3x3x3 with bias
}

// The kit's GloVe bag (one block: its 50k x 100 embedding table, used by two embedding_bag
// calls) on 20 TREC questions per class. Its mean and max features (norm about 9) make SGD with
// the default head-lr-mult diverge at lr 0.01; AdamW at 0.01 learns in one epoch.
TEST(FinetuneKit, GloveTopOneLearnsTrecInOneEpoch) {
  const std::string kit = TLKIT_KIT_DIR;
  const std::string m = kit + "/models/text/text_glove6b_100d_50k.pt";
  if (!fs::exists(m)) GTEST_SKIP() << "no kit at " << kit;
  test::TempDir t;
  FinetuneOptions o;
  o.model = m;
  o.data = kit + "/data/text-classification/TREC.train.all";
  o.split_test = "TREC.test.all";  // next to --data
  o.per_class = 20;                // 120 training questions (6 classes), 20 test per class
  o.mode = parse_mode("top:1");
  o.epochs = 1;
  o.batch = 8;
  o.optimizer = "adamw";
  o.lr = 0.01;
  o.threads = 1;
  o.out = t.path();
  const FinetuneResult r = run_finetune(o);
  ASSERT_EQ(r.blocks.size(), 1u);
  EXPECT_EQ(r.blocks[0].name, "emb.weight");
  EXPECT_EQ(r.blocks[0].parameters, 50000 * 100);
  EXPECT_EQ(r.test_n, 109);  // TREC.test.all has 9 ABBR questions
  EXPECT_GT(r.runs[0].test_acc, 100.0 / 6 + 10) << "chance is 16.7%";
}

// The char-RNNs: the embedding and the 2-layer LSTM are blocks; `out` (next-character logits)
// does not reach the features.
TEST(FinetuneKit, BlocksOfTheCharRnns) {
  const std::string kit = TLKIT_KIT_DIR;
  const std::string m = kit + "/models/text/text_charrnn_darwin.pt";
  if (!fs::exists(m)) GTEST_SKIP() << "no kit at " << kit;
  const auto b = list_blocks(m, 0);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].name, "emb");
  EXPECT_EQ(b[1].name, "lstm");
  EXPECT_EQ(b[1].type, "LSTM");
  EXPECT_EQ(b[1].parameters, 2 * (4 * 128 * 128 * 2 + 2 * 4 * 128));
}

// The runs of a grid shared among MPI processes travel as bytes (finetune_grid.h): every number
// comes back bit for bit, also a diverged run's NaN and infinite losses and a negative zero, which
// JSON numbers would lose.
TEST(FinetuneGrid, RunsTravelAsBytesBitForBit) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  FinetuneRun r;
  r.out = "out/lr=0.1,momentum=0";
  r.point = {{"lr", 0.1}, {"momentum", -0.0}};
  r.history = {{1, 0.1, 1.0 / 3.0, 55.5, 60.25, 1e-300},
               {2, 0.05, nan, 50.0, 40.0, 2.5},
               {3, 0.0, inf, 0.0, -inf, 0.0}};
  r.best_epoch = 1;
  r.best_val_acc = 60.25;
  r.test_acc = 100.0 / 7.0;
  r.finished = r.early_stopped = r.diverged = r.resumed = true;
  r.resumed_from_epoch = 2;
  const FinetuneRun b = finetune_detail::run_from_bytes(finetune_detail::run_to_bytes(r));
  auto same = [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; };
  EXPECT_EQ(b.out, r.out);
  ASSERT_EQ(b.point.size(), 2u);
  EXPECT_TRUE(same(b.point.at("lr"), 0.1));
  EXPECT_TRUE(same(b.point.at("momentum"), -0.0));
  ASSERT_EQ(b.history.size(), r.history.size());
  for (std::size_t i = 0; i < r.history.size(); ++i) {
    EXPECT_EQ(b.history[i].epoch, r.history[i].epoch);
    for (auto f : {&EpochRecord::lr, &EpochRecord::train_loss, &EpochRecord::train_acc,
                   &EpochRecord::val_acc, &EpochRecord::seconds})
      EXPECT_TRUE(same(b.history[i].*f, r.history[i].*f)) << "epoch " << i + 1;
  }
  EXPECT_EQ(b.best_epoch, 1);
  EXPECT_TRUE(same(b.best_val_acc, r.best_val_acc));
  EXPECT_TRUE(same(b.test_acc, r.test_acc));
  EXPECT_TRUE(b.finished && b.early_stopped && b.diverged && b.resumed);
  EXPECT_EQ(b.resumed_from_epoch, 2);
  FinetuneRun fresh;
  const FinetuneRun c = finetune_detail::run_from_bytes(finetune_detail::run_to_bytes(fresh));
  EXPECT_FALSE(c.finished || c.early_stopped || c.diverged || c.resumed);
  EXPECT_TRUE(same(c.test_acc, -1.0));
}

// Every point's values are checked before the first point trains: a bad label smoothing in the
// last point leaves no point folder behind.
TEST(FinetuneGrid, EveryPointIsCheckedBeforeTheFirstRuns) {
  test::TempDir t;
  FinetuneOptions o = toy(t.file("g"));
  o.grid = "label-smoothing=0,1";
  EXPECT_THROW(run_finetune(o), InputError);
  EXPECT_FALSE(fs::exists(t.file("g/label-smoothing=0")));
}

}  // namespace
}  // namespace tlkit::model

// tlkit finetune (include/tlkit/model/finetune.h): the options, --mode linear (a logistic
// regression on extracted features), and the parts in the other finetune_*.cpp: data splits
// (finetune_data), blocks and block surgery (finetune_blocks), the training loop
// (finetune_train), grids (finetune_grid) and checkpoints (finetune_checkpoint).
#include "tlkit/model/finetune.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "finetune_data.h"
#include "finetune_export.h"
#include "finetune_grid.h"
#include "finetune_internal.h"
#include "finetune_train.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/model/device.h"
#include "tlkit/model/runtime.h"
#include "tlkit/model/torchscript_model.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using namespace finetune_detail;  // NOLINT(build/namespaces)

namespace {

json probe_point_json(const LinearProbePoint& p) {
  return {{"c", p.c},
          {"train_acc", p.train_accuracy},
          {"val_acc", p.val_accuracy},
          {"converged", p.converged},
          {"seconds", p.seconds}};
}

}  // namespace

ModeSpec parse_mode(const std::string& s) {
  ModeSpec m;
  if (s == "linear") {
    m.mode = FinetuneMode::kLinear;
    m.top_k = 0;
    return m;
  }
  if (s == "full") {
    m.mode = FinetuneMode::kFull;
    m.top_k = 0;
    return m;
  }
  if (s.rfind("top:", 0) == 0) {
    const std::string k = s.substr(4);
    int v = 0;
    std::size_t used = 0;
    try {
      v = std::stoi(k, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TLKIT_CHECK_ARG(!k.empty() && used == k.size() && v >= 1,
                    "--mode {}: K in top:K must be an integer >= 1", s);
    m.mode = FinetuneMode::kTop;
    m.top_k = v;
    return m;
  }
  TLKIT_THROW_ARG("--mode {}: expected linear, top:K or full", s);
}

std::string to_string(const ModeSpec& m) {
  switch (m.mode) {
    case FinetuneMode::kLinear:
      return "linear";
    case FinetuneMode::kFull:
      return "full";
    case FinetuneMode::kTop:
      return "top:" + std::to_string(m.top_k);
  }
  return "?";
}

FinetuneResult run_finetune(const FinetuneOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  FinetuneResult res;
  res.mode = o.mode;
  // Options.
  // cpu, cuda or cuda:N, and a CUDA device this LibTorch can use: checked before anything is read
  // or written (the same messages as extract's --device).
  const Device device = device_from_flag(o.device, "--device");
  TLKIT_CHECK_ARG(!o.out.empty(), "--out: an output folder is required");
  std::error_code ec;
  TLKIT_CHECK_ARG(!fs::exists(o.out, ec) || fs::is_directory(o.out, ec),
                  "--out {}: exists and is not a folder", o.out);
  TLKIT_CHECK_ARG(o.optimizer == "sgd" || o.optimizer == "adamw",
                  "--optimizer {}: expected sgd or adamw", o.optimizer);
  TLKIT_CHECK_ARG(o.schedule == "cosine" || o.schedule == "step" || o.schedule == "constant",
                  "--schedule {}: expected cosine, step or constant", o.schedule);
  {
    std::size_t st = 0;
    while (st <= o.augment.size() && !o.augment.empty() && o.augment != "none") {
      std::size_t en = o.augment.find(',', st);
      if (en == std::string::npos) en = o.augment.size();
      const std::string a = o.augment.substr(st, en - st);
      TLKIT_CHECK_ARG(a == "flip" || a == "crop", "--augment {}: '{}' is not flip or crop",
                      o.augment, a);
      st = en + 1;
    }
  }
  TLKIT_CHECK_ARG(o.teachers_zoo.empty() || o.mode.mode != FinetuneMode::kLinear,
                  "--teachers: B-Tuning trains the backbone (--mode top:K or full, not linear)");
  TLKIT_CHECK_ARG(o.epochs >= 1, "--epochs {}: must be >= 1", o.epochs);
  TLKIT_CHECK_ARG(o.batch >= 1, "--batch {}: must be >= 1", o.batch);
  TLKIT_CHECK_ARG(o.lr > 0, "--lr {}: must be > 0", o.lr);
  TLKIT_CHECK_ARG(o.label_smoothing >= 0 && o.label_smoothing < 1,
                  "--label-smoothing {}: must be in [0, 1)", o.label_smoothing);
  TLKIT_CHECK_ARG(o.val_fraction > 0 && o.val_fraction < 1, "--val-fraction {}: must be in (0, 1)",
                  o.val_fraction);
  TLKIT_CHECK_ARG(o.test_fraction >= 0 && o.test_fraction < 1,
                  "--test-fraction {}: must be in [0, 1)", o.test_fraction);
  const bool from_features = !o.features_dir.empty();
  if (from_features)
    TLKIT_CHECK_ARG(o.mode.mode == FinetuneMode::kLinear,
                    "--features: only --mode linear runs from extracted features");
  else
    TLKIT_CHECK_ARG(!o.model.empty() && !o.data.empty(),
                    "--model and --data are required (or --features with --mode linear)");
  if (!from_features || o.features_test_dir.empty())
    TLKIT_CHECK_ARG(!o.split_test.empty() || o.test_fraction > 0 || !o.features_test_dir.empty(),
                    "no test split: give --split-test, or --test-fraction F to carve one");
  TLKIT_CHECK_ARG(o.split_test.empty() || o.test_fraction == 0,
                  "--split-test and --test-fraction exclude each other");
  const bool text = !from_features && is_text_data(o);
  if (text) {
    TLKIT_CHECK_ARG(!fs::is_regular_file(o.data, ec) || o.split_train.empty(),
                    "--split-train {}: --data {} is a text file and is itself the training split "
                    "(--split-val/--split-test name other files; or give the folder as --data)",
                    o.split_train, o.data);
    TLKIT_CHECK_ARG(o.mean.empty() && o.std.empty(),
                    "--mean/--std: {} is text data; they normalise images", o.data);
    TLKIT_CHECK_ARG(!device.is_cuda(),
                    "--device {}: text models build their input tensors inside forward, on the "
                    "CPU; use --device cpu",
                    o.device);
  }
  TLKIT_CHECK_ARG(o.mean.size() == o.std.size() && (o.mean.empty() || o.mean.size() == 3),
                  "--mean and --std must both be given with 3 values (R, G, B), got {} and {}",
                  o.mean.size(), o.std.size());
  for (const float v : o.std) TLKIT_CHECK_ARG(v > 0, "--std values must be positive, got {}", v);
  if (!from_features) {
    std::error_code mec;
    TLKIT_CHECK_ARG(fs::is_regular_file(o.model, mec), "{}: no such model file", o.model);
    const bool text_model = model_takes_texts(o.model);
    TLKIT_CHECK_ARG(!text || text_model,
                    "{} is text data but {} is an image model (its forward does not take "
                    "List[str]); fine-tune a text model on it",
                    o.data, o.model);
    TLKIT_CHECK_ARG(text || !text_model,
                    "{} is a text model (forward(List[str])) but {} is image data; give a text "
                    "file (label<space>text lines, or a CSV with text,label columns)",
                    o.model, o.data);
  }
  if (!from_features && !text)
    TLKIT_CHECK_ARG(o.input_size >= 1,
                    "--input-size is required (S of the "
                    "model's input, zoo.json's input_size)");
  if (text && !o.augment.empty() && o.augment != "none" && o.augment != FinetuneOptions().augment)
    res.notes.push_back(
        fmt::format("--augment {} does not apply to text data: no augmentation", o.augment));
  Communicator& comm = o.comm ? *o.comm : single_process();
  if (comm.size() > 1) {
    TLKIT_CHECK_ARG(o.mode.mode != FinetuneMode::kLinear,
                    "--mode linear runs in one process (one L-BFGS fit per C on features "
                    "extracted once); run it without mpirun or srun");
    TLKIT_CHECK_ARG(o.data_parallel || !o.grid.empty(),
                    "tlkit finetune under mpirun or srun shares the points of --grid among the {} "
                    "processes, or with --data-parallel the batches of one run; give one of them, "
                    "or run it without the launcher",
                    comm.size());
    if (o.data_parallel)
      TLKIT_CHECK_ARG(o.batch >= comm.size(),
                      "--batch {}: --data-parallel gives each of the {} processes a share of "
                      "every batch; use --batch {} or more",
                      o.batch, comm.size(), comm.size());
  } else {
    TLKIT_CHECK_ARG(!o.data_parallel,
                    "--data-parallel trains one run on the processes of an MPI job: run it under "
                    "mpirun -n P or srun --mpi=pmix -n P (P >= 2), or leave it out");
  }
  std::vector<GridAxis> axes;
  if (!o.grid.empty()) axes = parse_grid(o.grid, o.mode.mode);
  set_torch_threads(o.threads);
  fs::create_directories(o.out);

  json base;
  base["mode"] = to_string(o.mode);
  base["model"] = o.model;
  base["data"] = o.data;
  base["seed"] = o.seed;

  if (o.mode.mode == FinetuneMode::kLinear) {
    FeatureSplits fsx;
    if (from_features) {
      read_extract_dir(o.features_dir, fsx.train, fsx.d, nullptr);
      if (!o.features_test_dir.empty())
        read_extract_dir(o.features_test_dir, fsx.test, fsx.d, nullptr);
      else
        fsx.test = carve_rows(fsx.train, fsx.d, o.test_fraction, mix(o.seed, kSplitTest));
      if (!o.features_val_dir.empty())
        read_extract_dir(o.features_val_dir, fsx.val, fsx.d, nullptr);
      else
        fsx.val = carve_rows(fsx.train, fsx.d, o.val_fraction, mix(o.seed, kSplitVal));
      base["features"] = o.features_dir;
    } else {
      Splits sp = make_splits(o);
      res.class_names = sp.classes;
      ModelOptions mo{o.features_output, kNoOutput, Optimization::kFreeze};
      mo.device = device;  // the features are extracted there (as tlkit extract --device)
      TorchScriptModel m(o.model, mo);
      fsx.train = extract_rows(m, sp.train.samples, o, text, fsx.d, "features train");
      fsx.val = extract_rows(m, sp.val.samples, o, text, fsx.d, "features val");
      fsx.test = extract_rows(m, sp.test.samples, o, text, fsx.d, "features test");
      for (const auto& n : m.notes()) res.notes.push_back(n);
    }
    for (const LabelledRows* r : {&fsx.train, &fsx.val, &fsx.test})
      for (const auto y : r->y) {
        TLKIT_CHECK_ARG(y >= 0, "negative label {}", y);
        fsx.classes = std::max(fsx.classes, y + 1);
      }
    TLKIT_CHECK_ARG(fsx.train.n() > 0 && fsx.val.n() > 0 && fsx.test.n() > 0,
                    "empty split (train {}, val {}, test {})", fsx.train.n(), fsx.val.n(),
                    fsx.test.n());
    std::vector<double> cs = o.cs.empty() ? default_linear_probe_cs() : o.cs;
    if (!axes.empty()) cs = axes[0].values;
    const LinearProbeResult pr = linear_probe(fsx.train, fsx.val, fsx.test, fsx.d,
                                              std::max<std::int64_t>(2, fsx.classes), cs);
    res.classes = fsx.classes;
    res.features_dim = fsx.d;
    res.train_n = fsx.train.n();
    res.val_n = fsx.val.n();
    res.test_n = fsx.test.n();
    res.trainable_parameters = (fsx.d + 1) * fsx.classes;
    for (std::size_t i = 0; i < pr.grid.size(); ++i) {
      FinetuneRun r;
      r.out = o.out;
      r.point["c"] = pr.grid[i].c;
      r.best_val_acc = pr.grid[i].val_accuracy;
      r.finished = true;
      r.test_acc = i == pr.best ? pr.test_accuracy : -1.0;
      res.runs.push_back(r);
      if (!pr.grid[i].converged)
        res.notes.push_back(fmt::format("L-BFGS did not converge for C = {}", pr.grid[i].c));
    }
    res.best_run = pr.best;
    res.seconds = seconds_since(t_start);
    json m;
    m["config"] = base;
    m["config"]["val_fraction"] = o.val_fraction;
    m["config"]["test_fraction"] = o.test_fraction;
    m["method"] = "multinomial logistic regression, L-BFGS, C chosen by validation accuracy";
    m["splits"] = {{"train", res.train_n}, {"val", res.val_n}, {"test", res.test_n}};
    m["classes"] = res.classes;
    m["features_dim"] = res.features_dim;
    json g = json::array();
    for (const auto& p : pr.grid) g.push_back(probe_point_json(p));
    m["grid"] = g;
    m["best"] = {{"c", pr.grid[pr.best].c}, {"val_acc", pr.grid[pr.best].val_accuracy}};
    m["best_val_acc"] = pr.grid[pr.best].val_accuracy;
    m["test_acc"] = pr.test_accuracy;
    m["seconds"] = res.seconds;
    if (!o.model.empty()) {
      const bool text_model = from_features ? model_takes_texts(o.model) : text;
      ExportSpec spec{o.features_output,
                      text_model,
                      o.mean,
                      o.std,
                      res.class_names,
                      text_model ? 0 : o.input_size};
      res.model_file = o.out + "/model.pt";
      save_linear_model(o.model, pr.model, spec, res.model_file);
      m["model_file"] = "model.pt";
    } else {
      res.notes.push_back(
          "no model.pt: --features without --model; give the --model (and --mean/--std) the "
          "features were extracted with to also get the fine-tuned model");
    }
    write_json(o.out + "/metrics.json", m);
    return res;
  }

  run_gradient_modes(o, axes, text, base, t_start, res);
  return res;
}

}  // namespace tlkit::model

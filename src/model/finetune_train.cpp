// The gradient-based fine-tuning modes (finetune_train.h): one run's training loop and the
// setup shared by the runs of a command.
#include "finetune_train.h"

#include <torch/torch.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "btuning.h"
#include "finetune_blocks.h"
#include "finetune_checkpoint.h"
#include "finetune_data.h"
#include "finetune_export.h"
#include "finetune_grid.h"
#include "finetune_schedule.h"
#include "sampling.h"
#include "sha256.h"
#include "tlkit/core/error.h"
#include "torch_device.h"

namespace tlkit::model::finetune_detail {
namespace fs = std::filesystem;

namespace {

// A training step allocates and frees the same activations every time. glibc's malloc gives
// freed memory at the top of its heap back to the system past a threshold that it adapts to the
// largest block freed so far (128 KiB at first), so each step took its activations back from the
// kernel page by page: 40,000-90,000 page faults per epoch of the kit's ResNet-20 (--per-class
// 20), about a tenth of the epoch's CPU time. Blocks up to 32 MiB (glibc's largest for its heap)
// come from the heap, and up to 1 GiB of freed memory stays with the process for the next step.
// The policy holds for the rest of the process (the command).
void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// The loss of a training batch (finetune_schedule.h training_loss).
at::Tensor batch_loss(const at::Tensor& logits, const at::Tensor& y, double label_smoothing) {
  return torch::nn::functional::cross_entropy(
      logits, y, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
}

struct Context {
  const FinetuneOptions& o;
  Splits& splits;
  std::int64_t classes;
  torch::Device device;
  json base_config;  // the configuration of the whole command (hashed per run with the point)
  json info;         // splits, classes, blocks: written to each run's metrics.json
  Communicator* dp;  // data-parallel training over these processes (null: this process alone)
  // B-Tuning (btuning.h): the distillation term (or none), and its teachers, scores and pi for
  // each run's metrics.json.
  BTuning* bt = nullptr;
  json btuning;
};

// Data-parallel training: each process's gradients, of the mean loss over its `share` of a batch
// of `batch` samples, become those of the whole batch's mean loss (weighted by share / batch and
// summed over the processes; float32, one message). A process with no share adds zeros.
void average_gradients(const std::vector<at::Tensor>& params, std::int64_t share,
                       std::int64_t batch, Communicator& comm) {
  std::vector<at::Tensor> parts;
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    parts.push_back(p.grad().reshape({-1}).to(torch::kCPU, torch::kFloat32));
  }
  at::Tensor flat =
      torch::cat(parts).mul_(static_cast<double>(share) / static_cast<double>(batch)).contiguous();
  comm.allreduce_sum(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()));
  std::int64_t at = 0;
  for (const auto& p : params) {
    const std::int64_t n = p.numel();
    p.mutable_grad().copy_(flat.slice(0, at, at + n).view(p.sizes()));
    at += n;
  }
}

// Data-parallel training: every process takes rank 0's floating-point buffers (BatchNorm running
// statistics, which each process updated from its own share), as PyTorch's
// DistributedDataParallel does; the others add zeros, so the sum is rank 0's values exactly.
void take_root_buffers(torch::jit::Module& module, Communicator& comm) {
  std::vector<at::Tensor> buffers, parts;
  for (const auto& b : module.named_buffers(true))
    if (b.value.is_floating_point()) {
      buffers.push_back(b.value);
      at::Tensor v = b.value.reshape({-1}).to(torch::kCPU, torch::kFloat32);
      parts.push_back(comm.is_root() ? v : torch::zeros_like(v));
    }
  if (buffers.empty()) return;
  at::Tensor flat = torch::cat(parts).contiguous();
  comm.allreduce_sum(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()));
  std::int64_t at = 0;
  torch::NoGradGuard ng;
  for (auto& b : buffers) {
    const std::int64_t n = b.numel();
    b.copy_(flat.slice(0, at, at + n).view(b.sizes()));
    at += n;
  }
}

FinetuneRun train_run(Context& ctx, Backbone& backbone, const std::vector<at::Tensor>& initial,
                      const Hyper& h, const std::map<std::string, double>& point,
                      const std::string& dir) {
  const FinetuneOptions& o = ctx.o;
  FinetuneRun run;
  run.out = dir;
  run.point = point;
  json config = ctx.base_config;
  config["lr"] = h.lr;
  config["weight_decay"] = h.weight_decay;
  config["momentum"] = h.momentum;
  config["head_lr_mult"] = h.head_lr_mult;
  config["label_smoothing"] = h.label_smoothing;
  json hashed = config;
  hashed.erase("epochs");  // a run may be resumed to more epochs
  hashed.erase("device");  // and on another device
  const std::string hash = sha256_hex(hashed.dump());
  config["epochs"] = o.epochs;

  // Fresh state: the model's weights, a head initialised from the seed.
  std::vector<at::Tensor> state = backbone.state();
  copy_state(initial, state);
  torch::manual_seed(mix(o.seed, kHead));
  torch::nn::Linear head(backbone.features_dim(), ctx.classes);
  head->to(ctx.device);
  const int k = o.mode.mode == FinetuneMode::kFull ? -1 : o.mode.top_k;
  std::vector<at::Tensor> body = backbone.set_trainable(k);
  std::vector<at::Tensor> trained = body;  // whose gradients data-parallel training averages
  for (const auto& p : head->parameters()) trained.push_back(p);
  // Data-parallel training: rank 0 alone writes the run's files.
  const bool writer = ctx.dp == nullptr || ctx.dp->is_root();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(body);
  groups.emplace_back(head->parameters());
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (o.optimizer == "adamw") {
    opt = std::make_unique<torch::optim::AdamW>(
        groups, torch::optim::AdamWOptions(h.lr).weight_decay(h.weight_decay));
  } else {
    opt = std::make_unique<torch::optim::SGD>(
        groups, torch::optim::SGDOptions(h.lr).momentum(h.momentum).weight_decay(h.weight_decay));
  }
  auto set_lr = [&](double lr) {
    auto& g = opt->param_groups();
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double v = i == 0 ? lr : lr * h.head_lr_mult;
      if (o.optimizer == "adamw")
        static_cast<torch::optim::AdamWOptions&>(g[i].options()).lr(v);
      else
        static_cast<torch::optim::SGDOptions&>(g[i].options()).lr(v);
    }
  };
  std::vector<at::Tensor> head_state;
  for (const auto& p : head->parameters()) head_state.push_back(p);
  std::vector<at::Tensor> best_body = clone_state(state), best_head = clone_state(head_state);
  int start = 0, bad_epochs = 0;
  CheckpointTensors tensors{state, head_state, best_body, best_head};

  const std::string ckpt = dir + "/checkpoint.pt";
  std::error_code ec;
  if (writer) {
    fs::create_directories(dir);
    fs::remove(dir + "/model.pt", ec);  // written again when this run finishes
  }
  if (fs::exists(ckpt, ec)) {
    start = load_checkpoint(ckpt, hash, hashed, tensors, *opt, bad_epochs, run, ctx.device);
  } else {
    TLKIT_CHECK_ARG(!o.resume, "--resume: {} has no checkpoint.pt to resume from", dir);
  }

  const bool text = backbone.text();  // batches of texts, no augmentation
  const bool flip = !text && o.augment.find("flip") != std::string::npos;
  const bool crop = !text && o.augment.find("crop") != std::string::npos;
  const int s = o.input_size;
  const std::int64_t item = 3LL * s * s;
  // The training batch, assembled on the host: pinned when the model trains on CUDA.
  HostBuffer xb(text ? 0 : static_cast<std::size_t>(o.batch * item), parse_device(o.device));
  const Split& train = ctx.splits.train;

  auto evaluate = [&](const Split& split) {
    backbone.eval_mode();
    head->eval();
    c10::InferenceMode inference;  // no autograd records or version counts
    std::int64_t correct = 0;
    // Data-parallel: each process evaluates its block of rows.
    const RowRange rows =
        ctx.dp ? row_range(split.n(), ctx.dp->rank(), ctx.dp->size()) : RowRange{0, split.n()};
    for (std::int64_t b = rows.begin; b < rows.end; b += o.batch) {
      const std::int64_t cnt = std::min<std::int64_t>(o.batch, rows.end - b);
      at::Tensor f;
      if (text) {
        std::vector<std::string> texts;
        for (std::int64_t i = 0; i < cnt; ++i) texts.push_back(split.samples[b + i].text);
        f = backbone.features(texts);
      } else {
        f = backbone.features(torch::from_blob(const_cast<float*>(split.images.data()) + b * item,
                                               {cnt, 3, s, s}, torch::kFloat32)
                                  .to(ctx.device));
      }
      const at::Tensor pred =
          head->forward(f).argmax(1).to(torch::kCPU, torch::kInt64).contiguous();
      const std::int64_t* p = pred.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < cnt; ++i) correct += p[i] == split.samples[b + i].label;
    }
    if (ctx.dp) ctx.dp->allreduce_sum(&correct, 1);
    return 100.0 * static_cast<double>(correct) /
           static_cast<double>(std::max<std::int64_t>(1, split.n()));
  };

  std::string label;  // the grid point, in the progress bar
  for (const auto& [key, value] : point) label += fmt::format("{}={} ", key, value);
  int ran = 0;
  for (int epoch = start; epoch < o.epochs && !run.early_stopped; ++epoch) {
    if (o.stop_after > 0 && ran == o.stop_after) break;
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = scheduled_lr(o.schedule, h.lr, epoch, o.epochs, o.warmup_epochs);
    set_lr(lr);
    torch::manual_seed(mix(o.seed, kTorch, epoch));
    std::mt19937_64 order_rng(mix(o.seed, kOrder, epoch)), aug_rng(mix(o.seed, kAugment, epoch));
    std::vector<std::int64_t> order(static_cast<std::size_t>(train.n()));
    for (std::int64_t i = 0; i < train.n(); ++i) order[i] = i;
    fisher_yates(order, order_rng);
    backbone.train_mode();
    head->train();
    double loss_sum = 0.0;
    std::int64_t correct = 0, seen = 0;
    std::vector<float> tmp;
    std::vector<std::string> tb;
    std::vector<std::int64_t> yb;
    const std::int64_t batches = (train.n() + o.batch - 1) / o.batch;
    for (std::int64_t bi = 0; bi < batches; ++bi) {
      if (o.cancelled && o.cancelled()) throw Interrupted("interrupted");  // the last checkpoint
      const std::int64_t b = bi * o.batch, cnt = std::min<std::int64_t>(o.batch, train.n() - b);
      tb.resize(text ? static_cast<std::size_t>(cnt) : 0);
      yb.resize(static_cast<std::size_t>(cnt));
      for (std::int64_t i = 0; i < cnt; ++i) {
        const std::int64_t src = order[static_cast<std::size_t>(b + i)];
        if (text) {
          tb[static_cast<std::size_t>(i)] = train.samples[static_cast<std::size_t>(src)].text;
        } else {
          std::copy_n(train.images.data() + src * item, item, xb.data() + i * item);
          augment_image(xb.data() + i * item, s, flip, crop, aug_rng, tmp);
        }
        yb[static_cast<std::size_t>(i)] = train.samples[static_cast<std::size_t>(src)].label;
      }
      // This process's rows of the batch: all of it, or its share in data-parallel training.
      const RowRange part =
          ctx.dp ? row_range(cnt, ctx.dp->rank(), ctx.dp->size()) : RowRange{0, cnt};
      if (part.count() < cnt && text)
        tb = std::vector<std::string>(tb.begin() + part.begin, tb.begin() + part.end);
      const std::int64_t n = part.count();
      opt->zero_grad();
      if (n > 0) {
        at::Tensor y = torch::from_blob(yb.data() + part.begin, {n}, torch::kInt64).to(ctx.device);
        // From the pinned buffer the copy is asynchronous; loss.item() below synchronises
        // before the next batch overwrites the buffer. On the CPU: the buffer itself.
        const at::Tensor x =
            text ? at::Tensor()
                 : to_device(host_view(xb, {cnt, 3, s, s}).narrow(0, part.begin, n), ctx.device,
                             /*channels_last=*/false);
        const at::Tensor feats = text ? backbone.features(tb) : backbone.features(x);
        at::Tensor logits = head->forward(feats);
        at::Tensor loss = batch_loss(logits, y, h.label_smoothing);
        // B-Tuning's distillation term, on this process's rows (their training-set indices).
        if (ctx.bt) loss = loss + ctx.bt->loss(feats, x, order.data() + b + part.begin, n);
        loss.backward();
        loss_sum += loss.item<double>() * static_cast<double>(n);
        correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
      }
      if (ctx.dp) average_gradients(trained, n, cnt, *ctx.dp);
      opt->step();
      seen += n;
      if (o.progress)
        o.progress(fmt::format("{}epoch {}/{}", label, epoch + 1, o.epochs), seen, train.n(),
                   fmt::format("loss {:.4f} acc {:.1f}%", loss_sum / static_cast<double>(seen),
                               100.0 * static_cast<double>(correct) / static_cast<double>(seen)));
    }
    if (ctx.dp) {  // the epoch's sums over the processes; rank 0's BatchNorm statistics
      ctx.dp->allreduce_sum(&loss_sum, 1);
      std::int64_t counts[2] = {correct, seen};
      ctx.dp->allreduce_sum(counts, 2);
      correct = counts[0];
      seen = counts[1];
      take_root_buffers(backbone.module(), *ctx.dp);
    }
    EpochRecord r;
    r.epoch = epoch + 1;
    r.lr = lr;
    r.train_loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, seen));
    r.train_acc =
        100.0 * static_cast<double>(correct) / static_cast<double>(std::max<std::int64_t>(1, seen));
    r.val_acc = evaluate(ctx.splits.val);
    r.seconds = seconds_since(t0);
    run.history.push_back(r);
    // A loss that became NaN or infinite never recovers: stop, keep the best epoch before it.
    const bool diverged = !std::isfinite(r.train_loss);
    if (diverged) {
      run.diverged = run.early_stopped = true;
    } else if (run.best_epoch == 0 || r.val_acc > run.best_val_acc) {
      run.best_epoch = r.epoch;
      run.best_val_acc = r.val_acc;
      best_body = clone_state(state);
      best_head = clone_state(head_state);
      bad_epochs = 0;
    } else if (++bad_epochs >= o.patience && o.patience > 0) {
      run.early_stopped = true;
    }
    ++ran;
    if (writer)
      save_checkpoint(ckpt, hash, hashed, tensors, backbone.state_names(), *opt, epoch + 1,
                      bad_epochs, run);
  }
  const int done = run.history.empty() ? 0 : run.history.back().epoch;
  for (const auto& r : run.history) run.diverged = run.diverged || !std::isfinite(r.train_loss);
  run.finished = run.early_stopped || done >= o.epochs;
  if (run.finished) {
    // Test the best epoch's weights.
    copy_state(best_body, state);
    copy_state(best_head, head_state);
    run.test_acc = evaluate(ctx.splits.test);
    const ExportSpec spec{o.features_output,      text, o.mean, o.std, ctx.splits.classes,
                          text ? 0 : o.input_size};
    if (writer)
      save_finetuned_model(backbone.module(), head->weight, head->bias, spec, dir + "/model.pt");
  }
  if (!writer) return run;
  json m;
  m["config"] = config;
  m["config_hash"] = hash;
  m["data"] = ctx.info;
  if (ctx.bt) m["btuning"] = ctx.btuning;
  m["history"] = history_json(run.history);
  m["best_epoch"] = run.best_epoch;
  m["best_val_acc"] = run.best_val_acc;
  m["finished"] = run.finished;
  m["early_stopped"] = run.early_stopped;
  m["diverged"] = run.diverged;
  m["test_acc"] = run.finished ? json(run.test_acc) : json(nullptr);
  if (run.finished) m["model_file"] = "model.pt";
  double total = 0;
  for (const auto& r : run.history) total += r.seconds;
  m["totals"] = {{"epochs", run.history.size()}, {"seconds", total}};
  write_json(dir + "/metrics.json", m);
  return run;
}

}  // namespace

double training_loss(const std::vector<float>& logits, const std::vector<std::int64_t>& labels,
                     std::int64_t classes, double eps) {
  const auto n = static_cast<std::int64_t>(labels.size());
  TLKIT_CHECK_ARG(classes >= 1 && static_cast<std::int64_t>(logits.size()) == n * classes,
                  "training_loss: {} logits for {} labels and {} classes", logits.size(), n,
                  classes);
  torch::NoGradGuard ng;
  const at::Tensor x =
      torch::from_blob(const_cast<float*>(logits.data()), {n, classes}, torch::kFloat32);
  const at::Tensor y =
      torch::from_blob(const_cast<std::int64_t*>(labels.data()), {n}, torch::kInt64);
  return batch_loss(x, y, eps).item<double>();
}

void run_gradient_modes(const FinetuneOptions& o, const std::vector<GridAxis>& axes, bool text,
                        json base, std::chrono::steady_clock::time_point t_start,
                        FinetuneResult& res) {
  // Validated by run_finetune; "cuda" is cuda:0, recorded as such in metrics.json.
  const Device where = parse_device(o.device);
  const torch::Device device = to_torch(where);
  const std::vector<ZooModel> teachers = btuning_candidates(o, text);  // checked before the data
  Splits sp = make_splits(o);
  res.class_names = sp.classes;
  res.classes = std::max<std::int64_t>(2, num_classes(sp));
  res.train_n = sp.train.n();
  res.val_n = sp.val.n();
  res.test_n = sp.test.n();
  Backbone backbone(o.model, o.features_output, o.input_size);
  res.features_dim = backbone.features_dim();
  const auto& blocks = backbone.blocks();
  for (const auto& b : blocks) res.blocks.push_back(b.info);
  if (o.mode.mode == FinetuneMode::kTop)
    TLKIT_CHECK_ARG(o.mode.top_k <= static_cast<int>(blocks.size()),
                    "--mode top:{}: {} has {} blocks (top:1 .. top:{}; or full)", o.mode.top_k,
                    o.model, blocks.size(), blocks.size());
  {
    const int k =
        o.mode.mode == FinetuneMode::kFull ? static_cast<int>(blocks.size()) : o.mode.top_k;
    for (std::size_t i = blocks.size() - static_cast<std::size_t>(k); i < blocks.size(); ++i) {
      res.trainable.push_back(blocks[i].info.name);
      res.trainable_parameters += blocks[i].info.parameters;
    }
    res.trainable_parameters += (res.features_dim + 1) * res.classes;
  }
  const int decode_threads =
      o.decode_threads > 0 ? o.decode_threads
                           : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  if (!text) {  // texts go to the model as they are
    decode_split(sp.train, o.input_size, decode_threads, o, "decode train");
    decode_split(sp.val, o.input_size, decode_threads, o, "decode val");
    decode_split(sp.test, o.input_size, decode_threads, o, "decode test");
  }
  apply_block_edits(backbone, o);  // tlkit probe's re-initialisation and permutation
  backbone.module().to(device);
  const std::vector<at::Tensor> initial = clone_state(backbone.state());
  BTuningSetup bts;
  if (!o.teachers_zoo.empty()) {  // LogME of the initial student and the teachers
    backbone.eval_mode();
    bts = prepare_btuning(
        o, teachers, sp.train, res.classes,
        [&](const at::Tensor& x) { return backbone.features(x); }, device);
    if (o.augment.find("flip") == std::string::npos && o.augment.find("crop") == std::string::npos)
      bts.bt->cache_targets(sp.train.images, sp.train.n(), o.input_size, o.batch, device);
    bts.info["cached_targets"] = bts.bt->cached();
    base["btuning"] = bts.config;
  }

  base["features_output"] = o.features_output;
  base["model_sha256"] = file_sha256(o.model);
  base["train_sha256"] = listing_sha256(sp.train.samples);
  base["val_sha256"] = listing_sha256(sp.val.samples);
  base["test_sha256"] = listing_sha256(sp.test.samples);
  base["input_size"] = text ? 0 : o.input_size;
  if (!o.mean.empty()) {  // only when given: earlier checkpoints keep their configuration hash
    base["mean"] = o.mean;
    base["std"] = o.std;
  }
  base["batch"] = o.batch;
  base["optimizer"] = o.optimizer;
  base["schedule"] = o.schedule;
  base["warmup_epochs"] = o.warmup_epochs;
  base["augment"] = text ? std::string("none") : o.augment;
  base["patience"] = o.patience;
  base["device"] = to_string(where);  // not in the configuration hash: resumes on either device
  if (!o.reinit_blocks.empty()) {     // (absent otherwise: earlier checkpoints stay valid)
    base["reinit_blocks"] = o.reinit_blocks;
    base["reinit_init"] = o.reinit_init;
  }
  if (!o.block_order.empty()) base["block_order"] = o.block_order;
  json info;
  info["splits"] = {{"train", res.train_n}, {"val", res.val_n}, {"test", res.test_n}};
  info["classes"] = res.classes;
  info["class_names"] = res.class_names;
  info["features_dim"] = res.features_dim;
  info["data_kind"] = text ? "text" : "image";
  json bl = json::array();
  for (const auto& b : res.blocks)
    bl.push_back({{"name", b.name}, {"type", b.type}, {"parameters", b.parameters}});
  info["blocks"] = bl;
  info["trainable_blocks"] = res.trainable;
  info["trainable_parameters"] = res.trainable_parameters;
  keep_freed_memory();
  Communicator& comm = o.comm ? *o.comm : single_process();
  Context ctx{o,
              sp,
              res.classes,
              device,
              base,
              info,
              o.data_parallel && comm.size() > 1 ? &comm : nullptr,
              bts.bt.get(),
              bts.info};

  const Hyper h0{o.lr, o.weight_decay, o.momentum, o.head_lr_mult, o.label_smoothing};
  if (axes.empty()) {
    res.runs.push_back(train_run(ctx, backbone, initial, h0, {}, o.out));
  } else {
    // Several processes share the points, unless they train each point together.
    res.runs = run_grid(o, axes, h0, ctx.dp ? single_process() : comm,
                        [&](const Hyper& h, const GridPoint& p, const std::string& dir) {
                          return train_run(ctx, backbone, initial, h, p, dir);
                        });
  }
  for (std::size_t i = 0; i < res.runs.size(); ++i) {
    if (res.runs[i].best_val_acc > res.runs[res.best_run].best_val_acc) res.best_run = i;
    const FinetuneRun& r = res.runs[i];
    if (r.diverged)
      res.notes.push_back(fmt::format(
          "{}the training loss became non-finite in epoch {} (lr {}): training stopped there and "
          "the best epoch before it ({}) was kept; lower --lr",
          r.point.empty() ? "" : fmt::format("{}: ", fs::path(r.out).filename().string()),
          r.history.back().epoch, r.history.back().lr,
          r.best_epoch > 0 ? std::to_string(r.best_epoch) : "none"));
  }
  const FinetuneRun& best = res.runs[res.best_run];
  res.seconds = seconds_since(t_start);
  if (!comm.is_root()) {  // rank 0 writes the grid's files
    if (best.finished) res.model_file = o.out + "/model.pt";
    return;
  }
  if (best.finished) {
    res.model_file = o.out + "/model.pt";
    if (!axes.empty()) {  // the best point's model, also at the top of the output folder
      const std::string tmp = res.model_file + ".tmp";
      fs::copy_file(best.out + "/model.pt", tmp, fs::copy_options::overwrite_existing);
      fs::rename(tmp, res.model_file);
    }
  } else if (!axes.empty()) {
    std::error_code ec;
    fs::remove(o.out + "/model.pt", ec);  // of an earlier run
  }
  res.seconds = seconds_since(t_start);
  if (!axes.empty()) write_grid_metrics(o, base, res);
}

}  // namespace tlkit::model::finetune_detail

// tlkit finetune (include/tlkit/model/finetune.h): splits, the trainable wrapper of a TorchScript
// module, the training loop with checkpoints, the linear probe on features, grids.
#include "tlkit/model/finetune.h"

#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "batch_loader.h"
#include "sampling.h"
#include "sha256.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/runtime.h"
#include "tlkit/model/text_dataset.h"
#include "tlkit/model/torchscript_model.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One 64-bit seed per (seed, purpose, epoch) (splitmix64 finaliser of a combination).
std::uint64_t mix(std::uint64_t seed, std::uint64_t purpose, std::uint64_t epoch = 0) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + purpose * 0xBF58476D1CE4E5B9ULL + epoch + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum Purpose : std::uint64_t { kSplitTest = 1, kSplitVal, kOrder, kAugment, kTorch, kHead };

std::string one_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10e ? c10e->what_without_backtrace() : e.what();
  // TorchScript interpreter errors end with "<Error>: <message>" after their traceback.
  if (msg.find("The following operation failed") != std::string::npos ||
      msg.find("Traceback of TorchScript") != std::string::npos) {
    msg.erase(msg.find_last_not_of(" \r\n") + 1);
    return msg.substr(msg.rfind('\n') + 1);
  }
  return msg.substr(0, msg.find('\n'));
}

// True for a text model: forward takes List[str] (text_dataset.h).
bool takes_texts(const torch::jit::Module& m) {
  const auto fwd = m.find_method("forward");
  if (!fwd) return false;
  const auto& args = fwd->function().getSchema().arguments();
  return args.size() >= 2 && *args[1].type() == *c10::ListType::ofStrings();
}

// ---------------------------------------------------------------------------------------------
// Data

struct Split {
  std::vector<ImageSample> samples;
  std::vector<float> images;  // n x 3 x S x S, preprocessed (image_dataset.h); empty for text
  std::int64_t n() const { return static_cast<std::int64_t>(samples.size()); }
};

struct Splits {
  std::vector<std::string> classes;
  Split train, val, test;
};

// Text data (finetune.h): --data a text file, or a folder whose --split-train is a text file.
bool is_text_data(const FinetuneOptions& o) {
  std::error_code ec;
  if (fs::is_directory(o.data, ec)) {
    if (o.split_train.empty()) return false;
    const fs::path f = fs::path(o.data) / o.split_train;
    return fs::is_regular_file(f, ec) && detect_data_kind(f.string()) == DataKind::kText;
  }
  return detect_data_kind(o.data) == DataKind::kText;
}

// The file of a text split ("" for the training split): in the --data folder, or, with a text
// file as --data, the path as given or else next to --data (as extract and rank, a text file has
// no sub-splits: each split is its own file).
std::string text_split_file(const FinetuneOptions& o, const std::string& split) {
  std::error_code ec;
  if (fs::is_directory(o.data, ec)) return (fs::path(o.data) / split).string();
  if (split.empty()) return o.data;
  if (fs::exists(split, ec)) return split;
  const std::string next = (fs::path(o.data).parent_path() / split).string();
  TLKIT_CHECK_ARG(fs::exists(next, ec), "{}: no such text file (nor {}, next to --data)", split,
                  next);
  return next;
}

ImageListing list_split(const FinetuneOptions& o, const std::string& split) {
  SubsampleOptions s;
  s.per_class = o.per_class;
  s.limit = o.limit;
  s.seed = o.seed;
  return subsample(
      is_text_data(o) ? list_texts(text_split_file(o, split)) : list_images(o.data, split), s);
}

Splits make_splits(const FinetuneOptions& o) {
  Splits s;
  const ImageListing train = list_split(o, o.split_train);
  s.classes = train.classes;
  s.train.samples = train.samples;
  auto same_classes = [&](const ImageListing& l, const std::string& split) {
    TLKIT_CHECK_ARG(l.classes == train.classes,
                    "{}: the classes of split '{}' differ from those of the training split '{}'",
                    o.data, split, o.split_train);
  };
  if (!o.split_test.empty()) {
    const ImageListing t = list_split(o, o.split_test);
    same_classes(t, o.split_test);
    s.test.samples = t.samples;
  } else {
    s.test.samples = carve(s.train.samples, o.test_fraction, mix(o.seed, kSplitTest));
  }
  if (!o.split_val.empty()) {
    const ImageListing v = list_split(o, o.split_val);
    same_classes(v, o.split_val);
    s.val.samples = v.samples;
  } else {
    s.val.samples = carve(s.train.samples, o.val_fraction, mix(o.seed, kSplitVal));
  }
  for (const Split* sp : {&s.train, &s.val, &s.test})
    for (const auto& x : sp->samples)
      TLKIT_CHECK_ARG(x.label >= 0, "{}: sample {} has the negative label {}", o.data, x.name,
                      x.label);
  TLKIT_CHECK_ARG(s.val.n() > 0, "{}: the validation split is empty", o.data);
  TLKIT_CHECK_ARG(s.test.n() > 0, "{}: the test split is empty", o.data);
  std::set<std::int64_t> labels;
  for (const auto& x : s.train.samples) labels.insert(x.label);
  TLKIT_CHECK_ARG(labels.size() >= 2,
                  "{}: the training split has {} class; fine-tuning needs at least 2 classes",
                  o.data, labels.size());
  return s;
}

std::int64_t num_classes(const Splits& s) {
  std::int64_t c = static_cast<std::int64_t>(s.classes.size());
  for (const Split* sp : {&s.train, &s.val, &s.test})
    for (const auto& x : sp->samples) c = std::max(c, x.label + 1);
  return c;
}

void decode_split(Split& split, int size, int threads, const FinetuneOptions& o,
                  const std::string& phase) {
  const std::int64_t item = 3LL * size * size;
  split.images.assign(static_cast<std::size_t>(split.n() * item), 0.0f);
  if (split.n() == 0) return;
  const std::int64_t plane = static_cast<std::int64_t>(size) * size;
  BatchLoader loader(split.n(), 64, item, threads, 4, [&](std::int64_t i, float* out) {
    load_image(split.samples[static_cast<std::size_t>(i)].path, size, out);
    for (std::size_t c = 0; c < o.mean.size(); ++c) {  // extract's --mean/--std (extractor.cpp)
      float* p = out + static_cast<std::int64_t>(c) * plane;
      for (std::int64_t k = 0; k < plane; ++k) p[k] = (p[k] - o.mean[c]) / o.std[c];
    }
  });
  for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
    if (o.cancelled && o.cancelled()) throw Interrupted("interrupted");
    BatchLoader::Batch& batch = loader.wait(b);
    for (std::int64_t i = 0; i < batch.size; ++i)
      if (!batch.errors[static_cast<std::size_t>(i)].empty())
        TLKIT_THROW_ARG("{}", batch.errors[static_cast<std::size_t>(i)]);
    std::copy(batch.data.begin(), batch.data.begin() + batch.size * item,
              split.images.begin() + batch.begin * item);
    const std::int64_t done = batch.begin + batch.size;
    loader.release(b);
    if (o.progress) o.progress(phase, done, split.n(), "");
  }
}

// Random horizontal flip (p = 1/2) and random crop: the S x S image zero-padded by S/8 pixels
// on each side (4 at S = 32, the CIFAR recipe) and an S x S window taken at a uniform offset.
void augment_image(float* chw, int s, bool flip, bool crop, std::mt19937_64& rng,
                   std::vector<float>& tmp) {
  const bool do_flip = flip && uniform_below(rng, 2) == 1;
  const int pad = crop ? std::max(1, s / 8) : 0;
  const int dx = crop ? static_cast<int>(uniform_below(rng, 2 * pad + 1)) - pad : 0;
  const int dy = crop ? static_cast<int>(uniform_below(rng, 2 * pad + 1)) - pad : 0;
  if (!do_flip && dx == 0 && dy == 0) return;
  tmp.assign(chw, chw + 3 * s * s);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x) {
        const int sy = y + dy;
        int sx = x + dx;
        float v = 0.0f;
        if (sy >= 0 && sy < s && sx >= 0 && sx < s) {
          if (do_flip) sx = s - 1 - sx;
          v = tmp[(static_cast<std::size_t>(c) * s + sy) * s + sx];
        }
        chw[(static_cast<std::size_t>(c) * s + y) * s + x] = v;
      }
}

// ---------------------------------------------------------------------------------------------
// The trainable wrapper

struct Block {
  BlockInfo info;
  torch::jit::Module owner;  // the module whose train mode the block sets
  std::vector<at::Tensor> params;
};

bool is_container(const torch::jit::Module& m) {
  const auto name = m.type()->name();
  if (!name) return false;
  const std::string n = name->name();
  return n == "Sequential" || n == "ModuleList";
}

std::string type_name(const torch::jit::Module& m) {
  const auto name = m.type()->name();
  return name ? name->name() : "?";
}

std::int64_t count_params(const torch::jit::Module& m, bool recurse) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters(recurse)) n += p.numel();
  return n;
}

void expand(const torch::jit::Module& m, const std::string& prefix, std::vector<Block>& out) {
  for (const auto& child : m.named_children()) {
    if (count_params(child.value, true) == 0) continue;
    if (is_container(child.value)) {
      if (count_params(child.value, false) > 0) {
        Block b{{prefix + child.name + ".(own parameters)", type_name(child.value),
                 count_params(child.value, false)},
                child.value,
                {}};
        for (const auto& p : child.value.parameters(false)) b.params.push_back(p);
        out.push_back(b);
      }
      expand(child.value, prefix + child.name + ".", out);
      continue;
    }
    Block b{{prefix + child.name, type_name(child.value), count_params(child.value, true)},
            child.value,
            {}};
    for (const auto& p : child.value.parameters(true)) b.params.push_back(p);
    out.push_back(b);
  }
}

at::Tensor select_features(const c10::IValue& out, int index, const std::string& path) {
  c10::IValue v = out;
  if (out.isTuple()) {
    const auto& el = out.toTupleRef().elements();
    TLKIT_CHECK_ARG(index < static_cast<int>(el.size()),
                    "{}: --features-output {} but forward "
                    "returns {} outputs",
                    path, index, el.size());
    v = el[static_cast<std::size_t>(index)];
  } else if (out.isList()) {
    const auto l = out.toListRef();
    TLKIT_CHECK_ARG(index < static_cast<int>(l.size()),
                    "{}: --features-output {} but forward "
                    "returns {} outputs",
                    path, index, l.size());
    v = l[static_cast<std::size_t>(index)];
  } else {
    TLKIT_CHECK_ARG(index == 0, "{}: --features-output {} but forward returns one tensor", path,
                    index);
  }
  TLKIT_CHECK_ARG(v.isTensor(), "{}: output {} (features) is not a tensor", path, index);
  at::Tensor t = v.toTensor();
  TLKIT_CHECK_ARG(t.is_floating_point() && t.dim() >= 1,
                  "{}: output {} (features) is not a "
                  "floating-point tensor with a batch dimension",
                  path, index);
  return t.reshape({t.size(0), -1});
}

class Backbone {
 public:
  Backbone(const std::string& path, int features_output, int input_size)
      : path_(path), features_output_(features_output) {
    std::error_code ec;
    TLKIT_CHECK_ARG(fs::is_regular_file(path, ec), "{}: no such model file", path);
    try {
      module_ = torch::jit::load(path, torch::kCPU);
    } catch (const std::exception& e) {
      TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", path, one_line(e));
    }
    module_.eval();
    text_ = takes_texts(module_);
    TLKIT_CHECK_ARG(text_ || input_size >= 1,
                    "--input-size is required for the image model {} (S of its input, "
                    "zoo.json's input_size)",
                    path);
    // Descend through wrappers, then split the first level with structure into blocks.
    torch::jit::Module level = module_;
    std::string prefix;
    for (;;) {
      if (count_params(level, false) > 0) break;
      std::vector<torch::jit::NameModule> with;
      for (const auto& c : level.named_children())
        if (count_params(c.value, true) > 0) with.push_back(c);
      if (with.size() != 1 || is_container(with[0].value)) break;
      prefix += with[0].name + ".";
      level = with[0].value;
    }
    bool children_with_params = false;
    for (const auto& c : level.named_children())
      children_with_params = children_with_params || count_params(c.value, true) > 0;
    if (count_params(level, false) > 0 && !children_with_params) {
      blocks_ = split_flat(level, prefix);  // a traced or converted model without structure
    } else if (count_params(level, false) > 0) {
      Block b{
          {prefix + "(own parameters)", type_name(level), count_params(level, false)}, level, {}};
      for (const auto& p : level.parameters(false)) b.params.push_back(p);
      blocks_.push_back(b);
    }
    expand(level, prefix, blocks_);
    for (const auto& p : module_.parameters(true)) p.requires_grad_(true);
    // Keep the blocks whose parameters reach the features.
    at::Tensor f;
    try {
      f = text_ ? features(std::vector<std::string>{"a short text", "and another one?"})
                : features(torch::zeros({2, 3, input_size, input_size}));
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      TLKIT_THROW_ARG("{}: forward failed on {}: {}", path,
                      text_
                          ? std::string("two short texts")
                          : fmt::format("an input of shape [2, 3, {}, {}]", input_size, input_size),
                      one_line(e));
    }
    features_dim_ = f.size(1);
    if (f.requires_grad()) {
      f.sum().backward();
    }
    std::vector<Block> kept;
    for (auto& b : blocks_) {
      bool reaches = false;
      for (auto& p : b.params) {
        if (p.grad().defined()) reaches = true;
        p.mutable_grad() = at::Tensor();
      }
      if (reaches) kept.push_back(b);
    }
    for (const auto& p : module_.parameters(true)) p.mutable_grad() = at::Tensor();
    blocks_ = std::move(kept);
    TLKIT_CHECK_ARG(!blocks_.empty(),
                    "{}: no parameter of the model reaches its features output, so top:K and full "
                    "have nothing to train (tensors kept as buffers do not train); --mode linear "
                    "fits a new head on its fixed features",
                    path);
  }

  // The parameters of a module that holds them all itself, split by use: in the inlined forward
  // graph (execution order), each node that first uses some of them makes those a block (a
  // convolution's weight and bias, a batch norm's four tensors); shape, dtype and device reads
  // (aten::size, aten::dim, prim::dtype, prim::device) do not count as uses.
  std::vector<Block> split_flat(const torch::jit::Module& holder, const std::string& prefix) {
    std::shared_ptr<torch::jit::Graph> g = module_.get_method("forward").graph()->copy();
    torch::jit::Inline(*g);
    const auto holder_type = holder.type();
    std::map<const torch::jit::Node*, std::size_t> position;
    std::size_t i = 0;
    for (const torch::jit::Node* n : g->nodes()) position[n] = i++;
    std::map<std::size_t, std::vector<std::string>> by_first_use;
    std::set<std::string> placed;
    for (const torch::jit::Node* n : g->nodes()) {
      if (n->kind() != c10::prim::GetAttr || n->input(0)->type() != holder_type) continue;
      const std::string name = n->s(c10::attr::name);
      if (!holder.hasattr(name) || !holder.attr(name).isTensor()) continue;
      std::size_t first = SIZE_MAX;
      for (const torch::jit::Use& u : n->output()->uses()) {
        // Reading a parameter's shape (to compute padding, say) or its dtype/device (checks in
        // functional wrappers such as embedding_bag) is not using it.
        if (u.user->kind() == c10::aten::size || u.user->kind() == c10::aten::dim ||
            u.user->kind() == c10::prim::dtype || u.user->kind() == c10::prim::device)
          continue;
        const torch::jit::Node* top = u.user;  // the top-level node holding the use
        while (top->owningBlock()->owningNode() != nullptr) top = top->owningBlock()->owningNode();
        const auto it = position.find(top);
        if (it != position.end()) first = std::min(first, it->second);
      }
      if (first != SIZE_MAX && placed.insert(name).second) by_first_use[first].push_back(name);
    }
    std::vector<Block> out;
    std::set<std::string> params;
    for (const auto& p : holder.named_parameters(false)) params.insert(p.name);
    for (const auto& [pos, names] : by_first_use) {
      Block b{{prefix, "", 0}, holder, {}};
      std::string joined;
      for (const auto& n : names) {
        if (!params.count(n)) continue;
        const at::Tensor t = holder.attr(n).toTensor();
        b.params.push_back(t);
        b.info.parameters += t.numel();
        joined += (joined.empty() ? "" : ",") + n;
      }
      if (b.params.empty()) continue;
      b.info.name = prefix + joined;
      for (const torch::jit::Node* n : g->nodes())
        if (position[n] == pos) b.info.type = n->kind().toQualString();
      out.push_back(b);
    }
    // Parameters forward never reads are in no block: they cannot reach the features.
    TLKIT_CHECK_ARG(!out.empty(), "{}: found no use of the parameters of {} in forward", path_,
                    prefix.empty() ? "the model" : prefix);
    return out;
  }

  at::Tensor features(const at::Tensor& x) {
    return select_features(module_.forward({x}), features_output_, path_);
  }
  at::Tensor features(const std::vector<std::string>& texts) {
    c10::List<std::string> input;
    input.reserve(texts.size());
    for (const auto& t : texts) input.push_back(t);
    return select_features(module_.forward({input}), features_output_, path_);
  }

  bool text() const { return text_; }  // forward(List[str])
  const std::vector<Block>& blocks() const { return blocks_; }
  std::int64_t features_dim() const { return features_dim_; }
  torch::jit::Module& module() { return module_; }

  // Freezes all but the last `k` blocks (k = -1: all blocks). Returns the trainable parameters.
  // Parameters off the feature path stay frozen in every mode: TorchScript's autodiff can give
  // them zero (not undefined) gradients, which weight decay would then shrink.
  std::vector<at::Tensor> set_trainable(int k) {
    trainable_k_ = k;
    for (const auto& p : module_.parameters(true)) p.requires_grad_(false);
    std::vector<at::Tensor> out;
    const std::size_t first = k < 0 ? 0 : blocks_.size() - static_cast<std::size_t>(k);
    for (std::size_t i = first; i < blocks_.size(); ++i)
      for (auto& p : blocks_[i].params) {
        p.requires_grad_(true);
        out.push_back(p);
      }
    return out;
  }

  // Train mode for what trains (BatchNorm statistics update there), eval mode elsewhere.
  void train_mode() {
    if (trainable_k_ < 0) {
      module_.train(true);
      return;
    }
    module_.eval();
    for (std::size_t i = blocks_.size() - static_cast<std::size_t>(trainable_k_);
         i < blocks_.size(); ++i)
      blocks_[i].owner.train(true);
  }
  void eval_mode() { module_.eval(); }

  // Parameters then buffers, in a fixed order (names in state_names()).
  std::vector<at::Tensor> state() const {
    std::vector<at::Tensor> v;
    for (const auto& p : module_.named_parameters(true)) v.push_back(p.value);
    for (const auto& b : module_.named_buffers(true)) v.push_back(b.value);
    return v;
  }
  std::vector<std::string> state_names() const {
    std::vector<std::string> v;
    for (const auto& p : module_.named_parameters(true)) v.push_back(p.name);
    for (const auto& b : module_.named_buffers(true)) v.push_back("buffer:" + b.name);
    return v;
  }

 private:
  std::string path_;
  int features_output_;
  torch::jit::Module module_;
  std::vector<Block> blocks_;
  std::int64_t features_dim_ = 0;
  int trainable_k_ = 0;
  bool text_ = false;
};

void copy_state(const std::vector<at::Tensor>& from, std::vector<at::Tensor>& to) {
  torch::NoGradGuard g;
  for (std::size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
}

std::vector<at::Tensor> clone_state(const std::vector<at::Tensor>& v) {
  std::vector<at::Tensor> out;
  torch::NoGradGuard g;
  for (const auto& t : v) out.push_back(t.detach().clone());
  return out;
}

void write_tensors(torch::serialize::OutputArchive& a, const std::string& key,
                   const std::vector<at::Tensor>& v) {
  torch::serialize::OutputArchive sub;
  for (std::size_t i = 0; i < v.size(); ++i) sub.write("t" + std::to_string(i), v[i].detach());
  a.write(key, sub);
}

void read_tensors(torch::serialize::InputArchive& a, const std::string& key,
                  std::vector<at::Tensor>& v) {
  torch::serialize::InputArchive sub;
  a.read(key, sub);
  torch::NoGradGuard g;
  for (std::size_t i = 0; i < v.size(); ++i) {
    at::Tensor t;
    sub.read("t" + std::to_string(i), t);
    v[i].copy_(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Hyper-parameters of one run

struct Hyper {
  double lr, weight_decay, momentum, head_lr_mult, label_smoothing;
};

double epoch_lr(const FinetuneOptions& o, double base, int epoch /* 0-based */) {
  if (epoch < o.warmup_epochs) return base * (epoch + 1) / (o.warmup_epochs + 1);
  const int e = epoch - o.warmup_epochs, n = std::max(1, o.epochs - o.warmup_epochs);
  if (o.schedule == "cosine") return base * 0.5 * (1.0 + std::cos(M_PI * e / n));
  if (o.schedule == "step") return base * (e >= n * 3 / 4 ? 0.01 : e >= n / 2 ? 0.1 : 1.0);
  return base;
}

json history_json(const std::vector<EpochRecord>& h) {
  json a = json::array();
  for (const auto& r : h)
    a.push_back({{"epoch", r.epoch},
                 {"lr", r.lr},
                 {"train_loss", r.train_loss},
                 {"train_acc", r.train_acc},
                 {"val_acc", r.val_acc},
                 {"seconds", r.seconds}});
  return a;
}

std::vector<EpochRecord> history_from_json(const json& a) {
  std::vector<EpochRecord> h;
  for (const auto& r : a)
    // A non-finite loss (a diverged run) is written as null.
    h.push_back({r["epoch"].get<int>(), r["lr"].get<double>(),
                 r["train_loss"].is_null() ? std::nan("") : r["train_loss"].get<double>(),
                 r["train_acc"].get<double>(), r["val_acc"].get<double>(),
                 r["seconds"].get<double>()});
  return h;
}

struct Context {
  const FinetuneOptions& o;
  Splits& splits;
  std::int64_t classes;
  torch::Device device;
  json base_config;  // the configuration of the whole command (hashed per run with the point)
  json info;         // splits, classes, blocks: written to each run's metrics.json
};

void write_json(const std::string& path, const json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

// One gradient-based run in `dir` with hyper-parameters `h`.
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

  fs::create_directories(dir);
  const std::string ckpt = dir + "/checkpoint.pt";
  std::error_code ec;
  if (fs::exists(ckpt, ec)) {
    torch::serialize::InputArchive a;
    try {
      a.load_from(ckpt);
    } catch (const std::exception& e) {
      TLKIT_THROW_ARG("{}: not a readable checkpoint ({}); remove it to start afresh", ckpt,
                      one_line(e));
    }
    c10::IValue v;
    a.read("config_hash", v);
    if (v.toStringRef() != hash) {
      c10::IValue cfg;
      a.read("config", cfg);
      std::string diff;
      const json old = json::parse(cfg.toStringRef());
      for (auto it = hashed.begin(); it != hashed.end(); ++it)
        if (!old.contains(it.key()) || old[it.key()] != it.value())
          diff += (diff.empty() ? "" : ", ") + it.key();
      TLKIT_THROW_ARG(
          "{} holds a checkpoint of a different configuration (differs in: {}); "
          "use another --out or remove the checkpoint",
          ckpt, diff.empty() ? "?" : diff);
    }
    read_tensors(a, "model", state);
    read_tensors(a, "head", head_state);
    read_tensors(a, "best_model", best_body);
    read_tensors(a, "best_head", best_head);
    torch::serialize::InputArchive oa;
    a.read("optimizer", oa);
    opt->load(oa);
    a.read("epoch", v);
    start = static_cast<int>(v.toInt());
    a.read("bad_epochs", v);
    bad_epochs = static_cast<int>(v.toInt());
    a.read("best_epoch", v);
    run.best_epoch = static_cast<int>(v.toInt());
    a.read("best_val_acc", v);
    run.best_val_acc = v.toDouble();
    a.read("early_stopped", v);
    run.early_stopped = v.toBool();
    a.read("history", v);
    run.history = history_from_json(json::parse(v.toStringRef()));
    run.resumed = true;
    run.resumed_from_epoch = start;
  } else {
    TLKIT_CHECK_ARG(!o.resume, "--resume: {} has no checkpoint.pt to resume from", dir);
  }

  const bool text = backbone.text();  // batches of texts, no augmentation
  const bool flip = !text && o.augment.find("flip") != std::string::npos;
  const bool crop = !text && o.augment.find("crop") != std::string::npos;
  const int s = o.input_size;
  const std::int64_t item = 3LL * s * s;
  const Split& train = ctx.splits.train;

  auto evaluate = [&](const Split& split) {
    backbone.eval_mode();
    head->eval();
    torch::NoGradGuard ng;
    std::int64_t correct = 0;
    for (std::int64_t b = 0; b < split.n(); b += o.batch) {
      const std::int64_t cnt = std::min<std::int64_t>(o.batch, split.n() - b);
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
      at::Tensor pred = head->forward(f).argmax(1).cpu();
      for (std::int64_t i = 0; i < cnt; ++i)
        correct += pred[i].item<std::int64_t>() == split.samples[b + i].label;
    }
    return 100.0 * static_cast<double>(correct) /
           static_cast<double>(std::max<std::int64_t>(1, split.n()));
  };

  std::string label;  // the grid point, in the progress bar
  for (const auto& [key, value] : point) label += fmt::format("{}={} ", key, value);
  int ran = 0;
  for (int epoch = start; epoch < o.epochs && !run.early_stopped; ++epoch) {
    if (o.stop_after > 0 && ran == o.stop_after) break;
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = epoch_lr(o, h.lr, epoch);
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
    std::vector<float> xb, tmp;
    std::vector<std::string> tb;
    std::vector<std::int64_t> yb;
    const std::int64_t batches = (train.n() + o.batch - 1) / o.batch;
    for (std::int64_t bi = 0; bi < batches; ++bi) {
      if (o.cancelled && o.cancelled()) throw Interrupted("interrupted");  // the last checkpoint
      const std::int64_t b = bi * o.batch, cnt = std::min<std::int64_t>(o.batch, train.n() - b);
      xb.resize(text ? 0 : static_cast<std::size_t>(cnt * item));
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
      at::Tensor y = torch::from_blob(yb.data(), {cnt}, torch::kInt64).to(ctx.device);
      opt->zero_grad();
      at::Tensor logits = head->forward(
          text ? backbone.features(tb)
               : backbone.features(
                     torch::from_blob(xb.data(), {cnt, 3, s, s}, torch::kFloat32).to(ctx.device)));
      at::Tensor loss = torch::nn::functional::cross_entropy(
          logits, y,
          torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(h.label_smoothing));
      loss.backward();
      opt->step();
      loss_sum += loss.item<double>() * static_cast<double>(cnt);
      correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
      seen += cnt;
      if (o.progress)
        o.progress(fmt::format("{}epoch {}/{}", label, epoch + 1, o.epochs), seen, train.n(),
                   fmt::format("loss {:.4f} acc {:.1f}%", loss_sum / static_cast<double>(seen),
                               100.0 * static_cast<double>(correct) / static_cast<double>(seen)));
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
    // Checkpoint atomically: a temporary file renamed over the previous one.
    torch::serialize::OutputArchive a;
    a.write("config_hash", c10::IValue(hash));
    a.write("config", c10::IValue(hashed.dump()));
    write_tensors(a, "model", state);
    write_tensors(a, "head", head_state);
    write_tensors(a, "best_model", best_body);
    write_tensors(a, "best_head", best_head);
    {
      std::string names;
      for (const auto& n : backbone.state_names()) names += n + "\n";
      a.write("model_names", c10::IValue(names));
    }
    torch::serialize::OutputArchive oa;
    opt->save(oa);
    a.write("optimizer", oa);
    a.write("epoch", c10::IValue(static_cast<std::int64_t>(epoch + 1)));
    a.write("bad_epochs", c10::IValue(static_cast<std::int64_t>(bad_epochs)));
    a.write("best_epoch", c10::IValue(static_cast<std::int64_t>(run.best_epoch)));
    a.write("best_val_acc", c10::IValue(run.best_val_acc));
    a.write("early_stopped", c10::IValue(run.early_stopped));
    a.write("history", c10::IValue(history_json(run.history).dump()));
    std::ostringstream bytes;  // then write_file_atomic: fsync, and a killed writer's temporary
    a.save_to(bytes);          // is removed by the next write (npy.h)
    write_file_atomic(ckpt, bytes.str());
  }
  const int done = run.history.empty() ? 0 : run.history.back().epoch;
  for (const auto& r : run.history) run.diverged = run.diverged || !std::isfinite(r.train_loss);
  run.finished = run.early_stopped || done >= o.epochs;
  if (run.finished) {
    // Test the best epoch's weights.
    copy_state(best_body, state);
    copy_state(best_head, head_state);
    run.test_acc = evaluate(ctx.splits.test);
  }
  json m;
  m["config"] = config;
  m["config_hash"] = hash;
  m["data"] = ctx.info;
  m["history"] = history_json(run.history);
  m["best_epoch"] = run.best_epoch;
  m["best_val_acc"] = run.best_val_acc;
  m["finished"] = run.finished;
  m["early_stopped"] = run.early_stopped;
  m["diverged"] = run.diverged;
  m["test_acc"] = run.finished ? json(run.test_acc) : json(nullptr);
  double total = 0;
  for (const auto& r : run.history) total += r.seconds;
  m["totals"] = {{"epochs", run.history.size()}, {"seconds", total}};
  write_json(dir + "/metrics.json", m);
  return run;
}

std::vector<std::map<std::string, double>> grid_points(const std::vector<GridAxis>& axes) {
  std::vector<std::map<std::string, double>> pts{{}};
  for (const auto& ax : axes) {
    std::vector<std::map<std::string, double>> next;
    for (const auto& p : pts)
      for (const double v : ax.values) {
        auto q = p;
        q[ax.key] = v;
        next.push_back(q);
      }
    pts = next;
  }
  return pts;
}

std::string point_dir_name(const std::vector<GridAxis>& axes,
                           const std::map<std::string, double>& p) {
  std::string s;
  for (const auto& ax : axes)
    s += (s.empty() ? "" : ",") + fmt::format("{}={}", ax.key, p.at(ax.key));
  return s;
}

// Linear probe data: features of the three splits.
struct FeatureSplits {
  LabelledRows train, val, test;
  std::int64_t d = 0;
  std::int64_t classes = 0;
  std::vector<std::string> class_names;
};

void read_extract_dir(const std::string& dir, LabelledRows& rows, std::int64_t& d,
                      std::vector<std::string>* names) {
  std::error_code ec;
  TLKIT_CHECK_ARG(fs::is_regular_file(dir + "/meta.json", ec),
                  "{}: not a complete `tlkit extract` folder (no meta.json)", dir);
  const NpyArray f = load_npy(dir + "/features.npy");
  const FeatureView v = f.features();
  rows.y = load_npy(dir + "/labels.npy").labels();
  TLKIT_CHECK_ARG(static_cast<std::int64_t>(rows.y.size()) == v.rows,
                  "{}: labels.npy has {} rows, features.npy {}", dir, rows.y.size(), v.rows);
  TLKIT_CHECK_ARG(d == 0 || d == v.cols, "{}: features of dimension {}, expected {}", dir, v.cols,
                  d);
  d = v.cols;
  rows.x.resize(static_cast<std::size_t>(v.rows * v.cols));
  for (std::int64_t i = 0; i < v.rows; ++i)
    for (std::int64_t j = 0; j < v.cols; ++j) rows.x[i * v.cols + j] = v.at(i, j);
  if (names) {
    std::ifstream in(dir + "/files.txt");
    std::string line;
    while (std::getline(in, line)) names->push_back(line);
  }
}

// Moves the rows of `from` selected by carve() on pseudo-samples (one per row, its label).
LabelledRows carve_rows(LabelledRows& from, std::int64_t d, double fraction, std::uint64_t seed) {
  std::vector<ImageSample> samples(from.y.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    samples[i].name = std::to_string(i);
    samples[i].label = from.y[i];
  }
  const std::vector<ImageSample> carved = carve(samples, fraction, seed);
  std::set<std::size_t> take;
  for (const auto& c : carved) take.insert(std::stoul(c.name));
  LabelledRows kept, out;
  for (std::size_t i = 0; i < from.y.size(); ++i) {
    LabelledRows& dst = take.count(i) ? out : kept;
    dst.x.insert(dst.x.end(), from.x.begin() + i * d, from.x.begin() + (i + 1) * d);
    dst.y.push_back(from.y[i]);
  }
  from = std::move(kept);
  return out;
}

LabelledRows extract_rows(TorchScriptModel& model, const std::vector<ImageSample>& samples,
                          const FinetuneOptions& o, bool text, std::int64_t& d,
                          const std::string& phase) {
  ImageListing l;
  l.samples = samples;
  l.format = text ? "lines" : "";  // extract_features runs text listings through forward(texts)
  ExtractOptions eo;
  eo.input_size = o.input_size;
  eo.mean = o.mean;
  eo.std = o.std;
  eo.batch = o.batch;
  eo.threads = o.threads;
  eo.decode_threads = o.decode_threads;
  eo.cancelled = o.cancelled;
  if (o.progress)
    eo.progress = [&](std::int64_t done, std::int64_t total) {
      o.progress(phase, done, total, "");
    };
  const ExtractResult r = extract_features(l, model, eo);
  TLKIT_CHECK_ARG(r.skipped.empty(), "{}", r.skipped.empty() ? "" : r.skipped[0].reason);
  LabelledRows rows;
  rows.x.assign(r.features.begin(), r.features.end());
  rows.y = r.labels;
  d = r.features_dim;
  return rows;
}

json probe_point_json(const LinearProbePoint& p) {
  return {{"c", p.c},
          {"train_acc", p.train_accuracy},
          {"val_acc", p.val_accuracy},
          {"converged", p.converged},
          {"seconds", p.seconds}};
}

// ---------------------------------------------------------------------------------------------
// Block surgery (FinetuneOptions::block_order, reinit_blocks; tlkit probe)

bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  return a.unsafeGetTensorImpl() == b.unsafeGetTensorImpl();
}

bool in_block(const Block& b, const at::Tensor& t) {
  for (const auto& p : b.params)
    if (same_tensor(p, t)) return true;
  return false;
}

// The modules under a block's owner all of whose own parameters lie in the block: their buffers
// (BatchNorm statistics) travel and reset with it. (A block of the owner's own parameters does
// not take its children's buffers.)
std::vector<torch::jit::NameModule> block_modules(const Block& b) {
  std::vector<torch::jit::NameModule> out;
  for (const auto& m : b.owner.named_modules()) {
    bool any = false, all = true;
    for (const auto& p : m.value.parameters(false)) {
      any = true;
      all = all && in_block(b, p);
    }
    if (any && all) out.push_back(m);
  }
  return out;
}

std::vector<at::Tensor> block_buffers(const Block& b) {
  std::vector<at::Tensor> out;
  for (const auto& m : block_modules(b))
    for (const auto& t : m.value.buffers(false)) out.push_back(t);
  return out;
}

std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<at::Tensor>& v) {
  std::vector<std::vector<std::int64_t>> s;
  for (const auto& t : v) s.push_back(t.sizes().vec());
  return s;
}

// Normal(0, sigma^2) truncated at +-2 sigma, by redrawing the values outside.
void trunc_normal(const at::Tensor& t, double sigma) {
  t.normal_(0.0, sigma);
  for (int i = 0; i < 100; ++i) {
    const at::Tensor out = t.abs() > 2.0 * sigma;
    if (!out.any().item<bool>()) return;
    t.masked_scatter_(out, torch::empty_like(t).normal_(0.0, sigma));
  }
  t.clamp_(-2.0 * sigma, 2.0 * sigma);
}

std::int64_t fan_in(const at::Tensor& w) { return w.dim() < 2 ? w.numel() : w.numel() / w.size(0); }

void reinit_block(const Block& b, const std::string& scheme) {
  torch::NoGradGuard ng;
  auto is_norm = [](const std::string& type) {
    return type.find("Norm") != std::string::npos;  // BatchNorm*, LayerNorm, GroupNorm, ...
  };
  auto uniform_fan = [](const at::Tensor& t, std::int64_t fan) {
    const double bound = fan > 0 ? 1.0 / std::sqrt(static_cast<double>(fan)) : 0.0;
    t.uniform_(-bound, bound);
  };
  std::set<const c10::TensorImpl*> done;
  for (const auto& m : b.owner.named_modules()) {
    const std::string type = type_name(m.value);
    const bool conv_or_linear = type.rfind("Conv", 0) == 0 || type == "Linear" ||
                                type == "Bilinear" || type.rfind("LazyConv", 0) == 0;
    at::Tensor weight;
    if (m.value.hasattr("weight") && m.value.attr("weight").isTensor())
      weight = m.value.attr("weight").toTensor();
    for (const auto& p : m.value.named_parameters(false)) {
      if (!in_block(b, p.value) || !done.insert(p.value.unsafeGetTensorImpl()).second) continue;
      const at::Tensor& t = p.value;
      const bool bias = p.name.find("bias") != std::string::npos;
      if (is_norm(type) || (t.dim() < 2 && !conv_or_linear && type != "Embedding")) {
        // Normalisation scales 1, shifts 0 (and 1-D parameters of unknown modules alike).
        if (bias)
          t.zero_();
        else
          t.fill_(1.0);
      } else if (scheme == "trunc-normal") {
        if (t.dim() < 2 && bias)
          t.zero_();
        else
          trunc_normal(t, 0.02);
      } else if (type == "Embedding") {
        t.normal_(0.0, 1.0);
      } else if (t.dim() >= 2) {
        uniform_fan(t, fan_in(t));  // kaiming_uniform_(a = sqrt(5))
      } else {
        uniform_fan(t, weight.defined() && weight.dim() >= 2 ? fan_in(weight) : t.numel());
      }
    }
    if (type.find("BatchNorm") != std::string::npos) {
      bool mine = false;
      for (const auto& p : m.value.parameters(false)) mine = mine || in_block(b, p);
      if (!mine) continue;
      for (const auto& buf : m.value.named_buffers(false)) {
        if (buf.name == "running_var")
          buf.value.fill_(1);
        else if (buf.name == "running_mean" || buf.name == "num_batches_tracked")
          buf.value.zero_();
      }
    }
  }
}

void apply_block_edits(Backbone& backbone, const FinetuneOptions& o) {
  const auto& blocks = backbone.blocks();
  const int nb = static_cast<int>(blocks.size());
  if (!o.block_order.empty()) {
    TLKIT_CHECK_ARG(static_cast<int>(o.block_order.size()) == nb,
                    "--block-order: {} has {} blocks but the order lists {}", o.model, nb,
                    o.block_order.size());
    std::string order_text;
    for (const int j : o.block_order)
      order_text += (order_text.empty() ? "" : ",") + std::to_string(j);
    std::vector<char> seen(static_cast<std::size_t>(nb), 0);
    for (const int j : o.block_order) {
      TLKIT_CHECK_ARG(j >= 0 && j < nb && !seen[static_cast<std::size_t>(j)],
                      "--block-order: {} is not a permutation of 0..{} ({} repeated or out of "
                      "range)",
                      order_text, nb - 1, j);
      seen[static_cast<std::size_t>(j)] = 1;
    }
    torch::NoGradGuard ng;
    std::vector<std::vector<at::Tensor>> params, buffers;
    for (const auto& b : blocks) {
      params.push_back(clone_state(b.params));
      buffers.push_back(clone_state(block_buffers(b)));
    }
    for (int i = 0; i < nb; ++i) {
      const auto& src = blocks[static_cast<std::size_t>(o.block_order[i])];
      const auto& dst = blocks[static_cast<std::size_t>(i)];
      TLKIT_CHECK_ARG(shapes_of(src.params) == shapes_of(dst.params),
                      "--block-order: block {} ({}) cannot take the weights of block {} ({}): "
                      "their parameter shapes differ",
                      i, dst.info.name, o.block_order[i], src.info.name);
      std::vector<at::Tensor> dst_buffers = block_buffers(dst);
      const auto& src_buffers = buffers[static_cast<std::size_t>(o.block_order[i])];
      TLKIT_CHECK_ARG(shapes_of(dst_buffers) == shapes_of(src_buffers),
                      "--block-order: block {} ({}) cannot take the buffers of block {} ({}): "
                      "their shapes differ",
                      i, dst.info.name, o.block_order[i], src.info.name);
    }
    for (int i = 0; i < nb; ++i) {
      const auto& dst = blocks[static_cast<std::size_t>(i)];
      std::vector<at::Tensor> p = dst.params, bf = block_buffers(dst);
      copy_state(params[static_cast<std::size_t>(o.block_order[i])], p);
      copy_state(buffers[static_cast<std::size_t>(o.block_order[i])], bf);
    }
  }
  if (!o.reinit_blocks.empty()) {
    TLKIT_CHECK_ARG(o.reinit_init == "default" || o.reinit_init == "trunc-normal",
                    "--init {}: expected default or trunc-normal", o.reinit_init);
    std::set<int> seen;
    for (const int i : o.reinit_blocks) {
      TLKIT_CHECK_ARG(i >= 0 && i < nb,
                      "--reinit-blocks: block {} out of range ({} has {} "
                      "blocks, 0..{})",
                      i, o.model, nb, nb - 1);
      TLKIT_CHECK_ARG(seen.insert(i).second, "--reinit-blocks: block {} given twice", i);
    }
    // One generator state per seed, blocks in index order: the draw does not depend on the
    // order the indices were given in.
    constexpr std::uint64_t kReinitPurpose = 101;
    torch::manual_seed(mix(o.seed, kReinitPurpose));
    for (const int i : seen) reinit_block(blocks[static_cast<std::size_t>(i)], o.reinit_init);
  }
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

std::vector<GridAxis> parse_grid(const std::string& s, FinetuneMode mode) {
  static const std::set<std::string> kGradientKeys{"lr", "weight-decay", "momentum", "head-lr-mult",
                                                   "label-smoothing"};
  std::vector<GridAxis> axes;
  std::set<std::string> seen;
  std::size_t start = 0;
  TLKIT_CHECK_ARG(!s.empty(), "--grid: empty");
  while (start <= s.size()) {
    std::size_t end = s.find(';', start);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(start, end - start);
    start = end + 1;
    if (part.empty() && end == s.size()) break;  // a trailing ';'
    const std::size_t eq = part.find('=');
    TLKIT_CHECK_ARG(eq != std::string::npos && eq > 0, "--grid {}: '{}' is not key=value,value,...",
                    s, part);
    GridAxis ax;
    ax.key = part.substr(0, eq);
    if (mode == FinetuneMode::kLinear)
      TLKIT_CHECK_ARG(ax.key == "c",
                      "--grid {}: --mode linear takes the key c (the inverse L2 "
                      "strength of the logistic regression), not '{}'",
                      s, ax.key);
    else
      TLKIT_CHECK_ARG(kGradientKeys.count(ax.key),
                      "--grid {}: unknown key '{}' (expected lr, weight-decay, momentum, "
                      "head-lr-mult or label-smoothing)",
                      s, ax.key);
    TLKIT_CHECK_ARG(seen.insert(ax.key).second, "--grid {}: key '{}' given twice", s, ax.key);
    const std::string vals = part.substr(eq + 1);
    std::size_t vs = 0;
    while (vs <= vals.size()) {
      std::size_t ve = vals.find(',', vs);
      if (ve == std::string::npos) ve = vals.size();
      const std::string v = vals.substr(vs, ve - vs);
      double x = 0;
      std::size_t used = 0;
      try {
        x = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      TLKIT_CHECK_ARG(!v.empty() && used == v.size() && std::isfinite(x) && x >= 0,
                      "--grid {}: '{}' of key {} is not a number >= 0", s, v, ax.key);
      if (ax.key == "c" || ax.key == "lr")
        TLKIT_CHECK_ARG(x > 0, "--grid {}: {} must be > 0, got {}", s, ax.key, v);
      ax.values.push_back(x);
      vs = ve + 1;
    }
    axes.push_back(ax);
  }
  TLKIT_CHECK_ARG(!axes.empty(), "--grid {}: no key=values", s);
  return axes;
}

std::vector<BlockInfo> list_blocks(const std::string& model_path, int input_size,
                                   int features_output) {
  Backbone b(model_path, features_output, input_size);
  std::vector<BlockInfo> out;
  for (const auto& bl : b.blocks()) out.push_back(bl.info);
  return out;
}

std::map<std::string, std::vector<float>> model_parameters(const std::string& model_path,
                                                           bool buffers) {
  torch::jit::Module m = torch::jit::load(model_path, torch::kCPU);
  std::map<std::string, std::vector<float>> out;
  auto put = [&](const std::string& name, const at::Tensor& v) {
    at::Tensor t = v.detach().to(torch::kFloat32).contiguous();
    out[name].assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  };
  for (const auto& p : m.named_parameters(true)) put(p.name, p.value);
  if (buffers)
    for (const auto& b : m.named_buffers(true)) put("buffer:" + b.name, b.value);
  return out;
}

std::map<std::string, std::vector<float>> checkpoint_parameters(const std::string& checkpoint,
                                                                bool buffers) {
  torch::serialize::InputArchive a;
  a.load_from(checkpoint);
  c10::IValue names_v;
  a.read("model_names", names_v);
  std::vector<std::string> names;
  {
    std::string n;
    for (const char ch : names_v.toStringRef()) {
      if (ch == '\n') {
        names.push_back(n);
        n.clear();
      } else {
        n += ch;
      }
    }
  }
  torch::serialize::InputArchive sub;
  a.read("model", sub);
  std::map<std::string, std::vector<float>> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!buffers && names[i].rfind("buffer:", 0) == 0) continue;
    at::Tensor t;
    sub.read("t" + std::to_string(i), t);
    t = t.to(torch::kFloat32).contiguous();
    out[names[i]].assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  return out;
}

std::vector<std::vector<std::vector<std::int64_t>>> block_parameter_shapes(
    const std::string& model_path, int input_size, int features_output) {
  Backbone b(model_path, features_output, input_size);
  std::vector<std::vector<std::vector<std::int64_t>>> out;
  for (const auto& bl : b.blocks()) out.push_back(shapes_of(bl.params));
  return out;
}

void save_edited_model(const FinetuneOptions& o, const std::string& out_path) {
  TLKIT_CHECK_ARG(o.input_size >= 1, "--input-size is required (S of the model's input)");
  Backbone b(o.model, o.features_output, o.input_size);
  apply_block_edits(b, o);
  b.module().save(out_path);
}

FinetuneResult run_finetune(const FinetuneOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  FinetuneResult res;
  res.mode = o.mode;
  // Options.
  TLKIT_CHECK_ARG(o.device == "cpu" || o.device == "cuda", "--device {}: expected cpu or cuda",
                  o.device);
  if (o.device == "cuda")
    TLKIT_CHECK_ARG(cuda_available(),
                    "--device cuda: this LibTorch ({}) has no CUDA support or sees no CUDA "
                    "device; use --device cpu",
                    torch_version());
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
    TLKIT_CHECK_ARG(o.device == "cpu",
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
    bool text_model = false;
    try {
      text_model = takes_texts(torch::jit::load(o.model, torch::kCPU));
    } catch (const std::exception& e) {
      TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", o.model, one_line(e));
    }
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
  std::vector<GridAxis> axes;
  if (!o.grid.empty()) axes = parse_grid(o.grid, o.mode.mode);
  set_torch_threads(o.threads);
  fs::create_directories(o.out);
  const torch::Device device = o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::kCPU;

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
      TorchScriptModel m(o.model,
                         ModelOptions{o.features_output, kNoOutput, Optimization::kFreeze});
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
    write_json(o.out + "/metrics.json", m);
    return res;
  }

  // Gradient-based modes.
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
  base["device"] = o.device;
  if (!o.reinit_blocks.empty()) {  // (absent otherwise: earlier checkpoints stay valid)
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
  Context ctx{o, sp, res.classes, device, base, info};

  const Hyper h0{o.lr, o.weight_decay, o.momentum, o.head_lr_mult, o.label_smoothing};
  if (axes.empty()) {
    res.runs.push_back(train_run(ctx, backbone, initial, h0, {}, o.out));
  } else {
    for (const auto& p : grid_points(axes)) {
      Hyper h = h0;
      for (const auto& [k, v] : p) {
        if (k == "lr") h.lr = v;
        if (k == "weight-decay") h.weight_decay = v;
        if (k == "momentum") h.momentum = v;
        if (k == "head-lr-mult") h.head_lr_mult = v;
        if (k == "label-smoothing") {
          TLKIT_CHECK_ARG(v < 1, "--grid: label-smoothing {} must be < 1", v);
          h.label_smoothing = v;
        }
      }
      res.runs.push_back(
          train_run(ctx, backbone, initial, h, p, o.out + "/" + point_dir_name(axes, p)));
    }
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
  res.seconds = seconds_since(t_start);
  if (!axes.empty()) {
    json m;
    m["config"] = base;
    m["grid"] = o.grid;
    json pts = json::array();
    for (const auto& r : res.runs) {
      json p;
      for (const auto& [k, v] : r.point) p[k] = v;
      pts.push_back({{"point", p},
                     {"dir", fs::path(r.out).filename().string()},
                     {"best_epoch", r.best_epoch},
                     {"best_val_acc", r.best_val_acc},
                     {"test_acc", r.finished ? json(r.test_acc) : json(nullptr)},
                     {"finished", r.finished}});
    }
    m["points"] = pts;
    m["best"] = pts[res.best_run];
    m["best_val_acc"] = res.runs[res.best_run].best_val_acc;
    m["test_acc"] = pts[res.best_run]["test_acc"];
    m["seconds"] = res.seconds;
    write_json(o.out + "/metrics.json", m);
  }
  return res;
}

}  // namespace tlkit::model

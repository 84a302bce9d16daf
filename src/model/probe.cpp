// tlkit probe (include/tlkit/model/probe.h): per-layer features of splittable TorchScript models,
// the re-initialisation / permutation experiments on top of run_finetune, results.json and plots.
#include "tlkit/model/probe.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "sampling.h"
#include "tlkit/core/error.h"
#include "tlkit/core/linear_probe.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"
#include "tlkit/core/svg_plot.h"
#include "tlkit/model/image_dataset.h"
#include "tlkit/model/runtime.h"
#include "torch_device.h"

namespace tlkit::model {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

std::string one_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10e ? c10e->what_without_backtrace() : e.what();
  return msg.substr(0, msg.find('\n'));
}

std::string type_name(const torch::jit::Module& m) {
  const auto name = m.type()->name();
  return name ? name->name() : "?";
}

bool has_params(const torch::jit::Module& m) {
  for (const auto& p : m.parameters(true)) {
    (void)p;
    return true;
  }
  return false;
}

// One vector per sample: 4-D maps averaged over H, W; 3-D [N, T, C] over T.
at::Tensor pool(const at::Tensor& t) {
  if (t.dim() == 4) return t.mean({2, 3});
  if (t.dim() == 3) return t.mean(1);
  return t.reshape({t.size(0), -1});
}

std::vector<float> to_vector(const at::Tensor& t) {
  at::Tensor c = to_host(t.detach());
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options

std::vector<std::string> parse_analyses(const std::string& s) {
  static const std::vector<std::string> kAll = {"layers", "reinit", "block-reinit", "reorder"};
  if (s == "all") return kAll;
  std::set<std::string> want;
  std::size_t st = 0;
  while (st <= s.size()) {
    std::size_t en = s.find(',', st);
    if (en == std::string::npos) en = s.size();
    const std::string a = s.substr(st, en - st);
    TLKIT_CHECK_ARG(std::find(kAll.begin(), kAll.end(), a) != kAll.end(),
                    "--analysis {}: '{}' is not one of layers, reinit, block-reinit, reorder, all",
                    s, a);
    want.insert(a);
    st = en + 1;
  }
  std::vector<std::string> out;
  for (const auto& a : kAll)
    if (want.count(a)) out.push_back(a);
  return out;
}

std::vector<std::int64_t> parse_sizes(const std::string& s) {
  std::vector<std::int64_t> out;
  std::size_t st = 0;
  while (st <= s.size()) {
    std::size_t en = s.find(',', st);
    if (en == std::string::npos) en = s.size();
    const std::string v = s.substr(st, en - st);
    std::int64_t n = 0;
    if (v == "all") {
      n = 0;
    } else {
      std::size_t used = 0;
      try {
        n = std::stoll(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      TLKIT_CHECK_ARG(!v.empty() && used == v.size() && n >= 1,
                      "--sizes {}: '{}' is not a number of training images >= 1 or 'all'", s, v);
    }
    TLKIT_CHECK_ARG(std::find(out.begin(), out.end(), n) == out.end(),
                    "--sizes {}: '{}' given twice", s, v);
    out.push_back(n);
    st = en + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LayerRunner

struct LayerRunner::Impl {
  std::string path;
  int features_output = 0;
  c10::Device device = c10::kCPU;
  torch::jit::Module module;
  std::string kind;
  // graph: the forward graph cut before the Sequential, returning (stem layer values...,
  // the Sequential's input).
  std::unique_ptr<torch::jit::GraphFunction> stem;
  std::vector<std::string> stem_names;
  std::string container_name;
  std::vector<std::pair<std::string, torch::jit::Module>> children;
  // list: the index of forward's output holding the per-layer list (-1: forward returns the list).
  int list_output = -1;
};

LayerRunner::LayerRunner(const std::string& path, int features_output, const Device& device)
    : impl_(new Impl) {
  Impl& m = *impl_;
  m.path = path;
  m.features_output = features_output;
  m.device = to_torch(device);
  std::error_code ec;
  try {
    TLKIT_CHECK_ARG(fs::is_regular_file(path, ec), "{}: no such model file", path);
    check_device(device);
    try {
      m.module = torch::jit::load(path, m.device);
    } catch (const std::exception& e) {
      TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", path, one_line(e));
    }
    m.module.eval();
    // A model that returns per-layer features: a List[Tensor] among its outputs.
    const c10::TypePtr ret =
        m.module.get_method("forward").function().getSchema().returns().at(0).type();
    auto is_tensor_list = [](const c10::TypePtr& t) {
      const auto l = t->cast<c10::ListType>();
      return l && l->getElementType()->kind() == c10::TypeKind::TensorType;
    };
    if (is_tensor_list(ret)) {
      m.kind = "list";
      return;
    }
    if (const auto tup = ret->cast<c10::TupleType>()) {
      for (std::size_t i = 0; i < tup->elements().size(); ++i)
        if (is_tensor_list(tup->elements()[i])) {
          m.kind = "list";
          m.list_output = static_cast<int>(i);
          return;
        }
    }
    // A scripted model: forward's calls of its children, in order.
    std::shared_ptr<torch::jit::Graph> g = m.module.get_method("forward").graph()->copy();
    torch::jit::Value* self = g->inputs().at(0);
    torch::jit::Node* container_call = nullptr;
    std::vector<torch::jit::Node*> stem_calls;
    for (torch::jit::Node* n : g->nodes()) {
      if (n->kind() != c10::prim::CallMethod || n->s(c10::attr::name) != "forward") continue;
      const torch::jit::Node* getter = n->input(0)->node();
      if (getter->kind() != c10::prim::GetAttr || getter->input(0) != self) continue;
      const std::string child = getter->s(c10::attr::name);
      const torch::jit::Module sub = m.module.attr(child).toModule();
      if (!has_params(sub)) continue;
      if (type_name(sub) == "Sequential") {
        container_call = n;
        m.container_name = child;
        for (const auto& c : sub.named_children()) m.children.emplace_back(c.name, c.value);
        break;
      }
      if (n->inputs().size() != 2) break;  // a child taking several inputs: not a chain
      stem_calls.push_back(n);
      m.stem_names.push_back(child);
    }
    TLKIT_CHECK_ARG(container_call != nullptr && container_call->inputs().size() == 2,
                    "{}: cannot be split into layers: its forward calls no Sequential of blocks "
                    "(a traced model is one graph); tlkit probe's layers analysis needs a "
                    "scripted model like the kit's cifar10_resnet* (children conv1, bn1, blocks, "
                    "linear) or one whose forward returns a list of per-layer features",
                    path);
    // Cut the graph: return the value each stem child hands on (the next stem child's input, or
    // the Sequential's), so that what forward does between children (a ReLU) is kept.
    std::vector<torch::jit::Value*> outs;
    for (std::size_t j = 0; j < stem_calls.size(); ++j)
      outs.push_back(j + 1 < stem_calls.size() ? stem_calls[j + 1]->input(1)
                                               : container_call->input(1));
    outs.push_back(container_call->input(1));
    for (std::size_t i = g->outputs().size(); i-- > 0;) g->eraseOutput(i);
    g->setInsertPoint(g->block()->return_node());
    torch::jit::Node* tuple = g->insertNode(g->createTuple(outs));
    g->registerOutput(tuple->output());
    torch::jit::EliminateDeadCode(g);
    m.stem = std::make_unique<torch::jit::GraphFunction>("tlkit_probe_stem", g, nullptr);
    m.kind = "graph";
  } catch (...) {
    delete impl_;
    throw;
  }
}

LayerRunner::~LayerRunner() { delete impl_; }

std::string LayerRunner::kind() const { return impl_->kind; }

LayerFeatures LayerRunner::run(const float* x, std::int64_t n, int s) {
  Impl& m = *impl_;
  torch::NoGradGuard ng;
  at::Tensor in = torch::from_blob(const_cast<float*>(x), {n, 3, s, s}, torch::kFloat32)
                      .to(m.device, torch::kFloat32, false, /*copy=*/true);
  LayerFeatures f;
  f.n = n;
  auto push = [&](const std::string& name, const at::Tensor& t) {
    const at::Tensor p = pool(t);
    f.names.push_back(name);
    f.dims.push_back(p.size(1));
    f.values.push_back(to_vector(p));
  };
  push("input", in);
  try {
    if (m.kind == "list") {
      c10::IValue out = m.module.forward({in});
      if (m.list_output >= 0) out = out.toTupleRef().elements()[m.list_output];
      const auto l = out.toTensorList();
      for (std::size_t i = 0; i < l.size(); ++i) push(fmt::format("layer {}", i + 1), l.get(i));
      return f;
    }
    torch::jit::Stack stack{c10::IValue(m.module._ivalue()), c10::IValue(in)};
    m.stem->run(stack);
    const auto& el = stack.back().toTupleRef().elements();
    for (std::size_t j = 0; j < m.stem_names.size(); ++j) push(m.stem_names[j], el[j].toTensor());
    at::Tensor h = el.back().toTensor();
    std::string pending;
    for (auto& [name, child] : m.children) {
      const bool p = has_params(child);
      if (p && !pending.empty()) {
        push(pending, h);
        pending.clear();
      }
      h = child.forward({h}).toTensor();
      if (p) pending = m.container_name + "." + name;
    }
    if (!pending.empty()) push(pending, h);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    TLKIT_THROW_ARG("{}: running the layers on an input of shape [{}, 3, {}, {}] failed: {}",
                    m.path, n, s, s, one_line(e));
  }
  return f;
}

std::vector<float> LayerRunner::model_features(const float* x, std::int64_t n, int s) {
  Impl& m = *impl_;
  torch::NoGradGuard ng;
  at::Tensor in = torch::from_blob(const_cast<float*>(x), {n, 3, s, s}, torch::kFloat32)
                      .to(m.device, torch::kFloat32, false, /*copy=*/true);
  c10::IValue out = m.module.forward({in});
  if (out.isTuple()) {
    const auto& el = out.toTupleRef().elements();
    TLKIT_CHECK_ARG(m.features_output < static_cast<int>(el.size()),
                    "{}: --features-output {} but forward returns {} outputs", m.path,
                    m.features_output, el.size());
    out = el[static_cast<std::size_t>(m.features_output)];
  }
  TLKIT_CHECK_ARG(out.isTensor(), "{}: output {} (features) is not a tensor", m.path,
                  m.features_output);
  const at::Tensor t = out.toTensor();
  return to_vector(t.reshape({t.size(0), -1}));
}

// ---------------------------------------------------------------------------------------------
// Permutations

std::vector<int> random_block_order(
    const std::vector<std::vector<std::vector<std::int64_t>>>& shapes, std::uint64_t seed) {
  std::map<std::vector<std::vector<std::int64_t>>, std::vector<int>> classes;
  for (std::size_t i = 0; i < shapes.size(); ++i) classes[shapes[i]].push_back(static_cast<int>(i));
  std::vector<int> order(shapes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 0x5851F42D4C957F2DULL);
  // Classes in order of their first block, so that the draw does not depend on map order.
  std::vector<std::vector<int>> by_first;
  for (auto& [shape, members] : classes) by_first.push_back(members);
  std::sort(by_first.begin(), by_first.end());
  for (const auto& members : by_first) {
    if (members.size() < 2) continue;
    std::vector<int> p = members;
    for (int tries = 0; tries < 16 && p == members; ++tries)
      fisher_yates(p, rng);  // avoid identity
    for (std::size_t j = 0; j < members.size(); ++j)
      order[static_cast<std::size_t>(members[j])] = p[j];
  }
  return order;
}

std::vector<int> invert_permutation(const std::vector<int>& p) {
  std::vector<int> inv(p.size(), -1);
  for (std::size_t i = 0; i < p.size(); ++i) {
    TLKIT_CHECK_ARG(p[i] >= 0 && static_cast<std::size_t>(p[i]) < p.size() &&
                        inv[static_cast<std::size_t>(p[i])] < 0,
                    "not a permutation: {} at position {}", p[i], i);
    inv[static_cast<std::size_t>(p[i])] = static_cast<int>(i);
  }
  return inv;
}

// ---------------------------------------------------------------------------------------------
// run_probe

namespace {

struct Stat {
  double mean = NAN, lo = NAN, hi = NAN;
  std::size_t n = 0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  s.n = v.size();
  s.mean = 0;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  s.lo = *std::min_element(v.begin(), v.end());
  s.hi = *std::max_element(v.begin(), v.end());
  return s;
}

std::string size_name(std::int64_t n) { return n == 0 ? "all" : std::to_string(n); }

// n training images, class-balanced: n / C per class, the remainder to classes chosen by the
// seed; within a class a seeded shuffle of the listing. n = 0: all.
std::vector<ImageSample> balanced(const std::vector<ImageSample>& pool, std::int64_t n,
                                  std::int64_t classes, std::uint64_t seed,
                                  std::vector<std::string>& notes) {
  if (n == 0) return pool;
  std::mt19937_64 rng(seed * 0xBF58476D1CE4E5B9ULL + 17);
  std::vector<std::int64_t> labels;
  for (std::int64_t c = 0; c < classes; ++c) labels.push_back(c);
  fisher_yates(labels, rng);
  std::map<std::int64_t, std::int64_t> want;
  for (std::size_t i = 0; i < labels.size(); ++i)
    want[labels[i]] = n / classes + (static_cast<std::int64_t>(i) < n % classes ? 1 : 0);
  std::map<std::int64_t, std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < pool.size(); ++i) by_class[pool[i].label].push_back(i);
  std::vector<char> keep(pool.size(), 0);
  for (auto& [label, idx] : by_class) {
    fisher_yates(idx, rng);
    const auto k = static_cast<std::size_t>(
        std::min<std::int64_t>(want[label], static_cast<std::int64_t>(idx.size())));
    if (static_cast<std::int64_t>(k) < want[label])
      notes.push_back(
          fmt::format("--sizes {}: class {} has only {} training images", n, label, idx.size()));
    for (std::size_t j = 0; j < k; ++j) keep[idx[j]] = 1;
  }
  std::vector<ImageSample> out;
  for (std::size_t i = 0; i < pool.size(); ++i)
    if (keep[i]) out.push_back(pool[i]);
  return out;
}

// A folder of split/class/file symbolic links to the images: what run_finetune reads.
void link_split(const std::string& dir, const std::vector<ImageSample>& samples,
                const std::vector<std::string>& class_dirs) {
  for (const auto& c : class_dirs) fs::create_directories(dir + "/" + c);
  for (const auto& s : samples) {
    const fs::path target = fs::absolute(s.path);
    const std::string cls = class_dirs[static_cast<std::size_t>(s.label)];
    fs::path link = fs::path(dir) / cls / target.filename();
    for (int i = 1; fs::exists(fs::symlink_status(link)); ++i) {
      std::error_code ec;
      if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) break;
      link = fs::path(dir) / cls / fmt::format("{}_{}", i, target.filename().string());
    }
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(link))) fs::create_symlink(target, link, ec);
    TLKIT_CHECK_ARG(!ec, "--out: cannot create the link {}: {}", link.string(), ec.message());
  }
}

std::vector<float> decode(const std::vector<ImageSample>& samples, int s) {
  const std::size_t item = 3ULL * s * s;
  std::vector<float> out(samples.size() * item);
  for (std::size_t i = 0; i < samples.size(); ++i) load_image(samples[i].path, s, &out[i * item]);
  return out;
}

LabelledRows rows_of(const LayerFeatures& f, std::size_t layer,
                     const std::vector<ImageSample>& samples) {
  LabelledRows r;
  r.x.assign(f.values[layer].begin(), f.values[layer].end());
  for (const auto& s : samples) r.y.push_back(s.label);
  return r;
}

LayerFeatures layer_features(LayerRunner& runner, const std::vector<float>& images, std::int64_t n,
                             int s) {
  // In batches of 256 (memory), concatenated.
  LayerFeatures all;
  const std::int64_t item = 3LL * s * s;
  for (std::int64_t b = 0; b < n; b += 256) {
    const std::int64_t cnt = std::min<std::int64_t>(256, n - b);
    LayerFeatures f = runner.run(images.data() + b * item, cnt, s);
    if (b == 0) {
      all = f;
      continue;
    }
    for (std::size_t l = 0; l < f.values.size(); ++l)
      all.values[l].insert(all.values[l].end(), f.values[l].begin(), f.values[l].end());
    all.n += cnt;
  }
  return all;
}

// Whether `dir` holds nothing but folders and symbolic links (the linked data folders), checked
// without following links.
bool only_links_below(const std::string& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (ec || (!fs::is_directory(st) && !fs::is_symlink(st))) return false;
  }
  return !ec;
}

ProbeResult run_probe_in(const ProbeOptions& o);

}  // namespace

// A refused probe leaves nothing behind: an --out folder that this run created and that holds only
// the linked data folders when the input is refused is removed. Results and checkpoints are regular
// files, so a run that got that far keeps everything.
ProbeResult run_probe(const ProbeOptions& o) {
  std::error_code ec;
  const bool created = !o.out.empty() && !fs::exists(fs::symlink_status(o.out, ec));
  try {
    return run_probe_in(o);
  } catch (const InputError&) {
    if (created && only_links_below(o.out)) fs::remove_all(o.out, ec);
    throw;
  }
}

namespace {

ProbeResult run_probe_in(const ProbeOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  ProbeResult res;
  TLKIT_CHECK_ARG(!o.model.empty(), "--model: a TorchScript model is required");
  TLKIT_CHECK_ARG(!o.data.empty(), "--data: a labelled image dataset is required");
  TLKIT_CHECK_ARG(!o.out.empty(), "--out: an output folder is required");
  TLKIT_CHECK_ARG(o.input_size >= 1, "--input-size is required (S of the model's input)");
  TLKIT_CHECK_ARG(!o.analyses.empty(), "--analysis: nothing to run");
  TLKIT_CHECK_ARG(!o.sizes.empty(), "--sizes: no training-set size");
  TLKIT_CHECK_ARG(o.seeds >= 1, "--seeds {}: must be >= 1", o.seeds);
  TLKIT_CHECK_ARG(o.block >= 1, "--block {}: must be >= 1", o.block);
  const Device device = device_from_flag(o.finetune.device, "--device");
  TLKIT_CHECK_ARG(o.init == "default" || o.init == "trunc-normal",
                  "--init {}: expected default or trunc-normal", o.init);
  TLKIT_CHECK_ARG(o.eval_per_class >= 0, "--eval-per-class {}: must be >= 0", o.eval_per_class);
  TLKIT_CHECK_ARG(o.val_fraction > 0 && o.val_fraction < 1, "--val-fraction {}: must be in (0, 1)",
                  o.val_fraction);
  TLKIT_CHECK_ARG(o.test_fraction >= 0 && o.test_fraction < 1,
                  "--test-fraction {}: must be in [0, 1)", o.test_fraction);
  TLKIT_CHECK_ARG(o.split_test.empty() != (o.test_fraction == 0),
                  "no test split: give --split-test or --test-fraction F (not both)");
  std::error_code ec;
  TLKIT_CHECK_ARG(!fs::exists(o.out, ec) || fs::is_directory(o.out, ec),
                  "--out {}: exists and is not a folder", o.out);
  const auto has = [&](const char* a) {
    return std::find(o.analyses.begin(), o.analyses.end(), a) != o.analyses.end();
  };
  std::vector<std::string> metrics;
  if (has("layers") && !o.metrics.empty() && o.metrics != "none")
    metrics = parse_metric_list(o.metrics, kNeedsFeatures | kNeedsLabels);
  set_torch_threads(o.finetune.threads);
  Communicator& comm = o.finetune.comm ? *o.finetune.comm : single_process();
  TLKIT_CHECK_ARG(!o.finetune.data_parallel,
                  "--data-parallel: tlkit probe shares its fine-tuning runs among the processes, "
                  "each run trained by one");

  // Splits: the pool, val and test once; the training subsets per (size, seed).
  ImageListing pool = list_images(o.data, o.split_train);
  std::vector<ImageSample> val, test;
  if (!o.split_test.empty()) {
    test = list_images(o.data, o.split_test).samples;
  } else {
    test = carve(pool.samples, o.test_fraction, 1001);
  }
  if (!o.split_val.empty()) {
    val = list_images(o.data, o.split_val).samples;
  } else {
    val = carve(pool.samples, o.val_fraction, 1002);
  }
  if (o.eval_per_class > 0) {
    ImageListing l;
    l.samples = val;
    val = subsample(l, {o.eval_per_class, 0, 1003}).samples;
    l.samples = test;
    test = subsample(l, {o.eval_per_class, 0, 1004}).samples;
  }
  std::int64_t classes = static_cast<std::int64_t>(pool.classes.size());
  for (const auto* v : {&pool.samples, &val, &test})
    for (const auto& s : *v) classes = std::max(classes, s.label + 1);
  TLKIT_CHECK_ARG(classes >= 2, "--data {}: needs at least 2 classes", o.data);
  TLKIT_CHECK_ARG(!val.empty() && !test.empty(), "--data {}: empty validation or test split",
                  o.data);
  for (const auto n : o.sizes)
    TLKIT_CHECK_ARG(n == 0 || n >= classes, "--sizes {}: fewer training images than the {} classes",
                    n, classes);
  std::vector<std::string> class_dirs;
  for (std::int64_t c = 0; c < classes; ++c)
    class_dirs.push_back(static_cast<std::size_t>(c) < pool.classes.size()
                             ? pool.classes[static_cast<std::size_t>(c)]
                             : fmt::format("{:06d}", c));
  res.classes = classes;
  res.val_n = static_cast<std::int64_t>(val.size());
  res.test_n = static_cast<std::int64_t>(test.size());

  for (const auto& b : list_blocks(o.model, o.input_size, o.features_output))
    res.blocks.push_back(b.name);
  const int B = static_cast<int>(res.blocks.size());
  if (has("block-reinit"))
    TLKIT_CHECK_ARG(o.block < B, "--block {}: the window must be shorter than the {} blocks of {}",
                    o.block, B, o.model);
  fs::create_directories(o.out);

  struct Subset {
    std::int64_t size;
    int seed;
    std::string dir;  // the linked data folder
    std::vector<ImageSample> train;
  };
  std::vector<Subset> subsets;
  for (const auto n : o.sizes)
    for (int seed = 0; seed < o.seeds; ++seed) {
      Subset s{n, seed, fs::absolute(fmt::format("{}/data/n{}-s{}", o.out, size_name(n), seed)),
               balanced(pool.samples, n, classes, static_cast<std::uint64_t>(seed), res.notes)};
      if (comm.is_root()) {  // under several processes, one makes the links
        link_split(s.dir + "/train", s.train, class_dirs);
        link_split(s.dir + "/val", val, class_dirs);
        link_split(s.dir + "/test", test, class_dirs);
      }
      subsets.push_back(std::move(s));
    }
  comm.barrier();

  json out;
  out["tool"] = "tlkit probe";
  out["paper"] = "Tamkin et al. 2020, Investigating Transferability in Pretrained Language Models";
  out["model"] = o.model;
  out["data"] = o.data;
  out["analyses"] = o.analyses;
  out["blocks"] = res.blocks;
  out["classes"] = classes;
  out["class_names"] = class_dirs;
  out["splits"] = {{"pool", pool.samples.size()}, {"val", val.size()}, {"test", test.size()}};
  json sizes = json::array();
  for (const auto n : o.sizes) sizes.push_back(n == 0 ? json("all") : json(n));
  out["sizes"] = sizes;
  out["seeds"] = o.seeds;
  out["init"] = o.init;
  const FinetuneOptions& ft = o.finetune;
  out["finetune"] = {{"mode", "full"},
                     {"epochs", ft.epochs},
                     {"batch", ft.batch},
                     {"lr", ft.lr},
                     {"optimizer", ft.optimizer},
                     {"weight_decay", ft.weight_decay},
                     {"schedule", ft.schedule},
                     {"augment", ft.augment},
                     {"patience", ft.patience},
                     {"head_lr_mult", ft.head_lr_mult}};

  // Aggregates: (analysis, size) -> x -> values.
  std::map<std::pair<std::string, std::int64_t>, std::map<double, std::vector<double>>> agg;
  auto progress = [&](const std::string& phase, std::int64_t done, std::int64_t total,
                      const std::string& detail) {
    if (o.progress) o.progress(phase, done, total, detail);
  };

  // --- layers (rank 0 alone, while the others start their share of the fine-tuning runs)
  if (has("layers") && comm.is_root()) {
    LayerRunner runner(o.model, o.features_output, device);
    const int s = o.input_size;
    const std::vector<float> val_img = decode(val, s), test_img = decode(test, s);
    const LayerFeatures fval =
        layer_features(runner, val_img, static_cast<std::int64_t>(val.size()), s);
    const LayerFeatures ftest =
        layer_features(runner, test_img, static_cast<std::int64_t>(test.size()), s);
    // Does the last layer, pooled, equal the model's own features?
    {
      const std::int64_t n = std::min<std::int64_t>(64, static_cast<std::int64_t>(val.size()));
      const std::vector<float> mf = runner.model_features(val_img.data(), n, s);
      const auto& last = fval.values.back();
      double diff = mf.size() == static_cast<std::size_t>(n * fval.dims.back()) ? 0.0 : INFINITY;
      for (std::size_t i = 0; std::isfinite(diff) && i < mf.size(); ++i)
        diff = std::max(diff, static_cast<double>(std::abs(mf[i] - last[i])));
      out["last_layer_vs_model_features_max_abs_diff"] =
          std::isfinite(diff) ? json(diff) : json(nullptr);
      if (!(diff <= 1e-4))
        res.notes.push_back(fmt::format(
            "the last layer's pooled features differ from the model's features output (max |diff| "
            "{}): forward does more after its blocks than a global average pool",
            diff));
    }
    json layers = json::array();
    std::int64_t done = 0;
    for (const auto& sub : subsets) {
      const std::vector<float> img = decode(sub.train, s);
      const LayerFeatures f =
          layer_features(runner, img, static_cast<std::int64_t>(sub.train.size()), s);
      json per = json::array();
      for (std::size_t l = 0; l < f.names.size(); ++l) {
        progress("layers", done, static_cast<std::int64_t>(subsets.size()),
                 fmt::format("n={} seed={} {}", size_name(sub.size), sub.seed, f.names[l]));
        json e;
        e["depth"] = l;
        e["name"] = f.names[l];
        e["dim"] = f.dims[l];
        if (!metrics.empty()) {
          std::vector<std::int64_t> y;
          for (const auto& x : sub.train) y.push_back(x.label);
          ScoreInputs in;
          in.features = FeatureView::row_major(f.values[l].data(), f.n, f.dims[l]);
          in.labels = LabelView{y.data(), static_cast<std::int64_t>(y.size())};
          ScoreOptions so;
          so.seed = static_cast<std::uint64_t>(sub.seed);
          const ScoreReport r = score(in, metrics, so);
          json m;
          for (const auto& v : r.metrics) {
            m[v.name] = std::isfinite(v.score) ? json(v.score) : json(nullptr);
            if (std::isfinite(v.score))
              agg[{"metric:" + v.name, sub.size}][static_cast<double>(l)].push_back(v.score);
          }
          e["metrics"] = m;
        }
        const LabelledRows tr = rows_of(f, l, sub.train), va = rows_of(fval, l, val),
                           te = rows_of(ftest, l, test);
        const LinearProbeResult pr = linear_probe(tr, va, te, f.dims[l], classes,
                                                  o.cs.empty() ? default_linear_probe_cs() : o.cs);
        e["probe"] = {{"c", pr.grid[pr.best].c},
                      {"val_acc", pr.grid[pr.best].val_accuracy},
                      {"test_acc", pr.test_accuracy},
                      {"converged", pr.grid[pr.best].converged}};
        agg[{"probe", sub.size}][static_cast<double>(l)].push_back(pr.test_accuracy);
        per.push_back(e);
      }
      ++done;
      layers.push_back({{"size", sub.size == 0 ? json("all") : json(sub.size)},
                        {"seed", sub.seed},
                        {"train", sub.train.size()},
                        {"layers", per}});
    }
    out["layers"] = layers;
  }

  // --- fine-tuning analyses
  // Under several processes the runs are first dealt out round robin, in the order below (dealing):
  // each process trains its runs whole, leaving their finished checkpoints; then rank 0 walks the
  // analyses as one process does, each run resuming from its finished checkpoint (the test split
  // evaluated again), and writes the results.
  bool dealing = false;
  std::int64_t dealt = 0;
  auto finetune = [&](const Subset& sub, const std::string& name, std::vector<int> reinit,
                      std::vector<int> order) {
    FinetuneOptions f = o.finetune;
    f.comm = nullptr;  // each run in one process
    f.model = o.model;
    f.data = sub.dir;
    f.split_train = "train";
    f.split_val = "val";
    f.split_test = "test";
    f.test_fraction = 0;
    f.per_class = 0;
    f.limit = 0;
    f.input_size = o.input_size;
    f.features_output = o.features_output;
    f.mode = ModeSpec{FinetuneMode::kFull, 1};
    f.seed = static_cast<std::uint64_t>(sub.seed);
    f.reinit_blocks = std::move(reinit);
    f.reinit_init = o.init;
    f.block_order = std::move(order);
    f.out = fmt::format("{}/runs/n{}-s{}/{}", o.out, size_name(sub.size), sub.seed, name);
    const std::string phase = fmt::format("n={} seed={} {}", size_name(sub.size), sub.seed, name);
    f.progress = [&](const std::string& p, std::int64_t d, std::int64_t t, const std::string& x) {
      progress(phase + " " + p, d, t, x);
    };
    if (dealing) {
      if (dealt++ % comm.size() == comm.rank()) run_finetune(f);
      return json{{"test_acc", nullptr}};
    }
    const FinetuneResult r = run_finetune(f);
    ++res.finetune_runs;
    for (const auto& n : r.notes) res.notes.push_back(n);
    const FinetuneRun& run = r.runs[r.best_run];
    return json{{"size", sub.size == 0 ? json("all") : json(sub.size)},
                {"seed", sub.seed},
                {"run", name},
                {"reinit_blocks", f.reinit_blocks},
                {"block_order", f.block_order},
                {"best_epoch", run.best_epoch},
                {"best_val_acc", run.best_val_acc},
                {"test_acc", run.finished ? json(run.test_acc) : json(nullptr)},
                {"dir", fs::relative(run.out, o.out).string()}};
  };
  auto range = [](int a, int b) {
    std::vector<int> v;
    for (int i = a; i < b; ++i) v.push_back(i);
    return v;
  };
  auto finetune_analyses = [&] {
    if (has("reinit")) {
      json runs = json::array();
      for (const auto& sub : subsets)
        for (int k = B; k >= 0; --k) {  // the pretrained model first
          json r = finetune(sub, k == B ? "pretrained" : fmt::format("reinit-keep{:02d}", k),
                            range(k, B), {});
          r["kept"] = k;
          agg[{"reinit", sub.size}][k].push_back(
              r["test_acc"].is_null() ? NAN : r["test_acc"].get<double>());
          runs.push_back(r);
        }
      out["reinit"] = runs;
    }
    if (has("block-reinit")) {
      json runs = json::array();
      for (const auto& sub : subsets)
        for (int w = 0; w + o.block <= B; ++w) {
          const std::vector<int> window = range(w, w + o.block);
          std::vector<int> rest = range(0, w);
          for (int i = w + o.block; i < B; ++i) rest.push_back(i);
          json a = finetune(sub, fmt::format("window{:02d}-reinit", w), window, {});
          json b = finetune(sub, fmt::format("window{:02d}-only-pretrained", w), rest, {});
          a["window_start"] = w;
          a["kind"] = "window re-initialised";
          b["window_start"] = w;
          b["kind"] = "only the window pretrained";
          agg[{"window-reinit", sub.size}][w].push_back(
              a["test_acc"].is_null() ? NAN : a["test_acc"].get<double>());
          agg[{"window-keep", sub.size}][w].push_back(
              b["test_acc"].is_null() ? NAN : b["test_acc"].get<double>());
          runs.push_back(a);
          runs.push_back(b);
        }
      out["block_reinit"] = runs;
      out["block"] = o.block;
    }
    if (has("reorder")) {
      const auto shapes = block_parameter_shapes(o.model, o.input_size, o.features_output);
      json classes_json = json::array();
      {
        // The classes of blocks with equal parameter shapes, in order of their first block.
        std::vector<std::vector<std::string>> cl;
        std::vector<std::vector<std::vector<std::int64_t>>> keys;
        for (std::size_t i = 0; i < shapes.size(); ++i) {
          const auto it = std::find(keys.begin(), keys.end(), shapes[i]);
          if (it == keys.end()) {
            keys.push_back(shapes[i]);
            cl.push_back({res.blocks[i]});
          } else {
            cl[static_cast<std::size_t>(it - keys.begin())].push_back(res.blocks[i]);
          }
        }
        for (const auto& names : cl)
          if (names.size() > 1) classes_json.push_back(names);
      }
      out["reorder_shape_classes"] = classes_json;
      if (classes_json.empty())
        res.notes.push_back(
            "reorder: no two blocks have the same parameter shapes; nothing to permute");
      json runs = json::array();
      for (const auto& sub : subsets) {
        json r0 = finetune(sub, "pretrained", {}, {});
        r0["permutation"] = 0;
        agg[{"reorder", sub.size}][0].push_back(
            r0["test_acc"].is_null() ? NAN : r0["test_acc"].get<double>());
        runs.push_back(r0);
        if (classes_json.empty()) continue;
        for (int p = 1; p <= o.seeds; ++p) {
          const std::vector<int> order = random_block_order(shapes, static_cast<std::uint64_t>(p));
          json r = finetune(sub, fmt::format("reorder{:02d}", p), {}, order);
          r["permutation"] = p;
          agg[{"reorder", sub.size}][p].push_back(
              r["test_acc"].is_null() ? NAN : r["test_acc"].get<double>());
          runs.push_back(r);
        }
      }
      out["reorder"] = runs;
    }
  };
  if (comm.size() > 1) {
    const auto agg_before = agg;
    const json out_before = out;
    const std::vector<std::string> notes_before = res.notes;
    dealing = true;
    finetune_analyses();
    dealing = false;
    agg = agg_before;
    out = out_before;
    res.notes = notes_before;
    comm.barrier();
    if (!comm.is_root()) return res;  // rank 0 writes the results
  }
  finetune_analyses();

  // Summary (means over seeds, min and max) and plots.
  json summary = json::object();
  for (const auto& [key, xs] : agg) {
    json a = json::array();
    for (const auto& [x, v] : xs) {
      const Stat s = stat(v);
      a.push_back({{"x", x}, {"mean", s.mean}, {"min", s.lo}, {"max", s.hi}, {"n", s.n}});
    }
    summary[key.first][size_name(key.second)] = a;
  }
  out["summary"] = summary;

  auto series = [&](const std::string& key, std::int64_t size, const std::string& label,
                    bool dashed, const std::string& color) {
    PlotSeries s;
    s.label = label;
    s.dashed = dashed;
    s.color = color;
    const auto it = agg.find({key, size});
    if (it == agg.end()) return s;
    for (const auto& [x, v] : it->second) {
      std::vector<double> fin;
      for (const double d : v)
        if (std::isfinite(d)) fin.push_back(d);
      const Stat st = stat(fin);
      s.x.push_back(x);
      s.y.push_back(st.mean);
      s.lo.push_back(st.lo);
      s.hi.push_back(st.hi);
    }
    return s;
  };
  static const char* const kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"};
  auto color = [&](std::size_t i) { return std::string(kColors[i % 5]); };
  auto size_label = [&](std::int64_t n) {
    return n == 0 ? std::string("all images") : fmt::format("{} images", n);
  };
  const std::string model_name = fs::path(o.model).stem().string();
  const std::string data_name = fs::path(o.data).filename().string();
  auto save = [&](const std::string& file, const LinePlot& p) {
    bool any = false;
    for (const auto& s : p.series) any = any || !s.y.empty();
    if (!any) return;
    write_file_atomic(o.out + "/" + file, render_svg(p));
    res.files.push_back(o.out + "/" + file);
  };
  std::vector<std::string> depth_labels;
  depth_labels.push_back("0: none");
  for (int k = 1; k <= B; ++k)
    depth_labels.push_back(fmt::format("{}: {}", k, res.blocks[static_cast<std::size_t>(k - 1)]));
  const std::string seeds_note = o.seeds == 1
                                     ? std::string("one seed")
                                     : fmt::format("mean of {} seeds, bars min-max", o.seeds);
  const std::string subtitle =
      fmt::format("{}; {} classes, val {} and test {} images; fine-tuning: full, {} epochs",
                  seeds_note, classes, res.val_n, res.test_n, ft.epochs);
  if (has("layers")) {
    // The per-layer table people read first: per size, mean over seeds of each depth's linear
    // probe test accuracy and metric scores.
    std::string t;
    for (const auto n : o.sizes) {
      t += fmt::format(
          "layers, {} ({}):\n  {:<24} {:>10}", size_label(n),
          o.seeds == 1 ? std::string("one seed") : fmt::format("mean of {} seeds", o.seeds),
          "depth", "probe %");
      for (const auto& m : metrics) t += fmt::format(" {:>12}", m);
      t += "\n";
      for (std::size_t k = 0; k < depth_labels.size(); ++k) {
        const auto mean_at = [&](const std::string& key) -> double {
          const auto it = agg.find({key, n});
          if (it == agg.end()) return NAN;
          const auto jt = it->second.find(static_cast<double>(k));
          if (jt == it->second.end()) return NAN;
          std::vector<double> fin;
          for (const double d : jt->second)
            if (std::isfinite(d)) fin.push_back(d);
          return fin.empty() ? NAN : stat(fin).mean;
        };
        t += fmt::format("  {:<24} {:>10.2f}", depth_labels[k], mean_at("probe"));
        for (const auto& m : metrics) t += fmt::format(" {:>12.4f}", mean_at("metric:" + m));
        t += "\n";
      }
    }
    res.layers_table = t;
  }
  if (has("reinit") || has("layers")) {
    // Without fine-tuning runs the plot shows the probe alone, under a name that says so.
    const bool finetuned = has("reinit");
    LinePlot p;
    p.title = finetuned
                  ? fmt::format("{} on {}: fine-tuning vs probing by depth", model_name, data_name)
                  : fmt::format("{} on {}: linear probe by depth", model_name, data_name);
    p.subtitle = finetuned ? subtitle
                           : fmt::format("{}; {} classes, val {} and test {} images", seeds_note,
                                         classes, res.val_n, res.test_n);
    p.x_label = finetuned
                    ? "k: blocks 1..k kept pretrained (rest re-initialised) / probe after block k"
                    : "depth: linear probe on the features after block k";
    p.y_label = "test accuracy, %";
    p.x_tick_labels = depth_labels;
    for (std::size_t i = 0; i < o.sizes.size(); ++i) {
      p.series.push_back(
          series("reinit", o.sizes[i], "fine-tune, " + size_label(o.sizes[i]), false, color(i)));
      p.series.push_back(
          series("probe", o.sizes[i], "probe, " + size_label(o.sizes[i]), true, color(i)));
    }
    p.series.erase(std::remove_if(p.series.begin(), p.series.end(),
                                  [](const PlotSeries& s) { return s.y.empty(); }),
                   p.series.end());
    p.y_min = 0;
    p.y_max = 100;
    save(finetuned ? "reinit.svg" : "layers-probe.svg", p);
  }
  if (has("layers") && !metrics.empty()) {
    for (const auto& m : metrics) {
      LinePlot p;
      p.title = fmt::format("{} on {}: {} of each layer's features", model_name, data_name, m);
      p.subtitle = subtitle;
      p.x_label = "depth: features after block k (0: the input's channel means)";
      p.y_label = m + " on the training images";
      p.x_tick_labels = depth_labels;
      for (std::size_t i = 0; i < o.sizes.size(); ++i)
        p.series.push_back(
            series("metric:" + m, o.sizes[i], size_label(o.sizes[i]), false, color(i)));
      save("layers-" + m + ".svg", p);
    }
  }
  if (has("block-reinit")) {
    LinePlot p;
    p.title = fmt::format("{} on {}: windows of {} blocks", model_name, data_name, o.block);
    p.subtitle = subtitle;
    p.x_label = fmt::format("window: blocks w+1 .. w+{} (label: its first block)", o.block);
    p.y_label = "test accuracy after fine-tuning, %";
    for (int w = 0; w + o.block <= B; ++w)
      p.x_tick_labels.push_back(fmt::format("{}: {}", w, res.blocks[static_cast<std::size_t>(w)]));
    for (std::size_t i = 0; i < o.sizes.size(); ++i) {
      p.series.push_back(series("window-reinit", o.sizes[i],
                                "window re-init, " + size_label(o.sizes[i]), false, color(i)));
      p.series.push_back(series("window-keep", o.sizes[i],
                                "only window kept, " + size_label(o.sizes[i]), true, color(i)));
    }
    p.y_min = 0;
    p.y_max = 100;
    save("block-reinit.svg", p);
  }
  if (has("reorder")) {
    LinePlot p;
    p.title = fmt::format("{} on {}: permuted blocks", model_name, data_name);
    p.subtitle = subtitle;
    p.x_label = "block order (0: pretrained; 1..: random permutations of same-shape blocks)";
    p.y_label = "test accuracy after fine-tuning, %";
    p.x_tick_labels.push_back("pretrained");
    for (int i = 1; i <= o.seeds; ++i) p.x_tick_labels.push_back(fmt::format("perm {}", i));
    for (std::size_t i = 0; i < o.sizes.size(); ++i)
      p.series.push_back(series("reorder", o.sizes[i], size_label(o.sizes[i]), false, color(i)));
    p.y_min = 0;
    p.y_max = 100;
    save("reorder.svg", p);
  }

  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  out["finetune_runs"] = res.finetune_runs;
  out["notes"] = res.notes;
  out["seconds"] = res.seconds;
  write_file_atomic(o.out + "/results.json", out.dump(2) + "\n");
  res.files.insert(res.files.begin(), o.out + "/results.json");
  return res;
}

}  // namespace

}  // namespace tlkit::model

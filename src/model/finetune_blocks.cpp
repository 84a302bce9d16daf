// The trainable wrapper of a TorchScript module and block surgery (finetune_blocks.h).
#include "finetune_blocks.h"

#include <torch/csrc/jit/passes/inliner.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "finetune_internal.h"
#include "tlkit/core/error.h"

namespace tlkit::model::finetune_detail {
namespace fs = std::filesystem;

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

bool takes_texts(const torch::jit::Module& m) {
  const auto fwd = m.find_method("forward");
  if (!fwd) return false;
  const auto& args = fwd->function().getSchema().arguments();
  return args.size() >= 2 && *args[1].type() == *c10::ListType::ofStrings();
}

bool model_takes_texts(const std::string& model_path) {
  try {
    return takes_texts(torch::jit::load(model_path, torch::kCPU));
  } catch (const std::exception& e) {
    TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", model_path, one_line(e));
  }
}

// ---------------------------------------------------------------------------------------------
// The trainable wrapper

namespace {

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

}  // namespace

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

Backbone::Backbone(const std::string& path, int features_output, int input_size)
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
    Block b{{prefix + "(own parameters)", type_name(level), count_params(level, false)}, level, {}};
    for (const auto& p : level.parameters(false)) b.params.push_back(p);
    blocks_.push_back(b);
  }
  expand(level, prefix, blocks_);
  for (const auto& p : module_.parameters(true)) p.requires_grad_(true);
  // Keep the blocks whose parameters reach the features.
  at::Tensor f;
  try {
    f = text_ ? run({text_list({"a short text", "and another one?"})}, true)
              : run({torch::zeros({2, 3, input_size, input_size})}, true);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    TLKIT_THROW_ARG("{}: forward failed on {}: {}", path,
                    text_ ? std::string("two short texts")
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
std::vector<Block> Backbone::split_flat(const torch::jit::Module& holder,
                                        const std::string& prefix) {
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

std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<at::Tensor>& v) {
  std::vector<std::vector<std::int64_t>> s;
  for (const auto& t : v) s.push_back(t.sizes().vec());
  return s;
}

// ---------------------------------------------------------------------------------------------
// Block surgery (FinetuneOptions::block_order, reinit_blocks; tlkit probe)

namespace {

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

}  // namespace

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

}  // namespace tlkit::model::finetune_detail

namespace tlkit::model {
using namespace finetune_detail;  // NOLINT(build/namespaces)

std::vector<BlockInfo> list_blocks(const std::string& model_path, int input_size,
                                   int features_output) {
  Backbone b(model_path, features_output, input_size);
  std::vector<BlockInfo> out;
  for (const auto& bl : b.blocks()) out.push_back(bl.info);
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

}  // namespace tlkit::model

// The trainable wrapper of a TorchScript module and block surgery (finetune_blocks.cpp): the
// blocks of include/tlkit/model/finetune.h, freezing all but the last K, and the permutation
// (--block-order) and re-initialisation (--reinit-blocks) of tlkit probe.
#pragma once

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "tlkit/model/finetune.h"

namespace tlkit::model::finetune_detail {

// The message of an exception on one line (a TorchScript error's last line, without traceback).
std::string one_line(const std::exception& e);

// True for a text model: forward takes List[str] (text_dataset.h).
bool takes_texts(const torch::jit::Module& m);

struct Block {
  BlockInfo info;
  torch::jit::Module owner;  // the module whose train mode the block sets
  std::vector<at::Tensor> params;
};

// Output `index` of forward's result (a tuple, a list or one tensor) as [N, features].
at::Tensor select_features(const c10::IValue& out, int index, const std::string& path);

class Backbone {
 public:
  // Loads the model at `path` and splits it into blocks (finetune.h); throws tlkit::InputError.
  Backbone(const std::string& path, int features_output, int input_size);

  // The parameters of a module that holds them all itself, split by use: in the inlined forward
  // graph (execution order), each node that first uses some of them makes those a block (a
  // convolution's weight and bias, a batch norm's four tensors); shape, dtype and device reads
  // (aten::size, aten::dim, prim::dtype, prim::device) do not count as uses.
  std::vector<Block> split_flat(const torch::jit::Module& holder, const std::string& prefix);

  // The features of a batch of images or texts, in training and evaluation, by TorchScript's
  // graph executor without graph optimisation: the optimising executor turns a graph that first
  // ran with gradients into autodiff subgraphs, whose forward and backward took 1.2x and 1.4x the
  // time of LibTorch's autograd of the same operators on the kit's scripted ResNet-20 (as in
  // PyTorch-Python when a module's first call runs without gradients, tools/bench_finetune_py.py).
  at::Tensor features(const at::Tensor& x) { return run({x}, false); }
  at::Tensor features(const std::vector<std::string>& texts) {
    return run({text_list(texts)}, false);
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
  static c10::List<std::string> text_list(const std::vector<std::string>& texts) {
    c10::List<std::string> input;
    input.reserve(texts.size());
    for (const auto& t : texts) input.push_back(t);
    return input;
  }
  // forward's features; `optimized`: by the optimising executor, as the constructor's probe of
  // which blocks reach the features runs (its gradients decide the blocks).
  at::Tensor run(std::vector<c10::IValue> input, bool optimized) {
    torch::jit::GraphOptimizerEnabledGuard executor(optimized);
    return select_features(module_.forward(std::move(input)), features_output_, path_);
  }

  std::string path_;
  int features_output_;
  torch::jit::Module module_;
  std::vector<Block> blocks_;
  std::int64_t features_dim_ = 0;
  int trainable_k_ = 0;
  bool text_ = false;
};

void copy_state(const std::vector<at::Tensor>& from, std::vector<at::Tensor>& to);
std::vector<at::Tensor> clone_state(const std::vector<at::Tensor>& v);
std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<at::Tensor>& v);

// --block-order (permutes the blocks' weights and buffers), then --reinit-blocks (draws them
// afresh from the seed); checks both against the model's blocks.
void apply_block_edits(Backbone& backbone, const FinetuneOptions& o);

}  // namespace tlkit::model::finetune_detail

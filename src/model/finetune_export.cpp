// The fine-tuned model as one TorchScript file (finetune_export.h).
#include "finetune_export.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <filesystem>

#include "finetune_blocks.h"
#include "tlkit/core/error.h"

namespace tlkit::model::finetune_detail {
namespace fs = std::filesystem;

namespace {

// How forward's source reaches the features in the backbone's output: by index for a tuple or a
// list, the output itself for a tensor.
std::string features_expression(const torch::jit::Module& backbone, int index, const char* arg) {
  const auto& schema = backbone.get_method("forward").function().getSchema();
  TLKIT_CHECK_ARG(schema.returns().size() == 1, "the backbone's forward returns {} values",
                  schema.returns().size());
  const auto kind = schema.returns()[0].type()->kind();
  if (kind == c10::TypeKind::TupleType || kind == c10::TypeKind::ListType)
    return fmt::format("self.backbone.forward({})[{}]", arg, index);
  TLKIT_CHECK_ARG(index == 0, "--features-output {} but the backbone's forward returns one value",
                  index);
  return fmt::format("self.backbone.forward({})", arg);
}

}  // namespace

void save_finetuned_model(const torch::jit::Module& backbone, const at::Tensor& weight,
                          const at::Tensor& bias, const ExportSpec& spec, const std::string& path) {
  torch::NoGradGuard ng;
  torch::jit::Module body = backbone.clone();
  body.to(torch::kCPU);
  body.eval();
  for (auto p : body.parameters(true)) p.requires_grad_(false);

  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module m(c10::QualifiedName("__torch__.tlkit.FinetunedModel"), cu, true);
  m.register_attribute("training", c10::BoolType::get(), false);
  m.register_module("backbone", body);
  m.register_parameter("head_weight", weight.detach().to(torch::kCPU, torch::kFloat32).clone(),
                       false);
  m.register_parameter("head_bias", bias.detach().to(torch::kCPU, torch::kFloat32).clone(), false);
  const bool normalise = !spec.text && spec.mean.size() == 3 && spec.std.size() == 3;
  at::Tensor mean = torch::zeros({1, 3, 1, 1}), sd = torch::ones({1, 3, 1, 1});
  if (normalise)
    for (int c = 0; c < 3; ++c) {
      mean[0][c][0][0] = spec.mean[static_cast<std::size_t>(c)];
      sd[0][c][0][0] = spec.std[static_cast<std::size_t>(c)];
    }
  m.register_buffer("mean", mean);
  m.register_buffer("std", sd);
  c10::List<std::string> names;
  for (const auto& n : spec.class_names) names.push_back(n);
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
  m.register_attribute("input_size", c10::IntType::get(),
                       static_cast<std::int64_t>(spec.input_size));
  m.register_attribute("normalise", c10::BoolType::get(), normalise);

  const std::string input = spec.text ? "texts: List[str]" : "x: Tensor";
  std::string src = fmt::format("def forward(self, {}) -> Tuple[Tensor, Tensor]:\n", input);
  if (!spec.text) src += "    if self.normalise:\n        x = (x - self.mean) / self.std\n";
  src += fmt::format("    f = {}\n",
                     features_expression(body, spec.features_output, spec.text ? "texts" : "x"));
  src +=
      "    f = f.reshape([f.size(0), -1])\n"
      "    logits = torch.linear(f, self.head_weight, self.head_bias)\n"
      "    return (f, logits)\n";
  m.define(src);

  // The record tlkit extract and rank read (TorchScriptModel::record): input size and widths.
  const std::string record =
      spec.text || spec.input_size <= 0
          ? fmt::format("{{\"feature_dim\": {}, \"logits_dim\": {}}}", weight.size(1),
                        weight.size(0))
          : fmt::format("{{\"input_size\": {}, \"feature_dim\": {}, \"logits_dim\": {}}}",
                        spec.input_size, weight.size(1), weight.size(0));
  const std::string tmp = path + ".tmp";
  m.save(tmp, {{"tlkit.json", record}});
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::system_error(ec, fmt::format("{}: cannot write", path));
  }
}

void save_linear_model(const std::string& model_path, const LogisticModel& head,
                       const ExportSpec& spec, const std::string& path) {
  torch::jit::Module backbone;
  try {
    backbone = torch::jit::load(model_path, torch::kCPU);
  } catch (const std::exception& e) {
    TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", model_path, one_line(e));
  }
  std::vector<float> w(head.weights.begin(), head.weights.end());
  std::vector<float> b(head.bias.begin(), head.bias.end());
  const at::Tensor weight = torch::from_blob(w.data(), {head.classes, head.dim}, torch::kFloat32);
  const at::Tensor bias = torch::from_blob(b.data(), {head.classes}, torch::kFloat32);
  save_finetuned_model(backbone, weight, bias, spec, path);
}

}  // namespace tlkit::model::finetune_detail

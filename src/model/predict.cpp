// tlkit predict (include/tlkit/model/predict.h): a classifier's top-K classes per sample.
#include "tlkit/model/predict.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "tlkit/core/error.h"

namespace tlkit::model {
namespace fs = std::filesystem;

namespace {

// What tlkit finetune's model.pt stores beside its weights (finetune_export.h).
struct ModelInfo {
  bool finetuned = false;  // has a class_names attribute
  std::vector<std::string> class_names;
  int input_size = 0;
  std::int64_t classes = -1;  // rows of head_bias (-1: unknown before running)
};

ModelInfo read_model_info(const std::string& path) {
  ModelInfo info;
  std::error_code ec;
  TLKIT_CHECK_ARG(fs::is_regular_file(path, ec), "{}: no such model file", path);
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto* c10e = dynamic_cast<const c10::Error*>(&e))
      msg = c10e->what_without_backtrace();
    const auto nl = msg.find('\n');
    TLKIT_THROW_ARG("{}: not a loadable TorchScript model: {}", path, msg.substr(0, nl));
  }
  if (m.hasattr("class_names") && m.attr("class_names").isList()) {
    info.finetuned = true;
    for (const auto& v : m.attr("class_names").toListRef())
      if (v.isString()) info.class_names.push_back(v.toStringRef());
  }
  if (m.hasattr("input_size") && m.attr("input_size").isInt())
    info.input_size = static_cast<int>(m.attr("input_size").toInt());
  if (m.hasattr("head_bias") && m.attr("head_bias").isTensor())
    info.classes = m.attr("head_bias").toTensor().size(0);
  return info;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string PredictResult::class_name(std::int64_t c) const {
  return c >= 0 && c < static_cast<std::int64_t>(class_names.size())
             ? class_names[static_cast<std::size_t>(c)]
             : std::to_string(c);
}

std::string PredictResult::label_name(std::size_t i) const {
  const std::int64_t y = extract.samples[i].label;
  const auto& names = extract.listing.classes;
  return y >= 0 && y < static_cast<std::int64_t>(names.size()) ? names[static_cast<std::size_t>(y)]
                                                               : std::to_string(y);
}

PredictResult predict(const PredictOptions& options) {
  ExtractOptions eo = options.extract;
  TLKIT_CHECK_ARG(options.top_k >= 0, "--top-k {}: must be >= 1", options.top_k);
  const ModelInfo info = read_model_info(eo.model);
  if (info.classes >= 0)
    TLKIT_CHECK_ARG(options.top_k <= info.classes,
                    "--top-k {}: {} has {} classes; give --top-k {} or less", options.top_k,
                    eo.model, info.classes, info.classes);
  if (eo.input_size == 0) eo.input_size = info.input_size;
  if (eo.model_options.logits_output == kAutoOutput && info.finetuned)
    eo.model_options.logits_output = 1;

  PredictResult r;
  r.extract = extract_features(eo);
  const ExtractResult& x = r.extract;
  TLKIT_CHECK_ARG(x.has_logits,
                  "{}: the model returns no logits (forward gives its features only, or "
                  "--logits-output none); predict needs forward -> (features, logits), e.g. the "
                  "model.pt of tlkit finetune, or --logits-output I naming the logits' output",
                  eo.model);
  r.classes = x.logits_dim;
  TLKIT_CHECK_ARG(options.top_k <= r.classes,
                  "--top-k {}: {} has {} classes (logits per sample); give --top-k {} or less",
                  options.top_k, eo.model, r.classes, r.classes);
  r.top_k =
      options.top_k > 0 ? options.top_k : static_cast<int>(std::min<std::int64_t>(5, r.classes));
  if (static_cast<std::int64_t>(info.class_names.size()) == r.classes)
    r.class_names = info.class_names;

  // Softmax in double, then the K largest (lowest index first on ties).
  const auto k = static_cast<std::size_t>(r.top_k);
  const auto c = static_cast<std::size_t>(r.classes);
  const auto n = static_cast<std::size_t>(x.n);
  r.top.resize(n * k);
  r.prob.resize(n * k);
  std::vector<double> p(c);
  std::vector<std::int64_t> idx(c);
  for (std::size_t i = 0; i < n; ++i) {
    const float* l = x.logits.data() + i * c;
    const double mx = *std::max_element(l, l + c);
    double sum = 0.0;
    for (std::size_t j = 0; j < c; ++j) sum += p[j] = std::exp(static_cast<double>(l[j]) - mx);
    for (auto& v : p) v /= sum;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(
        idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
        [&](std::int64_t a, std::int64_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    for (std::size_t j = 0; j < k; ++j) {
      r.top[i * k + j] = idx[j];
      r.prob[i * k + j] = p[static_cast<std::size_t>(idx[j])];
    }
  }

  // The data's labels as logits columns.
  const auto& data_names = x.listing.classes;
  const bool by_name = !r.class_names.empty() && !data_names.empty();
  std::set<std::string> unknown;
  r.target.assign(n, -1);
  std::int64_t top1 = 0, topk = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t y = x.samples[i].label;
    std::int64_t t = -1;
    if (by_name) {
      const std::string name = r.label_name(i);
      const auto it = std::find(r.class_names.begin(), r.class_names.end(), name);
      if (it != r.class_names.end())
        t = it - r.class_names.begin();
      else
        unknown.insert(name);
    } else if (y >= 0 && y < r.classes) {
      t = y;
    } else {
      unknown.insert(r.label_name(i));
    }
    r.target[i] = t;
    if (t < 0) continue;
    ++r.scored;
    top1 += r.top[i * k] == t;
    for (std::size_t j = 0; j < k; ++j) topk += r.top[i * k + j] == t;
  }
  if (r.scored > 0) {
    r.accuracy = 100.0 * static_cast<double>(top1) / static_cast<double>(r.scored);
    r.top_k_accuracy = 100.0 * static_cast<double>(topk) / static_cast<double>(r.scored);
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    r.notes.push_back(fmt::format(
        "{} of {} samples have labels the model does not know ({}): the accuracy counts the "
        "other {}",
        x.n - r.scored, x.n, list, r.scored));
  }
  return r;
}

std::string predictions_csv(const PredictResult& r) {
  std::string s = "file,label";
  for (int j = 1; j <= r.top_k; ++j) s += fmt::format(",class_{},prob_{}", j, j);
  s += '\n';
  const auto k = static_cast<std::size_t>(r.top_k);
  for (std::size_t i = 0; i < r.extract.samples.size(); ++i) {
    const auto& smp = r.extract.samples[i];
    s += csv_field(smp.name) + "," + csv_field(r.label_name(i));
    for (std::size_t j = 0; j < k; ++j)
      s += fmt::format(",{},{:.6f}", csv_field(r.class_name(r.top[i * k + j])), r.prob[i * k + j]);
    s += '\n';
  }
  return s;
}

}  // namespace tlkit::model

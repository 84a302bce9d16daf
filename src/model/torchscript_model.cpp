// TorchScript models for feature extraction. The only TU of tlkit::model that includes
// <torch/script.h> (about 12 s and 0.7 GB to compile).
#include "tlkit/model/torchscript_model.h"

#include <torch/script.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "tlkit/core/error.h"
#include "torch_device.h"
#include "torchscript_optimize.h"

namespace tlkit::model {

namespace detail {

torch::jit::Module default_optimize(const torch::jit::Module& loaded, Optimization o) {
  torch::jit::Module m = torch::jit::freeze(loaded);
  if (o == Optimization::kFull) m = torch::jit::optimize_for_inference(m);
  return m;
}

namespace {
OptimizeFunction optimize_function = nullptr;  // nullptr: default_optimize
}  // namespace

OptimizeFunction set_optimize_function(OptimizeFunction f) {
  const OptimizeFunction previous = optimize_function;
  optimize_function = f;
  return previous;
}

}  // namespace detail

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One line from a LibTorch error: TorchScript interpreter errors carry a TorchScript traceback
// and end with "<Error>: <message>"; operator errors start with the message.
std::string one_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  const std::string msg = c10e ? c10e->what_without_backtrace() : e.what();
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= msg.size()) {
    std::size_t end = msg.find('\n', start);
    if (end == std::string::npos) end = msg.size();
    std::string line = msg.substr(start, end - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  if (lines.empty()) return "unknown error";
  const bool traceback = msg.find("Traceback of TorchScript") != std::string::npos ||
                         msg.find("The following operation failed") != std::string::npos;
  return traceback ? lines.back() : lines.front();
}

std::string shape_string(const at::Tensor& t) {
  std::string s = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

const char* to_string(Optimization o) {
  switch (o) {
    case Optimization::kNone:
      return "none";
    case Optimization::kFreeze:
      return "freeze";
    case Optimization::kFull:
      return "full";
  }
  return "?";
}

Optimization parse_optimization(const std::string& s) {
  if (s == "none") return Optimization::kNone;
  if (s == "freeze") return Optimization::kFreeze;
  if (s == "full") return Optimization::kFull;
  TLKIT_THROW_ARG("--optimize {}: expected none, freeze or full", s);
}

const char* to_string(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kAuto:
      return "auto";
  }
  return "?";
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::kFp32;
  if (s == "bf16") return Precision::kBf16;
  if (s == "auto") return Precision::kAuto;
  TLKIT_THROW_ARG("--precision {}: expected fp32, bf16 or auto", s);
}

// Collects LibTorch's warnings (TORCH_WARN) while a model runs, instead of LibTorch printing them
// to stderr through glog; they become notes of the run. LibTorch 2.0 made the warning one
// c10::Warning object and moved the guard to c10::WarningUtils.
class WarningCollector : public c10::WarningHandler {
 public:
#if TLKIT_TORCH_AT_LEAST(2, 0)
  void process(const c10::Warning& w) override { add(w.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    add(msg);
  }
#endif
  void add(const std::string& msg) {
    std::lock_guard<std::mutex> lk(mu_);
    const std::string line = msg.substr(0, msg.find('\n'));
    if (seen_.insert(line).second && seen_.size() <= 5) lines_.push_back(line);
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lk(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> seen_;
  std::vector<std::string> lines_;
};

#if TLKIT_TORCH_AT_LEAST(2, 0)
using WarningGuard = c10::WarningUtils::WarningHandlerGuard;
#else
using WarningGuard = c10::Warning::WarningHandlerGuard;
#endif

struct Selected {
  at::Tensor features;
  at::Tensor logits;  // undefined when there are none
};

struct TorchScriptModel::Impl {
  std::string path;
  ModelOptions options;
  c10::Device device = c10::kCPU;  // options.device
  torch::jit::Module loaded;       // as loaded, in eval mode
  torch::jit::Module optimized;    // what forward runs while `applied` is not kNone
  Optimization applied = Optimization::kNone;
  bool check = false;  // compare with `loaded` on the first batch of each shape (for kFull)
  std::set<std::array<std::int64_t, 3>> verified;  // input shapes checked against `loaded`
  std::vector<std::string> notes;
  WarningCollector warnings;
  double load_s = 0.0;
  double optimize_s = 0.0;
  ModelRecord record;
  bool output_checked = false;                       // the single-output check below ran
  detail::OptimizeFunction optimize_step = nullptr;  // set at construction; nullptr: the default
  Precision precision = Precision::kFp32;  // what forward runs now (kAuto: not decided yet)
  PrecisionCheck precision_check;

  // `input` describes the batch in messages ("an input of shape [8, 3, 32, 32]", "8 texts").
  at::Tensor output(const c10::IValue& out, int index, bool required, std::int64_t n,
                    const char* what, const std::string& input) const;
  Selected select(const c10::IValue& out, std::int64_t n, const std::string& input);
  Selected run(torch::jit::Module& m, const c10::IValue& input, std::int64_t n,
               const std::string& described, bool bf16 = false);
  // Runs what forward runs now in float32; for kFull, the first batch of each `key` is checked
  // against the module as loaded (see forward_fp32()).
  Selected forward_fp32(const c10::IValue& input, std::int64_t n,
                        const std::array<std::int64_t, 3>& key, const std::string& described);
  // The module forward runs now: the optimised one unless `applied` fell back to kNone.
  torch::jit::Module& current() { return applied == Optimization::kNone ? loaded : optimized; }
  // forward_fp32, or bfloat16 per `precision` (kAuto: decided on this batch).
  Selected forward(const c10::IValue& input, std::int64_t n, const std::array<std::int64_t, 3>& key,
                   const std::string& described);
  void optimize(Optimization o);
  std::string mismatch(const Selected& ref, const Selected& got) const;
};

void TorchScriptModel::Impl::optimize(Optimization o) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    optimized = (optimize_step ? optimize_step : detail::default_optimize)(loaded, o);
    applied = o;
  } catch (const std::exception& e) {
    notes.push_back(fmt::format("--optimize {} failed ({}): running the model {}", to_string(o),
                                one_line(e), o == Optimization::kFull ? "frozen" : "as loaded"));
    if (o == Optimization::kFull)
      optimize(Optimization::kFreeze);
    else
      applied = Optimization::kNone;
  }
  optimize_s += seconds_since(t0);
}

TorchScriptModel::TorchScriptModel(const std::string& path, const ModelOptions& options)
    : impl_(std::make_unique<Impl>()) {
  TLKIT_CHECK_ARG(options.features_output >= 0, "--features-output must be >= 0, got {}",
                  options.features_output);
  TLKIT_CHECK_ARG(options.logits_output >= kAutoOutput,
                  "--logits-output must be an index >= 0, auto or none, got {}",
                  options.logits_output);
  std::error_code ec;
  TLKIT_CHECK_ARG(std::filesystem::is_regular_file(path, ec), "{}: no such model file", path);
  TLKIT_CHECK_ARG(options.precision_tolerance >= 0 && std::isfinite(options.precision_tolerance),
                  "--precision-tolerance must be a finite number >= 0, got {}",
                  options.precision_tolerance);
  check_device(options.device);
  impl_->path = path;
  impl_->options = options;
  impl_->device = to_torch(options.device);
  impl_->precision = options.precision;
  impl_->precision_check.tolerance = options.precision_tolerance;
  const auto t0 = std::chrono::steady_clock::now();
  WarningGuard guard(&impl_->warnings);
  torch::jit::ExtraFilesMap extra{{"tlkit.json", ""}};
  try {
    impl_->loaded = torch::jit::load(path, impl_->device, extra);
  } catch (const std::exception& e) {
    const std::string msg = one_line(e);
    // torch.save writes a zip with data.pkl but none of TorchScript's constants.pkl and code.
    if (msg.find("constants.pkl") != std::string::npos)
      TLKIT_THROW_ARG(
          "{}: not a loadable TorchScript model: it is a torch.save file (a state_dict or a "
          "pickled nn.Module: weights without runnable code), which LibTorch cannot run. Export "
          "TorchScript in Python, e.g. torch.jit.trace(model.eval(), torch.rand(1, 3, S, S))"
          ".save('model.pt') with forward returning (features, logits); "
          "tools/export_torchvision.py does it for torchvision models (docs/extract.md)",
          path);
    TLKIT_THROW_ARG(
        "{}: not a loadable TorchScript model: {} (tlkit runs TorchScript files saved by "
        "torch.jit.save; docs/extract.md says how to export one)",
        path, msg);
  }
  if (!extra["tlkit.json"].empty()) {
    const nlohmann::json j = nlohmann::json::parse(extra["tlkit.json"], nullptr, false);
    TLKIT_CHECK_ARG(j.is_object(), "{}: its tlkit.json is not a JSON object", path);
    const auto read = [&](const char* key, std::int64_t* out) {
      if (!j.contains(key)) return;
      TLKIT_CHECK_ARG(j[key].is_number_integer() && j[key].get<std::int64_t>() > 0,
                      "{}: tlkit.json field {} must be a positive integer, got {}", path, key,
                      j[key].dump());
      *out = j[key].get<std::int64_t>();
    };
    std::int64_t size = 0;
    read("input_size", &size);
    TLKIT_CHECK_ARG(size <= 8192, "{}: tlkit.json field input_size {} is too large", path, size);
    impl_->record.input_size = static_cast<int>(size);
    read("feature_dim", &impl_->record.feature_dim);
    read("logits_dim", &impl_->record.logits_dim);
  }
  impl_->loaded.eval();
  if (options.channels_last) {
    // Before freezing, so that the folded constants keep the format.
    torch::NoGradGuard no_grad;
    for (at::Tensor p : impl_->loaded.parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    for (at::Tensor b : impl_->loaded.buffers())
      if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
  }
  TLKIT_CHECK_ARG(impl_->loaded.find_method("forward").has_value(),
                  "{}: the TorchScript module has no forward method", path);
  impl_->load_s = seconds_since(t0);
  Optimization o = options.optimization;
  if (o == Optimization::kFull && options.precision != Precision::kFp32) {
    // Measured: bf16 under full gave cifar10_resnet32's float32 features bit for bit.
    impl_->notes.push_back(fmt::format(
        "--precision {} with --optimize full: the oneDNN operators of optimize_for_inference run "
        "outside autocast (in float32), so the model runs frozen (--optimize freeze)",
        to_string(options.precision)));
    o = Optimization::kFreeze;
  }
  impl_->check = o == Optimization::kFull;
  impl_->optimize_step = detail::optimize_function;
  if (o != Optimization::kNone) impl_->optimize(o);
}

TorchScriptModel::~TorchScriptModel() = default;
TorchScriptModel::TorchScriptModel(TorchScriptModel&&) noexcept = default;
TorchScriptModel& TorchScriptModel::operator=(TorchScriptModel&&) noexcept = default;

at::Tensor TorchScriptModel::Impl::output(const c10::IValue& out, int index, bool required,
                                          std::int64_t n, const char* what,
                                          const std::string& input) const {
  std::vector<c10::IValue> elements;
  if (out.isTuple())
    elements = out.toTupleRef().elements().vec();
  else if (out.isList())
    elements = out.toListRef().vec();
  else
    elements = {out};
  const bool single = !out.isTuple() && !out.isList();
  if (index >= static_cast<int>(elements.size())) {
    if (!required) return {};
    TLKIT_THROW_ARG(
        "{}: --{}-output {} but forward returns {}", path, what, index,
        single ? "one tensor (use index 0)"
               : fmt::format("{} outputs (indices 0..{})", elements.size(), elements.size() - 1));
  }
  const c10::IValue& v = elements[static_cast<std::size_t>(index)];
  if (!v.isTensor()) {
    if (!required) return {};
    TLKIT_THROW_ARG("{}: output {} ({}) is a {}, not a tensor", path, index, what, v.tagKind());
  }
  at::Tensor t = v.toTensor();
  if (t.is_mkldnn()) t = t.to_dense();
  TLKIT_CHECK_ARG(t.is_floating_point(), "{}: output {} ({}) has dtype {}, expected floating point",
                  path, index, what, std::string(c10::toString(t.scalar_type())));
  TLKIT_CHECK_ARG(t.dim() >= 1 && t.size(0) == n,
                  "{}: output {} ({}) has shape {} for {}: its first dimension must be the "
                  "batch size {}",
                  path, index, what, shape_string(t), input, n);
  t = t.reshape({n, -1});
  TLKIT_CHECK_ARG(t.size(1) > 0, "{}: output {} ({}) has no values per image (shape {})", path,
                  index, what, shape_string(v.toTensor()));
  return t.to(torch::kFloat32).contiguous();
}

namespace {

// The last Linear layer of `m` in module order (its name and output width), or {"", 0}.
std::pair<std::string, std::int64_t> last_linear(const torch::jit::Module& m) {
  std::pair<std::string, std::int64_t> found{"", 0};
  for (const auto& child : m.named_modules()) {
    const auto type = child.value.type()->name();
    if (!type || type->name() != "Linear" || !child.value.hasattr("weight")) continue;
    const c10::IValue w = child.value.attr("weight");
    if (w.isTensor() && w.toTensor().dim() == 2) found = {child.name, w.toTensor().size(0)};
  }
  return found;
}

}  // namespace

Selected TorchScriptModel::Impl::select(const c10::IValue& out, std::int64_t n,
                                        const std::string& input) {
  Selected s;
  s.features = output(out, options.features_output, true, n, "features", input);
  if (!output_checked) {
    output_checked = true;
    // One tensor whose width is the output width of the model's last Linear layer: a plain
    // classifier (torch.jit.script(resnet18)), whose logits would be scored as features.
    const auto [name, width] = last_linear(loaded);
    if (!out.isTuple() && !out.isList() && width == s.features.size(1))
      notes.push_back(fmt::format(
          "forward returns one tensor of width {}, the output width of the model's last Linear "
          "layer '{}': these look like a classifier's logits, not the pooled features the "
          "contract wants (forward(x) -> (features, logits)); tlkit takes them as the features. "
          "Export the features too (tools/export_torchvision.py, docs/extract.md)",
          width, name.empty() ? "(top)" : name));
  }
  if (options.logits_output == kAutoOutput) {
    if (out.isTuple() || out.isList()) s.logits = output(out, 1, false, n, "logits", input);
  } else if (options.logits_output >= 0) {
    s.logits = output(out, options.logits_output, true, n, "logits", input);
  }
  return s;
}

Selected TorchScriptModel::Impl::run(torch::jit::Module& m, const c10::IValue& input,
                                     std::int64_t n, const std::string& described, bool bf16) {
  c10::IValue out;
  try {
    AutocastBf16 autocast(device.type(), bf16);
    out = m.forward({input});
  } catch (const std::exception& e) {
    const std::string msg = one_line(e);
    if (msg.find("allocate memory") != std::string::npos ||
        msg.find("out of memory") != std::string::npos)
      throw std::runtime_error(fmt::format("{}: forward: {}", path, msg));
    // A size or shape complaint on an image batch: most likely the wrong --input-size.
    std::string lower = msg;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool image =
        described.rfind("an input of shape", 0) == 0 &&
        (lower.find("size") != std::string::npos || lower.find("shape") != std::string::npos);
    TLKIT_THROW_ARG("{}: forward failed on {}: {}{}", path, described, msg,
                    image ? " (is --input-size the size this model expects?)" : "");
  }
  return select(out, n, described);
}

// Empty when `got` matches `ref`: |got - ref| <= 1e-3 |ref| + 1e-4 max|ref| element-wise (freezing
// and oneDNN change float32 rounding, about 1e-6 relative; a wrong optimisation is far off).
std::string TorchScriptModel::Impl::mismatch(const Selected& ref, const Selected& got) const {
  const std::pair<const char*, std::pair<at::Tensor, at::Tensor>> pairs[] = {
      {"features", {ref.features, got.features}}, {"logits", {ref.logits, got.logits}}};
  for (const auto& [what, t] : pairs) {
    const auto& [a, b] = t;
    if (a.defined() != b.defined()) return fmt::format("{} present in one only", what);
    if (!a.defined()) continue;
    if (a.sizes() != b.sizes())
      return fmt::format("{} of shape {} instead of {}", what, shape_string(b), shape_string(a));
    const double scale = a.abs().nan_to_num(0.0, 0.0, 0.0).max().item<double>();
    if (!torch::allclose(b, a, 1e-3, 1e-4 * scale, /*equal_nan=*/true))
      return fmt::format("{} differ by up to {:.3g} (largest value {:.3g})", what,
                         (b - a).abs().nan_to_num(INFINITY).max().item<double>(), scale);
  }
  return {};
}

Selected TorchScriptModel::Impl::forward_fp32(const c10::IValue& input, std::int64_t n,
                                              const std::array<std::int64_t, 3>& key,
                                              const std::string& described) {
  if (applied == Optimization::kNone || !check || verified.count(key))
    return run(current(), input, n, described);
  // The first batch of each shape runs both modules and compares them: LibTorch 1.13's
  // optimize_for_inference computes wrong features for some models on some processors
  // (docs/extract.md). After a fallback to kFreeze, the frozen module is compared the same way.
  const Selected ref = run(loaded, input, n, described);
  Selected s;
  while (applied != Optimization::kNone) {
    std::string why;
    try {
      s = run(optimized, input, n, described);
      why = mismatch(ref, s);
    } catch (const std::exception& e) {
      why = fmt::format("it failed: {}", e.what());
    }
    if (why.empty()) break;
    notes.push_back(fmt::format(
        "--optimize {}: the optimised model disagrees with the model as loaded on {} ({}); "
        "running it {}",
        to_string(applied), described, why,
        applied == Optimization::kFull ? "frozen only" : "as loaded"));
    if (applied == Optimization::kFull) {
      verified.clear();
      optimize(Optimization::kFreeze);
    } else {
      applied = Optimization::kNone;
    }
  }
  if (applied == Optimization::kNone) return ref;
  verified.insert(key);
  return s;
}

Selected TorchScriptModel::Impl::forward(const c10::IValue& input, std::int64_t n,
                                         const std::array<std::int64_t, 3>& key,
                                         const std::string& described) {
  if (precision == Precision::kFp32) return forward_fp32(input, n, key, described);
  if (precision == Precision::kBf16) {
    // The --optimize full check compares float32 runs (bfloat16 rounding would fail it).
    if (check && applied != Optimization::kNone && !verified.count(key))
      forward_fp32(input, n, key, described);
    return run(current(), input, n, described, true);
  }
  // kAuto: the first batch runs both and decides for the rest of the run.
  Selected ref = forward_fp32(input, n, key, described);
  Selected low = run(current(), input, n, described, true);
  const at::Tensor a = ref.features.to(torch::kFloat64);
  const at::Tensor b = low.features.to(torch::kFloat64);
  const double ref_norm = a.norm().item<double>();
  const double diff_norm = (b - a).norm().item<double>();
  double rel = ref_norm > 0 ? diff_norm / ref_norm : (diff_norm == 0 ? 0.0 : INFINITY);
  if (!std::isfinite(rel)) rel = INFINITY;
  const at::Tensor dots = (a * b).sum(1);
  const at::Tensor norms = a.norm(2, 1) * b.norm(2, 1);
  // Rows that are zero in both count as identical.
  const at::Tensor cos =
      torch::where(norms > 0, dots / norms.clamp_min(1e-300), torch::ones_like(dots));
  PrecisionCheck& c = precision_check;
  c.measured = true;
  c.relative_error = rel;
  c.min_cosine = cos.nan_to_num(-1.0).min().item<double>();
  c.tolerance = options.precision_tolerance;
  c.chosen = rel <= options.precision_tolerance ? Precision::kBf16 : Precision::kFp32;
  precision = c.chosen;
  notes.push_back(fmt::format(
      "--precision auto: bf16 features differ from fp32 by {:.4g} (relative Frobenius norm, "
      "first batch of {}; smallest row cosine similarity {:.6f}), tolerance {:.4g}: running {}",
      rel, n, c.min_cosine, c.tolerance, to_string(precision)));
  return precision == Precision::kBf16 ? low : ref;
}

namespace {

// The outputs as float32 on the CPU (from a device: a blocking copy, after which the input batch
// has been read).
ModelOutputs to_outputs(const Selected& s, std::int64_t n) {
  ModelOutputs r;
  r.n = n;
  const at::Tensor f = to_host(s.features);
  r.features_dim = f.size(1);
  r.features.assign(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  if (s.logits.defined()) {
    const at::Tensor l = to_host(s.logits);
    r.has_logits = true;
    r.logits_dim = l.size(1);
    r.logits.assign(l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
  }
  return r;
}

}  // namespace

ModelOutputs TorchScriptModel::forward(const float* nchw, std::int64_t n, int height, int width) {
  TLKIT_CHECK_ARG(n > 0 && height > 0 && width > 0, "forward on an empty batch [{}, 3, {}, {}]", n,
                  height, width);
  Impl& m = *impl_;
  c10::InferenceMode inference;
  WarningGuard warnings(&m.warnings);
  const at::Tensor host =
      torch::from_blob(const_cast<float*>(nchw), {n, 3, height, width}, torch::kFloat32);
  const at::Tensor input = to_device(host, m.device, m.options.channels_last);
  return to_outputs(m.forward(input, n, {n, height, width},
                              fmt::format("an input of shape [{}, 3, {}, {}]", n, height, width)),
                    n);
}

ModelOutputs TorchScriptModel::forward_texts(const std::vector<std::string>& texts) {
  const auto n = static_cast<std::int64_t>(texts.size());
  TLKIT_CHECK_ARG(n > 0, "forward on an empty batch of texts");
  Impl& m = *impl_;
  TLKIT_CHECK_ARG(m.device.is_cpu(),
                  "{}: --device {}: text models build their input tensors inside forward, on the "
                  "CPU; use --device cpu",
                  m.path, to_string(m.options.device));
  c10::InferenceMode inference;
  WarningGuard warnings(&m.warnings);
  c10::List<std::string> input;
  input.reserve(texts.size());
  for (const std::string& t : texts) input.push_back(t);
  return to_outputs(m.forward(input, n, {n, -1, -1}, fmt::format("a batch of {} texts", n)), n);
}

std::vector<std::string> TorchScriptModel::notes() const {
  std::vector<std::string> v = impl_->notes;
  for (const auto& w : impl_->warnings.lines()) v.push_back("LibTorch warning: " + w);
  return v;
}

const std::string& TorchScriptModel::path() const { return impl_->path; }
const ModelOptions& TorchScriptModel::options() const { return impl_->options; }
const ModelRecord& TorchScriptModel::record() const { return impl_->record; }
Optimization TorchScriptModel::optimization() const { return impl_->applied; }
Precision TorchScriptModel::precision() const { return impl_->precision; }
const PrecisionCheck& TorchScriptModel::precision_check() const { return impl_->precision_check; }
double TorchScriptModel::load_seconds() const { return impl_->load_s; }
double TorchScriptModel::optimize_seconds() const { return impl_->optimize_s; }

}  // namespace tlkit::model

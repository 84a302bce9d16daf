// B-Tuning (btuning.h; tlkit/model/btuning.h): teacher choice, LogME weights, pi, their storage in
// <out>/btuning/, and the distillation term.
#include "btuning.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "finetune_blocks.h"
#include "sha256.h"
#include "tlkit/core/error.h"
#include "tlkit/core/logme.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/btuning.h"
#include "tlkit/model/image_dataset.h"

namespace tlkit::model {

std::vector<double> btuning_pi(const std::vector<double>& scores, double temperature) {
  TLKIT_CHECK_ARG(!scores.empty(), "B-Tuning: no teacher scores");
  TLKIT_CHECK_ARG(temperature > 0 && std::isfinite(temperature),
                  "--btuning-temperature {}: must be > 0", temperature);
  double top = -std::numeric_limits<double>::infinity();
  for (const double s : scores) {
    TLKIT_CHECK_ARG(std::isfinite(s), "B-Tuning: a teacher's LogME score is {}", s);
    top = std::max(top, s);
  }
  std::vector<double> pi(scores.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    sum += pi[i] = std::exp((scores[i] - top) / temperature);
  for (double& p : pi) p /= sum;
  return pi;
}

namespace finetune_detail {
namespace fs = std::filesystem;

namespace {

at::Tensor channel_tensor(const std::vector<float>& v, const at::Tensor& like) {
  return torch::tensor(std::vector<float>(v.begin(), v.end()), torch::kFloat32)
      .to(like.device())
      .view({1, 3, 1, 1});
}

std::string zoo_names(const ZooManifest& zoo) {
  std::string s;
  for (const auto& m : zoo.models) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

// Features of `module` (eval mode, no gradients) for the training images as model_input feeds them.
at::Tensor training_features(const std::function<at::Tensor(const at::Tensor&)>& forward,
                             const Split& train, int s, int batch, torch::Device device) {
  torch::NoGradGuard ng;
  const std::int64_t item = 3LL * s * s;
  std::vector<at::Tensor> parts;
  for (std::int64_t b = 0; b < train.n(); b += batch) {
    const std::int64_t cnt = std::min<std::int64_t>(batch, train.n() - b);
    at::Tensor x = torch::from_blob(const_cast<float*>(train.images.data()) + b * item,
                                    {cnt, 3, s, s}, torch::kFloat32)
                       .to(device);
    parts.push_back(forward(x).to(torch::kCPU, torch::kFloat32).contiguous());
  }
  return torch::cat(parts, 0).contiguous();
}

// LogME of features [N, D] on the training labels, and the C x D weights (rows of classes absent
// from the split stay 0).
struct Fit {
  double score = 0.0;
  std::vector<double> weights;  // C x D row-major
  std::int64_t d = 0;
};
Fit fit_logme(const at::Tensor& f, const std::vector<std::int64_t>& labels, std::int64_t classes) {
  const std::int64_t n = f.size(0), d = f.size(1);
  const FeatureView view = FeatureView::row_major(f.data_ptr<float>(), n, d);
  const LabelView lv{labels.data(), static_cast<std::int64_t>(labels.size())};
  const LogmeResult r = logme(view, lv);
  const std::vector<double> w = logme_weights(view, lv, r);
  Fit out;
  out.score = r.score;
  out.d = d;
  out.weights.assign(static_cast<std::size_t>(classes * d), 0.0);
  for (std::size_t k = 0; k < r.labels.size(); ++k) {
    const std::int64_t c = r.labels[k];
    if (c < 0 || c >= classes) continue;
    std::copy_n(w.data() + static_cast<std::int64_t>(k) * d, d, out.weights.data() + c * d);
  }
  return out;
}

at::Tensor weights_tensor(const std::vector<double>& w, std::int64_t c, std::int64_t d,
                          torch::Device device) {
  return torch::from_blob(const_cast<double*>(w.data()), {c, d}, torch::kFloat64)
      .to(device, torch::kFloat32)
      .contiguous();
}

std::vector<double> read_weights(const std::string& path, std::int64_t c, std::int64_t d) {
  const NpyArray a = load_npy(path);
  TLKIT_CHECK_ARG(a.header().shape.size() == 2 && a.rows() == c && a.cols() == d &&
                      a.header().type == NpyType::kFloat64,
                  "{}: expected float64 weights of shape ({}, {}) (delete the btuning folder "
                  "to recompute them)",
                  path, c, d);
  const auto* p = static_cast<const double*>(a.data());
  return std::vector<double>(p, p + c * d);
}

// A teacher, loaded onto the training device (the map location: its weights land there).
torch::jit::Module load_teacher(const ZooModel& z, torch::Device device) {
  try {
    torch::jit::Module m = torch::jit::load(z.file, device);
    m.eval();
    return m;
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("--teachers: {} ({}): cannot load the TorchScript model: {}",
                                 z.file, z.name, one_line(e)));
  }
}

}  // namespace

at::Tensor model_input(const at::Tensor& x, const std::vector<float>& s_mean,
                       const std::vector<float>& s_std, int size, const std::vector<float>& t_mean,
                       const std::vector<float>& t_std) {
  at::Tensor u = x;
  if (!s_mean.empty()) u = u * channel_tensor(s_std, x) + channel_tensor(s_mean, x);
  const std::int64_t s = x.size(2);
  if (size != s) {
    namespace F = torch::nn::functional;
    u = F::interpolate(u, F::InterpolateFuncOptions()
                              .size(std::vector<std::int64_t>{size, size})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(size < s));
  }
  if (!t_mean.empty()) u = (u - channel_tensor(t_mean, u)) / channel_tensor(t_std, u);
  return u;
}

BTuning::BTuning(std::vector<Teacher> teachers, std::vector<double> pi, at::Tensor student_weights,
                 double tradeoff, std::vector<float> s_mean, std::vector<float> s_std)
    : teachers_(std::move(teachers)),
      pi_(std::move(pi)),
      student_weights_(std::move(student_weights)),
      tradeoff_(tradeoff),
      s_mean_(std::move(s_mean)),
      s_std_(std::move(s_std)) {
  TLKIT_CHECK_ARG(!teachers_.empty() && pi_.size() == teachers_.size(),
                  "B-Tuning: {} teachers and {} weights pi", teachers_.size(), pi_.size());
  for (auto& t : teachers_) t.module.eval();
}

at::Tensor BTuning::target(const at::Tensor& x) {
  torch::NoGradGuard ng;
  at::Tensor sum;
  for (std::size_t i = 0; i < teachers_.size(); ++i) {
    Teacher& t = teachers_[i];
    const at::Tensor in = model_input(x, s_mean_, s_std_, t.input_size, t.mean, t.std);
    const at::Tensor f = select_features(t.module.forward({in}), t.features_output, t.name)
                             .reshape({x.size(0), -1})
                             .to(torch::kFloat32);
    const at::Tensor p = torch::matmul(f, t.weights.t()) * pi_[i];
    sum = sum.defined() ? sum + p : p;
  }
  return sum;
}

at::Tensor BTuning::loss(const at::Tensor& student_features, const at::Tensor& x,
                         const std::int64_t* rows, std::int64_t count) {
  const at::Tensor s = torch::matmul(student_features, student_weights_.t());
  at::Tensor t;
  if (cache_.defined() && rows != nullptr) {
    const at::Tensor idx = torch::from_blob(const_cast<std::int64_t*>(rows), {count}, torch::kInt64)
                               .to(cache_.device());
    t = cache_.index_select(0, idx);
  } else {
    t = target(x);
  }
  return tradeoff_ * torch::nn::functional::mse_loss(s, t.detach());
}

void BTuning::cache_targets(const std::vector<float>& images, std::int64_t n, int s, int batch,
                            torch::Device device) {
  const std::int64_t item = 3LL * s * s;
  std::vector<at::Tensor> parts;
  for (std::int64_t b = 0; b < n; b += batch) {
    const std::int64_t cnt = std::min<std::int64_t>(batch, n - b);
    parts.push_back(target(torch::from_blob(const_cast<float*>(images.data()) + b * item,
                                            {cnt, 3, s, s}, torch::kFloat32)
                               .to(device)));
  }
  cache_ = torch::cat(parts, 0);
}

std::vector<ZooModel> btuning_candidates(const FinetuneOptions& o, bool text) {
  if (o.teachers_zoo.empty()) {
    TLKIT_CHECK_ARG(o.teacher_names.empty(), "--teacher {}: needs --teachers ZOO.json",
                    o.teacher_names.front());
    TLKIT_CHECK_ARG(o.teachers_top == 0, "--teachers-top {}: needs --teachers ZOO.json",
                    o.teachers_top);
    return {};
  }
  TLKIT_CHECK_ARG(!text, "--teachers: B-Tuning needs an image model as the student, {} takes texts",
                  o.model);
  TLKIT_CHECK_ARG(o.teacher_names.empty() || o.teachers_top == 0,
                  "--teacher and --teachers-top exclude each other");
  TLKIT_CHECK_ARG(o.teachers_top >= 0, "--teachers-top {}: must be >= 1", o.teachers_top);
  TLKIT_CHECK_ARG(o.btuning_temperature > 0 && std::isfinite(o.btuning_temperature),
                  "--btuning-temperature {}: must be > 0", o.btuning_temperature);
  TLKIT_CHECK_ARG(o.btuning_tradeoff >= 0 && std::isfinite(o.btuning_tradeoff),
                  "--btuning-tradeoff {}: must be >= 0", o.btuning_tradeoff);
  const ZooManifest zoo = read_zoo_manifest(o.teachers_zoo);
  const std::string student_sha = file_sha256(o.model);
  std::vector<ZooModel> out;
  if (!o.teacher_names.empty()) {
    std::set<std::string> seen;
    for (const auto& name : o.teacher_names) {
      TLKIT_CHECK_ARG(seen.insert(name).second, "--teacher {}: named twice", name);
      const auto it = std::find_if(zoo.models.begin(), zoo.models.end(),
                                   [&](const ZooModel& m) { return m.name == name; });
      TLKIT_CHECK_ARG(it != zoo.models.end(), "--teacher {}: {} has no model of that name ({})",
                      name, o.teachers_zoo, zoo_names(zoo));
      TLKIT_CHECK_ARG(it->kind == "image",
                      "--teacher {}: a {} model cannot teach the image model {}", name, it->kind,
                      o.model);
      TLKIT_CHECK_ARG(file_sha256(it->file) != student_sha,
                      "--teacher {}: {} is the student's own file (a model does not teach itself)",
                      name, it->file);
      out.push_back(*it);
    }
    return out;
  }
  std::vector<std::string> excluded;
  for (const auto& m : zoo.models) {
    if (m.kind != "image") continue;
    if (file_sha256(m.file) == student_sha) {
      excluded.push_back(m.name);
      continue;
    }
    out.push_back(m);
  }
  const int k = o.teachers_top > 0 ? o.teachers_top : 3;
  TLKIT_CHECK_ARG(k <= static_cast<int>(out.size()),
                  "--teachers-top {}: {} has {} image model{} besides the student{} (at most "
                  "--teachers-top {})",
                  k, o.teachers_zoo, out.size(), out.size() == 1 ? "" : "s",
                  excluded.empty() ? "" : fmt::format(" ({} left out)", excluded.front()),
                  out.size());
  return out;
}

BTuningSetup prepare_btuning(const FinetuneOptions& o, const std::vector<ZooModel>& candidates,
                             const Split& train, std::int64_t classes,
                             const std::function<at::Tensor(const at::Tensor&)>& student_features,
                             torch::Device device) {
  const int s = o.input_size;
  const int batch = std::max(1, o.batch);
  const int k = o.teacher_names.empty() ? (o.teachers_top > 0 ? o.teachers_top : 3)
                                        : static_cast<int>(o.teacher_names.size());
  TLKIT_CHECK_ARG(k >= 1 && k <= static_cast<int>(candidates.size()),
                  "B-Tuning: {} teachers wanted from {} candidates", k, candidates.size());
  std::vector<std::int64_t> labels;
  for (const auto& smp : train.samples) labels.push_back(smp.label);

  // What the stored state depends on: the student, the training split and its preprocessing,
  // the candidates (files by content), how teachers are chosen, the temperature.
  json key;
  key["student_sha256"] = file_sha256(o.model);
  key["features_output"] = o.features_output;
  key["train_sha256"] = listing_sha256(train.samples);
  key["input_size"] = s;
  key["mean"] = o.mean;
  key["std"] = o.std;
  key["classes"] = classes;
  key["choice"] = o.teacher_names.empty() ? json(fmt::format("top:{}", k)) : json(o.teacher_names);
  key["temperature"] = o.btuning_temperature;
  json cand = json::array();
  for (const auto& z : candidates)
    cand.push_back({{"name", z.name},
                    {"sha256", file_sha256(z.file)},
                    {"input_size", z.input_size},
                    {"features_output", z.features_output},
                    {"mean", z.mean},
                    {"std", z.std}});
  key["candidates"] = cand;
  const std::string hash = sha256_hex(key.dump());

  const std::string dir = o.out + "/btuning";
  const std::string state_path = dir + "/state.json";
  json state;
  bool reuse = false;
  std::error_code ec;
  if (fs::exists(state_path, ec)) {
    std::ifstream in(state_path);
    const json j = json::parse(in, nullptr, false);
    reuse = !j.is_discarded() && j.value("key_sha256", "") == hash;
    if (reuse) state = j;
  }

  std::vector<std::size_t> chosen;  // indices into candidates
  std::vector<double> scores(candidates.size(), 0.0), pi;
  std::vector<std::vector<double>> weights(candidates.size());
  std::vector<std::int64_t> dims(candidates.size(), 0);
  double student_score = 0.0;
  std::vector<double> student_w;
  std::int64_t student_d = 0;
  if (reuse) {
    student_score = state["student"]["logme"].get<double>();
    student_d = state["student"]["shape"][1].get<std::int64_t>();
    student_w = read_weights(dir + "/student.npy", classes, student_d);
    for (const auto& t : state["teachers"]) {
      const std::string name = t["name"].get<std::string>();
      const auto it = std::find_if(candidates.begin(), candidates.end(),
                                   [&](const ZooModel& z) { return z.name == name; });
      TLKIT_CHECK_ARG(it != candidates.end(), "{}: teacher {} is not a candidate", state_path,
                      name);
      const auto i = static_cast<std::size_t>(it - candidates.begin());
      chosen.push_back(i);
      scores[i] = t["logme"].get<double>();
      dims[i] = t["shape"][1].get<std::int64_t>();
      weights[i] = read_weights(dir + "/" + t["weights"].get<std::string>(), classes, dims[i]);
      pi.push_back(t["pi"].get<double>());
    }
    for (const auto& c : state["candidates"]) {
      const auto it = std::find_if(candidates.begin(), candidates.end(), [&](const ZooModel& z) {
        return z.name == c["name"].get<std::string>();
      });
      if (it != candidates.end())
        scores[static_cast<std::size_t>(it - candidates.begin())] = c["logme"].get<double>();
    }
  } else {
    {
      const at::Tensor f = training_features(student_features, train, s, batch, device);
      const Fit fit = fit_logme(f, labels, classes);
      student_score = fit.score;
      student_w = fit.weights;
      student_d = fit.d;
    }
    std::vector<Fit> fits(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (o.cancelled && o.cancelled()) throw Interrupted("interrupted");
      const ZooModel& z = candidates[i];
      torch::jit::Module m = load_teacher(z, device);
      const auto forward = [&](const at::Tensor& x) {
        const at::Tensor in = model_input(x, o.mean, o.std, z.input_size, z.mean, z.std);
        return select_features(m.forward({in}), z.features_output, z.file).reshape({x.size(0), -1});
      };
      if (o.progress)
        o.progress("btuning logme", static_cast<std::int64_t>(i),
                   static_cast<std::int64_t>(candidates.size()), z.name);
      fits[i] = fit_logme(training_features(forward, train, s, batch, device), labels, classes);
      scores[i] = fits[i].score;
      dims[i] = fits[i].d;
    }
    std::vector<std::size_t> order(candidates.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (o.teacher_names.empty())  // the K best by LogME (ties: zoo order)
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
    chosen.assign(order.begin(), order.begin() + k);
    std::vector<double> chosen_scores;
    for (const std::size_t i : chosen) {
      chosen_scores.push_back(scores[i]);
      weights[i] = fits[i].weights;
    }
    pi = btuning_pi(chosen_scores, o.btuning_temperature);

    fs::create_directories(dir);
    save_npy(dir + "/student.npy", student_w.data(), {classes, student_d});
    state = json::object();
    state["key_sha256"] = hash;
    state["key"] = key;
    state["student"] = {{"model", o.model},
                        {"logme", student_score},
                        {"shape", {classes, student_d}},
                        {"weights", "student.npy"}};
    json ts = json::array();
    for (std::size_t j = 0; j < chosen.size(); ++j) {
      const std::size_t i = chosen[j];
      const std::string file = "teacher_" + candidates[i].name + ".npy";
      save_npy(dir + "/" + file, weights[i].data(), {classes, dims[i]});
      ts.push_back({{"name", candidates[i].name},
                    {"file", candidates[i].file},
                    {"logme", scores[i]},
                    {"pi", pi[j]},
                    {"shape", {classes, dims[i]}},
                    {"weights", file}});
    }
    state["teachers"] = ts;
    json cs = json::array();
    for (std::size_t i = 0; i < candidates.size(); ++i)
      cs.push_back({{"name", candidates[i].name}, {"logme", scores[i]}});
    state["candidates"] = cs;
    write_json(state_path, state);  // last: a state.json names complete weight files
  }

  std::vector<Teacher> teachers;
  for (const std::size_t i : chosen) {
    const ZooModel& z = candidates[i];
    Teacher t;
    t.name = z.name;
    t.module = load_teacher(z, device);
    t.input_size = z.input_size;
    t.features_output = z.features_output;
    t.mean = z.mean;
    t.std = z.std;
    t.weights = weights_tensor(weights[i], classes, dims[i], device);
    teachers.push_back(std::move(t));
  }
  BTuningSetup out;
  out.bt = std::make_unique<BTuning>(std::move(teachers), pi,
                                     weights_tensor(student_w, classes, student_d, device),
                                     o.btuning_tradeoff, o.mean, o.std);
  out.config = {{"state_sha256", hash}, {"tradeoff", o.btuning_tradeoff}};
  out.info = state;
  out.info.erase("key");
  out.info["folder"] = dir;
  out.info["tradeoff"] = o.btuning_tradeoff;
  out.info["temperature"] = o.btuning_temperature;
  out.info["reused"] = reuse;
  return out;
}

}  // namespace finetune_detail
}  // namespace tlkit::model

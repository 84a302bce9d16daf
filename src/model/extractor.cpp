// Feature extraction over an image dataset (no LibTorch or OpenCV headers here: the model and the
// decoder are behind tlkit/model/torchscript_model.h and image_dataset.h).
#include "tlkit/model/extractor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "batch_loader.h"
#include "sha256.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/decoded_images.h"
#include "tlkit/model/runtime.h"
#include "tlkit/model/text_dataset.h"

namespace tlkit::model {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Decoded batches in flight: the one the model runs and two being decoded.
constexpr int kPrefetchBatches = 3;

// Half the cores when the model runs on the CPU too; all but one when it runs on a GPU.
int default_decode_threads(bool cuda) {
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::max(1u, cuda ? cores - (cores > 1) : cores / 2));
}

void append(std::vector<float>& to, const std::vector<float>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

BadImagePolicy parse_bad_image_policy(const std::string& s) {
  if (s == "fail") return BadImagePolicy::kFail;
  if (s == "skip") return BadImagePolicy::kSkip;
  TLKIT_THROW_ARG("--on-bad-image {}: expected skip or fail", s);
}

namespace {

void check_cancelled(const ExtractOptions& o) {
  if (o.cancelled && o.cancelled()) throw Interrupted("interrupted");
}

// Appends one batch's outputs to the result; every batch must have the first batch's shapes.
// What is known of the model's outputs and input size, and from where.
struct Known {
  ModelRecord record;
  std::string source;  // "its tlkit.json", "zoo.json", ...
};

Known known_of(const TorchScriptModel& model, const ExtractOptions& o) {
  Known k;
  const ModelRecord& own = model.record();
  k.record = own;
  k.source = fmt::format("{}'s tlkit.json", model.path());
  const ModelRecord& e = o.expected;
  if (e.input_size || e.feature_dim || e.logits_dim) {
    k.record = e;
    k.source = o.expected_source.empty() ? "the caller" : o.expected_source;
  }
  return k;
}

// The first batch's widths against what is known: a model run at an input size other than its
// own gives outputs of another width (or fails).
void check_widths(const ModelOutputs& out, const TorchScriptModel& model, const Known& k,
                  int input_size) {
  const std::string size =
      input_size > 0 ? fmt::format(" (is --input-size {} the size the model expects?)", input_size)
                     : "";
  TLKIT_CHECK_ARG(!k.record.feature_dim || out.features_dim == k.record.feature_dim,
                  "{}: the features have {} values per sample, but {} says feature_dim {}{}",
                  model.path(), out.features_dim, k.source, k.record.feature_dim, size);
  TLKIT_CHECK_ARG(!k.record.logits_dim || !out.has_logits || out.logits_dim == k.record.logits_dim,
                  "{}: the logits have {} values per sample, but {} says logits_dim {}{}",
                  model.path(), out.logits_dim, k.source, k.record.logits_dim, size);
}

void accept_outputs(const ModelOutputs& out, const TorchScriptModel& model, std::int64_t total,
                    ExtractResult* r) {
  if (r->n == 0) {
    r->features_dim = out.features_dim;
    r->has_logits = out.has_logits;
    r->logits_dim = out.logits_dim;
    r->features.reserve(static_cast<std::size_t>(total * out.features_dim));
    if (out.has_logits) r->logits.reserve(static_cast<std::size_t>(total * out.logits_dim));
  }
  TLKIT_CHECK_ARG(out.features_dim == r->features_dim && out.has_logits == r->has_logits &&
                      out.logits_dim == r->logits_dim,
                  "{}: the outputs changed shape between batches: features {} then {}, "
                  "logits {} then {}",
                  model.path(), r->features_dim, out.features_dim, r->logits_dim, out.logits_dim);
  append(r->features, out.features);
  if (out.has_logits) append(r->logits, out.logits);
  r->n += out.n;
}

void extract_texts(const ImageListing& listing, TorchScriptModel& model, const ExtractOptions& o,
                   const Known& known, ExtractResult* r) {
  const std::vector<ImageSample>& samples = listing.samples;
  const auto total = static_cast<std::int64_t>(samples.size());
  std::vector<std::string> batch;
  for (std::int64_t begin = 0; begin < total; begin += o.batch) {
    check_cancelled(o);
    const std::int64_t end = std::min(total, begin + o.batch);
    batch.clear();
    for (std::int64_t i = begin; i < end; ++i) {
      const ImageSample& sample = samples[static_cast<std::size_t>(i)];
      batch.push_back(sample.text);
      r->samples.push_back(sample);
      r->labels.push_back(sample.label);
    }
    const auto ti = Clock::now();
    const ModelOutputs out = model.forward_texts(batch);
    r->timings.inference_s += seconds_since(ti);
    if (r->n == 0) check_widths(out, model, known, 0);
    accept_outputs(out, model, total, r);
    if (o.progress) o.progress(end, total);
  }
}

// With nothing known of the model, one image at another size shows whether the output widths
// depend on the input size, as a globally pooled network's never do: such a model (a traced
// graph that flattens a fixed-size map) gives features of some width at any size, right only at
// the size it was made for.
void probe_other_size(TorchScriptModel& model, const ModelOutputs& first, int s,
                      std::vector<std::string>* notes) {
  const int other = s + std::max(16, s / 2);
  const std::vector<float> zeros(static_cast<std::size_t>(3) * other * other, 0.5f);
  ModelOutputs out;
  try {
    out = model.forward(zeros.data(), 1, other, other);
  } catch (const std::exception&) {
    return;  // a model made for one size only may refuse others: nothing to learn
  }
  if (out.features_dim == first.features_dim && out.logits_dim == first.logits_dim) return;
  notes->push_back(fmt::format(
      "the output widths change with the input size (features {}, logits {} at --input-size {}; "
      "features {}, logits {} at {}), which a globally pooled model's do not: this model is "
      "right only at the size it was made for, which tlkit cannot check here. Make sure "
      "--input-size {} is that size (a zoo.json entry's feature_dim or a tlkit.json in the model "
      "file lets tlkit check it)",
      first.features_dim, first.logits_dim, s, out.features_dim, out.logits_dim, other, s, s));
}

void extract_images(const ImageListing& listing, TorchScriptModel& model, const ExtractOptions& o,
                    const Known& known, ExtractResult* r) {
  TLKIT_CHECK_ARG(o.input_size > 0,
                  "--input-size is required for image models that do not record their input "
                  "size, got {} (the model's input side S, e.g. 224)",
                  o.input_size);
  TLKIT_CHECK_ARG(o.input_size <= 8192, "--input-size {} is too large (at most 8192)",
                  o.input_size);
  TLKIT_CHECK_ARG(o.mean.size() == o.std.size() && (o.mean.empty() || o.mean.size() == 3),
                  "mean and std must both be given with 3 values (R, G, B), got {} and {}",
                  o.mean.size(), o.std.size());
  for (float v : o.std) TLKIT_CHECK_ARG(v > 0, "std values must be positive, got {}", v);
  const std::vector<ImageSample>& samples = listing.samples;
  const int s = o.input_size;
  const std::int64_t plane = static_cast<std::int64_t>(s) * s;
  const std::int64_t item = 3 * plane;
  const auto total = static_cast<std::int64_t>(samples.size());
  const std::vector<float> mean = o.mean, std = o.std;
  DecodedImageCache* const decoded = o.decoded_images.get();
  std::atomic<std::int64_t> resize_ns{0};
  BatchLoader loader(
      total, o.batch, item, r->decode_threads, kPrefetchBatches,
      [&samples, &mean, &std, s, plane, decoded, &resize_ns](std::int64_t i, float* out) {
        const std::string& path = samples[static_cast<std::size_t>(i)].path;
        std::shared_ptr<const RgbImage> kept;
        RgbImage own;
        if (decoded)
          kept = decoded->get(path);
        else
          own = decode_image(path);
        const auto t0 = Clock::now();
        preprocess_rgb(decoded ? *kept : own, s, out);
        for (std::size_t c = 0; c < mean.size(); ++c) {
          float* p = out + static_cast<std::int64_t>(c) * plane;
          for (std::int64_t k = 0; k < plane; ++k) p[k] = (p[k] - mean[c]) / std[c];
        }
        resize_ns +=
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
      },
      model.options().device);
  for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
    check_cancelled(o);
    auto tw = Clock::now();
    BatchLoader::Batch& batch = loader.wait(b);
    r->timings.wait_s += seconds_since(tw);
    // Move the decoded images to the front of the buffer, in order.
    std::int64_t good = 0;
    for (std::int64_t j = 0; j < batch.size; ++j) {
      const std::string& error = batch.errors[static_cast<std::size_t>(j)];
      const ImageSample& sample = samples[static_cast<std::size_t>(batch.begin + j)];
      if (!error.empty()) {
        if (o.on_bad_image == BadImagePolicy::kFail)
          TLKIT_THROW_ARG("{} (--on-bad-image skip skips such images)", error);
        r->skipped.push_back({sample.path, error});
        continue;
      }
      if (good != j)
        std::memcpy(batch.floats() + good * item, batch.floats() + j * item,
                    static_cast<std::size_t>(item) * sizeof(float));
      r->samples.push_back(sample);
      r->labels.push_back(sample.label);
      ++good;
    }
    if (good > 0) {
      const auto ti = Clock::now();
      const ModelOutputs out = model.forward(batch.floats(), good, s, s);
      r->timings.inference_s += seconds_since(ti);
      if (r->n == 0) {
        check_widths(out, model, known, s);
        // A stated feature width or the model's own record settles it; an input size written in
        // a manifest by hand does not (a zoo entry with a wrong input_size and no feature_dim
        // ranked such a model first).
        if (!known.record.feature_dim && !model.record().input_size)
          probe_other_size(model, out, s, &r->size_notes);
      }
      accept_outputs(out, model, total, r);
    }
    loader.release(b);
    if (o.progress) o.progress(batch.begin + batch.size, total);
  }
  r->timings.resize_s = static_cast<double>(resize_ns.load()) * 1e-9;
  r->timings.decode_s = std::max(0.0, loader.decode_seconds() - r->timings.resize_s);
}

}  // namespace

ExtractResult extract_features(const ImageListing& listing, TorchScriptModel& model,
                               const ExtractOptions& o) {
  TLKIT_CHECK_ARG(o.batch > 0, "--batch must be positive, got {}", o.batch);
  TLKIT_CHECK_ARG(o.threads >= 0, "--threads must be >= 0, got {}", o.threads);
  TLKIT_CHECK_ARG(o.decode_threads >= 0, "--decode-threads must be >= 0, got {}", o.decode_threads);
  TLKIT_CHECK_ARG(!listing.samples.empty(), "{}: no samples to extract features from",
                  listing.source);

  ExtractResult r;
  r.listing = listing;
  r.listed = static_cast<std::int64_t>(listing.samples.size());
  set_torch_threads(o.threads);
  r.threads = torch_threads();
  const bool text = is_text_listing(listing);
  r.decode_threads = text ? 0
                     : o.decode_threads > 0
                         ? o.decode_threads
                         : default_decode_threads(model.options().device.is_cuda());
  const Known known = known_of(model, o);
  ExtractOptions eo = o;
  if (!text) {
    if (eo.input_size == 0) eo.input_size = known.record.input_size;
    TLKIT_CHECK_ARG(!known.record.input_size || eo.input_size == known.record.input_size,
                    "{}: --input-size {}, but {} says input_size {}: the model is made for {} x "
                    "{} images (leave --input-size out to use it)",
                    model.path(), eo.input_size, known.source, known.record.input_size,
                    known.record.input_size, known.record.input_size);
    r.input_size = eo.input_size;
  }
  const auto t0 = Clock::now();
  if (text)
    extract_texts(listing, model, eo, known, &r);
  else
    extract_images(listing, model, eo, known, &r);
  r.timings.extract_s = seconds_since(t0);
  TLKIT_CHECK_ARG(r.n > 0, "{}: none of the {} images could be decoded (first: {})", listing.source,
                  listing.samples.size(), r.skipped.empty() ? "" : r.skipped.front().reason);
  for (float v : r.features) r.nonfinite_features += !std::isfinite(v);
  r.optimization = model.optimization();
  r.precision = model.precision();
  r.precision_check = model.precision_check();
  r.model_notes = model.notes();
  r.model_notes.insert(r.model_notes.end(), r.size_notes.begin(), r.size_notes.end());
  r.timings.load_model_s = model.load_seconds();
  r.timings.optimize_s = model.optimize_seconds();
  r.images_per_second = r.timings.extract_s > 0 ? r.n / r.timings.extract_s : 0.0;
  return r;
}

ExtractResult extract_features(const ExtractOptions& options) {
  const auto t0 = Clock::now();
  const ImageListing all = list_dataset(options.data, options.split, options.task);
  const ImageListing listing = subsample(all, options.sample);
  const double list_s = seconds_since(t0);
  ModelOptions model_options = options.model_options;
  if (is_text_listing(listing) && model_options.logits_output == kAutoOutput)
    model_options.logits_output = kNoOutput;  // text models' second output is not class scores
  TorchScriptModel model(options.model, model_options);
  ExtractResult r = extract_features(listing, model, options);
  r.listed = static_cast<std::int64_t>(all.samples.size());
  r.timings.list_s = list_s;
  return r;
}

std::string preprocessing_description(const ImageListing& listing, const ExtractOptions& o) {
  using nlohmann::json;
  json p;
  if (is_text_listing(listing)) {
    p = {{"input", "List[str]: each sample's text as bytes, unchanged (tokenizer in the model)"}};
  } else {
    const bool normalised = !o.mean.empty();
    p = {
        {"input_size", o.input_size},
        {"decode", "OpenCV imdecode, IMREAD_COLOR, EXIF orientation ignored"},
        {"color", "RGB (grayscale replicated, alpha dropped)"},
        {"resize", "shorter side to input_size, Pillow-compatible bilinear (antialiased)"},
        {"crop", "centre input_size x input_size"},
        {"scale", normalised ? "float32 (x / 255 - mean) / std"
                             : "float32 x / 255 in [0, 1], no mean/std (inside the model)"},
        {"layout", "NCHW"},
    };
    if (normalised) {
      p["mean"] = o.mean;
      p["std"] = o.std;
    }
  }
  return p.dump();
}

std::string default_output_dir(const std::string& model_path) {
  return (fs::path("tlkit-features") / fs::path(model_path).stem()).string();
}

namespace {
void write_outputs(const ExtractResult& r, const ExtractOptions& o, const std::string& dir);
}  // namespace

void write_extract_outputs(const ExtractResult& r, const ExtractOptions& o,
                           const std::string& dir) {
  std::error_code ec;
  const bool created = !fs::exists(dir, ec);
  try {
    write_outputs(r, o, dir);
  } catch (...) {
    // No partial output: remove what this run wrote (each file was complete or absent, but
    // without meta.json the set is not), and the folder if this run created it.
    for (const char* f :
         {"features.npy", "logits.npy", "labels.npy", "targets.npy", "files.txt", "meta.json"})
      fs::remove(fs::path(dir) / f, ec);
    if (created) fs::remove(dir, ec);
    throw;
  }
}

namespace {
// The files write_outputs writes, in order.
nlohmann::json output_files(const ExtractResult& r) {
  nlohmann::json files = nlohmann::json::array({"features.npy"});
  if (r.has_logits) files.push_back("logits.npy");
  files.push_back(r.listing.task == Task::kClassification ? "labels.npy" : "targets.npy");
  files.push_back("files.txt");
  files.push_back("meta.json");
  return files;
}

void write_outputs(const ExtractResult& r, const ExtractOptions& o, const std::string& dir) {
  TLKIT_ASSERT(r.n == static_cast<std::int64_t>(r.samples.size()) &&
               r.features.size() == static_cast<std::size_t>(r.n * r.features_dim));
  const auto t0 = Clock::now();
  std::error_code ec;
  fs::create_directories(dir, ec);
  TLKIT_CHECK_ARG(!ec && fs::is_directory(dir), "--out {}: cannot create the folder: {}", dir,
                  ec ? ec.message() : "a file is in the way");
  const fs::path d = dir;
  // An old meta.json goes first: from here until the new one is written the folder is incomplete.
  fs::remove(d / "meta.json", ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("{}: cannot remove: {}", (d / "meta.json").string(), ec.message()));
  save_npy((d / "features.npy").string(), r.features.data(), {r.n, r.features_dim});
  if (r.has_logits) {
    save_npy((d / "logits.npy").string(), r.logits.data(), {r.n, r.logits_dim});
  } else {
    fs::remove(d / "logits.npy", ec);
  }
  const bool targets = r.listing.task != Task::kClassification;
  if (targets) {
    const std::vector<double> t = target_matrix(r.samples);
    save_npy((d / "targets.npy").string(), t.data(),
             {r.n, static_cast<std::int64_t>(r.listing.target_names.size())});
  } else {
    save_npy((d / "labels.npy").string(), r.labels.data(), {r.n});
  }
  fs::remove(d / (targets ? "labels.npy" : "targets.npy"), ec);
  const std::string files_txt = listing_text(r.samples);
  write_file_atomic((d / "files.txt").string(), files_txt);

  using nlohmann::json;
  json meta;
  meta["schema_version"] = 1;
  meta["tool"] = "tlkit extract";
  meta["tlkit_version"] = tlkit::version();
  if (!o.cache_key.empty()) meta["cache_key"] = o.cache_key;
  meta["torch_version"] = torch_version();
  meta["model"] = {
      {"name", fs::path(o.model).stem().string()},
      {"file", fs::absolute(o.model).lexically_normal().string()},
      {"sha256", o.model_sha256.empty() ? file_sha256(o.model) : o.model_sha256},
      {"bytes", fs::file_size(o.model, ec)},
      {"features_output", o.model_options.features_output},
      {"logits_output",
       r.has_logits
           ? json(o.model_options.logits_output == kAutoOutput ? 1 : o.model_options.logits_output)
           : json()},
      {"optimize_requested", to_string(o.model_options.optimization)},
      {"optimize", to_string(r.optimization)},
      {"channels_last", o.model_options.channels_last},
      {"device", to_string(o.model_options.device)},
      {"precision_requested", to_string(o.model_options.precision)},
      {"precision", to_string(r.precision)},
  };
  if (r.precision_check.measured)
    meta["model"]["precision_check"] = {
        {"relative_error", r.precision_check.relative_error},
        {"min_cosine", r.precision_check.min_cosine},
        {"tolerance", r.precision_check.tolerance},
        {"chosen", to_string(r.precision_check.chosen)},
    };
  meta["model"]["notes"] = r.model_notes;
  json classes = json::array();
  for (const auto& c : r.listing.classes) classes.push_back(c);
  meta["data"] = {
      {"source", fs::absolute(r.listing.source).lexically_normal().string()},
      {"format", r.listing.format},
      {"split", r.listing.split},
      {"task", to_string(r.listing.task)},
      {"classes", classes},
      {"num_classes", r.listing.classes.size()},
      {"targets", r.listing.target_names},
      {"listed", r.listed},
      {"selected", r.listing.samples.size()},
      {"per_class", o.sample.per_class},
      {"limit", o.sample.limit},
      {"seed", o.sample.seed},
      {"sampling", "mt19937_64 Fisher-Yates per class, then over the rest (v1)"},
      {"listing_sha256", listing_sha256(r.listing.samples)},
      {"files_sha256", sha256_hex(files_txt)},
      {"notes", r.listing.notes},
  };
  ExtractOptions used = o;
  if (r.input_size > 0) used.input_size = r.input_size;
  meta["preprocessing"] = json::parse(preprocessing_description(r.listing, used));
  json skipped = json::array();
  for (const auto& s : r.skipped) skipped.push_back({{"path", s.path}, {"reason", s.reason}});
  meta["outputs"] = {
      {"n", r.n},
      {"features_dim", r.features_dim},
      {"logits_dim", r.has_logits ? json(r.logits_dim) : json()},
      {"files", output_files(r)},
      {"nonfinite_features", r.nonfinite_features},
      {"skipped", skipped},
  };
  meta["run"] = {
      {"batch", o.batch},
      {"threads", r.threads},
      {"decode_threads", r.decode_threads},
      {"images_per_second", r.images_per_second},
      {"seconds",
       {{"list", r.timings.list_s},
        {"load_model", r.timings.load_model_s},
        {"optimize", r.timings.optimize_s},
        {"extract", r.timings.extract_s},
        {"inference", r.timings.inference_s},
        {"decode_summed", r.timings.decode_s},
        {"resize_summed", r.timings.resize_s},
        {"wait_for_decode", r.timings.wait_s},
        {"write_arrays", seconds_since(t0)}}},
  };
  write_file_atomic((d / "meta.json").string(), meta.dump(1) + "\n");
}
}  // namespace

}  // namespace tlkit::model

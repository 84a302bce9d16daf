// Fine-tuning data (finetune_data.h): splits, decoding, augmentation, feature splits.
#include "finetune_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "batch_loader.h"
#include "finetune_internal.h"
#include "sampling.h"
#include "tlkit/core/error.h"
#include "tlkit/core/npy.h"
#include "tlkit/model/extractor.h"
#include "tlkit/model/text_dataset.h"
#include "tlkit/model/torchscript_model.h"

namespace tlkit::model::finetune_detail {
namespace fs = std::filesystem;

bool is_text_data(const FinetuneOptions& o) {
  std::error_code ec;
  if (fs::is_directory(o.data, ec)) {
    if (o.split_train.empty()) return false;
    const fs::path f = fs::path(o.data) / o.split_train;
    return fs::is_regular_file(f, ec) && detect_data_kind(f.string()) == DataKind::kText;
  }
  return detect_data_kind(o.data) == DataKind::kText;
}

namespace {

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

}  // namespace

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

}  // namespace tlkit::model::finetune_detail

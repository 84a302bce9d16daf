// Listing and subsampling of labelled image datasets (no OpenCV, no LibTorch here; decoding and
// preprocessing are in image_preprocess.cpp).
#include "tlkit/model/image_dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>

#include "sampling.h"
#include "sha256.h"
#include "tlkit/core/error.h"

namespace tlkit::model {
namespace fs = std::filesystem;

namespace {

std::string lower_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

std::vector<std::string> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  TLKIT_CHECK_ARG(!ec, "{}: cannot list the folder: {}", dir.string(), ec.message());
  for (const fs::directory_entry& e : it) {
    std::error_code ec2;
    const bool is_dir = e.is_directory(ec2);  // follows symbolic links, like os.path.isdir
    if (is_dir == want_dirs) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// One CSV record per call (RFC 4180: quoted fields may hold commas, quotes as "" and newlines).
// Returns false at the end of the text; `line` is the 1-based line where the record starts.
bool next_csv_record(const std::string& text, std::size_t& pos, std::size_t& line,
                     std::vector<std::string>& fields, const std::string& origin) {
  fields.clear();
  if (pos >= text.size()) return false;
  std::string field;
  bool quoted = false, was_quoted = false;
  const std::size_t start_line = line;
  while (pos < text.size()) {
    const char c = text[pos++];
    if (quoted) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          field.push_back('"');
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
    } else if (c == '"' && !was_quoted && trim(field).empty()) {
      quoted = was_quoted = true;
      field.clear();
    } else if (c == ',') {
      fields.push_back(was_quoted ? field : trim(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n') {
      ++line;
      break;
    } else if (c != '\r') {
      field.push_back(c);
    }
  }
  TLKIT_CHECK_ARG(!quoted, "{}:{}: unterminated quoted field", origin, start_line);
  fields.push_back(was_quoted ? field : trim(field));
  return true;
}

bool parse_int64(const std::string& s, std::int64_t* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  const auto r = std::from_chars(b, e, *out);
  return b != e && r.ec == std::errc() && r.ptr == e;
}

// A decimal real number as a CSV writer prints one: "0.37", "-1e-3", "2.0", ".5" (not "nan",
// "inf").
bool is_real_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// 1 when a header field names the path column, 2 the label column, 0 otherwise (any case).
int header_kind(std::string field) {
  std::transform(field.begin(), field.end(), field.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* name : {"path", "file", "filename", "file_name", "image", "image_path", "img"})
    if (field == name) return 1;
  for (const char* name : {"label", "class", "target", "category"})
    if (field == name) return 2;
  return 0;
}

}  // namespace

Task parse_task(const std::string& s) {
  if (s == "classification") return Task::kClassification;
  if (s == "regression") return Task::kRegression;
  if (s == "multilabel") return Task::kMultiLabel;
  TLKIT_THROW_ARG("--task {}: expected classification, regression or multilabel", s);
}

const char* to_string(Task task) {
  switch (task) {
    case Task::kRegression:
      return "regression";
    case Task::kMultiLabel:
      return "multilabel";
    default:
      return "classification";
  }
}

const std::vector<std::string>& image_extensions() {
  // torchvision's IMG_EXTENSIONS; OpenCV decodes them all.
  static const std::vector<std::string> kExtensions = {".bmp", ".jpeg", ".jpg",  ".pgm", ".png",
                                                       ".ppm", ".tif",  ".tiff", ".webp"};
  return kExtensions;
}

bool is_image_file_name(const std::string& name) {
  const std::string ext = lower_extension(name);
  for (const std::string& e : image_extensions())
    if (ext == e) return true;
  return false;
}

ImageListing list_image_folder(const std::string& root, const std::string& split) {
  ImageListing out;
  out.source = root;
  out.split = split;
  out.format = "folder";
  std::error_code ec;
  TLKIT_CHECK_ARG(fs::is_directory(root, ec),
                  "{}: not a folder (expected a folder of class "
                  "sub-folders or a CSV file of path,label rows)",
                  root);
  fs::path dir = root;
  if (!split.empty()) {
    dir /= split;
    if (!fs::is_directory(dir, ec)) {
      const std::vector<std::string> found = sorted_entries(root, true);
      TLKIT_THROW_ARG("{}: no split folder '{}' (sub-folders: {})", root, split,
                      found.empty() ? "none" : join(found));
    }
  }
  out.classes = sorted_entries(dir, true);
  TLKIT_CHECK_ARG(!out.classes.empty(), "{}: no class sub-folders (expected {}<class>/<image>.jpg)",
                  dir.string(), split.empty() ? "" : split + "/");
  // Sub-folders named like splits are not classes (torchvision's ImageFolder would take them as
  // two classes and read every image below them).
  if (split.empty()) {
    static const std::set<std::string> kSplitNames = {"train",      "training", "val",     "valid",
                                                      "validation", "test",     "testing", "dev"};
    bool splits = true, holds_folders = false;
    for (const std::string& cls : out.classes) {
      std::string lower = cls;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      splits = splits && kSplitNames.count(lower) > 0;
      holds_folders = holds_folders || !sorted_entries(dir / cls, true).empty();
    }
    if (splits && holds_folders)
      TLKIT_THROW_ARG(
          "{}: its sub-folders look like splits, not classes: pass --split (one of: {})", root,
          join(out.classes));
  }
  const std::string prefix = split.empty() ? "" : split + "/";
  std::map<std::string, std::int64_t> skipped;  // by extension
  std::int64_t nested = 0;                      // images in sub-folders of a class folder
  for (std::size_t label = 0; label < out.classes.size(); ++label) {
    const std::string& cls = out.classes[label];
    std::size_t count = 0;
    // Every image below the class folder, sub-folders included, in sorted path order (like
    // ImageFolder, which walks them and follows links).
    std::vector<std::string> files;
    const fs::path class_dir = dir / cls;
    fs::recursive_directory_iterator it(class_dir, fs::directory_options::follow_directory_symlink,
                                        ec);
    TLKIT_CHECK_ARG(!ec, "{}: cannot list the folder: {}", class_dir.string(), ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      TLKIT_CHECK_ARG(!ec, "{}: cannot list the folder: {}", class_dir.string(), ec.message());
      std::error_code ec2;
      if (it->is_directory(ec2)) continue;
      files.push_back(fs::relative(it->path(), class_dir, ec2).generic_string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) {
      if (!is_image_file_name(file)) {
        const std::string ext = lower_extension(file);
        ++skipped[ext.empty() ? "(no extension)" : ext];
        continue;
      }
      out.samples.push_back({(class_dir / file).string(),
                             prefix + cls + "/" + file,
                             static_cast<std::int64_t>(label),
                             {}});
      ++count;
      nested += file.find('/') != std::string::npos;
    }
    if (count == 0)
      out.notes.push_back(fmt::format("class '{}' (label {}) has no images", cls, label));
  }
  if (nested > 0)
    out.notes.push_back(fmt::format(
        "{} image(s) are in sub-folders of the class folders: each is labelled by the class "
        "folder it is under (as torchvision's ImageFolder does)",
        nested));
  if (!skipped.empty()) {
    std::vector<std::string> parts;
    std::int64_t total = 0;
    for (const auto& [ext, n] : skipped) {
      parts.push_back(fmt::format("{} {}", n, ext));
      total += n;
    }
    out.notes.push_back(
        fmt::format("skipped {} file(s) that are not images by their extension ({}); images are {}",
                    total, join(parts), join(image_extensions())));
  }
  if (out.samples.empty())
    TLKIT_THROW_ARG("{}: no image files ({}) in the class folders ({})", dir.string(),
                    join(image_extensions(), "/"), join(out.classes));
  return out;
}

ImageListing list_image_csv(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  TLKIT_CHECK_ARG(in.good(), "{}: cannot open the CSV file", csv_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte order mark

  ImageListing out;
  out.source = csv_path;
  out.format = "csv";
  const fs::path base = fs::path(csv_path).parent_path();
  std::vector<std::string> fields;
  std::vector<std::pair<std::string, std::string>> rows;
  std::vector<std::size_t> row_lines;
  std::size_t pos = 0, line = 1;
  bool first = true;
  std::size_t path_col = 0, label_col = 1;
  for (std::size_t at = line; next_csv_record(text, pos, line, fields, csv_path); at = line) {
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    TLKIT_CHECK_ARG(fields.size() == 2, "{}:{}: expected 2 fields 'path,label', found {}{}",
                    csv_path, at, fields.size(),
                    fields.size() > 2 ? " (several target columns are regression or multi-label "
                                        "targets: --task regression or --task multilabel, with "
                                        "a header naming the columns)"
                                      : "");
    if (first) {
      first = false;
      const int path_a = header_kind(fields[0]), path_b = header_kind(fields[1]);
      if (path_a == 1 && path_b == 2) continue;  // path,label
      if (path_a == 2 && path_b == 1) {          // label,path
        std::swap(path_col, label_col);
        continue;
      }
      // A first row whose "path" is no image file name and names no file, and whose label is
      // no number, is a header with a typo or unknown names: refuse it rather than invent a class.
      std::error_code ec;
      std::int64_t ignored = 0;
      const fs::path p = fields[0];
      if (!is_image_file_name(fields[0]) && !parse_int64(fields[1], &ignored) &&
          !fs::exists(p.is_absolute() ? p : base / p, ec))
        TLKIT_THROW_ARG(
            "{}:{}: the first row '{},{}' looks like a header but is not one tlkit reads: name "
            "the columns path,label (either order; path may also be file, filename or image, "
            "label may also be class or target), or remove the row",
            csv_path, at, fields[0], fields[1]);
    }
    const std::string& path = fields[path_col];
    const std::string& label = fields[label_col];
    TLKIT_CHECK_ARG(!path.empty(), "{}:{}: empty path", csv_path, at);
    TLKIT_CHECK_ARG(!label.empty(), "{}:{}: empty label for '{}'", csv_path, at, path);
    rows.emplace_back(path, label);
    row_lines.push_back(at);
  }
  TLKIT_CHECK_ARG(!rows.empty(), "{}: no path,label rows", csv_path);

  std::vector<std::string> raw;
  for (const auto& r : rows) raw.push_back(r.second);
  const std::vector<std::int64_t> values = label_values(raw, &out.classes, csv_path, row_lines);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const fs::path p = rows[i].first;
    out.samples.push_back(
        {p.is_absolute() ? p.string() : (base / p).string(), rows[i].first, values[i], {}});
  }
  return out;
}

std::vector<std::int64_t> label_values(const std::vector<std::string>& raw,
                                       std::vector<std::string>* classes, const std::string& origin,
                                       const std::vector<std::size_t>& lines) {
  classes->clear();
  std::vector<std::int64_t> values(raw.size());
  bool integer_labels = true;
  for (std::size_t i = 0; i < raw.size() && integer_labels; ++i)
    integer_labels = parse_int64(raw[i], &values[i]);
  if (integer_labels) return values;
  // All numbers, some not integers: real-valued targets, which would become one class per value.
  std::size_t first_real = raw.size();
  bool numbers = true;
  for (std::size_t i = 0; i < raw.size() && numbers; ++i) {
    std::int64_t ignored = 0;
    numbers = is_real_number(raw[i]);
    if (numbers && first_real == raw.size() && !parse_int64(raw[i], &ignored)) first_real = i;
  }
  if (numbers)
    TLKIT_THROW_ARG(
        "{}:{}: label '{}' is a real number, and every label is a number: classification needs "
        "integer labels or class names ({} distinct values would make {} classes). Write classes "
        "as integers (0, 1, ...) or names; real-valued targets are regression targets (--task "
        "regression in extract and rank, with a header naming the columns; tlkit score "
        "--regression)",
        origin, lines.empty() ? first_real + 1 : lines[first_real], raw[first_real],
        std::set<std::string>(raw.begin(), raw.end()).size(),
        std::set<std::string>(raw.begin(), raw.end()).size());
  const std::set<std::string> names(raw.begin(), raw.end());
  classes->assign(names.begin(), names.end());
  for (std::size_t i = 0; i < raw.size(); ++i)
    values[i] = std::lower_bound(classes->begin(), classes->end(), raw[i]) - classes->begin();
  return values;
}

ImageListing list_images(const std::string& data, const std::string& split) {
  std::error_code ec;
  if (fs::is_regular_file(data, ec)) {
    TLKIT_CHECK_ARG(split.empty(), "{}: a CSV listing has no splits (got --split {})", data, split);
    return list_image_csv(data);
  }
  TLKIT_CHECK_ARG(fs::exists(data, ec), "{}: no such file or folder", data);
  return list_image_folder(data, split);
}

ImageListing subsample(const ImageListing& listing, const SubsampleOptions& options) {
  TLKIT_CHECK_ARG(options.per_class >= 0, "per-class count must be >= 0, got {}",
                  options.per_class);
  TLKIT_CHECK_ARG(options.limit >= 0, "limit must be >= 0, got {}", options.limit);
  if (options.per_class == 0 && options.limit == 0) return listing;
  TLKIT_CHECK_ARG(options.per_class == 0 || listing.task == Task::kClassification,
                  "--per-class {}: samples per class need class labels, and these are {} targets "
                  "(use --limit N)",
                  options.per_class, to_string(listing.task));
  const std::vector<ImageSample>& s = listing.samples;
  std::mt19937_64 rng(options.seed);
  std::vector<char> keep(s.size(), 1);
  ImageListing out = listing;
  if (options.per_class > 0) {
    std::map<std::int64_t, std::vector<std::size_t>> by_label;
    for (std::size_t i = 0; i < s.size(); ++i) by_label[s[i].label].push_back(i);
    for (auto& [label, idx] : by_label) {
      std::stable_sort(idx.begin(), idx.end(),
                       [&](std::size_t a, std::size_t b) { return s[a].name < s[b].name; });
      fisher_yates(idx, rng);
      for (std::size_t k = static_cast<std::size_t>(options.per_class); k < idx.size(); ++k)
        keep[idx[k]] = 0;
      if (idx.size() < static_cast<std::size_t>(options.per_class))
        out.notes.push_back(fmt::format("label {} has only {} samples (per-class {})", label,
                                        idx.size(), options.per_class));
    }
  }
  if (options.limit > 0) {
    std::vector<std::size_t> rest;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (keep[i]) rest.push_back(i);
    if (rest.size() > static_cast<std::size_t>(options.limit)) {
      fisher_yates(rest, rng);
      for (std::size_t k = static_cast<std::size_t>(options.limit); k < rest.size(); ++k)
        keep[rest[k]] = 0;
    }
  }
  out.samples.clear();
  for (std::size_t i = 0; i < s.size(); ++i)
    if (keep[i]) out.samples.push_back(s[i]);
  return out;
}

std::string listing_text(const std::vector<ImageSample>& samples) {
  std::string text;
  for (const ImageSample& s : samples) {
    if (s.targets.empty()) {
      text += fmt::format("{}\t{}\n", s.name, s.label);
      continue;
    }
    text += s.name;
    for (double t : s.targets) text += fmt::format("\t{}", t);
    text += '\n';
  }
  return text;
}

std::vector<double> target_matrix(const std::vector<ImageSample>& samples) {
  std::vector<double> out;
  if (samples.empty()) return out;
  out.reserve(samples.size() * samples[0].targets.size());
  for (const ImageSample& s : samples) {
    TLKIT_ASSERT(s.targets.size() == samples[0].targets.size());
    out.insert(out.end(), s.targets.begin(), s.targets.end());
  }
  return out;
}

std::string listing_sha256(const std::vector<ImageSample>& samples) {
  std::string text = listing_text(samples);
  // Texts are the data itself (images are named by their files), so a changed sentence must
  // change the hash that feature caches are keyed on.
  for (const ImageSample& s : samples)
    if (!s.text.empty()) fmt::format_to(std::back_inserter(text), "{}:{}", s.text.size(), s.text);
  return sha256_hex(text);
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK_ARG(in.good(), "{}: cannot open the file", path);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  TLKIT_CHECK_ARG(in.eof(), "{}: read error", path);
  return h.hex();
}

std::vector<ImageSample> carve(std::vector<ImageSample>& from, double fraction,
                               std::uint64_t seed) {
  std::map<std::int64_t, std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < from.size(); ++i) by_class[from[i].label].push_back(i);
  std::vector<char> take(from.size(), 0);
  std::mt19937_64 rng(seed);
  for (auto& [label, idx] : by_class) {
    const std::size_t m = idx.size();
    if (m < 2) continue;
    fisher_yates(idx, rng);
    auto k = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(m)));
    k = std::clamp<std::size_t>(k, 1, m - 1);
    for (std::size_t j = 0; j < k; ++j) take[idx[j]] = 1;
  }
  std::vector<ImageSample> kept, carved;
  for (std::size_t i = 0; i < from.size(); ++i) (take[i] ? carved : kept).push_back(from[i]);
  from = std::move(kept);
  return carved;
}

}  // namespace tlkit::model

// Text dataset listing (no LibTorch here).
#include "tlkit/model/text_dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"

namespace tlkit::model {
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK_ARG(in.good(), "{}: cannot open the text file", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TLKIT_CHECK_ARG(!in.bad(), "{}: read error", path);
  return text;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string row_name(std::int64_t line) { return fmt::format("{:09}", line); }

bool has_csv_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".csv";
}

void assign_labels(const std::vector<std::string>& raw, ImageListing* out) {
  std::vector<std::size_t> lines;  // the samples' names are their line numbers
  for (const ImageSample& sample : out->samples) lines.push_back(std::stoull(sample.name));
  const std::vector<std::int64_t> values = label_values(raw, &out->classes, out->source, lines);
  for (std::size_t i = 0; i < raw.size(); ++i) out->samples[i].label = values[i];
}

ImageListing parse_text_lines(std::string text, const std::string& path) {
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte order mark
  ImageListing out;
  out.source = path;
  out.format = "lines";
  std::vector<std::string> labels;
  std::size_t pos = 0;
  std::int64_t line = 0;
  while (pos < text.size()) {
    ++line;
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::size_t b = pos, e = end;
    pos = end + 1;
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (b == e) continue;  // blank line
    std::size_t label_end = b;
    while (label_end < e && !is_space(text[label_end])) ++label_end;
    std::size_t text_begin = label_end;
    while (text_begin < e && is_space(text[text_begin])) ++text_begin;
    TLKIT_CHECK_ARG(text_begin < e,
                    "{}:{}: expected '<label> <text>', found only '{}' (text files hold one "
                    "labelled sample per line; use a CSV with text,label columns otherwise)",
                    path, line, printable(text.substr(b, e - b)));
    labels.push_back(text.substr(b, label_end - b));
    out.samples.push_back({"", row_name(line), 0, text.substr(text_begin, e - text_begin)});
  }
  TLKIT_CHECK_ARG(!out.samples.empty(), "{}: no '<label> <text>' lines", path);
  assign_labels(labels, &out);
  return out;
}

ImageListing text_csv_listing(const CsvTable& table, const std::string& path) {
  const std::size_t text_col = table.column("text");
  const std::size_t label_col = table.column("label");
  ImageListing out;
  out.source = path;
  out.format = "text-csv";
  std::vector<std::string> labels;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    labels.push_back(table.nonempty(r, label_col));
    out.samples.push_back({"", row_name(table.lines[r]), 0, table.nonempty(r, text_col)});
  }
  TLKIT_CHECK_ARG(!out.samples.empty(), "{}: no text,label rows", path);
  assign_labels(labels, &out);
  return out;
}

// The header's column names (first non-blank record), without parsing the rest of the file.
bool csv_has_text_column(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK_ARG(in.good(), "{}: cannot open the CSV file", path);
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) break;
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
  const CsvTable header = parse_csv_table(line, path);
  return std::find(header.header.begin(), header.header.end(), "text") != header.header.end();
}

}  // namespace

ImageListing list_texts(const std::string& path) {
  return has_csv_extension(path) ? text_csv_listing(read_csv_table(path), path)
                                 : parse_text_lines(read_file(path), path);
}

ImageListing parse_texts(const std::string& bytes, const std::string& path, bool csv) {
  return csv ? text_csv_listing(parse_csv_table(bytes, path), path) : parse_text_lines(bytes, path);
}

bool is_text_listing(const ImageListing& listing) {
  return listing.format == "lines" || listing.format == "text-csv";
}

const char* to_string(DataKind kind) { return kind == DataKind::kText ? "text" : "image"; }

DataKind detect_data_kind(const std::string& data) {
  std::error_code ec;
  if (fs::is_directory(data, ec)) return DataKind::kImage;
  TLKIT_CHECK_ARG(fs::exists(data, ec), "{}: no such file or folder", data);
  if (has_csv_extension(data))
    return csv_has_text_column(data) ? DataKind::kText : DataKind::kImage;
  return DataKind::kText;
}

ImageListing list_target_csv(const std::string& path, DataKind kind, Task task) {
  TLKIT_CHECK_ARG(task != Task::kClassification,
                  "{}: a target listing is for regression or "
                  "multi-label targets",
                  path);
  const char* flag = task == Task::kRegression ? "--task regression" : "--task multilabel";
  TLKIT_CHECK_ARG(has_csv_extension(path),
                  "{}: {} needs a CSV listing with a header naming the sample column and the "
                  "target columns (a folder's or a text file's labels are classes)",
                  path, flag);
  const CsvTable table = read_csv_table(path);
  // The sample column: the first of the names a path,label listing accepts (images), or text.
  static const std::vector<std::string> kImageColumns = {"path", "file", "filename", "image"};
  const std::vector<std::string> sample_names =
      kind == DataKind::kText ? std::vector<std::string>{"text"} : kImageColumns;
  std::size_t sample_col = table.header.size();
  for (const std::string& name : sample_names) {
    const auto it = std::find(table.header.begin(), table.header.end(), name);
    if (it != table.header.end()) {
      sample_col = static_cast<std::size_t>(it - table.header.begin());
      break;
    }
  }
  std::string columns;
  for (const std::string& h : table.header)
    columns += (columns.empty() ? "" : ",") + (h.empty() ? std::string("(unnamed)") : h);
  TLKIT_CHECK_ARG(sample_col < table.header.size(),
                  "{}: {} needs a header naming the {} column ({}) and the target columns; the "
                  "header read is '{}'",
                  path, flag, kind == DataKind::kText ? "text" : "image",
                  kind == DataKind::kText ? "text" : "path, file, filename or image",
                  printable(columns));
  ImageListing out;
  out.source = path;
  out.format = kind == DataKind::kText ? "text-csv" : "csv";
  out.task = task;
  std::vector<std::size_t> target_cols;
  std::vector<std::string> unnamed;
  for (std::size_t c = 0; c < table.header.size(); ++c) {
    if (c == sample_col) continue;
    if (table.header[c].empty()) {
      unnamed.push_back(std::to_string(c + 1));
      continue;
    }
    target_cols.push_back(c);
    out.target_names.push_back(table.header[c]);
  }
  TLKIT_CHECK_ARG(!target_cols.empty(), "{}: {} needs at least one target column besides '{}'",
                  path, flag, table.header[sample_col]);
  if (!unnamed.empty())
    out.notes.push_back(
        fmt::format("column(s) {} have no name in the header and are not targets (an index column)",
                    fmt::join(unnamed, ", ")));
  const fs::path base = fs::path(path).parent_path();
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& sample = table.nonempty(r, sample_col);
    ImageSample s;
    if (kind == DataKind::kText) {
      s.name = row_name(table.lines[r]);
      s.text = sample;
    } else {
      const fs::path p = sample;
      s.path = p.is_absolute() ? p.string() : (base / p).string();
      s.name = sample;
    }
    for (std::size_t c : target_cols) {
      const double v = table.number(r, c);
      TLKIT_CHECK_ARG(task != Task::kMultiLabel || v == 0.0 || v == 1.0,
                      "{}:{}: column '{}': multi-label targets are 0 or 1, got '{}' (real-valued "
                      "targets: --task regression)",
                      path, table.lines[r], table.header[c], printable(table.rows[r][c]));
      s.targets.push_back(v == 0.0 ? 0.0 : v);  // -0 and 0 write the same files.txt
    }
    out.samples.push_back(std::move(s));
  }
  TLKIT_CHECK_ARG(!out.samples.empty(), "{}: no rows below the header", path);
  // A target that never changes tells nothing about the features (its evidence is that of a
  // constant); say so rather than let it pull the mean.
  for (std::size_t k = 0; k < target_cols.size(); ++k) {
    const double first = out.samples[0].targets[k];
    if (std::all_of(out.samples.begin(), out.samples.end(),
                    [&](const ImageSample& s) { return s.targets[k] == first; }))
      out.notes.push_back(
          fmt::format("target '{}' is {} for every sample", out.target_names[k], first));
  }
  return out;
}

ImageListing list_dataset(const std::string& data, const std::string& split, Task task) {
  const DataKind kind = detect_data_kind(data);
  if (task != Task::kClassification) {
    TLKIT_CHECK_ARG(split.empty(), "{}: a CSV listing has no splits (got --split {})", data, split);
    return list_target_csv(data, kind, task);
  }
  if (kind == DataKind::kImage) return list_images(data, split);
  TLKIT_CHECK_ARG(split.empty(),
                  "{}: a text file has no splits (got --split {}; pass the split's "
                  "file instead)",
                  data, split);
  return list_texts(data);
}

}  // namespace tlkit::model

// CSV tables with a header (see csv.h for the dialect).
#include "tlkit/core/csv.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "tlkit/core/error.h"

namespace tlkit {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_eol(char c) { return c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// One CSV record at a time from `text`, tracking physical line numbers.
class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }

  bool done() const { return pos_ >= text_.size(); }
  std::int64_t line() const { return line_; }

  // Reads the record starting at the current position. `blank` is set when it holds nothing but
  // spaces (one empty, unquoted field).
  std::vector<std::string> record(bool* blank) {
    std::vector<std::string> fields;
    bool any_quoted = false;
    for (;;) {
      while (pos_ < text_.size() && is_blank(text_[pos_])) ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        any_quoted = true;
        fields.push_back(quoted(fields.size() + 1));
      } else {
        fields.push_back(unquoted());
      }
      if (pos_ >= text_.size()) break;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      end_line();  // the only other stop is a line break
      break;
    }
    *blank = !any_quoted && fields.size() == 1 && fields[0].empty();
    return fields;
  }

 private:
  // Consumes one line break (LF, CRLF or CR) at pos_.
  void end_line() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  std::string quoted(std::size_t field_number) {
    const std::int64_t open_line = line_;
    ++pos_;  // the opening quote
    std::string field;
    for (;;) {
      TLKIT_CHECK_ARG(pos_ < text_.size(),
                      "{}: line {}: the quoted field {} is not closed before the end of the file",
                      source_, open_line, field_number);
      const char c = text_[pos_];
      if (c == '"') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
          field += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\n' || (c == '\r' && !(pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n')))
        ++line_;
      field += c;
      ++pos_;
    }
    while (pos_ < text_.size() && is_blank(text_[pos_])) ++pos_;
    if (pos_ < text_.size() && text_[pos_] != ',' && !is_eol(text_[pos_]))
      TLKIT_THROW_ARG("{}: line {}: unexpected '{}' after the closing quote of field {}", source_,
                      line_, printable(text_.substr(pos_, 1)), field_number);
    return field;
  }

  std::string unquoted() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && !is_eol(text_[pos_])) {
      TLKIT_CHECK_ARG(text_[pos_] != '"',
                      "{}: line {}: '\"' inside an unquoted field '{}' (quote the whole field and "
                      "double the quote)",
                      source_, line_, printable(trim(text_.substr(start, pos_ + 1 - start))));
      ++pos_;
    }
    return std::string(trim(text_.substr(start, pos_ - start)));
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
  std::int64_t line_ = 1;
};

}  // namespace

std::string printable(std::string_view value) {
  constexpr std::size_t kMax = 80;
  std::string out;
  for (std::size_t i = 0; i < value.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (value.size() > kMax) out += "...";
  return out;
}

std::string csv_field(std::string_view value) {
  const bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!value.empty() && (is_blank(value.front()) || is_blank(value.back())));
  if (!quote) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

CsvTable parse_csv_table(std::string_view text, const std::string& source) {
  CsvTable t;
  t.source = source;
  Parser p(text, source);
  bool have_header = false;
  while (!p.done()) {
    const std::int64_t line = p.line();
    bool blank = false;
    std::vector<std::string> fields = p.record(&blank);
    if (blank) continue;
    if (!have_header) {
      for (std::size_t i = 0; i < fields.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
          TLKIT_CHECK_ARG(fields[i].empty() || fields[i] != fields[j],
                          "{}: line {}: the header names column '{}' twice", source, line,
                          printable(fields[i]));
      t.header = std::move(fields);
      have_header = true;
      continue;
    }
    TLKIT_CHECK_ARG(fields.size() == t.header.size(),
                    "{}: line {}: {} fields, but the header has {} columns", source, line,
                    fields.size(), t.header.size());
    t.rows.push_back(std::move(fields));
    t.lines.push_back(line);
  }
  TLKIT_CHECK_ARG(have_header, "{}: empty file (expected a header line)", source);
  return t;
}

CsvTable read_csv_table(const std::string& path) {
  std::error_code ec;
  TLKIT_CHECK_ARG(!std::filesystem::is_directory(path, ec), "{}: is a directory, not a CSV file",
                  path);
  std::ifstream in(path, std::ios::binary);
  if (!in) TLKIT_THROW_ARG("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  TLKIT_CHECK_ARG(!in.bad(), "{}: cannot read", path);
  return parse_csv_table(buf.str(), path);
}

std::size_t CsvTable::column(std::string_view name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::string names;
  for (const auto& h : header) names += (names.empty() ? "" : ",") + printable(h);
  TLKIT_THROW_ARG("{}: missing column '{}' (the header is: {})", source, name, names);
}

const std::string& CsvTable::nonempty(std::size_t row, std::size_t col) const {
  TLKIT_ASSERT(row < rows.size() && col < header.size());
  TLKIT_CHECK_ARG(!rows[row][col].empty(), "{}: line {}: column '{}' is empty", source, lines[row],
                  printable(header[col]));
  return rows[row][col];
}

double CsvTable::number(std::size_t row, std::size_t col) const {
  TLKIT_ASSERT(row < rows.size() && col < header.size());
  const std::string& field = rows[row][col];
  std::string_view s = trim(field);
  TLKIT_CHECK_ARG(!s.empty(), "{}: line {}: column '{}' is empty (expected a number)", source,
                  lines[row], printable(header[col]));
  std::string_view digits = s;
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-') digits.remove_prefix(1);
  double v = 0;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  const bool whole = end == digits.data() + digits.size();
  TLKIT_CHECK_ARG(err != std::errc::result_out_of_range || !whole,
                  "{}: line {}: column '{}': {} is out of the range of a double", source,
                  lines[row], printable(header[col]), printable(field));
  TLKIT_CHECK_ARG(err == std::errc() && whole, "{}: line {}: column '{}': not a number: '{}'",
                  source, lines[row], printable(header[col]), printable(field));
  TLKIT_CHECK_ARG(std::isfinite(v), "{}: line {}: column '{}': not a finite number: '{}'", source,
                  lines[row], printable(header[col]), printable(field));
  return v;
}

std::string name_list(const std::vector<std::string>& names, std::size_t shown) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i)
    s += (i ? ", " : "") + printable(names[i]);
  if (names.size() > shown) s += fmt::format(" and {} more", names.size() - shown);
  return s;
}

}  // namespace tlkit

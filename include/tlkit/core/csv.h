// Reading small CSV tables (model lists, scores, accuracies) with a header line.
//
// Dialect: RFC 4180 with the leniencies that hand-edited and spreadsheet-exported files need.
// * Fields are separated by ','; records end with LF, CRLF or a lone CR. A UTF-8 byte-order mark
//   at the start is skipped.
// * A field may be quoted with '"'; inside quotes ',' and line breaks are data and '""' is one
//   '"'. Spaces and tabs around a field (outside the quotes) are dropped; inside quotes they are
//   kept. Text after a closing quote, a '"' inside an unquoted field, and a quote left open at the
//   end of the file are errors.
// * The first non-blank record is the header. Its names are matched exactly (case-sensitive,
//   after trimming); columns may come in any order and extra columns are ignored. A header name
//   may be empty (pandas writes an unnamed index column that way), but two equal non-empty names
//   are an error.
// * Blank records (nothing but spaces) are skipped. Every other record must have as many fields as
//   the header.
// Every failure throws tlkit::InputError naming the file, the line (1-based, where the record
// starts), the column and the offending value, on one line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlkit {

struct CsvTable {
  std::string source;                          ///< the file name used in messages
  std::vector<std::string> header;             ///< column names, trimmed
  std::vector<std::vector<std::string>> rows;  ///< data records, each header.size() fields
  std::vector<std::int64_t> lines;             ///< 1-based line where each data record starts

  /// Index of the column called `name`; InputError "<source>: missing column 'name' (columns:
  /// ...)" if there is none.
  std::size_t column(std::string_view name) const;

  /// Field (row, col) as a finite double (decimal or exponent notation, an optional sign);
  /// InputError naming the source, the line, the column and the value otherwise.
  double number(std::size_t row, std::size_t col) const;

  /// Field (row, col), which must not be empty; InputError naming the source, line and column.
  const std::string& nonempty(std::size_t row, std::size_t col) const;
};

/// Reads and parses the CSV file at `path` (InputError if it cannot be opened).
CsvTable read_csv_table(const std::string& path);

/// Parses CSV text; `source` names it in error messages.
CsvTable parse_csv_table(std::string_view text, const std::string& source);

/// `value` made safe for a one-line message: control characters escaped (\n, \r, \t, \xNN) and
/// values over 80 bytes cut with "...".
std::string printable(std::string_view value);

/// "a, b, c" for people: at most `shown` names, each printable(), then "and N more".
std::string name_list(const std::vector<std::string>& names, std::size_t shown = 10);

/// `value` as one CSV field: quoted (with '"' doubled) if it contains ',', '"', a line break, or
/// leading or trailing spaces or tabs; as is otherwise.
std::string csv_field(std::string_view value);

}  // namespace tlkit

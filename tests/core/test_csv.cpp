// Tests of the CSV table reader (src/core/csv.cpp): the dialect of csv.h, line numbers in errors,
// and the number parser.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"

namespace tlkit {
namespace {

using Rows = std::vector<std::vector<std::string>>;

std::string parse_error(const std::string& text) {
  try {
    parse_csv_table(text, "t.csv");
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

TEST(Csv, HeaderInAnyOrderAndExtraColumns) {
  const CsvTable t = parse_csv_table("score,extra,model\n0.5,x,a\n0.25,y,b\n", "t.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"score", "extra", "model"}));
  EXPECT_EQ(t.column("model"), 2u);
  EXPECT_EQ(t.column("score"), 0u);
  EXPECT_EQ(t.rows, (Rows{{"0.5", "x", "a"}, {"0.25", "y", "b"}}));
  EXPECT_EQ(t.lines, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(t.number(1, 0), 0.25);
}

TEST(Csv, QuotedFieldsWithCommasQuotesAndLineBreaks) {
  // Record 2 spans lines 2-3 (a quoted line break), so record 3 starts on line 4.
  const CsvTable t =
      parse_csv_table("model,note\n\"a, b\",\"two\nlines\"\n\"say \"\"hi\"\"\",\"\"\n", "t.csv");
  EXPECT_EQ(t.rows, (Rows{{"a, b", "two\nlines"}, {"say \"hi\"", ""}}));
  EXPECT_EQ(t.lines, (std::vector<std::int64_t>{2, 4}));
}

TEST(Csv, CrlfBomWhitespaceAndBlankLines) {
  // UTF-8 BOM, CRLF, spaces and tabs around fields (kept inside quotes), blank and space-only
  // lines skipped, no newline at the end.
  const CsvTable t = parse_csv_table(
      "\xEF\xBB\xBF model , accuracy\r\n\r\n  a b ,\t96.5 \r\n   \r\n\" c \" , 1e-3", "t.csv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"model", "accuracy"}));
  EXPECT_EQ(t.rows, (Rows{{"a b", "96.5"}, {" c ", "1e-3"}}));
  EXPECT_EQ(t.lines, (std::vector<std::int64_t>{3, 5}));
  // A lone CR (old Mac files) also ends a line.
  const CsvTable mac = parse_csv_table("a,b\r1,2\r3,4\r", "t.csv");
  EXPECT_EQ(mac.rows, (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(mac.lines, (std::vector<std::int64_t>{2, 3}));
}

TEST(Csv, EmptyHeaderNamesAreAllowedButDuplicatesAreNot) {
  // pandas' DataFrame.to_csv writes the unnamed index column with an empty header name.
  const CsvTable t = parse_csv_table(",model,accuracy\n0,a,1\n1,b,2\n", "t.csv");
  EXPECT_EQ(t.column("accuracy"), 2u);
  EXPECT_EQ(parse_error("model,score,model\n"),
            "t.csv: line 1: the header names column 'model' twice");
}

TEST(Csv, StructuralErrorsNameTheFileAndLine) {
  EXPECT_EQ(parse_error(""), "t.csv: empty file (expected a header line)");
  EXPECT_EQ(parse_error("\n  \n"), "t.csv: empty file (expected a header line)");
  EXPECT_EQ(parse_error("a,b\n1,2\n3\n"), "t.csv: line 3: 1 fields, but the header has 2 columns");
  EXPECT_EQ(parse_error("a,b\n1,2,\n"), "t.csv: line 2: 3 fields, but the header has 2 columns");
  EXPECT_EQ(parse_error("a,b\n1,\"open\n\n"),
            "t.csv: line 2: the quoted field 2 is not closed before the end of the file");
  EXPECT_EQ(parse_error("a,b\n\"x\"y,2\n"),
            "t.csv: line 2: unexpected 'y' after the closing quote of field 1");
  EXPECT_EQ(parse_error("a,b\n1,ab\"c\n"),
            "t.csv: line 2: '\"' inside an unquoted field 'ab\"' (quote the whole field and "
            "double the quote)");
}

TEST(Csv, MissingColumnListsTheHeader) {
  const CsvTable t = parse_csv_table("model,acc\na,1\n", "truth.csv");
  EXPECT_EQ(error_of([&] { t.column("accuracy"); }),
            "truth.csv: missing column 'accuracy' (the header is: model,acc)");
}

TEST(Csv, NumbersAreFiniteDecimalsAndErrorsNameLineColumnAndValue) {
  const CsvTable t = parse_csv_table(
      "v\n1.5\n-2e-3\n+4\n\" 7 \"\n.25\nabc\n1.5x\n\"\"\nnan\ninf\n1e999\n+-1\n0x10\n", "s.csv");
  EXPECT_EQ(t.number(0, 0), 1.5);
  EXPECT_EQ(t.number(1, 0), -2e-3);
  EXPECT_EQ(t.number(2, 0), 4.0);
  EXPECT_EQ(t.number(3, 0), 7.0);
  EXPECT_EQ(t.number(4, 0), 0.25);
  EXPECT_EQ(error_of([&] { t.number(5, 0); }), "s.csv: line 7: column 'v': not a number: 'abc'");
  EXPECT_EQ(error_of([&] { t.number(6, 0); }), "s.csv: line 8: column 'v': not a number: '1.5x'");
  EXPECT_EQ(error_of([&] { t.number(7, 0); }),
            "s.csv: line 9: column 'v' is empty (expected a number)");
  EXPECT_EQ(error_of([&] { t.number(8, 0); }),
            "s.csv: line 10: column 'v': not a finite number: 'nan'");
  EXPECT_EQ(error_of([&] { t.number(9, 0); }),
            "s.csv: line 11: column 'v': not a finite number: 'inf'");
  EXPECT_EQ(error_of([&] { t.number(10, 0); }),
            "s.csv: line 12: column 'v': 1e999 is out of the range of a double");
  EXPECT_EQ(error_of([&] { t.number(11, 0); }), "s.csv: line 13: column 'v': not a number: '+-1'");
  EXPECT_EQ(error_of([&] { t.number(12, 0); }), "s.csv: line 14: column 'v': not a number: '0x10'");
  EXPECT_EQ(error_of([&] { t.nonempty(7, 0); }), "s.csv: line 9: column 'v' is empty");
}

TEST(Csv, MessagesStayOnOneLine) {
  EXPECT_EQ(printable("a\nb\r\tc\x01"), "a\\nb\\r\\tc\\x01");
  EXPECT_EQ(printable(std::string(100, 'x')), std::string(80, 'x') + "...");
  const CsvTable t = parse_csv_table("v\n\"1\n2\"\n", "s.csv");
  EXPECT_EQ(error_of([&] { t.number(0, 0); }), "s.csv: line 2: column 'v': not a number: '1\\n2'");
}

TEST(Csv, FieldQuotingRoundTrips) {
  const std::vector<std::string> values{"plain", "a,b", "say \"hi\"", "two\nlines", " pad ", ""};
  std::string text = "v\n";
  for (const auto& v : values) text += csv_field(v) + "\n";
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  const CsvTable t = parse_csv_table(text, "t.csv");
  // The empty value is a blank line and is skipped; every other value comes back unchanged.
  ASSERT_EQ(t.rows.size(), values.size() - 1);
  for (std::size_t i = 0; i + 1 < values.size(); ++i) EXPECT_EQ(t.rows[i][0], values[i]);
}

TEST(Csv, FilesThatCannotBeRead) {
  test::TempDir dir;
  EXPECT_EQ(error_of([&] { read_csv_table(dir.file("absent.csv")); }),
            dir.file("absent.csv") + ": cannot open: No such file or directory");
  EXPECT_EQ(error_of([&] { read_csv_table(dir.path()); }),
            dir.path() + ": is a directory, not a CSV file");
  test::write_bytes(dir.file("ok.csv"), "model,accuracy\nm,0.5\n");
  EXPECT_EQ(read_csv_table(dir.file("ok.csv")).source, dir.file("ok.csv"));
}

}  // namespace
}  // namespace tlkit

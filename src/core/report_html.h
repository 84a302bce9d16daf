// HTML building blocks of tlkit report's page (src/core/report.cpp): escaping, accessible data
// tables, figures (an inline SVG chart beside its data table) and the page shell with its CSS and
// small sorting script. Torch-free; internal to tlkit::core (tests include it from src/).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tlkit::html {

/// `s` escaped for HTML text and attribute values (&, <, >, ", ' and control characters).
std::string escape(std::string_view s);

/// A table cell: its HTML (already escaped or built from escaped parts) and, for numeric
/// columns, the value the sorting script orders by (empty: sort by the text).
struct Cell {
  std::string html;
  std::string sort;
  bool numeric = false;
};

/// A text cell (escaped).
Cell text(std::string_view s);
/// A numeric cell: `v` printed with `digits` significant digits (NaN: "–", sorted last).
Cell number(double v, int digits = 4);
/// A numeric cell with its own text (e.g. "81.0 %") sorted by `v`.
Cell number_as(double v, std::string_view shown);

struct Table {
  std::string caption;              ///< shown above the table (also its accessible name)
  std::vector<std::string> header;  ///< column names (plain text)
  std::vector<std::vector<Cell>> rows;
  bool sortable = true;  ///< the inline script sorts it by a click on a header
};

/// The table as HTML: <table> with <caption>, <thead> of <th scope="col">, and <tbody>; the
/// first cell of each row is a row header (<th scope="row">).
std::string render(const Table& t);

/// A figure: the SVG chart (inline) and its data table beside it, with a caption.
std::string figure(const std::string& svg, const Table& data, std::string_view caption);

/// A whole HTML5 page: self-contained (inline CSS, one small inline script), no external
/// resource; `body` is HTML.
std::string page(std::string_view title, const std::string& body);

}  // namespace tlkit::html

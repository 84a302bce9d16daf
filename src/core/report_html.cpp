// HTML building blocks of tlkit report (src/core/report_html.h).
#include "report_html.h"

#include <fmt/format.h>

#include <cmath>

#include "tlkit/core/svg_plot.h"

namespace tlkit::html {

std::string escape(std::string_view s) { return xml_escape(std::string(s)); }

Cell text(std::string_view s) { return Cell{escape(s), "", false}; }

Cell number(double v, int digits) {
  if (!std::isfinite(v)) return Cell{"&#8211;", "", true};
  return Cell{fmt::format("{:.{}g}", v, digits), fmt::format("{:.17g}", v), true};
}

Cell number_as(double v, std::string_view shown) {
  return Cell{escape(shown), std::isfinite(v) ? fmt::format("{:.17g}", v) : "", true};
}

std::string render(const Table& t) {
  std::string o = t.sortable ? "<table class=\"data sortable\">" : "<table class=\"data\">";
  o += "<caption>" + escape(t.caption) + "</caption>\n<thead><tr>";
  for (const auto& h : t.header) o += "<th scope=\"col\">" + escape(h) + "</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    o += "<tr>";
    for (std::size_t c = 0; c < row.size(); ++c) {
      const Cell& cell = row[c];
      const char* tag = c == 0 ? "th" : "td";
      o += fmt::format("<{}{}{}{}>{}</{}>", tag, c == 0 ? " scope=\"row\"" : "",
                       cell.numeric ? " class=\"num\"" : "",
                       cell.sort.empty() ? "" : " data-v=\"" + cell.sort + "\"", cell.html, tag);
    }
    o += "</tr>\n";
  }
  o += "</tbody></table>\n";
  return o;
}

std::string figure(const std::string& svg, const Table& data, std::string_view caption) {
  return "<figure class=\"plot\">\n<div class=\"chart\">\n" + svg +
         "</div>\n<div class=\"table\">\n" + render(data) + "</div>\n<figcaption>" +
         escape(caption) + "</figcaption>\n</figure>\n";
}

namespace {

// Print-friendly, system fonts only, no external resource.
constexpr const char* kCss = R"(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1280px; padding: 1em 1.5em; color: #111; background: #fff;
       line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #0072B2; padding-bottom: 0.2em; margin-top: 1.8em; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; padding: 0; list-style: none; }
figure.plot { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; margin: 1em 0;
              break-inside: avoid; page-break-inside: avoid; }
figure.plot figcaption { flex-basis: 100%; font-size: 0.9em; color: #333; }
figure.plot svg { max-width: 100%; height: auto; border: 1px solid #ccc; }
div.multiples { display: flex; flex-wrap: wrap; gap: 0.8em; }
div.table { overflow-x: auto; max-width: 100%; }
table.data { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
table.data caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
table.data th, table.data td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left;
                               vertical-align: top; }
table.data thead th { background: #eee; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable thead th { cursor: pointer; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \25B2"; }
table.sortable thead th[aria-sort="descending"]::after { content: " \25BC"; }
.flag { white-space: nowrap; font-weight: 600; border: 1px solid #555; border-radius: 3px; padding: 0 0.3em;
        font-size: 0.8em; }
.note { color: #444; font-size: 0.9em; }
.bar { vertical-align: middle; margin-right: 0.4em; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em;
       overflow-wrap: anywhere; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure.plot svg { border: none; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
)";

// Sorting by a click on a column header (numbers by data-v); the page is complete without it.
constexpr const char* kScript = R"(
document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("thead th").forEach(function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      t.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var u = x.getAttribute("data-v"), v = y.getAttribute("data-v");
        var r = (u !== null && v !== null) ? parseFloat(u) - parseFloat(v)
              : (u !== null ? -1 : (v !== null ? 1 : x.textContent.localeCompare(y.textContent)));
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
});
)";

}  // namespace

std::string page(std::string_view title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n<title>" +
         escape(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n" + body +
         "<script>" + kScript + "</script>\n</body>\n</html>\n";
}

}  // namespace tlkit::html

// tlkit/core/report.h and its building blocks: the charts of svg_plot.h that the page uses, the
// HTML helpers (src/core/report_html.h), and the page built from the committed fixtures of
// tests/data/report (real tlkit outputs; README there).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/report_html.h"
#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/report.h"
#include "tlkit/core/svg_plot.h"

namespace tlkit {
namespace {

using test::count;

// A small XML well-formedness check (enough for the SVG tlkit writes): every tag closed in
// order, attribute values quoted, '<' never in text, '&' only in the five predefined entities
// or a numeric reference, no control characters. Returns "" when well formed, else the problem.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> open;
  std::size_t i = 0;
  auto entity_ok = [&](std::size_t at) {
    const std::size_t semi = x.find(';', at);
    if (semi == std::string::npos || semi - at > 10) return false;
    const std::string e = x.substr(at + 1, semi - at - 1);
    if (e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos") return true;
    if (e.size() >= 2 && e[0] == '#')
      return e.find_first_not_of("0123456789", 1) == std::string::npos ||
             (e[1] == 'x' && e.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos);
    return false;
  };
  while (i < x.size()) {
    const auto u = static_cast<unsigned char>(x[i]);
    if (u < 0x20 && x[i] != '\n' && x[i] != '\t' && x[i] != '\r')
      return "control character at " + std::to_string(i);
    if (x[i] == '&') {
      if (!entity_ok(i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (x[i] != '<') {
      if (x[i] == '>') return "'>' in text at " + std::to_string(i);
      ++i;
      continue;
    }
    const bool closing = i + 1 < x.size() && x[i + 1] == '/';
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < x.size() && (std::isalnum(static_cast<unsigned char>(x[j])) || x[j] == '-' ||
                            x[j] == ':' || x[j] == '_'))
      ++j;
    const std::string name = x.substr(name_start, j - name_start);
    if (name.empty()) return "empty tag name at " + std::to_string(i);
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
      open.pop_back();
      if (j >= x.size() || x[j] != '>') return "bad closing tag " + name;
      i = j + 1;
      continue;
    }
    // Attributes: name="value" (no '<' in values, entities checked).
    while (true) {
      while (j < x.size() && std::isspace(static_cast<unsigned char>(x[j]))) ++j;
      if (j >= x.size()) return "unterminated tag " + name;
      if (x[j] == '>') {
        open.push_back(name);
        ++j;
        break;
      }
      if (x[j] == '/' && j + 1 < x.size() && x[j + 1] == '>') {
        j += 2;
        break;
      }
      const std::size_t a = j;
      while (j < x.size() && x[j] != '=' && !std::isspace(static_cast<unsigned char>(x[j]))) ++j;
      if (j == a || j >= x.size() || x[j] != '=' || j + 1 >= x.size() || x[j + 1] != '"')
        return "unquoted attribute in <" + name + ">";
      const std::size_t end = x.find('"', j + 2);
      if (end == std::string::npos) return "unterminated attribute in <" + name + ">";
      for (std::size_t k = j + 2; k < end; ++k) {
        if (x[k] == '<') return "'<' in an attribute of <" + name + ">";
        if (x[k] == '&' && !entity_ok(k)) return "bad entity in an attribute of <" + name + ">";
      }
      j = end + 1;
    }
    i = j;
  }
  return open.empty() ? "" : "<" + open.back() + "> not closed";
}

std::vector<std::string> svgs_of(const std::string& page) {
  std::vector<std::string> out;
  for (std::size_t at = page.find("<svg"); at != std::string::npos;
       at = page.find("<svg", at + 1)) {
    const std::size_t end = page.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(page.substr(at, end + 6 - at));
  }
  return out;
}

TEST(ReportXmlCheck, CatchesMalformedInput) {
  // The checker itself: it must reject what a browser's XML parser rejects.
  EXPECT_EQ(xml_problem("<svg><g><text a=\"1\">x &amp; y</text></g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=\"<\"></svg>"), "");
  EXPECT_NE(xml_problem(std::string("<svg>\x01</svg>")), "");
}

TEST(ReportHtml, EscapesEverySpecialCharacter) {
  EXPECT_EQ(html::escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(xml_escape(std::string("x\x01y\x7f")), "x\xEF\xBF\xBDy\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("tab\tnew\nline"), "tab\tnew\nline");
  EXPECT_EQ(xml_escape("caf\xC3\xA9"), "caf\xC3\xA9");  // UTF-8 kept
}

TEST(ReportHtml, TableIsAccessibleAndSortable) {
  html::Table t;
  t.caption = "scores <of> models";
  t.header = {"model", "score"};
  t.rows.push_back({html::text("m<1>"), html::number(0.5)});
  t.rows.push_back({html::text("m2"), html::number(NAN)});
  const std::string h = html::render(t);
  EXPECT_EQ(xml_problem(h), "") << h;
  EXPECT_NE(h.find("<caption>scores &lt;of&gt; models</caption>"), std::string::npos);
  EXPECT_EQ(count(h, "<th scope=\"col\">"), 2u);
  EXPECT_EQ(count(h, "<th scope=\"row\">"), 2u);
  EXPECT_NE(h.find("<th scope=\"row\">m&lt;1&gt;</th>"), std::string::npos);
  EXPECT_NE(h.find("data-v=\"0.5\">0.5</td>"), std::string::npos);
  EXPECT_NE(h.find("class=\"data sortable\""), std::string::npos);
  // NaN is shown as a dash with no sort key (sorted after the numbers by the script).
  EXPECT_NE(h.find("<td class=\"num\">&#8211;</td>"), std::string::npos);
}

TEST(ReportHtml, PageHasNoExternalResource) {
  const std::string p = html::page("t <x>", "<p>body</p>");
  EXPECT_EQ(p.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(p.find("<title>t &lt;x&gt;</title>"), std::string::npos);
  EXPECT_NE(p.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(p.find("@media print"), std::string::npos);
  for (const char* ext : {"http://", "https://", "src=\"", "<link", "@import", "url("})
    EXPECT_EQ(p.find(ext), std::string::npos) << ext;
}

TEST(SvgCharts, ScatterDrawsEachFinitePointWithEscapedText) {
  ScatterPlot p;
  p.title = "a <&> b";
  p.x_label = "score";
  p.y_label = "accuracy";
  ScatterSeries s;
  s.x = {1, 2, NAN, 4};
  s.y = {0.5, 0.6, 0.7, 0.9};
  s.point_labels = {"1", "2", "3", "4"};
  s.point_titles = {"m<1>", "m2", "m3", "m'4"};
  s.marker = Marker::kSquare;
  p.series = {s};
  const std::string svg = render_scatter_svg(p);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count(svg, "<g><title>"), 3u);  // the NaN point is left out
  EXPECT_NE(svg.find("m&lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find("m&#39;4"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;&amp;&gt; b"), std::string::npos);
  // One series: no legend, so the series label never appears.
  p.series[0].label = "LEGEND";
  EXPECT_EQ(render_scatter_svg(p).find("LEGEND"), std::string::npos);
  p.series.push_back(s);
  p.series[1].label = "second";
  EXPECT_NE(render_scatter_svg(p).find(">second<"), std::string::npos);
  p.series[0].point_labels.pop_back();
  EXPECT_THROW(render_scatter_svg(p), InputError);
  ScatterPlot empty;
  empty.series.push_back(ScatterSeries{});
  EXPECT_THROW(render_scatter_svg(empty), InputError);
}

TEST(SvgCharts, BarsStartAtZeroAndDotsDoNot) {
  BarChart b;
  b.title = "bars";
  b.value_label = "score";
  b.labels = {"a", "b<", "c"};
  b.values = {2, -1, NAN};
  b.flags = {"tie", "", ""};
  b.width = 500;
  const std::string svg = render_bar_svg(b);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count(svg, "stroke=\"#222\""), 2u);  // two bars; the NaN one says "no value"
  EXPECT_NE(svg.find(">no value<"), std::string::npos);
  EXPECT_NE(svg.find(">tie<"), std::string::npos);
  EXPECT_NE(svg.find(">b&lt;<"), std::string::npos);
  // The bars of 2 and -1 meet at the zero line: a's bar starts where b's ends.
  const auto rect_x = [&](std::size_t nth) {
    std::size_t at = 0;
    for (std::size_t k = 0; k <= nth; ++k) at = svg.find("stroke=\"#222\"", at + 1);
    const std::size_t open = svg.rfind("<rect x=\"", at);
    return std::stod(svg.substr(open + 9));
  };
  const auto rect_w = [&](std::size_t nth) {
    std::size_t at = 0;
    for (std::size_t k = 0; k <= nth; ++k) at = svg.find("stroke=\"#222\"", at + 1);
    const std::size_t w = svg.rfind("width=\"", at);
    return std::stod(svg.substr(w + 7));
  };
  EXPECT_NEAR(rect_x(1) + rect_w(1), rect_x(0), 0.11);
  EXPECT_NEAR(rect_w(0) / rect_w(1), 2.0, 0.01);
  // Dots: a marker at each value, no bar.
  b.dots = true;
  b.lo = {1.5, -2, NAN};
  b.hi = {2.5, 0, NAN};
  const std::string dots = render_bar_svg(b);
  EXPECT_EQ(xml_problem(dots), "") << dots;
  EXPECT_EQ(count(dots, "stroke=\"#222\""), 0u);
  EXPECT_EQ(count(dots, "<polygon"), 2u);
  EXPECT_EQ(count(dots, "stroke=\"#000\""), 2u);  // two interval whiskers
  b.values.pop_back();
  EXPECT_THROW(render_bar_svg(b), InputError);
  EXPECT_THROW(render_bar_svg(BarChart{}), InputError);
}

TEST(SvgCharts, HeatMapPrintsEveryValue) {
  HeatMap h;
  h.title = "tau";
  h.row_labels = h.col_labels = {"m1", "m<2>"};
  h.values = {1, -0.5, -0.5, NAN};
  const std::string svg = render_heatmap_svg(h);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count(svg, ">1.00<"), 1u);
  EXPECT_EQ(count(svg, ">-0.50<"), 2u);
  EXPECT_EQ(count(svg, ">n/a<"), 1u);
  // Row and column label; cell titles "row / col": once in (0,1) and (1,0), twice in (1,1).
  EXPECT_EQ(count(svg, "m&lt;2&gt;"), 2u + 4u);
  // +1 is vermilion (Okabe-Ito #D55E00), -1 blue (#0072B2), 0 white.
  EXPECT_NE(svg.find("fill=\"#D55E00\""), std::string::npos);
  h.values = {0, -1, 0, 0};
  const std::string neg = render_heatmap_svg(h);
  EXPECT_NE(neg.find("fill=\"#0072B2\""), std::string::npos);
  EXPECT_NE(neg.find("fill=\"#FFFFFF\""), std::string::npos);
  h.values.pop_back();
  EXPECT_THROW(render_heatmap_svg(h), InputError);
}

TEST(SvgCharts, LinePlotMarkersDrawShapesAndLegend) {
  LinePlot p;
  p.title = "t";
  PlotSeries a;
  a.label = "a";
  a.x = {0, 1};
  a.y = {1, 2};
  PlotSeries b = a;
  b.label = "b";
  p.series = {a, b};
  const std::string plain = render_svg(p);
  EXPECT_EQ(count(plain, "<circle"), 4u);
  p.markers = {marker_for(0), marker_for(1)};
  const std::string marked = render_svg(p);
  EXPECT_EQ(xml_problem(marked), "") << marked;
  EXPECT_EQ(count(marked, "<circle"), 2u + 1u);        // a's points and its legend
  EXPECT_EQ(count(marked, "<rect x="), 2u + 1u + 1u);  // b's squares, legend, frame
  EXPECT_NE(marker_for(0), marker_for(1));
  EXPECT_EQ(marker_for(0), marker_for(5));
}

TEST(SvgCharts, TickLabelsKeepTheHalvesOfAStepOfTwoAndAHalf) {
  LinePlot p;
  p.title = "t";
  p.series = {PlotSeries{"a", {1, 2}, {11, 21}, {}, {}, false, ""}};
  p.y_min = 10;  // 12.5 / 6 rounds up to a tick step of 2.5: ticks 10, 12.5, ..., 22.5
  p.y_max = 22.5;
  const std::string svg = render_svg(p);
  for (const char* t : {">10</text>", ">12.5</text>", ">15</text>", ">17.5</text>", ">22.5</text>"})
    EXPECT_EQ(count(svg, t), 1u) << t;
  EXPECT_EQ(count(svg, ">12</text>"), 0u);  // 12.5 printed with no decimals
  EXPECT_EQ(count(svg, ">18</text>"), 0u);
}

// ---- the page, from the committed fixtures ----

std::string fixture(const std::string& name) { return test::data_path("report/" + name); }

ReportInputs all_inputs() {
  ReportInputs in;
  in.rank = fixture("rank.json");
  in.evaluate = fixture("eval-bootstrap.json");
  in.truth = fixture("truth.csv");
  in.select = fixture("select");
  in.probe = fixture("probe");
  in.finetune = {fixture("ft-resnet20"), fixture("ft-mobilenet")};
  in.command_line = "tlkit report --rank <rank.json>";
  return in;
}

TEST(Report, PageFromEveryInputIsWellFormedAndNamesEverything) {
  const std::string page = build_report_html(all_inputs());
  const nlohmann::json rank = test::load_json(fixture("rank.json"));
  for (const auto& m : rank["models"]) {
    const std::string name = m["name"];
    EXPECT_NE(page.find(">" + name + "<"), std::string::npos) << name;
  }
  for (const auto& metric : rank["metrics"])
    EXPECT_NE(page.find(">" + metric.get<std::string>() + "<"), std::string::npos) << metric;
  for (const char* id : {"ranking", "agreement", "stability", "metrics", "select", "probe",
                         "finetune", "provenance"})
    EXPECT_NE(page.find("<section id=\"" + std::string(id) + "\">"), std::string::npos) << id;
  EXPECT_NE(page.find(rank["dataset"]["listing_sha256"].get<std::string>()), std::string::npos);
  const nlohmann::json ft = test::load_json(fixture("ft-resnet20/metrics.json"));
  EXPECT_NE(page.find(ft["config"]["model_sha256"].get<std::string>()), std::string::npos);
  EXPECT_NE(page.find("tlkit report --rank &lt;rank.json&gt;"), std::string::npos);
  const auto svgs = svgs_of(page);
  // Charts: 4 score bars, 4 scatters, 1 tau + 4x2 stability, 1 heat map, 1 selection, 3 probe,
  // 2 curves; and one mini bar per score in the ranking table (4 models x 4 metrics).
  EXPECT_EQ(svgs.size(), 4u + 4u + 1u + 8u + 1u + 1u + 3u + 2u + 16u);
  for (const auto& svg : svgs) EXPECT_EQ(xml_problem(svg), "") << svg.substr(0, 200);
  // Every chart has a data table: captions of tables >= figures.
  EXPECT_EQ(count(page, "<figure"), count(page, "</figure>"));
  EXPECT_LE(count(page, "<figure"), count(page, "<caption>"));
  // The heat map: logme, leep and nce order the 4 models alike (tau 1). hscore orders them
  // doodlenet > mobilenet > resnet32 > resnet20 where logme has mobilenet > resnet32 > resnet20
  // > doodlenet: of the 6 pairs, the 3 with doodlenet are discordant and the 3 others
  // concordant, so tau(hscore, logme) = (3 - 3) / 6 = 0.
  const std::size_t heat = page.find("<section id=\"metrics\">");
  const std::string hm = page.substr(heat, page.find("</section>", heat) - heat);
  EXPECT_EQ(count(hm, ">1.00</text>"), 9u + 1u);  // 3x3 block and hscore with itself
  EXPECT_EQ(count(hm, ">0.00</text>"), 6u);
}

TEST(Report, FinetuneGridShowsItsBestPointAndLinearHasNoCurve) {
  ReportInputs in;
  in.rank = fixture("rank.json");
  in.finetune = {fixture("ft-grid"), fixture("ft-linear")};
  const std::string page = build_report_html(in);
  const nlohmann::json grid = test::load_json(fixture("ft-grid/metrics.json"));
  const std::string best = grid["best"]["dir"];
  const nlohmann::json point = test::load_json(fixture("ft-grid/" + best + "/metrics.json"));
  EXPECT_NE(page.find("(best of grid: " + best + ")"), std::string::npos);
  // The loss table holds the best point's epochs (and none of the linear run, which has none).
  const std::size_t at = page.find("<caption>Training loss per epoch</caption>");
  ASSERT_NE(at, std::string::npos);
  const std::string table = page.substr(at, page.find("</table>", at) - at);
  EXPECT_EQ(count(table, "<tr>") - 1, point["history"].size());
  for (const auto& h : point["history"])
    EXPECT_NE(table.find(fmt::format("data-v=\"{:.17g}\"", h["train_loss"].get<double>())),
              std::string::npos);
  EXPECT_NE(page.find("<td>linear</td>"), std::string::npos);
  for (const auto& svg : svgs_of(page)) EXPECT_EQ(xml_problem(svg), "");
}

// The table of `caption` in `page`, from its caption to its end.
std::string table_of(const std::string& page, const std::string& caption) {
  const std::size_t at = page.find("<caption>" + caption + "</caption>");
  if (at == std::string::npos) return "";
  return page.substr(at, page.find("</table>", at) - at);
}

TEST(Report, SelectionShowsEveryStageAndTheChoice) {
  ReportInputs in;
  in.rank = fixture("rank.json");
  in.select = fixture("select");
  const std::string page = build_report_html(in);
  const nlohmann::json sel = test::load_json(fixture("select/select.json"));
  const std::string chosen = sel["chosen"];
  EXPECT_NE(page.find("Chosen: <strong>" + chosen + "</strong>"), std::string::npos);
  // One line per fine-tuned model, each stage's accuracy in the data table as select wrote it.
  const std::string data = table_of(page, "Validation accuracy by stage (data)");
  ASSERT_FALSE(data.empty());
  std::size_t tuned = 0;
  for (const auto& m : sel["models"]) {
    if (m["stage_val_acc"].empty()) continue;
    ++tuned;
    const std::string label =
        m["name"].get<std::string>() + (m["name"] == chosen ? " (chosen)" : "");
    EXPECT_NE(data.find(">" + label + "<"), std::string::npos) << label;
    for (const auto& a : m["stage_val_acc"])
      EXPECT_NE(data.find(fmt::format("data-v=\"{:.17g}\"", a.get<double>())), std::string::npos)
          << label;
  }
  EXPECT_EQ(count(data, "<tr>") - 1, tuned);
  // Stages: one row each, its survivors named.
  const std::string stages = table_of(page, "Stages");
  EXPECT_EQ(count(stages, "<tr>") - 1, sel["stages"].size());
  for (const auto& s : sel["stages"])
    for (const auto& n : s["survivors"])
      EXPECT_NE(stages.find(n.get<std::string>()), std::string::npos);
  // Every model in the models' table, the chosen one marked.
  const std::string all = table_of(page, "Every model: its stage-0 score and how far it went");
  EXPECT_EQ(count(all, "<tr>") - 1, sel["models"].size());
  EXPECT_EQ(count(all, ">chosen<"), 1u);
  for (const auto& svg : svgs_of(page)) EXPECT_EQ(xml_problem(svg), "");
}

TEST(Report, EscapesNamesFromTheInputs) {
  nlohmann::json rank = test::load_json(fixture("rank.json"));
  const std::string evil = "<script>alert(\"x\")</script> & 'q'";
  const std::string old = rank["models"][0]["name"];
  rank["models"][0]["name"] = evil;
  for (auto& [metric, names] : rank["ranking"].items())
    for (auto& n : names)
      if (n == old) n = evil;
  ReportInputs in;
  in.rank = "mem.json";
  in.rank_text = rank.dump();
  const std::string page = build_report_html(in);
  EXPECT_EQ(page.find(evil), std::string::npos);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"),
            std::string::npos);
  for (const auto& svg : svgs_of(page)) EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(page, "<script>"), 1u);  // the page's own sorting script only
}

std::string error_of(const ReportInputs& in) {
  try {
    build_report_html(in);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Report, RefusesBadInputsNamingFileFieldAndValue) {
  const nlohmann::json rank = test::load_json(fixture("rank.json"));
  ReportInputs in;
  in.rank = "r.json";
  nlohmann::json v2 = rank;
  v2["schema_version"] = 2;
  in.rank_text = v2.dump();
  EXPECT_EQ(error_of(in),
            "--rank r.json: field 'schema_version' is 2 (this tlkit reads version 1)");
  in.rank_text = test::load_json(fixture("eval.json")).dump();
  EXPECT_NE(error_of(in).find("field 'tool' is missing (expected 'tlkit rank'"), std::string::npos);
  in.rank_text = "{\"tool\": \"tlkit rank\", ";
  EXPECT_NE(error_of(in).find("--rank r.json: not JSON"), std::string::npos);
  nlohmann::json bad = rank;
  bad["models"][2]["scores"]["leep"] = "high";
  in.rank_text = bad.dump();
  EXPECT_EQ(error_of(in),
            "--rank r.json: field 'models[2].scores.leep' is 'high' (expected a number)");
  // An evaluation of other models.
  in.rank_text = rank.dump();
  test::TempDir dir;
  nlohmann::json ev = test::load_json(fixture("eval.json"));
  ev["metrics"]["logme"]["top1_models"][0] = "resnet152";
  test::write_bytes(dir.file("e.json"), ev.dump());
  in.evaluate = dir.file("e.json");
  const std::string e = error_of(in);
  EXPECT_NE(e.find("--evaluate " + dir.file("e.json") +
                   ": field 'metrics.logme.top1_models[0]' is 'resnet152', not a model of --rank "
                   "r.json"),
            std::string::npos)
      << e;
  in.evaluate.clear();
  // A selection of other models, another schema, a folder without select.json.
  nlohmann::json sel = test::load_json(fixture("select/select.json"));
  std::size_t tuned = 0;
  while (sel["models"][tuned]["stage_reached"] == 0) ++tuned;
  sel["models"][tuned]["name"] = "resnet152";
  std::filesystem::create_directories(dir.file("sel"));
  test::write_bytes(dir.file("sel/select.json"), sel.dump());
  in.select = dir.file("sel");
  EXPECT_EQ(error_of(in).rfind(fmt::format("--select {}: field 'models[{}].name' is 'resnet152', "
                                           "a fine-tuned model that is not a model of --rank "
                                           "r.json (its models: ",
                                           dir.file("sel/select.json"), tuned),
                               0),
            0u)
      << error_of(in);
  sel = test::load_json(fixture("select/select.json"));
  sel["schema_version"] = 3;
  test::write_bytes(dir.file("sel/select.json"), sel.dump());
  EXPECT_EQ(error_of(in), "--select " + dir.file("sel/select.json") +
                              ": field 'schema_version' is 3 (this tlkit reads version 1)");
  in.select = fixture("probe");
  EXPECT_NE(error_of(in).find(": no select.json (expected a tlkit select --out folder)"),
            std::string::npos);
  in.select.clear();
  in.probe = dir.file("nowhere");
  EXPECT_EQ(error_of(in), "--probe " + dir.file("nowhere") + ": no such folder");
  in.probe = dir.path();
  EXPECT_NE(error_of(in).find(": no results.json (expected a tlkit probe --out folder)"),
            std::string::npos);
  in.probe.clear();
  in.finetune = {fixture("probe")};
  EXPECT_NE(error_of(in).find(": no metrics.json (expected a tlkit finetune --out folder)"),
            std::string::npos);
  in.finetune.clear();
  in.rank_text.clear();
  in.rank = dir.file("missing.json");
  EXPECT_EQ(error_of(in).rfind("--rank " + dir.file("missing.json") + ": cannot open: ", 0), 0u);
}

TEST(Report, WritesNothingWhenAnInputIsBad) {
  test::TempDir dir;
  const std::string out = dir.file("r.html");
  test::write_bytes(out, "old");
  ReportInputs in = all_inputs();
  in.probe = dir.file("nowhere");
  EXPECT_THROW(write_report(in, out), InputError);
  EXPECT_EQ(test::read_bytes(out), "old");
  in.probe.clear();
  write_report(in, out);
  EXPECT_EQ(test::read_bytes(out).rfind("<!DOCTYPE html>", 0), 0u);
}

}  // namespace
}  // namespace tlkit

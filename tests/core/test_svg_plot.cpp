// tlkit/core/svg_plot.h: the SVG line chart of tlkit probe.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "test_support.h"
#include "tlkit/core/error.h"
#include "tlkit/core/svg_plot.h"

namespace tlkit {
namespace {

using test::count;

LinePlot two_series() {
  LinePlot p;
  p.title = "acc <vs> depth & \"size\"";
  p.x_label = "blocks kept";
  p.y_label = "accuracy, %";
  PlotSeries a;
  a.label = "fine-tune, 100 images";
  a.x = {0, 1, 2};
  a.y = {10, 50, 90};
  a.lo = {5, 45, 85};
  a.hi = {15, 55, 95};
  PlotSeries b;
  b.label = "probe";
  b.x = {0, 1, 2};
  b.y = {20, NAN, 40};
  b.dashed = true;
  p.series = {a, b};
  p.y_min = 0;
  p.y_max = 100;
  return p;
}

TEST(SvgPlot, DrawsSeriesLegendAndEscapedText) {
  const std::string svg = render_svg(two_series());
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("acc &lt;vs&gt; depth &amp; &quot;size&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<vs>"), std::string::npos);
  EXPECT_NE(svg.find(">blocks kept<"), std::string::npos);
  EXPECT_NE(svg.find(">accuracy, %<"), std::string::npos);
  EXPECT_NE(svg.find(">fine-tune, 100 images<"), std::string::npos);
  EXPECT_NE(svg.find(">probe<"), std::string::npos);
  // The NaN breaks the dashed series into two one-point pieces: 1 + 2 polylines, 5 markers.
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_EQ(count(svg, "<circle"), 5u);
  EXPECT_EQ(count(svg, "stroke-dasharray"), 2u + 1u);  // two pieces and the legend line
  // 3 error bars of series a; tags balanced.
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
}

TEST(SvgPlot, MapsDataToThePlotArea) {
  LinePlot p = two_series();
  p.series.resize(1);
  const std::string svg = render_svg(p);
  // Plot area: x from 70 to 820 - 260 = 560, y from 40 (y = 100) to 440 - 55 = 385 (y = 0).
  // (0, 10) -> (70, 385 - 0.1 * 345), (2, 90) -> (560, 385 - 0.9 * 345).
  EXPECT_NE(svg.find("points=\"70.0,350.5 315.0,212.5 560.0,74.5\""), std::string::npos) << svg;
}

TEST(SvgPlot, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 100), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(0, 1, 4), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  const auto t = nice_ticks(-3.2, 7.9);
  EXPECT_EQ(t.front(), -2);
  EXPECT_EQ(t.back(), 6);
}

TEST(SvgPlot, RejectsBadSeries) {
  LinePlot p = two_series();
  p.series[0].y.pop_back();
  EXPECT_THROW(render_svg(p), InputError);
  LinePlot q;
  q.series.push_back(PlotSeries{"empty", {1}, {NAN}, {}, {}, false, ""});
  EXPECT_THROW(render_svg(q), InputError);
}

}  // namespace
}  // namespace tlkit

// Small, dependency-free SVG charts. The line chart (tlkit probe's plots): axes with ticks and
// labels, a title, a legend, one polyline with point markers per series, optional vertical error
// bars. The scatter plot, horizontal bar chart and heat map (tlkit report's page) share its look.
// Every chart is a standalone SVG document (it can also be inlined into HTML); all text is
// XML-escaped. Colours are the Okabe-Ito palette; where series differ, they differ by marker
// shape or dash too, so they stay apart in grey print and for colour-blind readers.
#pragma once

#include <string>
#include <vector>

namespace tlkit {

struct PlotSeries {
  std::string label;      ///< legend text
  std::vector<double> x;  ///< same length as y; NaN y values break the line
  std::vector<double> y;
  std::vector<double> lo;  ///< optional error bar bottoms (empty: none), same length as y
  std::vector<double> hi;  ///< optional error bar tops
  bool dashed = false;
  std::string color;  ///< CSS colour; empty: the palette's next colour
};

/// A point marker. kCircle is the line chart's default.
enum class Marker { kCircle, kSquare, kTriangle, kDiamond, kCross };

/// The marker of series `i` in a chart that tells series apart by shape: circle, square,
/// triangle, diamond, cross, then again.
Marker marker_for(std::size_t i);

struct LinePlot {
  std::string title;
  std::string subtitle;  ///< optional smaller second line under the title
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  std::vector<std::string> x_tick_labels;  ///< optional: labels of x = 0, 1, 2, ... (integers)
  double y_min = 0.0, y_max = 0.0;         ///< y range; equal: from the data (padded)
  int width = 820, height = 440;
  /// Optional marker per series (same length as `series`): drawn at each point and in the legend.
  /// Empty: filled circles (hollow for dashed series) and a legend of lines alone.
  std::vector<Marker> markers;
};

/// The chart as an SVG document. Text is XML-escaped. Throws tlkit::InputError when a series has
/// x and y of different lengths or no series has a finite point.
std::string render_svg(const LinePlot& plot);

/// A scatter plot: one marker per point, optionally labelled, with a hover title per point.
struct ScatterSeries {
  std::string label;  ///< legend text (no legend when the plot has a single series)
  std::vector<double> x, y;
  std::vector<std::string> point_labels;  ///< optional, same length: short text beside a point
  std::vector<std::string> point_titles;  ///< optional, same length: hover text (<title>)
  Marker marker = Marker::kCircle;
  std::string color;  ///< empty: the palette's next colour
};

struct ScatterPlot {
  std::string title;
  std::string subtitle;
  std::string x_label;
  std::string y_label;
  std::vector<ScatterSeries> series;
  int width = 560, height = 420;
};

/// The scatter plot as an SVG document. Points with a non-finite coordinate are left out.
/// Throws tlkit::InputError when a series' vectors differ in length or no point is finite.
std::string render_scatter_svg(const ScatterPlot& plot);

/// Horizontal bars, one per label, from zero to the value (the value axis always includes 0),
/// with optional interval whiskers and a short flag text after the bar; or, with `dots`, a dot
/// at the value (a dot plot, for values whose zero means nothing, such as score intervals).
struct BarChart {
  std::string title;
  std::string subtitle;
  std::string value_label;          ///< the value axis' label, with its unit
  std::vector<std::string> labels;  ///< one per bar, top to bottom
  std::vector<double> values;       ///< NaN: no bar ("no value" is written)
  std::vector<double> lo, hi;       ///< optional intervals (empty: none), same length as values
  std::vector<std::string> flags;   ///< optional, same length: text after the bar ("tie")
  std::string color;                ///< empty: the palette's first colour
  bool dots = false;  ///< a dot at the value instead of a bar (the axis need not include 0)
  int width = 640;
  int bar_height = 22;
};

/// The bar chart as an SVG document. Throws tlkit::InputError when the vectors differ in length
/// or there is no bar.
std::string render_bar_svg(const BarChart& chart);

/// A matrix of values shown as coloured cells, each also printed as a number (so the chart reads
/// in grey): a diverging scale from `v_min` (blue) through white to `v_max` (vermilion).
struct HeatMap {
  std::string title;
  std::string subtitle;
  std::string value_label;  ///< what a cell holds (the colour key's caption)
  std::vector<std::string> row_labels, col_labels;
  std::vector<double> values;  ///< row-major, rows x cols; NaN: an empty cell marked "n/a"
  double v_min = -1.0, v_max = 1.0;
  int cell = 56;
};

/// The heat map as an SVG document. Throws tlkit::InputError when `values` is not rows x cols or
/// the matrix is empty.
std::string render_heatmap_svg(const HeatMap& map);

/// `s` with &, <, >, " and ' replaced by XML entities (text and attribute values of SVG/HTML).
std::string xml_escape(const std::string& s);

/// "Nice" tick positions (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi], about `target`.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace tlkit

// A small, dependency-free SVG line chart (tlkit probe's plots): axes with ticks and labels, a
// title, a legend, one polyline with point markers per series, optional vertical error bars.
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

struct LinePlot {
  std::string title;
  std::string subtitle;  ///< optional smaller second line under the title
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  std::vector<std::string> x_tick_labels;  ///< optional: labels of x = 0, 1, 2, ... (integers)
  double y_min = 0.0, y_max = 0.0;         ///< y range; equal: from the data (padded)
  int width = 820, height = 440;
};

/// The chart as an SVG document. Text is XML-escaped. Throws tlkit::InputError when a series has
/// x and y of different lengths or no series has a finite point.
std::string render_svg(const LinePlot& plot);

/// "Nice" tick positions (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi], about `target`.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace tlkit

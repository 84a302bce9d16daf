// SVG line chart (include/tlkit/core/svg_plot.h).
#include "tlkit/core/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tlkit/core/error.h"

namespace tlkit {
namespace {

std::string escape(const std::string& s) {
  std::string o;
  for (const char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// Colour-blind-safe palette (Okabe-Ito).
const char* const kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                "#E69F00", "#56B4E9", "#000000", "#F0E442"};

std::string tick_text(double v, double step) {
  if (step >= 1 && std::abs(v) < 1e9) return fmt::format("{:.0f}", v);
  const int digits = std::min(6, static_cast<int>(std::ceil(-std::log10(step))) + 1);
  std::string t = fmt::format("{:.{}f}", v, digits);
  while (t.find('.') != std::string::npos && (t.back() == '0' || t.back() == '.')) {
    const bool dot = t.back() == '.';
    t.pop_back();
    if (dot) break;
  }
  return t == "-0" ? "0" : t;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step)
    t.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  return t;
}

std::string render_svg(const LinePlot& plot) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : plot.series) {
    TLKIT_CHECK_ARG(s.x.size() == s.y.size(), "plot series '{}': {} x values but {} y values",
                    s.label, s.x.size(), s.y.size());
    TLKIT_CHECK_ARG(s.lo.size() == s.hi.size() && (s.lo.empty() || s.lo.size() == s.y.size()),
                    "plot series '{}': error bars do not match the points", s.label);
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.lo.empty() ? s.y[i] : std::min(s.y[i], s.lo[i]));
      y1 = std::max(y1, s.hi.empty() ? s.y[i] : std::max(s.y[i], s.hi[i]));
    }
  }
  TLKIT_CHECK_ARG(std::isfinite(x0), "plot '{}': no finite point to draw", plot.title);
  if (plot.y_max > plot.y_min) {
    y0 = plot.y_min;
    y1 = plot.y_max;
  } else {
    const double pad = y1 > y0 ? 0.05 * (y1 - y0) : std::max(1.0, std::abs(y0) * 0.1);
    y0 -= pad;
    y1 += pad;
  }
  if (!(x1 > x0)) {
    x0 -= 1;
    x1 += 1;
  }
  const double W = plot.width, H = plot.height;
  // The legend sits on the right; rotated tick labels (many named ticks) need room below.
  const bool rotate = plot.x_tick_labels.size() > 8;
  const double left = 70, right = 260, top = plot.subtitle.empty() ? 40 : 54,
               bottom = rotate ? 95 : 55;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };

  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      plot.width, plot.height);
  o +=
      fmt::format("<text x=\"{:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                  W / 2, escape(plot.title));
  if (!plot.subtitle.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"40\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
                     W / 2, escape(plot.subtitle));
  // Grid, ticks and tick labels.
  for (const double t : nice_ticks(y0, y1)) {
    const double y = py(t);
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
        left, y, left + pw, y, left - 6, y + 4, tick_text(t, (y1 - y0) / 6));
  }
  std::vector<double> xt;
  if (!plot.x_tick_labels.empty()) {
    for (std::size_t i = 0; i < plot.x_tick_labels.size(); ++i)
      if (static_cast<double>(i) >= x0 - 1e-9 && static_cast<double>(i) <= x1 + 1e-9)
        xt.push_back(static_cast<double>(i));
  } else {
    xt = nice_ticks(x0, x1);
  }
  for (const double t : xt) {
    const double x = px(t);
    const std::string label = plot.x_tick_labels.empty()
                                  ? tick_text(t, (x1 - x0) / 6)
                                  : plot.x_tick_labels[static_cast<std::size_t>(std::lround(t))];
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
        "stroke=\"#ddd\"/>\n",
        x, top, top + ph);
    if (rotate)
      o += fmt::format(
          "<text x=\"{0:.1f}\" y=\"{1:.1f}\" text-anchor=\"end\" font-size=\"10\" "
          "transform=\"rotate(-35 {0:.1f} {1:.1f})\">{2}</text>\n",
          x, top + ph + 14, escape(label));
    else
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x,
                       top + ph + 16, escape(label));
  }
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left,
      top, pw, ph);
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                   left + pw / 2, H - 8, escape(plot.x_label));
  o += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">"
      "{1}</text>\n",
      top + ph / 2, escape(plot.y_label));
  // Series and legend.
  std::size_t palette = 0;
  for (std::size_t si = 0; si < plot.series.size(); ++si) {
    const PlotSeries& s = plot.series[si];
    const std::string color = s.color.empty() ? kPalette[palette++ % 8] : s.color;
    const std::string dash = s.dashed ? " stroke-dasharray=\"6 4\"" : "";
    std::string pts;
    auto flush = [&] {
      if (!pts.empty())
        o += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", color,
            dash, pts);
      pts.clear();
    };
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        flush();
        continue;
      }
      pts += fmt::format("{}{:.1f},{:.1f}", pts.empty() ? "" : " ", px(s.x[i]), py(s.y[i]));
    }
    flush();
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (!s.lo.empty() && std::isfinite(s.lo[i]) && std::isfinite(s.hi[i]))
        o += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
            "stroke=\"{3}\" stroke-width=\"1\"/>\n",
            px(s.x[i]), py(s.lo[i]), py(s.hi[i]), color);
      o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(s.x[i]),
                       py(s.y[i]), s.dashed ? "white\" stroke=\"" + color : color);
    }
    const double ly = top + 10 + 20.0 * static_cast<double>(si);
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/>\n<text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text>\n",
        left + pw + 12, ly, left + pw + 40, color, dash, left + pw + 46, ly + 4, escape(s.label));
  }
  o += "</svg>\n";
  return o;
}

}  // namespace tlkit

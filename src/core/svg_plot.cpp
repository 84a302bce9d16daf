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

// The plot area's frame, the x-axis label centred below it (baseline at x_label_y) and the y-axis
// label rotated at its left; both labels already escaped.
std::string plot_frame(double left, double top, double pw, double ph, double x_label_y,
                       const std::string& x_label, const std::string& y_label) {
  std::string o = fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left,
      top, pw, ph);
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                   left + pw / 2, x_label_y, x_label);
  o += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">"
      "{1}</text>\n",
      top + ph / 2, y_label);
  return o;
}

// A marker of half-size r centred at (x, y).
std::string marker_svg(Marker m, double x, double y, const std::string& color, double r) {
  switch (m) {
    case Marker::kSquare:
      return fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n",
          x - r, y - r, 2 * r, 2 * r, color);
    case Marker::kTriangle:
      return fmt::format(
          "<polygon points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\" fill=\"{}\"/>\n", x,
          y - 1.2 * r, x - 1.1 * r, y + 0.9 * r, x + 1.1 * r, y + 0.9 * r, color);
    case Marker::kDiamond:
      return fmt::format(
          "<polygon points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\" "
          "fill=\"white\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
          x, y - 1.3 * r, x + 1.3 * r, y, x, y + 1.3 * r, x - 1.3 * r, y, color);
    case Marker::kCross:
      return fmt::format(
          "<path d=\"M{:.1f} {:.1f}L{:.1f} {:.1f}M{:.1f} {:.1f}L{:.1f} {:.1f}\" stroke=\"{}\" "
          "stroke-width=\"2\"/>\n",
          x - r, y - r, x + r, y + r, x - r, y + r, x + r, y - r, color);
    case Marker::kCircle:
    default:
      return fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:.1f}\" fill=\"{}\"/>\n", x, y,
                         r, color);
  }
}

std::string svg_open(int w, int h, const std::string& title, const std::string& subtitle) {
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n"
      "<title>{2}</title>\n<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{3:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{2}</text>\n",
      w, h, xml_escape(title), w / 2.0);
  if (!subtitle.empty())
    o += fmt::format("<text x=\"{:.1f}\" y=\"40\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
                     w / 2.0, xml_escape(subtitle));
  return o;
}

std::string tick_text(double v, double step);

// A tick's label: as many decimals as the ticks' spacing (about `step`) needs. Ticks are
// multiples of 1, 2, 2.5 or 5 times a power of ten, so a spacing of 2.5 puts ticks at halves
// (12.5 is printed as such, not rounded to 12).
std::string tick_text(double v, double step) {
  if (step >= 1 && std::abs(v) < 1e9 && v == std::round(v)) return fmt::format("{:.0f}", v);
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

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'') {
      o += "&#39;";
    } else if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      o += "\xEF\xBF\xBD";  // U+FFFD: XML 1.0 has no control characters
    } else if (u == 0x7f) {
      o += "\xEF\xBF\xBD";
    } else {
      o += escape(std::string(1, c));
    }
  }
  return o;
}

Marker marker_for(std::size_t i) {
  static const Marker kOrder[] = {Marker::kCircle, Marker::kSquare, Marker::kTriangle,
                                  Marker::kDiamond, Marker::kCross};
  return kOrder[i % 5];
}

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
  o += plot_frame(left, top, pw, ph, H - 8, escape(plot.x_label), escape(plot.y_label));
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
      if (si < plot.markers.size())
        o += marker_svg(plot.markers[si], px(s.x[i]), py(s.y[i]), color, 3.5);
      else
        o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(s.x[i]),
                         py(s.y[i]), s.dashed ? "white\" stroke=\"" + color : color);
    }
    const double ly = top + 10 + 20.0 * static_cast<double>(si);
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/>\n<text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text>\n",
        left + pw + 12, ly, left + pw + 40, color, dash, left + pw + 46, ly + 4, escape(s.label));
    if (si < plot.markers.size()) o += marker_svg(plot.markers[si], left + pw + 26, ly, color, 3.5);
  }
  o += "</svg>\n";
  return o;
}

std::string render_scatter_svg(const ScatterPlot& plot) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : plot.series) {
    TLKIT_CHECK_ARG(s.x.size() == s.y.size(), "scatter series '{}': {} x values but {} y values",
                    s.label, s.x.size(), s.y.size());
    TLKIT_CHECK_ARG(s.point_labels.empty() || s.point_labels.size() == s.x.size(),
                    "scatter series '{}': {} point labels for {} points", s.label,
                    s.point_labels.size(), s.x.size());
    TLKIT_CHECK_ARG(s.point_titles.empty() || s.point_titles.size() == s.x.size(),
                    "scatter series '{}': {} point titles for {} points", s.label,
                    s.point_titles.size(), s.x.size());
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  TLKIT_CHECK_ARG(std::isfinite(x0), "plot '{}': no finite point to draw", plot.title);
  auto pad = [](double& lo, double& hi) {
    const double p = hi > lo ? 0.08 * (hi - lo) : std::max(1e-3, std::abs(lo) * 0.1);
    lo -= p;
    hi += p;
  };
  pad(x0, x1);
  pad(y0, y1);
  const bool legend = plot.series.size() > 1;
  const double W = plot.width, H = plot.height;
  const double left = 78, right = legend ? 170 : 24, top = plot.subtitle.empty() ? 40 : 54,
               bottom = 52;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };
  std::string o = svg_open(plot.width, plot.height, plot.title, plot.subtitle);
  for (const double t : nice_ticks(y0, y1, 5))
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
        left, py(t), left + pw, py(t), left - 6, py(t) + 4, tick_text(t, (y1 - y0) / 5));
  for (const double t : nice_ticks(x0, x1, 5))
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(t), top, top + ph, top + ph + 16, tick_text(t, (x1 - x0) / 5));
  o += plot_frame(left, top, pw, ph, H - 10, xml_escape(plot.x_label), xml_escape(plot.y_label));
  std::size_t palette = 0;
  for (std::size_t si = 0; si < plot.series.size(); ++si) {
    const ScatterSeries& s = plot.series[si];
    const std::string color = s.color.empty() ? kPalette[palette++ % 8] : s.color;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      const double x = px(s.x[i]), y = py(s.y[i]);
      o += "<g>";
      if (!s.point_titles.empty()) o += "<title>" + xml_escape(s.point_titles[i]) + "</title>";
      o += marker_svg(s.marker, x, y, color, 5);
      if (!s.point_labels.empty() && !s.point_labels[i].empty())
        o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\">{}</text>", x + 7, y - 6,
                         xml_escape(s.point_labels[i]));
      o += "</g>\n";
    }
    if (legend) {
      const double ly = top + 10 + 20.0 * static_cast<double>(si);
      o += marker_svg(s.marker, left + pw + 20, ly, color, 5);
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", left + pw + 32, ly + 4,
                       xml_escape(s.label));
    }
  }
  o += "</svg>\n";
  return o;
}

std::string render_bar_svg(const BarChart& c) {
  const std::size_t n = c.labels.size();
  TLKIT_CHECK_ARG(n > 0, "bar chart '{}': no bars", c.title);
  TLKIT_CHECK_ARG(c.values.size() == n, "bar chart '{}': {} values for {} labels", c.title,
                  c.values.size(), n);
  TLKIT_CHECK_ARG(c.lo.size() == c.hi.size() && (c.lo.empty() || c.lo.size() == n),
                  "bar chart '{}': intervals do not match the bars", c.title);
  TLKIT_CHECK_ARG(c.flags.empty() || c.flags.size() == n, "bar chart '{}': {} flags for {} bars",
                  c.title, c.flags.size(), n);
  double v0 = c.dots ? std::numeric_limits<double>::infinity() : 0.0;
  double v1 = c.dots ? -v0 : 0.0;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    for (const double v :
         {c.values[i], c.lo.empty() ? c.values[i] : c.lo[i], c.hi.empty() ? c.values[i] : c.hi[i]})
      if (std::isfinite(v)) {
        v0 = std::min(v0, v);
        v1 = std::max(v1, v);
        any = true;
      }
  }
  if (!any) v0 = v1 = 0;
  if (!(v1 > v0)) {
    v0 -= 0.5;
    v1 += 0.5;
  }
  const double span = v1 - v0;
  if (c.dots || v0 < 0) v0 -= 0.04 * span;
  if (c.dots || v1 > 0) v1 += 0.04 * span;
  std::size_t longest = 0;
  for (const auto& l : c.labels) longest = std::max(longest, l.size());
  bool flagged = false;
  for (const auto& f : c.flags) flagged = flagged || !f.empty();
  const double left = std::min(260.0, 14.0 + 6.6 * static_cast<double>(longest));
  const double right = flagged ? 130 : 30;
  const double top = c.subtitle.empty() ? 40 : 54, bottom = 48;
  const double W = c.width, pw = W - left - right;
  const double H = top + bottom + c.bar_height * static_cast<double>(n);
  auto px = [&](double v) { return left + (v - v0) / (v1 - v0) * pw; };
  std::string o = svg_open(c.width, static_cast<int>(std::lround(H)), c.title, c.subtitle);
  const double ph = c.bar_height * static_cast<double>(n);
  for (const double t : nice_ticks(v0, v1, 5))
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(t), top, top + ph, top + ph + 16, tick_text(t, (v1 - v0) / 5));
  const std::string color = c.color.empty() ? kPalette[0] : c.color;
  for (std::size_t i = 0; i < n; ++i) {
    const double y = top + c.bar_height * static_cast<double>(i);
    const double cy = y + c.bar_height / 2.0;
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6,
                     cy + 4, xml_escape(c.labels[i]));
    const double v = c.values[i];
    double end = c.dots ? px(v0) : px(0);
    if (std::isfinite(v) && c.dots) {
      o += "<g><title>" + xml_escape(c.labels[i]) + ": " + fmt::format("{:.6g}", v) + "</title>" +
           marker_svg(Marker::kDiamond, px(v), cy, color, 5) + "</g>\n";
      end = px(v) + 7;
    } else if (std::isfinite(v)) {
      const double a = std::min(px(0), px(v)), b = std::max(px(0), px(v));
      o += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
          "stroke=\"#222\" stroke-width=\"0.5\"><title>{}: {}</title></rect>\n",
          a, y + 3, std::max(0.5, b - a), c.bar_height - 6.0, color, xml_escape(c.labels[i]),
          fmt::format("{:.6g}", v));
      end = std::max(px(0), px(v));
    } else {
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\">no value</text>\n", end + 4,
                       cy + 4);
      end += 60;
    }
    if (!c.lo.empty() && std::isfinite(c.lo[i]) && std::isfinite(c.hi[i])) {
      o += fmt::format(
          "<path d=\"M{0:.1f} {1:.1f}H{2:.1f}M{0:.1f} {3:.1f}V{4:.1f}M{2:.1f} {3:.1f}V{4:.1f}\" "
          "stroke=\"#000\" stroke-width=\"1.5\" fill=\"none\"/>\n",
          px(c.lo[i]), cy, px(c.hi[i]), cy - 5, cy + 5);
      end = std::max(end, px(c.hi[i]));
    }
    if (!c.flags.empty() && !c.flags[i].empty())
      o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\">{}</text>\n",
                       std::min(end + 6, W - right + 4), cy + 4, xml_escape(c.flags[i]));
  }
  if (v0 <= 0 && v1 >= 0)
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/>\n",
        px(0), top, top + ph);
  o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                   left + pw / 2, H - 10, xml_escape(c.value_label));
  o += "</svg>\n";
  return o;
}

namespace {

// The diverging colour of t in [-1, 1]: Okabe-Ito blue (-1), white (0), vermilion (+1).
std::string diverging(double t) {
  t = std::clamp(t, -1.0, 1.0);
  const int neg[3] = {0x00, 0x72, 0xB2}, pos[3] = {0xD5, 0x5E, 0x00};
  const int* e = t < 0 ? neg : pos;
  const double a = std::abs(t);
  int rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = static_cast<int>(std::lround(255.0 + (e[k] - 255.0) * a));
  return fmt::format("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2]);
}

}  // namespace

std::string render_heatmap_svg(const HeatMap& m) {
  const std::size_t rows = m.row_labels.size(), cols = m.col_labels.size();
  TLKIT_CHECK_ARG(rows > 0 && cols > 0, "heat map '{}': no rows or no columns", m.title);
  TLKIT_CHECK_ARG(m.values.size() == rows * cols, "heat map '{}': {} values for {} x {} cells",
                  m.title, m.values.size(), rows, cols);
  TLKIT_CHECK_ARG(m.v_max > m.v_min, "heat map '{}': empty value range", m.title);
  std::size_t longest = 0;
  for (const auto& l : m.row_labels) longest = std::max(longest, l.size());
  for (const auto& l : m.col_labels) longest = std::max(longest, l.size());
  const double label = std::min(200.0, 12.0 + 6.6 * static_cast<double>(longest));
  const double top = (m.subtitle.empty() ? 40 : 54) + label, left = label + 8;
  const double cell = m.cell;
  const double W = std::max(left + cell * static_cast<double>(cols) + 120, 360.0);
  const double H = std::max(top + cell * static_cast<double>(rows) + 24, top + 200.0);
  std::string o = svg_open(static_cast<int>(std::lround(W)), static_cast<int>(std::lround(H)),
                           m.title, m.subtitle);
  for (std::size_t c = 0; c < cols; ++c) {
    const double x = left + cell * (static_cast<double>(c) + 0.5);
    o += fmt::format(
        "<text x=\"{0:.1f}\" y=\"{1:.1f}\" transform=\"rotate(-45 {0:.1f} {1:.1f})\">{2}</text>\n",
        x, top - 6, xml_escape(m.col_labels[c]));
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const double y = top + cell * static_cast<double>(r);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6,
                     y + cell / 2 + 4, xml_escape(m.row_labels[r]));
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = m.values[r * cols + c];
      const double x = left + cell * static_cast<double>(c);
      const double t = std::isfinite(v) ? 2 * (v - m.v_min) / (m.v_max - m.v_min) - 1 : 0;
      const std::string text = std::isfinite(v) ? fmt::format("{:.2f}", v) : "n/a";
      o += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
          "stroke=\"#fff\"><title>{} / {}: {}</title></rect>\n"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
          x, y, cell, cell, std::isfinite(v) ? diverging(t) : "#eeeeee",
          xml_escape(m.row_labels[r]), xml_escape(m.col_labels[c]), text, x + cell / 2,
          y + cell / 2 + 4, std::abs(t) > 0.6 ? "#fff" : "#000", text);
    }
  }
  // Colour key: 11 steps from v_min to v_max.
  const double kx = left + cell * static_cast<double>(cols) + 30, ky = top, kh = 160;
  for (int i = 0; i <= 10; ++i) {
    const double t = 1 - i / 5.0;
    o += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"16\" height=\"{:.1f}\" fill=\"{}\"/>\n", kx,
        ky + kh * i / 11.0, kh / 11.0 + 0.5, diverging(t));
  }
  o += fmt::format(
      "<rect x=\"{0:.1f}\" y=\"{1:.1f}\" width=\"16\" height=\"{2:.1f}\" fill=\"none\" "
      "stroke=\"#333\"/>\n<text x=\"{3:.1f}\" y=\"{4:.1f}\">{5}</text>\n"
      "<text x=\"{3:.1f}\" y=\"{6:.1f}\">{7}</text>\n"
      "<text x=\"{0:.1f}\" y=\"{8:.1f}\" font-size=\"11\">{9}</text>\n",
      kx, ky, kh, kx + 20, ky + 8, tick_text(m.v_max, 0.1), ky + kh, tick_text(m.v_min, 0.1),
      ky + kh + 16, xml_escape(m.value_label));
  o += "</svg>\n";
  return o;
}

}  // namespace tlkit

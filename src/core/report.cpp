// tlkit report (include/tlkit/core/report.h): reads the inputs, checks them, lays out the page.
#include "tlkit/core/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "report_html.h"
#include "tlkit/core/correlation.h"
#include "tlkit/core/csv.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/svg_plot.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using html::Cell;
using html::Table;

// ---- reading JSON with messages that name the flag, file, field and value ----

struct JsonDoc {
  std::string where;  // "--rank rank.json"
  json j;
};

std::string read_text(const std::string& where, const std::string& path) {
  TLKIT_CHECK_ARG(!fs::is_directory(path), "{}: is a folder (expected a file)", where);
  std::ifstream f(path, std::ios::binary);
  TLKIT_CHECK_ARG(f.good(), "{}: cannot open: {}", where, std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

JsonDoc parse_json(const std::string& where, const std::string& text) {
  JsonDoc d{where, {}};
  try {
    d.j = json::parse(text);
  } catch (const json::parse_error& e) {
    TLKIT_THROW_ARG("{}: not JSON (parse error at byte {})", where, e.byte);
  }
  TLKIT_CHECK_ARG(d.j.is_object(), "{}: not a JSON object (a {})", where, d.j.type_name());
  return d;
}

std::string shown(const json& v) {
  return printable(v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump());
}

// obj[key], which must exist; `path` names obj in messages ("models[2]").
const json& need(const JsonDoc& d, const json& obj, const std::string& path, const char* key) {
  const std::string field = path.empty() ? key : path + "." + key;
  TLKIT_CHECK_ARG(obj.is_object() && obj.contains(key), "{}: field '{}' is missing", d.where,
                  field);
  return obj.at(key);
}

std::string get_string(const JsonDoc& d, const json& obj, const std::string& path,
                       const char* key) {
  const json& v = need(d, obj, path, key);
  TLKIT_CHECK_ARG(v.is_string(), "{}: field '{}' is {} (expected a string)", d.where,
                  path.empty() ? key : path + "." + key, shown(v));
  return v.get<std::string>();
}

// A number or null (NaN).
double get_number(const JsonDoc& d, const json& obj, const std::string& path, const char* key) {
  const json& v = need(d, obj, path, key);
  if (v.is_null()) return NAN;
  TLKIT_CHECK_ARG(v.is_number(), "{}: field '{}' is {} (expected a number)", d.where,
                  path.empty() ? key : path + "." + key, shown(v));
  return v.get<double>();
}

double opt_number(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) && obj.at(key).is_number() ? obj.at(key).get<double>()
                                                                         : NAN;
}

std::string opt_string(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) && obj.at(key).is_string()
             ? obj.at(key).get<std::string>()
             : "";
}

const json& get_array(const JsonDoc& d, const json& obj, const std::string& path, const char* key) {
  const json& v = need(d, obj, path, key);
  TLKIT_CHECK_ARG(v.is_array(), "{}: field '{}' is {} (expected an array)", d.where,
                  path.empty() ? key : path + "." + key, shown(v).substr(0, 60));
  return v;
}

const json& get_object(const JsonDoc& d, const json& obj, const std::string& path,
                       const char* key) {
  const json& v = need(d, obj, path, key);
  TLKIT_CHECK_ARG(v.is_object(), "{}: field '{}' is {} (expected an object)", d.where,
                  path.empty() ? key : path + "." + key, shown(v).substr(0, 60));
  return v;
}

std::vector<std::string> string_list(const JsonDoc& d, const json& obj, const std::string& path,
                                     const char* key) {
  std::vector<std::string> out;
  const json& a = get_array(d, obj, path, key);
  for (std::size_t i = 0; i < a.size(); ++i) {
    TLKIT_CHECK_ARG(a[i].is_string(), "{}: field '{}[{}]' is {} (expected a string)", d.where,
                    path.empty() ? key : path + "." + key, i, shown(a[i]));
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

void check_schema(const JsonDoc& d, int expected) {
  const json& v = need(d, d.j, "", "schema_version");
  TLKIT_CHECK_ARG(v.is_number_integer() && v.get<std::int64_t>() == expected,
                  "{}: field 'schema_version' is {} (this tlkit reads version {})", d.where,
                  shown(v), expected);
}

// ---- the inputs ----

struct RankModel {
  std::string name, kind, file, sha256, error;
  std::int64_t n = 0, d = 0;
  bool cached = false;
  double extract_seconds = NAN, score_seconds = NAN;
  std::map<std::string, double> scores;
  std::vector<std::string> notes;
};

struct Rank {
  std::string where;
  json dataset;
  std::vector<std::string> metrics;
  std::vector<RankModel> models;  // best first by the first metric
  std::map<std::string, std::vector<std::string>> ranking;
  std::vector<std::string> notes;
  double seconds = NAN;
  const RankModel* find(const std::string& name) const {
    for (const auto& m : models)
      if (m.name == name) return &m;
    return nullptr;
  }
  // The models' names for a message: the first 8, then how many more.
  std::string names_shown() const {
    std::string names;
    for (std::size_t i = 0; i < models.size() && i < 8; ++i)
      names += (i ? ", " : "") + printable(models[i].name);
    if (models.size() > 8) names += fmt::format(" and {} more", models.size() - 8);
    return names;
  }
};

Rank read_rank(const ReportInputs& in) {
  const std::string where = in.rank_flag + " " + in.rank;
  const JsonDoc d =
      parse_json(where, in.rank_text.empty() ? read_text(where, in.rank) : in.rank_text);
  const std::string tool =
      d.j.contains("tool") && d.j.at("tool").is_string() ? d.j.at("tool").get<std::string>() : "";
  TLKIT_CHECK_ARG(tool == "tlkit rank",
                  "{}: field 'tool' is {} (expected 'tlkit rank': the JSON of tlkit rank "
                  "--format json)",
                  where, d.j.contains("tool") ? shown(d.j.at("tool")) : "missing");
  check_schema(d, 1);
  Rank r;
  r.where = where;
  r.dataset = get_object(d, d.j, "", "dataset");
  r.metrics = string_list(d, d.j, "", "metrics");
  TLKIT_CHECK_ARG(!r.metrics.empty(), "{}: field 'metrics' is [] (no metric)", where);
  const json& models = get_array(d, d.j, "", "models");
  TLKIT_CHECK_ARG(!models.empty(), "{}: field 'models' is [] (no model)", where);
  std::vector<RankModel> all;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const std::string p = fmt::format("models[{}]", i);
    const json& m = models[i];
    TLKIT_CHECK_ARG(m.is_object(), "{}: field '{}' is {} (expected an object)", where, p,
                    shown(m).substr(0, 60));
    RankModel e;
    e.name = get_string(d, m, p, "name");
    for (const auto& o : all)
      TLKIT_CHECK_ARG(o.name != e.name, "{}: field '{}.name' is '{}', a name given twice", where, p,
                      printable(e.name));
    e.kind = opt_string(m, "kind");
    e.file = opt_string(m, "file");
    e.sha256 = opt_string(m, "sha256");
    e.error = opt_string(m, "error");
    e.n = static_cast<std::int64_t>(opt_number(m, "n") >= 0 ? opt_number(m, "n") : 0);
    e.d = static_cast<std::int64_t>(opt_number(m, "d") >= 0 ? opt_number(m, "d") : 0);
    e.cached = m.contains("cached") && m.at("cached").is_boolean() && m.at("cached").get<bool>();
    e.extract_seconds = opt_number(m, "extract_seconds");
    e.score_seconds = opt_number(m, "score_seconds");
    const json& scores = get_object(d, m, p, "scores");
    for (const std::string& metric : r.metrics)
      e.scores[metric] =
          scores.contains(metric) ? get_number(d, scores, p + ".scores", metric.c_str()) : NAN;
    if (m.contains("notes")) e.notes = string_list(d, m, p, "notes");
    all.push_back(std::move(e));
  }
  const json& ranking = get_object(d, d.j, "", "ranking");
  for (const std::string& metric : r.metrics) {
    r.ranking[metric] = ranking.contains(metric)
                            ? string_list(d, ranking, "ranking", metric.c_str())
                            : std::vector<std::string>{};
    for (const std::string& name : r.ranking[metric]) {
      const bool known =
          std::any_of(all.begin(), all.end(), [&](const RankModel& m) { return m.name == name; });
      TLKIT_CHECK_ARG(known, "{}: field 'ranking.{}' names '{}', which is not in 'models'", where,
                      metric, printable(name));
    }
  }
  // Best first by the first metric's ranking; the unranked after, in file order.
  for (const std::string& name : r.ranking[r.metrics.front()])
    for (const auto& m : all)
      if (m.name == name && !r.find(name)) r.models.push_back(m);
  for (const auto& m : all)
    if (!r.find(m.name)) r.models.push_back(m);
  if (d.j.contains("notes")) r.notes = string_list(d, d.j, "", "notes");
  r.seconds = opt_number(d.j, "seconds");
  return r;
}

struct EvalMetric {
  std::string name;
  double n_models = NAN, weighted_tau = NAN, kendall = NAN, spearman = NAN, pearson = NAN,
         top1 = NAN;
  std::vector<std::string> top1_models;
  // --bootstrap
  bool boot = false;
  double wtau_mean = NAN, wtau_lo = NAN, wtau_hi = NAN, ktau_mean = NAN, ktau_lo = NAN,
         ktau_hi = NAN, p_top1_best = NAN;
  struct BootModel {
    std::string name;
    double score = NAN, mean = NAN, lo = NAN, hi = NAN, p_first = NAN;
  };
  std::vector<BootModel> models;
};

struct Evaluate {
  std::string where;
  std::vector<EvalMetric> metrics;
  std::vector<std::string> notes;
  json bootstrap;  // null without --bootstrap
};

void interval(const JsonDoc& d, const json& obj, const std::string& path, const char* key,
              double& lo, double& hi) {
  if (!obj.contains(key)) return;
  const json& a = obj.at(key);
  TLKIT_CHECK_ARG(a.is_array() && a.size() == 2, "{}: field '{}.{}' is {} (expected [lo, hi])",
                  d.where, path, key, shown(a).substr(0, 60));
  lo = a[0].is_number() ? a[0].get<double>() : NAN;
  hi = a[1].is_number() ? a[1].get<double>() : NAN;
}

Evaluate read_evaluate(const std::string& path, const Rank& rank) {
  const std::string where = "--evaluate " + path;
  const JsonDoc d = parse_json(where, read_text(where, path));
  TLKIT_CHECK_ARG(!d.j.contains("tool"),
                  "{}: field 'tool' is {} (expected the JSON of tlkit evaluate --format json)",
                  where, shown(d.j.at("tool")));
  check_schema(d, 1);
  Evaluate e;
  e.where = where;
  const json& metrics = get_object(d, d.j, "", "metrics");
  auto check_model = [&](const std::string& field, const std::string& name) {
    if (rank.find(name)) return;
    TLKIT_THROW_ARG("{}: field '{}' is '{}', not a model of {} (its models: {})", where, field,
                    printable(name), rank.where, rank.names_shown());
  };
  for (const auto& [name, v] : metrics.items()) {
    const std::string p = "metrics." + name;
    TLKIT_CHECK_ARG(v.is_object(), "{}: field '{}' is {} (expected an object)", where, p,
                    shown(v).substr(0, 60));
    EvalMetric m;
    m.name = name;
    m.n_models = get_number(d, v, p, "n_models");
    m.weighted_tau = get_number(d, v, p, "weighted_tau");
    m.kendall = get_number(d, v, p, "kendall_tau");
    m.spearman = opt_number(v, "spearman");
    m.pearson = get_number(d, v, p, "pearson");
    m.top1 = get_number(d, v, p, "top1_relative_accuracy");
    if (v.contains("top1_models")) m.top1_models = string_list(d, v, p, "top1_models");
    for (std::size_t i = 0; i < m.top1_models.size(); ++i)
      check_model(fmt::format("{}.top1_models[{}]", p, i), m.top1_models[i]);
    e.metrics.push_back(std::move(m));
  }
  TLKIT_CHECK_ARG(!e.metrics.empty(), "{}: field 'metrics' is {{}} (no metric)", where);
  if (d.j.contains("notes")) e.notes = string_list(d, d.j, "", "notes");
  if (d.j.contains("bootstrap")) {
    e.bootstrap = get_object(d, d.j, "", "bootstrap");
    const json& bm = get_object(d, e.bootstrap, "bootstrap", "metrics");
    for (auto& m : e.metrics) {
      if (!bm.contains(m.name)) continue;
      const std::string p = "bootstrap.metrics." + m.name;
      const json& v = bm.at(m.name);
      TLKIT_CHECK_ARG(v.is_object(), "{}: field '{}' is {} (expected an object)", where, p,
                      shown(v).substr(0, 60));
      m.boot = true;
      m.wtau_mean = opt_number(v, "weighted_tau_mean");
      m.ktau_mean = opt_number(v, "kendall_tau_mean");
      m.p_top1_best = opt_number(v, "p_top1_best");
      interval(d, v, p, "weighted_tau_interval", m.wtau_lo, m.wtau_hi);
      interval(d, v, p, "kendall_tau_interval", m.ktau_lo, m.ktau_hi);
      if (!v.contains("models")) continue;
      const json& models = get_object(d, v, p, "models");
      for (const auto& [mn, mv] : models.items()) {
        const std::string mp = p + ".models." + mn;
        check_model(p + ".models", mn);
        EvalMetric::BootModel b;
        b.name = mn;
        b.score = get_number(d, mv, mp, "score");
        b.mean = opt_number(mv, "mean");
        b.p_first = opt_number(mv, "p_first");
        interval(d, mv, mp, "interval", b.lo, b.hi);
        m.models.push_back(b);
      }
    }
  }
  return e;
}

std::map<std::string, double> read_truth(const std::string& path) {
  const std::string where = "--truth " + path;
  TLKIT_CHECK_ARG(fs::exists(path), "{}: cannot open: {}", where, std::strerror(ENOENT));
  const CsvTable t = read_csv_table(path);
  const std::size_t mc = t.column("model"), ac = t.column("accuracy");
  std::map<std::string, double> out;
  for (std::size_t r = 0; r < t.rows.size(); ++r) out[t.nonempty(r, mc)] = t.number(r, ac);
  return out;
}

std::string in_folder(const std::string& flag, const std::string& dir, const char* file,
                      const char* what) {
  const std::string where = flag + " " + dir;
  TLKIT_CHECK_ARG(fs::exists(dir), "{}: no such folder", where);
  TLKIT_CHECK_ARG(fs::is_directory(dir), "{}: not a folder (expected {})", where, what);
  const std::string p = (fs::path(dir) / file).string();
  TLKIT_CHECK_ARG(fs::exists(p), "{}: no {} (expected {})", where, file, what);
  return p;
}

// ---- formatting ----

std::string num(double v, int digits = 4) {
  return std::isfinite(v) ? fmt::format("{:.{}g}", v, digits) : "n/a";
}

std::string seconds_text(double s) { return std::isfinite(s) ? fmt::format("{:.2f} s", s) : "n/a"; }

// A small bar in a table cell: the score's place between the metric's worst (short) and best
// (full) score over the zoo, so a longer bar is always a better score.
std::string mini_bar(double v, double worst, double best) {
  if (!std::isfinite(v)) return "";
  const double w = 56;
  const double share = best != worst ? 0.1 + 0.9 * (v - worst) / (best - worst) : 1.0;
  return fmt::format(
      "<svg class=\"bar\" width=\"{0}\" height=\"12\" viewBox=\"0 0 {0} 12\" aria-hidden=\"true\">"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"12\" fill=\"#eeeeee\"/>"
      "<rect x=\"0\" y=\"1\" width=\"{1:.1f}\" height=\"10\" fill=\"#0072B2\"/></svg>",
      static_cast<int>(w), std::clamp(share, 0.0, 1.0) * w);
}

// True when `note` is about `metric` only ("hscore: at its maximum ...").
bool note_about(const std::string& note, const std::string& metric) {
  return note.rfind(metric + ":", 0) == 0;
}

bool note_for_metric(const std::string& note, const std::string& metric,
                     const std::vector<std::string>& metrics) {
  for (const auto& m : metrics)
    if (note_about(note, m)) return m == metric;
  return true;  // a note about the model as a whole
}

bool higher_is_better(const std::string& metric) {
  for (const auto& info : metric_registry())
    if (info.name == metric) return info.higher_is_better;
  return true;
}

std::string anchor(const std::string& s) {
  std::string o;
  for (const char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return o;
}

// ---- sections ----

// An input's "notes" (strings) as a list; "" when it has none.
std::string notes_list(const json& j) {
  if (!j.contains("notes") || !j.at("notes").is_array() || j.at("notes").empty()) return "";
  std::string o = "<ul class=\"note\">\n";
  for (const auto& n : j.at("notes"))
    if (n.is_string()) o += "<li>" + html::escape(n.get<std::string>()) + "</li>\n";
  return o + "</ul>\n";
}

std::string section_ranking(const Rank& r) {
  std::string o = "<section id=\"ranking\">\n<h2>Ranking</h2>\n";
  const json& ds = r.dataset;
  o += fmt::format(
      "<p>{} models on <code>{}</code>{}: {} samples{}, ranked by <strong>{}</strong> "
      "(best first). Bars: each score's place between its metric's worst score (short) and best "
      "score (full): a longer bar is a better score. Higher is better except where marked "
      "&#8220;lower is better&#8221;.</p>\n",
      r.models.size(), html::escape(opt_string(ds, "data")),
      opt_string(ds, "split").empty() ? ""
                                      : " (split " + html::escape(opt_string(ds, "split")) + ")",
      std::isfinite(opt_number(ds, "selected")) ? fmt::format("{:.0f}", opt_number(ds, "selected"))
                                                : "n/a",
      std::isfinite(opt_number(ds, "listed")) &&
              opt_number(ds, "listed") != opt_number(ds, "selected")
          ? fmt::format(" of {:.0f}", opt_number(ds, "listed"))
          : "",
      html::escape(r.metrics.front()));
  Table t;
  t.caption = "Models best first, with every metric's score";
  t.header = {"model", "rank"};
  for (const auto& m : r.metrics)
    t.header.push_back(m + (higher_is_better(m) ? "" : " (lower is better)"));
  t.header.insert(t.header.end(), {"n", "d", "extraction", "scoring"});
  std::map<std::string, double> worst, best;
  for (const auto& metric : r.metrics) {
    const double sign = higher_is_better(metric) ? 1 : -1;
    worst[metric] = INFINITY;
    best[metric] = -INFINITY;
    for (const auto& m : r.models)
      if (std::isfinite(m.scores.at(metric))) {
        worst[metric] = std::min(worst[metric], sign * m.scores.at(metric));
        best[metric] = std::max(best[metric], sign * m.scores.at(metric));
      }
  }
  // Distinct notes, numbered, each with the models it is about.
  std::vector<std::pair<std::string, std::vector<std::string>>> notes;
  for (const auto& m : r.models)
    for (const auto& n : m.notes) {
      auto it =
          std::find_if(notes.begin(), notes.end(), [&](const auto& x) { return x.first == n; });
      if (it == notes.end()) it = notes.insert(notes.end(), {n, {}});
      it->second.push_back(m.name);
    }
  auto note_number = [&](const std::string& n) {
    for (std::size_t i = 0; i < notes.size(); ++i)
      if (notes[i].first == n) return i + 1;
    return std::size_t{0};
  };
  std::size_t rank = 0;
  for (const auto& m : r.models) {
    std::vector<Cell> row;
    row.push_back(html::text(m.name));
    const bool ranked = std::isfinite(m.scores.at(r.metrics.front()));
    row.push_back(ranked ? html::number(static_cast<double>(++rank)) : html::text("–"));
    for (const auto& metric : r.metrics) {
      const double v = m.scores.at(metric);
      Cell c = html::number(v);
      bool tie = false;
      for (const auto& o : r.models)
        if (&o != &m && std::isfinite(v) &&
            std::abs(o.scores.at(metric) - v) <= 1e-9 * std::max(1.0, std::abs(v)))
          tie = true;
      c.html = mini_bar(higher_is_better(metric) ? v : -v, worst[metric], best[metric]) + c.html;
      if (tie) {
        c.html += " <span class=\"flag\" title=\"the same score as another model\">tie</span>";
      }
      row.push_back(c);
    }
    row.push_back(html::number(static_cast<double>(m.n)));
    row.push_back(html::number(static_cast<double>(m.d)));
    row.push_back(html::number_as(m.extract_seconds,
                                  seconds_text(m.extract_seconds) + (m.cached ? " (cached)" : "")));
    row.push_back(html::number_as(m.score_seconds, seconds_text(m.score_seconds)));
    if (!m.error.empty())
      row[0].html += " <span class=\"flag\">failed</span> <span class=\"note\">" +
                     html::escape(m.error) + "</span>";
    for (const auto& n : m.notes)
      row[0].html +=
          fmt::format(" <a class=\"flag\" href=\"#note-{0}\">note {0}</a>", note_number(n));
    t.rows.push_back(std::move(row));
  }
  o += "<div class=\"table\">\n" + html::render(t) + "</div>\n";
  if (!notes.empty()) {
    o += "<ol class=\"note\">\n";
    for (std::size_t i = 0; i < notes.size(); ++i)
      o += fmt::format("<li id=\"note-{}\">{} (model{} {})</li>\n", i + 1,
                       html::escape(notes[i].first), notes[i].second.size() == 1 ? "" : "s",
                       html::escape(fmt::format("{}", fmt::join(notes[i].second, ", "))));
    o += "</ol>\n";
  }
  if (!r.notes.empty()) {
    o += "<ul class=\"note\">\n";
    for (const auto& n : r.notes) o += "<li>" + html::escape(n) + "</li>\n";
    o += "</ul>\n";
  }
  // One bar chart per metric, in that metric's own order (small multiples), and their data.
  std::string charts;
  Table data;
  data.caption = "Scores per metric (the data of the bar charts)";
  data.header = {"model"};
  for (const auto& metric : r.metrics) data.header.push_back(metric);
  for (const auto& m : r.models) {
    std::vector<Cell> row{html::text(m.name)};
    for (const auto& metric : r.metrics) row.push_back(html::number(m.scores.at(metric), 6));
    data.rows.push_back(std::move(row));
  }
  for (const auto& metric : r.metrics) {
    BarChart b;
    b.title = "Scores by " + metric;
    b.subtitle = higher_is_better(metric) ? "higher is better" : "lower is better";
    b.value_label = metric + " score (the metric's own units)";
    b.width = 520;
    std::vector<const RankModel*> order;
    for (const auto& name : r.ranking.at(metric)) order.push_back(r.find(name));
    for (const auto& m : r.models)
      if (std::find(order.begin(), order.end(), &m) == order.end()) order.push_back(&m);
    for (const RankModel* m : order) {
      const double v = m->scores.at(metric);
      bool tie = false;
      for (const auto& o2 : r.models)
        if (&o2 != m && std::isfinite(v) &&
            std::abs(o2.scores.at(metric) - v) <= 1e-9 * std::max(1.0, std::abs(v)))
          tie = true;
      b.labels.push_back(m->name);
      b.values.push_back(v);
      std::string flag = tie ? "tie" : "";
      for (const auto& n : m->notes)
        if (note_for_metric(n, metric, r.metrics))
          flag += fmt::format("{}note {}", flag.empty() ? "" : ", ", note_number(n));
      b.flags.push_back(flag);
    }
    charts += render_bar_svg(b);
  }
  o += "<figure class=\"plot\">\n<div class=\"chart multiples\">\n" + charts +
       "</div>\n<div class=\"table\">\n" + html::render(data) + "</div>\n<figcaption>" +
       html::escape(
           "Each metric's scores, best first; \"tie\": the same score as another "
           "model; \"note N\": the numbered note under the ranking table.") +
       "</figcaption>\n</figure>\n";
  o += "</section>\n";
  return o;
}

std::string section_agreement(const Rank& r, const Evaluate& e,
                              const std::map<std::string, double>* truth) {
  std::string o = "<section id=\"agreement\">\n<h2>Agreement with fine-tuning</h2>\n";
  o += "<p>How well each metric's scores rank the models' fine-tuned accuracies (from <code>" +
       html::escape(e.where.substr(11)) +
       "</code>). Weighted tau weighs the top of the ranking most; top-1 is the accuracy of the "
       "model a metric ranks first over the best accuracy.</p>\n";
  Table t;
  t.caption = "Agreement per metric (best weighted tau first)";
  t.header = {"metric",
              "models",
              "weighted tau",
              "Kendall tau",
              "Spearman",
              "Pearson",
              "top-1 relative accuracy",
              "ranked first"};
  std::vector<const EvalMetric*> ms;
  for (const auto& m : e.metrics) ms.push_back(&m);
  std::stable_sort(ms.begin(), ms.end(), [](const EvalMetric* a, const EvalMetric* b) {
    const double x = std::isfinite(a->weighted_tau) ? a->weighted_tau : -2;
    const double y = std::isfinite(b->weighted_tau) ? b->weighted_tau : -2;
    return x > y;
  });
  for (const EvalMetric* m : ms) {
    std::string first;
    for (const auto& n : m->top1_models) first += (first.empty() ? "" : ", ") + n;
    t.rows.push_back({html::text(m->name), html::number(m->n_models), html::number(m->weighted_tau),
                      html::number(m->kendall), html::number(m->spearman), html::number(m->pearson),
                      html::number(m->top1), html::text(first)});
  }
  o += "<div class=\"table\">\n" + html::render(t) + "</div>\n";
  if (!e.notes.empty()) {
    o += "<ul class=\"note\">\n";
    for (const auto& n : e.notes) o += "<li>" + html::escape(n) + "</li>\n";
    o += "</ul>\n";
  }
  if (!truth) {
    o += "<p class=\"note\">Give <code>--truth</code> (the model,accuracy CSV of tlkit evaluate) "
         "for a scatter of score against accuracy per metric.</p>\n";
  } else {
    std::size_t si = 0;
    for (const EvalMetric* m : ms) {
      if (std::find(r.metrics.begin(), r.metrics.end(), m->name) == r.metrics.end()) continue;
      ScatterPlot p;
      p.title = m->name + ": score against fine-tuned accuracy";
      p.subtitle =
          fmt::format("weighted tau {}, Kendall {}, Pearson {}, top-1 {}", num(m->weighted_tau, 3),
                      num(m->kendall, 3), num(m->pearson, 3), num(m->top1, 3));
      p.x_label = m->name + " score (the metric's own units)";
      p.y_label = "fine-tuned accuracy (fraction, as in --truth)";
      ScatterSeries s;
      s.label = m->name;
      s.marker = marker_for(si++);
      Table data;
      data.caption = m->name + ": score and accuracy per model";
      data.header = {"model", "point", m->name + " score", "accuracy"};
      int k = 0;
      for (const auto& model : r.models) {
        const auto it = truth->find(model.name);
        const double x = model.scores.at(m->name);
        if (it == truth->end() || !std::isfinite(x)) continue;
        ++k;
        s.x.push_back(x);
        s.y.push_back(it->second);
        s.point_labels.push_back(std::to_string(k));
        s.point_titles.push_back(
            fmt::format("{}: score {}, accuracy {}", model.name, num(x, 6), num(it->second, 4)));
        data.rows.push_back({html::text(model.name), html::number(k), html::number(x, 6),
                             html::number(it->second)});
      }
      if (s.x.empty()) continue;
      p.series.push_back(std::move(s));
      o += html::figure(render_scatter_svg(p), data,
                        "Each point is a model (numbered as in the table); hover a point for its "
                        "name.");
    }
  }
  o += "</section>\n";
  return o;
}

std::string section_stability(const Evaluate& e) {
  const json& b = e.bootstrap;
  std::string o = "<section id=\"stability\">\n<h2>Stability (bootstrap)</h2>\n";
  o += fmt::format(
      "<p>{} replicates ({} scheme, seed {}, {} % intervals): the target samples were resampled "
      "and every score recomputed. A model's interval and its share of replicates ranked first "
      "show how sure the ranking is; a metric's tau interval shows how sure its agreement "
      "is.</p>\n",
      num(opt_number(b, "replicates"), 6), html::escape(opt_string(b, "scheme")),
      num(opt_number(b, "seed"), 20), num(100 * opt_number(b, "confidence"), 3));
  if (b.contains("notes") && b.at("notes").is_array()) {
    o += "<ul class=\"note\">\n";
    for (const auto& n : b.at("notes"))
      if (n.is_string()) o += "<li>" + html::escape(n.get<std::string>()) + "</li>\n";
    o += "</ul>\n";
  }
  // Tau intervals, one bar per metric.
  {
    BarChart c;
    c.title = "Weighted tau per metric, with its bootstrap interval";
    c.value_label = "weighted tau (mean over replicates; -1 to 1)";
    Table data;
    data.caption = "Weighted and Kendall tau over the replicates";
    data.header = {"metric",        "weighted tau (mean)", "interval low",
                   "interval high", "Kendall tau (mean)",  "Kendall low",
                   "Kendall high",  "P(top-1 is the best)"};
    for (const auto& m : e.metrics) {
      if (!m.boot) continue;
      c.labels.push_back(m.name);
      c.values.push_back(m.wtau_mean);
      c.lo.push_back(m.wtau_lo);
      c.hi.push_back(m.wtau_hi);
      data.rows.push_back({html::text(m.name), html::number(m.wtau_mean), html::number(m.wtau_lo),
                           html::number(m.wtau_hi), html::number(m.ktau_mean),
                           html::number(m.ktau_lo), html::number(m.ktau_hi),
                           html::number(m.p_top1_best)});
    }
    if (!c.labels.empty())
      o += html::figure(render_bar_svg(c), data,
                        "Bars: mean weighted tau; whiskers: the percentile interval.");
  }
  std::size_t ci = 0;
  for (const auto& m : e.metrics) {
    if (!m.boot || m.models.empty()) continue;
    std::vector<EvalMetric::BootModel> ms = m.models;
    std::stable_sort(ms.begin(), ms.end(), [](const auto& a, const auto& b2) {
      return (std::isfinite(a.p_first) ? a.p_first : -1) >
             (std::isfinite(b2.p_first) ? b2.p_first : -1);
    });
    BarChart c;
    c.title = m.name + ": P(ranked first) per model";
    c.value_label = "share of replicates that rank the model first (0 to 1)";
    c.color = ci++ % 2 ? "#E69F00" : "#009E73";
    Table data;
    data.caption = m.name + ": each model's score interval and P(ranked first)";
    data.header = {"model",        "score",         "replicate mean",
                   "interval low", "interval high", "P(ranked first)"};
    for (const auto& bm : ms) {
      c.labels.push_back(bm.name);
      c.values.push_back(bm.p_first);
      c.flags.push_back(fmt::format("[{}, {}]", num(bm.lo, 4), num(bm.hi, 4)));
      data.rows.push_back({html::text(bm.name), html::number(bm.score, 6), html::number(bm.mean, 6),
                           html::number(bm.lo, 6), html::number(bm.hi, 6),
                           html::number(bm.p_first)});
    }
    BarChart iv;
    iv.title = m.name + ": score interval per model";
    iv.subtitle = "diamond: mean over the replicates; whiskers: the percentile interval";
    iv.value_label = m.name + " score over the replicates (the metric's own units)";
    iv.dots = true;
    iv.color = c.color;
    for (const auto& bm : ms) {
      iv.labels.push_back(bm.name);
      iv.values.push_back(bm.mean);
      iv.lo.push_back(bm.lo);
      iv.hi.push_back(bm.hi);
    }
    o += "<figure class=\"plot\">\n<div class=\"chart\">\n" + render_bar_svg(c) +
         render_bar_svg(iv) + "</div>\n<div class=\"table\">\n" + html::render(data) +
         "</div>\n<figcaption>" +
         html::escape(
             "Top: P(ranked first) per model, with its score interval written after "
             "the bar. Bottom: the score intervals drawn (mean and interval).") +
         "</figcaption>\n</figure>\n";
  }
  o += "</section>\n";
  return o;
}

std::string section_metric_agreement(const Rank& r) {
  std::string o = "<section id=\"metrics\">\n<h2>Agreement between metrics</h2>\n";
  const std::size_t k = r.metrics.size();
  HeatMap h;
  h.title = "Kendall tau between metrics over the zoo";
  h.value_label = "Kendall tau-b";
  h.row_labels = h.col_labels = r.metrics;
  Table data;
  data.caption = "Kendall tau-b between the metrics' scores (models scored by both)";
  data.header = {"metric"};
  for (const auto& m : r.metrics) data.header.push_back(m);
  std::size_t shared_min = r.models.size();
  for (std::size_t a = 0; a < k; ++a) {
    std::vector<Cell> row{html::text(r.metrics[a])};
    for (std::size_t b = 0; b < k; ++b) {
      std::vector<double> x, y;
      for (const auto& m : r.models) {
        const double u = m.scores.at(r.metrics[a]), v = m.scores.at(r.metrics[b]);
        if (!std::isfinite(u) || !std::isfinite(v)) continue;
        // Lower-is-better metrics are negated, so that +1 means the same order of quality.
        x.push_back(higher_is_better(r.metrics[a]) ? u : -u);
        y.push_back(higher_is_better(r.metrics[b]) ? v : -v);
      }
      shared_min = std::min(shared_min, x.size());
      const double tau = x.size() >= 2 ? kendall_tau_b(x, y) : NAN;
      h.values.push_back(tau);
      row.push_back(html::number(tau, 3));
    }
    data.rows.push_back(std::move(row));
  }
  o += "<p>Kendall tau-b between two metrics' scores over the models both score: +1 is the "
       "same order, -1 the reverse order (lower-is-better metrics negated first). n/a: fewer "
       "than two models in common, or a metric gives every model the same score.</p>\n";
  if (r.models.size() < 5)
    o += fmt::format(
        "<p class=\"note\">Only {} models: with so few, a tau of +1 or -1 arises easily by "
        "chance.</p>\n",
        r.models.size());
  o += html::figure(render_heatmap_svg(h), data,
                    "Cells: Kendall tau-b; colour from blue (-1) through white (0) to vermilion "
                    "(+1); each cell also shows its value.");
  o += "</section>\n";
  return o;
}

std::string section_probe(const std::string& dir) {
  const std::string path = in_folder("--probe", dir, "results.json", "a tlkit probe --out folder");
  const std::string where = "--probe " + path;
  const JsonDoc d = parse_json(where, read_text(where, path));
  const std::string tool = opt_string(d.j, "tool");
  TLKIT_CHECK_ARG(tool == "tlkit probe", "{}: field 'tool' is {} (expected 'tlkit probe')", where,
                  d.j.contains("tool") ? shown(d.j.at("tool")) : "missing");
  const std::vector<std::string> blocks = string_list(d, d.j, "", "blocks");
  const json& summary = get_object(d, d.j, "", "summary");
  std::string o = "<section id=\"probe\">\n<h2>Probe: where transfer happens</h2>\n";
  o += fmt::format(
      "<p>Model <code>{}</code> on <code>{}</code>, analyses: {}; {} seed(s) per "
      "size.</p>\n",
      html::escape(opt_string(d.j, "model")), html::escape(opt_string(d.j, "data")),
      html::escape(d.j.contains("analyses") && d.j.at("analyses").is_array()
                       ? fmt::format("{}", fmt::join(string_list(d, d.j, "", "analyses"), ", "))
                       : std::string("n/a")),
      num(opt_number(d.j, "seeds")));
  std::vector<std::string> layer_names = {"input"};
  layer_names.insert(layer_names.end(), blocks.begin(), blocks.end());
  std::size_t plots = 0;
  std::vector<std::string> keys;
  if (summary.contains("probe")) keys.push_back("probe");
  for (const auto& [key, v] : summary.items())
    if (key != "probe") keys.push_back(key);
  for (const std::string& key : keys) {
    const json& by_size = summary.at(key);
    if (!by_size.is_object()) continue;
    const bool layers = key == "probe" || key.rfind("metric:", 0) == 0;
    LinePlot p;
    std::string what, xl, yl;
    if (key == "probe") {
      what = "Linear probe test accuracy by layer";
      xl = "layer (depth: input, then each block's output)";
      yl = "test accuracy, %";
    } else if (key.rfind("metric:", 0) == 0) {
      what = key.substr(7) + " score by layer";
      xl = "layer (depth: input, then each block's output)";
      yl = key.substr(7) + " score (the metric's own units)";
    } else if (key == "reinit") {
      what = "Fine-tuned accuracy, keeping the first k blocks pretrained";
      xl = "blocks kept pretrained (k)";
      yl = "test accuracy, %";
    } else if (key == "window-reinit" || key == "window-keep") {
      what = key == "window-reinit" ? "Fine-tuned accuracy, a window of blocks re-initialised"
                                    : "Fine-tuned accuracy, only a window of blocks pretrained";
      xl = "first block of the window";
      yl = "test accuracy, %";
    } else if (key == "reorder") {
      what = "Fine-tuned accuracy with blocks permuted";
      xl = "permutation (0: the pretrained order)";
      yl = "test accuracy, %";
    } else {
      what = key;
      xl = "x";
      yl = "value";
    }
    p.title = what;
    p.width = 680;
    p.subtitle = "mean over seeds; bars: min to max";
    p.x_label = xl;
    p.y_label = yl;
    if (layers) p.x_tick_labels = layer_names;
    Table data;
    data.caption = what + " (data)";
    data.header = {layers ? "layer" : "x"};
    std::map<double, std::vector<Cell>> rows;  // x -> cells after the first
    std::size_t si = 0;
    bool ranges = false;
    for (const auto& [size, pts] : by_size.items())
      if (pts.is_array())
        for (const auto& pt : pts) ranges = ranges || opt_number(pt, "n") > 1;
    for (const auto& [size, pts] : by_size.items()) {
      const std::string sp = "summary." + key + "." + size;
      TLKIT_CHECK_ARG(pts.is_array(), "{}: field '{}' is {} (expected an array)", where, sp,
                      shown(pts).substr(0, 60));
      PlotSeries s;
      s.label = size == "all" ? "all training images" : size + " training images";
      s.dashed = si % 2 == 1;
      data.header.push_back(s.label + (ranges ? ", mean" : ""));
      if (ranges) data.header.insert(data.header.end(), {s.label + ", min", s.label + ", max"});
      for (std::size_t i = 0; i < pts.size(); ++i) {
        const std::string ip = fmt::format("{}[{}]", sp, i);
        const double x = get_number(d, pts[i], ip, "x");
        s.x.push_back(x);
        s.y.push_back(get_number(d, pts[i], ip, "mean"));
        s.lo.push_back(opt_number(pts[i], "min"));
        s.hi.push_back(opt_number(pts[i], "max"));
        auto& row = rows[x];
        row.resize(si * (ranges ? 3 : 1), html::number(NAN));
        row.push_back(html::number(s.y.back()));
        if (ranges) {
          row.push_back(html::number(s.lo.back()));
          row.push_back(html::number(s.hi.back()));
        }
      }
      p.markers.push_back(marker_for(si));
      p.series.push_back(std::move(s));
      ++si;
    }
    for (auto& [x, cells] : rows) {
      const auto xi = static_cast<std::size_t>(std::max(0.0, x));
      std::vector<Cell> row{layers && x >= 0 && xi < layer_names.size()
                                ? Cell{html::escape(layer_names[xi]), fmt::format("{}", x), false}
                                : html::number(x)};
      cells.resize(si * (ranges ? 3 : 1), html::number(NAN));
      row.insert(row.end(), cells.begin(), cells.end());
      data.rows.push_back(std::move(row));
    }
    if (p.series.empty()) continue;
    bool finite = false;
    for (const auto& s : p.series)
      for (std::size_t i = 0; i < s.y.size(); ++i)
        finite = finite || (std::isfinite(s.x[i]) && std::isfinite(s.y[i]));
    if (!finite) continue;
    o += html::figure(render_svg(p), data, what + ": one line per training-set size.");
    ++plots;
  }
  if (plots == 0) o += "<p class=\"note\">The probe folder's results.json has no curves.</p>\n";
  o += notes_list(d.j);
  o += "</section>\n";
  return o;
}

// The successive halving of a `tlkit select --out` folder (its select.json): who survived each
// stage, the validation accuracy of every fine-tuned model by stage, and the choice.
std::string section_select(const std::string& dir, const Rank& rank) {
  const std::string path = in_folder("--select", dir, "select.json", "a tlkit select --out folder");
  const std::string where = "--select " + path;
  const JsonDoc d = parse_json(where, read_text(where, path));
  check_schema(d, 1);
  const json& models = get_array(d, d.j, "", "models");
  const json& stages = get_array(d, d.j, "", "stages");
  const json& chosen_v = need(d, d.j, "", "chosen");
  TLKIT_CHECK_ARG(chosen_v.is_null() || chosen_v.is_string(),
                  "{}: field 'chosen' is {} (expected a model name or null)", where,
                  shown(chosen_v));
  const std::string chosen = chosen_v.is_string() ? chosen_v.get<std::string>() : "";
  const std::string metric = opt_string(d.j, "metric");

  struct Stage {
    double stage, epochs, epochs_spent, seconds;
    std::vector<std::string> survivors;
  };
  std::vector<Stage> st;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const std::string p = fmt::format("stages[{}]", i);
    st.push_back({get_number(d, stages[i], p, "stage"), get_number(d, stages[i], p, "epochs"),
                  get_number(d, stages[i], p, "epochs_spent"),
                  get_number(d, stages[i], p, "seconds"),
                  string_list(d, stages[i], p, "survivors")});
  }
  struct Model {
    std::string name, error;
    double score, lo = NAN, hi = NAN, metric_rank, stage_reached, eliminated_at, lr, test_acc,
                  seconds;
    bool by_interval = false;
    std::vector<double> stage_acc;
  };
  std::vector<Model> ms;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const std::string p = fmt::format("models[{}]", i);
    const json& e = models[i];
    Model m;
    m.name = get_string(d, e, p, "name");
    m.score = get_number(d, e, p, "score");
    const json& iv = need(d, e, p, "score_interval");
    if (iv.is_array() && iv.size() == 2) {
      m.lo = iv[0].is_number() ? iv[0].get<double>() : NAN;
      m.hi = iv[1].is_number() ? iv[1].get<double>() : NAN;
    }
    m.metric_rank = get_number(d, e, p, "metric_rank");
    m.stage_reached = get_number(d, e, p, "stage_reached");
    m.eliminated_at = get_number(d, e, p, "eliminated_at");
    m.lr = get_number(d, e, p, "lr");
    m.test_acc = get_number(d, e, p, "test_acc");
    m.seconds = get_number(d, e, p, "seconds");
    m.by_interval = e.contains("kept_by_interval") && e.at("kept_by_interval").is_boolean() &&
                    e.at("kept_by_interval").get<bool>();
    m.error = opt_string(e, "error");
    const json& accs = get_array(d, e, p, "stage_val_acc");
    for (std::size_t k = 0; k < accs.size(); ++k) {
      TLKIT_CHECK_ARG(accs[k].is_null() || accs[k].is_number(),
                      "{}: field '{}.stage_val_acc[{}]' is {} (expected a number)", where, p, k,
                      shown(accs[k]));
      m.stage_acc.push_back(accs[k].is_number() ? accs[k].get<double>() : NAN);
    }
    // A selection of other models: a model select fine-tuned that the ranking does not have.
    TLKIT_CHECK_ARG(m.stage_reached < 1 || rank.find(m.name),
                    "{}: field '{}.name' is '{}', a fine-tuned model that is not a model of {} "
                    "(its models: {})",
                    where, p, printable(m.name), rank.where, rank.names_shown());
    ms.push_back(std::move(m));
  }

  std::string o = "<section id=\"select\">\n<h2>Selection: successive halving</h2>\n";
  const double val = opt_number(d.j, "val_acc"), test = opt_number(d.j, "test_acc");
  o += "<p>";
  if (chosen.empty())
    o += "No model was chosen (none could be fine-tuned). ";
  else
    o += fmt::format(
        "Chosen: <strong>{}</strong>, validation accuracy {} %, test accuracy {} % (the chosen "
        "run's best epoch). ",
        html::escape(chosen), num(val), num(test));
  o += fmt::format(
      "Stage 0 ranked {} models by <code>{}</code>; {} stage(s) of fine-tuning followed, {} "
      "epochs in all, {} in all.",
      ms.size(), html::escape(metric.empty() ? "n/a" : metric), st.size(),
      num(opt_number(d.j, "epochs_spent")), seconds_text(opt_number(d.j, "seconds")));
  if (d.j.contains("budget_exhausted") && d.j.at("budget_exhausted").is_boolean() &&
      d.j.at("budget_exhausted").get<bool>())
    o += " The budget ended the selection: the choice is the best model of the last stage "
         "reached.";
  o += "</p>\n";

  // Validation accuracy by stage: one line per fine-tuned model.
  LinePlot p;
  p.title = "Validation accuracy by stage";
  p.subtitle = "each stage trains its survivors longer; a line ends where its model was cut";
  p.x_label = "stage (epochs per run in all)";
  p.y_label = "validation accuracy, %";
  p.x_tick_labels.push_back("");
  for (const auto& s : st) p.x_tick_labels.push_back(fmt::format("{} ({} ep.)", s.stage, s.epochs));
  Table data;
  data.caption = "Validation accuracy by stage (data)";
  data.header = {"model"};
  for (const auto& s : st) data.header.push_back(fmt::format("stage {}, %", s.stage));
  std::size_t si = 0;
  for (const auto& m : ms) {
    if (m.stage_acc.empty()) continue;
    PlotSeries s;
    s.label = m.name == chosen ? m.name + " (chosen)" : m.name;
    std::vector<Cell> row{html::text(s.label)};
    for (std::size_t k = 0; k < m.stage_acc.size(); ++k) {
      s.x.push_back(static_cast<double>(k + 1));
      s.y.push_back(m.stage_acc[k]);
    }
    for (std::size_t k = 0; k < st.size(); ++k)
      row.push_back(html::number(k < m.stage_acc.size() ? m.stage_acc[k] : NAN));
    s.dashed = m.name != chosen;
    p.markers.push_back(marker_for(si++));
    p.series.push_back(std::move(s));
    data.rows.push_back(std::move(row));
  }
  bool finite = false;
  for (const auto& s : p.series)
    for (const double y : s.y) finite = finite || std::isfinite(y);
  if (finite)
    o += html::figure(render_svg(p), data,
                      "Validation accuracy of each fine-tuned model at each stage it reached; the "
                      "chosen model solid, the others dashed.");

  Table stage_table;
  stage_table.caption = "Stages";
  stage_table.header = {"stage", "epochs per run (in all)", "survivors", "epochs spent", "seconds"};
  for (const auto& s : st)
    stage_table.rows.push_back({html::number(s.stage), html::number(s.epochs),
                                html::text(fmt::format("{}", fmt::join(s.survivors, ", "))),
                                html::number(s.epochs_spent), html::number(s.seconds)});
  if (!st.empty()) o += "<div class=\"table\">\n" + html::render(stage_table) + "</div>\n";

  Table mt;
  mt.caption = "Every model: its stage-0 score and how far it went";
  mt.header = {"model",          metric.empty() ? "score" : metric + " score",
               "interval",       "metric rank",
               "stage reached",  "eliminated at stage",
               "learning rate",  "test accuracy, %",
               "fine-tuning, s", "status"};
  for (const auto& m : ms) {
    std::string status = m.name == chosen ? "chosen" : "";
    if (!m.error.empty()) status = "failed: " + m.error;
    if (status.empty() && m.by_interval) status = "kept by its interval";
    mt.rows.push_back(
        {html::text(m.name), html::number(m.score),
         html::text(std::isfinite(m.lo) ? fmt::format("[{}, {}]", num(m.lo), num(m.hi)) : "n/a"),
         html::number(m.metric_rank), html::number(m.stage_reached), html::number(m.eliminated_at),
         html::number(m.lr), html::number(m.test_acc), html::number(m.seconds),
         html::text(status)});
  }
  o += "<div class=\"table\">\n" + html::render(mt) + "</div>\n";
  o += notes_list(d.j);
  o += "</section>\n";
  return o;
}

struct FinetuneRun {
  std::string dir, name;
  json config;
  std::vector<double> epoch, loss, train_acc, val_acc;
  double test_acc = NAN;
  bool linear = false;       // --mode linear: no epochs
  std::string label_suffix;  // " (best of grid: DIR)"
};

FinetuneRun read_finetune(const std::string& dir) {
  const std::string path =
      in_folder("--finetune", dir, "metrics.json", "a tlkit finetune --out folder");
  const std::string where = "--finetune " + path;
  const JsonDoc d = parse_json(where, read_text(where, path));
  FinetuneRun r;
  r.dir = dir;
  // A --grid folder: the learning curve of its best point (a sub-folder of its own).
  if (!d.j.contains("history") && d.j.contains("points") && d.j.contains("best")) {
    const std::string sub = get_string(d, get_object(d, d.j, "", "best"), "best", "dir");
    TLKIT_CHECK_ARG(!sub.empty() && sub.find('/') == std::string::npos && sub != "..",
                    "{}: field 'best.dir' is '{}' (expected a sub-folder name)", where,
                    printable(sub));
    FinetuneRun best = read_finetune((fs::path(dir) / sub).string());
    best.dir = dir;
    best.label_suffix = " (best of grid: " + sub + ")";
    return best;
  }
  // --mode linear: one fit, no epochs.
  if (!d.j.contains("history") && d.j.contains("method")) r.linear = true;
  const json& hist = r.linear ? json::array() : get_array(d, d.j, "", "history");
  for (std::size_t i = 0; i < hist.size(); ++i) {
    const std::string p = fmt::format("history[{}]", i);
    r.epoch.push_back(get_number(d, hist[i], p, "epoch"));
    r.loss.push_back(get_number(d, hist[i], p, "train_loss"));
    r.train_acc.push_back(get_number(d, hist[i], p, "train_acc"));
    r.val_acc.push_back(opt_number(hist[i], "val_acc"));
  }
  r.test_acc = opt_number(d.j, "test_acc");
  if (d.j.contains("config") && d.j.at("config").is_object()) r.config = d.j.at("config");
  r.name = d.j.contains("zoo_model") ? opt_string(d.j.at("zoo_model"), "name") : "";
  if (r.name.empty()) r.name = fs::path(dir).filename().string();
  if (r.name.empty()) r.name = dir;
  return r;
}

std::string section_finetune(const std::vector<FinetuneRun>& runs) {
  std::string o = "<section id=\"finetune\">\n<h2>Fine-tuning learning curves</h2>\n";
  LinePlot loss, acc;
  loss.width = acc.width = 680;
  loss.title = "Training loss by epoch";
  loss.x_label = "epoch";
  loss.y_label = "training loss (cross-entropy, nats)";
  acc.title = "Accuracy by epoch";
  acc.subtitle = "solid: validation; dashed: training";
  acc.x_label = "epoch";
  acc.y_label = "accuracy, %";
  acc.y_min = 0;
  acc.y_max = 100;
  Table ld, ad;
  ld.caption = "Training loss per epoch";
  ld.header = {"run", "epoch", "training loss"};
  ad.caption = "Accuracy per epoch";
  ad.header = {"run", "epoch", "training accuracy, %", "validation accuracy, %"};
  Table summary;
  summary.caption = "Runs";
  summary.header = {"run", "folder", "mode", "epochs", "test accuracy, %"};
  const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                  "#E69F00", "#56B4E9", "#000000"};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const FinetuneRun& r = runs[i];
    const std::string colour = kColours[i % 7];
    PlotSeries l{r.name, r.epoch, r.loss, {}, {}, false, colour};
    PlotSeries v{r.name + " (validation)", r.epoch, r.val_acc, {}, {}, false, colour};
    PlotSeries t{r.name + " (training)", r.epoch, r.train_acc, {}, {}, true, colour};
    loss.series.push_back(l);
    loss.markers.push_back(marker_for(i));
    acc.series.push_back(v);
    acc.markers.push_back(marker_for(i));
    acc.series.push_back(t);
    acc.markers.push_back(marker_for(i));
    for (std::size_t e = 0; e < r.epoch.size(); ++e) {
      ld.rows.push_back({html::text(r.name), html::number(r.epoch[e]), html::number(r.loss[e])});
      ad.rows.push_back({html::text(r.name), html::number(r.epoch[e]), html::number(r.train_acc[e]),
                         html::number(r.val_acc[e])});
    }
    summary.rows.push_back({html::text(r.name + r.label_suffix), html::text(r.dir),
                            html::text(r.linear ? "linear" : opt_string(r.config, "mode")),
                            html::number(static_cast<double>(r.epoch.size())),
                            html::number(r.test_acc)});
  }
  o += "<div class=\"table\">\n" + html::render(summary) + "</div>\n";
  bool any = false;
  for (const auto& r : runs) any = any || !r.epoch.empty();
  if (any) {
    o += html::figure(render_svg(loss), ld, "Training loss per epoch, one line per run.");
    o += html::figure(render_svg(acc), ad,
                      "Validation (solid) and training (dashed) accuracy per epoch; one colour "
                      "and marker per run.");
  }
  o += "</section>\n";
  return o;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string machine() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  utsname u{};
  std::string m = host;
  if (uname(&u) == 0) m += fmt::format(" ({} {} {})", u.sysname, u.release, u.machine);
  return m;
}

std::string section_provenance(const ReportInputs& in, const Rank& r,
                               const std::vector<FinetuneRun>& runs) {
  std::string o = "<section id=\"provenance\">\n<h2>Provenance</h2>\n";
  Table t;
  t.caption = "Where this page comes from";
  t.header = {"item", "value"};
  t.sortable = false;
  auto add = [&](const std::string& k, const std::string& v) {
    t.rows.push_back({html::text(k), Cell{"<code>" + html::escape(v) + "</code>", "", false}});
  };
  add("tlkit version", version());
  add("page written", utc_now());
  add("machine", machine());
  if (!in.command_line.empty()) add("command", in.command_line);
  add("ranking", in.rank);
  add("dataset", opt_string(r.dataset, "data"));
  if (!opt_string(r.dataset, "split").empty()) add("split", opt_string(r.dataset, "split"));
  if (!opt_string(r.dataset, "listing_sha256").empty())
    add("dataset listing SHA-256", opt_string(r.dataset, "listing_sha256"));
  if (std::isfinite(r.seconds)) add("ranking run time", seconds_text(r.seconds));
  if (!in.evaluate.empty()) add("evaluation", in.evaluate);
  if (!in.truth.empty()) add("accuracies (truth)", in.truth);
  if (!in.select.empty()) add("selection folder", in.select);
  if (!in.probe.empty()) add("probe folder", in.probe);
  o += "<div class=\"table\">\n" + html::render(t) + "</div>\n";
  Table mf;
  mf.caption = "Model files";
  mf.header = {"model", "file", "SHA-256"};
  for (const auto& m : r.models) {
    std::string sha = m.sha256;  // tlkit rank records it; else a fine-tuning run's record
    for (const auto& run : runs)
      if (sha.empty() && (run.name == m.name || opt_string(run.config, "model") == m.file))
        sha = opt_string(run.config, "model_sha256");
    mf.rows.push_back(
        {html::text(m.name), html::text(m.file), html::text(sha.empty() ? "not recorded" : sha)});
  }
  for (const auto& run : runs) {
    const std::string file = opt_string(run.config, "model");
    const bool listed = std::any_of(r.models.begin(), r.models.end(), [&](const RankModel& m) {
      return m.name == run.name || m.file == file;
    });
    if (!listed && !file.empty())
      mf.rows.push_back({html::text(run.name), html::text(file),
                         html::text(opt_string(run.config, "model_sha256"))});
  }
  o += "<div class=\"table\">\n" + html::render(mf) + "</div>\n";
  if (!runs.empty()) {
    Table ft;
    ft.caption = "Fine-tuning data (SHA-256 of each split's listing)";
    ft.header = {"run", "data", "train", "validation", "test"};
    for (const auto& run : runs)
      ft.rows.push_back({html::text(run.name), html::text(opt_string(run.config, "data")),
                         html::text(opt_string(run.config, "train_sha256")),
                         html::text(opt_string(run.config, "val_sha256")),
                         html::text(opt_string(run.config, "test_sha256"))});
    o += "<div class=\"table\">\n" + html::render(ft) + "</div>\n";
  }
  o += "</section>\n";
  return o;
}

}  // namespace

std::string build_report_html(const ReportInputs& in) {
  const Rank rank = read_rank(in);
  Evaluate eval;
  if (!in.evaluate.empty()) eval = read_evaluate(in.evaluate, rank);
  std::map<std::string, double> truth;
  if (!in.truth.empty()) truth = read_truth(in.truth);
  std::vector<FinetuneRun> runs;
  for (const auto& dir : in.finetune) runs.push_back(read_finetune(dir));

  std::vector<std::pair<std::string, std::string>> toc = {{"ranking", "Ranking"}};
  std::string body = section_ranking(rank);
  if (!in.evaluate.empty()) {
    body += section_agreement(rank, eval, in.truth.empty() ? nullptr : &truth);
    toc.push_back({"agreement", "Agreement with fine-tuning"});
    if (!eval.bootstrap.is_null()) {
      body += section_stability(eval);
      toc.push_back({"stability", "Stability"});
    }
  }
  if (rank.metrics.size() >= 2) {
    body += section_metric_agreement(rank);
    toc.push_back({"metrics", "Agreement between metrics"});
  }
  if (!in.select.empty()) {
    body += section_select(in.select, rank);
    toc.push_back({"select", "Selection"});
  }
  if (!in.probe.empty()) {
    body += section_probe(in.probe);
    toc.push_back({"probe", "Probe"});
  }
  if (!runs.empty()) {
    body += section_finetune(runs);
    toc.push_back({"finetune", "Learning curves"});
  }
  body += section_provenance(in, rank, runs);
  toc.push_back({"provenance", "Provenance"});

  std::string head = "<header>\n<h1>tlkit report: " +
                     html::escape(fs::path(opt_string(rank.dataset, "data")).filename().string()) +
                     "</h1>\n<p class=\"note\">" +
                     fmt::format("{} models, metrics {}. ", rank.models.size(),
                                 html::escape(fmt::format("{}", fmt::join(rank.metrics, ", ")))) +
                     "Every chart has its data in the table beside it; click a column header to "
                     "sort a table.</p>\n<nav aria-label=\"sections\"><ul>\n";
  for (const auto& [id, name] : toc)
    head += "<li><a href=\"#" + anchor(id) + "\">" + html::escape(name) + "</a></li>\n";
  head += "</ul></nav>\n</header>\n<main>\n";
  return html::page("tlkit report: " + opt_string(rank.dataset, "data"), head + body + "</main>\n");
}

void write_report(const ReportInputs& in, const std::string& out) {
  TLKIT_CHECK_ARG(!fs::is_directory(out), "--out {}: is a folder (expected an HTML file name)",
                  out);
  const std::string page = build_report_html(in);
  write_file_atomic(out, page);
}

}  // namespace tlkit

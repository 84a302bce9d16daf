// Hyper-parameter grids of tlkit finetune (finetune_grid.h).
#include "finetune_grid.h"

#include <filesystem>
#include <set>

#include "tlkit/core/error.h"

namespace tlkit::model::finetune_detail {
namespace fs = std::filesystem;

std::vector<GridPoint> grid_points(const std::vector<GridAxis>& axes) {
  std::vector<GridPoint> pts{{}};
  for (const auto& ax : axes) {
    std::vector<GridPoint> next;
    for (const auto& p : pts)
      for (const double v : ax.values) {
        auto q = p;
        q[ax.key] = v;
        next.push_back(q);
      }
    pts = next;
  }
  return pts;
}

std::string point_dir_name(const std::vector<GridAxis>& axes, const GridPoint& p) {
  std::string s;
  for (const auto& ax : axes)
    s += (s.empty() ? "" : ",") + fmt::format("{}={}", ax.key, p.at(ax.key));
  return s;
}

std::vector<FinetuneRun> run_grid(const FinetuneOptions& o, const std::vector<GridAxis>& axes,
                                  const Hyper& h0, const RunOne& run_one) {
  std::vector<FinetuneRun> runs;
  for (const auto& p : grid_points(axes)) {
    Hyper h = h0;
    for (const auto& [k, v] : p) {
      if (k == "lr") h.lr = v;
      if (k == "weight-decay") h.weight_decay = v;
      if (k == "momentum") h.momentum = v;
      if (k == "head-lr-mult") h.head_lr_mult = v;
      if (k == "label-smoothing") {
        TLKIT_CHECK_ARG(v < 1, "--grid: label-smoothing {} must be < 1", v);
        h.label_smoothing = v;
      }
    }
    runs.push_back(run_one(h, p, o.out + "/" + point_dir_name(axes, p)));
  }
  return runs;
}

void write_grid_metrics(const FinetuneOptions& o, const json& base, const FinetuneResult& res) {
  json m;
  m["config"] = base;
  m["grid"] = o.grid;
  json pts = json::array();
  for (const auto& r : res.runs) {
    json p;
    for (const auto& [k, v] : r.point) p[k] = v;
    pts.push_back({{"point", p},
                   {"dir", fs::path(r.out).filename().string()},
                   {"best_epoch", r.best_epoch},
                   {"best_val_acc", r.best_val_acc},
                   {"test_acc", r.finished ? json(r.test_acc) : json(nullptr)},
                   {"finished", r.finished}});
  }
  m["points"] = pts;
  m["best"] = pts[res.best_run];
  m["best_val_acc"] = res.runs[res.best_run].best_val_acc;
  m["test_acc"] = pts[res.best_run]["test_acc"];
  m["seconds"] = res.seconds;
  write_json(o.out + "/metrics.json", m);
}

}  // namespace tlkit::model::finetune_detail

namespace tlkit::model {

std::vector<GridAxis> parse_grid(const std::string& s, FinetuneMode mode) {
  static const std::set<std::string> kGradientKeys{"lr", "weight-decay", "momentum", "head-lr-mult",
                                                   "label-smoothing"};
  std::vector<GridAxis> axes;
  std::set<std::string> seen;
  std::size_t start = 0;
  TLKIT_CHECK_ARG(!s.empty(), "--grid: empty");
  while (start <= s.size()) {
    std::size_t end = s.find(';', start);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(start, end - start);
    start = end + 1;
    if (part.empty() && end == s.size()) break;  // a trailing ';'
    const std::size_t eq = part.find('=');
    TLKIT_CHECK_ARG(eq != std::string::npos && eq > 0, "--grid {}: '{}' is not key=value,value,...",
                    s, part);
    GridAxis ax;
    ax.key = part.substr(0, eq);
    if (mode == FinetuneMode::kLinear)
      TLKIT_CHECK_ARG(ax.key == "c",
                      "--grid {}: --mode linear takes the key c (the inverse L2 "
                      "strength of the logistic regression), not '{}'",
                      s, ax.key);
    else
      TLKIT_CHECK_ARG(kGradientKeys.count(ax.key),
                      "--grid {}: unknown key '{}' (expected lr, weight-decay, momentum, "
                      "head-lr-mult or label-smoothing)",
                      s, ax.key);
    TLKIT_CHECK_ARG(seen.insert(ax.key).second, "--grid {}: key '{}' given twice", s, ax.key);
    const std::string vals = part.substr(eq + 1);
    std::size_t vs = 0;
    while (vs <= vals.size()) {
      std::size_t ve = vals.find(',', vs);
      if (ve == std::string::npos) ve = vals.size();
      const std::string v = vals.substr(vs, ve - vs);
      double x = 0;
      std::size_t used = 0;
      try {
        x = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      TLKIT_CHECK_ARG(!v.empty() && used == v.size() && std::isfinite(x) && x >= 0,
                      "--grid {}: '{}' of key {} is not a number >= 0", s, v, ax.key);
      if (ax.key == "c" || ax.key == "lr")
        TLKIT_CHECK_ARG(x > 0, "--grid {}: {} must be > 0, got {}", s, ax.key, v);
      ax.values.push_back(x);
      vs = ve + 1;
    }
    axes.push_back(ax);
  }
  TLKIT_CHECK_ARG(!axes.empty(), "--grid {}: no key=values", s);
  return axes;
}

}  // namespace tlkit::model

// Hyper-parameter grids of tlkit finetune (finetune_grid.h).
#include "finetune_grid.h"

#include <cstdint>
#include <cstring>
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

namespace {

// A double as its 64-bit pattern (JSON numbers lose NaN and infinities).
std::uint64_t bits(double v) {
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
double from_bits(const json& j) {
  const auto u = j.get<std::uint64_t>();
  double v = 0;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

}  // namespace

std::string run_to_bytes(const FinetuneRun& r) {
  json j;
  j["out"] = r.out;
  json point = json::object();
  for (const auto& [k, v] : r.point) point[k] = bits(v);
  j["point"] = point;
  json history = json::array();
  for (const auto& e : r.history)
    history.push_back({e.epoch, bits(e.lr), bits(e.train_loss), bits(e.train_acc), bits(e.val_acc),
                       bits(e.seconds)});
  j["history"] = history;
  j["best_epoch"] = r.best_epoch;
  j["best_val_acc"] = bits(r.best_val_acc);
  j["test_acc"] = bits(r.test_acc);
  j["flags"] = {r.finished, r.early_stopped, r.diverged, r.resumed};
  j["resumed_from_epoch"] = r.resumed_from_epoch;
  return j.dump();
}

FinetuneRun run_from_bytes(const std::string& bytes) {
  const json j = json::parse(bytes);
  FinetuneRun r;
  r.out = j["out"].get<std::string>();
  for (const auto& [k, v] : j["point"].items()) r.point[k] = from_bits(v);
  for (const auto& e : j["history"])
    r.history.push_back({e[0].get<int>(), from_bits(e[1]), from_bits(e[2]), from_bits(e[3]),
                         from_bits(e[4]), from_bits(e[5])});
  r.best_epoch = j["best_epoch"].get<int>();
  r.best_val_acc = from_bits(j["best_val_acc"]);
  r.test_acc = from_bits(j["test_acc"]);
  r.finished = j["flags"][0].get<bool>();
  r.early_stopped = j["flags"][1].get<bool>();
  r.diverged = j["flags"][2].get<bool>();
  r.resumed = j["flags"][3].get<bool>();
  r.resumed_from_epoch = j["resumed_from_epoch"].get<int>();
  return r;
}

std::vector<FinetuneRun> run_grid(const FinetuneOptions& o, const std::vector<GridAxis>& axes,
                                  const Hyper& h0, Communicator& comm, const RunOne& run_one) {
  const std::vector<GridPoint> points = grid_points(axes);
  std::vector<Hyper> hypers;
  for (const auto& p : points) {
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
    hypers.push_back(h);
  }
  auto run_point = [&](std::size_t i) {
    return run_one(hypers[i], points[i], o.out + "/" + point_dir_name(axes, points[i]));
  };
  std::vector<FinetuneRun> runs;
  if (comm.size() == 1) {
    for (std::size_t i = 0; i < points.size(); ++i) runs.push_back(run_point(i));
    return runs;
  }
  // The queue: this process's runs, each after its point's index.
  json mine = json::array();
  {
    const auto next = comm.make_counter();
    for (;;) {
      const std::int64_t i = next->fetch_add(1);
      if (i >= static_cast<std::int64_t>(points.size())) break;
      mine.push_back({i, run_to_bytes(run_point(static_cast<std::size_t>(i)))});
    }
    comm.barrier();  // a process done early sleeps here instead of spinning in the collective
  }
  // Rank 0 puts them in point order and sends them to every process.
  std::string all;
  const std::vector<std::string> gathered = comm.gather(mine.dump());
  if (comm.is_root()) {
    std::vector<std::string> ordered(points.size());
    for (const auto& bytes : gathered)
      for (const auto& e : json::parse(bytes))
        ordered[e[0].get<std::size_t>()] = e[1].get<std::string>();
    json a = json::array();
    for (auto& bytes : ordered) a.push_back(std::move(bytes));
    all = a.dump();
  }
  comm.broadcast(all, 0);
  for (const auto& e : json::parse(all)) runs.push_back(run_from_bytes(e.get<std::string>()));
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

// The C++ side of tests/python's Python == C++ == CLI comparison: reads .npy files with the core's
// reader and calls the C++ API directly (tlkit::logme, LogmeAccumulator, tlkit::score), printing
// one JSON object with every double at full precision (non-finite values as null).
//
//   tlkit_py_cpp_reference logme --features F.npy --labels y.npy [--regression] [--mode M]
//                                [--chunk-rows K]
//   tlkit_py_cpp_reference score --features F.npy --labels y.npy [--probs P.npy]
//                                --metrics a,b [--param metric.param=value]... [--seed S]
//
// Built by python/CMakeLists.txt when TLKIT_BUILD_TESTS is on; an InputError prints its message
// on stderr and exits 2, like the CLI.
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/npy.h"
#include "tlkit/core/score.h"

namespace {

nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
}

nlohmann::json logme_json(const tlkit::LogmeResult& r) {
  nlohmann::json j;
  j["score"] = finite_or_null(r.score);
  j["per_target"] = r.per_target;
  nlohmann::json alpha = nlohmann::json::array(), beta = nlohmann::json::array();
  for (std::size_t i = 0; i < r.per_target.size(); ++i) {
    alpha.push_back(finite_or_null(r.alpha[i]));
    beta.push_back(finite_or_null(r.beta[i]));
  }
  j["alpha"] = alpha;
  j["beta"] = beta;
  j["iterations"] = r.iterations;
  j["rank"] = r.rank;
  j["labels"] = r.labels;
  j["mode"] = tlkit::to_string(r.mode);
  return j;
}

int run(int argc, char** argv) {
  if (argc < 2)
    throw tlkit::InputError("usage: tlkit_py_cpp_reference logme|score --features F ...");
  const std::string command = argv[1];
  std::map<std::string, std::string> opt;
  std::vector<std::string> params;
  bool regression = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--regression") {
      regression = true;
    } else if (i + 1 < argc && a == "--param") {
      params.emplace_back(argv[++i]);
    } else if (i + 1 < argc && a.rfind("--", 0) == 0) {
      opt[a.substr(2)] = argv[++i];
    } else {
      throw tlkit::InputError("unexpected argument " + a);
    }
  }
  const tlkit::NpyArray label_file = tlkit::load_npy(opt.at("labels"));
  nlohmann::json out;
  if (command == "logme") {
    tlkit::LogmeOptions o;
    o.mode = tlkit::parse_logme_mode(opt.count("mode") ? opt["mode"] : "exact");
    const std::int64_t chunk = opt.count("chunk-rows") ? std::stoll(opt["chunk-rows"]) : 0;
    std::vector<std::int64_t> labels;
    std::vector<double> targets;
    std::int64_t k = 0;
    if (regression)
      targets = label_file.targets(&k);
    else
      labels = label_file.labels();
    tlkit::LogmeResult r;
    if (chunk > 0) {
      tlkit::NpyRowReader reader(opt.at("features"));
      tlkit::LogmeAccumulator acc;
      for (std::int64_t done = 0; done < reader.rows();) {
        const tlkit::FeatureView f = reader.next(chunk);
        if (regression)
          acc.update(f, tlkit::TargetView{targets.data() + done * k, f.rows, k, k, 1});
        else
          acc.update(f, tlkit::LabelView{labels.data() + done, f.rows});
        done += f.rows;
      }
      r = acc.result(o);
    } else {
      const tlkit::NpyArray features = tlkit::load_npy(opt.at("features"));
      const std::int64_t n = label_file.rows();
      r = regression
              ? tlkit::logme(features.features(), tlkit::TargetView{targets.data(), n, k, k, 1}, o)
              : tlkit::logme(features.features(), tlkit::LabelView{labels.data(), n}, o);
    }
    out = logme_json(r);
  } else if (command == "score") {
    const std::vector<std::int64_t> labels = label_file.labels();
    tlkit::ScoreInputs in;
    in.labels = tlkit::LabelView{labels.data(), static_cast<std::int64_t>(labels.size())};
    std::optional<tlkit::NpyArray> features, probs;
    if (opt.count("features")) {
      features = tlkit::load_npy(opt["features"]);
      in.features = features->features();
    }
    if (opt.count("probs")) {
      probs = tlkit::load_npy(opt["probs"]);
      in.probs = probs->features();
    }
    tlkit::ScoreOptions so;
    so.seed = opt.count("seed") ? std::stoull(opt["seed"]) : 0;
    for (const std::string& p : params) {
      const auto dot = p.find('.'), eq = p.find('=');
      so.params.set(p.substr(0, dot), p.substr(dot + 1, eq - dot - 1), p.substr(eq + 1));
    }
    const tlkit::ScoreReport rep =
        tlkit::score(in, tlkit::parse_metric_list(opt.at("metrics")), so);
    out["metrics"] = nlohmann::json::object();
    for (const auto& m : rep.metrics) out["metrics"][m.name] = finite_or_null(m.score);
    if (!rep.logme.per_target.empty()) out["logme"] = logme_json(rep.logme);
  } else {
    throw tlkit::InputError("unknown command " + command);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "tlkit_py_cpp_reference: error: %s\n", e.what());
    return 2;
  }
}

// LogME against its floor: one float64 SYRK of F^T F plus one dsyevd of the D x D result.
//
//   build/benchmarks/tlkit_bench_logme [--n 20000 --d 2048 --c 100] [--metrics LIST]
//                                      [google benchmark flags]
//
// Data: float32 Gaussian features with class-dependent means (so the spectrum is not degenerate),
// labels i % C shuffled; fixed seed. Each benchmark reports seconds per run; the ratio to the
// floor is what docs/benchmarks.md records (tools/run_benchmarks.sh runs this and the NumPy
// references in one go).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tlkit/core/logme.h"
#include "tlkit/core/metrics.h"
#include "tlkit/core/score.h"

namespace {

std::int64_t g_n = 20000, g_d = 2048, g_c = 100;

struct Data {
  std::vector<float> f;
  std::vector<std::int64_t> y;
};

const Data& data() {
  static const Data d = [] {
    Data out;
    out.f.resize(static_cast<std::size_t>(g_n * g_d));
    out.y.resize(static_cast<std::size_t>(g_n));
    std::mt19937_64 rng(2021);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> means(static_cast<std::size_t>(g_c * g_d));
    for (auto& m : means) m = 0.5f * g(rng);
    for (std::int64_t i = 0; i < g_n; ++i) out.y[i] = i % g_c;
    std::shuffle(out.y.begin(), out.y.end(), rng);
    for (std::int64_t i = 0; i < g_n; ++i)
      for (std::int64_t j = 0; j < g_d; ++j)
        out.f[i * g_d + j] = g(rng) + means[out.y[i] * g_d + j];
    return out;
  }();
  return d;
}

void BM_Floor_SyrkPlusSyevd(benchmark::State& state) {
  const Data& dt = data();
  std::vector<double> f64(dt.f.begin(), dt.f.end());  // conversion not timed: the floor is BLAS
  std::vector<double> g(static_cast<std::size_t>(g_d * g_d)), w(static_cast<std::size_t>(g_d));
  for (auto _ : state) {
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, static_cast<int>(g_d),
                static_cast<int>(g_n), 1.0, f64.data(), static_cast<int>(g_d), 0.0, g.data(),
                static_cast<int>(g_d));
    LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<int>(g_d), g.data(),
                   static_cast<int>(g_d), w.data());
    benchmark::DoNotOptimize(w.data());
  }
}

void BM_Logme(benchmark::State& state) {
  const Data& dt = data();
  tlkit::LogmeOptions opt;
  opt.mode = static_cast<tlkit::LogmeMode>(state.range(0));
  for (auto _ : state) {
    const auto r = tlkit::logme(tlkit::FeatureView::row_major(dt.f.data(), g_n, g_d),
                                tlkit::LabelView{dt.y.data(), g_n}, opt);
    benchmark::DoNotOptimize(r.score);
    state.counters["score"] = r.score;
  }
  state.SetLabel(tlkit::to_string(opt.mode));
}

void BM_LogmeStreaming(benchmark::State& state) {
  const Data& dt = data();
  const std::int64_t chunk = state.range(0);
  for (auto _ : state) {
    tlkit::LogmeAccumulator acc;
    for (std::int64_t b = 0; b < g_n; b += chunk) {
      const std::int64_t cnt = std::min(chunk, g_n - b);
      acc.update(tlkit::FeatureView::row_major(dt.f.data() + b * g_d, cnt, g_d),
                 tlkit::LabelView{dt.y.data() + b, cnt});
    }
    const auto r = acc.result();
    benchmark::DoNotOptimize(r.score);
  }
}

// Probabilities over Cs = 1000 source classes (an ImageNet-sized head) for LEEP and NCE: sparse
// Dirichlet-like rows (gamma(0.05) weights), fixed seed.
const std::vector<double>& source_probs() {
  static const std::vector<double> p = [] {
    const std::int64_t cs = 1000;
    std::vector<double> out(static_cast<std::size_t>(g_n * cs));
    std::mt19937_64 rng(7);
    std::gamma_distribution<double> g(0.05, 1.0);
    for (std::int64_t i = 0; i < g_n; ++i) {
      double s = 0;
      for (std::int64_t z = 0; z < cs; ++z) s += out[i * cs + z] = g(rng) + 1e-12;
      for (std::int64_t z = 0; z < cs; ++z) out[i * cs + z] /= s;
    }
    return out;
  }();
  return p;
}

tlkit::ScoreInputs score_inputs() {
  const Data& dt = data();
  tlkit::ScoreInputs in;
  in.features = tlkit::FeatureView::row_major(dt.f.data(), g_n, g_d);
  in.labels = tlkit::LabelView{dt.y.data(), g_n};
  in.probs = tlkit::FeatureView::row_major(source_probs().data(), g_n, 1000);
  return in;
}

// Issue 3's budget (<= 2x LogME alone): every metric that is neither O(N^2) nor iterative, in one
// score() call sharing the statistics; each metric's own seconds are reported as counters.
// --metrics LIST replaces the list.
std::vector<std::string> g_all = {
    "logme", "hscore",    "hscore_shrink", "transrate", "gbc",      "sfda",   "leep",
    "nce",   "etran_lda", "etran_energy",  "ncti_seli", "ncti_ncc", "ncti_vc"};

void BM_ScoreAllButQuadraticAndIterative(benchmark::State& state) {
  const tlkit::ScoreInputs in = score_inputs();
  for (auto _ : state) {
    const auto r = tlkit::score(in, g_all);
    for (const auto& m : r.metrics) state.counters[m.name + "_s"] = m.seconds;
    state.counters["shared_s"] = r.shared_seconds;
  }
}

// One metric alone in its own score() call (it pays for the shared statistics it needs):
// BM_Metric/<name>, one per registry entry.
void BM_Metric(benchmark::State& state, const std::string& name) {
  const tlkit::ScoreInputs in = score_inputs();
  for (auto _ : state) {
    const auto r = tlkit::score(in, {name});
    state.counters["score"] = r.metrics.at(0).score;
  }
}

}  // namespace

BENCHMARK(BM_ScoreAllButQuadraticAndIterative)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_Floor_SyrkPlusSyevd)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_Logme)
    ->Arg(static_cast<int>(tlkit::LogmeMode::kExact))
    ->Arg(static_cast<int>(tlkit::LogmeMode::kThuml))
    ->Arg(static_cast<int>(tlkit::LogmeMode::kIcml))
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_LogmeStreaming)->Arg(1000)->Unit(benchmark::kSecond)->UseRealTime();

int main(int argc, char** argv) {
  // Our own size flags first; the rest go to Google Benchmark.
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    auto take = [&](const char* name, std::int64_t& v) {
      if (std::strcmp(argv[i], name) == 0 && i + 1 < argc) {
        v = std::atoll(argv[++i]);
        return true;
      }
      return false;
    };
    if (take("--n", g_n) || take("--d", g_d) || take("--c", g_c)) continue;
    if (std::strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
      g_all = tlkit::parse_metric_list(argv[++i]);
      continue;
    }
    rest.push_back(argv[i]);
  }
  int rc = static_cast<int>(rest.size());
  tlkit::set_blas_threads(0);
  for (const auto& m : tlkit::metric_registry()) {
    const std::string name(m.name);
    benchmark::RegisterBenchmark(("BM_Metric/" + name).c_str(), BM_Metric, name)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&rc, rest.data());
  benchmark::AddCustomContext("shape", std::to_string(g_n) + "x" + std::to_string(g_d) + ", C=" +
                                           std::to_string(g_c) + ", float32 features");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

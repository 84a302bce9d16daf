// The error catalogue (docs/errors.md), one row per bad input: each row of the table below runs
// the tlkit executable on a crafted input and checks the contract of include/tlkit/core/error.h:
// the documented exit code, exactly one stderr line "tlkit: error: ..." naming the input (file or
// flag) and the problem, nothing on stdout, and no output file left behind. Rows whose code is 0
// are inputs that look bad but are accepted (documented as such). A last test checks that the
// table and docs/errors.md list the same ids.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "cli_support.h"
#include "tlkit/core/npy.h"

namespace tlkit {
namespace {

namespace fs = std::filesystem;

// The inputs every case starts from, in one temporary folder: 20 samples, D = 3, 2 classes.
struct Inputs {
  test::TempDir dir;
  std::string feats, labels, probs, truth, scores;
  std::string p(const std::string& name) const { return dir.file(name); }

  Inputs() {
    std::vector<double> f(20 * 3), probs_v(20 * 4, 0.25);
    std::vector<std::int64_t> y(20);
    for (int i = 0; i < 20; ++i) {
      y[i] = i % 2;
      for (int j = 0; j < 3; ++j) f[i * 3 + j] = std::sin(1.0 + i * 3 + j) + y[i];
    }
    feats = p("feats.npy");
    labels = p("labels.npy");
    probs = p("probs.npy");
    save_npy(feats, f.data(), {20, 3});
    save_npy(labels, y.data(), {20});
    save_npy(probs, probs_v.data(), {20, 4});
    truth = p("truth.csv");
    scores = p("scores.csv");
    test::write_bytes(truth, "model,accuracy\na,0.9\nb,0.8\nc,0.7\n");
    test::write_bytes(scores, "model,metric,score\na,logme,3\nb,logme,2\nc,logme,1\n");
  }
};

// An .npy image with a hand-written header (for malformed files).
std::string raw_npy(const std::string& dict, const std::string& data, char major = 1) {
  std::string d = dict;
  while ((10 + d.size() + 1) % 64) d.push_back(' ');
  d.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(major);
  out.push_back(0);
  out.push_back(static_cast<char>(d.size() & 0xff));
  out.push_back(static_cast<char>(d.size() >> 8));
  return out + d + data;
}

std::string doubles(std::vector<double> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
}

// Features 20 x 3 with one value replaced.
std::string feats_with(double bad) {
  std::vector<double> f(60, 0.5);
  for (int i = 0; i < 60; ++i) f[i] = std::cos(i);
  f[7] = bad;
  return raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (20, 3), }", doubles(f));
}

std::string probs_with(double a, double b) {
  std::vector<double> p(80, 0.25);
  p[0] = a;
  p[1] = b;
  return raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (20, 4), }", doubles(p));
}

std::string int64_labels(std::vector<std::int64_t> y, const std::string& shape) {
  return raw_npy("{'descr': '<i8', 'fortran_order': False, 'shape': " + shape + ", }",
                 std::string(reinterpret_cast<const char*>(y.data()), y.size() * 8));
}

#ifdef TLKIT_TEST_CUDA_BUILD
constexpr bool kCudaBuild = true;  // tlkit was built with TLKIT_CUDA=ON
#else
constexpr bool kCudaBuild = false;
#endif

struct Case;
// Checks what an accepted input (exit code 0) produced: the file written, a value, a line printed.
using Verify = std::function<void(const Case& c, Inputs& in, const test::CliRun& r)>;

struct Case {
  const char* id;
  int code;             // expected exit code
  const char* name;     // what stderr must name (a file is given relative to the inputs folder)
  const char* problem;  // a fragment of the message (docs/errors.md shows the whole line)
  // Writes its inputs into `in` and returns the arguments of tlkit. A "!sh " prefix holds shell
  // commands run first ("!sh CMDS;;ARGS").
  std::function<std::string(Inputs& in)> make;
  const char* output = nullptr;  // a file that must not exist afterwards (in the inputs folder)
  Verify verify = nullptr;       // rows of exit code 0: what the accepted input produced
};

// gtest names a parameter by its id (not by a dump of its bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.id; }

std::string score(const Inputs& in) {
  return "score --features " + in.feats + " --labels " + in.labels;
}

std::string with_features(Inputs& in, const std::string& file, const std::string& bytes) {
  test::write_bytes(in.p(file), bytes);
  return "score --features " + in.p(file) + " --labels " + in.labels;
}

std::string with_labels(Inputs& in, const std::string& bytes, const std::string& extra = "") {
  test::write_bytes(in.p("y.npy"), bytes);
  return "score --features " + in.feats + " --labels " + in.p("y.npy") + extra;
}

std::string with_probs(Inputs& in, const std::string& bytes) {
  test::write_bytes(in.p("p.npy"), bytes);
  return "score --labels " + in.labels + " --probs " + in.p("p.npy") + " --metric leep";
}

std::string evaluate_with(Inputs& in, const std::string& scores, const std::string& truth) {
  if (!scores.empty()) test::write_bytes(in.p("s.csv"), scores);
  if (!truth.empty()) test::write_bytes(in.p("t.csv"), truth);
  return "evaluate --scores " + (scores.empty() ? in.scores : in.p("s.csv")) + " --truth " +
         (truth.empty() ? in.truth : in.p("t.csv"));
}

// tlkit report on a copy of tests/data/report (in rep/), writing r.html.
std::string report_with(Inputs& in, const std::string& args) {
  if (!fs::exists(in.p("rep")))
    fs::copy(test::data_path("report"), in.p("rep"), fs::copy_options::recursive);
  return "report " + args + " --out " + in.p("r.html");
}

std::string npy_data(const std::string& name) { return test::data_path("npy/" + name); }

const std::string kF8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (20, 3), }";

// The score of `metric` in `tlkit score --format csv` output ("metric,mean,,score,...").
double csv_score(const std::string& out, const std::string& metric) {
  const std::size_t at = out.find("\n" + metric + ",mean,,");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << metric << " row in\n" << out;
    return std::nan("");
  }
  return std::strtod(out.c_str() + at + metric.size() + 8, nullptr);
}

// The rows of an .npy file (0 when it is missing or unreadable, with a failure).
std::int64_t npy_rows(const std::string& path) {
  try {
    return load_npy(path).rows();
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": " << e.what();
    return 0;
  }
}

std::vector<Case> score_cases() {
  return {
      // ---- .npy / .npz files ----
      {"npy-missing-file", 2, "none.npy", "cannot open",
       [](Inputs& in) {
         return "score --features " + in.p("none.npy") + " --labels " + in.labels;
       }},
      {"npy-empty-file", 2, "f.npy", "empty file",
       [](Inputs& in) { return with_features(in, "f.npy", ""); }},
      {"npy-not-npy", 2, "f.npy", "not an .npy file",
       [](Inputs& in) { return with_features(in, "f.npy", "a,b,c\n1,2,3\n"); }},
      {"npy-bad-version", 2, "f.npy", "unsupported .npy version 9.0",
       [](Inputs& in) { return with_features(in, "f.npy", raw_npy(kF8, "", 9)); }},
      {"npy-truncated-header", 2, "f.npy", "truncated .npy header",
       [](Inputs& in) { return with_features(in, "f.npy", raw_npy(kF8, "").substr(0, 40)); }},
      {"npy-header-unknown-key", 2, "f.npy", "unexpected key 'x'",
       [](Inputs& in) {
         return with_features(in, "f.npy",
                              raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                      "'shape': (20, 3), 'x': 1}",
                                      ""));
       }},
      {"npy-header-missing-shape", 2, "f.npy", "missing key 'shape'",
       [](Inputs& in) {
         return with_features(in, "f.npy", raw_npy("{'descr': '<f8', 'fortran_order': False}", ""));
       }},
      {"npy-truncated-data", 2, "f.npy", "truncated",
       [](Inputs& in) { return with_features(in, "f.npy", feats_with(0).substr(0, 500)); }},
      {"npy-trailing-bytes", 2, "f.npy", "unexpected bytes after the array data",
       [](Inputs& in) { return with_features(in, "f.npy", feats_with(0) + "xxxxxxxx"); }},
      {"npy-big-endian", 2, "f8_bigendian.npy", "big-endian",
       [](Inputs& in) {
         return "score --features " + npy_data("f8_bigendian.npy") + " --labels " + in.labels;
       }},
      {"npy-object-dtype", 2, "object.npy", "object arrays",
       [](Inputs& in) {
         return "score --features " + npy_data("object.npy") + " --labels " + in.labels;
       }},
      {"npy-structured-dtype", 2, "structured.npy", "structured dtypes",
       [](Inputs& in) {
         return "score --features " + npy_data("structured.npy") + " --labels " + in.labels;
       }},
      {"npy-float16", 2, "f2.npy", "float16",
       [](Inputs& in) {
         return "score --features " + npy_data("f2.npy") + " --labels " + in.labels;
       }},
      {"npy-fortran-order", 0, "", "",
       [](Inputs& in) {
         std::vector<double> f(60);
         for (int i = 0; i < 60; ++i) f[i] = std::cos(i);
         return with_features(
             in, "f.npy",
             raw_npy("{'descr': '<f8', 'fortran_order': True, 'shape': (20, 3), }", doubles(f)));
       },
       nullptr,
       // The same matrix in C order (element (i, j) is f[j * 20 + i]) scores the same.
       [](const Case&, Inputs& in, const test::CliRun& r) {
         EXPECT_NE(r.out.find("N = 20 samples, D = 3 features"), std::string::npos) << r.out;
         std::vector<double> c(60);
         for (int i = 0; i < 20; ++i)
           for (int j = 0; j < 3; ++j) c[i * 3 + j] = std::cos(j * 20 + i);
         save_npy(in.p("c.npy"), c.data(), {20, 3});
         const std::string tail = " --labels " + in.labels + " --metric logme,hscore --format csv";
         const test::CliRun f = test::run_cli("score --features " + in.p("f.npy") + tail);
         const test::CliRun cc = test::run_cli("score --features " + in.p("c.npy") + tail);
         ASSERT_EQ(f.code, 0) << f.err;
         ASSERT_EQ(cc.code, 0) << cc.err;
         for (const char* m : {"logme", "hscore"})
           EXPECT_TRUE(test::near_rel(csv_score(f.out, m), csv_score(cc.out, m), 1e-12)) << m;
       }},
      {"npy-huge-shape", 2, "f.npy", "over the memory limit",
       [](Inputs& in) {
         // A sparse file as large as its header claims (1 TiB): only the memory guard stops it.
         const std::string path = in.p("f.npy");
         test::write_bytes(path, raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                         "(1073741824, 256), }",
                                         ""));
         const auto size = fs::file_size(path) + (std::uint64_t{1} << 40);
         if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) return std::string("!skip");
         return "score --features " + path + " --labels " + in.labels;
       }},
      {"npz-missing-member", 2, "stored.npz", "no member 'nope'",
       [](Inputs& in) {
         return "score --features " + npy_data("stored.npz") + ":nope --labels " + in.labels;
       }},
      {"npz-member-not-named", 2, "stored.npz", "name one as",
       [](Inputs& in) {
         return "score --features " + npy_data("stored.npz") + " --labels " + in.labels;
       }},
      {"npz-not-a-zip", 2, "f.npz", "not a valid .npz",
       [](Inputs& in) { return with_features(in, "f.npz", "this is not a zip archive"); }},
      {"npz-truncated", 2, "f.npz", "not a valid .npz",
       [](Inputs& in) {
         return with_features(in, "f.npz", test::read_bytes(npy_data("stored.npz")).substr(0, 300));
       }},
      // ---- features ----
      {"features-nan", 2, "f.npy", "non-finite value nan at row 2, column 1",
       [](Inputs& in) { return with_features(in, "f.npy", feats_with(std::nan(""))); }},
      {"features-inf", 2, "f.npy", "non-finite value inf at row 2, column 1",
       [](Inputs& in) {
         return with_features(in, "f.npy", feats_with(std::numeric_limits<double>::infinity()));
       }},
      {"features-integer-dtype", 2, "labels.npy", "features must be float32 or float64",
       [](Inputs& in) { return "score --features " + in.labels + " --labels " + in.labels; }},
      {"features-1d", 2, "f.npy", "2-D array",
       [](Inputs& in) {
         return with_features(in, "f.npy",
                              raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                      "'shape': (20,), }",
                                      doubles(std::vector<double>(20, 1.0))));
       }},
      {"features-d0", 2, "f.npy", "at least 1 feature column, got D = 0",
       [](Inputs& in) {
         return with_features(in, "f.npy",
                              raw_npy("{'descr': '<f8', 'fortran_order': False, "
                                      "'shape': (20, 0), }",
                                      ""));
       }},
      {"features-n1", 2, "y1.npy", "N = 1",
       [](Inputs& in) {
         save_npy(in.p("f1.npy"), std::vector<double>{1, 2, 3}.data(), {1, 3});
         save_npy(in.p("y1.npy"), std::vector<std::int64_t>{0}.data(), {1});
         return "score --features " + in.p("f1.npy") + " --labels " + in.p("y1.npy");
       }},
      {"features-n0", 2, "y0.npy", "N = 0",
       [](Inputs& in) {
         test::write_bytes(in.p("y0.npy"), int64_labels({}, "(0,)"));
         return "score --features " + npy_data("empty_rows.npy") + " --labels " + in.p("y0.npy");
       }},
      {"length-mismatch", 2, "feats.npy", "has 20 rows but",
       [](Inputs& in) {
         return with_labels(in, int64_labels(std::vector<std::int64_t>(19, 0), "(19,)"));
       }},
      // ---- labels ----
      {"labels-float-without-regression", 2, "y.npy", "pass --regression",
       [](Inputs& in) {
         return with_labels(in,
                            raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (20,), }",
                                    doubles(std::vector<double>(20, 0.5))));
       }},
      {"labels-2d", 2, "y.npy", "labels must have shape (N,) or (N, 1)",
       [](Inputs& in) {
         return with_labels(in, int64_labels(std::vector<std::int64_t>(40, 0), "(20, 2)"));
       }},
      {"labels-uint64-overflow", 2, "y.npy", "does not fit in int64",
       [](Inputs& in) {
         std::vector<std::uint64_t> y(20, 0);
         y[3] = ~std::uint64_t{0};
         return with_labels(in,
                            raw_npy("{'descr': '<u8', 'fortran_order': False, 'shape': (20,), }",
                                    std::string(reinterpret_cast<const char*>(y.data()), 160)));
       }},
      {"labels-single-class", 2, "y.npy", "at least 2 classes, found only label 4",
       [](Inputs& in) {
         return with_labels(in, int64_labels(std::vector<std::int64_t>(20, 4), "(20,)"));
       }},
      {"targets-nan-regression", 2, "y.npy", "non-finite value nan at row 2",
       [](Inputs& in) {
         std::vector<double> t(20, 0.5);
         t[2] = std::nan("");
         return with_labels(
             in, raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (20,), }", doubles(t)),
             " --regression");
       }},
      // ---- probabilities ----
      {"probs-negative", 2, "p.npy", "negative value -0.25 at row 0, column 0",
       [](Inputs& in) { return with_probs(in, probs_with(-0.25, 0.75)); }},
      {"probs-rows-not-summing-to-1", 2, "p.npy", "row 0 sums to 1.5",
       [](Inputs& in) { return with_probs(in, probs_with(0.5, 0.5)); }},
      {"probs-nan", 2, "p.npy", "non-finite value nan at row 0, column 0",
       [](Inputs& in) { return with_probs(in, probs_with(std::nan(""), 0.25)); }},
      {"logits-and-probs", 2, "--logits", "excludes",
       [](Inputs& in) { return with_probs(in, probs_with(0.25, 0.25)) + " --logits " + in.probs; }},
      {"logits-not-2d", 2, "labels.npy", "logits must be a 2-D float32 or float64 array",
       [](Inputs& in) {
         return "score --labels " + in.labels + " --logits " + in.labels + " --metric nce";
       }},
      {"logits-nan", 2, "z.npy", "non-finite value nan at row 0, column 1",
       [](Inputs& in) {
         test::write_bytes(in.p("z.npy"), probs_with(0.25, std::nan("")));
         return "score --labels " + in.labels + " --logits " + in.p("z.npy") + " --metric leep";
       }},
      {"probs-length-mismatch", 2, "p.npy", "has 10 rows but",
       [](Inputs& in) {
         return with_probs(in,
                           raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (10, 4), }",
                                   doubles(std::vector<double>(40, 0.25))));
       }},
      // ---- flags ----
      {"flag-unknown", 2, "--bogus", "not expected",
       [](Inputs& in) { return score(in) + " --bogus"; }},
      {"flag-missing-labels", 2, "--labels", "required",
       [](Inputs& in) { return "score --features " + in.feats; }},
      {"flag-unknown-metric", 2, "--metric", "nope",
       [](Inputs& in) { return score(in) + " --metric nope"; }},
      {"flag-unknown-metric-alias", 2, "--metrics", "unknown metric 'nope'",
       [](Inputs& in) { return score(in) + " --metrics nope"; }},
      {"flag-metric-and-metrics", 2, "--metrics", "excludes",
       [](Inputs& in) { return score(in) + " --metric logme --metrics hscore"; }},
      {"flag-metric-needs-probs", 2, "--metric leep", "needs --probs",
       [](Inputs& in) { return score(in) + " --metric leep"; }},
      {"flag-regression-unsupported", 2, "--metric hscore", "does not support --regression",
       [](Inputs& in) { return score(in) + " --metric hscore --regression"; }},
      {"flag-chunk-rows-not-streaming", 2, "--metric knn", "cannot stream",
       [](Inputs& in) { return score(in) + " --metric knn --chunk-rows 5"; }},
      {"flag-chunk-rows-gbc-pca", 2, "--metric gbc", "--gbc-pca-dims > 0",
       [](Inputs& in) { return score(in) + " --metric gbc --gbc-pca-dims 2 --chunk-rows 5"; }},
      // --device cuda: a build without CUDA refuses it (usage); a CUDA build on a machine where
      // the CUDA runtime finds no device says so (environment). Each row runs in its build.
      {"flag-device-cuda-not-built", 2, "--device cuda", "built without CUDA",
       [](Inputs& in) { return kCudaBuild ? std::string("!skip") : score(in) + " --device cuda"; }},
      {"flag-device-cuda-no-device", 1, "--device cuda", "no CUDA device",
       [](Inputs& in) {
         if (!kCudaBuild) return std::string("!skip");
         const std::string args = score(in) + " --device cuda";
         return test::run_cli(args).code == 0 ? std::string("!skip") : args;  // a GPU is there
       }},
      {"flag-bad-device", 2, "--device", "tpu",
       [](Inputs& in) { return score(in) + " --device tpu"; }},
      {"flag-bad-format", 2, "--format", "xml",
       [](Inputs& in) { return score(in) + " --format xml"; }},
      {"flag-negative-chunk-rows", 2, "--chunk-rows", "expected an integer >= 0, got '-1'",
       [](Inputs& in) { return score(in) + " --chunk-rows -1"; }},
      {"flag-bad-metric-parameter", 2, "--logme-mode", "fast",
       [](Inputs& in) { return score(in) + " --logme-mode fast"; }},
      {"flag-bad-max-memory", 2, "--max-memory lots", "expected a size",
       [](Inputs& in) { return score(in) + " --max-memory lots"; }},
      {"max-memory-exceeded", 2, "feats.npy", "over the memory limit of 100 B",
       [](Inputs& in) { return score(in) + " --max-memory 100"; }},
      {"command-missing", 2, "tlkit --help", "A subcommand is required",
       [](Inputs&) { return std::string(); }},
      {"command-unknown", 2, "frobnicate", "unknown command",
       [](Inputs&) { return std::string("frobnicate"); }},
      // ---- output ----
      {"stdout-full-disk", 1, "standard output", "No space left on device",
       [](Inputs& in) { return score(in) + " >/dev/full"; }},
      // ---- evaluate ----
      {"csv-missing-file", 2, "none.csv", "cannot open",
       [](Inputs& in) { return "evaluate --scores " + in.p("none.csv") + " --truth " + in.truth; }},
      {"csv-missing-column", 2, "t.csv", "missing column 'accuracy'",
       [](Inputs& in) { return evaluate_with(in, "", "model,acc\na,1\nb,2\n"); }},
      {"csv-not-a-number", 2, "t.csv", "'high'",
       [](Inputs& in) { return evaluate_with(in, "", "model,accuracy\na,0.9\nb,high\nc,0.7\n"); }},
      {"csv-ragged-row", 2, "s.csv", "line 3",
       [](Inputs& in) {
         return evaluate_with(in, "model,metric,score\na,logme,3\nb,logme\n", "");
       }},
      {"csv-open-quote", 2, "s.csv", "quote",
       [](Inputs& in) { return evaluate_with(in, "model,metric,score\n\"a,logme,3\n", ""); }},
      {"csv-duplicate-model", 2, "t.csv", "a second accuracy for model 'a'",
       [](Inputs& in) { return evaluate_with(in, "", "model,accuracy\na,0.9\na,0.8\nc,0.7\n"); }},
      {"csv-unknown-model", 0, "", "",
       [](Inputs& in) {
         return evaluate_with(in,
                              "model,metric,score\na,logme,3\nzz,logme,2\nb,logme,2\n"
                              "c,logme,1\n",
                              "");
       },
       nullptr,
       // A warning names zz; logme is evaluated on a, b and c, in perfect agreement.
       [](const Case&, Inputs& in, const test::CliRun& r) {
         EXPECT_EQ(r.err, "tlkit: warning: " + in.p("s.csv") +
                              ": 1 model with scores but no accuracy in " + in.truth +
                              ", left out: zz\n");
         EXPECT_NE(r.out.find("\nlogme         3       1.0000      1.0000"), std::string::npos)
             << r.out;
       }},
      {"csv-no-common-model", 2, "s.csv", "none of its 2 models has an accuracy",
       [](Inputs& in) {
         return evaluate_with(in, "model,metric,score\nyy,logme,3\nzz,logme,2\n", "");
       }},
      {"csv-single-model", 2, "s.csv", "only 1 model",
       [](Inputs& in) { return evaluate_with(in, "model,metric,score\na,logme,3\n", ""); }},
      {"csv-empty-file", 2, "s.csv", "empty file",
       [](Inputs& in) {
         test::write_bytes(in.p("s.csv"), "");
         return "evaluate --scores " + in.p("s.csv") + " --truth " + in.truth;
       }},
      // ---- report (the inputs: a copy of tests/data/report in rep/) ----
      {"report-rank-missing", 2, "--rank", "cannot open",
       [](Inputs& in) { return report_with(in, "--rank " + in.p("none.json")); }, "r.html"},
      {"report-rank-not-rank", 2, "rep/eval.json", "field 'tool' is missing",
       [](Inputs& in) { return report_with(in, "--rank " + in.p("rep/eval.json")); }, "r.html"},
      {"report-rank-schema", 2, "r2.json", "field 'schema_version' is 2",
       [](Inputs& in) {
         std::string r = test::read_bytes(test::data_path("report/rank.json"));
         r.replace(r.find("\"schema_version\": 1"), 19, "\"schema_version\": 2");
         test::write_bytes(in.p("r2.json"), r);
         return report_with(in, "--rank " + in.p("r2.json"));
       },
       "r.html"},
      {"report-evaluate-other-models", 2, "e.json", "not a model of --rank",
       [](Inputs& in) {
         std::string e = test::read_bytes(test::data_path("report/eval.json"));
         for (std::size_t at; (at = e.find("doodlenet_quickdraw")) != std::string::npos;)
           e.replace(at, 19, "resnet152");
         test::write_bytes(in.p("e.json"), e);
         return report_with(in,
                            "--rank " + in.p("rep/rank.json") + " --evaluate " + in.p("e.json"));
       },
       "r.html"},
      {"report-select-other-models", 2, "sel/select.json",
       "a fine-tuned model that is not a model of --rank",
       [](Inputs& in) {
         std::string j = test::read_bytes(test::data_path("report/select/select.json"));
         for (std::size_t at; (at = j.find("cifar10_resnet32")) != std::string::npos;)
           j.replace(at, 16, "resnet152");
         std::filesystem::create_directories(in.p("sel"));
         test::write_bytes(in.p("sel/select.json"), j);
         return report_with(in, "--rank " + in.p("rep/rank.json") + " --select " + in.p("sel"));
       },
       "r.html"},
      {"report-select-not-select", 2, "rep/probe", "no select.json",
       [](Inputs& in) {
         return report_with(in,
                            "--rank " + in.p("rep/rank.json") + " --select " + in.p("rep/probe"));
       },
       "r.html"},
      {"report-probe-missing", 2, "--probe", "no such folder",
       [](Inputs& in) {
         return report_with(in, "--rank " + in.p("rep/rank.json") + " --probe " + in.p("none"));
       },
       "r.html"},
      {"report-probe-not-probe", 2, "rep/ft-resnet20", "no results.json",
       [](Inputs& in) {
         return report_with(
             in, "--rank " + in.p("rep/rank.json") + " --probe " + in.p("rep/ft-resnet20"));
       },
       "r.html"},
      {"report-finetune-not-finetune", 2, "rep/probe", "no metrics.json",
       [](Inputs& in) {
         return report_with(in,
                            "--rank " + in.p("rep/rank.json") + " --finetune " + in.p("rep/probe"));
       },
       "r.html"},
      {"report-out-folder", 2, "--out", "is a folder",
       [](Inputs& in) {
         report_with(in, "");
         return "report --rank " + in.p("rep/rank.json") + " --out " + in.p("rep");
       }},
      {"report-truth-without-evaluate", 2, "--truth", "--evaluate",
       [](Inputs& in) {
         return report_with(in, "--rank " + in.p("rep/rank.json") + " --truth " + in.truth);
       },
       "r.html"},
  };
}

// ---- tlkit extract (built with LibTorch only; these rows skip otherwise) ----
std::string model(const std::string& name) {
  return test::data_path("model/models/" + name + ".pt");
}

// A copy of the 6-image training folder, with `extra` (file -> source image) added.
std::string image_folder(Inputs& in,
                         const std::vector<std::pair<std::string, std::string>>& extra) {
  const std::string data = in.p("data");
  fs::copy(test::data_path("model/images/train"), data, fs::copy_options::recursive);
  for (const auto& [file, source] : extra) {
    fs::create_directories(fs::path(data + "/" + file).parent_path());
    fs::copy_file(test::data_path("model/images/" + source), data + "/" + file);
  }
  return data;
}

std::string extract(Inputs& in, const std::string& data, const std::string& model_name = "tuple") {
  return "extract --model " + model(model_name) + " --data " + data +
         " --input-size 16 --quiet --out " + in.p("feats");
}

// An accepted extraction of the 6 images plus `added`: 7 feature rows, all finite, and files.txt
// lists the added image.
Verify extracted_with(const std::string& added) {
  return [added](const Case&, Inputs& in, const test::CliRun&) {
    const std::string features = in.p("feats/features.npy");
    EXPECT_EQ(npy_rows(features), 7);
    if (fs::exists(features)) {
      const NpyArray f = load_npy(features);
      const float* v = static_cast<const float*>(f.data());
      for (std::int64_t i = 0; i < f.rows() * f.cols(); ++i)
        ASSERT_TRUE(std::isfinite(v[i])) << "feature " << i;
    }
    const std::string files = test::read_bytes(in.p("feats/files.txt"));
    EXPECT_NE(files.find(added + "\t"), std::string::npos) << files;
  };
}

std::vector<Case> extract_cases() {
  return {
      {"extract-truncated-jpeg", 2, "bad.jpg", "truncated JPEG",
       [](Inputs& in) {
         return extract(in, image_folder(in, {{"cat/bad.jpg", "special/truncated.jpg"}}));
       },
       "feats"},
      {"extract-png-alpha", 0, "", "",
       [](Inputs& in) {
         return extract(in, image_folder(in, {{"cat/a.png", "special/alpha.png"}}));
       },
       nullptr, extracted_with("cat/a.png")},
      {"extract-grayscale", 0, "", "",
       [](Inputs& in) {
         return extract(in, image_folder(in, {{"cat/g.png", "special/gray.png"}}));
       },
       nullptr, extracted_with("cat/g.png")},
      {"extract-palette-png", 0, "", "",
       [](Inputs& in) {
         return extract(in, image_folder(in, {{"cat/p.png", "special/palette.png"}}));
       },
       nullptr, extracted_with("cat/p.png")},
      {"extract-not-an-image", 2, "fake.jpg", "cannot decode the image",
       [](Inputs& in) {
         const std::string data = image_folder(in, {});
         test::write_bytes(data + "/cat/fake.jpg", "not a JPEG");
         return extract(in, data);
       },
       "feats"},
      {"extract-unreadable-image", 2, "cat/0000.jpg", "cannot open the image",
       [](Inputs& in) {
         const std::string data = image_folder(in, {});
         const std::string image = data + "/cat/0000.jpg";
         if (::geteuid() != 0) {
           ::chmod(image.c_str(), 0);
         } else {
           // Root reads a mode-000 file: a symbolic link to a missing file fails to open on the
           // same path (the listing takes it, as any non-folder entry with an image suffix).
           fs::remove(image);
           fs::create_symlink(in.p("missing.jpg"), image);
         }
         return extract(in, data);
       },
       "feats"},
      {"extract-empty-class-folder", 0, "", "",
       [](Inputs& in) {
         const std::string data = image_folder(in, {});
         fs::create_directory(data + "/empty");
         return extract(in, data);
       },
       nullptr,
       // The 6 images are extracted and the empty folder keeps its label (a sixth class).
       [](const Case&, Inputs& in, const test::CliRun&) {
         EXPECT_EQ(npy_rows(in.p("feats/features.npy")), 6);
         const nlohmann::json meta = test::load_json(in.p("feats/meta.json"));
         EXPECT_EQ(meta["data"]["num_classes"], 6) << meta["data"].dump();
         const auto& classes = meta["data"]["classes"];
         EXPECT_NE(std::find(classes.begin(), classes.end(), "empty"), classes.end())
             << classes.dump();
       }},
      {"extract-no-images", 2, "data", "no image files",
       [](Inputs& in) {
         fs::create_directories(in.p("data/a"));
         fs::create_directories(in.p("data/b"));
         return extract(in, in.p("data"));
       },
       "feats"},
      {"extract-split-folders-as-classes", 2, "data", "look like splits, not classes",
       [](Inputs& in) {
         fs::create_directories(in.p("data"));
         fs::copy(test::data_path("model/images/train"), in.p("data/train"),
                  fs::copy_options::recursive);
         fs::copy(test::data_path("model/images/train"), in.p("data/test"),
                  fs::copy_options::recursive);
         return extract(in, in.p("data"));
       },
       "feats"},
      {"extract-csv-unknown-header", 2, "list.csv", "looks like a header but is not one",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"), "path,lable\ndata/cat/0000.jpg,cat\n");
         return extract(in, in.p("list.csv"));
       },
       "feats"},
      {"extract-regression-folder", 2, "data", "--task regression needs a CSV listing",
       [](Inputs& in) { return extract(in, image_folder(in, {})) + " --task regression"; },
       "feats"},
      {"extract-regression-no-header", 2, "list.csv", "needs a header naming the image column",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"), "data/cat/0000.jpg,0.25\ndata/cat/0001.jpg,1.5\n");
         return extract(in, in.p("list.csv")) + " --task regression";
       },
       "feats"},
      {"extract-multilabel-not-binary", 2, "list.csv", "multi-label targets are 0 or 1",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"),
                           "path,round,dark\ndata/cat/0000.jpg,1,0\ndata/cat/0001.jpg,2,1\n");
         return extract(in, in.p("list.csv")) + " --task multilabel";
       },
       "feats"},
      {"extract-regression-per-class", 2, "--per-class", "samples per class need class labels",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"),
                           "path,size\ndata/cat/0000.jpg,0.25\ndata/cat/0001.jpg,1.5\n");
         return extract(in, in.p("list.csv")) + " --task regression --per-class 1";
       },
       "feats"},
      {"extract-csv-real-labels", 2, "list.csv", "is a real number",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"),
                           "path,label\ndata/cat/0000.jpg,0.25\ndata/cat/0001.jpg,1.5\n");
         return extract(in, in.p("list.csv"));
       },
       "feats"},
      {"extract-images-in-sub-folders", 0, "", "",
       [](Inputs& in) {
         const std::string data = image_folder(in, {{"cat/more/n.png", "special/gray.png"}});
         test::write_bytes(data + "/cat/notes.txt", "not an image");
         return extract(in, data);
       },
       nullptr,
       [](const Case& c, Inputs& in, const test::CliRun& run) {
         extracted_with("cat/more/n.png")(c, in, run);
         EXPECT_NE(run.err.find("1 image(s) are in sub-folders of the class folders"),
                   std::string::npos)
             << run.err;
         EXPECT_NE(run.err.find("skipped 1 file(s) that are not images by their extension (1 "
                                ".txt)"),
                   std::string::npos)
             << run.err;
       }},
      {"extract-missing-data", 2, "nodata", "no such file or folder",
       [](Inputs& in) { return extract(in, in.p("nodata")); }, "feats"},
      {"extract-csv-missing-field", 2, "list.csv", "expected 2 fields",
       [](Inputs& in) {
         test::write_bytes(in.p("list.csv"), "path,label\ncat/0000.jpg\n");
         return extract(in, in.p("list.csv"));
       },
       "feats"},
      {"extract-csv-missing-image", 2, "gone.jpg", "cannot open the image",
       [](Inputs& in) {
         test::write_bytes(in.p("list.csv"), "path,label\ngone.jpg,0\n");
         return extract(in, in.p("list.csv"));
       },
       "feats"},
      {"extract-missing-model", 2, "none.pt", "no such model file",
       [](Inputs& in) {
         return "extract --model " + in.p("none.pt") + " --data " + image_folder(in, {}) +
                " --input-size 16 --out " + in.p("feats");
       },
       "feats"},
      {"extract-model-not-torchscript", 2, "bad.pt", "not a loadable TorchScript model",
       [](Inputs& in) {
         test::write_bytes(in.p("bad.pt"), "not a model");
         return "extract --model " + in.p("bad.pt") + " --data " + image_folder(in, {}) +
                " --input-size 16 --out " + in.p("feats");
       },
       "feats"},
      {"extract-torch-save-file", 2, "state_dict.pt", "it is a torch.save file",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "state_dict"); }, "feats"},
      {"extract-input-size-not-the-recorded-one", 2, "records_size.pt", "says input_size 32",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "records_size"); }, "feats"},
      {"extract-input-size-too-small", 2, "fixed_flatten.pt", "is --input-size the size",
       [](Inputs& in) {
         return "extract --model " + model("fixed_flatten") + " --data " + image_folder(in, {}) +
                " --input-size 8 --out " + in.p("feats");
       },
       "feats"},
      {"extract-plain-classifier", 0, "", "",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "classifier_only"); }, nullptr,
       [](const Case&, Inputs& in, const test::CliRun& run) {
         EXPECT_EQ(npy_rows(in.p("feats/features.npy")), 6);
         EXPECT_NE(run.err.find("these look like a classifier's logits"), std::string::npos)
             << run.err;
       }},
      {"extract-widths-depend-on-input-size", 0, "", "",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "fixed_flatten"); }, nullptr,
       [](const Case&, Inputs& in, const test::CliRun& run) {
         EXPECT_EQ(npy_rows(in.p("feats/features.npy")), 6);
         EXPECT_NE(run.err.find("the output widths change with the input size"), std::string::npos)
             << run.err;
       }},
      {"extract-forward-fails", 2, "throws.pt", "forward failed",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "throws"); }, "feats"},
      {"extract-wrong-output-shape", 2, "wrong_shape.pt", "first dimension must be the batch size",
       [](Inputs& in) { return extract(in, image_folder(in, {}), "wrong_shape"); }, "feats"},
      {"extract-out-is-a-file", 2, "feats", "cannot create the folder",
       [](Inputs& in) {
         test::write_bytes(in.p("feats"), "a file");
         return extract(in, image_folder(in, {}));
       }},
      {"extract-bad-input-size", 2, "--input-size", "not in range 1 to 8192",
       [](Inputs& in) {
         return "extract --model " + model("tuple") + " --data " + image_folder(in, {}) +
                " --input-size 0 --out " + in.p("feats");
       },
       "feats"},
      {"extract-zoo-unknown-model-name", 2, "zoo.json", "no model of that name",
       [](Inputs& in) {
         test::write_bytes(in.p("zoo.json"), "{\"models\": [{\"name\": \"tiny\", \"file\": \"" +
                                                 model("tuple") +
                                                 "\", \"kind\": \"image\", "
                                                 "\"input_size\": 16}]}");
         return "extract --zoo " + in.p("zoo.json") + " --model-name tinny --data " +
                image_folder(in, {}) + " --out " + in.p("feats");
       },
       "feats"},
      {"extract-input-size-disagrees-with-zoo", 2, "zoo.json", "disagrees with the zoo entry",
       [](Inputs& in) {
         test::write_bytes(in.p("zoo.json"), "{\"models\": [{\"name\": \"tiny\", \"file\": \"" +
                                                 model("tuple") +
                                                 "\", \"kind\": \"image\", "
                                                 "\"input_size\": 16}]}");
         return "extract --zoo " + in.p("zoo.json") + " --model-name tiny --input-size 32 --data " +
                image_folder(in, {}) + " --out " + in.p("feats");
       },
       "feats"},
      {"predict-model-without-logits", 2, "features_only.pt", "the model returns no logits",
       [](Inputs& in) {
         return "predict --model " + model("features_only") + " --data " + image_folder(in, {}) +
                " --input-size 16 --out " + in.p("preds.csv");
       },
       "preds.csv"},
      {"predict-top-k-above-classes", 2, "tuple.pt", "--top-k 5",
       [](Inputs& in) {
         return "predict --model " + model("tuple") + " --data " + image_folder(in, {}) +
                " --input-size 16 --top-k 5 --out " + in.p("preds.csv");
       },
       "preds.csv"},
      {"extract-full-disk", 1, "feats/meta.json", "write failed: File too large",
       [](Inputs& in) {
         // A file-size limit of 512 bytes (dash counts 512-byte blocks) stands in for a full
         // disk: meta.json's write fails with EFBIG, after the smaller files were written.
         return "!sh trap '' XFSZ; ulimit -f 1;;" + extract(in, image_folder(in, {}));
       },
       "feats"},
      // CUDA_VISIBLE_DEVICES= hides any GPU, so the row holds with a CUDA LibTorch too.
      {"extract-device-cuda-unavailable", 2, "--device cuda",
       "has no CUDA support or sees no CUDA device",
       [](Inputs& in) {
         return "!sh export CUDA_VISIBLE_DEVICES=;;" + extract(in, image_folder(in, {})) +
                " --device cuda";
       },
       "feats"},
      {"extract-device-unknown", 2, "--device gpu", "expected cpu, cuda or cuda:N",
       [](Inputs& in) { return extract(in, image_folder(in, {})) + " --device gpu"; }, "feats"},
      {"predict-device-cuda-unavailable", 2, "--device cuda:1",
       "has no CUDA support or sees no CUDA device",
       [](Inputs& in) {
         return "!sh export CUDA_VISIBLE_DEVICES=;;predict --model " + model("tuple") + " --data " +
                image_folder(in, {}) + " --input-size 16 --device cuda:1 --out " +
                in.p("preds.csv");
       },
       "preds.csv"},
  };
}

// ---- tlkit rank ----
// A zoo manifest entry for a fixture model.
std::string zoo_entry(const std::string& name, const std::string& file, const std::string& kind,
                      const std::string& extra = ", \"input_size\": 16") {
  return "{\"name\": \"" + name + "\", \"file\": \"" + file + "\", \"kind\": \"" + kind + "\"" +
         extra + "}";
}

// Writes zoo.json holding `entries` (or `raw` text) and returns the rank arguments on `data`.
std::string rank(Inputs& in, const std::vector<std::string>& entries, const std::string& data,
                 const std::string& raw = "") {
  std::string models;
  for (const auto& e : entries) models += (models.empty() ? "" : ", ") + e;
  test::write_bytes(in.p("zoo.json"), raw.empty() ? "{\"models\": [" + models + "]}" : raw);
  return "rank --zoo " + in.p("zoo.json") + " --data " + data + " --cache " + in.p("cache") +
         " --metrics logme --quiet --out " + in.p("ranked.csv");
}

std::string text_rank(Inputs& in, const std::string& file, const std::string& bytes) {
  test::write_bytes(in.p(file), bytes);
  return rank(in, {zoo_entry("words", model("text_stats"), "text", "")}, in.p(file));
}

std::vector<Case> rank_cases() {
  return {
      {"rank-regression-class-metric", 2, "--metric",
       "needs class labels, and these are regression",
       [](Inputs& in) {
         image_folder(in, {});
         test::write_bytes(in.p("list.csv"),
                           "path,size\ndata/cat/0000.jpg,0.25\ndata/cat/0001.jpg,1.5\n");
         std::string args = rank(in, {zoo_entry("a", model("tuple"), "image")}, in.p("list.csv"));
         args.replace(args.find("--metrics logme"), 15, "--metric logme,hscore");
         return args + " --task regression";
       },
       "ranked.csv"},
      {"rank-device-cuda-unavailable", 2, "--device cuda",
       "has no CUDA support or sees no CUDA device",
       [](Inputs& in) {
         return "!sh export CUDA_VISIBLE_DEVICES=;;" +
                rank(in, {zoo_entry("a", model("tuple"), "image")}, image_folder(in, {})) +
                " --device cuda";
       },
       "ranked.csv"},
      {"rank-zoo-missing-file", 2, "nope.json", "cannot open the manifest",
       [](Inputs& in) {
         return "rank --zoo " + in.p("nope.json") + " --data " + image_folder(in, {}) + " --out " +
                in.p("ranked.csv");
       },
       "ranked.csv"},
      {"rank-zoo-not-json", 2, "zoo.json", "not valid JSON",
       [](Inputs& in) { return rank(in, {}, image_folder(in, {}), "{\"models\": [{name: 1}"); },
       "ranked.csv"},
      {"rank-zoo-no-models-array", 2, "zoo.json", "expected an object with a \"models\" array",
       [](Inputs& in) { return rank(in, {}, image_folder(in, {}), "[1, 2]"); }, "ranked.csv"},
      {"rank-zoo-missing-model-file", 2, "gone.pt", "does not exist",
       [](Inputs& in) {
         return rank(in, {zoo_entry("a", "gone.pt", "image")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-zoo-duplicate-name", 2, "zoo.json", "duplicate name 'a'",
       [](Inputs& in) {
         return rank(in,
                     {zoo_entry("a", model("tuple"), "image"),
                      zoo_entry("a", model("relu6_pool"), "image")},
                     image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-zoo-wrong-kind", 2, "zoo.json", "kind 'audio' is not one of image, text",
       [](Inputs& in) {
         return rank(in, {zoo_entry("a", model("tuple"), "audio")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-zoo-missing-input-size", 2, "zoo.json", "image models need \"input_size\"",
       [](Inputs& in) {
         return rank(in, {zoo_entry("a", model("tuple"), "image", "")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-zoo-unsafe-name", 2, "zoo.json", "must be 1-200 letters, digits or ._-+",
       [](Inputs& in) {
         return rank(in, {zoo_entry("../evil", model("tuple"), "image")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-zoo-no-model-for-the-data", 2, "zoo.json", "no image models to rank",
       [](Inputs& in) {
         return rank(in, {zoo_entry("words", model("text_stats"), "text", "")},
                     image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-text-empty-file", 2, "t.txt", "no '<label> <text>' lines",
       [](Inputs& in) { return text_rank(in, "t.txt", ""); }, "ranked.csv"},
      {"rank-text-line-without-label", 2, "t.txt:2", "expected '<label> <text>', found only",
       [](Inputs& in) {
         return text_rank(in, "t.txt", "1 how far is it\nlonely\n0 what is a cat\n");
       },
       "ranked.csv"},
      {"rank-text-csv-missing-column", 2, "t.csv", "missing column 'label'",
       [](Inputs& in) { return text_rank(in, "t.csv", "id,text\n1,how far\n2,what\n"); },
       "ranked.csv"},
      {"rank-text-single-class", 2, "t.txt", "ranking needs at least 2",
       [](Inputs& in) { return text_rank(in, "t.txt", "1 how far is it\n1 what is a cat\n"); },
       "ranked.csv"},
      {"rank-forward-fails", 2, "throws.pt", "forward failed",
       [](Inputs& in) {
         return rank(in, {zoo_entry("bad", model("throws"), "image")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-wrong-output-shape", 2, "wrong_shape.pt", "first dimension must be the batch size",
       [](Inputs& in) {
         return rank(in, {zoo_entry("bad", model("wrong_shape"), "image")}, image_folder(in, {}));
       },
       "ranked.csv"},
      {"rank-one-model-fails", 0, "", "",
       [](Inputs& in) {
         return rank(in,
                     {zoo_entry("bad", model("throws"), "image"),
                      zoo_entry("good", model("tuple"), "image")},
                     image_folder(in, {}));
       },
       nullptr,
       // A warning names the failed model; the other is ranked and written to --out.
       [](const Case&, Inputs& in, const test::CliRun& r) {
         EXPECT_NE(r.err.find("tlkit: warning: bad failed: "), std::string::npos) << r.err;
         EXPECT_NE(r.err.find("forward failed"), std::string::npos) << r.err;
         EXPECT_EQ(test::read_bytes(in.p("ranked.csv")).substr(0, 30),
                   "model,metric,score\ngood,logme,");
       }},
      {"rank-data-missing", 2, "--data", "required",
       [](Inputs& in) {
         rank(in, {zoo_entry("a", model("tuple"), "image")}, "");
         return "rank --zoo " + in.p("zoo.json") + " --out " + in.p("ranked.csv");
       },
       "ranked.csv"},
      {"rank-data-not-found", 2, "nodata", "no such file or folder",
       [](Inputs& in) {
         return rank(in, {zoo_entry("a", model("tuple"), "image")}, in.p("nodata"));
       },
       "ranked.csv"},
      {"rank-cache-is-a-file", 2, "--cache", "exists and is not a folder",
       [](Inputs& in) {
         const std::string args =
             rank(in, {zoo_entry("a", model("tuple"), "image")}, image_folder(in, {}));
         test::write_bytes(in.p("cache"), "a file");
         return args;
       },
       "ranked.csv"},
      {"rank-out-is-a-folder", 2, "--out", "is a folder",
       [](Inputs& in) {
         const std::string args =
             rank(in, {zoo_entry("a", model("tuple"), "image")}, image_folder(in, {}));
         fs::create_directories(in.p("ranked.csv"));
         return args;
       }},
  };
}

// ---- tlkit finetune ----
// The toy fixture (2 classes of 8 x 8 images, train and test folders) and the trainable model.
std::string finetune(Inputs& in, const std::string& data = "",
                     const std::string& mdl = "trainable") {
  return "finetune --model " + model(mdl) + " --data " +
         (data.empty() ? test::data_path("model/toy") : data) +
         " --split-train train --split-test test --input-size 8 --epochs 1 --batch 4 "
         "--threads 1 --quiet --out " +
         in.p("ft");
}

// A copy of the toy folder with `extra` (file -> bytes) added and the `drop` class removed.
std::string toy_copy(Inputs& in, const std::vector<std::pair<std::string, std::string>>& extra,
                     const std::string& drop = "") {
  const std::string data = in.p("toy");
  fs::copy(test::data_path("model/toy"), data, fs::copy_options::recursive);
  if (!drop.empty()) {
    fs::remove_all(data + "/train/" + drop);
    fs::remove_all(data + "/test/" + drop);
  }
  for (const auto& [file, bytes] : extra) test::write_bytes(data + "/" + file, bytes);
  return data;
}

std::vector<Case> finetune_cases() {
  return {
      {"finetune-unknown-mode", 2, "--mode all", "expected linear, top:K or full",
       [](Inputs& in) { return finetune(in) + " --mode all"; }, "ft"},
      {"finetune-top-k-too-many-blocks", 2, "top:5", "has 4 blocks",
       [](Inputs& in) { return finetune(in) + " --mode top:5"; }, "ft"},
      {"finetune-bad-grid-key", 2, "--grid", "unknown key",
       [](Inputs& in) { return finetune(in) + " --grid depth=1,2"; }, "ft"},
      {"finetune-bad-grid-value", 2, "--grid", "not a number",
       [](Inputs& in) { return finetune(in) + " --grid lr=0.1,abc"; }, "ft"},
      // CUDA_VISIBLE_DEVICES= hides any GPU, so the row holds with a CUDA LibTorch too.
      {"finetune-device-cuda-unavailable", 2, "--device cuda:1",
       "has no CUDA support or sees no CUDA device",
       [](Inputs& in) {
         return "!sh export CUDA_VISIBLE_DEVICES=;;" + finetune(in) + " --device cuda:1";
       },
       "ft"},
      {"finetune-device-unknown", 2, "--device cuda:x", "expected cpu, cuda or cuda:N",
       [](Inputs& in) { return finetune(in) + " --device cuda:x"; }, "ft"},
      {"finetune-data-parallel-one-process", 2, "--data-parallel", "mpirun -n P",
       [](Inputs& in) { return finetune(in) + " --data-parallel"; }, "ft"},
      {"finetune-out-is-a-file", 2, "--out", "exists and is not a folder",
       [](Inputs& in) {
         test::write_bytes(in.p("ft"), "a file");
         return finetune(in);
       }},
      {"finetune-missing-out", 2, "--out", "required",
       [](Inputs& in) {
         std::string args = finetune(in);
         return args.substr(0, args.find(" --out"));
       }},
      {"finetune-missing-split", 2, "nosuch", "no split folder",
       [](Inputs& in) {
         std::string args = finetune(in);
         return args.replace(args.find("--split-test test"), 17, "--split-test nosuch");
       },
       "ft"},
      {"finetune-single-class", 2, "toy", "at least 2 classes",
       [](Inputs& in) { return finetune(in, toy_copy(in, {}, "red")); }, "ft"},
      {"finetune-split-test-and-test-fraction", 2, "--test-fraction", "exclude each other",
       [](Inputs& in) { return finetune(in) + " --test-fraction 0.2"; }, "ft"},
      {"finetune-features-without-linear", 2, "--features", "only --mode linear",
       [](Inputs& in) { return finetune(in) + " --features " + in.p("feats"); }, "ft"},
      {"finetune-missing-model", 2, "none.pt", "no such model file",
       [](Inputs& in) {
         std::string args = finetune(in);
         return args.replace(args.find(model("trainable")), model("trainable").size(),
                             in.p("none.pt"));
       },
       "ft"},
      {"finetune-forward-fails", 2, "throws.pt", "forward always fails",
       [](Inputs& in) { return finetune(in, "", "throws"); }, "ft"},
      {"finetune-not-an-image", 2, "fake.png", "cannot decode the image",
       [](Inputs& in) {
         return finetune(in, toy_copy(in, {{"train/red/fake.png", "not a PNG"}}));
       },
       "ft"},
      {"finetune-corrupt-checkpoint", 2, "checkpoint.pt", "not a readable checkpoint",
       [](Inputs& in) {
         fs::create_directories(in.p("ft"));
         test::write_bytes(in.p("ft/checkpoint.pt"), "not a checkpoint");
         return finetune(in);
       }},
      {"finetune-bad-augment", 2, "--augment rotate", "is not flip or crop",
       [](Inputs& in) { return finetune(in) + " --augment rotate"; }, "ft"},
      // B-Tuning: the fixture zoo holds three image models (none of them trainable.pt).
      {"finetune-teacher-unknown", 2, "--teacher teacher_c", "has no model of that name",
       [](Inputs& in) {
         return finetune(in) + " --teachers " + test::data_path("btuning/zoo.json") +
                " --teacher teacher_c";
       },
       "ft"},
      {"finetune-teacher-text-model", 2, "--teacher words", "a text model cannot teach",
       [](Inputs& in) {
         test::write_bytes(in.p("zoo.json"), "{\"models\": [{\"name\": \"words\", \"file\": \"" +
                                                 model("text_bag") + "\", \"kind\": \"text\"}]}");
         return finetune(in) + " --teachers " + in.p("zoo.json") + " --teacher words";
       },
       "ft"},
      {"finetune-teachers-top-too-many", 2, "--teachers-top 5", "image models besides the student",
       [](Inputs& in) {
         return finetune(in) + " --teachers " + test::data_path("btuning/zoo.json") +
                " --teachers-top 5";
       },
       "ft"},
      {"finetune-teachers-linear", 2, "--teachers", "not linear",
       [](Inputs& in) {
         return finetune(in) + " --mode linear --teachers " + test::data_path("btuning/zoo.json");
       },
       "ft"},
  };
}

// ---- tlkit select ----
// The select fixture zoo (tests/data/select); every case fails before anything is written.
std::string select(Inputs& in) {
  return "select --zoo " + test::data_path("select/zoo.json") + " --data " +
         test::data_path("select/data") +
         " --split-train train --split-val val --split-test test --threads 1 --quiet --cache " +
         in.p("cache") + " --out " + in.p("sel");
}

std::vector<Case> select_cases() {
  return {
      {"select-eta-not-above-one", 2, "--eta", "must be > 1",
       [](Inputs& in) { return select(in) + " --eta 1"; }, "sel"},
      {"select-keep-zero", 2, "--keep", "must be >= 1",
       [](Inputs& in) { return select(in) + " --keep 0"; }, "sel"},
      {"select-unknown-metric", 2, "--metric nosuch", "unknown metric",
       [](Inputs& in) { return select(in) + " --metric nosuch"; }, "sel"},
      {"select-bad-budget", 2, "--budget", "expected a duration",
       [](Inputs& in) { return select(in) + " --budget 30x"; }, "sel"},
      {"select-bad-lr-grid", 2, "--lr-grid", "is not a learning rate",
       [](Inputs& in) { return select(in) + " --lr-grid 0.1,fast"; }, "sel"},
      {"select-no-test-split", 2, "--split-test", "--test-fraction F to carve a test split",
       [](Inputs& in) {
         std::string args = select(in);
         return args.erase(args.find(" --split-test test"), 18);
       },
       "sel"},
  };
}

std::vector<Case> torch_cases() {
  std::vector<Case> all = extract_cases();
  for (auto& c : rank_cases()) all.push_back(c);
  for (auto& c : finetune_cases()) all.push_back(c);
  for (auto& c : select_cases()) all.push_back(c);
  return all;
}

std::vector<std::string> extract_case_ids() {
  std::vector<std::string> ids;
  for (const auto& c : torch_cases()) ids.push_back(c.id);
  return ids;
}

// ---- docs/errors.md ----
// A row of the catalogue table: "| `id` | input | `what tlkit says` | exit |".
struct DocRow {
  std::string input, message;  // message: the line tlkit prints, or "(accepted)..."
  int code = -1;
};

// The cells of a Markdown table row, split at the '|' not escaped as "\|" (which is unescaped).
std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells(1);
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cells.back() += '|';
      ++i;
    } else if (line[i] == '|') {
      cells.emplace_back();
    } else {
      cells.back() += line[i];
    }
  }
  for (auto& c : cells) {
    const std::size_t b = c.find_first_not_of(' '), e = c.find_last_not_of(' ');
    c = b == std::string::npos ? "" : c.substr(b, e - b + 1);
  }
  if (!cells.empty() && cells.back().empty()) cells.pop_back();  // after the closing '|'
  return cells;
}

std::string strip_backticks(const std::string& s) {
  return s.size() >= 2 && s.front() == '`' && s.back() == '`' ? s.substr(1, s.size() - 2) : s;
}

// The catalogue of docs/errors.md: id -> row. Rows are table lines whose first cell is a
// backticked id of lower-case letters, digits and '-'.
const std::map<std::string, DocRow>& documented_rows() {
  static const std::map<std::string, DocRow> rows = [] {
    std::map<std::string, DocRow> out;
    std::ifstream in(std::string(TLKIT_EXAMPLES_DIR) + "/../docs/errors.md");
    EXPECT_TRUE(in.good()) << "docs/errors.md";
    // No std::regex: GCC 12's -Wmaybe-uninitialized misfires on it in the sanitizer build.
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("| `", 0) != 0) continue;
      const std::vector<std::string> cells = table_cells(line);
      const std::string id = cells.empty() ? "" : strip_backticks(cells[0]);
      if (id.empty() ||
          id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
        continue;
      DocRow row;
      if (cells.size() == 4) {
        row.input = cells[1];
        row.message = strip_backticks(cells[2]);
        row.code = cells[3].size() == 1 && std::isdigit(static_cast<unsigned char>(cells[3][0]))
                       ? cells[3][0] - '0'
                       : -1;
      }
      EXPECT_EQ(cells.size(), 4u) << "docs/errors.md: row " << id << " has " << cells.size()
                                  << " cells (expected id, input, message, exit): " << line;
      EXPECT_TRUE(out.emplace(id, row).second) << "docs/errors.md: row " << id << " twice";
    }
    return out;
  }();
  return rows;
}

// True when `text` matches `pattern`, where "..." in the pattern stands for any text (a part
// that depends on the machine or on a library's wording); anchored at both ends.
bool matches(const std::string& text, const std::string& pattern) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t at = pattern.find("...", start);
    parts.push_back(
        pattern.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 3;
  }
  if (parts.size() == 1) return text == pattern;
  if (text.compare(0, parts.front().size(), parts.front()) != 0) return false;
  std::size_t pos = parts.front().size();
  for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
    pos = text.find(parts[i], pos);
    if (pos == std::string::npos) return false;
    pos += parts[i].size();
  }
  const std::string& last = parts.back();
  return text.size() >= pos + last.size() &&
         text.compare(text.size() - last.size(), last.size(), last) == 0;
}

// stderr as docs/errors.md shows it: the temporary folder and the fixture folders cut, the final
// newline dropped.
std::string as_documented(std::string err, const Inputs& in) {
  for (const std::string& dir :
       {in.dir.path(), test::data_path("npy"), test::data_path("model/models"),
        test::data_path("model"), test::data_path("btuning")}) {
    for (std::size_t at; (at = err.find(dir + "/")) != std::string::npos;)
      err.erase(at, dir.size() + 1);
  }
  if (!err.empty() && err.back() == '\n') err.pop_back();
  return err;
}

// Runs `args` (a "!sh CMDS;;ARGS" prefix runs CMDS in the same shell first).
test::CliRun run(const std::string& args) {
  if (args.rfind("!sh ", 0) != 0) return test::run_cli(args);
  const auto sep = args.find(";;");
  test::TempDir t;
  const std::string cmd = args.substr(4, sep - 4) + "; exec " + TLKIT_CLI + " " +
                          args.substr(sep + 2) + " >" + t.file("out") + " 2>" + t.file("err");
  test::CliRun r;
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::read_bytes(t.file("out"));
  r.err = test::read_bytes(t.file("err"));
  return r;
}

bool built_with_torch() {
  static const bool yes =
      test::run_cli("--version").out.find("without LibTorch") == std::string::npos;
  return yes;
}

// The documented message as this build prints it: a build without LibTorch has only the commands
// score and evaluate.
std::string for_this_build(std::string message) {
  const std::string torch_commands = ", extract, rank, finetune, predict, probe, truth, select";
  if (!built_with_torch())
    if (const std::size_t at = message.find(torch_commands); at != std::string::npos)
      message.erase(at, torch_commands.size());
  return message;
}

void check(const Case& c) {
  Inputs in;
  const std::string args = c.make(in);
  if (args == "!skip") GTEST_SKIP() << c.id << ": cannot be set up here";
  const test::CliRun r = run(args);
  SCOPED_TRACE(std::string(c.id) + ": tlkit " + args + "\nstderr: " + r.err);
  const std::string err = as_documented(r.err, in);
  // TLKIT_ERROR_CATALOGUE_OUT=file appends "id<TAB>code<TAB>stderr" per case, with the temporary
  // and fixture folders cut, for writing docs/errors.md.
  if (const char* dump = std::getenv("TLKIT_ERROR_CATALOGUE_OUT"))
    std::ofstream(dump, std::ios::app)
        << c.id << '\t' << r.code << '\t' << (r.code == 0 ? "(accepted)" : err) << '\n';
  EXPECT_EQ(r.code, c.code);
  const auto doc = documented_rows().find(c.id);
  if (doc == documented_rows().end()) {
    ADD_FAILURE() << c.id << " is not in docs/errors.md";
  } else {
    EXPECT_EQ(doc->second.code, c.code) << "docs/errors.md gives another exit code";
    if (c.code == 0) {
      EXPECT_EQ(doc->second.message.rfind("(accepted", 0), 0u)
          << "docs/errors.md: an accepted row's message starts with (accepted";
    } else {
      EXPECT_TRUE(matches(err, for_this_build(doc->second.message)))
          << "stderr differs from docs/errors.md\n  tlkit: " << err
          << "\n  docs:  " << doc->second.message;
      EXPECT_NE(doc->second.message.find(c.problem), std::string::npos)
          << "docs/errors.md's message lacks " << c.problem;
    }
  }
  if (c.code == 0) {
    ASSERT_TRUE(c.verify) << c.id << ": an accepted row checks what it produced";
    c.verify(c, in, r);
    return;
  }
  EXPECT_FALSE(c.verify) << c.id << ": verify is for accepted rows";
  ASSERT_NE(std::string(c.problem), "") << c.id << ": give a fragment of the message";
  ASSERT_NE(std::string(c.name), "") << c.id << ": give the input the message names";
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(test::count_lines(r.err), 1);
  EXPECT_EQ(r.err.rfind("tlkit: error: ", 0), 0u);
  EXPECT_NE(r.err.find(c.name), std::string::npos) << "does not name " << c.name;
  EXPECT_NE(r.err.find(c.problem), std::string::npos) << "does not say " << c.problem;
  if (c.output) {
    EXPECT_FALSE(fs::exists(in.p(c.output))) << c.output << " was left behind";
  }
}

class ErrorCatalogue : public ::testing::TestWithParam<Case> {};
TEST_P(ErrorCatalogue, OneLineExitCodeNoOutput) { check(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Score, ErrorCatalogue, ::testing::ValuesIn(score_cases()),
                         [](const auto& info) {
                           std::string s = info.param.id;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

class ExtractErrorCatalogue : public ::testing::TestWithParam<Case> {};
TEST_P(ExtractErrorCatalogue, OneLineExitCodeNoOutput) {
  if (!built_with_torch()) GTEST_SKIP() << "tlkit was built without LibTorch";
  check(GetParam());
}
INSTANTIATE_TEST_SUITE_P(Extract, ExtractErrorCatalogue, ::testing::ValuesIn(extract_cases()),
                         [](const auto& info) {
                           std::string s = info.param.id;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });
INSTANTIATE_TEST_SUITE_P(Rank, ExtractErrorCatalogue, ::testing::ValuesIn(rank_cases()),
                         [](const auto& info) {
                           std::string s = info.param.id;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });
INSTANTIATE_TEST_SUITE_P(Finetune, ExtractErrorCatalogue, ::testing::ValuesIn(finetune_cases()),
                         [](const auto& info) {
                           std::string s = info.param.id;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });
INSTANTIATE_TEST_SUITE_P(Select, ExtractErrorCatalogue, ::testing::ValuesIn(select_cases()),
                         [](const auto& info) {
                           std::string s = info.param.id;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(ErrorCatalogueDocs, EveryDocumentedRowHasATestAndViceVersa) {
  std::set<std::string> tested;
  for (const auto& c : score_cases()) tested.insert(c.id);
  for (const auto& id : extract_case_ids()) tested.insert(id);
  const auto& documented = documented_rows();
  EXPECT_GE(documented.size(), 100u) << "docs/errors.md's table was not parsed";
  for (const auto& [id, row] : documented) {
    EXPECT_TRUE(tested.count(id)) << id << " has no test";
    EXPECT_TRUE(row.code == 0 || row.code == 1 || row.code == 2) << id << ": exit " << row.code;
    EXPECT_FALSE(row.input.empty()) << id << ": no input described";
    EXPECT_TRUE(row.code == 0 ? row.message.rfind("(accepted", 0) == 0
                              : row.message.rfind("tlkit: error: ", 0) == 0)
        << id << ": " << row.message;
  }
  for (const auto& id : tested)
    EXPECT_TRUE(documented.count(id)) << id << " is not in docs/errors.md";
}

// The matcher the rows rely on: "..." stands for any text, both ends anchored.
TEST(ErrorCatalogueDocs, EllipsisMatchesAnyTextAndTheEndsAreAnchored) {
  EXPECT_TRUE(matches("a: b", "a: b"));
  EXPECT_FALSE(matches("a: bc", "a: b"));
  EXPECT_TRUE(matches("limit of 18.8 GiB (80%)", "limit of ... (80%)"));
  EXPECT_TRUE(matches("x (y)", "x ..."));
  EXPECT_FALSE(matches("x", "x ...y"));
  EXPECT_FALSE(matches("za: b", "a: ..."));
  EXPECT_TRUE(matches("p q r", "p ... r"));
  EXPECT_FALSE(matches("p r", "p ... q ... r"));
  EXPECT_EQ(table_cells("| `a` | b \\| c | `d` | 2 |"),
            (std::vector<std::string>{"`a`", "b | c", "`d`", "2"}));
}

}  // namespace
}  // namespace tlkit

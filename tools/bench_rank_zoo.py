#!/usr/bin/python3
"""Where the time of `tlkit rank` on a zoo goes, and tlkit against the Python pipeline a user would
otherwise run, on the same images.

tlkit:  `tlkit rank --metric logme --no-cache --format json` on the zoo's image models, end to end
        (process start, model loads, decoding once for the zoo, inference, LogME); its JSON gives
        each model's seconds by phase (load_model, optimize, decode, resize, forward,
        wait_for_decode) and its scoring time.
Python: tools/extract_features_py.py (PIL decoding and the same preprocessing per model,
        torch.jit forward, python3-torch) for the same models and images, then NumPy LogME by the
        public reference algorithm (tools/logme_numpy.py's logme_thuml) on each model's
        features, end to end.

tlkit's LogME is the exact maximum of the evidence; the reference's fixed-point iteration stops
elsewhere when N <= D (the kit's doodlenet_quickdraw on 341 images, D = 512: +1.67 against
-0.111), so the rankings are compared on the Python pipeline's features scored by the exact
definition too (not timed: by tlkit's Python module, or logme_numpy.logme_exact without it), which
must give tlkit's ranking; the reference's own ranking is printed beside it.

The two run back to back, R times each (best of R). The rankings by LogME must be identical
(the script exits 1 otherwise). Prints Markdown tables for docs/benchmarks.md.

  tools/bench_rank_zoo.py [--models a,b,...] [--split validation] [--per-class K] [--repeats R]
                          [--threads T] [--tlkit build/apps/cli/tlkit] [--kit ../shared/kit]
                          [--tlkit-args '--precision auto']
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def python_pipeline(kit, models, data, split, per_class, threads, out):
    """Extraction by tools/extract_features_py.py and NumPy LogME; returns (seconds, scores)."""
    t0 = time.time()
    subprocess.run([sys.executable, os.path.join(HERE, "extract_features_py.py"), "--zoo",
                    os.path.join(kit, "models", "zoo.json"), "--models", ",".join(models),
                    "--data", data, "--split", split, "--per-class", str(per_class), "--threads",
                    str(threads), "--out", out], check=True, stdout=subprocess.DEVNULL)
    t_extract = time.time() - t0
    code = ("import json, sys, numpy as np\n"
            "sys.path.insert(0, %r)\n"
            "from logme_numpy import logme_thuml\n"
            "out, models = sys.argv[1], sys.argv[2].split(',')\n"
            "y = np.load(out + '/labels.npy')\n"
            "print(json.dumps({m: logme_thuml(np.load(out + '/' + m + '/features.npy'), y)['score']"
            " for m in models}))\n" % HERE)
    t1 = time.time()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", code, out, ",".join(models)], check=True,
                       capture_output=True, text=True, env=env)
    t_score = time.time() - t1
    return time.time() - t0, t_extract, t_score, json.loads(r.stdout)


def tlkit_rank(tlkit, kit, models, data, split, per_class, threads, extra):
    t0 = time.time()
    r = subprocess.run([tlkit, "rank", "--zoo", os.path.join(kit, "models", "zoo.json"), "--models",
                        ",".join(models), "--data", data, "--split", split, "--per-class",
                        str(per_class), "--metric", "logme", "--no-cache", "--threads",
                        str(threads), "--format", "json", "--quiet"] + extra, check=True,
                       capture_output=True, text=True)
    return time.time() - t0, json.loads(r.stdout)


def order(scores):
    return [m for m, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kit", default=os.path.join(ROOT, "..", "shared", "kit"))
    ap.add_argument("--tlkit", default=os.path.join(ROOT, "build", "apps", "cli", "tlkit"))
    ap.add_argument("--models", default="")
    ap.add_argument("--data", default="")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--per-class", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tlkit-args", default="",
                    help="more tlkit rank options, e.g. '--precision auto' or '--no-channels-last'")
    a = ap.parse_args()
    zoo = json.load(open(os.path.join(a.kit, "models", "zoo.json")))["models"]
    models = [m.strip() for m in a.models.split(",") if m.strip()] or \
        [m["name"] for m in zoo if m.get("kind") == "image"]
    data = a.data or os.path.join(a.kit, "data", "clothing-small-160")

    best_t, best_p, rank_json, py_scores = 1e18, None, None, None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeats):
            t, j = tlkit_rank(a.tlkit, a.kit, models, data, a.split, a.per_class, a.threads,
                              a.tlkit_args.split())
            if t < best_t:
                best_t, rank_json = t, j
            p = python_pipeline(a.kit, models, data, a.split, a.per_class, a.threads,
                                os.path.join(tmp, "py"))
            if best_p is None or p[0] < best_p[0]:
                best_p = p
            py_scores = p[3]
        # The Python pipeline's features under tlkit's definition (exact maximum), untimed: by
        # tlkit's Python module when it is built (fast), else by logme_numpy.logme_exact (slow).
        sys.path[:0] = [HERE, os.path.join(ROOT, "build", "python")]
        import numpy as np
        try:
            import tlkit
            exact_logme = lambda f, y: tlkit.logme(f, y).score
        except ImportError:
            from logme_numpy import logme_exact
            exact_logme = lambda f, y: logme_exact(f, y)["score"]
        y = np.load(os.path.join(tmp, "py", "labels.npy"))
        exact = {m: exact_logme(np.load(os.path.join(tmp, "py", m, "features.npy")), y)
                 for m in models}
    t_scores = {m["name"]: m["scores"]["logme"] for m in rank_json["models"]}
    n = rank_json["dataset"]["selected"]
    load = os.getloadavg()[0]
    print("%d images of %s/%s, %d models, %d threads each, best of %d%s; load average %.1f at the "
          "end\n" % (n, os.path.basename(data), a.split, len(models), a.threads, a.repeats,
                      ", tlkit with " + a.tlkit_args if a.tlkit_args else "", load))

    print("Where tlkit rank's time goes, per model (seconds; decode and resize are summed over "
          "the decode threads, which run while the model does):\n")
    keys = ["load_model", "optimize", "decode", "resize", "forward", "wait_for_decode"]
    print("| model | " + " | ".join(keys) + " | scoring | extract (wall) |")
    print("|---|" + "---|" * (len(keys) + 2))
    tot = {k: 0.0 for k in keys + ["score", "extract"]}
    for m in rank_json["models"]:
        s = m["seconds"]
        for k in keys:
            tot[k] += s.get(k, 0.0)
        tot["score"] += m["score_seconds"]
        tot["extract"] += m["extract_seconds"]
        print("| %s | " % m["name"] + " | ".join("%.2f" % s.get(k, 0.0) for k in keys) +
              " | %.2f | %.2f |" % (m["score_seconds"], m["extract_seconds"]))
    print("| **all** | " + " | ".join("%.2f" % tot[k] for k in keys) +
          " | %.2f | %.2f |" % (tot["score"], tot["extract"]))
    dc = rank_json.get("decode_cache", {})
    print("\nFiles decoded: %s for %d models x %d images (answered from memory: %s).\n" % (
        dc.get("files_decoded", "n/a"), len(models), n, dc.get("answered_from_memory", "n/a")))

    print("| pipeline | seconds | of which extraction | of which LogME |")
    print("|---|---|---|---|")
    print("| tlkit rank | %.1f | %.1f (model loads, decoding, inference) | %.2f |" % (
        best_t, tot["extract"], tot["score"]))
    print("| Python (extract_features_py.py + NumPy LogME) | %.1f | %.1f | %.2f |" % (
        best_p[0], best_p[1], best_p[2]))
    print("\ntlkit / Python speed: %.2fx" % (best_p[0] / best_t))
    same = order(t_scores) == order(exact)
    worst = max(abs(t_scores[m] - exact[m]) / max(1e-12, abs(exact[m])) for m in models)
    print("Rankings by LogME identical (tlkit, and the Python pipeline's features under the same "
          "definition): %s (largest relative score difference %.2g)" % (
              "yes" if same else "NO", worst))
    print("tlkit:                  " + ", ".join(order(t_scores)))
    print("Python, exact LogME:    " + ", ".join(order(exact)))
    print("Python, reference LogME: " + ", ".join(order(py_scores)) + (
        " (the same)" if order(py_scores) == order(t_scores) else
        " (differs: the reference's iteration where N <= D, see above)"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

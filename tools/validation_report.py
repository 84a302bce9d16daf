#!/usr/bin/python3
"""Markdown tables of a validation study (tools/validate_zoo.sh outputs) for docs/ranking-quality.md.

    tools/validation_report.py "clothing-small-160=/work/validation/clothing" "cifar10-test=..."

For each dataset: each model's fine-tune and linear-probe test accuracy (and the fine-tune's
seconds), each metric's agreement with both (weighted tau, Kendall tau-b, Pearson, top-1 relative
accuracy, as tlkit evaluate computed them), and the time of the whole rank against the whole
fine-tuning ground truth.
"""
import csv
import json
import math
import os
import sys


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def read_truth(path):
    with open(path) as f:
        return {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}


def report(title, d):
    ft = read_truth(os.path.join(d, "truth_finetune.csv"))
    lp = read_truth(os.path.join(d, "truth_linear.csv"))
    ev = {t: json.load(open(os.path.join(d, f"evaluate_{t}.json"))) for t in ("finetune", "linear")}
    rank = json.load(open(os.path.join(d, "rank.json")))
    times = {}
    with open(os.path.join(d, "times.csv")) as f:
        for r in csv.DictReader(f):
            times[(r["phase"], r["model"])] = float(r["seconds"])
    out = [f"### {title}", ""]
    n = rank["dataset"]["selected"]
    out.append(f"{len(ft)} models; rank and fine-tuning train on the same {n} training images.")
    out.append("")
    out.append("| model | D | fine-tune acc. % | linear-probe acc. % | fine-tune s | LogME |")
    out.append("|---|---|---|---|---|---|")
    dims = {m["name"]: m for m in rank["models"]}
    for name in sorted(ft, key=lambda m: -ft[m]):
        m = dims.get(name, {})
        out.append(
            f"| {name} | {m.get('d', '')} | {fmt(ft[name], 1)} | {fmt(lp.get(name), 1)} | "
            f"{fmt(times.get(('finetune', name)), 0)} | {fmt(m.get('scores', {}).get('logme'), 3)} |"
        )
    out.append("")
    out.append("| metric | w-tau (FT) | Kendall (FT) | Pearson (FT) | top-1 rel. (FT) | "
               "w-tau (LP) | Kendall (LP) | Pearson (LP) | top-1 rel. (LP) |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    mf, ml = ev["finetune"]["metrics"], ev["linear"]["metrics"]

    def key(name):
        w = mf[name].get("weighted_tau")
        return -(w if w is not None else -9)

    for name in sorted(mf, key=key):
        a, b = mf[name], ml.get(name, {})
        out.append(
            f"| {name} | {fmt(a.get('weighted_tau'))} | {fmt(a.get('kendall_tau'))} | "
            f"{fmt(a.get('pearson'))} | {fmt(a.get('top1_relative_accuracy'))} | "
            f"{fmt(b.get('weighted_tau'))} | {fmt(b.get('kendall_tau'))} | "
            f"{fmt(b.get('pearson'))} | {fmt(b.get('top1_relative_accuracy'))} |"
        )
    missing = [m for m in rank["metrics"] if m not in mf]
    out.append("")
    if missing:
        out.append(f"Not evaluated (no finite score for enough models): {', '.join(missing)}.")
    for note in ev["finetune"].get("notes", []):
        out.append(f"- {note}")
    rank_s = times.get(("rank", "all"))
    ft_s = sum(v for (p, _), v in times.items() if p == "finetune")
    lp_s = sum(v for (p, _), v in times.items() if p == "linear")
    score_s = sum(m.get("score_seconds") or 0 for m in rank["models"])
    out.append("")
    if rank_s:
        out.append(
            f"Time: the whole `tlkit rank` (extraction included, {len(rank['metrics'])} metrics) "
            f"{rank_s:.0f} s; the whole fine-tuning ground truth {ft_s:.0f} s "
            f"(**{ft_s / rank_s:.1f}x** the rank); the linear probes {lp_s:.0f} s "
            f"({lp_s / rank_s:.1f}x). Scoring alone (all metrics, features in hand) took "
            f"{score_s:.1f} s: the fine-tuning took {ft_s / score_s:.0f}x that.")
    out.append("")
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    parts = []
    for arg in sys.argv[1:]:
        title, _, d = arg.partition("=")
        parts.append(report(title, d))
    print("\n".join(parts))


if __name__ == "__main__":
    main()

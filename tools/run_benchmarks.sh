#!/usr/bin/env bash
# Runs the LogME benchmarks of docs/benchmarks.md in one go on this machine and prints the
# ratios: tlkit vs the BLAS floor (C++, same process) and tlkit vs the NumPy references (same
# machine, back to back, same shape and thread count).
#
#   tools/run_benchmarks.sh [N D C]     default 20000 2048 100
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000} D=${2:-2048} C=${3:-100}
BENCH=${TLKIT_BENCH:-build/benchmarks/tlkit_bench_logme}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BENCH" --n "$N" --d "$D" --c "$C" --benchmark_repetitions=3 \
  --benchmark_out="$OUT/cpp.json" --benchmark_out_format=json >&2
/usr/bin/python3 tools/bench_logme_numpy.py --n "$N" --d "$D" --c "$C" --repeat 3 \
  --out "$OUT/numpy.json" >&2
/usr/bin/python3 - "$OUT/cpp.json" "$OUT/numpy.json" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1])); npy = json.load(open(sys.argv[2]))
med = {b["run_name"]: b["real_time"] for b in cpp["benchmarks"] if b.get("aggregate_name") == "median"}
floor = med["BM_Floor_SyrkPlusSyevd/real_time"]
names = {"BM_Logme/0/real_time": "tlkit logme exact", "BM_Logme/1/real_time": "tlkit logme thuml",
         "BM_Logme/2/real_time": "tlkit logme icml",
         "BM_LogmeStreaming/1000/real_time": "tlkit logme exact, streamed in 1000-row chunks"}
s = npy["seconds"]
exact = med["BM_Logme/0/real_time"]
blas = npy.get("blas", {}).get("threadpoolctl", [{}])[0]
print(f"shape {npy['n']}x{npy['d']}, C={npy['c']}, float32 features; "
      f"{cpp['context'].get('num_cpus')} CPUs; NumPy {npy['numpy']} on "
      f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')}, "
      f"{blas.get('num_threads')} threads)\n")
print("| what | seconds (median of 3 / best of 3) | ratio |")
print("|---|---|---|")
print(f"| floor: float64 dsyrk F^T F + dsyevd (C++) | {floor:.3f} | 1.00 x floor |")
for k, v in names.items():
    print(f"| {v} | {med[k]:.3f} | {med[k] / floor:.2f} x floor |")
print(f"| NumPy thuml/LogME reference algorithm (tools/logme_numpy.py logme_thuml) | {s['thuml']:.3f} | tlkit exact is {s['thuml'] / exact:.1f} x faster |")
print(f"| NumPy best formulation: one eigh, all classes at once (logme_eigh_fast) | {s['eigh_fast']:.3f} | tlkit exact is {s['eigh_fast'] / exact:.2f} x faster |")
print(f"| NumPy floor: astype + F.T@F + eigh | {s['floor']:.3f} | |")
PY

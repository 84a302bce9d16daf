#!/usr/bin/env bash
# --precision fp32 vs bf16 on the kit's image models: extraction speed, feature error and whether
# the LogME ranking changes. Data: every image of the kit's clothing-small-160 validation split
# (341 photos), no subsampling. For each model, tlkit rank --models M extracts it (the extractor
# of tlkit extract; the cache entry's meta.json gives the speeds) once per precision into a cache
# per precision, the two runs back to back and their order alternating from round to round (the
# machine may be shared: compare the ratios, not the absolute speeds); best of R rounds. Then
# tlkit rank over all the models answers from each cache, tlkit rank --precision auto extracts
# them afresh, and the LogME orders are compared with fp32's. Prints a Markdown table for
# docs/extract.md. BENCH_OUT=DIR keeps the caches and JSON (rerunning on it reuses the caches).
#
#   tools/bench_precision.sh [MODELS] [R] [THREADS]   MODELS: comma-separated kit model names
#                                                     (default: the 13 image models)
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${TLKIT_KIT:-../shared/kit}
ZOO="$KIT/models/zoo.json"
ALL=$(/usr/bin/python3 -c "import json; print(','.join(m['name'] for m in json.load(open('$ZOO'))['models'] if m['kind'] == 'image'))")
MODELS=${1:-$ALL}
R=${2:-1}
THREADS=${3:-1}
TLKIT=${TLKIT:-build/apps/cli/tlkit}
if [[ -n ${BENCH_OUT:-} ]]; then
  OUT=$BENCH_OUT
  mkdir -p "$OUT"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
DATA="$KIT/data/clothing-small-160"
common=(--zoo "$ZOO" --data "$DATA" --split validation --metric logme --threads "$THREADS"
        --decode-threads 1 --quiet)
run() {  # run PRECISION MODEL ROUND
  "$TLKIT" rank "${common[@]}" --models "$2" --precision "$1" --cache "$OUT/cache_$1_$3" \
    --format csv --out "$OUT/$2.$1.$3.csv" >/dev/null
}
IFS=, read -ra names <<<"$MODELS"
for m in "${names[@]}"; do
  for r in $(seq "$R"); do
    if (( r % 2 )); then run fp32 "$m" "$r"; run bf16 "$m" "$r"; else run bf16 "$m" "$r"; run fp32 "$m" "$r"; fi
  done
done
for p in fp32 bf16; do
  "$TLKIT" rank "${common[@]}" --models "$MODELS" --precision "$p" --cache "$OUT/cache_${p}_1" \
    --format json >"$OUT/all.$p.json"
done
# --precision auto with the default tolerance: a fresh extraction of every model.
"$TLKIT" rank "${common[@]}" --models "$MODELS" --precision auto --cache "$OUT/cache_auto" \
  --format json >"$OUT/all.auto.json"
/usr/bin/python3 - "$OUT" "$MODELS" "$R" "$THREADS" <<'PY'
import glob, json, sys
import numpy as np
out, models, rounds, threads = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
def meta(m, p, r):  # the cache entry of round r: what tlkit extract writes
    return json.load(open(glob.glob(f"{out}/cache_{p}_{r}/{m}/*/meta.json")[0]))
def ips(m, p):  # images/s of the extraction (decoding + inference, wall clock), best round
    return max(meta(m, p, r)["run"]["images_per_second"] for r in range(1, rounds + 1))
def fwd(m, p):  # images/s of the forward calls alone, best round
    return max(meta(m, p, r)["outputs"]["n"] / meta(m, p, r)["run"]["seconds"]["inference"]
               for r in range(1, rounds + 1))
ranked = {p: json.load(open(f"{out}/all.{p}.json")) for p in ("fp32", "bf16", "auto")}
def meta_auto(m):
    return json.load(open(glob.glob(f"{out}/cache_auto/{m}/*/meta.json")[0]))
def logme(m, p):
    return [x for x in ranked[p]["models"] if x["name"] == m][0]["scores"]["logme"]
print(f"341 images (clothing-small-160/validation), {threads} LibTorch thread(s), best of {rounds}, "
      "--optimize freeze\n")
print("| model | fp32 images/s | bf16 images/s | bf16 / fp32 | forward only bf16 / fp32 | relative feature error | "
      "smallest row cosine | LogME fp32 | LogME bf16 | auto ran |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m in models:
    a, b = ips(m, "fp32"), ips(m, "bf16")
    fw = fwd(m, "bf16") / fwd(m, "fp32")
    fa = np.load(glob.glob(f"{out}/cache_fp32_1/{m}/*/features.npy")[0]).astype(np.float64)
    fb = np.load(glob.glob(f"{out}/cache_bf16_1/{m}/*/features.npy")[0]).astype(np.float64)
    err = np.linalg.norm(fb - fa) / np.linalg.norm(fa)
    na, nb = np.linalg.norm(fa, axis=1), np.linalg.norm(fb, axis=1)
    ok = (na > 0) & (nb > 0)
    cos = ((fa * fb).sum(1)[ok] / (na[ok] * nb[ok])).min() if ok.any() else float("nan")
    la, lb = logme(m, "fp32"), logme(m, "bf16")
    auto = meta_auto(m)["model"]["precision"]
    print(f"| {m} | {a:.1f} | {b:.1f} | {b / a:.2f} | {fw:.2f} | {err:.4f} | {cos:.5f} | {la:.4f} | {lb:.4f} | {auto} |")
print()
ra = ranked["fp32"]["ranking"]["logme"]
print("LogME order, fp32:", ", ".join(ra))
for p in ("bf16", "auto"):
    rp = ranked[p]["ranking"]["logme"]
    print(f"LogME order, {p}:", ", ".join(rp),
          "(the same)" if rp == ra else "(differs at " +
          ", ".join(f"{i + 1}: {x} / {y}" for i, (x, y) in enumerate(zip(ra, rp)) if x != y) + ")")
PY

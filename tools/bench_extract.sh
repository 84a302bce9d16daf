#!/usr/bin/env bash
# Extraction speed, end to end (process start, model load, decoding, inference, writing), of
# tlkit extract vs the same TorchScript model driven from Python (tools/extract_features_py.py:
# PIL decoding and the same preprocessing, torch.jit, python3-torch), on the same images: every
# image of the kit's clothing-small-160 validation split (341 photos), no subsampling. Each pair
# runs back to back, best of R runs each; prints a Markdown table for docs/benchmarks.md.
#
#   tools/bench_extract.sh [MODELS] [R]   MODELS: comma-separated kit model names
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${TLKIT_KIT:-../shared/kit}
MODELS=${1:-cifar10_resnet20,imagenet_mobilenet_v1_025_128,darknet_tiny_imagenet,imagenet_mobilenet_v2_100_224}
R=${2:-2}
TLKIT=${TLKIT:-build/apps/cli/tlkit}
THREADS=$(nproc)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
DATA="$KIT/data/clothing-small-160"
N=$(find "$DATA/validation" -name '*.jpg' | wc -l)
now() { date +%s.%N; }
echo "$N images (clothing-small-160/validation), $THREADS threads for both, best of $R"
echo
echo "| model | S | tlkit images/s | Python images/s | tlkit / Python |"
echo "|---|---|---|---|---|"
IFS=, read -ra names <<<"$MODELS"
for m in "${names[@]}"; do
  s=$(/usr/bin/python3 -c "import json,sys; print([x['input_size'] for x in json.load(open('$KIT/models/zoo.json'))['models'] if x['name']=='$m'][0])")
  best_c=1e9 best_p=1e9
  for _ in $(seq "$R"); do
    t0=$(now)
    "$TLKIT" extract --model "$KIT/models/image/$m.pt" --data "$DATA" --split validation \
      --input-size "$s" --threads "$THREADS" --out "$OUT/c" --quiet
    t1=$(now)
    /usr/bin/python3 tools/extract_features_py.py --zoo "$KIT/models/zoo.json" --models "$m" \
      --data "$DATA" --split validation --threads "$THREADS" --out "$OUT/p" >/dev/null
    t2=$(now)
    best_c=$(awk -v a="$t0" -v b="$t1" -v m="$best_c" 'BEGIN { d = b - a; print (d < m) ? d : m }')
    best_p=$(awk -v a="$t1" -v b="$t2" -v m="$best_p" 'BEGIN { d = b - a; print (d < m) ? d : m }')
  done
  awk -v m="$m" -v s="$s" -v n="$N" -v c="$best_c" -v p="$best_p" \
    'BEGIN { printf "| %s | %d | %.1f | %.1f | %.2f |\n", m, s, n / c, n / p, p / c }'
done

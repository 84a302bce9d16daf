#!/bin/bash
# Plain fine-tuning against B-Tuning (docs/btuning.md, "Measurements") on the kit's
# clothing-small-160: for each student and seed, one plain run and one B-Tuning run (top-3 LogME
# teachers of the kit's zoo), the same options otherwise; then optional variants (K = 1, uniform
# pi). Prints one TSV row per run (student, variant, seed, best val acc, test acc, mean seconds
# per epoch, seconds of all epochs, wall seconds of the command, teachers:pi) to $OUT/results.tsv.
#
#   tools/btuning_measure.sh [OUT [SEEDS [EPOCHS [PER_CLASS [AUGMENT [VARIANTS]]]]]]
#   defaults: OUT=/tmp/btuning-measure SEEDS="1 2 3" EPOCHS=5 PER_CLASS=10 AUGMENT=none
#             VARIANTS="plain bt3" (also: bt1 = --teachers-top 1, uniform = temperature 1e9,
#             bt3t1 = top 3 with --btuning-tradeoff 1)
#   STUDENTS (environment): default "cifar10_resnet20:full imagenet_mobilenet_v1_025_128:full"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TLKIT=${TLKIT:-$ROOT/build/apps/cli/tlkit}
KIT=${KIT:-$ROOT/../shared/kit}
OUT=${1:-/tmp/btuning-measure}
SEEDS=${2:-"1 2 3"}
EPOCHS=${3:-5}
PER_CLASS=${4:-10}
AUGMENT=${5:-none}
VARIANTS=${6:-"plain bt3"}
STUDENTS=${STUDENTS:-"cifar10_resnet20:full imagenet_mobilenet_v1_025_128:full"}
ZOO=$KIT/models/zoo.json
mkdir -p "$OUT"
for sm in $STUDENTS; do
  student=${sm%%:*}
  mode=${sm#*:}
  for seed in $SEEDS; do
    for v in $VARIANTS; do
      dir=$OUT/$student-$v-s$seed
      extra=()
      case $v in
        plain) ;;
        bt3) extra=(--teachers "$ZOO" --teachers-top 3) ;;
        bt1) extra=(--teachers "$ZOO" --teachers-top 1) ;;
        uniform) extra=(--teachers "$ZOO" --teachers-top 3 --btuning-temperature 1e9) ;;
        bt3t1) extra=(--teachers "$ZOO" --teachers-top 3 --btuning-tradeoff 1) ;;
        *) echo "unknown variant $v" >&2; exit 2 ;;
      esac
      t0=$(date +%s.%N)
      "$TLKIT" finetune --zoo "$ZOO" --model-name "$student" \
        --data "$KIT/data/clothing-small-160" --split-train train --split-val validation \
        --split-test test --per-class "$PER_CLASS" --mode "$mode" --epochs "$EPOCHS" \
        --batch 32 --lr 0.01 --augment "$AUGMENT" --patience 0 --seed "$seed" --threads 1 \
        --quiet --out "$dir" "${extra[@]}"
      wall=$(echo "$(date +%s.%N) - $t0" | bc)
      /usr/bin/python3 - "$dir/metrics.json" "$student" "$v" "$seed" "$wall" <<'PY' | tee -a "$OUT/results.tsv"
import json, sys
m = json.load(open(sys.argv[1]))
h = m["history"]
sec = [e["seconds"] for e in h]
bt = m.get("btuning")
teachers = ",".join("%s:%.3f" % (t["name"], t["pi"]) for t in bt["teachers"]) if bt else "-"
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], "%.2f" % m["best_val_acc"],
                 "%.2f" % m["test_acc"], "%.2f" % (sum(sec) / len(sec)), "%.1f" % sum(sec),
                 "%.1f" % float(sys.argv[5]), teachers]))
PY
    done
  done
done
# Mean and sample standard deviation per student and variant over the rows of results.tsv.
/usr/bin/python3 - "$OUT/results.tsv" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows[(f[0], f[1])].append((float(f[3]), float(f[4]), float(f[5]), float(f[7])))
def ms(v):
    return "%.1f +- %.1f" % (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
print("student\tvariant\tn\tval acc\ttest acc\tmedian s/epoch\tmedian wall s")
for (student, variant), r in rows.items():
    print("\t".join([student, variant, str(len(r)), ms([x[0] for x in r]), ms([x[1] for x in r]),
                     "%.2f" % statistics.median(x[2] for x in r),
                     "%.1f" % statistics.median(x[3] for x in r)]))
PY

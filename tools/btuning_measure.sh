#!/bin/bash
# Plain fine-tuning against B-Tuning (docs/btuning.md, "Measurements") on the kit's
# clothing-small-160 or on the kit's ground-truth cifar10 split: for each student and seed, one
# plain run and one B-Tuning run (top-3 LogME teachers of the kit's zoo), the same options
# otherwise; then optional variants (K = 1, uniform pi). Prints one TSV row per run (student,
# variant, seed, best val acc, test acc, mean seconds per epoch, seconds of all epochs, wall
# seconds of the command, teachers:pi) to $OUT/results.tsv.
#
#   tools/btuning_measure.sh [OUT [SEEDS [EPOCHS [PER_CLASS [AUGMENT [VARIANTS]]]]]]
#   defaults: OUT=/tmp/btuning-measure SEEDS="1 2 3" EPOCHS=5 PER_CLASS=10 AUGMENT=none
#             VARIANTS="plain bt3" (also: bt1 = --teachers-top 1, uniform = temperature 1e9,
#             bt3t1 = top 3 with --btuning-tradeoff 1)
#   STUDENTS (environment): default "cifar10_resnet20:full imagenet_mobilenet_v1_025_128:full"
#   DATASET (environment): clothing (default): clothing-small-160's train/validation/test folders,
#     each cut to PER_CLASS images per class by tlkit (--per-class, drawn with --seed).
#     cifar10: the split of $KIT/groundtruth (cifar10_train.csv, cifar10_test.csv). Per seed, a
#     folder $OUT/cifar10-s<seed> of links gets train/ (PER_CLASS images per class drawn from
#     cifar10_train.csv with that seed), validation/ (VAL_PER_CLASS, default 50, more of the rest
#     of cifar10_train.csv) and test/ (TEST_PER_CLASS per class of cifar10_test.csv, default 0:
#     all 5,000); tlkit then runs with --per-class 0.
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
DATASET=${DATASET:-clothing}
ZOO=$KIT/models/zoo.json
mkdir -p "$OUT"
# The data folder and --per-class of one seed's runs.
data_for_seed() {
  case $DATASET in
    clothing)
      DATA=$KIT/data/clothing-small-160
      TLKIT_PER_CLASS=$PER_CLASS
      ;;
    cifar10)
      DATA=$OUT/cifar10-s$1
      TLKIT_PER_CLASS=0
      [ -d "$DATA" ] && return
      /usr/bin/python3 - "$KIT/groundtruth" "$DATA" "$1" "$PER_CLASS" "${VAL_PER_CLASS:-50}" \
        "${TEST_PER_CLASS:-0}" <<'PY'
import collections, csv, os, random, sys
gt, out, seed, k, kval, ktest = sys.argv[1], sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:])
def rows(name):
    by = collections.defaultdict(list)
    with open(os.path.join(gt, name)) as f:
        for r in csv.DictReader(f):
            by[r["label"]].append(os.path.normpath(os.path.join(gt, r["path"])))
    return by
def link(split, cls, paths):
    d = os.path.join(out, split, cls)
    os.makedirs(d, exist_ok=True)
    for p in paths:
        os.symlink(p, os.path.join(d, os.path.basename(p)))
rng = random.Random(seed)
for cls, paths in sorted(rows("cifar10_train.csv").items()):
    paths = sorted(paths)
    rng.shuffle(paths)
    link("train", cls, paths[:k])
    link("validation", cls, paths[k:k + kval])
for cls, paths in sorted(rows("cifar10_test.csv").items()):
    paths = sorted(paths)
    if ktest:
        rng.shuffle(paths)
        paths = paths[:ktest]
    link("test", cls, paths)
PY
      ;;
    *) echo "unknown DATASET $DATASET (clothing or cifar10)" >&2; exit 2 ;;
  esac
}
for sm in $STUDENTS; do
  student=${sm%%:*}
  mode=${sm#*:}
  for seed in $SEEDS; do
    data_for_seed "$seed"
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
        --data "$DATA" --split-train train --split-val validation \
        --split-test test --per-class "$TLKIT_PER_CLASS" --mode "$mode" --epochs "$EPOCHS" \
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

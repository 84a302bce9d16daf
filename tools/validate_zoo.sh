#!/usr/bin/env bash
# Validation study (docs/ranking-quality.md): rank a zoo on a dataset, fine-tune every model of
# it under one budget, and evaluate every metric's ranking against the fine-tuned accuracies.
#
#   tools/validate_zoo.sh --zoo ZOO.json --data DATA --out DIR
#       [--split-train train --split-val validation --split-test test | --halves]
#       [--per-class 15] [--epochs 3] [--mode full] [--batch 16] [--lr 0.001] [--models a,b,...]
#       [--metrics all] [--finetune-args "--optimizer adamw ..."] [--tlkit build/apps/cli/tlkit]
#
# --halves: DATA is one folder of class folders (the kit's cifar10-test). Each class's files,
# sorted by name, are split by index: odd -> test (half of the class), 0 mod 4 -> train,
# 2 mod 4 -> validation; DIR/data holds the three splits as symbolic links.
# Text data: DATA is the folder of the split files (--split-train TREC.train.all --split-test
# TREC.test.all; --split-val "" carves --val-fraction of train), ranked on the training file.
# --finetune-args: extra options for the fine-tuning runs (not the linear probes).
# Steps (each timed; the times go to DIR/times.csv):
#   1. tlkit rank on the training split (--per-class, seed 0: the same images that fine-tuning
#      trains on), a fresh cache, every metric -> DIR/scores.csv, DIR/rank.json;
#   2. per model, tlkit finetune --mode MODE (the budget above) -> DIR/finetune/<model>/;
#   3. per model, tlkit finetune --mode linear (L-BFGS logistic regression on the frozen
#      features, C by validation) -> DIR/linear/<model>/;
#   4. DIR/truth_finetune.csv and DIR/truth_linear.csv (model,accuracy = test accuracy in
#      percent), and tlkit evaluate of DIR/scores.csv against each -> DIR/evaluate_*.json.
# Finished models are skipped when the script is rerun (their metrics.json exists).
set -euo pipefail

zoo="" data="" out="" split_train="train" split_val="validation" split_test="test" halves=0
per_class=15 epochs=3 mode="full" batch=16 lr=0.001 models="" metrics="all" extra=""
tlkit="$(cd "$(dirname "$0")/.." && pwd)/build/apps/cli/tlkit"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --zoo) zoo="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --split-train) split_train="$2"; shift 2 ;;
    --split-val) split_val="$2"; shift 2 ;;
    --split-test) split_test="$2"; shift 2 ;;
    --halves) halves=1; shift ;;
    --per-class) per_class="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --lr) lr="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --metrics) metrics="$2"; shift 2 ;;
    --finetune-args) extra="$2"; shift 2 ;;
    --tlkit) tlkit="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "validate_zoo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$zoo" && -n "$data" && -n "$out" ]] || { echo "validate_zoo.sh: --zoo, --data and --out are required" >&2; exit 2; }
[[ -x "$tlkit" ]] || { echo "validate_zoo.sh: $tlkit: not built (cmake --build build)" >&2; exit 2; }
py=/usr/bin/python3
mkdir -p "$out"
zoo="$(realpath "$zoo")"
data="$(realpath "$data")"

if [[ $halves == 1 ]]; then
  split_train=train split_val=validation split_test=test
  if [[ ! -d "$out/data" ]]; then
    rm -rf "$out/data.tmp"
    for cdir in "$data"/*/; do
      c="$(basename "$cdir")"
      mkdir -p "$out/data.tmp/train/$c" "$out/data.tmp/validation/$c" "$out/data.tmp/test/$c"
      i=0
      while IFS= read -r f; do
        case $((i % 4)) in
          0) s=train ;; 2) s=validation ;; *) s=test ;;
        esac
        ln -s "$cdir$f" "$out/data.tmp/$s/$c/$f"
        i=$((i + 1))
      done < <(ls "$cdir" | LC_ALL=C sort)
    done
    mv "$out/data.tmp" "$out/data"
  fi
  data="$(realpath "$out/data")"
fi

# The zoo's models of the data's kind (image for a folder): name, file, input size.
kind=image
[[ -f "$data/$split_train" ]] && kind=text
mapfile -t rows < <("$py" - "$zoo" "$kind" "$models" <<'EOF'
import json, os, sys
zoo, kind, only = sys.argv[1], sys.argv[2], [m for m in sys.argv[3].split(",") if m]
z = json.load(open(zoo))
base = os.path.dirname(zoo)
for m in z["models"]:
    if m["kind"] != kind or (only and m["name"] not in only):
        continue
    f = m["file"]
    for root in (base, os.path.dirname(base)):
        if os.path.exists(os.path.join(root, f)):
            f = os.path.join(root, f)
            break
    print(m["name"], f, m.get("input_size") or 0)
EOF
)
[[ ${#rows[@]} -gt 0 ]] || { echo "validate_zoo.sh: no $kind models in $zoo" >&2; exit 2; }
model_list="$(printf '%s\n' "${rows[@]}" | cut -d' ' -f1 | paste -sd,)"

splits=(--split-train "$split_train" --split-test "$split_test")
[[ -n "$split_val" ]] && splits+=(--split-val "$split_val")
now() { date +%s.%N; }
echo "phase,model,seconds" > "$out/times.csv.tmp"
[[ -f "$out/times.csv" ]] && tail -n +2 "$out/times.csv" >> "$out/times.csv.tmp"

# 1. rank, from a fresh cache (extraction included in its time).
if [[ ! -f "$out/scores.csv" ]]; then
  rm -rf "$out/rank-cache"
  t0=$(now)
  rank_data=(--data "$data" --split "$split_train")
  [[ $kind == text ]] && rank_data=(--data "$data/$split_train")
  "$tlkit" rank --zoo "$zoo" --models "$model_list" "${rank_data[@]}" \
    --per-class "$per_class" --metrics "$metrics" --cache "$out/rank-cache" --format json \
    --out "$out/scores.csv" --quiet > "$out/rank.json"
  echo "rank,all,$(echo "$(now) - $t0" | bc)" >> "$out/times.csv.tmp"
fi

# 2-3. fine-tune and linear probe per model.
for row in "${rows[@]}"; do
  read -r name file size <<< "$row"
  size_flag=()
  [[ $size != 0 ]] && size_flag=(--input-size "$size")
  for m in "$mode" linear; do
    dir="$out/$([[ $m == linear ]] && echo linear || echo finetune)/$name"
    [[ -f "$dir/metrics.json" ]] && grep -q '"test_acc"' "$dir/metrics.json" && continue
    echo "$(date +%T) $name: $m" >&2
    t0=$(now)
    if [[ $m == linear ]]; then
      "$tlkit" finetune --model "$file" --data "$data" "${splits[@]}" "${size_flag[@]}" \
        --per-class "$per_class" --mode linear --out "$dir" --quiet
    else
      "$tlkit" finetune --model "$file" --data "$data" "${splits[@]}" "${size_flag[@]}" \
        --per-class "$per_class" --mode "$m" --epochs "$epochs" --batch "$batch" \
        --lr "$lr" --patience 0 $extra --out "$dir" --quiet
    fi
    echo "$([[ $m == linear ]] && echo linear || echo finetune),$name,$(echo "$(now) - $t0" | bc)" >> "$out/times.csv.tmp"
  done
done
mv "$out/times.csv.tmp" "$out/times.csv"

# 4. ground truth and evaluation.
for t in finetune linear; do
  "$py" - "$out/$t" "${rows[@]}" > "$out/truth_$t.csv" <<'EOF'
import json, os, sys
print("model,accuracy")
for row in sys.argv[2:]:
    name = row.split()[0]
    j = json.load(open(os.path.join(sys.argv[1], name, "metrics.json")))
    print(f"{name},{j['test_acc']!r}")
EOF
  "$tlkit" evaluate --scores "$out/scores.csv" --truth "$out/truth_$t.csv" --format json \
    > "$out/evaluate_$t.json"
done
echo "validate_zoo.sh: wrote $out (scores.csv, truth_*.csv, evaluate_*.json, times.csv)" >&2

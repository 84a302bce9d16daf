#!/usr/bin/env bash
# The main job on the bundled example: rank 8 real pretrained models for a clothing dataset by
# LogME, from their features on 1000 real photos (examples/clothing-features/README.md).
#
#   examples/rank-clothing.sh [extra tlkit score options, e.g. --logme-mode thuml]
set -euo pipefail
cd "$(dirname "$0")/.."
TLKIT=${TLKIT:-build/apps/cli/tlkit}
DIR=examples/clothing-features
printf '%-32s %6s %12s\n' model D logme
for m in "$DIR"/*/; do
  name=$(basename "$m")
  # CSV row 2 is "logme,mean,,SCORE,...".
  score=$("$TLKIT" score --features "$m/features.npy" --labels "$DIR/labels.npy" --format csv "$@" |
          sed -n 2p | cut -d, -f4)
  d=$(sed -n 's/.*"D": *\([0-9]*\).*/\1/p' "$m/meta.json" | head -1)
  printf '%-32s %6s %12.6f\n' "$name" "${d:-?}" "$score"
done | sort -k3 -g -r

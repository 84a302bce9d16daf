#!/usr/bin/env bash
# The main job on the bundled example: rank three real pretrained models (examples/zoo: a CIFAR-10
# ResNet, an ImageNet MobileNet, a Quick-Draw sketch CNN) for 120 real clothing photos
# (examples/clothing-images), from the images: tlkit rank extracts each model's features, scores
# them and prints the models best first. A second run reads the features from the cache.
#
#   examples/rank-clothing.sh [extra tlkit rank options, e.g. --metrics all --format md]
set -euo pipefail
cd "$(dirname "$0")/.."
TLKIT=${TLKIT:-build/apps/cli/tlkit}
exec "$TLKIT" rank --zoo examples/zoo/zoo.json --data examples/clothing-images \
  --cache "${TLKIT_CACHE:-build/example-cache}" "$@"

#!/usr/bin/env bash
# Set-up if needed, then the main job on the embedded synthetic data:
#   1. cliphba synth behavior  -> a behaviour set with known latent dimensions and a human RDM made
#                                 from simulated odd-one-out choices (SPoSE choice rule)
#   2. cliphba rsa behavior    -> 4 RDM types x 4 comparisons + triplet accuracy, written to HDF5
# and, when the THINGS data are beside the checkout (../shared/data/things), the same evaluation of
# the real SPoSE embedding against the human RDM48.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
CLIPHBA="$BUILD_DIR/src/apps/cliphba"
cd "$ROOT"

"$CLIPHBA" version
echo
"$CLIPHBA" synth behavior --config configs/quickstart.yaml
echo
"$CLIPHBA" rsa behavior --config configs/quickstart.yaml

THINGS="${CLIPHBA_SHARED_DIR:-$ROOT/../shared}/data/things"
if [ -f "$THINGS/RDM48_triplet.npy" ]; then
  echo
  "$CLIPHBA" rsa behavior --config configs/behavior_rsa_things.yaml \
    --embedding "$THINGS/spose_embedding66d_rescaled.csv" --rdm "$THINGS/RDM48_triplet.npy" \
    --rdm-names "$THINGS/RDM48_image_names.txt"
fi
echo
echo "quickstart: results in $ROOT/results/quickstart/ (HDF5 layout: results/README.md)"
